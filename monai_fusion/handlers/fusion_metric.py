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

from typing import Any, Callable, Sequence

import torch
from monai.handlers import IgniteMetricHandler, from_engine

from ..metrics.fusion_metric import FusionMetric, FusionMetrics
from ..metrics.protocols import MetricProtocol, get_protocol
from ..metrics.registry import resolve_metrics

__all__ = ["FusionMetricHandler", "FusionMetricsHandler", "FusionMetricOutput", "fusion_metric_handlers"]


class FusionMetricHandler(IgniteMetricHandler):
    """Mean of one fusion metric over an epoch.

    Args:
        metric: metric name, e.g. ``"SSIM"``.
        protocol: protocol name or object.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``.
        save_details: keep the per-image values in ``engine.state.metric_details[name]``.
    """

    def __init__(
        self,
        metric: str,
        protocol: str | MetricProtocol = "standard",
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
    ) -> None:
        super().__init__(
            metric_fn=FusionMetric(metric, protocol), output_transform=output_transform, save_details=save_details
        )


class FusionMetricsHandler(IgniteMetricHandler):
    """Means of a set of fusion metrics over an epoch, computed in one pass per batch.

    Args:
        metrics: metric names (default: the whole suite).
        protocol: protocol name or object.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``.
        save_details: keep per-image values in ``engine.state.metric_details[name]``.
        prefix: prepended to every metric name in ``engine.state.metrics``.
    """

    def __init__(
        self,
        metrics: str | Sequence[str] | None = None,
        protocol: str | MetricProtocol = "standard",
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
        prefix: str = "",
    ) -> None:
        self.prefix = prefix
        super().__init__(
            metric_fn=FusionMetrics(metrics, protocol), output_transform=output_transform, save_details=save_details
        )

    def compute(self) -> dict[str, float]:  # type: ignore[override]
        """Means by ``prefix + name``; per-image values into ``metric_details`` when asked."""
        fm: FusionMetrics = self.metric_fn  # type: ignore[assignment]
        self._is_reduced = True
        if self.save_details:
            if self._engine is None or self._name is None:
                raise RuntimeError("please call attach() to connect the handler to an engine first")
            self._engine.state.metric_details[self._name] = fm.per_image()  # type: ignore[attr-defined]
        return {self.prefix + k: v for k, v in fm.aggregate().items()}


class FusionMetricOutput:
    """``output_transform`` of the fusion metric handlers: fused prediction and stacked sources, on the
    protocol's value range.

    Network outputs are clamped to [0, 1] (as the fusers and the written images are) and mapped with the
    sources to ``low + x * width`` of the protocol (``standard``: 0..255).

    Args:
        protocol: metric protocol name or object.
        pred_key: key of the fused prediction in ``engine.state.output``.
        label_key: key of the stacked sources ``(2, H, W)``.
    """

    def __init__(
        self, protocol: str | MetricProtocol = "standard", pred_key: str = "pred", label_key: str = "label"
    ) -> None:
        self.protocol = get_protocol(protocol)
        self._get = from_engine([pred_key, label_key])

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        lo = self.protocol.value_range[0]
        return torch.as_tensor(x).float().clamp(0.0, 1.0) * self.protocol.width + lo

    def __call__(self, output: Any) -> tuple[Any, Any]:
        """Return ``(y_pred, y)`` as lists (decollated output) or batched tensors."""
        pred, label = self._get(output)
        if isinstance(pred, list):
            return [self._scale(p) for p in pred], [self._scale(y) for y in label]
        return self._scale(pred), self._scale(label)


def fusion_metric_handlers(
    metrics: str | Sequence[str] | None, protocol: str | MetricProtocol = "standard", save_details: bool = True
) -> dict[str, FusionMetricHandler]:
    """One :class:`~monai_fusion.metrics.handlers.FusionMetricHandler` per metric, keyed by canonical name.

    Args:
        metrics: metric names (``None``: the default suite).
        protocol: metric protocol.
        save_details: keep per-image values in ``engine.state.metric_details`` (for ``MetricsSaver``).

    Returns:
        ``{name: handler}`` in the given order.
    """
    out = FusionMetricOutput(protocol)
    return {
        name: FusionMetricHandler(name, protocol, output_transform=out, save_details=save_details)
        for name in resolve_metrics(metrics)
    }
