"""Every fusion metric by name, and one call that computes a chosen set in one pass.

Names are those of the fusion literature: ``EN SD SF AG MI NMI FMI SSIM MS_SSIM Qabf Nabf SCD
CC VIF FSIM PSNR`` (the default suite) plus ``FMI_pixel FMI_gradient FMI_edge FMI_dct FMI_w``.
Look-ups ignore case and accept ``-`` for ``_`` (``ms-ssim``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..utils.errors import FusionInputError
from .information import feature_mutual_information, mutual_information, normalized_mutual_information
from .inputs import FusionInputs
from .no_reference import average_gradient, entropy, spatial_frequency, standard_deviation
from .perceptual import fsim, psnr, vif
from .protocols import MetricProtocol
from .structural import correlation_coefficient, ms_ssim, nabf, qabf, scd, ssim

__all__ = ["MetricSpec", "METRICS", "DEFAULT_METRICS", "available_metrics", "resolve_metrics", "compute_metrics"]


@dataclass(frozen=True)
class MetricSpec:
    """A metric in the registry.

    Attributes:
        name: canonical name.
        fn: computes ``(B,)`` values from :class:`FusionInputs`.
        needs_sources: whether A and B are needed (False for EN, SD, SF, AG).
        higher_is_better: False for Nabf (artefacts).
        group: ``no-reference``, ``information``, ``structural`` or ``perceptual``.
    """

    name: str
    fn: Callable[[FusionInputs], torch.Tensor]
    needs_sources: bool = True
    higher_is_better: bool = True
    group: str = "structural"


def _fmi(feature: str) -> Callable[[FusionInputs], torch.Tensor]:
    return functools.partial(feature_mutual_information, feature=feature)


_SPECS = [
    MetricSpec("EN", entropy, needs_sources=False, group="no-reference"),
    MetricSpec("SD", standard_deviation, needs_sources=False, group="no-reference"),
    MetricSpec("SF", spatial_frequency, needs_sources=False, group="no-reference"),
    MetricSpec("AG", average_gradient, needs_sources=False, group="no-reference"),
    MetricSpec("MI", mutual_information, group="information"),
    MetricSpec("NMI", normalized_mutual_information, group="information"),
    MetricSpec("FMI", feature_mutual_information, group="information"),
    MetricSpec("SSIM", ssim),
    MetricSpec("MS_SSIM", ms_ssim),
    MetricSpec("Qabf", qabf),
    MetricSpec("Nabf", nabf, higher_is_better=False),
    MetricSpec("SCD", scd),
    MetricSpec("CC", correlation_coefficient),
    MetricSpec("VIF", vif, group="perceptual"),
    MetricSpec("FSIM", fsim, group="perceptual"),
    MetricSpec("PSNR", psnr, group="perceptual"),
    MetricSpec("FMI_pixel", _fmi("pixel"), group="information"),
    MetricSpec("FMI_gradient", _fmi("gradient"), group="information"),
    MetricSpec("FMI_edge", _fmi("edge"), group="information"),
    MetricSpec("FMI_dct", _fmi("dct"), group="information"),
    MetricSpec("FMI_w", _fmi("wavelet"), group="information"),
]
#: All metrics by canonical name, in table order.
METRICS: dict[str, MetricSpec] = {s.name: s for s in _SPECS}
#: The suite computed when no metric list is given.
DEFAULT_METRICS: tuple[str, ...] = tuple(s.name for s in _SPECS[:16])
_LOOKUP = {name.upper().replace("-", "_"): name for name in METRICS}


def available_metrics() -> list[str]:
    """Canonical names of every metric."""
    return list(METRICS)


def resolve_metrics(metrics: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """Canonical names for a metric list (``None`` or ``"all"``: the default suite).

    Args:
        metrics: names in any case, a comma-separated string, or ``None``.

    Raises:
        FusionInputError: unknown or repeated names, or an empty list.
    """
    if metrics is None or metrics == "all":
        return DEFAULT_METRICS
    items = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else [str(m).strip() for m in metrics]
    names = []
    for m in items:
        key = m.upper().replace("-", "_")
        if key not in _LOOKUP:
            raise FusionInputError(f"unknown fusion metric {m!r}; choose from {', '.join(METRICS)}")
        names.append(_LOOKUP[key])
    if not names or len(set(names)) != len(names):
        raise FusionInputError(f"expected a non-empty list of distinct metrics, got {items}")
    return tuple(names)


def compute_metrics(
    fused: torch.Tensor | FusionInputs,
    a: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    metrics: str | Sequence[str] | None = None,
    protocol: str | MetricProtocol = "standard",
    images_per_pass: int = 1,
) -> dict[str, torch.Tensor]:
    """Compute several metrics of a batch in one pass (shared histograms, gradients, features).

    Args:
        fused: F, ``(B, 1, H, W)`` (or ready :class:`FusionInputs`, computed as one piece).
        a: source A (MRI), same shape; ``None`` allows only no-reference metrics.
        b: source B (CT/PET/SPECT luminance), same shape.
        metrics: names (see :func:`resolve_metrics`); ``None`` for :data:`DEFAULT_METRICS`.
        protocol: protocol name or object.
        images_per_pass: images computed together. One at a time keeps every intermediate of a
            256x256 image in the CPU cache, so time grows linearly with the batch (more at a time is slower
            per image).

    Returns:
        Canonical name -> ``(B,)`` float64 values, in the requested order.

    Raises:
        FusionInputError: bad input (see :class:`FusionInputs`), a source metric without sources,
            or a value that would be NaN/Inf (never handed on silently).
    """
    names = resolve_metrics(metrics)
    if isinstance(fused, FusionInputs):
        return _compute(fused, names, 0)
    whole = FusionInputs(fused, a, b, protocol)  # validates the batch as a whole
    n, step = fused.shape[0], max(1, int(images_per_pass))
    if n <= step:
        return _compute(whole, names, 0)
    parts = [
        _compute(FusionInputs(*(whole.raw(k)[i : i + step] for k in whole.images), protocol=whole.protocol), names, i)
        for i in range(0, n, step)
    ]
    return {name: torch.cat([p[name] for p in parts]) for name in names}


def _compute(x: FusionInputs, names: Sequence[str], offset: int) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name in names:
        spec = METRICS[name]
        if spec.needs_sources and not x.has_sources:
            raise FusionInputError(f"{name} compares the fused image with its sources; pass A and B")
        val = spec.fn(x).double()
        bad = ~torch.isfinite(val)
        if bool(bad.any()):
            items = (bad.nonzero().flatten() + offset).tolist()
            raise FusionInputError(f"{name} is undefined (NaN/Inf) for batch item(s) {items}")
        out[name] = val
    return out
