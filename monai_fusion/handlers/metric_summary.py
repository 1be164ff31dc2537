"""Per-pair-type summary of an evaluation (mean +- std), and the row names of MONAI's ``MetricsSaver``."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.data import decollate_batch
from monai.utils import string_list_all_gather

from ..metrics.protocols import MetricProtocol, get_protocol
from ..metrics.registry import METRICS
from ..metrics.report import format_metric_table
from ..utils.constants import PAIR_TYPES

__all__ = ["pair_ids", "MetricSummaryWriter"]

logger = logging.getLogger(__name__)


def pair_ids(batch: Any) -> list[dict[str, str]]:
    """``[{"filename_or_obj": "<pair_type>/<name>"}, ...]`` for each item of a batch.

    The ``batch_transform`` of ``MetricsSaver``, so its per-image CSV rows name the pair. Items without
    ``pair_type``/``name`` fall back to the MRI's file name.
    """
    items = batch if isinstance(batch, list) else decollate_batch(batch, detach=False)
    out = []
    for it in items:
        if "pair_type" in it and "name" in it:
            ident = f"{it['pair_type']}/{it['name']}"
        else:
            ident = str(getattr(it.get("mri"), "meta", {}).get("filename_or_obj", ""))
        out.append({"filename_or_obj": ident})
    return out


class MetricSummaryWriter:
    """Write (and log) mean +- sample std of each fusion metric per pair type after an evaluation.

    Reads the per-image values that the metric handlers keep in ``engine.state.metric_details`` (attach
    after them: use ``save_details=True``, the default of :func:`fusion_metric_handlers`) and the pair types of
    the batches; writes :func:`~monai_fusion.metrics.report.format_metric_table`'s markdown table.

    Args:
        save_dir: output folder.
        filename: file name of the table.
        protocol: the metric protocol named in the caption.
        save_rank: the rank that writes in distributed runs.
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        filename: str = "summary.md",
        protocol: str | MetricProtocol = "standard",
        save_rank: int = 0,
    ) -> None:
        self.path = Path(save_dir) / filename
        self.protocol = get_protocol(protocol)
        self.save_rank = save_rank
        self._ids: list[str] = []
        self.table: str = ""

    def attach(self, engine: Engine) -> None:
        """Collect pair ids each iteration, write at the end of the run."""
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _reset(self, _engine: Engine) -> None:
        self._ids = []

    def _collect(self, engine: Engine) -> None:
        self._ids += [m["filename_or_obj"] for m in pair_ids(engine.state.batch)]

    def __call__(self, engine: Engine) -> None:
        """Build the table from ``engine.state.metric_details``; write it on ``save_rank``."""
        ids = string_list_all_gather(self._ids) if torch.distributed.is_initialized() else self._ids
        details = getattr(engine.state, "metric_details", {}) or {}
        names = [n for n in details if n in METRICS]
        if not names or not ids:
            return
        values = {n: torch.as_tensor(details[n]).reshape(-1).tolist() for n in names}
        rows = []
        for i, ident in enumerate(ids):
            pair_type, _, name = ident.rpartition("/")
            rows.append(
                {
                    "pair_type": pair_type if pair_type in PAIR_TYPES else "all",
                    "name": name,
                    **{n: values[n][i] for n in names},
                }
            )
        self.table = format_metric_table(rows, names, self.protocol)
        if (torch.distributed.get_rank() if torch.distributed.is_initialized() else 0) == self.save_rank:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(self.table + "\n")
            engine.logger.info(f"metric summary written to {self.path}:\n{self.table}")
