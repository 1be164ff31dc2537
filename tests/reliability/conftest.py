"""Input builders for the reliability tests, and the recorder whose results ``docs/reliability.md`` shows.

Every matrix row, fuzz run and crash test calls :func:`record`; at the end of the session the records go to
``build/reliability/results.json`` (ignored by git), which ``benchmarks/reliability_report.py`` renders into
the report's tables.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from PIL import Image

from monai_fusion.utils.locale_guard import preserved_locale

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "build" / "reliability" / "results.json"

torch.set_num_threads(1)

_RECORDS: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="session", autouse=True)
def _write_records() -> Iterator[None]:
    """Write what the tests recorded, merged with earlier partial runs, when the session ends."""
    yield
    if not _RECORDS:
        return
    old: dict[str, Any] = {}
    if RESULTS.is_file():
        try:
            old = json.loads(RESULTS.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
    old.update(_RECORDS)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(f".part{os.getpid()}")
    tmp.write_text(json.dumps(old, indent=1, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    os.replace(tmp, RESULTS)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``record(kind, **fields)``: keep a row of the report under this test's id (only called once it passed)."""
    start = time.perf_counter()

    def _record(kind: str, **fields: Any) -> None:
        add_record(
            f"{request.node.nodeid}::{fields.get('id', '')}",
            kind,
            **{"seconds": round(time.perf_counter() - start, 3), **fields},
        )

    return _record


def add_record(key: str, kind: str, **fields: Any) -> None:
    """Keep one row of the report (``kind``: matrix, fuzz, crash, security) under ``key``."""
    _RECORDS[key] = {"kind": kind, **fields}


# ------------------------------------------------------------------------------------------------ builders
def grey(h: int = 32, w: int = 32, seed: int = 0) -> np.ndarray:
    """A structured 8-bit grey slice (a bright disc on a ramp, with noise): never constant."""
    yy, xx = np.mgrid[0:h, 0:w]
    disc = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2) * 120.0
    noise = np.random.default_rng(seed).normal(0, 6, (h, w))
    return np.clip(40 + 60 * xx / max(w - 1, 1) + disc + noise, 0, 255).astype(np.uint8)


def rgb(h: int = 32, w: int = 32, seed: int = 1) -> np.ndarray:
    """A pseudo-colour 8-bit RGB slice ``(H, W, 3)``."""
    g = grey(h, w, seed).astype(np.float32)
    return np.stack([g, np.roll(g, 3, 1) * 0.6, 255 - g], -1).astype(np.uint8)


def save_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    """Write ``array`` with PIL (``mode`` e.g. ``"I;16"``, ``"RGBA"``, ``"P"``), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array) if mode in (None, "P") else Image.fromarray(array, mode)
    if mode == "P":
        img = img.convert("P")
    img.save(path)
    return path


def volume(shape: tuple[int, int, int] = (20, 18, 6), seed: int = 0) -> np.ndarray:
    """A structured float32 volume (a bright ellipsoid on a ramp, with noise)."""
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    vol = 100 * ((x / 0.7) ** 2 + (y / 0.6) ** 2 + (z / 0.9) ** 2 < 1) + 30 * (x + 1)
    return (vol + np.random.default_rng(seed).normal(0, 3, shape)).astype(np.float32)


def save_nifti(path: Path, vol: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """Write a NIfTI file (2 mm voxels by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(vol, np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine), str(path))
    return path


def dicom_series(
    folder: Path,
    vol_zyx: np.ndarray,
    uid: str,
    iop: str = "1\\0\\0\\0\\1\\0",
    spacing_z: float = 2.0,
    positions: list[float] | None = None,
    modality: str = "MR",
) -> Path:
    """Write an int16 DICOM series (one file per slice) with SimpleITK; ``positions`` overrides slice z."""
    folder.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(np.asarray(vol_zyx).astype(np.int16))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    normal = np.cross([float(v) for v in iop.split("\\")[:3]], [float(v) for v in iop.split("\\")[3:]])
    for k in range(img.GetDepth()):
        sl = img[:, :, k]
        z = positions[k] if positions is not None else k * spacing_z
        tags = {
            "0020|000e": uid,
            "0020|000d": "1.2.826.0.1.3680043.8.498.9",
            "0008|0060": modality,
            "0010|0010": "Test^Patient",
            "0010|0020": "REL-001",
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:g}" for v in normal * z),
            "0020|0037": iop,
            "0028|0030": "1\\1",
            "0018|0050": f"{spacing_z:g}",
        }
        for tag, value in tags.items():
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{uid[-3:]}_{k:03d}.dcm"))
        with preserved_locale():  # GDCM leaves the process in the C locale otherwise
            writer.Execute(sl)
    return folder


def atlas(root: Path, names: tuple[str, ...] = ("1001", "1002"), pair: str = "PET-MRI", size: int = 32) -> Path:
    """A small dataset in the Whole Brain Atlas layout (grey MRI, RGB PET or grey CT)."""
    other = pair.split("-")[0]
    for i, name in enumerate(names):
        save_png(root / pair / "MRI" / f"{name}.png", grey(size, size, i))
        save_png(root / pair / other / f"{name}.png", rgb(size, size, i) if other != "CT" else grey(size, size, i + 50))
    return root


def files_under(folder: Path) -> list[str]:
    """Every file below ``folder`` (relative names, sorted); empty when it does not exist."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
