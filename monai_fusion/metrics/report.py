"""The markdown summary of per-image metric rows: mean +- sample standard deviation per pair type."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from .protocols import MetricProtocol, get_protocol
from .registry import METRICS

__all__ = ["format_metric_table"]


def format_metric_table(
    rows: Sequence[dict[str, Any]], metrics: Sequence[str], protocol: str | MetricProtocol = "standard"
) -> str:
    """Markdown table: mean +- sample standard deviation of each metric per pair type, and over all.

    Args:
        rows: per-image rows with ``pair_type`` and each metric, as
            :func:`~monai_fusion.engines.evaluation.evaluate_folders` returns.
        metrics: the metric columns, in order.
        protocol: named in the caption.

    Returns:
        The caption line and the table.
    """
    proto = get_protocol(protocol)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["pair_type"]].append(r)
    if len(groups) > 1:
        groups["all"] = list(rows)
    header = [m if METRICS[m].higher_is_better else f"{m} (lower is better)" for m in metrics]
    lines = [
        f"Metrics under protocol `{proto.name}` (see docs/metrics.md): mean ± sample std per pair type.",
        "",
        "| pair type | n | " + " | ".join(header) + " |",
        "| --- | ---: |" + " ---: |" * len(metrics),
    ]
    for key, grp in groups.items():
        cells = []
        for m in metrics:
            v = np.array([r[m] for r in grp], dtype=np.float64)
            sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
            cells.append(f"{v.mean():.4f} ± {sd:.4f}")
        lines.append(f"| {key} | {len(grp)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
