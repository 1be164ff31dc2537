"""Fusion metrics as MONAI ``CumulativeIterationMetric`` objects, for ``SupervisedEvaluator``.

How F, A and B arrive: ``y_pred`` is the fused image F, ``(B, 1, H, W)``; ``y`` is the two
sources stacked as channels, ``y = torch.cat([A, B], dim=1)`` (``(B, 2, H, W)``, channel 0 the
MRI, channel 1 the CT/PET/SPECT luminance; :func:`~monai_fusion.metrics.pack_sources`).
Decollated lists of channel-first tensors work as for any MONAI metric. Every value stays finite:
undefined cases have documented values or raise :class:`~monai_fusion.utils.FusionInputError`,
so nothing is dropped by a NaN-skipping mean.
"""

from __future__ import annotations

from typing import Sequence

import torch
from monai.metrics import CumulativeIterationMetric

from ..utils.errors import FusionInputError
from .protocols import MetricProtocol, get_protocol
from .registry import compute_metrics, resolve_metrics
from .utils import split_sources

__all__ = ["FusionMetric", "FusionMetrics"]


class FusionMetrics(CumulativeIterationMetric):
    """A set of fusion metrics computed in one pass per batch, with per-image and mean values.

    Use it directly (:meth:`compute`), or as a MONAI cumulative metric: every call
    ``metrics(y_pred=F, y=torch.cat([A, B], 1))`` buffers one row of values per image;
    :meth:`aggregate` gives the means, :meth:`per_image` every value, :meth:`summary` mean and std.

    Args:
        metrics: metric names (default: the 16-metric suite, see ``DEFAULT_METRICS``).
        protocol: protocol name or :class:`MetricProtocol`.

    Example::

        fm = FusionMetrics(["MI", "SSIM", "Qabf"], protocol="standard")
        fm(y_pred=fused, y=torch.cat([mri, other_y], dim=1))
        fm.aggregate()  # {"MI": ..., "SSIM": ..., "Qabf": ...}
    """

    def __init__(self, metrics: str | Sequence[str] | None = None, protocol: str | MetricProtocol = "standard") -> None:
        super().__init__()
        self.names: tuple[str, ...] = resolve_metrics(metrics)
        self.protocol: MetricProtocol = get_protocol(protocol)

    def compute(
        self, fused: torch.Tensor, a: torch.Tensor | None = None, b: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Values of this batch without buffering them.

        Args:
            fused: F, ``(B, 1, H, W)``.
            a: source A (MRI).
            b: source B (other modality luminance).

        Returns:
            Name -> ``(B,)`` float64.
        """
        return compute_metrics(fused, a, b, self.names, self.protocol)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: object) -> torch.Tensor:
        """``(B, n_metrics)`` values of one batch (``y = cat([A, B], 1)``; may be None for no-reference sets)."""
        a, b = (None, None) if y is None else split_sources(y)
        vals = self.compute(y_pred, a, b)
        return torch.stack([vals[n] for n in self.names], dim=1)

    def _values(self) -> torch.Tensor:
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor) or data.numel() == 0:
            raise ValueError(f"{type(self).__name__}: no values yet; call it on a batch before aggregating")
        return data.reshape(-1, len(self.names))

    def aggregate(self) -> dict[str, float]:  # type: ignore[override]
        """Mean of every metric over all buffered images."""
        mean = self._values().mean(0)
        return {n: float(v) for n, v in zip(self.names, mean)}

    def per_image(self) -> dict[str, list[float]]:
        """Every buffered value, per metric, in call order."""
        data = self._values()
        return {n: data[:, i].tolist() for i, n in enumerate(self.names)}

    def summary(self) -> dict[str, tuple[float, float]]:
        """``(mean, sample standard deviation)`` per metric (std 0 for a single image)."""
        data = self._values()
        std = data.std(0, unbiased=True) if data.shape[0] > 1 else torch.zeros(data.shape[1], dtype=data.dtype)
        return {n: (float(m), float(s)) for n, m, s in zip(self.names, data.mean(0), std)}


class FusionMetric(FusionMetrics):
    """One fusion metric as a MONAI cumulative metric (``aggregate`` gives a 0-d tensor).

    Args:
        metric: a metric name, e.g. ``"SSIM"`` or ``"FMI_dct"``.
        protocol: protocol name or :class:`MetricProtocol`.
    """

    def __init__(self, metric: str, protocol: str | MetricProtocol = "standard") -> None:
        if not isinstance(metric, str) or "," in metric or metric == "all":
            raise FusionInputError(f"FusionMetric takes one metric name, got {metric!r}; use FusionMetrics for sets")
        super().__init__([metric], protocol)
        self.name: str = self.names[0]

    def aggregate(self) -> torch.Tensor:  # type: ignore[override]
        """Mean over all buffered images, a 0-d float64 tensor."""
        return self._values()[:, 0].mean()
