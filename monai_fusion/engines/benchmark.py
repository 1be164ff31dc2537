"""Benchmark every fusion method on the same pairs with the same metric code.

This is what ``monai-fusion benchmark --data DIR [--split val|all] [--methods ...]`` runs. Each pair
goes through the project's validation preset once (the atlas pairs are co-registered, so no
registration); every method fuses the same MRI and other-modality luminance; the fused image is
quantised to 8 bits (what a user gets on disk) and scored by :func:`monai_fusion.metrics.compute_metrics`
under one protocol. Written here because MONAI has no multi-method comparison workflow; it only
orchestrates the library's own pieces (datalist split, preset, fusers, metrics, writers).

Outputs in ``out_dir``: ``per_image.csv`` (one row per pair and method), ``timings.csv``,
``report.md`` (a table per pair type, mean +- std, best per metric in bold, the default model's
standing against every other method, timings with the ratio to the poster's network), one bar plot
per metric (``plots/<metric>.png``) and ``montage.png`` (one example pair per pair type, every method).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data.datalist import find_pairs, split_by_case
from ..fusers import available_fusers, get_fuser
from ..metrics.registry import compute_metrics, resolve_metrics
from ..transforms.presets import fusion_postprocess, fusion_preprocess
from ..utils.constants import PAIR_TYPES, modality_of_pair
from ..utils.errors import FusionInputError
from .benchmark_report import (
    BENCHMARK_PREAMBLE,
    BenchmarkResults,
    display,
    row_note,
    summarise,
    wins_against,
    write_outputs,
)
from .inference import other_for_display

__all__ = [
    "BENCHMARK_METRICS",
    "BENCHMARK_PREAMBLE",
    "benchmark_methods",
    "load_pairs",
    "run_benchmark",
    "summarise",
    "time_method",
    "wins_against",
]

#: The source-referenced metrics of the comparison (issue 6), in report order.
BENCHMARK_METRICS: tuple[str, ...] = ("MI", "FMI", "Qabf", "SSIM", "VIF", "FSIM", "SCD")


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


def _build(name: str, weights: dict[str, str], random_init: bool = False) -> tuple[Any | None, str]:
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


def run_benchmark(
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    split: str = "val",
    methods: Sequence[str] | None = None,
    metrics: Sequence[str] = BENCHMARK_METRICS,
    protocol: str = "standard",
    val_fraction: float = 0.2,
    seed: int = 0,
    max_pairs: int | None = None,
    weights: dict[str, str] | None = None,
    device: str = "cpu",
    timing_repeats: int = 5,
    overwrite: bool = False,
    progress: bool = True,
    report_title: str = "Benchmark",
    report_path: str | os.PathLike | None = None,
    preamble: str = "",
    random_methods: Sequence[str] = (),
) -> dict[str, Any]:
    """Fuse every pair with every method, score them, and write the CSVs, report, plots and montage.

    Args:
        data: a pairs folder in the Whole Brain Atlas layout ``<root>/<PAIR>/<MODALITY>/<name>.png``.
        out_dir: output folder (created; an existing non-empty one needs ``overwrite``).
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

    Returns:
        ``{"rows", "summary", "timings", "random_timings", "wins", "outputs"}``: per-image rows, per-pair-type
        means/stds, seconds per pair per method (and per randomly initialised method), the metrics the default
        model leads per pair type, written paths.

    Raises:
        FusionInputError: unknown method or metric, no pairs, or an existing output folder.
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FusionInputError(f"{out} exists and is not empty; pass --overwrite to replace its benchmark files")
    methods = list(methods or benchmark_methods())
    random_methods = list(random_methods)
    unknown = [m for m in [*methods, *random_methods] if m not in available_fusers()]
    if unknown:
        raise FusionInputError(f"unknown method(s) {unknown}; choose from {', '.join(available_fusers())}")
    metrics = list(resolve_metrics(list(metrics)))
    weights = dict(weights or {})
    samples = load_pairs(data, split, val_fraction, seed, max_pairs)
    mri = torch.stack([torch.as_tensor(s["mri"]).float() for s in samples])
    other = torch.stack([torch.as_tensor(s["other"]).float() for s in samples])
    scale = 255.0
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    notes: dict[str, str] = {}
    ran: list[str] = []
    kinds: dict[str, str] = {}
    examples_idx: dict[str, int] = {}  # the middle pair of each pair type: a slice with anatomy in it
    for pt in PAIR_TYPES:
        idx = [i for i, s in enumerate(samples) if s["pair_type"] == pt]
        if idx:
            examples_idx[pt] = idx[len(idx) // 2]
    montage: dict[str, dict[str, np.ndarray]] = {pt: {} for pt in examples_idx}
    post = fusion_postprocess()
    timing_pair = (mri[:1].to(device), other[:1].to(device))  # every method is timed on the first pair
    timing_modality = modality_of_pair(samples[0]["pair_type"])
    for name in methods:
        fuser, note = _build(name, weights)
        if fuser is None:
            notes[name] = note
            if progress:
                print(f"benchmark: {name}: {note}", flush=True)
            continue
        if note:
            notes[name] = note
        t0 = time.perf_counter()
        fused = torch.cat(
            [
                fuser.fuse(
                    mri[i : i + 1].to(device), other[i : i + 1].to(device), modality=modality_of_pair(s["pair_type"])
                ).cpu()
                for i, s in enumerate(samples)
            ]
        )
        fuse_s = time.perf_counter() - t0
        timings[name] = time_method(fuser, *timing_pair, timing_repeats, modality=timing_modality)
        f8 = torch.round(fused.clamp(0, 1) * scale)
        vals = compute_metrics(
            f8, torch.round(mri * scale), torch.round(other * scale), metrics=metrics, protocol=protocol
        )
        for i, s in enumerate(samples):
            rows.append(
                {
                    "pair_type": s["pair_type"],
                    "name": s["name"],
                    "case": s.get("case", ""),
                    "method": name,
                    **{k: float(vals[k][i]) for k in metrics},
                }
            )
        for pt, i in examples_idx.items():
            d = post({**samples[i], "fused": fused[i]})
            montage[pt][name] = display(d, "fused")
        ran.append(name)
        kinds[name] = "trained" if getattr(fuser, "trained", False) else "-"  # "-": a rule, nothing learned
        if progress:
            print(
                f"benchmark: {name}: {len(samples)} pairs fused in {fuse_s:.1f} s, "
                f"{timings[name] * 1000:.1f} ms per pair (median of {timing_repeats})",
                flush=True,
            )
    random_timings: dict[str, float] = {}
    for name in random_methods:  # timing only: never fused for the quality tables
        fuser, _ = _build(name, weights, random_init=True)
        random_timings[name] = time_method(fuser, *timing_pair, timing_repeats, modality=timing_modality)
        if progress:
            print(
                f"benchmark: {name} (randomly initialised): {random_timings[name] * 1000:.1f} ms per pair", flush=True
            )
    summary = summarise(rows, ran, metrics)
    wins = {pt: wins_against(table, "default", metrics) for pt, table in summary.items() if "default" in table}

    examples = []
    for pt, i in examples_idx.items():
        montage[pt]["__other__"] = display({"o": other_for_display(samples[i])}, "o")
        examples.append((f"{pt} {samples[i]['name']}", samples[i], montage[pt]))
    counts = ", ".join(f"{pt}: {sum(s['pair_type'] == pt for s in samples)}" for pt in summary)
    how = f" (case-wise, val_fraction {val_fraction}, seed {seed})" if split == "val" else ""
    header = (
        f"{len(samples)} pairs ({counts}) from `{data}`, split `{split}`{how}; metrics under the `{protocol}` "
        f"protocol on the 8-bit fused luminance; device `{device}`, {torch.get_num_threads()} CPU threads "
        f"({platform.machine()})."
    )
    written = write_outputs(
        out,
        BenchmarkResults(rows, summary, metrics, ran, kinds, timings, random_timings, wins, notes, examples),
        title=report_title,
        header=header,
        preamble=preamble,
        report_path=report_path,
    )
    if progress:
        print(
            f"benchmark: wrote {', '.join(str(p) for p in written[:2] + written[-1:])}, plots and montage", flush=True
        )
    return {
        "rows": rows,
        "summary": summary,
        "timings": timings,
        "random_timings": random_timings,
        "wins": wins,
        "outputs": written,
    }
