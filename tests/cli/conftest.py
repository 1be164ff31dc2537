"""DICOM series built from the embedded demo volumes (``monai_fusion.data.demo_study.write_series``)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from monai_fusion.data.demo import demo_volume_pair
from monai_fusion.data.demo_study import MRI_SERIES_UID, PET_SERIES_UID, write_series


@pytest.fixture(scope="session")
def dicom_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """MRI and (misaligned) PET DICOM series folders of one patient from ``demo_volume_pair(2)``."""
    root = tmp_path_factory.mktemp("dicom")
    d = demo_volume_pair(2)
    return {
        "mri": write_series(root / "mri", d["mri"], d["affine"], MRI_SERIES_UID),
        "pet": write_series(root / "pet", d["pet"], d["affine"], PET_SERIES_UID, "PT"),
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
