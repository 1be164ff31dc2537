"""Case-wise k-fold cross-validation of the benchmark: fold assignment, per-fold weights, fold-level summaries.

A figure chosen on one validation split carries that split's luck; on new cases a margin smaller than
the spread between folds does not hold. Here every case is held out exactly once (folds by
:func:`monai_fusion.data.case_folds`, stratified by pair type, fixed by a seed); a method is summarised by
the mean of its per-fold means and the fold-to-fold standard error, and a win over the runner-up counts as
*clear* only when the mean margin is larger than the standard error of the paired per-fold differences.
Trained methods are cross-validated when they are given one checkpoint per fold (trained on the other
folds, e.g. ``train.json --fold k --num_folds K``); otherwise their shipped weights serve every fold and the
report says so. scikit-learn's ``GroupKFold`` has neither the pair-type stratification nor the paired
standard errors, hence this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..data.datalist import case_folds, check_num_folds
from ..utils.constants import PAIR_TYPES
from ..utils.errors import FusionInputError

__all__ = [
    "CrossValidation",
    "assign_folds",
    "fold_means",
    "summarise_folds",
    "paired_margin",
    "clear_wins",
    "head_to_head",
    "margin_verdict",
    "standing_lines",
]

#: The issue's floor targets beside the wins: (metric, the rule it must reach), paired per fold.
FLOOR_TARGETS: tuple[tuple[str, str], ...] = (("SCD", "max"), ("SSIM", "average"))

#: The placeholder of a per-fold checkpoint path (``default=/runs/fold{fold}/model.pt``).
FOLD_FIELD = "{fold}"


@dataclass
class CrossValidation:
    """How ``run_benchmark`` cross-validates.

    Args:
        num_folds: folds per pair type (at least 2; a pair type with fewer cases gets one fold per case).
        seed: fold seed (the same ``seed`` as the training config's ``--fold k --num_folds K`` runs).
        fold_weights: ``method -> path with {fold}``: the checkpoint trained without fold ``k`` for each ``k``.
    """

    num_folds: int
    seed: int = 0
    fold_weights: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.num_folds = check_num_folds(self.num_folds, "--cv")
        for method, pattern in self.fold_weights.items():
            if FOLD_FIELD not in pattern:
                raise FusionInputError(
                    f"--fold-weights {method}={pattern}: the path must contain {FOLD_FIELD} "
                    f"(replaced by 0..{self.num_folds - 1}), e.g. {method}=runs/fold{FOLD_FIELD}/model.pt"
                )

    def weights_of(self, method: str, fold: int) -> str:
        """The checkpoint of ``method`` for held-out ``fold``.

        Raises:
            FusionInputError: the file does not exist (named, with the training command that makes it).
        """
        from pathlib import Path

        path = self.fold_weights[method].replace(FOLD_FIELD, str(fold))
        if not Path(path).is_file():
            raise FusionInputError(
                f"--fold-weights {method}: {path} (fold {fold}) does not exist; train it with the bundle's "
                f"config and `--fold {fold} --num_folds {self.num_folds} --seed {self.seed} --ckpt_dir <folder>`"
            )
        return path


def assign_folds(samples: Sequence[dict[str, Any]], num_folds: int, seed: int = 0) -> list[int]:
    """The held-out fold of each sample (by its ``pair_type`` and ``case``)."""
    folds = case_folds(samples, num_folds, seed)
    return [folds[f"{s['pair_type']}/{s['case']}"] for s in samples]


def fold_means(rows: Sequence[dict[str, Any]], pair_type: str, method: str, metric: str) -> dict[int, float]:
    """``fold -> mean`` of one method's metric over the pairs of one pair type in each fold."""
    per: dict[int, list[float]] = {}
    for r in rows:
        if r["pair_type"] == pair_type and r["method"] == method:
            per.setdefault(int(r["fold"]), []).append(float(r[metric]))
    return {f: float(np.mean(v)) for f, v in sorted(per.items())}


def _se(values: Sequence[float]) -> float:
    """Standard error of the mean of ``values`` (``nan`` for fewer than two)."""
    if len(values) < 2:
        return math.nan
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def summarise_folds(
    rows: Sequence[dict[str, Any]], methods: Sequence[str], metrics: Sequence[str]
) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """``pair_type -> method -> metric -> (mean over folds, fold-to-fold standard error)``.

    Each fold counts once whatever its number of pairs, so a case with many slices cannot dominate.
    """
    out: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for pt in sorted({r["pair_type"] for r in rows}, key=lambda p: PAIR_TYPES.index(p) if p in PAIR_TYPES else 99):
        out[pt] = {}
        for m in methods:
            if not any(r["pair_type"] == pt and r["method"] == m for r in rows):
                continue
            out[pt][m] = {}
            for k in metrics:
                means = list(fold_means(rows, pt, m, k).values())
                out[pt][m][k] = (float(np.mean(means)), _se(means))
    return out


def paired_margin(
    rows: Sequence[dict[str, Any]], pair_type: str, method: str, other: str, metric: str
) -> tuple[float, float]:
    """Mean over folds of ``method``'s fold mean minus ``other``'s, and the standard error of those differences."""
    mine, theirs = fold_means(rows, pair_type, method, metric), fold_means(rows, pair_type, other, metric)
    diffs = [mine[f] - theirs[f] for f in mine if f in theirs]
    return (float(np.mean(diffs)) if diffs else math.nan), _se(diffs)


def margin_verdict(margin: float, se: float) -> str:
    """How a paired margin stands against its fold-to-fold standard error.

    Args:
        margin: the mean over folds of the paired per-fold differences (:func:`paired_margin`).
        se: their standard error; NaN with fewer than two folds.

    Returns:
        ``"won"`` (positive and larger than its error), ``"lost"`` (negative and larger in size), ``"within"`` (not
        larger than its error) or ``"undecided"`` (no error: fewer than two folds in common).
    """
    if math.isnan(se):
        return "undecided"
    if abs(margin) > se:
        return "won" if margin > 0 else "lost"
    return "within"


def clear_wins(
    rows: Sequence[dict[str, Any]],
    summary: dict[str, dict[str, tuple[float, float]]],
    pair_type: str,
    method: str,
    metrics: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """Where ``method`` stands on each metric against the best other method (the runner-up) of one pair type.

    Returns:
        ``metric -> {"runner_up", "margin", "se", "lead", "clear"}``: the mean margin over the runner-up (its
        per-fold differences averaged), the standard error of those paired differences, whether the mean is at
        least the runner-up's (``lead``) and whether the margin is positive and larger than its standard error
        (``clear``).
    """
    out: dict[str, dict[str, Any]] = {}
    for k in metrics:
        others = {m: v[k][0] for m, v in summary.items() if m != method}
        if not others:
            continue
        runner = max(others, key=lambda m: others[m])
        margin, se = paired_margin(rows, pair_type, method, runner, k)
        out[k] = {
            "runner_up": runner,
            "margin": margin,
            "se": se,
            "lead": summary[method][k][0] >= others[runner],
            "clear": margin_verdict(margin, se) == "won",
        }
    return out


def head_to_head(
    rows: Sequence[dict[str, Any]], pair_type: str, method: str, others: Sequence[str], metrics: Sequence[str]
) -> dict[str, dict[str, list[str]]]:
    """``method`` against each other method alone, on one pair type: the metrics it clearly wins and clearly loses.

    :func:`clear_wins` asks, per metric, for a lead over whichever method is best on that metric (a different one
    per metric); this asks the question a user comparing two methods asks, one method at a time.

    Args:
        rows: per-image rows with ``pair_type``, ``method``, ``fold`` and the metrics.
        pair_type: the pair type.
        method: the method compared (``default``).
        others: the methods to compare it with, each on its own; those without rows of the pair type are left out.
        metrics: the metrics.

    Returns:
        ``other -> {"won": [...], "lost": [...], "undecided": [...]}``: the metrics whose paired margin
        (:func:`paired_margin`) is positive and larger than its standard error, those whose margin is negative and
        larger in size, and those without a standard error (fewer than two folds in common); the remaining metrics
        are within their error.
    """
    out: dict[str, dict[str, list[str]]] = {}
    for other in others:
        if other == method or not any(r["pair_type"] == pair_type and r["method"] == other for r in rows):
            continue
        verdicts: dict[str, list[str]] = {"won": [], "lost": [], "undecided": [], "within": []}
        for k in metrics:
            verdicts[margin_verdict(*paired_margin(rows, pair_type, method, other, k))].append(k)
        out[other] = {v: verdicts[v] for v in ("won", "lost", "undecided")}
    return out


def _head_to_head_lines(rows: Sequence[dict[str, Any]], pair_types: Sequence[str], metrics: Sequence[str]) -> list[str]:
    """Markdown: :func:`head_to_head` of the default model against every other method, one row per method."""
    per = {
        pt: head_to_head(rows, pt, "default", list(dict.fromkeys(r["method"] for r in rows)), metrics)
        for pt in pair_types
    }
    others = list(dict.fromkeys(m for pt in pair_types for m in per[pt]))
    lines = [
        "## The default model against each method alone (cross-validated)",
        "",
        f"For each other method on its own: the number of the {len(metrics)} metrics on which the default model's "
        "paired margin over that method (as above) is positive and larger than its standard error (won), the number "
        "on which it is negative and larger (lost: named), the rest within their error. The table above asks more: a "
        "lead over the best method of each metric, a different method per metric.",
        "",
        "| method | " + " | ".join(pair_types) + " |",
        "| --- | " + " | ".join("---" for _ in pair_types) + " |",
    ]
    for m in others:
        cells = []
        for pt in pair_types:
            h = per[pt].get(m)
            if h is None or h["undecided"]:  # no rows, or folds too few for a standard error
                cells.append("-" if h is None else f"- (no standard error: {', '.join(h['undecided'])})")
                continue
            lost = f" ({', '.join(h['lost'])})" if h["lost"] else ""
            cells.append(f"won {len(h['won'])}, lost {len(h['lost'])}{lost}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines + [""]


def standing_lines(
    rows: Sequence[dict[str, Any]], standing: dict[str, dict[str, dict[str, Any]]], metrics: Sequence[str]
) -> list[str]:
    """Markdown: the default model's margin over the runner-up per metric, the floor targets, and the default
    model against each other method alone (:func:`head_to_head`)."""
    lines = [
        "## The default model against the best other method (cross-validated)",
        "",
        "Margin: the mean over folds of the default model's per-fold mean minus the runner-up's, ± the "
        "standard error of those paired differences; a win is **clear** when the margin is positive and "
        "larger than its standard error. The last columns: SCD against the maximum rule's, SSIM against the "
        "average rule's (the same paired margins).",
        "",
        "| pair type | "
        + " | ".join(metrics)
        + " | clear wins | "
        + " | ".join(f"{k} - {rule}" for k, rule in FLOOR_TARGETS)
        + " |",
        "| --- | "
        + " | ".join("---" for _ in metrics)
        + " | ---: | "
        + " | ".join("---" for _ in FLOOR_TARGETS)
        + " |",
    ]
    for pt, per in standing.items():
        cells = []
        for k in metrics:
            st = per[k]
            cell = f"{st['margin']:+.4f} ± {st['se']:.4f} vs {st['runner_up']}"
            cells.append(f"**{cell}**" if st["clear"] else cell)
        floors = []
        for k, rule in FLOOR_TARGETS:
            if k in metrics and any(r["method"] == rule and r["pair_type"] == pt for r in rows):
                margin, se = paired_margin(rows, pt, "default", rule, k)
                floors.append(f"{margin:+.4f} ± {se:.4f}")
            else:
                floors.append("-")
        n_clear = sum(bool(st["clear"]) for st in per.values())
        lines.append(f"| {pt} | " + " | ".join(cells) + f" | {n_clear} / {len(metrics)} | " + " | ".join(floors) + " |")
    return lines + [""] + _head_to_head_lines(rows, list(standing), metrics)
