"""Report every term of the trainer's fusion loss (epoch means in ``engine.state.metrics``)."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from ignite.engine import Engine, Events
from torch import nn

__all__ = ["LossTermsHandler", "loss_terms_output"]


class LossTermsHandler:
    """Report every term of the trainer's fusion loss to the engine.

    Each iteration, ``loss_mse``, ``loss_grad`` and ``loss_perc`` (from the loss function's ``last_terms``)
    join ``loss`` in ``engine.state.output`` (every item when decollated); each epoch, their means land in
    ``engine.state.metrics`` as ``train_loss``, ``train_mse``, ``train_grad``, ``train_perc``, where
    ``StatsHandler`` and ``TensorBoardStatsHandler`` print and plot them.

    Args:
        loss_function: the loss holding ``last_terms``; ``None``: the engine's ``loss_function``.
        output_prefix: prefix of the per-iteration keys.
        metric_prefix: prefix of the epoch means.
    """

    def __init__(
        self, loss_function: nn.Module | None = None, output_prefix: str = "loss_", metric_prefix: str = "train_"
    ) -> None:
        self.loss_function = loss_function
        self.output_prefix = output_prefix
        self.metric_prefix = metric_prefix
        self._sums: dict[str, float] = {}
        self._count = 0

    def attach(self, engine: Engine) -> None:
        """Register on the trainer's epoch and iteration events."""
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch)

    def _reset(self, _engine: Engine) -> None:
        self._sums, self._count = {}, 0

    def _iteration(self, engine: Engine) -> None:
        loss = self.loss_function if self.loss_function is not None else getattr(engine, "loss_function", None)
        terms = dict(getattr(loss, "last_terms", None) or {})
        if not terms:
            return
        extra = {f"{self.output_prefix}{k}": v for k, v in terms.items() if k != "total"}
        out = engine.state.output
        for item in out if isinstance(out, list) else [out]:
            if isinstance(item, dict):
                item.update(extra)
        for k, v in terms.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)
        self._count += 1

    def _epoch(self, engine: Engine) -> None:
        if self._count:
            means = {("loss" if k == "total" else k): v / self._count for k, v in self._sums.items()}
            engine.state.metrics.update({f"{self.metric_prefix}{k}": v for k, v in means.items()})


def loss_terms_output(output: Any) -> dict[str, float]:
    """``loss`` and the ``loss_*`` terms of a trainer's ``engine.state.output`` (first item when decollated).

    The ``output_transform`` of ``StatsHandler`` / ``TensorBoardStatsHandler`` that prints or plots each term.
    """
    first = output[0] if isinstance(output, list) and output else output
    if not isinstance(first, Mapping):
        return {}
    return {
        k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
        for k, v in first.items()
        if k == "loss" or str(k).startswith("loss_")
    }
