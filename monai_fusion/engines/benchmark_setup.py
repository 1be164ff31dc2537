"""The benchmark's inputs: which methods, which pairs, one fuser per method (or per fold), and the timer.

Split from :mod:`monai_fusion.engines.benchmark` so the workflow module holds the loop only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..data.datalist import find_pairs, split_by_case
from ..data.quantise import WRITER_RULE, channels_to_uint8
from ..fusers import available_fusers, get_fuser
from ..transforms.colour import rgb_to_luminance
from ..transforms.presets import fusion_postprocess, fusion_preprocess
from ..utils.constants import PAIR_TYPES, SCORE_ON
from ..utils.errors import FusionInputError
from .benchmark_report import row_note
from .cross_validation import CrossValidation

__all__ = [
    "BENCHMARK_METRICS", "BenchmarkOptions", "benchmark_methods", "load_pairs", "build_fuser", "method_fusers",
    "time_method", "reusable_rows", "benchmark_row", "SCORE_ON", "written_luminance", "scored_fusion",
]  # fmt: skip


#: The source-referenced metrics of the comparison, in report order.
BENCHMARK_METRICS: tuple[str, ...] = ("MI", "FMI", "Qabf", "SSIM", "VIF", "FSIM", "SCD")


@dataclass(frozen=True)
class BenchmarkOptions:
    """The settings of one ``run_benchmark`` (every field has the CLI's default).

    Attributes:
        split: ``"val"``: the case-wise validation split of the bundle (``val_fraction``, ``seed``); ``"all"``.
        methods: registry names (default :func:`benchmark_methods`: every registered method).
        metrics: metric names (default :data:`BENCHMARK_METRICS`).
        protocol: metric protocol.
        val_fraction: validation fraction of cases per pair type (as in the bundle's train.json).
        seed: split seed (as in train.json).
        max_pairs: at most this many pairs per pair type (quick runs).
        weights: ``method -> checkpoint`` for network methods (e.g. your own trained poster weights).
        device: where the methods run (timings are taken there).
        timing_repeats: timed calls per method on one 256x256 pair (median reported).
        overwrite: allow a non-empty ``out_dir``.
        progress: print one line per method.
        report_title: first heading of the report.
        report_path: where to write the markdown report (default ``out_dir/report.md``); its links to the plots
            and montage are relative to its folder (``docs/benchmark.md`` with ``out_dir=docs/benchmark``).
        preamble: markdown placed under the title (e.g. how to regenerate the page).
        random_methods: network methods also timed randomly initialised; they appear in a timing table of their
            own, never among the quality rows.
        cv: cross-validate instead of one split: every pair is used, each case held out once, the tables give the
            mean over folds with the fold-to-fold standard error, and the methods of ``cv.fold_weights`` fuse
            each fold with the checkpoint trained without it (``split`` and ``val_fraction`` are unused).
        reuse_rows: an earlier run's ``per_image.csv`` on the same pairs (and folds): the methods it covers keep
            their rows (only the montage's pairs are fused again, and the timings taken), except those given
            ``weights`` or ``cv.fold_weights``, which are always fused.
        score_on: ``"luminance"`` or ``"written"`` (:data:`SCORE_ON`): for PET/SPECT the written RGB image's
            luminance is the fused one rounded (the writers keep it, :func:`~monai_fusion.data.quantise.rgb_to_uint8`)
            except where colours out of gamut are clipped.

    """

    split: str = "val"
    methods: Sequence[str] | None = None
    metrics: Sequence[str] = BENCHMARK_METRICS
    protocol: str = "standard"
    val_fraction: float = 0.2
    seed: int = 0
    max_pairs: int | None = None
    weights: dict[str, str] | None = None
    device: str = "cpu"
    timing_repeats: int = 5
    overwrite: bool = False
    progress: bool = True
    report_title: str = "Benchmark"
    report_path: str | os.PathLike | None = None
    preamble: str = ""
    random_methods: Sequence[str] = ()
    cv: CrossValidation | None = None
    reuse_rows: str | os.PathLike | None = None
    score_on: str = "luminance"


#: The note of a trained method whose one checkpoint serves every fold of a cross-validated run.
NOT_CROSS_VALIDATED = "the same weights on every fold (not cross-validated: folds hold its training cases)"


def benchmark_methods() -> list[str]:
    """Every registered method, the default model first (the registry is the one list; nothing is copied)."""
    names = available_fusers()
    return ["default", *[n for n in names if n != "default"]] if "default" in names else names


def load_pairs(
    data: str | os.PathLike, split: str = "val", val_fraction: float = 0.2, seed: int = 0, max_pairs: int | None = None
) -> list[dict[str, Any]]:
    """The benchmark's pairs: the split of ``data``, through the validation preset (no registration).

    Args:
        data: a pairs folder in the Whole Brain Atlas layout.
        split: ``"val"`` (case-wise validation split, ``val_fraction`` and ``seed`` as in train.json) or ``"all"``.
        val_fraction: validation fraction of cases per pair type.
        seed: split seed.
        max_pairs: at most this many pairs per pair type.

    Returns:
        One preprocessed sample dict per pair (``"mri"``, ``"other"``, ``"pair_type"``, ``"name"``, ...).

    Raises:
        FusionInputError: unknown split, bad ``max_pairs``, or no pairs.
    """
    items = find_pairs(data).items
    if split == "val":
        _, items = split_by_case(items, val_fraction=val_fraction, seed=seed)
    elif split != "all":
        raise FusionInputError(f"split={split!r}: expected 'val' (the case-wise validation split) or 'all'")
    if max_pairs is not None:
        if max_pairs < 1:
            raise FusionInputError(f"max_pairs={max_pairs} must be >= 1")
        per_type = {pt: [it for it in items if it["pair_type"] == pt] for pt in PAIR_TYPES}
        items = [it for pt in PAIR_TYPES for it in per_type[pt][:max_pairs]]
    if not items:
        raise FusionInputError(f"no pairs to benchmark in {data} (split {split!r})")
    pre = fusion_preprocess(register=False)  # the atlas pairs are co-registered; chroma kept for the montage
    return [pre(dict(it)) for it in items]


def build_fuser(name: str, weights: dict[str, str], random_init: bool = False) -> tuple[Any | None, str]:
    """The fuser ``name`` and its note; ``random_init`` networks start from seed 0, so timing reruns agree."""
    kwargs: dict[str, Any] = {"weights": weights[name]} if name in weights else {}
    if random_init:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the global RNG is restored afterwards
            return get_fuser(name, random_init=True), "randomly initialised (timing only)"
    try:
        fuser = get_fuser(name, **kwargs)
    except FusionInputError as err:  # e.g. zero_learning without its VGG19 file: said, never run untrained
        if name == "zero_learning":
            return None, f"skipped: {err}"
        raise
    return fuser, row_note(name, fuser, weights)


def time_method(
    fuser: Any, mri: torch.Tensor, other: torch.Tensor, repeats: int = 5, modality: str | None = None
) -> float:
    """Median seconds per call of ``fuser.fuse`` on one ``(1, 1, H, W)`` pair (of the other source's ``modality``),
    after one warm-up call."""
    fuser.fuse(mri, other, modality=modality)
    times = []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        fuser.fuse(mri, other, modality=modality)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def method_fusers(
    name: str, weights: dict[str, str], cv: CrossValidation | None, folds: Sequence[int]
) -> tuple[dict[int, Any], Any | None, str]:
    """The fuser of ``name`` for each fold, the one it is timed with, and its report note.

    With ``cv`` and ``name`` in ``cv.fold_weights`` every fold gets the checkpoint trained without it;
    otherwise one fuser (``weights`` or the shipped one) serves all folds, and a trained one is noted as
    not cross-validated. The timed fuser is ``None`` when the method cannot run (its note says why).
    """
    if cv is not None and name in cv.fold_weights:
        per_fold = {f: build_fuser(name, {name: cv.weights_of(name, f)})[0] for f in sorted(set(folds))}
        return per_fold, per_fold[folds[0]], f"one checkpoint per fold, `{cv.fold_weights[name]}`"
    fuser, note = build_fuser(name, weights)
    if cv is not None and getattr(fuser, "trained", False):
        note = "; ".join(x for x in (note, NOT_CROSS_VALIDATED) if x)
    return {f: fuser for f in set(folds)}, fuser, note


def benchmark_row(
    sample: dict[str, Any], method: str, fold: int | None, values: dict[str, float], scored_on: str = "luminance"
) -> dict[str, Any]:
    """One row of ``per_image.csv``: the pair, the method, what was scored (:data:`SCORE_ON`), the writers' rule
    when that is the written image (:data:`~monai_fusion.data.quantise.WRITER_RULE`, empty otherwise), its fold
    (``None``: no cross-validation), the metrics."""
    return {
        "pair_type": sample["pair_type"],
        "name": sample["name"],
        "case": sample.get("case", ""),
        "method": method,
        "scored_on": scored_on,
        "writer": WRITER_RULE if scored_on == "written" else "",
        **({"fold": fold} if fold is not None else {}),
        **values,
    }


def written_luminance(sample: dict[str, Any], fused: torch.Tensor) -> torch.Tensor:
    """The 8-bit luminance of the image written for ``fused``: what a reader of the output file measures.

    For PET/SPECT the fused luminance gets the other source's chroma back (:func:`fusion_postprocess`, the step
    before every writer), the RGB is put on the 8-bit grid as the writers put it
    (:func:`~monai_fusion.data.quantise.rgb_to_uint8`, which keeps its luminance), and its BT.601 luminance is
    rounded to whole grey levels, as the grey conversion of image readers does (PIL's ``convert("L")``) and as the
    benchmark rounds the sources (``monai-fusion evaluate`` keeps the fraction: on the atlas PET-MRI pairs that
    moves SCD by 0.004); for CT (grey output) the fused luminance is rounded. Written here because the metrics take
    luminance and the writers take RGB: nothing else joins the two.

    Args:
        sample: the preprocessed pair (its ``other_cb``/``other_cr`` chroma for PET/SPECT).
        fused: the method's ``(1, H, W)`` luminance in [0, 1].

    Returns:
        ``(1, H, W)`` float luminance on 0..255 (whole numbers).
    """
    rgb = fusion_postprocess()({**sample, "fused": fused.clamp(0, 1)})["fused"]
    img = torch.as_tensor(channels_to_uint8(np.asarray(rgb)), dtype=torch.float32)  # the writers' own 8-bit rule
    return torch.round(rgb_to_luminance(img)) if img.shape[0] == 3 else img


def scored_fusion(sample: dict[str, Any], fused: torch.Tensor, score_on: str = "luminance") -> torch.Tensor:
    """The ``(1, H, W)`` image on 0..255 that the metrics score for ``fused`` (:data:`SCORE_ON`): the fused
    luminance rounded to 8 bits, or :func:`written_luminance`."""
    return written_luminance(sample, fused) if score_on == "written" else torch.round(fused.clamp(0, 1) * 255)


def reusable_rows(
    path: str | os.PathLike,
    samples: Sequence[dict[str, Any]],
    folds: Sequence[int],
    methods: Sequence[str],
    metrics: Sequence[str],
    cross_validated: bool,
    option: str = "--reuse-rows",
    scored_on: str = "luminance",
) -> dict[str, list[dict[str, Any]]]:
    """The per-image rows of ``methods`` in an earlier run's ``per_image.csv``, for exactly these pairs.

    A recipe is iterated against baselines that do not change (the rules, the shipped networks); their rows are
    read back instead of fused again. A method is reused only when the file has a row for every pair (and, when
    cross-validated, with the same fold); methods the file lacks are left to fuse. ``option`` names the file in
    messages (the command-line option that gave it). Rows must have been scored on ``scored_on`` (a file without
    the ``scored_on`` column predates the choice and was scored on the luminance), and rows scored on the written
    image by today's writers (``writer`` equal to :data:`~monai_fusion.data.quantise.WRITER_RULE`): rows of files
    written by another rule differ from today's by a grey level here and there, which no check could tell apart.

    Raises:
        FusionInputError: the file is missing, lacks a metric column, covers a method only in part, or scored
            another image or writer rule.
    """
    import csv
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise FusionInputError(f"{option} {p} does not exist; give the per_image.csv of an earlier run")
    with open(p, newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    columns = set(table[0]) if table else set()
    missing = [
        c for c in ("pair_type", "name", "method", *metrics, *(["fold"] if cross_validated else [])) if c not in columns
    ]
    if missing:
        raise FusionInputError(f"{option} {p}: no column(s) {missing} (a run with other metrics or without --cv)")
    out: dict[str, list[dict[str, Any]]] = {}
    for name in methods:
        have = {(r["pair_type"], r["name"]): r for r in table if r["method"] == name}
        if not have:
            continue
        rows = []
        for s, f in zip(samples, folds):
            r = have.get((s["pair_type"], s["name"]))
            if r is None or (cross_validated and int(r["fold"]) != f):
                raise FusionInputError(
                    f"{option} {p}: method {name} lacks pair {s['pair_type']}/{s['name']}"
                    + (f" in fold {f}" if cross_validated else "")
                    + "; reuse rows of a run on the same pairs, folds and seed"
                )
            if (r.get("scored_on") or "luminance") != scored_on:
                raise FusionInputError(
                    f"{option} {p}: method {name} was scored on the {r.get('scored_on') or 'luminance'}, this run "
                    f"scores on the {scored_on} (--score-on); reuse rows of a run that scored the same image"
                )
            if scored_on == "written" and (r.get("writer") or "") != WRITER_RULE:
                rule = f"the rule {r['writer']!r}" if r.get("writer") else "an earlier rule (no writer recorded)"
                raise FusionInputError(
                    f"{option} {p}: method {name} was scored on files written by {rule}, this run writes them by "
                    f"{WRITER_RULE!r}; score the methods again"
                    + (" (once without it)" if option == "--reuse-rows" else "")
                )
            values = {k: float(r[k]) for k in metrics}
            rows.append(benchmark_row(s, name, f if cross_validated else None, values, scored_on))
        out[name] = rows
    return out
