"""The bad-input matrix of the library's entry points: one row per (entry point, bad input).

Each row states its expected outcome: a defined result (checked) or a
:class:`~monai_fusion.utils.FusionInputError` whose message names the input (matched). After an error no
output file and no temporary file is left. The CLI and bundle rows are in ``test_cli_matrix.py``.
"""

from __future__ import annotations

import gzip
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch

from monai_fusion.data import io as fio
from monai_fusion.data.datalist import find_pairs
from monai_fusion.data.io import read_image, read_volume
from monai_fusion.engines.inference import fuse_images, fuse_sample
from monai_fusion.fusers import get_fuser
from monai_fusion.fusers.learned import NetworkFuser
from monai_fusion.metrics import compute_metrics
from monai_fusion.transforms.presets import fusion_preprocess
from monai_fusion.utils import FusionInputError

from .conftest import atlas, dicom_series, files_under, grey, rgb, save_nifti, save_png, volume


@dataclass(frozen=True)
class Row:
    """One row: ``run(folder)`` builds the input under ``folder`` and calls the entry point."""

    id: str
    entry: str
    case: str
    expect: str
    run: Callable[[Path], Any]
    match: str | None = None  # regex of the FusionInputError; None: a result is expected
    check: Callable[[Any], None] | None = None


def _png_header(w: int, h: int) -> bytes:
    """A PNG whose header declares ``w x h`` pixels (the pixel data is not there)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _write(d: Path, name: str, data: bytes) -> Path:
    p = d / "in" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def _png_bytes(a: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _float_tiff(d: Path, name: str, a: np.ndarray) -> Path:
    from PIL import Image

    p = d / "in" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a.astype(np.float32)).save(p)
    return p


def _nifti_bytes(d: Path, vol: np.ndarray) -> bytes:
    p = save_nifti(d / "tmp_build" / "v.nii.gz", vol)
    data = p.read_bytes()
    shutil.rmtree(p.parent)
    return data


def _series(d: Path, name: str = "series", **kw: Any) -> Path:
    vol = np.random.default_rng(0).integers(0, 1000, (5, 12, 10))
    return dicom_series(d / "in" / name, vol, kw.pop("uid", "1.2.826.0.1.3680043.8.498.100"), **kw)


def _drop_pixels(folder: Path, which: slice) -> Path:
    for f in sorted(folder.iterdir())[which]:
        ds = pydicom.dcmread(f)
        del ds.PixelData
        ds.save_as(f)
    return folder


def _truncate_one(folder: Path) -> Path:
    f = sorted(folder.iterdir())[2]
    f.write_bytes(f.read_bytes()[:-60])
    return folder


def _huge_nifti(d: Path) -> Path:
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((2048, 2048, 512))
    hdr.set_data_dtype(np.float32)
    p = d / "in" / "huge.nii"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(hdr.binaryblock + b"\0" * 4 + b"\0" * 1024)  # header + a little data: never read
    return p


def _pair(d: Path, mri: np.ndarray, other: np.ndarray, names: tuple[str, str] = ("mri.png", "other.png")) -> dict:
    return {
        "mri": str(save_png(d / "in" / names[0], mri)),
        "other": str(save_png(d / "in" / names[1], other)),
        "modality": "PET" if other.ndim == 3 else "CT",
    }


def _pre(register: bool = False) -> Callable[[dict], dict]:
    return fusion_preprocess(register=register)


def _permuted_pair(d: Path) -> dict:
    """The same physical volume, the other one stored sagittally (axes permuted, affine permuted with them)."""
    vol = volume((24, 22, 20))
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    perm = np.transpose(vol, (2, 0, 1))  # voxel (k, i, j) = vol[i, j, k]
    aff_p = np.zeros((4, 4))
    aff_p[:3, 0], aff_p[:3, 1], aff_p[:3, 2], aff_p[3, 3] = aff[:3, 2], aff[:3, 0], aff[:3, 1], 1.0
    return {
        "mri": str(save_nifti(d / "in" / "mri.nii.gz", vol, aff)),
        "other": str(save_nifti(d / "in" / "ct_sagittal.nii.gz", perm + 5, aff_p)),
        "modality": "CT",
    }


def _fuse(
    name: str, shape: tuple[int, ...], fill: Callable[[tuple[int, ...]], torch.Tensor] | None = None, **kw: Any
) -> torch.Tensor:
    small = {"channels": 8, "random_init": True}  # a narrow random network: the same code, less time
    fuser = get_fuser(name, **(small if name in ("poster", "msrpan", "msdra") else {}), **kw)
    g = torch.Generator().manual_seed(0)
    make = fill or (lambda s: torch.rand(s, generator=g))
    return fuser.fuse(make(shape), make(shape))


def _check_shape_range(shape: tuple[int, ...]) -> Callable[[torch.Tensor], None]:
    def check(out: torch.Tensor) -> None:
        assert tuple(out.shape) == shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0

    return check


def _metrics(f: torch.Tensor, a: torch.Tensor, b: torch.Tensor, names: tuple[str, ...] = ("SSIM", "MI")) -> dict:
    return {k: float(v) for k, v in compute_metrics(f, a, b, list(names)).items()}


_T = torch.rand(1, 1, 48, 48, generator=torch.Generator().manual_seed(0)) * 255


def _with(t: torch.Tensor, value: float) -> torch.Tensor:
    t = t.clone()
    t[0, 0, 5, 5] = value
    return t


ROWS: list[Row] = [
    # ------------------------------------------------------------------------------------------- datalists
    Row(
        "datalist-unicode-spaces",
        "find_pairs",
        "paths with spaces and unicode",
        "result: pairs found, names kept",
        lambda d: find_pairs(atlas(d / "in" / "my data ü 東京", ("1001", "2 é 001"))),
        check=lambda r: (
            [it["name"] for it in r.items] == ["1001", "2 é 001"] and len(r.items) == 2 or pytest.fail(str(r.items))
        ),
    ),
    Row(
        "datalist-code-like-names",
        "find_pairs",
        "names like `$import os`, `@x`, `%y`",
        "result: names are data, kept verbatim",
        lambda d: find_pairs(atlas(d / "in", ("$import os001", "@mri%x002"))),
        check=lambda r: (
            sorted(it["name"] for it in r.items) == ["$import os001", "@mri%x002"] or pytest.fail(str(r.items))
        ),
    ),
    Row(
        "datalist-wrong-extension",
        "find_pairs",
        "wrong extension (.txt, .nii beside the PNGs)",
        "result: non-image files are not paired",
        lambda d: (
            _write(d, "PET-MRI/MRI/1003.txt", b"x"),
            _write(d, "PET-MRI/PET/1003.nii", b"x"),
            find_pairs(atlas(d / "in")),
        )[-1],
        check=lambda r: len(r.items) == 2 and not r.unpaired or pytest.fail(r.summary()),
    ),
    Row(
        "datalist-empty-file",
        "find_pairs",
        "empty (0-byte) image files",
        "result: listed (names only); the load names the file",
        lambda d: (
            _write(d, "PET-MRI/MRI/1009.png", b""),
            _write(d, "PET-MRI/PET/1009.png", b""),
            find_pairs(atlas(d / "in")),
        )[-1],
        check=lambda r: len(r.items) == 3 or pytest.fail(r.summary()),
    ),
    Row(
        "datalist-empty-root",
        "find_pairs",
        "empty folder",
        "error: names the root and the pair folders",
        lambda d: find_pairs((d / "in").mkdir(parents=True) or d / "in"),
        match=r"in has none of the pair folders",
    ),
    Row(
        "datalist-missing-modality",
        "find_pairs",
        "MRI/ without its partner folder",
        "error: names the missing folder",
        lambda d: find_pairs((d / "in" / "CT-MRI" / "MRI").mkdir(parents=True) or d / "in"),
        match=r"folder .*CT-MRI/CT is missing",
    ),
    # ------------------------------------------------------------------------------------------ read_image
    Row(
        "image-empty",
        "read_image",
        "empty file",
        "error: file is empty",
        lambda d: read_image(_write(d, "empty.png", b"")),
        match=r"empty\.png is empty \(0 bytes\)",
    ),
    Row(
        "image-truncated-png",
        "read_image",
        "truncated PNG",
        "error: could not be read",
        lambda d: read_image(_write(d, "cut.png", _png_bytes(grey(64, 64))[:300])),
        match=r"cut\.png could not be read",
    ),
    Row(
        "image-wrong-extension-txt",
        "read_image",
        "wrong extension (.txt)",
        "error: not a 2D image file",
        lambda d: read_image(_write(d, "mri.txt", _png_bytes(grey()))),
        match=r"mri\.txt is not a 2D image file",
    ),
    Row(
        "image-nifti-named-png",
        "read_image",
        "wrong extension (NIfTI bytes named .png)",
        "error: could not be read",
        lambda d: read_image(_write(d, "vol.png", _nifti_bytes(d, volume()))),
        match=r"vol\.png could not be read",
    ),
    Row(
        "image-16bit",
        "read_image",
        "16-bit grey PNG",
        "result: full 16-bit range kept, value_max 65535",
        lambda d: read_image(save_png(d / "in" / "deep.png", grey().astype(np.uint16) * 257)),
        check=lambda r: r.meta["value_max"] == 65535.0 and r.array.max() > 255 or pytest.fail(str(r.meta)),
    ),
    Row(
        "image-float-tiff",
        "read_image",
        "float32 TIFF",
        "result: float values kept, no fixed range (percentiles later)",
        lambda d: read_image(_float_tiff(d, "f.tif", grey() / 7.0)),
        check=lambda r: np.isnan(r.meta["value_max"]) and r.array.dtype == np.float32 or pytest.fail(str(r.meta)),
    ),
    Row(
        "image-rgba-opaque",
        "read_image",
        "RGBA PNG, opaque",
        "result: alpha dropped",
        lambda d: read_image(
            save_png(d / "in" / "a.png", np.dstack([rgb(), np.full((32, 32), 255, np.uint8)]), "RGBA"), "PET"
        ),
        check=lambda r: r.array.shape == (3, 32, 32) or pytest.fail(str(r.array.shape)),
    ),
    Row(
        "image-rgba-transparent",
        "read_image",
        "RGBA PNG with transparency",
        "error: transparent alpha",
        lambda d: read_image(save_png(d / "in" / "t.png", np.dstack([rgb(), grey()]), "RGBA"), "PET"),
        match=r"t\.png has a transparent alpha channel",
    ),
    Row(
        "image-palette",
        "read_image",
        "palette PNG",
        "result: expanded to RGB (grey for MRI when R=G=B)",
        lambda d: read_image(save_png(d / "in" / "p.png", rgb(), "P"), "PET"),
        check=lambda r: r.array.shape == (3, 32, 32) or pytest.fail(str(r.array.shape)),
    ),
    Row(
        "image-1-pixel",
        "read_image",
        "1-pixel image",
        "error: at least 2x2",
        lambda d: read_image(save_png(d / "in" / "one.png", np.array([[7]], np.uint8))),
        match=r"one\.png is 1x1 pixels",
    ),
    Row(
        "image-very-large",
        "read_image",
        "very large image (60000 x 60000 declared)",
        "error: memory guard, before reading the pixels",
        lambda d: read_image(_write(d, "huge.png", _png_header(60000, 60000))),
        match=r"huge\.png is too large to read safely \(memory guard\)",
    ),
    Row(
        "image-guard-limit",
        "read_image",
        "image above MAX_ELEMENTS (limit lowered to 1000)",
        "error: memory guard names the limit",
        lambda d: _with_limit(1000, lambda: read_image(save_png(d / "in" / "big.png", grey(40, 40)))),
        match=r"big\.png is 40x40 \(1600 values\), more than the memory guard's limit of 1000",
    ),
    Row(
        "image-nan",
        "read_image",
        "NaN pixels (float TIFF)",
        "error: NaN/Inf",
        lambda d: read_image(_float_tiff(d, "nan.tif", np.where(grey() > 200, np.nan, grey()))),
        match=r"nan\.tif contains \d+ NaN/Inf values",
    ),
    Row(
        "image-inf",
        "read_image",
        "Inf pixels (float TIFF)",
        "error: NaN/Inf",
        lambda d: read_image(_float_tiff(d, "inf.tif", np.where(grey() > 200, np.inf, grey()))),
        match=r"inf\.tif contains \d+ NaN/Inf values",
    ),
    Row(
        "image-constant",
        "read_image",
        "constant image",
        "error: constant",
        lambda d: read_image(save_png(d / "in" / "c.png", np.full((16, 16), 9, np.uint8))),
        match=r"c\.png is constant",
    ),
    Row(
        "image-colour-mri",
        "read_image",
        "RGB image given as MRI",
        "error: expected grey-level",
        lambda d: read_image(save_png(d / "in" / "colour.png", rgb()), "MRI"),
        match=r"colour\.png is a colour \(RGB\) image",
    ),
    Row(
        "image-unicode-path",
        "read_image",
        "path with spaces and unicode",
        "result: read",
        lambda d: read_image(save_png(d / "in" / "dossier été" / "IRM 脳 1.png", grey())),
        check=lambda r: r.array.shape == (1, 32, 32) or pytest.fail(str(r.array.shape)),
    ),
    # ----------------------------------------------------------------------------------------- read_volume
    Row(
        "volume-empty",
        "read_volume",
        "empty file",
        "error: file is empty",
        lambda d: read_volume(_write(d, "e.nii.gz", b"")),
        match=r"e\.nii\.gz is empty",
    ),
    Row(
        "volume-truncated-gz",
        "read_volume",
        "truncated NIfTI (.nii.gz)",
        "error: could not be read as NIfTI",
        lambda d: read_volume(_write(d, "cut.nii.gz", _nifti_bytes(d, volume())[:400])),
        match=r"cut\.nii\.gz could not be read as NIfTI",
    ),
    Row(
        "volume-truncated-nii",
        "read_volume",
        "truncated NIfTI (.nii)",
        "error: could not be read as NIfTI",
        lambda d: read_volume(_write(d, "cut.nii", gzip.decompress(_nifti_bytes(d, volume()))[:1000])),
        match=r"cut\.nii could not be read as NIfTI",
    ),
    Row(
        "volume-png-named-nii",
        "read_volume",
        "wrong extension (PNG bytes named .nii.gz)",
        "error: could not be read",
        lambda d: read_volume(_write(d, "slice.nii.gz", _png_bytes(grey()))),
        match=r"slice\.nii\.gz could not be read",
    ),
    Row(
        "volume-wrong-extension",
        "read_volume",
        "wrong extension (.mha)",
        "error: not a volume",
        lambda d: read_volume(_write(d, "v.mha", b"ObjectType = Image\n")),
        match=r"v\.mha is not a volume",
    ),
    Row(
        "volume-4d",
        "read_volume",
        "4D NIfTI (3 frames)",
        "error: expected a 3D volume",
        lambda d: read_volume(save_nifti(d / "in" / "pet4d.nii.gz", np.stack([volume()] * 3, -1))),
        match=r"pet4d\.nii\.gz has shape \(20, 18, 6, 3\); expected a 3D volume",
    ),
    Row(
        "volume-4d-one-frame",
        "read_volume",
        "4D NIfTI with one frame",
        "result: read as 3D",
        lambda d: read_volume(save_nifti(d / "in" / "one.nii.gz", volume()[..., None])),
        check=lambda r: r.array.shape == (1, 20, 18, 6) or pytest.fail(str(r.array.shape)),
    ),
    Row(
        "volume-int16",
        "read_volume",
        "16-bit integer NIfTI",
        "result: float32, percentile window later",
        lambda d: read_volume(save_nifti(d / "in" / "i16.nii.gz", (volume() * 10).astype(np.int16))),
        check=lambda r: r.array.dtype == np.float32 and r.array.max() > 1000 or pytest.fail(str(r.array.max())),
    ),
    Row(
        "volume-nan",
        "read_volume",
        "NaN voxels",
        "error: NaN/Inf",
        lambda d: read_volume(save_nifti(d / "in" / "nan.nii.gz", np.where(volume() > 120, np.nan, volume()))),
        match=r"nan\.nii\.gz contains \d+ NaN/Inf",
    ),
    Row(
        "volume-inf",
        "read_volume",
        "Inf voxels",
        "error: NaN/Inf",
        lambda d: read_volume(save_nifti(d / "in" / "inf.nii.gz", np.where(volume() > 120, -np.inf, volume()))),
        match=r"inf\.nii\.gz contains \d+ NaN/Inf",
    ),
    Row(
        "volume-constant",
        "read_volume",
        "constant volume",
        "error: constant",
        lambda d: read_volume(save_nifti(d / "in" / "flat.nii.gz", np.zeros((8, 8, 4), np.float32))),
        match=r"flat\.nii\.gz is constant",
    ),
    Row(
        "volume-very-large",
        "read_volume",
        "very large NIfTI (2048 x 2048 x 512 declared)",
        "error: memory guard, from the header only",
        lambda d: read_volume(_huge_nifti(d)),
        match=r"huge\.nii is shape \(2048, 2048, 512\) .*memory guard",
    ),
    Row(
        "volume-sagittal-nifti",
        "read_volume",
        "non-axial orientation (sagittal NIfTI affine)",
        "result: voxels as stored, affine kept",
        lambda d: read_volume(
            save_nifti(
                d / "in" / "sag.nii.gz",
                volume(),
                np.array([[0, 0, 2.0, 0], [2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 1]]),
            )
        ),
        check=lambda r: np.allclose(r.affine[:3, 2], [2, 0, 0]) or pytest.fail(str(r.affine)),
    ),
    Row(
        "dicom-empty-file",
        "read_volume",
        "DICOM folder holding an empty file",
        "error: no DICOM series",
        lambda d: read_volume(_write(d, "dcm/x.dcm", b"").parent),
        match=r"dcm holds no DICOM series",
    ),
    Row(
        "dicom-truncated-slice",
        "read_volume",
        "truncated DICOM slice",
        "error: names the file left out",
        lambda d: read_volume(_truncate_one(_series(d))),
        match=r"1 DICOM file\(s\) in .*series belong to no readable series .*100_002\.dcm",
    ),
    Row(
        "dicom-no-pixel-data",
        "read_volume",
        "DICOM without pixel data (every slice)",
        "error: no DICOM series",
        lambda d: read_volume(_drop_pixels(_series(d), slice(None))),
        match=r"series holds no DICOM series",
    ),
    Row(
        "dicom-one-slice-no-pixels",
        "read_volume",
        "DICOM series with one slice missing its pixel data",
        "error: names the slice (GDCM would skip it and shift the rest)",
        lambda d: read_volume(_drop_pixels(_series(d), slice(1, 2))),
        match=r"belong to no readable series .*100_001\.dcm",
    ),
    Row(
        "dicom-mixed-series",
        "read_volume",
        "folder with two DICOM series",
        "error: lists the series and --mri-series",
        lambda d: read_volume((_series(d), _series(d, uid="1.2.826.0.1.3680043.8.498.200"))[1]),
        match=r"holds 2 DICOM series; choose one by UID \(--mri-series",
    ),
    Row(
        "dicom-mixed-sizes",
        "read_volume",
        "one series UID, slices of two sizes",
        "error: size mismatch named",
        lambda d: read_volume(_mixed_sizes(d)),
        match=r"could not be read: Size mismatch",
    ),
    Row(
        "dicom-missing-slice",
        "read_volume",
        "series with a gap (non-uniform slice positions)",
        "error: non-uniformly spaced slices",
        lambda d: read_volume(_series(d, positions=[0.0, 2.0, 4.0, 8.0, 10.0])),
        match=r"has non-uniformly spaced slices",
    ),
    Row(
        "dicom-sagittal",
        "read_volume",
        "non-axial orientation (sagittal DICOM series)",
        "result: read, RAS affine follows ImageOrientationPatient",
        lambda d: read_volume(_series(d, iop="0\\1\\0\\0\\0\\-1")),
        check=lambda r: (
            np.allclose(np.abs(r.affine[:3, :3]) > 0.5, [[0, 0, 1], [1, 0, 0], [0, 1, 0]]) or pytest.fail(str(r.affine))
        ),
    ),
    Row(
        "dicom-unicode-path",
        "read_volume",
        "DICOM folder path with spaces and unicode",
        "result: read",
        lambda d: read_volume(_series(d, "séries IRM ü")),
        check=lambda r: r.array.shape == (1, 10, 12, 5) or pytest.fail(str(r.array.shape)),
    ),
    # -------------------------------------------------------------------------------------- transforms preset
    Row(
        "preset-mismatched-shapes",
        "fusion_preprocess",
        "mismatched PNG shapes, no registration",
        "error: names both files and sizes (PNG has no pixel size)",
        lambda d: _pre()(_pair(d, grey(32, 32), grey(32, 40, 1))),
        match=r"other \(.*other\.png\) is 32x40 pixels but mri .* carry no pixel size",
    ),
    Row(
        "preset-mismatched-registered",
        "fusion_preprocess",
        "mismatched PNG shapes, with registration",
        "error: refused before registration could misplace them",
        lambda d: _pre(True)(_pair(d, grey(40, 40), rgb(48, 36))),
        match=r"is 48x36 pixels but mri .* registration would misplace them",
    ),
    Row(
        "preset-16bit-and-8bit",
        "fusion_preprocess",
        "16-bit MRI with an 8-bit CT",
        "result: both in [0, 1]",
        lambda d: _pre()(
            {
                "mri": str(save_png(d / "in" / "m.png", grey().astype(np.uint16) * 257)),
                "other": str(save_png(d / "in" / "c.png", grey(seed=3))),
                "modality": "CT",
            }
        ),
        check=lambda r: (
            all(0 <= float(r[k].min()) and float(r[k].max()) <= 1 and float(r[k].max()) > 0.5 for k in ("mri", "other"))
            or pytest.fail("range")
        ),
    ),
    Row(
        "preset-float-pair",
        "fusion_preprocess",
        "float TIFF pair",
        "result: percentile-windowed to [0, 1]",
        lambda d: _pre()(
            {
                "mri": str(_float_tiff(d, "m.tif", grey() * 3.5)),
                "other": str(_float_tiff(d, "c.tif", grey(seed=2) - 50.0)),
                "modality": "CT",
            }
        ),
        check=lambda r: float(r["other"].min()) == 0.0 and float(r["other"].max()) == 1.0 or pytest.fail("range"),
    ),
    Row(
        "preset-almost-constant",
        "fusion_preprocess",
        "almost constant float image (one outlier)",
        "error: empty percentile window",
        lambda d: _pre()(
            {
                "mri": str(_float_tiff(d, "m.tif", grey() * 1.0)),
                "other": str(_float_tiff(d, "flat.tif", _with_outlier(np.zeros((32, 32))))),
                "modality": "CT",
            }
        ),
        match=r"flat\.tif has an empty percentile window",
    ),
    Row(
        "preset-tiny-registered",
        "fusion_preprocess",
        "3x3 images with registration",
        "error: too small to register",
        lambda d: _pre(True)(_pair(d, grey(3, 3), grey(3, 3, 1))),
        match=r"too small to register",
    ),
    Row(
        "preset-2d-with-volume",
        "fusion_preprocess",
        "a 2D MRI with a volume",
        "error: shapes differ",
        lambda d: _pre()(
            {
                "mri": str(save_png(d / "in" / "m.png", grey())),
                "other": str(save_nifti(d / "in" / "ct.nii.gz", volume())),
                "modality": "CT",
            }
        ),
        match=r"ct\.nii\.gz\) is \(20, 18, 6\) but mri",
    ),
    Row(
        "preset-non-axial-registered",
        "fusion_preprocess",
        "non-axial orientation (CT stored sagittally)",
        "result: registration resamples it onto the MRI's axial grid",
        lambda d: _pre(True)(_permuted_pair(d)),
        check=lambda r: (
            tuple(r["other"].shape) == (1, 24, 22, 20)
            and float(np.corrcoef(np.asarray(r["other"]).ravel(), np.asarray(r["mri"]).ravel())[0, 1]) > 0.9
            or pytest.fail("not aligned")
        ),
    ),
    # -------------------------------------------------------------------------------------------- metrics
    Row(
        "metrics-inf-source",
        "compute_metrics",
        "Inf in a source",
        "error: NaN/Inf named",
        lambda d: _metrics(_T, _T, _with(_T, float("inf"))),
        match=r"source B .* contains 1 NaN/Inf",
    ),
    Row(
        "metrics-1-pixel",
        "compute_metrics",
        "1-pixel images",
        "error: smaller than 2x2",
        lambda d: _metrics(_T[..., :1, :1], _T[..., :1, :1], _T[..., :1, :1]),
        match=r"smaller than 2x2",
    ),
    Row(
        "metrics-16bit-scale",
        "compute_metrics",
        "16-bit values under the 0..255 protocol",
        "error: outside range",
        lambda d: _metrics(_T * 257, _T * 257, _T * 257),
        match=r"outside protocol 'standard'.s range",
    ),
    Row(
        "metrics-batch-mismatch",
        "compute_metrics",
        "mismatched shapes (batch of 2 vs 1)",
        "error: shape differs",
        lambda d: _metrics(_T.repeat(2, 1, 1, 1), _T, _T),
        match=r"differs from the fused image",
    ),
    Row(
        "metrics-float16",
        "compute_metrics",
        "float16 images",
        "result: finite values",
        lambda d: _metrics(_T.half(), _T.half(), (255 - _T).half()),
        check=lambda r: (
            all(np.isfinite(v) for v in r.values())
            and abs(r["SSIM"] - _metrics(_T, _T, 255 - _T)["SSIM"]) < 1e-2
            or pytest.fail(str(r))
        ),
    ),
    # ----------------------------------------------------------------------------------- fusers / networks
    *[
        Row(
            f"fuser-{name}-odd-size",
            f"get_fuser('{name}').fuse",
            "H/W not divisible by the pooling factor (37x53)",
            "result: padded and cropped back, same shape, in [0, 1]",
            lambda d, n=name: _fuse(n, (2, 1, 37, 53)),
            check=_check_shape_range((2, 1, 37, 53)),
        )
        for name in ("poster", "msrpan", "msdra")
    ],
    Row(
        "fuser-1-pixel",
        "get_fuser('poster').fuse",
        "1-pixel images",
        "result: defined 1x1 output in [0, 1]",
        lambda d: _fuse("poster", (1, 1, 1, 1)),
        check=_check_shape_range((1, 1, 1, 1)),
    ),
    Row(
        "fuser-constant",
        "get_fuser('laplacian').fuse",
        "constant images",
        "result: the constant back",
        lambda d: _fuse("laplacian", (1, 1, 16, 16), lambda s: torch.full(s, 0.25)),
        check=lambda r: torch.allclose(r, torch.full_like(r, 0.25), atol=1e-5) or pytest.fail(str(r.unique())),
    ),
    Row(
        "fuser-float64",
        "get_fuser('msdra').fuse",
        "float64 input to a float32 network",
        "result: float64 out",
        lambda d: _fuse("msdra", (1, 1, 9, 11), lambda s: torch.rand(s, dtype=torch.float64)),
        check=lambda r: r.dtype == torch.float64 and tuple(r.shape) == (1, 1, 9, 11) or pytest.fail(str(r.dtype)),
    ),
    Row(
        "fuser-nan",
        "get_fuser('poster').fuse",
        "NaN pixels",
        "error: NaN/Inf",
        lambda d: _fuse("poster", (1, 1, 8, 8), lambda s: torch.full(s, float("nan"))),
        match=r"mri contains NaN/Inf",
    ),
    Row(
        "fuser-empty-batch",
        "get_fuser('dwt').fuse",
        "empty batch (0 images)",
        "error: empty",
        lambda d: _fuse("dwt", (0, 1, 8, 8)),
        match=r"mri is empty",
    ),
    Row(
        "fuser-mismatched",
        "fuse_images",
        "mismatched shapes",
        "error: names both shapes",
        lambda d: fuse_images(get_fuser("max"), torch.rand(1, 8, 8), torch.rand(1, 8, 9)),
        match=r"got \(1, 8, 8\) and \(1, 8, 9\)",
    ),
    Row(
        "fuser-very-large",
        "get_fuser('poster').fuse",
        "very large slice (guard lowered to 1 MiB)",
        "error: memory guard before allocating",
        lambda d: _with_network_guard(2**20, lambda: _fuse("poster", (1, 1, 64, 64))),
        match=r"poster: one 64x64 slice needs about .* GiB of feature maps, more than the memory guard",
    ),
    Row(
        "fuser-batch-split",
        "get_fuser('poster').fuse",
        "batch larger than the guard (guard fits 2 slices)",
        "result: fused in parts, same as one by one",
        lambda d: _with_network_guard(2 * 80 * 8 * 16 * 16, lambda: _split_equals_single()),
        check=lambda r: r or pytest.fail("split batch differs"),
    ),
    Row(
        "fuse-sample-volume-odd",
        "fuse_sample",
        "volume slices not divisible by the pooling (21x19x3)",
        "result: fused slice-wise on the MRI's grid",
        lambda d: fuse_sample(
            _pre()(
                {
                    "mri": str(save_nifti(d / "in" / "m.nii.gz", volume((21, 19, 3)))),
                    "other": str(save_nifti(d / "in" / "p.nii.gz", volume((21, 19, 3), 1))),
                    "modality": "PET",
                }
            ),
            _quiet_poster(),
        )["fused"],
        check=lambda r: tuple(r.shape) == (3, 21, 19, 3) or pytest.fail(str(r.shape)),  # grey PET: in colour
    ),
]


def _with_outlier(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    a[0, 0] = 100.0
    return a


def _mixed_sizes(d: Path) -> Path:
    folder = _series(d)
    other = dicom_series(
        d / "in" / "tmp",
        np.random.default_rng(1).integers(0, 1000, (2, 14, 10)),
        "1.2.826.0.1.3680043.8.498.100",
        positions=[20.0, 22.0],
    )
    for f in other.iterdir():
        shutil.move(str(f), folder / f"b{f.name}")
    other.rmdir()
    return folder


def _with_limit(limit: int, fn: Callable[[], Any]) -> Any:
    old = fio.MAX_ELEMENTS
    fio.MAX_ELEMENTS = limit
    try:
        return fn()
    finally:
        fio.MAX_ELEMENTS = old


def _with_network_guard(limit: int, fn: Callable[[], Any]) -> Any:
    old = NetworkFuser.max_batch_bytes
    NetworkFuser.max_batch_bytes = limit
    try:
        return fn()
    finally:
        NetworkFuser.max_batch_bytes = old


def _quiet_poster() -> Any:
    return get_fuser("poster", channels=8, random_init=True)


def _split_equals_single() -> bool:
    torch.manual_seed(0)
    fuser = _quiet_poster()
    a, b = torch.rand(5, 1, 16, 16), torch.rand(5, 1, 16, 16)
    whole = fuser.fuse(a, b)
    single = torch.cat([fuser.fuse(a[i : i + 1], b[i : i + 1]) for i in range(5)])
    return bool(torch.allclose(whole, single, atol=1e-6))


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_row(row: Row, tmp_path: Path, record: Callable[..., None]) -> None:
    if row.match is None:
        result = row.run(tmp_path)
        assert row.check is not None
        row.check(result)
        actual = "result"
    else:
        with pytest.raises(FusionInputError, match=row.match) as info:
            row.run(tmp_path)
        actual = f"FusionInputError: {info.value}"
    assert not [f for f in files_under(tmp_path) if ".part" in f]  # no temporary left behind
    assert files_under(tmp_path / "out") == []  # nothing written by a library entry point
    record(
        "matrix",
        id=row.id,
        entry=row.entry,
        case=row.case,
        expect=row.expect,
        actual=actual.replace(str(tmp_path), "<tmp>"),
    )


def test_matrix_ids_are_unique() -> None:
    ids = [r.id for r in ROWS]
    assert len(ids) == len(set(ids))
