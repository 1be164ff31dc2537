"""Paired-folder datalists and the case-wise split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_fusion.data.datalist import case_of, find_pairs, split_by_case
from monai_fusion.utils import FusionInputError


def _png(path: Path, value: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.full((8, 8), value, np.uint8)
    a[2:5, 2:5] = 200
    Image.fromarray(a).save(path)


@pytest.fixture()
def tiny_root(tmp_path: Path) -> Path:
    for name in ("16003", "16004", "2004", "2005", "33010"):
        _png(tmp_path / "CT-MRI" / "MRI" / f"{name}.png")
        _png(tmp_path / "CT-MRI" / "CT" / f"{name}.png")
    _png(tmp_path / "CT-MRI" / "MRI" / "99001.png")  # no partner
    _png(tmp_path / "CT-MRI" / "CT" / "98001.png")  # no partner
    for name in ("25016", "25017", "30001"):
        _png(tmp_path / "PET-MRI" / "MRI" / f"{name}.png")
        _png(tmp_path / "PET-MRI" / "PET" / f"{name}.png")
    return tmp_path


def test_case_of() -> None:
    assert case_of("16003") == "16"
    assert case_of("2004") == "2"
    assert case_of("abc") == "abc"


def test_find_pairs_matches_and_reports_unpaired(tiny_root: Path) -> None:
    dl = find_pairs(tiny_root)
    assert dl.counts == {"CT-MRI": 5, "PET-MRI": 3}
    assert len(dl.items) == 8
    assert sorted(Path(p).name for p in dl.unpaired) == ["98001.png", "99001.png"]
    first = dl.items[0]
    assert first["pair_type"] == "CT-MRI" and first["modality"] == "CT"
    assert Path(first["mri"]).parent.name == "MRI" and Path(first["other"]).parent.name == "CT"
    assert "2 files without partner" in dl.summary()
    with pytest.raises(FusionInputError, match="no partner"):
        find_pairs(tiny_root, strict=True)


def test_find_pairs_bad_roots(tmp_path: Path, tiny_root: Path) -> None:
    with pytest.raises(FusionInputError, match="does not exist"):
        find_pairs(tmp_path / "nope")
    with pytest.raises(FusionInputError, match="none of the pair folders"):
        find_pairs(tiny_root / "CT-MRI")
    with pytest.raises(FusionInputError, match="is missing"):
        find_pairs(tiny_root, "SPECT-MRI")
    with pytest.raises(FusionInputError, match="not one of"):
        find_pairs(tiny_root, "XR-MRI")


def test_split_by_case_is_casewise_and_deterministic(tiny_root: Path) -> None:
    items = find_pairs(tiny_root).items
    train, val = split_by_case(items, val_fraction=0.34, seed=3)
    assert len(train) + len(val) == len(items)
    assert not {i["case"] for i in train} & {i["case"] for i in val}
    assert {i["pair_type"] for i in val} == {"CT-MRI", "PET-MRI"}  # stratified by pair type
    assert split_by_case(items, 0.34, 3) == (train, val)
    with pytest.raises(FusionInputError):
        split_by_case(items, 1.0)


def test_real_harvard_datalist(harvard_root: Path) -> None:
    dl = find_pairs(harvard_root)
    assert dl.counts == {"CT-MRI": 160, "PET-MRI": 245, "SPECT-MRI": 333}
    assert dl.unpaired == []
    train, val = split_by_case(dl.items, val_fraction=0.15, seed=0)
    assert not {i["case"] for i in train} & {i["case"] for i in val}
    for pair in ("CT-MRI", "PET-MRI", "SPECT-MRI"):
        cases = {i["case"] for i in dl.items if i["pair_type"] == pair}
        val_cases = {i["case"] for i in val if i["pair_type"] == pair}
        assert len(val_cases) >= max(1, round(0.15 * len(cases)))
