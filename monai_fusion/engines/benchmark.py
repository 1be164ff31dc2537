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

import csv
import math
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
from .benchmark_report import bar_plots, display, fmt_table, montage_figure
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
#: How the docs page is made (written under its title when the report goes to a chosen path).
BENCHMARK_PREAMBLE = (
    "Regenerate this page with `monai-fusion benchmark --data $MONAI_FUSION_HARVARD -o docs/benchmark "
    "--report docs/benchmark.md --overwrite` (the tables, plots and montage all come from that run).\n\n"
    '!!! warning "Read the montage as well as the tables"\n'
    "    The metrics compare the fused image with each source, and an image that copies the MRI scores "
    "well on most of them: on this split's CT-MRI pairs the unchanged MRI would lead on MI, FMI, SSIM, "
    "VIF and FSIM. The shipped `default` model is trained to keep what only one source shows, the CT bone "
    "among it (see the CT-MRI row of the montage), and gives up some of those scores for it. The `poster`, "
    "`msrpan` and `msdra` rows use their shipped trained weights (docs/reproduction.md says how they were "
    "trained); the notes name the backbone of every row that uses one."
)


def benchmark_methods() -> list[str]:
    """Every registered method, the default model first (the registry is the one list; nothing is copied)."""
    names = available_fusers()
    return ["default", *[n for n in names if n != "default"]] if "default" in names else names


def _note(name: str, fuser: Any, weights: dict[str, str]) -> str:
    """What a table row used: the checkpoint and perceptual backbone of a network, the zero-learning backbone."""
    if name == "zero_learning":
        return "ImageNet VGG19 conv1_1 (torchvision's file)"
    if name == "zero_learning_medical":
        return "the zero-learning rule on the shipped medical feature extractor's first layer (no ImageNet file)"
    meta = getattr(fuser, "meta", None) or {}
    where = f"weights {weights[name]}" if name in weights else "shipped weights"
    if meta.get("recipe"):
        backbone = meta.get("perceptual_backbone") or "none"
        return f"{where}, trained by `{meta['recipe']}` (perceptual backbone: {backbone})"
    return where if name in weights or name in ("poster", "msrpan", "msdra") else ""


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
    return fuser, _note(name, fuser, weights)


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


def summarise(
    rows: Sequence[dict[str, Any]], methods: Sequence[str], metrics: Sequence[str]
) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """``pair_type -> method -> metric -> (mean, std)`` over the per-image rows."""
    out: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for pt in sorted({r["pair_type"] for r in rows}, key=lambda p: PAIR_TYPES.index(p) if p in PAIR_TYPES else 99):
        out[pt] = {}
        for m in methods:
            sel = [r for r in rows if r["pair_type"] == pt and r["method"] == m]
            if sel:
                out[pt][m] = {
                    k: (float(np.mean([r[k] for r in sel])), float(np.std([r[k] for r in sel]))) for k in metrics
                }
    return out


def wins_against(table: dict[str, dict[str, tuple[float, float]]], method: str, metrics: Sequence[str]) -> list[str]:
    """Metrics on which ``method``'s mean is at least as high as every other method's."""
    return [k for k in metrics if all(table[method][k][0] >= v[k][0] for name, v in table.items() if name != method)]


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
        timings[name] = time_method(
            fuser,
            mri[:1].to(device),
            other[:1].to(device),
            timing_repeats,
            modality=modality_of_pair(samples[0]["pair_type"]),
        )
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
        random_timings[name] = time_method(
            fuser,
            mri[:1].to(device),
            other[:1].to(device),
            timing_repeats,
            modality=modality_of_pair(samples[0]["pair_type"]),
        )
        if progress:
            print(
                f"benchmark: {name} (randomly initialised): {random_timings[name] * 1000:.1f} ms per pair", flush=True
            )
    summary = summarise(rows, ran, metrics)
    wins = {pt: wins_against(table, "default", metrics) for pt, table in summary.items() if "default" in table}

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    csv_path = out / "per_image.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["pair_type", "name", "case", "method", *metrics])
        w.writeheader()
        w.writerows(rows)
    written.append(csv_path)
    t_path = out / "timings.csv"
    with open(t_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "ms_per_pair", "ratio_to_poster", "weights"])
        for m in ran:
            ratio = timings["poster"] / timings[m] if "poster" in timings and timings[m] > 0 else math.nan
            w.writerow([m, f"{timings[m] * 1000:.2f}", f"{ratio:.1f}", kinds[m]])
        for m, t in random_timings.items():
            w.writerow([m, f"{t * 1000:.2f}", "", "random"])
    written.append(t_path)
    plot_paths = bar_plots(summary, ran, metrics, out / "plots")
    written += plot_paths
    examples = []
    for pt, i in examples_idx.items():
        montage[pt]["__other__"] = display({"o": other_for_display(samples[i])}, "o")
        examples.append((f"{pt} {samples[i]['name']}", samples[i], montage[pt]))
    written.append(montage_figure(examples, ran, out / "montage.png"))

    counts = ", ".join(f"{pt}: {sum(s['pair_type'] == pt for s in samples)}" for pt in summary)
    how = f" (case-wise, val_fraction {val_fraction}, seed {seed})" if split == "val" else ""
    lines = [
        f"# {report_title}",
        "",
        f"{len(samples)} pairs ({counts}) from `{data}`, split `{split}`{how}; metrics under the `{protocol}` "
        f"protocol on the 8-bit fused luminance; device `{device}`, {torch.get_num_threads()} CPU threads "
        f"({platform.machine()}).",
        "",
    ]
    if preamble:
        lines[2:2] = [preamble, ""]
    report = Path(report_path) if report_path is not None else out / "report.md"

    def rel(p: Path) -> str:
        return Path(os.path.relpath(p.resolve(), report.parent.resolve())).as_posix()

    if notes:
        lines += ["Notes:", ""] + [f"- `{m}`: {n}" for m, n in notes.items()] + [""]
    lines += ["## Metrics (mean ± std per pair type; best in bold)", ""] + fmt_table(summary, metrics)
    if wins:
        lines += [
            "## The default model against every other method",
            "",
            "| pair type | metrics where `default` is at least as good as every other method | count |",
            "| --- | --- | ---: |",
        ]
        lines += [f"| {pt} | {', '.join(w) or '-'} | {len(w)} / {len(metrics)} |" for pt, w in wins.items()]
        lines.append("")
    lines += ["## Time per 256x256 pair", "", "| method | ms per pair | poster / method |", "| --- | ---: | ---: |"]
    for m in ran:
        ratio = f"{timings['poster'] / timings[m]:.1f}x" if "poster" in timings and timings[m] > 0 else "-"
        lines.append(f"| {m} | {timings[m] * 1000:.1f} | {ratio} |")
    if random_timings:
        lines += [
            "",
            "## Time per 256x256 pair, randomly initialised networks (timing only, not in the quality tables)",
            "",
            "| method | ms per pair |",
            "| --- | ---: |",
        ]
        lines += [f"| {m} (random init) | {t * 1000:.1f} |" for m, t in random_timings.items()]
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({rel(p)})" for p in plot_paths]
    lines += ["", "## Examples", "", f"![montage]({rel(out / 'montage.png')})", ""]
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines), encoding="utf-8")
    written.append(report)
    if progress:
        print(
            f"benchmark: wrote {', '.join(str(p) for p in (csv_path, t_path, report))}, plots and montage", flush=True
        )
    return {
        "rows": rows,
        "summary": summary,
        "timings": timings,
        "random_timings": random_timings,
        "wins": wins,
        "outputs": written,
    }
