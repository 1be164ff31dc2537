"""No-reference fusion metrics: they look at the fused image F only.

EN (entropy), SD (standard deviation), SF (spatial frequency) and AG (average gradient) follow
the definitions of the widely used fusion evaluation scripts (SF and AG as in CDDFuse's
``Evaluator.py``). None of them exists batched in torch in MONAI or piq; scikit-image's
``shannon_entropy`` is the protocol ``poster``'s estimator and is reproduced here in torch.
"""

from __future__ import annotations

import torch

from .inputs import FusionInputs, metric_function
from .utils import level_histogram, probability_entropy

__all__ = ["entropy", "standard_deviation", "spatial_frequency", "average_gradient", "unique_value_entropy"]


def unique_value_entropy(img: torch.Tensor) -> torch.Tensor:
    """Entropy in bits with one bin per distinct value, as ``skimage.measure.shannon_entropy``.

    On unquantised floats almost every pixel is its own bin, so the value can exceed the 8 bits
    an 8-bit image can hold (up to ``log2(H * W)``): the reference poster's 9.887.

    Args:
        img: one image, any shape.

    Returns:
        0-d float64 tensor.
    """
    _, counts = torch.unique(img.reshape(-1), return_counts=True)
    return probability_entropy(counts.double() / img.numel())


@metric_function
def entropy(x: FusionInputs) -> torch.Tensor:
    """EN: Shannon entropy of F in bits.

    ``histogram`` estimator: the 256 grey levels of the protocol's quantisation; ``unique``: one bin
    per distinct float value (:func:`unique_value_entropy`).

    Args:
        fused: F, ``(B, 1, H, W)``; the decorated call also takes ``a``, ``b``, ``protocol``.

    Returns:
        ``(B,)`` float64, in [0, 8] for the histogram estimator.
    """
    if x.protocol.en_estimator == "unique":
        return torch.stack([unique_value_entropy(img) for img in x.raw("F")])
    return probability_entropy(level_histogram(x.levels("F"), 256))


@metric_function
def standard_deviation(x: FusionInputs) -> torch.Tensor:
    """SD: population standard deviation of F, in protocol units.

    Args:
        fused: F, ``(B, 1, H, W)``.

    Returns:
        ``(B,)`` float64.
    """
    return x.value("F").std(dim=(1, 2, 3), unbiased=False)


@metric_function
def spatial_frequency(x: FusionInputs) -> torch.Tensor:
    """SF: ``sqrt(mean(row differences^2) + mean(column differences^2))`` of F, in protocol units.

    Args:
        fused: F, ``(B, 1, H, W)``.

    Returns:
        ``(B,)`` float64.
    """
    f = x.value("F")
    rf = (f[..., :, 1:] - f[..., :, :-1]).pow(2).mean(dim=(1, 2, 3))
    cf = (f[..., 1:, :] - f[..., :-1, :]).pow(2).mean(dim=(1, 2, 3))
    return torch.sqrt(rf + cf)


@metric_function
def average_gradient(x: FusionInputs) -> torch.Tensor:
    """AG: mean of ``sqrt((gx^2 + gy^2) / 2)`` with central differences (one-sided at the border).

    Args:
        fused: F, ``(B, 1, H, W)``.

    Returns:
        ``(B,)`` float64, in protocol units per pixel.
    """
    gy, gx = torch.gradient(x.value("F"), dim=(2, 3))
    return torch.sqrt((gx * gx + gy * gy) / 2).mean(dim=(1, 2, 3))
