"""The embedded demo volumes as DICOM series: the study folders the DICOM examples of the docs use.

:func:`write_demo_study` writes ``MRI/`` (MR) and ``PET/`` (PT) of one synthetic patient from
:func:`~monai_fusion.data.demo.demo_volume_pair` (the PET misaligned on purpose, as in the demo), ``CT/`` (a CT-like
volume in Hounsfield units on the MRI's grid, :func:`demo_ct_hu`), ``MIXED/`` (both
series in one folder, for choosing a series by UID) and ``PET_OTHER/`` (the PET of another PatientID, which
fusion refuses). Slices are int16 (x1000) written by SimpleITK's GDCM writer with the patient, study and
geometry tags a scanner series carries. It exists because no package ships a registered MRI/PET DICOM study.
Run ``python -m monai_fusion.data.demo_study DIR``. :func:`write_atlas_study` (``--atlas PAIR_DIR --case N``) writes
a real Whole Brain Atlas case's MRI and PET/SPECT rendering as a study in the same way.
"""

from __future__ import annotations

import os
import shutil
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
    "write_atlas_study",
    "atlas_volume",
    "ATLAS_MODALITIES",
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
    patient: dict[str, str] | None = None,
    description: str | None = None,
) -> Path:
    """Write a ``(1, X, Y, Z)`` volume in [0, 1] with a RAS affine as an int16 DICOM series (x1000), or a
    ``(3, X, Y, Z)`` one as an 8-bit RGB series (x255; a pseudo-colour rendering such as the atlas PET).

    Args:
        folder: where the slices go (created; files ``<uid[-3:]>_<z>.dcm``, so two series can share it).
        vol: the volume (grey: stored as ``rint(vol * 1000)``, so a CT in HU is given as HU / 1000; RGB: as
            ``rint(vol * 255)``).
        affine: its voxel-to-RAS affine (as NIfTI's).
        series_uid: SeriesInstanceUID.
        modality: DICOM Modality (``MR``, ``PT``, ``CT``).
        patient_id: PatientID (the other patient tags are :data:`DEMO_PATIENT`'s).
        series_number: SeriesNumber (default: 1 for MR, 2 otherwise). Written always: an empty SeriesNumber
            (what GDCM writes when none is given) is legal, but the MONAI Deploy SDK's loader drops such series.
        study_uid: StudyInstanceUID (default: :data:`DEMO_PATIENT`'s).
        patient: patient and study tags in place of :data:`DEMO_PATIENT` (``group|element`` keys).
        description: SeriesDescription (default ``demo <modality>``).

    Returns:
        ``folder``.
    """
    import SimpleITK as sitk

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    if vol.ndim != 4 or vol.shape[0] not in (1, 3):
        raise ValueError(f"write_series: expected a (1|3, X, Y, Z) volume, got shape {tuple(vol.shape)}")
    if vol.shape[0] == 3:
        rgb = np.transpose(np.clip(np.rint(vol * 255), 0, 255), (3, 2, 1, 0)).astype(np.uint8)
        img = sitk.GetImageFromArray(rgb, isVector=True)
    else:
        img = sitk.GetImageFromArray(np.transpose(np.rint(vol[0] * 1000), (2, 1, 0)).astype(np.int16))
    img.SetSpacing(spacing.tolist())
    img.SetOrigin(lps[:3, 3].tolist())
    direction = lps[:3, :3] / spacing
    img.SetDirection(direction.ravel().tolist())
    iop = "\\".join(f"{v:g}" for v in np.concatenate([direction[:, 0], direction[:, 1]]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    base = patient or DEMO_PATIENT
    for z in range(img.GetDepth()):
        sl = img[:, :, z]
        pos = img.TransformIndexToPhysicalPoint((0, 0, z))
        tags = {
            **base,
            "0010|0020": patient_id,
            "0020|000d": study_uid or base["0020|000d"],
            "0020|000e": series_uid,
            "0020|0011": str(series_number if series_number is not None else 1 if modality == "MR" else 2),
            "0008|0060": modality,
            "0020|0013": str(z + 1),
            "0020|0032": "\\".join(f"{p:.4f}" for p in pos),
            "0020|0037": iop,
            "0028|0030": f"{spacing[1]:g}\\{spacing[0]:g}",
            "0018|0050": f"{spacing[2]:g}",
            "0008|103e": description or f"demo {modality}",
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


#: DICOM Modality of the second source of each colour atlas pair type.
ATLAS_MODALITIES = {"PET-MRI": ("PET", "PT"), "SPECT-MRI": ("SPECT", "NM")}


def atlas_volume(files: list[Path], rgb: bool) -> np.ndarray:
    """Stack atlas PNG slices into one volume.

    Args:
        files: the slices, in order (co-registered PNGs of one size).
        rgb: read them as RGB (the atlas PET/SPECT renderings) instead of grey.

    Returns:
        A ``(C, X, Y, Z)`` float32 volume in [0, 1] (X = column, Y = row, Z = the files' order; C = 3 for RGB).
    """
    from PIL import Image

    slices = [np.asarray(Image.open(f).convert("RGB" if rgb else "L"), dtype=np.float32) / 255.0 for f in files]
    vol = np.stack(slices, axis=-1)  # (rows, cols[, 3], Z)
    return np.transpose(vol, (2, 1, 0, 3)) if rgb else np.transpose(vol, (1, 0, 2))[None]


def write_atlas_study(
    folder: str | os.PathLike, pair_dir: str | os.PathLike, case: str, slices: int = 16
) -> dict[str, Path]:
    """Write a Whole Brain Atlas case's MRI and its PET/SPECT rendering as an MR and a PT/NM series of one study.

    The atlas pairs are co-registered 256x256 PNG slices named ``<case><slice:3 digits>.png`` under
    ``<pair_dir>/MRI`` and ``<pair_dir>/PET`` (or ``SPECT``); the first ``slices`` slices of ``case`` are stacked.
    The PNGs carry no geometry, so 1 mm pixels and 5 mm between slices are assumed (the fusion does not depend
    on them; a registration would). The PET/SPECT is written as it is, an RGB rendering (8-bit RGB series).

    Args:
        folder: the study folder (created; it must hold no DICOM file yet: nothing is overwritten). The series are
            written into a hidden folder beside it and moved in once complete.
        pair_dir: the atlas pair type's folder, e.g. ``../shared/data/harvard/PET-MRI``.
        case: the case number, e.g. ``"25"``.
        slices: how many slices (the first ones of the case).

    Returns:
        ``{"MRI": folder, "PET": folder}`` (or ``"SPECT"``): both series are in ``folder``.

    Raises:
        FileNotFoundError: the pair folder or the case's slices are missing.
        FileExistsError: ``folder`` holds DICOM files already.
        ValueError: a pair type without a colour source (CT-MRI), or ``slices`` < 1.
    """
    pair = Path(pair_dir)
    if pair.name not in ATLAS_MODALITIES:
        raise ValueError(f"{pair}: expected a PET-MRI or SPECT-MRI atlas folder (CT-MRI PNGs are not in HU)")
    modality, dicom_modality = ATLAS_MODALITIES[pair.name]
    if not str(case).isdigit():
        raise ValueError(f"case {case!r}: expected the case number, e.g. 25")
    if int(slices) < 1:
        raise ValueError(f"slices={slices}: expected at least 1")
    names = sorted(p.name for p in (pair / "MRI").glob(f"{case}[0-9][0-9][0-9].png"))
    if len(names) < int(slices) or not all((pair / modality / n).is_file() for n in names[: int(slices)]):
        raise FileNotFoundError(
            f"case {case}: expected {slices} MRI/{modality} slice pairs {case}NNN.png under {pair}, "
            f"found {len(names)} MRI slices"
        )
    names = names[: int(slices)]
    out = Path(folder)
    if any(out.glob("*.dcm")):
        raise FileExistsError(f"{out} holds DICOM files already; choose another folder")
    affine = np.diag([-1.0, -1.0, 5.0, 1.0])
    affine[:3, 3] = (127.5, 127.5, 0.0)  # RAS; the slices' centre on the axis
    study = f"1.2.826.0.1.3680043.8.498.{int(case)}"
    patient = {**DEMO_PATIENT, "0010|0010": "Atlas^Case", "0020|000d": study, "0008|0050": f"WBA{int(case)}"}
    common = {"patient_id": f"WBA-{case}", "study_uid": study, "patient": patient}
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"  # moved into place once both series are written
    shutil.rmtree(staging, ignore_errors=True)
    write_series(
        staging,
        atlas_volume([pair / "MRI" / n for n in names], False),
        affine,
        study + ".1",
        "MR",
        description="MRI (Whole Brain Atlas)",
        **common,
    )
    write_series(
        staging,
        atlas_volume([pair / modality / n for n in names], True),
        affine,
        study + ".2",
        dicom_modality,
        description=f"{modality} (atlas colours)",
        **common,
    )
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(staging.iterdir()):
        os.replace(f, out / f.name)
    staging.rmdir()
    return {"MRI": out, modality: out}


def main(argv: list[str] | None = None) -> int:
    """``python -m monai_fusion.data.demo_study DIR [--atlas PAIR_DIR --case N [--slices K]]``.

    Args:
        argv: the arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        0; bad input exits with ``error: ...`` (status 1), a bad command line with argparse's usage (status 2).
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m monai_fusion.data.demo_study",
        description="Write DICOM studies for the docs' examples: the embedded demo study (sub-folders MRI, PET, CT, "
        "MIXED, PET_OTHER), or with --atlas a Whole Brain Atlas case as an MR and a PT/NM series in DIR.",
    )
    parser.add_argument("dir", help="the study folder to write")
    parser.add_argument("--atlas", metavar="PAIR_DIR", help="an atlas PET-MRI or SPECT-MRI folder")
    parser.add_argument("--case", help="the atlas case number (with --atlas), e.g. 25")
    parser.add_argument("--slices", type=int, default=16, help="how many slices of the case (default 16)")
    args = parser.parse_args(argv)
    if (args.atlas is None) != (args.case is None):
        parser.error("--atlas and --case go together")
    try:
        if args.atlas:
            written = write_atlas_study(args.dir, args.atlas, args.case, args.slices)
        else:
            written = write_demo_study(args.dir)
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    print("\n".join(f"{name}: {path}" for name, path in written.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
