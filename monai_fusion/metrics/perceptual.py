"""Perceptual and signal fidelity metrics: VIF, FSIM (piq's) and PSNR as used in fusion.

VIF is Sheikh and Bovik's pixel-domain VIF (four scales, ``sigma_n^2 = 2`` on the 8-bit scale),
the algorithm of piq's ``vif_p`` and of the CDDFuse script's ``VIFF``, step for step; it is
recomputed here with separable filters because piq's full 2-D convolutions made it the slowest
metric of the suite (tests check it against ``piq.vif_p``). FSIM is piq's ``fsim`` on grey
images, applied per source. Fusion PSNR compares F with both sources, which no library does.
"""

from __future__ import annotations

import piq
import torch

from ..utils.errors import FusionInputError
from .inputs import FusionInputs, metric_function
from .utils import combine_sources, gaussian_kernel_1d, local_moments, safe_divide, separable_filter

__all__ = ["vif", "vif_per_source", "fsim", "psnr", "PSNR_LIMIT_DB"]

#: PSNR is clipped to +-this many dB, so an exact copy (MSE 0) gives a finite value that can be averaged.
PSNR_LIMIT_DB: float = 100.0


def vif_per_source(dist: torch.Tensor, ref: torch.Tensor, sigma_n_sq: float = 2.0) -> torch.Tensor:
    """Pixel-domain VIF of ``dist`` against the reference ``ref`` (``(N, 1, H, W)``, 8-bit scale).

    Same steps and constants as ``piq.vif_p`` (Gaussian windows 17, 9, 5, 3 with sigma = size / 5,
    'valid' filtering and 2x decimation between scales, EPS = 1e-8); a constant reference gives 1.

    Args:
        dist: distorted (fused) images.
        ref: reference (source) images.
        sigma_n_sq: visual noise variance.

    Returns:
        ``(N,)`` float64.
    """
    eps = 1e-8
    x, y = dist.double(), ref.double()
    num = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    den = torch.zeros_like(num)
    for scale in range(4):
        size = 2 ** (4 - scale) + 1
        kernel = gaussian_kernel_1d(size, size / 5)
        if scale > 0:
            xy = separable_filter(torch.cat([x, y], 1), kernel)[..., ::2, ::2]
            x, y = xy[:, :1], xy[:, 1:]
        _, _, sxx, syy, sxy = local_moments(x, y, kernel)
        sxx, syy = sxx.clamp_min(0), syy.clamp_min(0)
        g = sxy / (syy + eps)
        sv = sxx - g * sxy
        ref_flat = syy < eps
        g, sv, syy = g.masked_fill(ref_flat, 0), torch.where(ref_flat, sxx, sv), syy.masked_fill(ref_flat, 0)
        dist_flat = sxx < eps
        g, sv = g.masked_fill(dist_flat, 0), sv.masked_fill(dist_flat, 0)
        sv = torch.where(g >= 0, sv, sxx)
        g = g.clamp_min(0)
        sv = sv.clamp_min(eps)
        num += torch.log10(1.0 + g * g * syy / (sv + sigma_n_sq)).sum(dim=(1, 2))
        den += torch.log10(1.0 + syy / sigma_n_sq).sum(dim=(1, 2))
    return (num + eps) / (den + eps)


@metric_function
def vif(x: FusionInputs) -> torch.Tensor:
    """VIF (pixel domain) of F against each source, combined.

    Computed on the 8-bit scale, so the noise variance means the same in every protocol. A
    constant source (no information to keep) gives 1, as piq and the reference script.

    Args:
        fused: F, ``(B, 1, H, W)`` of at least 41x41 pixels; a, b: the sources.

    Returns:
        ``(B,)`` float64; per source 1 when F equals it.
    """
    if min(x.raw("F").shape[-2:]) < 41:
        raise FusionInputError(
            f"VIF (4 scales) needs images of at least 41x41 pixels, got {tuple(x.raw('F').shape[-2:])}"
        )
    a, b = x.sources()
    n = x.raw("F").shape[0]
    f = x.scaled("F")
    val = vif_per_source(torch.cat([f, f]), torch.cat([x.scaled(a), x.scaled(b)]))
    return combine_sources(val[:n], val[n:], x.protocol.combine)


@metric_function
def fsim(x: FusionInputs) -> torch.Tensor:
    """FSIM (Zhang et al. 2011; piq, grey, no chromatic term) of F against each source, combined.

    Two featureless images (no phase congruency anywhere) count as similar: 1.

    Args:
        fused: F, ``(B, 1, H, W)``; a, b: the sources.

    Returns:
        ``(B,)`` float64; per source in [0, 1], 1 when F equals it.
    """
    f, src, n = x.piq_pairs()
    val = piq.fsim(f, src, data_range=x.protocol.width, chromatic=False, reduction="none")
    val = torch.where(torch.isnan(val), torch.ones_like(val), val).double()
    return combine_sources(val[:n], val[n:], x.protocol.combine)


def _psnr_db(peak: torch.Tensor, mse: torch.Tensor) -> torch.Tensor:
    ratio = safe_divide(peak * peak, mse, float("inf"))
    lim = 10 ** (PSNR_LIMIT_DB / 10)
    return 10 * torch.log10(ratio.clamp(1 / lim, lim))


@metric_function
def psnr(x: FusionInputs) -> torch.Tensor:
    """Fusion PSNR: F against both sources.

    ``mse`` averaging: ``10 log10(peak^2 / ((MSE(A, F) + MSE(B, F)) / 2))``; ``psnr`` averaging: the
    mean of the two PSNRs. The peak is the range width, ``max(F)`` or each source's ``max - min``,
    per protocol. Clipped to +-:data:`PSNR_LIMIT_DB` dB (an exact copy has MSE 0).

    Args:
        fused: F, ``(B, 1, H, W)``; a, b: the sources.

    Returns:
        ``(B,)`` float64 in dB.
    """
    p = x.protocol
    f = x.value("F")
    dims = (1, 2, 3)
    mse = {k: (f - x.value(k)).pow(2).mean(dim=dims) for k in x.sources()}
    if p.psnr_peak == "range":
        peak = {k: torch.full_like(mse[k], p.width) for k in mse}
    elif p.psnr_peak == "fused_max":
        peak = {k: f.amax(dim=dims) for k in mse}
    else:
        peak = {k: x.value(k).amax(dim=dims) - x.value(k).amin(dim=dims) for k in mse}
    if p.psnr_average == "psnr":
        return (_psnr_db(peak["A"], mse["A"]) + _psnr_db(peak["B"], mse["B"])) / 2
    return _psnr_db(torch.maximum(peak["A"], peak["B"]), (mse["A"] + mse["B"]) / 2)
