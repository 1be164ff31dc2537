"""Structural and edge fusion metrics: SSIM, MS-SSIM, Qabf, Nabf, SCD and CC.

SSIM is computed here rather than with piq or MONAI because the protocols need both of the
window conventions in use: piq's ``ssim`` has a Gaussian window with population covariance
(Wang et al., scikit-image ``gaussian_weights=True, use_sample_covariance=False``) and MONAI's
``SSIMMetric`` always applies the sample-covariance factor; the CDDFuse scripts call scikit-image's
default (uniform 7x7, sample covariance). Both are checked against scikit-image in the tests.
MS-SSIM is piq's. Qabf (Xydeas and Petrovic 2000) and Nabf (Petrovic's fusion-artefact measure
as modified by Shreyamsha Kumar 2013) exist in none of those libraries.
"""

from __future__ import annotations

import piq
import torch

from ..utils.errors import FusionInputError
from ..utils.kernels import (
    HALF_PI,
    NABF_ORIENTATION,
    NABF_STRENGTH,
    QABF_ORIENTATION,
    QABF_STRENGTH,
    qabf_sigmoid,
)
from .inputs import FusionInputs, metric_function
from .utils import combine_sources, gaussian_kernel_1d, local_moments, pearson, safe_divide

__all__ = [
    "ssim_per_source",
    "ssim",
    "ms_ssim",
    "qabf",
    "nabf",
    "scd",
    "correlation_coefficient",
    "edge_orientation",
]


def ssim_per_source(
    src: torch.Tensor,
    fused: torch.Tensor,
    window: str = "gaussian",
    size: int = 11,
    sigma: float = 1.5,
    data_range: float = 255.0,
    sample_covariance: bool = False,
) -> torch.Tensor:
    """Mean SSIM of ``(N, 1, H, W)`` image pairs over the 'valid' window positions.

    Matches ``skimage.metrics.structural_similarity`` with the same window, ``data_range`` and
    covariance normalisation (scikit-image crops the border half-window the same way).

    Args:
        src: reference images.
        fused: compared images, same shape.
        window: ``"gaussian"`` or ``"uniform"``.
        size: window side (odd).
        sigma: Gaussian sigma.
        data_range: ``L`` in ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``.
        sample_covariance: scale (co)variances by ``n / (n - 1)``, ``n = size^2``.

    Returns:
        ``(N,)`` float64.
    """
    if min(src.shape[-2:]) < size:
        raise FusionInputError(
            f"SSIM with a {size}x{size} window needs images of at least that size, got {tuple(src.shape[-2:])}"
        )
    kernel = (
        torch.full((size,), 1.0 / size, dtype=torch.float64) if window == "uniform" else gaussian_kernel_1d(size, sigma)
    )
    norm = size * size / (size * size - 1) if sample_covariance else 1.0
    mx, my, vx, vy, vxy = local_moments(src.double(), fused.double(), kernel, norm)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2))


@metric_function
def ssim(x: FusionInputs) -> torch.Tensor:
    """SSIM(A, F) and SSIM(B, F) with the protocol's window, combined.

    Args:
        fused: F, ``(B, 1, H, W)``; a, b: the sources; protocol: window, covariance, ``L``, combination.

    Returns:
        ``(B,)`` float64; per source at most 1 (1 for identical images).
    """
    p = x.protocol
    src, fused, n = x.pairs()
    val = ssim_per_source(
        src,
        fused,
        p.ssim_window,
        p.ssim_size,
        p.ssim_sigma,
        p.width if p.ssim_data_range is None else p.ssim_data_range,
        p.ssim_sample_covariance,
    )
    return combine_sources(val[:n], val[n:], p.combine)


@metric_function
def ms_ssim(x: FusionInputs) -> torch.Tensor:
    """MS-SSIM (Wang et al. 2003; piq, Gaussian 11x11 sigma 1.5, five scales) per source, combined.

    Args:
        fused: F, ``(B, 1, H, W)`` of at least 161x161 pixels; a, b: the sources.

    Returns:
        ``(B,)`` float64.
    """
    if min(x.raw("F").shape[-2:]) < 161:
        raise FusionInputError(
            f"MS-SSIM (5 scales, 11x11 window) needs images of at least 161x161 pixels, "
            f"got {tuple(x.raw('F').shape[-2:])}"
        )
    fused, src, n = x.piq_pairs()
    val = piq.multi_scale_ssim(fused, src, data_range=x.protocol.width, reduction="none").double()
    return combine_sources(val[:n], val[n:], x.protocol.combine)


def edge_orientation(num: torch.Tensor, den: torch.Tensor, flat_value: float | None = 0.0) -> torch.Tensor:
    """``atan(num / den)`` in [-pi/2, pi/2].

    Args:
        num: numerator response.
        den: denominator response (``den == 0`` gives +-pi/2).
        flat_value: the angle where both are 0; ``None`` gives pi/2 wherever ``den == 0`` (CDDFuse).
    """
    ang = torch.atan(num / den)
    if flat_value is None:
        return torch.where(den == 0, torch.full_like(ang, HALF_PI), ang)
    return torch.where((num == 0) & (den == 0), torch.full_like(ang, flat_value), ang)


def _strength_ratio(gs: torch.Tensor, gf: torch.Tensor) -> torch.Tensor:
    """``min(gs, gf) / max(gs, gf)``, 0 where either is 0."""
    return safe_divide(torch.minimum(gs, gf), torch.maximum(gs, gf))


def _qabf_source(gs: torch.Tensor, as_: torch.Tensor, gf: torch.Tensor, af: torch.Tensor, variant: str) -> torch.Tensor:
    """Edge preservation ``Q^{XF}`` per pixel (Xydeas-Petrovic constants)."""
    if variant == "cddfuse":  # the script's ratio (gs == gf gives gf) and unwrapped orientation difference
        ratio = torch.where(gs > gf, safe_divide(gf, gs), torch.where(gs == gf, gf, safe_divide(gs, gf)))
        orient = 1 - (as_ - af).abs() / HALF_PI
    else:
        ratio = _strength_ratio(gs, gf)
        orient = ((as_ - af).abs() - HALF_PI).abs() / HALF_PI
    return qabf_sigmoid(ratio, *QABF_STRENGTH) * qabf_sigmoid(orient, *QABF_ORIENTATION)


@metric_function
def qabf(x: FusionInputs) -> torch.Tensor:
    """Qabf (Xydeas and Petrovic 2000): edge information of A and B preserved in F, Sobel edges.

    ``sum(Q^AF g_A + Q^BF g_B) / sum(g_A + g_B)``, with ``Q = Q_g Q_alpha`` (sigmoids 0.9994, -15,
    0.5 and 0.9879, -22, 0.8). A joint metric: the protocol only picks the variant. 0 when neither
    source has an edge.

    Args:
        fused: F, ``(B, 1, H, W)``; a, b: the sources.

    Returns:
        ``(B,)`` float64 in [0, 1].
    """
    variant = x.protocol.qabf_variant
    grads = x.gradients("zeros" if variant == "cddfuse" else "reflect")
    flat = None if variant == "cddfuse" else 0.0
    g = {k: torch.sqrt(gx * gx + gy * gy) for k, (gx, gy) in grads.items()}
    ang = {k: edge_orientation(gy, gx, flat) for k, (gx, gy) in grads.items()}
    num = sum(_qabf_source(g[k], ang[k], g["F"], ang["F"], variant) * g[k] for k in x.sources())
    den = g["A"] + g["B"]
    return safe_divide(num.sum(dim=(1, 2, 3)), den.sum(dim=(1, 2, 3)))


@metric_function
def nabf(x: FusionInputs) -> torch.Tensor:
    """Nabf: fusion artefacts, Petrovic's measure as modified by Shreyamsha Kumar (2013).

    Where F has a stronger edge than both sources, ``(1 - Q^AF) w_A + (1 - Q^BF) w_B`` is summed and
    divided by ``sum(w_A + w_B)``; Sobel/8 on a reflected border, ``Q = sqrt(Q_g Q_alpha)`` (sigmoids
    :data:`~monai_fusion.utils.kernels.NABF_STRENGTH` and ``NABF_ORIENTATION``), ``w = g^1.5`` where
    ``g >= 2`` (8-bit scale). Lower is better; 0 when neither source has an edge.

    Args:
        fused: F, ``(B, 1, H, W)``; a, b: the sources.

    Returns:
        ``(B,)`` float64 in [0, 1].
    """
    grads = {k: (gx / 8, gy / 8) for k, (gx, gy) in x.gradients("reflect").items()}
    g = {k: torch.sqrt(gx * gx + gy * gy) for k, (gx, gy) in grads.items()}
    ang = {k: edge_orientation(gx, gy) for k, (gx, gy) in grads.items()}
    artefact = (g["F"] > g["A"]) & (g["F"] > g["B"])
    num = torch.zeros_like(g["F"])
    den = torch.zeros_like(g["F"])
    for k in x.sources():
        orient = ((ang[k] - ang["F"]).abs() - HALF_PI).abs() / HALF_PI
        q = torch.sqrt(
            qabf_sigmoid(_strength_ratio(g[k], g["F"]), *NABF_STRENGTH) * qabf_sigmoid(orient, *NABF_ORIENTATION)
        )
        w = torch.where(g[k] >= 2.0, g[k] ** 1.5, torch.zeros_like(g[k]))
        num = num + torch.where(artefact, (1 - q) * w, torch.zeros_like(w))
        den = den + w
    return safe_divide(num.sum(dim=(1, 2, 3)), den.sum(dim=(1, 2, 3)))


@metric_function
def scd(x: FusionInputs) -> torch.Tensor:
    """SCD (Aslantas and Bendes 2015): ``corr(F - B, A) + corr(F - A, B)``; a sum by definition.

    A correlation with a constant image counts 0.

    Args:
        fused: F, ``(B, 1, H, W)``; a, b: the sources.

    Returns:
        ``(B,)`` float64 in [-2, 2].
    """
    f, a, b = x.value("F"), x.value("A"), x.value("B")
    return pearson(f - b, a) + pearson(f - a, b)


@metric_function
def correlation_coefficient(x: FusionInputs) -> torch.Tensor:
    """CC: ``(corr(A, F) + corr(B, F)) / 2`` in every protocol (the CDDFuse script averages it too).

    A correlation with a constant image counts 0.

    Args:
        fused: F, ``(B, 1, H, W)``; a, b: the sources.

    Returns:
        ``(B,)`` float64 in [-1, 1].
    """
    f = x.value("F")
    return (pearson(x.value("A"), f) + pearson(x.value("B"), f)) / 2
