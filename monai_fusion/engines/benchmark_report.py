"""The benchmark's report parts: bar plots per metric, the montage of every method, the Markdown table."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["bar_plots", "display", "montage_figure", "fmt_table"]


def bar_plots(summary: dict[str, Any], methods: Sequence[str], metrics: Sequence[str], out: Path) -> list[Path]:
    import matplotlib

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
    import matplotlib

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
