"""Case-wise k-fold cross-validation folds of a datalist."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_fusion.data import bundle_datalist, write_demo_dataset
from monai_fusion.data.datalist import case_folds, find_pairs, folds_per_pair_type, split_by_fold
from monai_fusion.utils import FusionInputError


def _items(cases: dict[str, int], slices: int = 3) -> list[dict[str, str]]:
    return [
        {"pair_type": pt, "case": f"{pt[:2]}{c}", "name": f"{c}{s:03d}"}
        for pt, n in cases.items()
        for c in range(n)
        for s in range(slices)
    ]


def test_every_case_is_held_out_exactly_once_and_folds_are_balanced() -> None:
    items = _items({"CT-MRI": 10, "PET-MRI": 3, "SPECT-MRI": 15})
    folds = case_folds(items, 4, seed=0)
    assert set(folds) == {f"{it['pair_type']}/{it['case']}" for it in items}
    for pt, n in (("CT-MRI", 10), ("PET-MRI", 3), ("SPECT-MRI", 15)):
        sizes = [sum(1 for k, f in folds.items() if k.startswith(pt) and f == i) for i in range(4)]
        assert sum(sizes) == n and max(sizes) - min(sizes) <= 1
        if n < 4:  # fewer cases than folds: one case per fold, the last folds empty
            assert sizes == [1, 1, 1, 0]
    assert folds_per_pair_type(items, 4) == {"CT-MRI": 4, "PET-MRI": 3, "SPECT-MRI": 4}
    held = []
    for k in range(4):
        train, val = split_by_fold(items, k, 4, seed=0)
        assert len(train) + len(val) == len(items)
        assert not {(i["pair_type"], i["case"]) for i in train} & {(i["pair_type"], i["case"]) for i in val}
        held += [(i["pair_type"], i["name"]) for i in val]
    assert sorted(held) == sorted((i["pair_type"], i["name"]) for i in items)  # each pair validated once


def test_folds_are_fixed_by_the_seed_and_the_case_ids_only() -> None:
    items = _items({"CT-MRI": 10, "SPECT-MRI": 15})
    a = case_folds(items, 4, seed=0)
    assert case_folds(list(reversed(items)), 4, seed=0) == a  # order of the datalist does not matter
    assert case_folds(items, 4, seed=1) != a
    # a pair type's folds do not move when another pair type gains cases
    more = case_folds(_items({"CT-MRI": 10, "SPECT-MRI": 16}), 4, seed=0)
    assert {k: v for k, v in more.items() if k.startswith("CT")} == {k: v for k, v in a.items() if k.startswith("CT")}


@pytest.mark.parametrize("num_folds", [1, 0, 2.5])
def test_bad_fold_counts_are_refused(num_folds: float) -> None:
    with pytest.raises(FusionInputError, match="num_folds"):
        case_folds(_items({"CT-MRI": 4}), num_folds)  # type: ignore[arg-type]


@pytest.mark.parametrize("fold", [-1, 4, 1.5])
def test_bad_folds_are_refused(fold: float) -> None:
    with pytest.raises(FusionInputError, match=r"fold=.*0\.\.3"):
        split_by_fold(_items({"CT-MRI": 4}), fold, 4)  # type: ignore[arg-type]


def test_bundle_datalist_splits_by_fold(tmp_path: Path) -> None:
    root = write_demo_dataset(tmp_path / "pairs", cases=4, slices_per_case=2)
    everything = find_pairs(root).items
    vals = []
    for k in range(2):
        train = bundle_datalist(root, "all", "train", seed=0, fold=k, num_folds=2)
        val = bundle_datalist(root, "all", "val", seed=0, fold=k, num_folds=2)
        assert len(train) + len(val) == len(everything)
        assert not {(i["pair_type"], i["case"]) for i in train} & {(i["pair_type"], i["case"]) for i in val}
        vals += [(i["pair_type"], i["name"]) for i in val]
    assert sorted(vals) == sorted((i["pair_type"], i["name"]) for i in everything)
    with pytest.raises(FusionInputError, match="give both"):
        bundle_datalist(root, "all", "train", fold=0)
    with pytest.raises(FusionInputError, match="give both"):
        bundle_datalist(root, "all", "train", num_folds=4)


def test_real_harvard_folds(harvard_root: Path) -> None:
    items = find_pairs(harvard_root).items
    assert folds_per_pair_type(items, 4) == {"CT-MRI": 4, "PET-MRI": 3, "SPECT-MRI": 4}
    vals = [split_by_fold(items, k, 4, seed=0)[1] for k in range(4)]
    assert sum(len(v) for v in vals) == len(items) == 738
