"""evaluate_folders: per-image CSV and markdown table from fused PNGs and their source pairs."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_fusion.engines.evaluation import evaluate_folders, format_metric_table
from monai_fusion.metrics import compute_metrics
from monai_fusion.utils import FusionInputError

from .conftest import structured

NAMES = ["EN", "MI", "SSIM", "Qabf", "CC", "PSNR"]
BT601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _png(path: Path, arr: np.ndarray) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    u8 = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    Image.fromarray(u8).save(path)
    return u8.astype(np.float32)


def _luma(arr: np.ndarray) -> np.ndarray:
    return arr if arr.ndim == 2 else (arr @ BT601).astype(np.float32)


def _make_dataset(root: Path, names=("1001", "1002")) -> dict[tuple[str, str], tuple[np.ndarray, ...]]:
    """Synthetic CT-MRI (grey) and PET-MRI (RGB) pairs, and average fusions, as 8-bit PNGs."""
    expected = {}
    for k, name in enumerate(names):
        mri = structured(10 + k)[0, 0].numpy()
        ct = structured(20 + k)[0, 0].numpy()
        pet = np.stack([structured(30 + k + c)[0, 0].numpy() for c in range(3)], -1)
        m = _png(root / "pairs/CT-MRI/MRI" / f"{name}.png", mri)
        c = _png(root / "pairs/CT-MRI/CT" / f"{name}.png", ct)
        f = _png(root / "fused/CT-MRI" / f"{name}.png", (m + c) / 2)
        expected[("CT-MRI", name)] = (f, m, c)
        m2 = _png(root / "pairs/PET-MRI/MRI" / f"{name}.png", mri)
        p = _png(root / "pairs/PET-MRI/PET" / f"{name}.png", pet)
        f2 = _png(root / "fused/PET-MRI" / f"{name}.png", (m2[..., None] + p) / 2)
        expected[("PET-MRI", name)] = (_luma(f2), m2, _luma(p))
    return expected


def test_evaluate_folders_rows_csv_and_table(tmp_path):
    expected = _make_dataset(tmp_path)
    rows, table = evaluate_folders(tmp_path / "pairs", tmp_path / "fused", metrics=NAMES, csv_path=tmp_path / "m.csv")
    assert [(r["pair_type"], r["name"]) for r in rows] == sorted(expected)  # datalist order
    for r in rows:
        f, a, b = (torch.from_numpy(x)[None, None] for x in expected[(r["pair_type"], r["name"])])
        direct = compute_metrics(f, a, b, NAMES)
        for n in NAMES:
            assert r[n] == pytest.approx(direct[n].item(), abs=1e-5), (r["name"], n)
    with open(tmp_path / "m.csv", encoding="utf-8") as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == ["pair_type", "name", "case", *NAMES] and len(lines) == 1 + len(rows)
    assert float(lines[1][3]) == pytest.approx(rows[0]["EN"], rel=1e-7)
    body = table.splitlines()
    assert "protocol `standard`" in body[0]
    assert body[2].startswith("| pair type | n | EN | MI |") and [ln.split(" | ")[0] for ln in body[4:]] == [
        "| CT-MRI",
        "| PET-MRI",
        "| all",
    ]
    ct = np.array([r["MI"] for r in rows if r["pair_type"] == "CT-MRI"])
    assert f"{ct.mean():.4f} ± {ct.std(ddof=1):.4f}" in body[4]


def test_protocol_rescales_8_bit_files(tmp_path):
    _make_dataset(tmp_path, names=("1001",))
    std, _ = evaluate_folders(tmp_path / "pairs", tmp_path / "fused", metrics=["SD", "MI"], pair_types="CT-MRI")
    poster, table = evaluate_folders(
        tmp_path / "pairs", tmp_path / "fused", protocol="poster", metrics=["SD", "MI"], pair_types="CT-MRI"
    )
    assert poster[0]["SD"] == pytest.approx(std[0]["SD"] / 255, rel=1e-6)
    assert "protocol `poster`" in table and "| all" not in table


def test_missing_or_mismatched_fused_images_raise(tmp_path):
    _make_dataset(tmp_path)
    (tmp_path / "fused/PET-MRI/1002.png").unlink()
    with pytest.raises(FusionInputError, match="1 of 4 pairs have no fused image.*PET-MRI/1002"):
        evaluate_folders(tmp_path / "pairs", tmp_path / "fused", metrics=NAMES)
    _png(tmp_path / "fused/PET-MRI/1002.png", structured(1, size=32)[0, 0].numpy())
    with pytest.raises(FusionInputError, match="does not match its pair"):
        evaluate_folders(tmp_path / "pairs", tmp_path / "fused", metrics=NAMES)
    shutil.rmtree(tmp_path / "fused")
    with pytest.raises(FusionInputError, match="does not exist"):
        evaluate_folders(tmp_path / "pairs", tmp_path / "fused")


def test_table_marks_lower_is_better_and_single_images():
    rows = [{"pair_type": "CT-MRI", "name": "1", "case": "CT-MRI/1", "Nabf": 0.25, "SSIM": 0.5}]
    table = format_metric_table(rows, ["SSIM", "Nabf"], "sum")
    assert "Nabf (lower is better)" in table and "| CT-MRI | 1 | 0.5000 ± 0.0000 | 0.2500 ± 0.0000 |" in table


def test_real_pairs_one_per_type(harvard_root, tmp_path):
    pairs, fused = tmp_path / "pairs", tmp_path / "fused"
    for pair, mod in (("CT-MRI", "CT"), ("PET-MRI", "PET"), ("SPECT-MRI", "SPECT")):
        name = sorted(p.stem for p in (harvard_root / pair / "MRI").glob("*.png"))[0]
        for sub in ("MRI", mod):
            (pairs / pair / sub).mkdir(parents=True)
            shutil.copy(harvard_root / pair / sub / f"{name}.png", pairs / pair / sub)
        m = np.asarray(Image.open(pairs / pair / "MRI" / f"{name}.png").convert("L"), dtype=np.float32)
        o = np.asarray(
            Image.open(pairs / pair / mod / f"{name}.png").convert("L" if mod == "CT" else "RGB"), dtype=np.float32
        )
        _png(fused / pair / f"{name}.png", (m + o) / 2 if o.ndim == 2 else (m[..., None] + o) / 2)
    rows, table = evaluate_folders(pairs, fused, csv_path=tmp_path / "m.csv")
    assert len(rows) == 3 and table.count("\n") == 3 + 4
    for r in rows:
        assert 0.5 < r["SSIM"] < 1.0 and 0.0 < r["MI"] < 8.0 and r["Nabf"] < 1e-3, r
