"""Paired-folder datalists for the Whole Brain Atlas layout and a case-wise train/validation split.

Layout: ``<root>/<PAIR>/<MODALITY>/<name>.png`` with ``PAIR`` in ``CT-MRI``, ``PET-MRI``,
``SPECT-MRI``; a pair is two files with the same name in ``MRI/`` and the other modality's folder.
File names are ``<case><slice:3 digits>``: the case is the name without its last three digits.
MONAI has no notion of paired folders or of grouping slices by case, hence this module.
"""

from __future__ import annotations

import logging
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..utils.constants import PAIR_TYPES, modality_of_pair
from ..utils.errors import FusionInputError
from .io import IMAGE_SUFFIXES

__all__ = [
    "PairedDatalist",
    "find_pairs",
    "case_of",
    "split_by_case",
    "check_num_folds",
    "case_folds",
    "folds_per_pair_type",
    "split_by_fold",
    "bundle_datalist",
]

logger = logging.getLogger(__name__)


def case_of(name: str) -> str:
    """Case id of a file stem ``<case><slice:3 digits>`` (``"16003"`` -> ``"16"``).

    Stems that do not end in three digits are their own case.
    """
    return name[:-3] if len(name) > 3 and name[-3:].isdigit() else name


@dataclass
class PairedDatalist:
    """Pairs found under a root, with what could not be paired.

    Attributes:
        items: one dict per pair: ``mri``, ``other`` (paths), ``pair_type``, ``modality``,
            ``name``, ``case`` (``"<PAIR>/<case>"``, unique across pair types).
        unpaired: files that had no partner, as paths.
        counts: pairs per pair type.
    """

    items: list[dict[str, str]] = field(default_factory=list)
    unpaired: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: pairs per type and how many files had no partner."""
        per = ", ".join(f"{k}: {v}" for k, v in self.counts.items())
        msg = f"{len(self.items)} pairs ({per})"
        if self.unpaired:
            msg += f"; {len(self.unpaired)} files without partner: " + ", ".join(self.unpaired[:10])
            msg += " ..." if len(self.unpaired) > 10 else ""
        return msg


def _images(folder: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    }


def find_pairs(
    root: str | os.PathLike, pair_types: str | Sequence[str] | None = None, strict: bool = False
) -> PairedDatalist:
    """Match MRI and CT/PET/SPECT files by name under ``root``.

    Args:
        root: dataset root holding ``CT-MRI/``, ``PET-MRI/``, ``SPECT-MRI/`` (any subset).
        pair_types: a pair type, a list of them, ``"all"`` or ``None`` (all present).
        strict: raise when any file has no partner instead of reporting it.

    Returns:
        The datalist; ``unpaired`` names every file without a partner (also logged as a warning).

    Raises:
        FusionInputError: missing root, unknown or absent pair type, no pairs at all, or (strict)
            unpaired files.
    """
    base = Path(root)
    if not base.is_dir():
        raise FusionInputError(
            f"dataset root {base} does not exist or is not a folder; expected <root>/<PAIR>/<MODALITY>/*.png"
        )
    if pair_types is None or pair_types == "all":
        wanted = [t for t in PAIR_TYPES if (base / t).is_dir()]
        if not wanted:
            raise FusionInputError(f"dataset root {base} has none of the pair folders {', '.join(PAIR_TYPES)}")
    else:
        wanted = [pair_types] if isinstance(pair_types, str) else list(pair_types)
    out = PairedDatalist()
    for pair in wanted:
        other = modality_of_pair(pair)
        mri_dir, other_dir = base / pair / "MRI", base / pair / other
        for d in (mri_dir, other_dir):
            if not d.is_dir():
                raise FusionInputError(f"{pair}: folder {d} is missing; expected {mri_dir} and {other_dir}")
        mri, oth = _images(mri_dir), _images(other_dir)
        names = sorted(set(mri) & set(oth))
        out.unpaired += [str(mri[n]) for n in sorted(set(mri) - set(oth))]
        out.unpaired += [str(oth[n]) for n in sorted(set(oth) - set(mri))]
        out.counts[pair] = len(names)
        for n in names:
            out.items.append(
                {
                    "mri": str(mri[n]),
                    "other": str(oth[n]),
                    "pair_type": pair,
                    "modality": other,
                    "name": n,
                    "case": f"{pair}/{case_of(n)}",
                }
            )
    if out.unpaired:
        if strict:
            raise FusionInputError(f"{base}: {len(out.unpaired)} files have no partner: {', '.join(out.unpaired)}")
        logger.warning("%s: %d files have no partner: %s", base, len(out.unpaired), ", ".join(out.unpaired))
    if not out.items:
        raise FusionInputError(f"no MRI/other pairs found under {base} for {', '.join(wanted)}")
    logger.info("%s: %s", base, out.summary())
    return out


def split_by_case(
    items: Iterable[dict[str, str]], val_fraction: float = 0.2, seed: int = 0, min_val_cases: int = 1
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Split pairs into train and validation so that no case has slices on both sides.

    The split is stratified by pair type: within each pair type, ``ceil``-rounded
    ``val_fraction`` of its cases (at least ``min_val_cases``, at most all but one) go to
    validation, chosen by a seeded shuffle of the sorted case ids, so it is deterministic.

    Args:
        items: datalist items with ``case`` and ``pair_type`` keys.
        val_fraction: fraction of cases per pair type held out, in [0, 1).
        seed: shuffle seed.
        min_val_cases: least number of validation cases per pair type (when it has two or more).

    Returns:
        ``(train, val)`` lists, each in the input order.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise FusionInputError(f"val_fraction={val_fraction} must be in [0, 1)")
    items = list(items)
    val_cases: set[str] = set()
    for pair in sorted({it["pair_type"] for it in items}):
        cases = sorted({it["case"] for it in items if it["pair_type"] == pair})
        if val_fraction == 0.0 or len(cases) < 2:
            continue
        n_val = max(min_val_cases, math.ceil(val_fraction * len(cases) - 1e-9))
        n_val = min(n_val, len(cases) - 1)
        rng = random.Random(f"{seed}:{pair}")
        val_cases.update(rng.sample(cases, n_val))
    train = [it for it in items if it["case"] not in val_cases]
    val = [it for it in items if it["case"] in val_cases]
    return train, val


def check_num_folds(num_folds: Any, what: str) -> int:
    """``num_folds`` as an int, refused unless it is an integer of at least 2 (``what`` names it in the message)."""
    if int(num_folds) != num_folds or int(num_folds) < 2:
        raise FusionInputError(f"{what} {num_folds!r}: the number of folds must be an integer of at least 2")
    return int(num_folds)


def case_folds(items: Iterable[dict[str, str]], num_folds: int, seed: int = 0) -> dict[str, int]:
    """Assign every case to one of ``num_folds`` folds, stratified by pair type.

    Within each pair type the sorted case ids are shuffled by ``seed`` and dealt round-robin to the
    folds, so each case is in exactly one fold and the folds of a pair type differ by at most one
    case. A pair type with fewer cases than folds fills only its first folds (each of its cases is
    still held out once); :func:`folds_per_pair_type` says how many folds hold its cases.
    scikit-learn's ``GroupKFold`` does not stratify by a second key, hence this function.

    Args:
        items: datalist items with ``case`` and ``pair_type`` keys.
        num_folds: number of folds, at least 2.
        seed: shuffle seed (the folds are a function of the case ids and the seed only).

    Returns:
        ``{"<pair_type>/<case>": fold}`` for every case.

    Raises:
        FusionInputError: ``num_folds`` below 2.
    """
    num_folds = check_num_folds(num_folds, "num_folds")
    items = list(items)
    folds: dict[str, int] = {}
    for pair in sorted({it["pair_type"] for it in items}):
        cases = sorted({it["case"] for it in items if it["pair_type"] == pair})
        random.Random(f"{seed}:{pair}:folds").shuffle(cases)
        for i, case in enumerate(cases):
            folds[f"{pair}/{case}"] = i % num_folds
    return folds


def folds_per_pair_type(items: Iterable[dict[str, str]], num_folds: int) -> dict[str, int]:
    """How many of ``num_folds`` folds hold cases of each pair type (``min(num_folds, cases)``)."""
    items = list(items)
    return {
        pair: min(int(num_folds), len({it["case"] for it in items if it["pair_type"] == pair}))
        for pair in sorted({it["pair_type"] for it in items})
    }


def split_by_fold(
    items: Iterable[dict[str, str]], fold: int, num_folds: int, seed: int = 0
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """``(train, val)`` of cross-validation fold ``fold``: its cases held out, all others trained on.

    Args:
        items: datalist items with ``case`` and ``pair_type`` keys.
        fold: the held-out fold, ``0 <= fold < num_folds``.
        num_folds: number of folds (see :func:`case_folds`).
        seed: fold seed.

    Returns:
        ``(train, val)`` lists, each in the input order; no case is on both sides.

    Raises:
        FusionInputError: ``fold`` outside ``0..num_folds-1`` or ``num_folds`` below 2.
    """
    items = list(items)
    assignment = case_folds(items, num_folds, seed)
    if not (isinstance(fold, int) or float(fold).is_integer()) or not 0 <= int(fold) < int(num_folds):
        raise FusionInputError(f"fold={fold!r} must be an integer in 0..{int(num_folds) - 1} (num_folds={num_folds})")
    held = [assignment[f"{it['pair_type']}/{it['case']}"] == int(fold) for it in items]
    return [it for it, h in zip(items, held) if not h], [it for it, h in zip(items, held) if h]


def _pair_type_list(pair_types: str | Sequence[str] | None) -> str | list[str]:
    if pair_types is None or pair_types == "all":
        return "all"
    if isinstance(pair_types, str):
        pair_types = [p.strip() for p in pair_types.split(",") if p.strip()]
    wanted = list(pair_types)
    bad = [p for p in wanted if p not in PAIR_TYPES]
    if bad or not wanted:
        raise FusionInputError(
            f"pair_types {bad or wanted!r}: choose 'all' or any of {', '.join(PAIR_TYPES)} (comma-separated)"
        )
    return wanted


def bundle_datalist(
    dataset_dir: str | os.PathLike | None,
    pair_types: str | Sequence[str] | None = "all",
    split: str = "train",
    val_fraction: float = 0.2,
    seed: int = 0,
    max_pairs: int | None = None,
    what: str = "dataset_dir",
    fold: int | None = None,
    num_folds: int | None = None,
) -> list[dict[str, str]]:
    """Pairs of a dataset in the Whole Brain Atlas layout, checked, split by case.

    Args:
        dataset_dir: ``<root>/<PAIR>/<MODALITY>/<name>.png``.
        pair_types: ``"all"``, a pair type, a comma-separated string or a list of them.
        split: ``"train"``, ``"val"`` (whole cases held out, see ``split_by_case``) or ``"all"``.
        val_fraction: fraction of cases per pair type held out for validation.
        seed: split seed.
        max_pairs: keep at most this many pairs, evenly spread over the list (``None``: all).
        what: the option's name in messages.
        fold: with ``num_folds``, split by cross-validation fold instead (``split_by_fold``, seeded by
            ``seed``): ``"val"`` is the fold's cases, ``"train"`` all other cases; ``val_fraction`` is unused.
        num_folds: number of cross-validation folds (``None``: the ``val_fraction`` split).

    Returns:
        Datalist items (``mri``, ``other``, ``modality``, ``pair_type``, ``name``, ``case``).

    Raises:
        FusionInputError: missing or misnamed folder, unknown pair type, a selected pair folder without pairs,
            no case left for validation, or a bad ``split``/``max_pairs``.
    """
    if split not in ("train", "val", "all"):
        raise FusionInputError(f"split={split!r} must be 'train', 'val' or 'all'")
    if dataset_dir is None or str(dataset_dir).strip() == "":
        raise FusionInputError(f"{what} is not set; pass --{what} <root with CT-MRI/, PET-MRI/, SPECT-MRI/>")
    root = Path(dataset_dir).expanduser()
    wanted = _pair_type_list(pair_types)
    try:
        found = find_pairs(root, wanted)
    except FusionInputError as err:
        raise FusionInputError(f"{what}: {err}") from None
    empty = [p for p, n in found.counts.items() if n == 0]
    if empty:
        raise FusionInputError(
            f"{what}: {', '.join(str(root / p) for p in empty)} hold no MRI/other pairs "
            f"(pairs are files with the same name in MRI/ and the other modality's folder); "
            "add images or choose --pair_types among " + ", ".join(p for p in found.counts if p not in empty)
        )
    items = found.items
    if (fold is None) != (num_folds is None):
        raise FusionInputError(
            f"fold={fold!r}, num_folds={num_folds!r}: give both (cross-validation fold and fold count) or neither"
        )
    if split != "all" and num_folds is not None:
        train, val = split_by_fold(items, int(fold), int(num_folds), seed=seed)  # type: ignore[arg-type]
        items = train if split == "train" else val
    elif split != "all":
        train, val = split_by_case(items, val_fraction=val_fraction, seed=seed)
        if not val:
            raise FusionInputError(
                f"{what}: no case left for validation (val_fraction={val_fraction}); each pair "
                "type needs at least two cases (file names <case><slice:3>)"
            )
        items = train if split == "train" else val
    if max_pairs is not None:
        if int(max_pairs) < 1:
            raise FusionInputError(f"max_pairs={max_pairs} must be a positive number or null")
        if int(max_pairs) < len(items):
            idx = np.unique(np.linspace(0, len(items) - 1, int(max_pairs)).round().astype(int))
            items = [items[i] for i in idx]
    return items
