"""The benchmark's outputs: per-image and timing CSVs, bar plots per metric, the montage of every method and the
Markdown report (:func:`write_outputs` writes them all from one :class:`BenchmarkResults`)."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..networks.nets.two_source import TWO_SOURCE_NETWORKS
from ..utils.constants import PAIR_TYPES
from ..utils.optional import require_extra
from .cross_validation import standing_lines

__all__ = [
    "BENCHMARK_PREAMBLE",
    "BenchmarkResults",
    "row_note",
    "summarise",
    "wins_against",
    "write_outputs",
    "bar_plots",
    "display",
    "montage_figure",
    "fmt_table",
]

#: How the docs page is made (written under its title when the report goes to a chosen path).
BENCHMARK_PREAMBLE = (
    "Regenerate this page with `python benchmarks/cross_validate.py train --workdir runs/cv` (train.json once "
    "per fold, that fold's cases held out), `python benchmarks/cross_validate.py export --workdir runs/cv "
    "--gains GAINS` (the gains of the shipped model, chosen on the cross-validated means by "
    "`benchmarks/calibrate_detail_gain.py --cv 4`), then `monai-fusion benchmark --data $MONAI_FUSION_HARVARD "
    "--cv 4 --score-on written --fold-weights default=runs/cv/fold{fold}/default.pt -o docs/benchmark --report "
    "docs/benchmark.md --overwrite` (the tables, plots and montage all come from that run).\n\n"
    '!!! warning "Read the montage as well as the tables"\n'
    "    Every row scores the image a user gets on disk (`--score-on written`): for PET/SPECT-MRI the 8-bit RGB "
    "image that the fused luminance makes with the source's colours put back, read back as luminance: the fused "
    "luminance rounded to whole grey levels (the writers keep it), except where colours out of gamut are clipped. "
    "The metrics compare the fused image "
    "with each source, and an image that copies the MRI scores well on most of them: on the CT-MRI pairs the "
    "unchanged MRI would lead on MI, FMI, SSIM, VIF and FSIM. The shipped `default` model is trained to keep what "
    "only one source shows, the CT bone among it (see the CT-MRI row of the montage), and gives up some of those "
    "scores for it. The `poster`, `msrpan` and `msdra` rows use their shipped trained weights "
    "(docs/reproduction.md says how they were trained); the notes name the backbone of every row that uses one."
)


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


def row_note(name: str, fuser: Any, weights: dict[str, str]) -> str:
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
    return where if name in weights or name in TWO_SOURCE_NETWORKS else ""


@dataclass
class BenchmarkResults:
    """What one benchmark run measured, as :func:`write_outputs` reports it.

    Attributes:
        rows: one dict per pair and method (``pair_type``, ``name``, ``case``, ``method`` and each metric).
        summary: ``pair_type -> method -> metric -> (mean, std)``.
        metrics: the metric names, in report order.
        methods: the methods that were scored, in order.
        kinds: ``method -> "trained" | "-"`` (a network with weights, or a rule).
        timings: seconds per 256x256 pair of each scored method.
        random_timings: seconds per pair of the randomly initialised networks (timing only).
        wins: ``pair_type -> metrics`` the default model leads.
        notes: ``method -> note`` (weights, backbone, skipped).
        examples: the montage rows ``(title, sample, {method: image, "__other__": image})``.
        standing: cross-validated runs only: ``pair_type -> metric -> {"runner_up", "margin", "se", "lead",
            "clear"}`` of the default model (``summary`` then holds means over folds and standard errors).
        cross_validated: ``summary`` holds means over folds and standard errors (also when ``standing`` is empty:
            a run of the default model alone).
    """

    rows: list[dict[str, Any]]
    summary: dict[str, dict[str, dict[str, tuple[float, float]]]]
    metrics: list[str]
    methods: list[str]
    kinds: dict[str, str]
    timings: dict[str, float]
    random_timings: dict[str, float]
    wins: dict[str, list[str]]
    notes: dict[str, str]
    examples: list[tuple[str, dict[str, Any], dict[str, np.ndarray]]]
    standing: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    cross_validated: bool = False


def _write_csvs(out: Path, res: BenchmarkResults) -> list[Path]:
    csv_path = out / "per_image.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        fold = ["fold"] if res.rows and "fold" in res.rows[0] else []
        scored = [c for c in ("scored_on", "writer") if res.rows and c in res.rows[0]]
        w = csv.DictWriter(fh, fieldnames=["pair_type", "name", "case", "method", *scored, *fold, *res.metrics])
        w.writeheader()
        w.writerows(res.rows)
    t_path = out / "timings.csv"
    poster = res.timings.get("poster")
    with open(t_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "ms_per_pair", "ratio_to_poster", "weights"])
        for m in res.methods:
            ratio = poster / res.timings[m] if poster and res.timings[m] > 0 else math.nan
            w.writerow([m, f"{res.timings[m] * 1000:.2f}", f"{ratio:.1f}", res.kinds[m]])
        for m, t in res.random_timings.items():
            w.writerow([m, f"{t * 1000:.2f}", "", "random"])
    return [csv_path, t_path]


def _report_lines(res: BenchmarkResults, rel: Any, plot_paths: Sequence[Path], montage: Path) -> list[str]:
    lines: list[str] = []
    if res.notes:
        lines += ["Notes:", ""] + [f"- `{m}`: {n}" for m, n in res.notes.items()] + [""]
    if res.standing or res.cross_validated:
        lines += [
            "## Metrics (mean over folds ± fold-to-fold standard error, per pair type; best in bold)",
            "",
        ] + fmt_table(res.summary, res.metrics)
    else:
        lines += ["## Metrics (mean ± std per pair type; best in bold)", ""] + fmt_table(res.summary, res.metrics)
    if res.standing:
        lines += standing_lines(res.rows, res.standing, res.metrics)
    if res.wins:
        lines += [
            "## The default model against every other method",
            "",
            "| pair type | metrics where `default` is at least as good as every other method | count |",
            "| --- | --- | ---: |",
        ]
        lines += [f"| {pt} | {', '.join(w) or '-'} | {len(w)} / {len(res.metrics)} |" for pt, w in res.wins.items()]
        lines.append("")
    lines += ["## Time per 256x256 pair", "", "| method | ms per pair | poster / method |", "| --- | ---: | ---: |"]
    poster = res.timings.get("poster")
    for m in res.methods:
        ratio = f"{poster / res.timings[m]:.1f}x" if poster and res.timings[m] > 0 else "-"
        lines.append(f"| {m} | {res.timings[m] * 1000:.1f} | {ratio} |")
    if res.random_timings:
        lines += [
            "",
            "## Time per 256x256 pair, randomly initialised networks (timing only, not in the quality tables)",
            "",
            "| method | ms per pair |",
            "| --- | ---: |",
        ]
        lines += [f"| {m} (random init) | {t * 1000:.1f} |" for m, t in res.random_timings.items()]
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({rel(p)})" for p in plot_paths]
    lines += ["", "## Examples", "", f"![montage]({rel(montage)})", ""]
    return lines


def write_outputs(
    out: Path,
    res: BenchmarkResults,
    title: str = "Benchmark",
    header: str = "",
    preamble: str = "",
    report_path: str | os.PathLike | None = None,
) -> list[Path]:
    """Write ``per_image.csv``, ``timings.csv``, ``plots/<metric>.png``, ``montage.png`` and the report.

    Args:
        out: the output folder (created).
        res: the run's results.
        title: the report's first heading.
        header: the line saying which pairs, split, protocol and machine.
        preamble: markdown placed under the title (e.g. how to regenerate the page).
        report_path: the report file (default ``out/report.md``); its image links are relative to its folder.

    Returns:
        The written paths, the report last.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = _write_csvs(out, res)
    plot_paths = bar_plots(res.summary, res.methods, res.metrics, out / "plots")
    written += plot_paths
    written.append(montage_figure(res.examples, res.methods, out / "montage.png"))
    report = Path(report_path) if report_path is not None else out / "report.md"

    def rel(p: Path) -> str:
        return Path(os.path.relpath(p.resolve(), report.parent.resolve())).as_posix()

    lines = [f"# {title}", ""] + ([preamble, ""] if preamble else []) + ([header, ""] if header else [])
    lines += _report_lines(res, rel, plot_paths, out / "montage.png")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines), encoding="utf-8")
    written.append(report)
    return written


def bar_plots(summary: dict[str, Any], methods: Sequence[str], metrics: Sequence[str], out: Path) -> list[Path]:
    matplotlib = require_extra("matplotlib", "plots", "the benchmark's bar plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    pts = list(summary)
    for k in metrics:
        fig, ax = plt.subplots(figsize=(9, 3.2))
        width = 0.8 / max(1, len(methods))
        for i, m in enumerate(methods):
            means = [summary[pt][m][k][0] if m in summary[pt] else np.nan for pt in pts]
            stds = [summary[pt][m][k][1] if m in summary[pt] else 0.0 for pt in pts]
            ax.bar(np.arange(len(pts)) + i * width, means, width, yerr=stds, label=m, capsize=1.5)
        ax.set_xticks(np.arange(len(pts)) + 0.4 - width / 2, pts)
        ax.set_ylabel(k)
        ax.legend(fontsize=7, ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        fig.tight_layout()
        path = out / f"{k}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def display(sample: dict[str, Any], key: str) -> np.ndarray:
    arr = np.asarray(sample[key], dtype=np.float32)
    return np.clip(np.moveaxis(arr, 0, -1) if arr.shape[0] == 3 else arr[0], 0, 1)


def montage_figure(
    examples: list[tuple[str, dict[str, Any], dict[str, np.ndarray]]], methods: Sequence[str], path: Path
) -> Path:
    matplotlib = require_extra("matplotlib", "plots", "the benchmark's montage")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 + len(methods)
    fig, axes = plt.subplots(len(examples), cols, figsize=(1.6 * cols, 1.7 * len(examples)), squeeze=False)
    for r, (title, sample, fused) in enumerate(examples):
        panels = [("MRI", display(sample, "mri")), (sample.get("modality", "other"), fused["__other__"])]
        panels += [(m, fused[m]) for m in methods]
        for c, (name, img) in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 or c == 1:
                ax.set_title(name, fontsize=7)
        axes[r][0].set_ylabel(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def fmt_table(summary: dict[str, dict[str, dict[str, tuple[float, float]]]], metrics: Sequence[str]) -> list[str]:
    lines = []
    for pt, table in summary.items():
        lines += [
            f"### {pt}",
            "",
            "| method | " + " | ".join(metrics) + " |",
            "| --- | " + " | ".join("---:" for _ in metrics) + " |",
        ]
        best = {k: max(v[k][0] for v in table.values()) for k in metrics}
        for m, vals in table.items():
            cells = []
            for k in metrics:
                mean, std = vals[k]
                cell = f"{mean:.4f} ± {std:.3f}"
                cells.append(f"**{cell}**" if mean >= best[k] else cell)
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines
