"""Readers and writers for the project's file formats: PNG/JPEG/TIFF slices, NIfTI and DICOM series.

MONAI's ``LoadImage`` readers transpose 2D images (``reverse_indexing``) and raise generic errors;
these readers keep row-major ``(C, H, W)`` slices, convert palette/RGBA/16-bit inputs by explicit
rules and raise :class:`~monai_fusion.utils.FusionInputError` naming the file and what was expected
for every bad input (missing, empty, truncated, wrong channels, NaN/Inf, constant, 4D).
Volumes are returned as ``(C, X, Y, Z)`` arrays with a RAS affine, as MONAI's NIfTI reader does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.constants import COLOUR_MODALITIES, MODALITIES
from ..utils.errors import FusionInputError
from .dicom_series import read_dicom_series
from .quantise import channels_to_uint8
from .units import dicom_units, nifti_units

__all__ = [
    "IMAGE_SUFFIXES",
    "VOLUME_SUFFIXES",
    "LoadedImage",
    "read_image",
    "read_volume",
    "is_volume_path",
    "write_png",
    "write_nifti",
    "check_finite_nonconstant",
    "MAX_ELEMENTS",
]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
VOLUME_SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz")
#: Largest number of pixels/voxels a reader accepts before refusing (a memory guard).
MAX_ELEMENTS: int = 1024**3 // 2


@dataclass
class LoadedImage:
    """An image as read from disk.

    Attributes:
        array: float32 array, ``(C, H, W)`` for slices or ``(C, X, Y, Z)`` for volumes.
        affine: 4x4 RAS affine for volumes, identity-like for slices.
        meta: file name, modality, the source dtype's maximum (``value_max``) and reader notes.
    """

    array: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


def _check_file(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise FusionInputError(f"{what}: file not found: {p}")
    if p.is_file() and p.stat().st_size == 0:
        raise FusionInputError(f"{what}: {p} is empty (0 bytes)")
    return p


def _suffix(p: Path) -> str:
    name = p.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else p.suffix.lower()


def is_volume_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a volume: a NIfTI file or a folder (a DICOM series)."""
    p = Path(path)
    return p.is_dir() or _suffix(p) in VOLUME_SUFFIXES


def check_finite_nonconstant(array: np.ndarray, what: str) -> None:
    """Raise when ``array`` holds NaN/Inf or one value everywhere.

    Args:
        array: the image.
        what: how to name the image in the message (file name and modality).

    Raises:
        FusionInputError: non-finite values or a constant image.
    """
    finite = np.isfinite(array)
    if not finite.all():
        raise FusionInputError(f"{what} contains {int((~finite).sum())} NaN/Inf values; expected finite intensities")
    lo, hi = float(array.min()), float(array.max())
    if lo == hi:
        raise FusionInputError(f"{what} is constant (every value is {lo:g}); there is nothing to register or fuse")


def _check_size(p: Path, modality: str, elements: int, shape: Any) -> None:
    """The memory guard: refuse (before reading the pixels) more than :data:`MAX_ELEMENTS` values."""
    if elements > MAX_ELEMENTS:
        raise FusionInputError(
            f"{modality}: {p} is {shape} ({elements} values), more than the memory guard's limit "
            f"of {MAX_ELEMENTS} (monai_fusion.data.io.MAX_ELEMENTS); crop or downsample it first"
        )


def _pil_to_array(p: Path, modality: str) -> tuple[np.ndarray, float, str]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            _check_size(p, modality, im.size[0] * im.size[1] * max(1, len(im.getbands())), f"{im.size[0]}x{im.size[1]}")
            im.load()
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                mode = im.mode
            arr = np.asarray(im)
    except Image.DecompressionBombError as err:  # PIL's own guard, below ours for 8-bit grey images
        raise FusionInputError(f"{modality}: {p} is too large to read safely (memory guard): {err}") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as err:
        raise FusionInputError(f"{modality}: {p} could not be read as an image (truncated or corrupt?): {err}") from err
    note = mode
    if arr.ndim == 3 and arr.shape[-1] in (2, 4):  # LA / RGBA: alpha must be opaque
        alpha = arr[..., -1]
        amax = np.iinfo(arr.dtype).max if np.issubdtype(arr.dtype, np.integer) else 1.0
        if not np.all(alpha == amax):
            raise FusionInputError(
                f"{modality}: {p} has a transparent alpha channel ({mode}); expected an opaque grey or RGB image"
            )
        arr = arr[..., :-1]
    if np.issubdtype(arr.dtype, np.integer):
        value_max = float(np.iinfo(arr.dtype).max)
        if mode in ("I", "I;16", "I;16B", "I;16L") and arr.max() <= 65535:
            value_max = 65535.0
    elif arr.dtype == bool:
        value_max = 1.0
    else:
        value_max = float("nan")  # float images: no fixed range, normalise by percentiles
    return arr, value_max, note


def read_image(path: str | os.PathLike, modality: str = "MRI") -> LoadedImage:
    """Read a 2D slice (PNG, JPEG, TIFF, BMP) as a float32 ``(C, H, W)`` array.

    Grey modalities (MRI, CT) give ``C == 1``; an RGB file whose channels are equal is accepted as
    grey. Colour modalities (PET, SPECT) give ``C == 3`` for RGB files and ``C == 1`` for grey ones.
    Palette images are expanded, opaque alpha channels dropped. Values keep the file's scale
    (0..255 for 8-bit); ``meta["value_max"]`` holds the dtype's maximum (NaN for float files).

    Args:
        path: the image file.
        modality: one of ``MRI``, ``CT``, ``PET``, ``SPECT``.

    Returns:
        The image with its metadata.

    Raises:
        FusionInputError: missing/empty/corrupt file, unsupported extension, wrong channel count,
            NaN/Inf, constant image, or more pixels than the memory guard allows.
    """
    if modality not in MODALITIES:
        raise FusionInputError(f"modality={modality!r} is not one of {', '.join(MODALITIES)}")
    p = _check_file(path, modality)
    if p.is_dir() or _suffix(p) not in IMAGE_SUFFIXES:
        raise FusionInputError(f"{modality}: {p} is not a 2D image file; expected one of {', '.join(IMAGE_SUFFIXES)}")
    arr, value_max, note = _pil_to_array(p, modality)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 3 and arr.shape[-1] == 3:
        arr = np.moveaxis(arr, -1, 0)
        if modality not in COLOUR_MODALITIES:
            if np.array_equal(arr[0], arr[1]) and np.array_equal(arr[0], arr[2]):
                arr = arr[:1]
            else:
                raise FusionInputError(
                    f"{modality}: {p} is a colour (RGB) image; expected a grey-level image for {modality}"
                )
    else:
        raise FusionInputError(f"{modality}: {p} has array shape {arr.shape}; expected a grey or RGB 2D image")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if min(out.shape[1:]) < 2:
        raise FusionInputError(f"{modality}: {p} is {out.shape[1]}x{out.shape[2]} pixels; expected at least 2x2")
    check_finite_nonconstant(out, f"{modality}: {p}")
    # a raster file has no physical pixel size: its identity affine is a placeholder, not a measurement
    meta = {
        "filename_or_obj": str(p),
        "modality": modality,
        "value_max": value_max,
        "mode": note,
        "spacing_known": False,
    }
    return LoadedImage(out, np.eye(4), meta)


def _read_nifti(p: Path, modality: str) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    try:
        img = nib.load(str(p))
        _check_size(p, modality, int(np.prod(img.shape, dtype=np.int64)), f"shape {img.shape}")
        data = np.asarray(img.dataobj, dtype=np.float32)
    except FusionInputError:
        raise
    except Exception as err:  # nibabel raises many types for truncated/corrupt files
        raise FusionInputError(f"{modality}: {p} could not be read as NIfTI (truncated or corrupt?): {err}") from err
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise FusionInputError(
            f"{modality}: {p} has shape {data.shape}; expected a 3D volume (4D series are not fused)"
        )
    return data, np.asarray(img.affine, dtype=np.float64)


def read_volume(path: str | os.PathLike, modality: str = "MRI", series_uid: str | None = None) -> LoadedImage:
    """Read a 3D volume: a NIfTI file (nibabel) or a DICOM series folder (SimpleITK).

    Args:
        path: ``.nii``/``.nii.gz`` file or a folder holding one DICOM series.
        modality: one of ``MRI``, ``CT``, ``PET``, ``SPECT``.
        series_uid: which series to read when the folder holds several.

    Returns:
        ``(1, X, Y, Z)`` float32 array with a RAS affine; ``meta`` holds the file name, the units where they are
        known (``units``: ``HU``, ``SUV`` with ``suv_factor``; see :mod:`~monai_fusion.data.units`) and, for
        DICOM, the series UID, file list and the first slice's tags.

    Raises:
        FusionInputError: missing/corrupt input, 4D data, several series without a choice,
            NaN/Inf or a constant volume.
    """

    if modality not in MODALITIES:
        raise FusionInputError(f"modality={modality!r} is not one of {', '.join(MODALITIES)}")
    p = _check_file(path, modality)
    meta: dict[str, Any] = {"filename_or_obj": str(p), "modality": modality, "value_max": float("nan")}
    if p.is_dir():
        arr, affine, extra = read_dicom_series(p, modality, series_uid)
        meta.update(extra)
    elif _suffix(p) in VOLUME_SUFFIXES:
        arr, affine = _read_nifti(p, modality)
    else:
        raise FusionInputError(
            f"{modality}: {p} is not a volume; expected a .nii/.nii.gz file or a DICOM series folder"
        )
    check_finite_nonconstant(arr, f"{modality}: {p}")
    low = meta["value_min"] = float(arr.min())  # a CT in HU holds air near -1000, an MRI never (units, swap check)
    meta.update(_dicom_units(meta["dicom_files"], modality, low) if p.is_dir() else nifti_units(low, modality))
    return LoadedImage(np.ascontiguousarray(arr[None]), affine, meta)


def _dicom_units(files: list[str], modality: str, value_min: float) -> dict[str, Any]:
    """Units of a DICOM series from its first file's tags (:func:`~monai_fusion.data.units.dicom_units`)."""
    if not files or modality == "MRI":
        return {}
    import pydicom

    return dicom_units(pydicom.dcmread(files[0], stop_before_pixels=True), modality, value_min)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FusionInputError(f"output {path} exists; pass overwrite=True (--overwrite) to replace it")


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.part{os.getpid()}")


def write_png(array: np.ndarray, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a ``(C, H, W)`` image in [0, 1] as an 8-bit grey (C=1) or RGB (C=3) PNG, atomically.

    RGB is put on the 8-bit grid by :func:`~monai_fusion.data.quantise.rgb_to_uint8`, so the file's luminance is the
    image's, rounded.

    Args:
        array: image in [0, 1]; values outside are clipped.
        path: output file.
        overwrite: replace an existing file.

    Returns:
        The written path.
    """
    from PIL import Image

    p = Path(path)
    _refuse_existing(p, overwrite)
    a = np.asarray(array, dtype=np.float32)
    if not (a.ndim == 3 and a.shape[0] in (1, 3) or a.ndim == 2):
        raise FusionInputError(f"write_png: expected (1|3, H, W) or (H, W), got shape {a.shape} for {p}")
    u8 = channels_to_uint8(a if a.ndim == 3 else a[None])
    u8 = u8[0] if u8.shape[0] == 1 else np.moveaxis(u8, 0, -1)
    tmp = _atomic_target(p)
    Image.fromarray(u8).save(tmp, format="PNG")
    os.replace(tmp, p)
    return p


def write_nifti(
    array: np.ndarray,
    affine: np.ndarray,
    path: str | os.PathLike,
    overwrite: bool = False,
    header: Any = None,
    description: str | None = None,
) -> Path:
    """Write a ``(C, X, Y, Z)`` or ``(X, Y, Z)`` volume as NIfTI, atomically (RGB as a 4th dim of 3).

    Args:
        array: the volume.
        affine: 4x4 RAS affine.
        path: output ``.nii`` or ``.nii.gz`` file.
        overwrite: replace an existing file.
        header: optional nibabel header to copy (e.g. the MRI's).
        description: text for the header's ``descrip`` field (how the volume was made; cut to its 80 bytes).

    Returns:
        The written path.
    """
    import nibabel as nib

    p = Path(path)
    _refuse_existing(p, overwrite)
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 4:
        a = a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)
    img = nib.Nifti1Image(a, affine, header=header)
    img.set_data_dtype(np.float32)
    if description is not None:
        img.header["descrip"] = description.encode("ascii", "replace")[:80]
    tmp = _atomic_target(p)
    tmp = tmp.with_name(tmp.name + ("".join(p.suffixes[-2:]) if p.name.endswith(".nii.gz") else ".nii"))
    nib.save(img, str(tmp))
    os.replace(tmp, p)
    return p
