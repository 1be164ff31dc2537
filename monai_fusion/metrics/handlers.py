"""Ignite handlers for the fusion metrics (MONAI ``IgniteMetricHandler``), for ``SupervisedEvaluator``.

The engine's output must give ``(y_pred, y)`` with ``y_pred`` the fused image ``(B, 1, H, W)`` and
``y = torch.cat([A, B], dim=1)``; with MONAI's evaluators pass
``output_transform=from_engine(["pred", "label"])`` and put the stacked sources under ``label``.

- :class:`FusionMetricHandler`: one metric; its mean lands in ``engine.state.metrics[name]``,
  so it can be the evaluator's ``key_val_metric``.
- :class:`FusionMetricsHandler`: a whole set in one pass; every mean lands in
  ``engine.state.metrics`` under ``prefix + metric`` and the per-image values in
  ``engine.state.metric_details[name]`` (a dict of lists).
"""

from __future__ import annotations

from typing import Callable, Sequence

from monai.handlers import IgniteMetricHandler

from .fusion_metric import FusionMetric, FusionMetrics
from .protocols import MetricProtocol

__all__ = ["FusionMetricHandler", "FusionMetricsHandler"]


class FusionMetricHandler(IgniteMetricHandler):
    """Mean of one fusion metric over an epoch.

    Args:
        metric: metric name, e.g. ``"SSIM"``.
        protocol: protocol name or object.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``.
        save_details: keep the per-image values in ``engine.state.metric_details[name]``.
    """

    def __init__(self, metric: str, protocol: str | MetricProtocol = "standard",
                 output_transform: Callable = lambda x: x, save_details: bool = True) -> None:
        super().__init__(metric_fn=FusionMetric(metric, protocol), output_transform=output_transform,
                         save_details=save_details)


class FusionMetricsHandler(IgniteMetricHandler):
    """Means of a set of fusion metrics over an epoch, computed in one pass per batch.

    Args:
        metrics: metric names (default: the whole suite).
        protocol: protocol name or object.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``.
        save_details: keep per-image values in ``engine.state.metric_details[name]``.
        prefix: prepended to every metric name in ``engine.state.metrics``.
    """

    def __init__(self, metrics: str | Sequence[str] | None = None, protocol: str | MetricProtocol = "standard",
                 output_transform: Callable = lambda x: x, save_details: bool = True, prefix: str = "") -> None:
        self.prefix = prefix
        super().__init__(metric_fn=FusionMetrics(metrics, protocol), output_transform=output_transform,
                         save_details=save_details)

    def compute(self) -> dict[str, float]:  # type: ignore[override]
        """Means by ``prefix + name``; per-image values into ``metric_details`` when asked."""
        fm: FusionMetrics = self.metric_fn  # type: ignore[assignment]
        self._is_reduced = True
        if self.save_details:
            if self._engine is None or self._name is None:
                raise RuntimeError("please call attach() to connect the handler to an engine first")
            self._engine.state.metric_details[self._name] = fm.per_image()  # type: ignore[attr-defined]
        return {self.prefix + k: v for k, v in fm.aggregate().items()}

