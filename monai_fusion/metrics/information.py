"""Information-theoretic fusion metrics: MI, NMI and FMI (Haghighat's feature mutual information).

MI and NMI use joint grey-level histograms (256 bins) per source; the protocol fixes the
quantisation, the unit (bits/nats), the NMI normalisation and how the two sources combine.

FMI follows Haghighat and Razian's *fast-FMI* reference code (``fmi.m``): features of F and of a
source are cut into ``w x w`` sliding windows; in every window both are min-max normalised into
marginal PDFs, their joint PDF is estimated between the product distribution and the Frechet
bound (upper for positive, lower for negative correlation, Nelsen's method) and the normalised
mutual information ``2 MI / (H(X) + H(F))`` is averaged over windows. Identical windows count 1.
Nothing in MONAI, piq or scikit-image computes it, and the reference is a per-pixel MATLAB loop;
here every window is processed at once in torch. The Frechet-bound joint PDF of two discrete
distributions is non-zero only on a staircase of at most ``2 w^2 - 1`` cells (the merged CDF
breakpoints), so the joint entropy is the closed-form entropy of the scaled product PDF plus a
correction on those cells: ``O(w^2)`` work per window instead of ``O(w^4)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.errors import FusionInputError
from ..utils.kernels import sobel
from .inputs import FusionInputs, metric_function
from .utils import combine_sources, joint_histogram, plogp, probability_entropy, safe_divide

__all__ = [
    "FMI_FEATURES",
    "mutual_information",
    "normalized_mutual_information",
    "feature_mutual_information",
    "fmi_feature_map",
    "fmi_windows",
    "fmi_against",
]

#: Features of FMI, as named in Haghighat's code (``none`` is ``pixel`` here).
FMI_FEATURES: tuple[str, ...] = ("pixel", "gradient", "edge", "dct", "wavelet")
#: Windows processed per chunk (bounds memory for large batches).
_CHUNK = 1 << 16


def _source_entropies(p_joint: torch.Tensor, base: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``H(X), H(F), H(X, F)`` of a ``(B, n, n)`` joint PDF (rows X, columns F)."""
    return (
        probability_entropy(p_joint.sum(2), 1, base),
        probability_entropy(p_joint.sum(1), 1, base),
        probability_entropy(p_joint, (1, 2), base),
    )


@metric_function
def mutual_information(x: FusionInputs) -> torch.Tensor:
    """MI: ``I(A; F)`` and ``I(B; F)`` from 256x256 joint grey-level histograms, combined.

    Args:
        fused: F, ``(B, 1, H, W)``; a, b: the sources; protocol: unit, quantisation and combination.

    Returns:
        ``(B,)`` float64 in bits or nats. ``MI(F=A, A, B=A)`` equals ``EN(A)`` (bits, mean).
    """
    base = 2.0 if x.protocol.mi_unit == "bits" else math.e
    vals = []
    for key in x.sources():
        hx, hf, hxf = _source_entropies(x.joint(key), base)
        vals.append(hx + hf - hxf)
    return combine_sources(vals[0], vals[1], x.protocol.combine)


def _minmax_levels(v: torch.Tensor, bins: int) -> torch.Tensor:
    """Bin indices of ``bins`` equal bins between each image's min and max (NumPy ``histogramdd``)."""
    n = v.shape[0]
    flat = v.reshape(n, -1)
    lo, hi = flat.amin(1), flat.amax(1)
    const = hi == lo
    lo, hi = torch.where(const, lo - 0.5, lo), torch.where(const, hi + 0.5, hi)
    edges = lo[:, None] + torch.arange(bins + 1, dtype=flat.dtype, device=flat.device) * ((hi - lo) / bins)[:, None]
    edges[:, -1] = hi
    idx = torch.searchsorted(edges.contiguous(), flat.contiguous(), right=True) - 1
    return idx.clamp(0, bins - 1)


@metric_function
def normalized_mutual_information(x: FusionInputs) -> torch.Tensor:
    """NMI per source, combined.

    ``hossny``: ``2 I(X; F) / (H(X) + H(F))`` in [0, 1] (Hossny et al.; the sum over sources is their
    Q_MI); 0 when both images are constant (no information). ``studholme``:
    ``(H(X) + H(F)) / H(X, F)`` in [1, 2], as ``skimage.metrics.normalized_mutual_information``
    (recomputed here batched, on the protocol's bins); 1 when both are constant.

    Args:
        fused: F, ``(B, 1, H, W)``; a, b: the sources; protocol: form, binning, combination.

    Returns:
        ``(B,)`` float64.
    """
    p = x.protocol
    vals = []
    for key in x.sources():
        if p.nmi_binning == "levels":
            joint = x.joint(key)
            bins = 256
        else:
            bins = p.nmi_bins
            joint = x.cached(
                ("nmi_joint", key),
                lambda k=key: joint_histogram(
                    _minmax_levels(x.value(k), bins), _minmax_levels(x.value("F"), bins), bins
                ),
            )
        hx, hf, hxf = _source_entropies(joint, 2.0)  # type: ignore[arg-type]
        hs = hx + hf
        if p.nmi_form == "hossny":
            val = safe_divide(2 * (hs - hxf), hs)
        else:
            val = safe_divide(hs, hxf, 1.0)
        vals.append(val)
    return combine_sources(vals[0], vals[1], p.combine)


# ---------------------------------------------------------------------------------------------- FMI features
def _dct_matrix(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    k = torch.arange(n, dtype=dtype, device=device)[:, None]
    i = torch.arange(n, dtype=dtype, device=device)[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d


def _matlab_sobel_edges(v: torch.Tensor) -> torch.Tensor:
    """Binary edge map like MATLAB's default ``edge(I)``: Sobel/8 on a replicate border, cutoff
    ``4 mean(g^2)`` and thinning by non-maximum suppression along the dominant gradient axis."""
    gx, gy = sobel(v, padding="replicate")
    bx, by = (gx / 8).abs(), (gy / 8).abs()
    b = bx * bx + by * by
    cutoff = 4 * b.mean(dim=(1, 2, 3), keepdim=True)
    left, right = torch.cat([b[..., :1], b[..., :-1]], 3), torch.cat([b[..., 1:], b[..., -1:]], 3)
    up, down = torch.cat([b[..., :1, :], b[..., :-1, :]], 2), torch.cat([b[..., 1:, :], b[..., -1:, :]], 2)
    thin = ((bx >= by) & (left < b) & (right <= b)) | ((by >= bx) & (up < b) & (down <= b))
    return ((b > cutoff) & thin).to(v.dtype)


def _wavelet(v: torch.Tensor) -> torch.Tensor:
    """``[[cA, cH], [cV, cD]]`` of a one-level 'dmey' DWT (PyWavelets, symmetric border), in [0, 1]."""
    import pywt

    out = []
    for img in v[:, 0].cpu().numpy():
        ca, (ch, cv, cd) = pywt.dwt2(img, "dmey", mode="symmetric")
        m = np.block([[ca, ch], [cv, cd]])
        lo, hi = m.min(), m.max()
        out.append(np.ones_like(m) if hi == lo else (m - lo) / (hi - lo))
    return torch.from_numpy(np.stack(out)[:, None]).to(v.device)


def fmi_feature_map(v: torch.Tensor, feature: str) -> torch.Tensor:
    """Feature image of Haghighat's FMI for ``(B, 1, H, W)`` float64 images.

    Args:
        v: images.
        feature: ``pixel`` (raw values), ``gradient`` (MATLAB ``gradient(I)``: the horizontal
            central difference), ``edge`` (binary Sobel edge map, MATLAB ``edge(I)`` defaults),
            ``dct`` (orthonormal 2-D DCT-II of the whole image, MATLAB ``dct2``) or ``wavelet``
            (one-level discrete Meyer DWT; PyWavelets' 62-tap ``dmey`` where MATLAB's has 102 taps).

    Returns:
        The feature images, ``(B, 1, H', W')``.
    """
    if feature == "pixel":
        return v
    if feature == "gradient":
        return torch.gradient(v, dim=3)[0]
    if feature == "edge":
        return _matlab_sobel_edges(v)
    if feature == "dct":
        dh = _dct_matrix(v.shape[-2], v.dtype, v.device)
        dw = _dct_matrix(v.shape[-1], v.dtype, v.device)
        return dh @ v @ dw.t()
    if feature == "wavelet":
        return _wavelet(v)
    raise FusionInputError(f"unknown FMI feature {feature!r}; choose one of {', '.join(FMI_FEATURES)}")


def _sqrt0(v: torch.Tensor) -> torch.Tensor:
    """``sqrt(v)`` for ``v >= 0`` whose gradient is finite at 0 (``torch.sqrt``'s is infinite there, and a zero
    variance in one window then turns the whole gradient to NaN); the values are ``torch.sqrt``'s."""
    pos = v > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, v, torch.ones_like(v))), torch.zeros_like(v))


def _window_vectors(feat: torch.Tensor, w: int) -> torch.Tensor:
    """All ``w x w`` windows of ``(B, 1, H, W)`` as rows ``(B * L, w * w)``, column-major as MATLAB's ``(:)``."""
    n = feat.shape[0]
    u = F.unfold(feat, w)  # (B, w*w, L), row-major within a window
    u = u.view(n, w, w, -1).transpose(1, 2).reshape(n, w * w, -1)
    return u.transpose(1, 2).reshape(-1, w * w)


def _window_pdf(v: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each row (constant rows become ones) and divide by its sum."""
    lo, hi = v.amin(1, keepdim=True), v.amax(1, keepdim=True)
    rng = hi - lo
    n = safe_divide(v - lo, rng.expand_as(v), 1.0)
    return n / n.sum(1, keepdim=True)


def _fmi_chunk(xv: torch.Tensor, fv: torch.Tensor) -> torch.Tensor:
    """Normalised feature MI of windows that are not identical (rows of ``(N, L)``)."""
    n, l = xv.shape  # noqa: E741 (L, the window length, as in the paper)
    xp, fp = _window_pdf(xv), _window_pdf(fv)
    hx, hf = probability_entropy(xp), probability_entropy(fp)
    xt, ft = xp - 1.0 / l, fp - 1.0 / l
    num = (xt * ft).sum(1)
    den = _sqrt0((xt * xt).sum(1) * (ft * ft).sum(1))
    zero = torch.zeros_like(num)
    c = torch.where(num == 0, zero, safe_divide(num, den))
    r = torch.arange(1, l + 1, dtype=xv.dtype, device=xv.device)
    ex, ef = xp @ r, fp @ r
    sx = _sqrt0((xp @ (r * r) - ex * ex).clamp_min(0))
    sf = _sqrt0((fp @ (r * r) - ef * ef).clamp_min(0))
    # Frechet bound coupling: upper (comonotone) for c >= 0, lower (countermonotone) for c < 0, where
    # the source's cells are taken in reverse order. Its mass lies on the merged CDF breakpoints.
    pos = c >= 0
    xs = torch.where(pos[:, None], xp, xp.flip(1))
    srt, order = torch.sort(torch.cat([fp.cumsum(1), xs.cumsum(1)], 1), dim=1, stable=True)
    is_f = order < l
    mass = torch.diff(srt, dim=1, prepend=torch.zeros_like(srt[:, :1]))
    ci = (torch.cumsum(is_f, 1) - is_f.long()).clamp_max(l - 1)
    cj = (torch.cumsum(~is_f, 1) - (~is_f).long()).clamp_max(l - 1)
    cj = torch.where(pos[:, None], cj, l - 1 - cj)
    cov = ((ci + 1) * (cj + 1) * mass).sum(1) - ef * ex  # covariance of the bound (Hoeffding)
    s = sx * sf
    ok = (c != 0) & (s > 0) & (cov != 0)
    wgt = torch.where(ok, safe_divide(c * s, cov), zero)
    q = 1 - wgt
    prod = fp.gather(1, ci) * xp.gather(1, cj)
    # joint = q * (fp x xp) + wgt * bound: closed-form entropy of the first term plus the cells of the bound
    hj = plogp(q) + q * (hx + hf) + (plogp(q[:, None] * prod + wgt[:, None] * mass) - plogp(q[:, None] * prod)).sum(1)
    mi = hx + hf - hj
    hs = hx + hf
    return torch.where(mi == 0, zero, safe_divide(2 * mi, hs))


def fmi_windows(xv: torch.Tensor, fv: torch.Tensor) -> torch.Tensor:
    """Haghighat's per-window normalised feature MI of a source and the fused image.

    Args:
        xv: source windows, ``(N, w * w)`` (MATLAB column order).
        fv: fused windows, same shape.

    Returns:
        ``(N,)`` values in [0, 1]; 1 for identical windows.
    """
    out = torch.ones(xv.shape[0], dtype=xv.dtype, device=xv.device)
    idx = (~(xv == fv).all(1)).nonzero().squeeze(1)
    for start in range(0, idx.numel(), _CHUNK):
        sel = idx[start : start + _CHUNK]
        out[sel] = _fmi_chunk(xv[sel], fv[sel])
    return out


def fmi_against(source: torch.Tensor, fused: torch.Tensor, feature: str = "pixel", window: int = 3) -> torch.Tensor:
    """FMI of a fused image against one source, differentiable in ``fused`` (for the ``pixel``, ``gradient`` and
    ``dct`` features): the per-source value that :func:`feature_mutual_information` combines.

    Args:
        source: ``(B, 1, H, W)`` source image, on the scale the metric is taken at (e.g. 0..255).
        fused: ``(B, 1, H, W)`` fused image, same scale.
        feature: one of :data:`FMI_FEATURES`.
        window: window side.

    Returns:
        ``(B,)``: the mean windowed normalised feature MI, in the input's dtype.
    """
    n = fused.shape[0]
    xv, fv = (_window_vectors(fmi_feature_map(v, feature), window) for v in (source, fused))
    return fmi_windows(xv, fv).view(n, -1).mean(1)


@metric_function
def feature_mutual_information(x: FusionInputs, feature: str | None = None, window: int | None = None) -> torch.Tensor:
    """FMI (Haghighat et al. 2011, fast-FMI 2014): mean windowed normalised feature MI, combined.

    Args:
        fused: F, ``(B, 1, H, W)``; a, b: the sources; protocol: default feature, window, combination.
        feature: one of :data:`FMI_FEATURES`; ``None`` takes the protocol's.
        window: window side; ``None`` takes the protocol's (3).

    Returns:
        ``(B,)`` float64; per source in [0, 1], 1 when F equals the source.

    Raises:
        FusionInputError: unknown feature, or images smaller than the window.
    """
    feat = feature or x.protocol.fmi_feature
    w = window or x.protocol.fmi_window
    if feat not in FMI_FEATURES:
        raise FusionInputError(f"unknown FMI feature {feat!r}; choose one of {', '.join(FMI_FEATURES)}")
    if min(x.raw("F").shape[-2:]) < w:
        raise FusionInputError(f"FMI needs images of at least {w}x{w} pixels, got {tuple(x.raw('F').shape[-2:])}")
    n = x.raw("F").shape[0]

    def windows(key: str) -> torch.Tensor:
        return x.cached(
            ("fmi", feat, w, key),  # type: ignore[return-value]
            lambda: _window_vectors(fmi_feature_map(x.value(key), feat), w),
        )

    vals = [fmi_windows(windows(key), windows("F")).view(n, -1).mean(1) for key in x.sources()]
    return combine_sources(vals[0], vals[1], x.protocol.combine)
