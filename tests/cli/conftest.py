"""DICOM series built from the embedded demo volumes (SimpleITK writer, as in tests/data/test_io.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import SimpleITK as sitk

from monai_fusion.data.demo import demo_volume_pair

PATIENT = {
    "0010|0010": "Demo^Brain",
    "0010|0020": "MF-0001",
    "0010|0030": "19700101",
    "0010|0040": "F",
    "0020|000d": "1.2.826.0.1.3680043.8.498.1",
    "0008|0020": "20260101",
    "0020|0010": "S1",
    "0008|0050": "ACC42",
}


def write_series(
    folder: Path,
    vol: np.ndarray,
    affine: np.ndarray,
    series_uid: str,
    modality: str = "MR",
    patient_id: str = "MF-0001",
) -> Path:
    """Write a ``(1, X, Y, Z)`` volume in [0, 1] with a RAS affine as an int16 DICOM series (x1000)."""
    folder.mkdir(parents=True, exist_ok=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    img = sitk.GetImageFromArray(np.transpose(np.rint(vol[0] * 1000), (2, 1, 0)).astype(np.int16))
    img.SetSpacing(spacing.tolist())
    img.SetOrigin(lps[:3, 3].tolist())
    img.SetDirection((lps[:3, :3] / spacing).ravel().tolist())
    d = lps[:3, :3] / spacing
    iop = "\\".join(f"{v:g}" for v in np.concatenate([d[:, 0], d[:, 1]]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(img.GetDepth()):
        sl = img[:, :, z]
        pos = img.TransformIndexToPhysicalPoint((0, 0, z))
        tags = {
            **PATIENT,
            "0010|0020": patient_id,
            "0020|000e": series_uid,
            "0008|0060": modality,
            "0020|0013": str(z + 1),
            "0020|0032": "\\".join(f"{p:.4f}" for p in pos),
            "0020|0037": iop,
            "0028|0030": f"{spacing[1]:g}\\{spacing[0]:g}",
            "0018|0050": f"{spacing[2]:g}",
            "0008|103e": f"demo {modality}",
        }
        for tag, value in tags.items():
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{series_uid[-3:]}_{z:03d}.dcm"))
        writer.Execute(sl)
    return folder


@pytest.fixture(scope="session")
def dicom_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """MRI and (misaligned) PET DICOM series folders of one patient from ``demo_volume_pair(2)``."""
    root = tmp_path_factory.mktemp("dicom")
    d = demo_volume_pair(2)
    return {
        "mri": write_series(root / "mri", d["mri"], d["affine"], "1.2.826.0.1.3680043.8.498.101"),
        "pet": write_series(root / "pet", d["pet"], d["affine"], "1.2.826.0.1.3680043.8.498.102", "PT"),
        "root": root,
    }


@pytest.fixture()
def series_writer() -> Callable[..., Path]:
    """The series writer, for tests that need other patients or several series in one folder."""
    return write_series


@pytest.fixture()
def few_real_pairs(harvard_root: Path, tmp_path: Path) -> Path:
    """Two real pairs per pair type, copied into a temporary Whole Brain Atlas layout."""
    import shutil

    root = tmp_path / "pairs"
    for pair, mod in (("CT-MRI", "CT"), ("PET-MRI", "PET"), ("SPECT-MRI", "SPECT")):
        names = sorted(p.name for p in (harvard_root / pair / mod).iterdir())[:2]
        for sub in ("MRI", mod):
            (root / pair / sub).mkdir(parents=True)
            for n in names:
                shutil.copy(harvard_root / pair / sub / n, root / pair / sub / n)
    return root
