"""The embedded demo volumes as DICOM series: the study folders the DICOM examples of the docs use.

:func:`write_demo_study` writes ``MRI/`` (MR) and ``PET/`` (PT) of one synthetic patient from
:func:`~monai_fusion.data.demo.demo_volume_pair` (the PET misaligned on purpose, as in the demo), ``CT/`` (a CT-like
volume in Hounsfield units on the MRI's grid, :func:`demo_ct_hu`), ``MIXED/`` (both
series in one folder, for choosing a series by UID) and ``PET_OTHER/`` (the PET of another PatientID, which
fusion refuses). Slices are int16 (x1000) written by SimpleITK's GDCM writer with the patient, study and
geometry tags a scanner series carries. It exists because no package ships a registered MRI/PET DICOM study.
Run ``python -m monai_fusion.data.demo_study DIR``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from ..utils.locale_guard import preserved_locale

__all__ = [
    "DEMO_PATIENT",
    "MRI_SERIES_UID",
    "PET_SERIES_UID",
    "CT_SERIES_UID",
    "demo_ct_hu",
    "write_series",
    "write_demo_study",
]

#: Patient and study tags of the demo study (DICOM ``group|element`` keys, as SimpleITK takes them).
DEMO_PATIENT: dict[str, str] = {
    "0010|0010": "Demo^Brain",
    "0010|0020": "MF-0001",
    "0010|0030": "19700101",
    "0010|0040": "F",
    "0020|000d": "1.2.826.0.1.3680043.8.498.1",
    "0008|0020": "20260101",
    "0020|0010": "S1",
    "0008|0050": "ACC42",
}
MRI_SERIES_UID = "1.2.826.0.1.3680043.8.498.101"
PET_SERIES_UID = "1.2.826.0.1.3680043.8.498.102"
CT_SERIES_UID = "1.2.826.0.1.3680043.8.498.104"


def demo_ct_hu(mri: np.ndarray) -> np.ndarray:
    """A CT-like volume in Hounsfield units on the demo MRI's grid: air -1000, brain 10-35 HU, a skull of 1000 HU.

    Args:
        mri: the demo MRI ``(1, X, Y, Z)`` in [0, 1] (skull-stripped).

    Returns:
        ``(1, X, Y, Z)`` float array in HU: a 4-voxel shell around the brain is bone, so the CT windows
        (brain, bone) and the bone colour map have something to show.
    """
    from scipy import ndimage

    brain = mri[0] > 0.05
    skull = ndimage.binary_dilation(brain, iterations=5) & ~ndimage.binary_dilation(brain, iterations=1)
    hu = np.where(brain, 10.0 + 25.0 * mri[0], -1000.0)
    hu[skull] = 1000.0
    return hu[None]


def write_series(
    folder: str | os.PathLike,
    vol: np.ndarray,
    affine: np.ndarray,
    series_uid: str,
    modality: str = "MR",
    patient_id: str = "MF-0001",
    series_number: int | None = None,
    study_uid: str | None = None,
) -> Path:
    """Write a ``(1, X, Y, Z)`` volume in [0, 1] with a RAS affine as an int16 DICOM series (x1000).

    Args:
        folder: where the slices go (created; files ``<uid[-3:]>_<z>.dcm``, so two series can share it).
        vol: the volume (stored as ``rint(vol * 1000)``: a CT in HU is given as HU / 1000).
        affine: its voxel-to-RAS affine (as NIfTI's).
        series_uid: SeriesInstanceUID.
        modality: DICOM Modality (``MR``, ``PT``, ``CT``).
        patient_id: PatientID (the other patient tags are :data:`DEMO_PATIENT`'s).
        series_number: SeriesNumber (default: 1 for MR, 2 otherwise). Written always: an empty SeriesNumber
            (what GDCM writes when none is given) is legal, but the MONAI Deploy SDK's loader drops such series.
        study_uid: StudyInstanceUID (default: :data:`DEMO_PATIENT`'s).

    Returns:
        ``folder``.
    """
    import SimpleITK as sitk

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    img = sitk.GetImageFromArray(np.transpose(np.rint(vol[0] * 1000), (2, 1, 0)).astype(np.int16))
    img.SetSpacing(spacing.tolist())
    img.SetOrigin(lps[:3, 3].tolist())
    direction = lps[:3, :3] / spacing
    img.SetDirection(direction.ravel().tolist())
    iop = "\\".join(f"{v:g}" for v in np.concatenate([direction[:, 0], direction[:, 1]]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(img.GetDepth()):
        sl = img[:, :, z]
        pos = img.TransformIndexToPhysicalPoint((0, 0, z))
        tags = {
            **DEMO_PATIENT,
            "0010|0020": patient_id,
            "0020|000d": study_uid or DEMO_PATIENT["0020|000d"],
            "0020|000e": series_uid,
            "0020|0011": str(series_number if series_number is not None else 1 if modality == "MR" else 2),
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
        writer.SetFileName(str(out / f"{series_uid[-3:]}_{z:03d}.dcm"))
        with preserved_locale():  # GDCM leaves the process in the C locale (ASCII text) otherwise
            writer.Execute(sl)
    return out


def write_demo_study(folder: str | os.PathLike, resolution: int = 2) -> dict[str, Path]:
    """Write ``MRI/``, ``PET/``, ``MIXED/`` and ``PET_OTHER/`` under ``folder`` (see the module docstring).

    Args:
        folder: the study folder; its five sub-folders must not exist yet (nothing is overwritten).
        resolution: voxel size of the demo volumes in mm (2: 98x116x94 voxels).

    Returns:
        ``{"MRI": path, "PET": path, "CT": path, "MIXED": path, "PET_OTHER": path}``.
    """
    from .demo import demo_volume_pair

    root = Path(folder)
    names = ("MRI", "PET", "CT", "MIXED", "PET_OTHER")
    taken = [str(root / n) for n in names if (root / n).exists()]
    if taken:
        raise FileExistsError(f"demo study folders exist already: {', '.join(taken)}; choose another folder")
    pair = demo_volume_pair(resolution)
    mri, pet, affine = pair["mri"], pair["pet"], pair["affine"]
    write_series(root / "MIXED", mri, affine, MRI_SERIES_UID)
    write_series(root / "MIXED", pet, affine, PET_SERIES_UID, "PT")
    return {
        "MRI": write_series(root / "MRI", mri, affine, MRI_SERIES_UID),
        "PET": write_series(root / "PET", pet, affine, PET_SERIES_UID, "PT"),
        "CT": write_series(root / "CT", demo_ct_hu(mri) / 1000.0, affine, CT_SERIES_UID, "CT"),
        "MIXED": root / "MIXED",
        "PET_OTHER": write_series(root / "PET_OTHER", pet, affine, "1.2.826.0.1.3680043.8.498.103", "PT", "XY-0002"),
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m monai_fusion.data.demo_study DIR")
    try:
        written = write_demo_study(sys.argv[1])
    except FileExistsError as err:
        raise SystemExit(f"error: {err}") from None
    print("\n".join(f"{name}: {path}" for name, path in written.items()))
