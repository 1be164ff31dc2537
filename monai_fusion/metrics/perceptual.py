"""Perceptual and signal fidelity metrics: VIF, FSIM (piq's) and PSNR as used in fusion.

VIF is Sheikh and Bovik's pixel-domain VIF (four scales, ``sigma_n^2 = 2`` on the 8-bit scale),
the algorithm of piq's ``vif_p`` and of the CDDFuse script's ``VIFF``, step for step; it is
recomputed here with separable filters because piq's full 2-D convolutions made it the slowest
metric of the suite (tests check it against ``piq.vif_p``). FSIM is piq's ``fsim`` on grey
images, applied per source; under a protocol with ``fsim_variant="phasepack"`` (the ``poster``
protocol) it is the poster's own FSIM instead, computed by :func:`fsim_phasepack` (phasepack's phase
congruency, which piq does not expose with these settings, and the ``uint16`` Scharr gradients, which no
library computes on purpose). Fusion PSNR compares F with both sources, which no library does.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import piq
import torch
from scipy import ndimage

from ..utils.errors import FusionInputError
from ..utils.optional import require_extra
from .inputs import FusionInputs, metric_function
from .utils import combine_sources, gaussian_kernel_1d, local_moments, safe_divide, separable_filter

__all__ = ["vif", "vif_per_source", "fsim", "fsim_phasepack", "psnr", "PSNR_LIMIT_DB"]

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


#: Scharr's x-derivative kernel as OpenCV's ``cv2.Scharr(img, ddepth, 1, 0)`` correlates it.
_SCHARR_X = np.array([[-3.0, 0.0, 3.0], [-10.0, 0.0, 10.0], [-3.0, 0.0, 3.0]])
#: FSIM's stability constants ``T1`` (phase congruency) and ``T2`` (gradient, meant for 0..255 images).
_FSIM_T1, _FSIM_T2 = 0.85, 160.0


def _phasecong() -> Callable[..., tuple]:
    """phasepack's ``phasecong``; its import warning that pyfftw is absent (it falls back on SciPy) is silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp = require_extra("phasepack", "poster", "FSIM of the poster protocol (fsim_variant='phasepack')")
    return pp.phasecong


def _uint16_scharr_magnitude(img: np.ndarray) -> np.ndarray:
    """The gradient magnitude of ``image-similarity-measures``: ``cv2.Scharr(img, cv2.CV_16U, ...)`` in x and y
    (border reflected without repeating the edge, rounded half to even, negative responses stored as 0), squared
    and summed in ``uint16`` (wrapping above 65535, as NumPy does there), square root in float32.

    Args:
        img: a 2-D image.

    Returns:
        The magnitude, float64, same shape.
    """
    gx, gy = (
        np.clip(np.rint(ndimage.correlate(img.astype(np.float64), k, mode="mirror")), 0, 65535).astype(np.uint16)
        for k in (_SCHARR_X, _SCHARR_X.T)
    )
    return np.sqrt(gx**2 + gy**2).astype(np.float64)


def _fsim_features(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Phase congruency (phasepack, the 6 orientations summed; 0 where it is 0 / 0) and gradient magnitude."""
    with np.errstate(invalid="ignore", divide="ignore"):
        pc = np.nan_to_num(np.sum(_phasecong()(img, nscale=4, minWaveLength=6, mult=2, sigmaOnf=0.5978)[4], axis=0))
    return pc, _uint16_scharr_magnitude(img)


def _fsim_of_features(
    ref: tuple[np.ndarray, np.ndarray], dist: tuple[np.ndarray, np.ndarray], t1: float, t2: float
) -> float:
    (pc1, g1), (pc2, g2) = ref, dist
    s_pc = (2 * pc1 * pc2 + t1) / (pc1**2 + pc2**2 + t1)
    s_g = (2 * g1 * g2 + t2) / (g1**2 + g2**2 + t2)
    weight = np.maximum(pc1, pc2)
    total = float(weight.sum())
    return float((s_pc * s_g * weight).sum() / total) if total > 0 else 1.0


def fsim_phasepack(ref: np.ndarray, dist: np.ndarray, t1: float = _FSIM_T1, t2: float = _FSIM_T2) -> float:
    """FSIM as the reference poster's evaluation code computes it (the ``fsim`` of ``image-similarity-measures``
    0.3.6, reproduced without OpenCV), for one grey image pair.

    Phase congruency from phasepack's ``phasecong`` (4 scales, 6 orientations, shortest wavelength 6, scale factor
    2, ``sigmaOnf`` 0.5978), the ``uint16`` Scharr magnitude of :func:`_uint16_scharr_magnitude`, ``T1 = 0.85`` and
    ``T2 = 160`` (Zhang et al.'s constants for 0..255 images). On [0, 1] images the gradients are small whole
    numbers, so the gradient term is close to 1 and the score is mostly the phase-congruency similarity, higher
    than piq's FSIM of the same images. Used by the ``poster`` protocol only, to reproduce the poster's FSIM.

    Args:
        ref: the reference (source) image, 2-D, in protocol units.
        dist: the fused image, same shape.
        t1: stability constant of the phase-congruency similarity.
        t2: stability constant of the gradient similarity.

    Returns:
        FSIM in [0, 1] (symmetric in the two images); 1 for two featureless images, where the package gives NaN.
    """
    return _fsim_of_features(_fsim_features(ref), _fsim_features(dist), t1, t2)


@metric_function
def fsim(x: FusionInputs) -> torch.Tensor:
    """FSIM (Zhang et al. 2011; piq, grey, no chromatic term) of F against each source, combined.

    Two featureless images (no phase congruency anywhere) count as similar: 1. A protocol with
    ``fsim_variant="phasepack"`` computes :func:`fsim_phasepack` instead (per image, in NumPy).

    Args:
        fused: F, ``(B, 1, H, W)``; a, b: the sources.

    Returns:
        ``(B,)`` float64; per source in [0, 1], 1 when F equals it.
    """
    if x.protocol.fsim_variant == "phasepack":
        a, b = x.sources()
        feats = {k: [_fsim_features(im[0].detach().cpu().numpy()) for im in x.value(k)] for k in ("F", a, b)}
        val = torch.tensor(
            [[_fsim_of_features(s, d, _FSIM_T1, _FSIM_T2) for s, d in zip(feats[k], feats["F"])] for k in (a, b)],
            dtype=torch.float64,
            device=x.value("F").device,
        )
        return combine_sources(val[0], val[1], x.protocol.combine)
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
