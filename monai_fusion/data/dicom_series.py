"""Read DICOM series (SimpleITK/GDCM): list the series of a folder, read one as an ``(X, Y, Z)`` RAS volume.

Used by :func:`~monai_fusion.data.io.read_volume`; what is left in a folder beside the chosen series is
reported, never silently ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.errors import FusionInputError

__all__ = ["list_dicom_series", "read_dicom_series"]


def _sitk_to_ras(image: Any) -> tuple[np.ndarray, np.ndarray]:
    """SimpleITK image (LPS physical space) -> (X, Y, Z) array and RAS affine."""
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(image).astype(np.float32)  # (Z, Y, X)
    arr = np.transpose(arr, (2, 1, 0))
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    origin = np.asarray(image.GetOrigin(), dtype=np.float64)
    lps = np.eye(4)
    lps[:3, :3] = direction * spacing[None, :]
    lps[:3, 3] = origin
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return arr, flip @ lps


def list_dicom_series(folder: str | os.PathLike) -> dict[str, list[str]]:
    """Map each DICOM series UID found in ``folder`` to its sorted file names (SimpleITK/GDCM)."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    try:
        return {
            uid: list(reader.GetGDCMSeriesFileNames(str(folder), uid)) for uid in reader.GetGDCMSeriesIDs(str(folder))
        }
    except RuntimeError as err:  # GDCM throws on some corrupt headers instead of skipping the file
        raise FusionInputError(
            f"DICOM folder {folder} holds a file GDCM cannot parse (corrupt header?): "
            f"{str(err).strip().splitlines()[-1]}"
        ) from err


def _dicom_leftovers(folder: Path, series: dict[str, list[str]], series_uid: str) -> list[str]:
    """Files of ``folder`` left out of every readable series although they look like slices of ``series_uid``.

    GDCM silently skips a truncated slice or one without pixel data, which shifts the slices after it. A file
    counts when its header names ``series_uid`` or when it carries the DICOM magic (``DICM`` at byte 128) but
    its header cannot be parsed; other objects (reports, other series) are ignored.
    """
    import pydicom

    listed = {Path(f).resolve() for files in series.values() for f in files}
    left = []
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith(".") or f.name.upper() == "DICOMDIR" or f.resolve() in listed:
            continue
        try:
            uid = str(
                pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"]).get(
                    "SeriesInstanceUID", ""
                )
            )
        except Exception:  # pydicom raises several types for corrupt headers
            with f.open("rb") as fh:
                uid = series_uid if fh.read(132)[128:132] == b"DICM" else ""
        if uid == series_uid:
            left.append(f.name)
    return left


def read_dicom_series(p: Path, modality: str, series_uid: str | None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read one DICOM series of folder ``p`` as an ``(X, Y, Z)`` float32 array with its RAS affine.

    Args:
        p: the folder.
        modality: the expected modality, named in messages.
        series_uid: the series to read when the folder holds several.

    Returns:
        ``(array, affine, meta)``; ``meta`` holds the series UID, its files and its tags.
    """
    import SimpleITK as sitk

    from .dicom import series_files
    from .io import _check_size  # io imports this module; its memory guard is taken at call time

    series_uid, files = series_files(p, series_uid, modality)
    left = _dicom_leftovers(p, list_dicom_series(p), series_uid)
    if left:
        raise FusionInputError(
            f"{modality}: {len(left)} DICOM file(s) in {p} belong to no readable series "
            f"(truncated, or without pixel data?): {', '.join(left[:5])}"
            + (" ..." if len(left) > 5 else "")
            + "; the series would have missing slices"
        )
    info = sitk.ImageFileReader()
    info.SetFileName(files[0])
    try:
        info.ReadImageInformation()
    except RuntimeError as err:
        raise FusionInputError(f"{modality}: {files[0]} could not be read as a DICOM image: {err}") from err
    size = [int(n) for n in info.GetSize()[:2]]
    _check_size(
        p, modality, size[0] * size[1] * len(files) * info.GetNumberOfComponents(), f"{size[0]}x{size[1]}x{len(files)}"
    )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    reader.LoadPrivateTagsOff()
    try:
        image = reader.Execute()
    except RuntimeError as err:
        lines = str(err).strip().splitlines() or [""]
        why = next((ln.split("): ", 1)[-1] for ln in lines if "ITK ERROR" in ln), lines[-1])
        raise FusionInputError(f"{modality}: DICOM series {series_uid} in {p} could not be read: {why}") from err
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise FusionInputError(f"{modality}: DICOM series in {p} is not grey-level; expected one sample per pixel")
    if image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
    if image.HasMetaDataKey("ITK_non_uniform_sampling_deviation"):
        raise FusionInputError(
            f"{modality}: DICOM series {series_uid} in {p} has non-uniformly spaced slices "
            f"(deviation {image.GetMetaData('ITK_non_uniform_sampling_deviation')} mm): missing "
            "or duplicated slices; the volume's geometry would be wrong"
        )
    arr, affine = _sitk_to_ras(image)
    tags = {k: reader.GetMetaData(0, k) for k in reader.GetMetaDataKeys(0)}
    return arr, affine, {"series_uid": series_uid, "dicom_files": files, "dicom_tags": tags}
