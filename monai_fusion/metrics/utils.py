"""Small tensor helpers shared by the fusion metrics: source packing, histograms, entropies, Sobel.

Everything works on batched ``(B, 1, H, W)`` tensors and returns one value per image, so a metric
never mixes images of a batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..utils.errors import FusionInputError

__all__ = [
    "pack_sources",
    "split_sources",
    "combine_sources",
    "safe_divide",
    "plogp",
    "probability_entropy",
    "level_histogram",
    "joint_histogram",
    "pearson",
    "separable_filter",
    "gaussian_kernel_1d",
    "local_moments",
]


def pack_sources(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pack the two sources as the evaluator's label: ``torch.cat([A, B], dim=1)``.

    Args:
        a: MRI, ``(B, 1, H, W)``.
        b: CT/PET/SPECT luminance, ``(B, 1, H, W)``.

    Returns:
        ``(B, 2, H, W)``: channel 0 is A, channel 1 is B.
    """
    if (
        not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor))
        or a.shape != b.shape
        or a.ndim != 4
        or a.shape[1] != 1
    ):
        shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in (a, b)]
        raise FusionInputError(f"pack_sources: expected two (B, 1, H, W) tensors of one shape, got {shapes}")
    return torch.cat([a, b], dim=1)


def split_sources(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unpack a two-channel label ``(B, 2, H, W)`` into ``(A, B)``, each ``(B, 1, H, W)``.

    Raises:
        FusionInputError: when ``y`` is not a ``(B, 2, H, W)`` tensor.
    """
    if not isinstance(y, torch.Tensor) or y.ndim != 4 or y.shape[1] != 2:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise FusionInputError(
            f"fusion metrics expect y = torch.cat([A, B], dim=1) of shape (B, 2, H, W) (A = MRI, B = other "
            f"modality), got {shape}"
        )
    return y[:, :1], y[:, 1:]


def combine_sources(va: torch.Tensor, vb: torch.Tensor, how: str) -> torch.Tensor:
    """Combine the F-vs-A and F-vs-B values of a metric: ``"mean"`` or ``"sum"``."""
    return va + vb if how == "sum" else (va + vb) / 2


def safe_divide(num: torch.Tensor, den: torch.Tensor, fill: float | torch.Tensor = 0.0) -> torch.Tensor:
    """``num / den`` where ``den != 0``, ``fill`` elsewhere (no NaN/Inf from a zero denominator)."""
    ok = den != 0
    fill_t = torch.as_tensor(fill, dtype=num.dtype, device=num.device)
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), fill_t)


def plogp(p: torch.Tensor, base: float = 2.0) -> torch.Tensor:
    """Elementwise ``-p log|p|`` in the given base, with ``0 log 0 = 0``."""
    a = p.abs()
    return -p * torch.log(torch.where(a > 0, a, torch.ones_like(a))) / math.log(base)


def probability_entropy(p: torch.Tensor, dims: int | tuple[int, ...] = -1, base: float = 2.0) -> torch.Tensor:
    """Shannon entropy of probabilities ``p`` summed over ``dims`` (the helper; the EN metric of an image is
    :func:`monai_fusion.metrics.entropy`)."""
    return plogp(p, base).sum(dims)


def level_histogram(levels: torch.Tensor, bins: int) -> torch.Tensor:
    """Per-image normalised histogram of integer levels.

    Args:
        levels: ``(B, ...)`` integers in ``[0, bins)``.
        bins: number of bins.

    Returns:
        ``(B, bins)`` float64 probabilities.
    """
    n = levels.shape[0]
    flat = levels.reshape(n, -1)
    idx = flat + torch.arange(n, device=flat.device)[:, None] * bins
    counts = torch.bincount(idx.reshape(-1), minlength=n * bins).view(n, bins).double()
    return counts / flat.shape[1]


def joint_histogram(x_levels: torch.Tensor, y_levels: torch.Tensor, bins: int) -> torch.Tensor:
    """Per-image normalised joint histogram of two integer-level images.

    Args:
        x_levels: ``(B, ...)`` integers in ``[0, bins)``, indexing rows.
        y_levels: same shape, indexing columns.
        bins: number of levels of each image.

    Returns:
        ``(B, bins, bins)`` float64 joint probabilities.
    """
    return level_histogram(x_levels * bins + y_levels, bins * bins).view(-1, bins, bins)


def pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per image of ``(B, ...)`` tensors; 0 where either image is constant.

    A constant image has no variance, so its correlation is undefined; 0 (no linear relation can
    be measured) keeps tables free of NaN.
    """
    n = x.shape[0]
    xc = x.reshape(n, -1).double()
    yc = y.reshape(n, -1).double()
    xc = xc - xc.mean(1, keepdim=True)
    yc = yc - yc.mean(1, keepdim=True)
    den = torch.sqrt((xc * xc).sum(1) * (yc * yc).sum(1))
    num = (xc * yc).sum(1)
    return safe_divide(num, den)


def separable_filter(x: torch.Tensor, kernel_1d: torch.Tensor) -> torch.Tensor:
    """Filter every channel of ``(B, C, H, W)`` with ``kernel_1d`` along H and W ('valid' borders)."""
    c = x.shape[1]
    k = kernel_1d.to(dtype=x.dtype, device=x.device)
    out = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def gaussian_kernel_1d(size: int, sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``size`` taps (float64); its outer square is piq's and
    scikit-image's 2-D window."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-(r * r) / (2 * sigma * sigma))
    return k / k.sum()


def local_moments(
    x: torch.Tensor, y: torch.Tensor, kernel_1d: torch.Tensor, cov_norm: float = 1.0
) -> tuple[torch.Tensor, ...]:
    """Windowed means, variances and covariance of ``(N, 1, H, W)`` pairs ('valid' positions).

    Args:
        x: first images.
        y: second images, same shape.
        kernel_1d: separable window weights (summing to 1).
        cov_norm: factor on the (co)variances (``n / (n - 1)`` for sample covariance).

    Returns:
        ``(mu_x, mu_y, var_x, var_y, cov_xy)``, each ``(N, H', W')``.
    """
    m = separable_filter(torch.cat([x, y, x * x, y * y, x * y], 1), kernel_1d)
    mx, my = m[:, 0], m[:, 1]
    return mx, my, cov_norm * (m[:, 2] - mx * mx), cov_norm * (m[:, 3] - my * my), cov_norm * (m[:, 4] - mx * my)
