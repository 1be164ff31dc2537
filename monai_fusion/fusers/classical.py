"""Classical fusion rules: pixel average and maximum, Laplacian pyramid, wavelet (DWT) and guided
filtering (Li, Kang and Hu 2013). None needs weights.

The filters (O(HW) box filter, guided filter, Laplacian pyramid) are written here in batched
torch: MONAI and scikit-image have no guided filter and no pyramid *fusion*.
"""

from __future__ import annotations

import numpy as np
import pywt
import torch
import torch.nn.functional as F

from ..utils.errors import FusionInputError
from .base import BaseFuser, register_fuser

__all__ = [
    "AverageFuser",
    "MaxFuser",
    "LaplacianPyramidFuser",
    "WaveletFuser",
    "GuidedFilterFuser",
    "box_filter",
    "guided_filter",
    "laplacian_pyramid",
    "reconstruct_laplacian_pyramid",
]


@register_fuser("average")
class AverageFuser(BaseFuser):
    """Pixel-wise mean of the two sources (the classical baseline that tends to win SSIM/PSNR)."""

    def _fuse(self, mri: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return (mri + other) / 2


@register_fuser("max")
class MaxFuser(BaseFuser):
    """Pixel-wise maximum of the two sources (keeps the brighter structure of each)."""

    def _fuse(self, mri: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return torch.maximum(mri, other)


def _choose_max_abs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(a.abs() >= b.abs(), a, b)


# ---------------------------------------------------------------- Laplacian pyramid

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = _BINOMIAL.to(dtype=x.dtype, device=x.device)
    kernel = (k[:, None] * k[None, :])[None, None].repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(F.pad(x, [2, 2, 2, 2], mode="replicate"), kernel, groups=x.shape[1])


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Burt-Adelson Laplacian pyramid: ``levels - 1`` band-pass levels, then the low-pass residual.

    Downsampling is a 5x5 binomial blur then taking every second pixel (odd sizes round up);
    upsampling is bilinear to the finer level's exact size, so any H, W works and
    :func:`reconstruct_laplacian_pyramid` inverts it exactly.

    Args:
        x: ``(B, C, H, W)``.
        levels: number of levels (>= 1).

    Returns:
        ``[L_0, ..., L_{levels-2}, G_{levels-1}]``, finest first.
    """
    pyramid: list[torch.Tensor] = []
    g = x
    for _ in range(levels - 1):
        down = _blur(g)[:, :, ::2, ::2]
        pyramid.append(g - _up(down, (g.shape[-2], g.shape[-1])))
        g = down
    pyramid.append(g)
    return pyramid


def reconstruct_laplacian_pyramid(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """Invert :func:`laplacian_pyramid`."""
    x = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        x = _up(x, (band.shape[-2], band.shape[-1])) + band
    return x


@register_fuser("laplacian")
class LaplacianPyramidFuser(BaseFuser):
    """Laplacian-pyramid fusion: band-pass levels by largest absolute value, low-pass by average.

    Args:
        levels: pyramid levels (reduced for small images so the coarsest side stays >= 4).
    """

    def __init__(self, levels: int = 4) -> None:
        if levels < 1:
            raise FusionInputError(f"laplacian: levels={levels} must be >= 1")
        self.levels = int(levels)

    def _fuse(self, mri: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        side, levels = min(mri.shape[-2:]), 1
        while levels < self.levels and side > 4:
            side, levels = (side + 1) // 2, levels + 1
        pa, pb = laplacian_pyramid(mri, levels), laplacian_pyramid(other, levels)
        fused = [_choose_max_abs(a, b) for a, b in zip(pa[:-1], pb[:-1])] + [(pa[-1] + pb[-1]) / 2]
        return reconstruct_laplacian_pyramid(fused)


# ---------------------------------------------------------------- wavelets


@register_fuser("dwt")
class WaveletFuser(BaseFuser):
    """2D discrete wavelet fusion (PyWavelets): approximation averaged, details by max absolute value.

    Args:
        wavelet: a PyWavelets discrete wavelet name.
        levels: decomposition levels (capped by ``pywt.dwt_max_level`` for small images).
        mode: signal extension mode.
    """

    def __init__(self, wavelet: str = "db2", levels: int = 3, mode: str = "symmetric") -> None:
        if wavelet not in pywt.wavelist(kind="discrete"):
            raise FusionInputError(f"dwt: wavelet {wavelet!r} is not a discrete PyWavelets wavelet")
        if levels < 1:
            raise FusionInputError(f"dwt: levels={levels} must be >= 1")
        self.wavelet, self.levels, self.mode = pywt.Wavelet(wavelet), int(levels), mode

    def _fuse_one(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        level = max(1, min(self.levels, pywt.dwt_max_level(min(a.shape), self.wavelet.dec_len)))
        ca = pywt.wavedec2(a, self.wavelet, mode=self.mode, level=level)
        cb = pywt.wavedec2(b, self.wavelet, mode=self.mode, level=level)
        fused: list = [(ca[0] + cb[0]) / 2]
        for da, db in zip(ca[1:], cb[1:]):
            fused.append(tuple(np.where(np.abs(x) >= np.abs(y), x, y) for x, y in zip(da, db)))
        out = pywt.waverec2(fused, self.wavelet, mode=self.mode)
        return out[: a.shape[0], : a.shape[1]]

    def _fuse(self, mri: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        a = mri[:, 0].detach().cpu().double().numpy()
        b = other[:, 0].detach().cpu().double().numpy()
        out = np.stack([self._fuse_one(x, y) for x, y in zip(a, b)])[:, None]
        return torch.from_numpy(out).to(device=mri.device, dtype=mri.dtype)


# ---------------------------------------------------------------- guided filtering


def _window_sum(x: torch.Tensor, r: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[dim]
    zero = torch.zeros_like(x.narrow(dim, 0, 1))
    cum = torch.cat([zero, torch.cumsum(x, dim=dim)], dim=dim)
    idx = torch.arange(n, device=x.device)
    hi, lo = (idx + r + 1).clamp(max=n), (idx - r).clamp(min=0)
    return cum.index_select(dim, hi) - cum.index_select(dim, lo), (hi - lo).to(x.dtype)


def box_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a ``(2r+1) x (2r+1)`` window, normalised by the pixels inside the image (O(HW)).

    Args:
        x: ``(B, C, H, W)``.
        r: window radius (any size, also larger than the image).

    Returns:
        The local means, same shape.
    """
    if r <= 0:
        return x
    s, nh = _window_sum(x, r, 2)
    s, nw = _window_sum(s, r, 3)
    return s / (nh[:, None] * nw[None, :])


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """He, Sun and Tang's guided filter with a grey guide: an edge-preserving smoothing of ``src``.

    Args:
        guide: ``(B, 1, H, W)`` guidance image.
        src: ``(B, C, H, W)`` image to filter.
        r: window radius.
        eps: regularisation (larger: smoother).

    Returns:
        The filtered ``src``.
    """
    mean_i, mean_p = box_filter(guide, r), box_filter(src, r)
    cov_ip = box_filter(guide * src, r) - mean_i * mean_p
    var_i = box_filter(guide * guide, r) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_filter(a, r) * guide + box_filter(b, r)


def _gaussian_blur(x: torch.Tensor, radius: int, sigma: float) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t * t) / (2 * sigma * sigma))
    k = k / k.sum()
    xp = F.pad(x, [radius, radius, radius, radius], mode="replicate")
    return F.conv2d(F.conv2d(xp, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))


_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


@register_fuser("guided_filter")
class GuidedFilterFuser(BaseFuser):
    """Guided-filtering fusion (GFF, Li, Kang and Hu 2013).

    Two-scale decomposition (base: mean filter of radius ``base_radius``; detail: the rest);
    saliency: Gaussian-smoothed absolute Laplacian; binary weight maps where a source is the most
    salient, refined by guided filtering with the source as guide (large and smooth for the base
    layers, small and sharp for the details), normalised; the weighted layers are summed.

    Args:
        base_radius: radius of the base-layer mean filter (31x31 window in the paper).
        r1: guided-filter radius for the base weights.
        eps1: its regularisation.
        r2: guided-filter radius for the detail weights.
        eps2: its regularisation.
        saliency_radius: radius of the Gaussian smoothing of the saliency (``sigma`` = radius).
    """

    def __init__(
        self,
        base_radius: int = 15,
        r1: int = 45,
        eps1: float = 0.3,
        r2: int = 7,
        eps2: float = 1e-6,
        saliency_radius: int = 5,
    ) -> None:
        self.base_radius, self.r1, self.eps1 = int(base_radius), int(r1), float(eps1)
        self.r2, self.eps2, self.saliency_radius = int(r2), float(eps2), int(saliency_radius)

    def _fuse(self, mri: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        src = torch.cat([mri, other], dim=1)  # (B, 2, H, W): the sources as channels
        base = box_filter(src, self.base_radius)
        detail = src - base
        lap = _LAPLACIAN.to(src)[None, None].repeat(2, 1, 1, 1)
        high = F.conv2d(F.pad(src, [1, 1, 1, 1], mode="replicate"), lap, groups=2).abs()
        saliency = _gaussian_blur(
            high.reshape(-1, 1, *high.shape[-2:]), self.saliency_radius, float(self.saliency_radius)
        ).reshape_as(high)
        pick = (saliency[:, :1] >= saliency[:, 1:]).to(src.dtype)
        weights = torch.cat([pick, 1.0 - pick], dim=1)
        fused = torch.zeros_like(mri)
        for layer, r, eps in ((base, self.r1, self.eps1), (detail, self.r2, self.eps2)):
            w = torch.cat([guided_filter(src[:, i : i + 1], weights[:, i : i + 1], r, eps) for i in range(2)], dim=1)
            w = w.clamp(min=0.0) + 1e-12
            w = w / w.sum(dim=1, keepdim=True)
            fused = fused + (w * layer).sum(dim=1, keepdim=True)
        return fused
