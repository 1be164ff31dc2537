"""DICOM series helpers: choose a series in a folder, read its header, write a fused volume back.

The writer produces a Secondary Capture series (one file per axial slice) with pydicom: grey
results as MONOCHROME2, colour results as RGB (``PlanarConfiguration`` 0), 8-bit. Secondary Capture because a
fused image is derived, not acquired, by any modality, and it takes grey and colour alike; its Type 2C
attributes are filled (``PatientOrientation`` from the directions, ``BodyPartExamined`` from the MRI or
``BRAIN``, so ``Laterality`` is not required), and dicom3tools' ``dciodvfy`` reports no error. Patient and study
identifiers come from a reference header (the MRI's), the geometry (``ImagePositionPatient``,
``ImageOrientationPatient``, ``PixelSpacing``, ``SliceThickness``, the frame of reference) from the volume's RAS
affine, so the result overlays the MRI in a viewer: these lie outside the Secondary Capture IOD, which DICOM
allows as a Standard Extended SOP Class (``dciodvfy`` says so in warnings). Series and SOP Instance UIDs are
new. The series is written into a temporary folder beside the target and renamed into place, so an interrupted
run never leaves a partial series under the final name.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..utils.errors import FusionInputError
from .dicom_series import list_dicom_series
from .quantise import channels_to_uint8

__all__ = [
    "patient_mismatch",
    "patient_orientation",
    "SECONDARY_CAPTURE_SOP_CLASS",
    "PATIENT_STUDY_KEYWORDS",
    "series_files",
    "read_series_header",
    "check_dicom_target",
    "write_dicom_series",
]

#: Secondary Capture Image Storage.
SECONDARY_CAPTURE_SOP_CLASS: str = "1.2.840.10008.5.1.4.1.1.7"
#: Identifiers carried from the reference (MRI) series into the fused series.
PATIENT_STUDY_KEYWORDS: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
    "ReferringPhysicianName",
    "FrameOfReferenceUID",
)


def series_files(
    folder: str | os.PathLike, series_uid: str | None = None, what: str = "DICOM"
) -> tuple[str, list[str]]:
    """The chosen series' UID and sorted file names in ``folder``.

    Args:
        folder: a folder of DICOM files.
        series_uid: which series; required when the folder holds several.
        what: how to name the input in messages (e.g. ``MRI``).

    Raises:
        FusionInputError: missing folder, no series, several series without a choice (they are
            listed with their file counts and descriptions), or an unknown UID.
    """

    p = Path(folder)
    if not p.is_dir():
        raise FusionInputError(f"{what}: {p} is not a folder; expected a DICOM series folder")
    series = list_dicom_series(p)
    if not series:
        raise FusionInputError(f"{what}: {p} holds no DICOM series; expected a folder with one DICOM series")
    if series_uid is None:
        if len(series) > 1:
            listing = "; ".join(f"{uid} ({len(f)} files, {_describe(f[0])})" for uid, f in series.items())
            flag = "--mri-series" if what == "MRI" else "--other-series"
            raise FusionInputError(
                f"{what}: {p} holds {len(series)} DICOM series; choose one by UID "
                f"({flag} on the command line, series_uid= in Python): {listing}"
            )
        series_uid = next(iter(series))
    elif series_uid not in series:
        raise FusionInputError(f"{what}: series {series_uid} is not in {p}; found {', '.join(series)}")
    return series_uid, series[series_uid]


def _describe(path: str) -> str:
    try:
        ds = read_series_header([path])
    except FusionInputError:
        return "unreadable"
    return f"{ds.get('Modality', '?')} '{ds.get('SeriesDescription', '')}'"


def read_series_header(files: Sequence[str]) -> Any:
    """The first file's header (a ``pydicom.Dataset``, pixel data not read)."""
    import pydicom

    try:
        return pydicom.dcmread(files[0], stop_before_pixels=True)
    except Exception as err:  # pydicom raises several types for corrupt files
        raise FusionInputError(f"{files[0]} could not be read as DICOM: {err}") from err


def _geometry(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RAS affine -> LPS affine, unit direction cosines (columns) and spacing."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=np.float64)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    return lps, lps[:3, :3] / spacing[None, :], spacing


def _fmt(values: Sequence[float]) -> list[str]:
    return [f"{v:.6g}" if abs(v) > 1e-9 else "0" for v in values]


def _save_dataset(ds: Any, path: Path) -> None:
    """Write ``ds`` as a DICOM file with its file meta header, on pydicom 3 and on pydicom 2.x (which the
    MONAI Label environment needs:
    ``enforce_file_format`` is pydicom 3's name of 2.x's ``write_like_original=False``)."""
    import pydicom

    if int(pydicom.__version__.split(".")[0]) >= 3:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.is_little_endian, ds.is_implicit_VR = True, False  # Explicit VR Little Endian, as in the file meta
        ds.save_as(str(path), write_like_original=False)


def check_dicom_target(
    folder: str | os.PathLike, overwrite: bool = False, protect: Sequence[str | os.PathLike] = ()
) -> Path:
    """The resolved output folder, after checking it may be written.

    Raises:
        FusionInputError: the folder is, holds or lies inside a ``protect`` path (always refused),
            is a file, or is a non-empty folder without ``overwrite``.
    """
    out = Path(folder).resolve()
    for src in protect:
        s = Path(src).resolve()
        if out == s or out in s.parents or s in out.parents:
            raise FusionInputError(
                f"DICOM output {out} is, holds or lies inside the input {s}; refusing to touch an input"
            )
    if out.exists() and not out.is_dir():
        raise FusionInputError(f"DICOM output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FusionInputError(f"DICOM output folder {out} exists and is not empty; pass --overwrite to replace it")
    return out


def write_dicom_series(
    array: np.ndarray,
    affine: np.ndarray,
    folder: str | os.PathLike,
    reference: Any = None,
    method: str = "fusion",
    overwrite: bool = False,
    protect: Sequence[str | os.PathLike] = (),
    anonymize: bool = False,
    description: str | None = None,
) -> Path:
    """Write a ``(C, X, Y, Z)`` volume in [0, 1] (C = 1 grey, 3 RGB) as a Secondary Capture series.

    Args:
        array: the fused volume; values are clipped to [0, 1] and stored as ``rint(v * 255)`` (RGB by
            :func:`~monai_fusion.data.quantise.rgb_to_uint8`, which keeps the luminance).
        affine: its 4x4 RAS affine (the MRI's grid).
        folder: output folder; must not exist or be empty unless ``overwrite``.
        reference: a ``pydicom.Dataset`` whose patient/study identifiers are carried over.
        method: fusion method named in ``SeriesDescription`` / ``DerivationDescription``.
        overwrite: replace an existing non-empty folder.
        protect: input paths that must never be replaced or written into.
        anonymize: carry nothing of ``reference`` over: the patient and study identifiers of
            :data:`PATIENT_STUDY_KEYWORDS` are left empty (or absent), the Study and Frame of Reference UIDs
            are new, and ``PatientIdentityRemoved`` is ``YES``.
        description: how the sources were rendered (intensity window, colour map), appended to
            ``DerivationDescription``.

    Returns:
        The output folder. Without ``anonymize`` it carries the identifiers of ``reference`` (and of nothing
        else); no tag value is ever used to name a file (files are ``0000.dcm``, ``0001.dcm`` ...).

    Raises:
        FusionInputError: bad shape, the target is or contains an input, or exists without ``overwrite``.
    """
    out = check_dicom_target(folder, overwrite, protect)
    a = np.asarray(array, dtype=np.float32)
    if a.ndim != 4 or a.shape[0] not in (1, 3):
        raise FusionInputError(f"write_dicom_series: expected a (1|3, X, Y, Z) volume, got shape {a.shape}")
    u8 = channels_to_uint8(a)
    series = _SeriesContext.create(affine, reference, method, anonymize, description)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.part", dir=out.parent))
    try:
        for k in range(a.shape[3]):
            _save_dataset(series.slice_dataset(u8, k, tmp / f"{k:04d}.dcm"), tmp / f"{k:04d}.dcm")
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


#: Patient/study attributes of type 2: present in every file, empty when unknown.
_TYPE2_KEYWORDS: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


@dataclass
class _SeriesContext:
    """What every file of one written series shares: the identifiers carried over, the UIDs, the geometry."""

    ref: Any
    series_uid: str
    study_uid: str
    frame_uid: str
    lps: np.ndarray
    cosines: np.ndarray
    spacing: np.ndarray
    method: str
    anonymize: bool
    now: _dt.datetime
    description: str | None = None

    @classmethod
    def create(
        cls, affine: np.ndarray, reference: Any, method: str, anonymize: bool, description: str | None = None
    ) -> "_SeriesContext":
        import pydicom
        from pydicom.uid import generate_uid

        ref = reference if reference is not None and not anonymize else pydicom.Dataset()
        lps, cosines, spacing = _geometry(affine)
        return cls(
            ref=ref,
            series_uid=generate_uid(),
            study_uid=str(ref.get("StudyInstanceUID", "")) or generate_uid(),
            frame_uid=str(ref.get("FrameOfReferenceUID", "")) or generate_uid(),
            lps=lps,
            cosines=cosines,
            spacing=spacing,
            method=method,
            anonymize=anonymize,
            now=_dt.datetime.now(),
            description=description,
        )

    def slice_dataset(self, u8: np.ndarray, k: int, path: Path) -> Any:
        """The Secondary Capture dataset of slice ``k`` of the ``(C, X, Y, Z)`` uint8 volume."""
        from pydicom.dataset import FileDataset, FileMetaDataset
        from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

        from .. import __version__

        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE_SOP_CLASS
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        for kw in PATIENT_STUDY_KEYWORDS:
            if kw in self.ref:
                setattr(ds, kw, self.ref.data_element(kw).value)
        ds.StudyInstanceUID, ds.FrameOfReferenceUID = self.study_uid, self.frame_uid
        for kw in _TYPE2_KEYWORDS:
            if kw not in ds:
                setattr(ds, kw, "")
        ds.SOPClassUID, ds.SOPInstanceUID = SECONDARY_CAPTURE_SOP_CLASS, sop_uid
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = self.series_uid, 9000, k + 1
        ds.Modality, ds.ConversionType = "OT", "WSD"
        ds.BodyPartExamined = str(self.ref.get("BodyPartExamined", "")) or "BRAIN"  # unpaired: no Laterality
        ds.ImageType = ["DERIVED", "SECONDARY", "FUSION"]
        ds.SeriesDescription = f"Fused MRI ({self.method}) monai-fusion {__version__}"
        ds.DerivationDescription = (
            f"MRI fused with a CT/PET/SPECT series by '{self.method}' (monai-fusion {__version__})"
            + (f"; {self.description}" if self.description else "")
        )
        ds.SeriesDate = ds.ContentDate = self.now.strftime("%Y%m%d")
        ds.SeriesTime = ds.ContentTime = self.now.strftime("%H%M%S")
        ds.Manufacturer, ds.SoftwareVersions = "monai-fusion", __version__
        if self.anonymize:
            ds.PatientIdentityRemoved = "YES"
            ds.DeidentificationMethod = "monai-fusion --anonymize: identifiers removed, new UIDs"  # LO: 64 chars
        self._geometry_and_pixels(ds, u8, k)
        return ds

    def _geometry_and_pixels(self, ds: Any, u8: np.ndarray, k: int) -> None:
        spacing = self.spacing
        ds.ImagePositionPatient = _fmt(self.lps @ np.array([0.0, 0.0, float(k), 1.0]))[:3]
        ds.ImageOrientationPatient = _fmt(np.concatenate([self.cosines[:, 0], self.cosines[:, 1]]))
        ds.PatientOrientation = [patient_orientation(self.cosines[:, 0]), patient_orientation(self.cosines[:, 1])]
        ds.PixelSpacing = _fmt([spacing[1], spacing[0]])  # row spacing (along Y), column spacing (along X)
        ds.SliceThickness = f"{spacing[2]:.6g}"
        ds.SpacingBetweenSlices = f"{spacing[2]:.6g}"
        ds.Rows, ds.Columns = u8.shape[2], u8.shape[1]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        if u8.shape[0] == 3:
            ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
            pixels = np.ascontiguousarray(np.transpose(u8[:, :, :, k], (2, 1, 0)))  # (rows=Y, cols=X, 3)
        else:
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            pixels = np.ascontiguousarray(u8[0, :, :, k].T)  # (rows=Y, cols=X)
        ds.PixelData = pixels.tobytes()


def patient_orientation(direction: Sequence[float], tolerance: float = 1e-3) -> str:
    """DICOM ``PatientOrientation`` letters of one LPS direction: the axes it moves along, largest first.

    Secondary Capture requires ``PatientOrientation`` (Type 2C: its IOD has no Image Plane module, so a viewer
    reads the row and column directions from these letters); ``L``/``R`` for +/-x, ``P``/``A`` for +/-y, ``H``/``F``
    for +/-z, as many as the direction has components above ``tolerance`` (an oblique row gives ``LP``, say).
    """
    letters = (("L", "R"), ("P", "A"), ("H", "F"))
    v = np.asarray(direction, dtype=float)
    order = sorted(range(3), key=lambda a: -abs(v[a]))
    return "".join(letters[a][0 if v[a] > 0 else 1] for a in order if abs(v[a]) > tolerance)


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished temporary folder into place; a replaced folder is removed only afterwards."""
    if out.exists():
        old = out.with_name(f".{out.name}.old{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def patient_mismatch(mri_header: Any, other_header: Any, modality: str) -> str | None:
    """What is wrong when the two series are of different patients (their ``PatientID`` differ), else ``None``.

    The one rule that the CLI (which refuses unless ``--force``) and the MONAI Deploy app (which refuses) apply.

    Args:
        mri_header: the MRI series' header (a pydicom dataset or a mapping with ``PatientID``).
        other_header: the other series' header.
        modality: the other series' modality, named in the message.

    Returns:
        ``"the MRI is of PatientID 'A' but the PET series is of PatientID 'B'"``, or ``None`` when they agree.
    """
    pid = [str(h.get("PatientID", "")) for h in (mri_header, other_header)]
    if pid[0] == pid[1]:
        return None
    return f"the MRI is of PatientID {pid[0]!r} but the {modality} series is of PatientID {pid[1]!r}"
