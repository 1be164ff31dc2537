"""Benchmark every fusion method on the same pairs with the same metric code.

This is what ``monai-fusion benchmark --data DIR [--split val|all | --cv K] [--methods ...]`` runs. Each pair
goes through the project's validation preset once (the atlas pairs are co-registered, so no
registration); every method fuses the same MRI and other-modality luminance; the fused luminance is
quantised to 8 bits and scored by :func:`monai_fusion.metrics.compute_metrics` under one protocol. With
``score_on="written"`` the luminance of the 8-bit image a user gets on disk is scored instead: for PET/SPECT the
RGB image with the source's colours put back, whose luminance differs (colours out of gamut clipped, each channel
rounded). Written here because MONAI has no multi-method comparison workflow; it only
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
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..fusers import available_fusers
from ..metrics.registry import compute_metrics, resolve_metrics
from ..transforms.presets import fusion_postprocess
from ..utils.constants import PAIR_TYPES, modality_of_pair
from ..utils.errors import FusionInputError
from .benchmark_report import (
    BENCHMARK_PREAMBLE,
    BenchmarkResults,
    display,
    summarise,
    wins_against,
    write_outputs,
)
from .benchmark_setup import (
    BENCHMARK_METRICS,
    SCORE_ON,
    BenchmarkOptions,
    benchmark_methods,
    benchmark_row,
    build_fuser,
    load_pairs,
    method_fusers,
    reusable_rows,
    scored_fusion,
    time_method,
)
from .cross_validation import assign_folds, clear_wins, summarise_folds
from .inference import other_for_display

__all__ = [
    "BENCHMARK_METRICS",
    "BENCHMARK_PREAMBLE",
    "BenchmarkOptions",
    "SCORE_ON",
    "benchmark_methods",
    "load_pairs",
    "run_benchmark",
    "summarise",
    "time_method",
    "wins_against",
]


def run_benchmark(
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: BenchmarkOptions | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Fuse every pair with every method, score them, and write the CSVs, report, plots and montage.

    Args:
        data: a pairs folder in the Whole Brain Atlas layout ``<root>/<PAIR>/<MODALITY>/<name>.png``.
        out_dir: output folder (created; an existing non-empty one needs ``overwrite``).
        options: the run's settings (:class:`BenchmarkOptions`; default: its defaults).
        settings: fields of :class:`BenchmarkOptions` that override ``options`` (``methods=[...]``, ``cv=...``).

    Returns:
        ``{"rows", "summary", "timings", "random_timings", "wins", "standing", "outputs"}``: per-image rows,
        per-pair-type means/stds (with ``cv``: means over folds / standard errors), seconds per pair per method
        (and per randomly initialised method), the metrics the default model leads per pair type, with ``cv``
        its margin over the runner-up per metric (:func:`clear_wins`; empty otherwise), written paths.

    Raises:
        FusionInputError: unknown method or metric, no pairs, or an existing output folder.
        TypeError: a setting that is not a field of :class:`BenchmarkOptions`.
    """
    opts = replace(options or BenchmarkOptions(), **settings)
    cv, device, progress = opts.cv, opts.device, opts.progress
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not opts.overwrite:
        raise FusionInputError(f"{out} exists and is not empty; pass --overwrite to replace its benchmark files")
    if opts.score_on not in SCORE_ON:
        raise FusionInputError(f"score_on={opts.score_on!r}: expected one of {', '.join(SCORE_ON)}")
    methods = list(opts.methods or benchmark_methods())
    random_methods = list(opts.random_methods)
    unknown = [m for m in [*methods, *random_methods] if m not in available_fusers()]
    if unknown:
        raise FusionInputError(f"unknown method(s) {unknown}; choose from {', '.join(available_fusers())}")
    metrics = list(resolve_metrics(list(opts.metrics)))
    weights = dict(opts.weights or {})
    unknown = [m for m in (cv.fold_weights if cv else {}) if m not in methods]
    if unknown:
        raise FusionInputError(f"--fold-weights names {unknown}, which are not among the benchmarked methods {methods}")
    samples = load_pairs(data, "all" if cv else opts.split, opts.val_fraction, opts.seed, opts.max_pairs)
    folds = assign_folds(samples, cv.num_folds, cv.seed) if cv else [0] * len(samples)
    fresh = {*weights, *(cv.fold_weights if cv else {})}  # given weights of their own: never reused
    reused = (
        reusable_rows(
            opts.reuse_rows,
            samples,
            folds,
            [m for m in methods if m not in fresh],
            metrics,
            cv is not None,
            scored_on=opts.score_on,
        )
        if opts.reuse_rows
        else {}
    )
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
        per_fold, fuser, note = method_fusers(name, weights, cv, folds)
        if fuser is None:
            notes[name] = note
            if progress:
                print(f"benchmark: {name}: {note}", flush=True)
            continue
        if name in reused:  # scored before: only the montage's pairs are fused again
            note = "; ".join(x for x in (note, f"per-image rows reused from `{opts.reuse_rows}`") if x)
        if note:
            notes[name] = note
        todo = sorted(examples_idx.values()) if name in reused else list(range(len(samples)))
        t0 = time.perf_counter()
        fused_at = {
            i: per_fold[folds[i]]
            .fuse(
                mri[i : i + 1].to(device),
                other[i : i + 1].to(device),
                modality=modality_of_pair(samples[i]["pair_type"]),
            )
            .cpu()[0]
            for i in todo
        }
        fuse_s = time.perf_counter() - t0
        timings[name] = time_method(fuser, *timing_pair, opts.timing_repeats, modality=timing_modality)
        if name in reused:
            rows += reused[name]
        else:
            vals = compute_metrics(
                torch.stack([scored_fusion(samples[i], fused_at[i], opts.score_on) for i in todo]),
                torch.round(mri * scale),
                torch.round(other * scale),
                metrics=metrics,
                protocol=opts.protocol,
            )
            rows += [
                benchmark_row(s, name, folds[i] if cv else None, {k: float(vals[k][i]) for k in metrics}, opts.score_on)
                for i, s in enumerate(samples)
            ]
        for pt, i in examples_idx.items():
            d = post({**samples[i], "fused": fused_at[i]})
            montage[pt][name] = display(d, "fused")
        ran.append(name)
        kinds[name] = "trained" if getattr(fuser, "trained", False) else "-"  # "-": a rule, nothing learned
        if progress:
            print(
                f"benchmark: {name}: {len(todo)} pairs fused in {fuse_s:.1f} s"
                f"{' (rows reused)' if name in reused else ''}, "
                f"{timings[name] * 1000:.1f} ms per pair (median of {opts.timing_repeats})",
                flush=True,
            )
    random_timings: dict[str, float] = {}
    for name in random_methods:  # timing only: never fused for the quality tables
        fuser, _ = build_fuser(name, weights, random_init=True)
        random_timings[name] = time_method(fuser, *timing_pair, opts.timing_repeats, modality=timing_modality)
        if progress:
            print(
                f"benchmark: {name} (randomly initialised): {random_timings[name] * 1000:.1f} ms per pair", flush=True
            )
    summary = summarise_folds(rows, ran, metrics) if cv else summarise(rows, ran, metrics)
    wins = {  # with no other method there is nothing to lead
        pt: wins_against(table, "default", metrics)
        for pt, table in summary.items()
        if "default" in table and len(table) > 1
    }
    standing = (
        {  # a run of the default model alone has no other method to stand against: no standing table
            pt: clear_wins(rows, table, pt, "default", metrics)
            for pt, table in summary.items()
            if "default" in table and len(table) > 1
        }
        if cv
        else {}
    )

    examples = []
    for pt, i in examples_idx.items():
        montage[pt]["__other__"] = display({"o": other_for_display(samples[i])}, "o")
        examples.append((f"{pt} {samples[i]['name']}", samples[i], montage[pt]))
    counts = ", ".join(f"{pt}: {sum(s['pair_type'] == pt for s in samples)}" for pt in summary)
    how = f" (case-wise, val_fraction {opts.val_fraction}, seed {opts.seed})" if opts.split == "val" else ""
    if cv:
        n_folds = {pt: len({f for f, s in zip(folds, samples) if s["pair_type"] == pt}) for pt in summary}
        how = (
            f": {cv.num_folds}-fold case-wise cross-validation (seed {cv.seed}; folds per pair type: "
            + ", ".join(f"{pt} {n}" for pt, n in n_folds.items())
            + ", one per case where a pair type has fewer cases than folds)"
        )
    header = (
        f"{len(samples)} pairs ({counts}) from `{data}`, {'every pair' if cv else f'split `{opts.split}`'}{how}; "
        f"metrics under the `{opts.protocol}` "
        + (
            "protocol on the luminance of the written 8-bit image (for PET/SPECT the RGB image: the fused luminance "
            "with the PET/SPECT chroma put back)"
            if opts.score_on == "written"
            else "protocol on the 8-bit fused luminance"
        )
        + f"; device `{device}`, {torch.get_num_threads()} CPU threads "
        f"({platform.machine()})."
    )
    written = write_outputs(
        out,
        BenchmarkResults(
            rows,
            summary,
            metrics,
            ran,
            kinds,
            timings,
            random_timings,
            wins,
            notes,
            examples,
            standing=standing,
            cross_validated=cv is not None,
        ),
        title=opts.report_title,
        header=header,
        preamble=opts.preamble,
        report_path=opts.report_path,
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
        "standing": standing,
        "outputs": written,
    }
