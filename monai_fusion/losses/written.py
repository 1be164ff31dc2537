"""The luminance of the image a user gets, made differentiable, so that a loss scores what is written.

A PET/SPECT fusion is fused in luminance but written in colour: the fused luminance gets the source's chroma
back, the RGB is clipped to the colour range and put on the 8-bit grid keeping its luminance to the nearest grey
level (:func:`~monai_fusion.data.quantise.rgb_to_uint8`), so a reader measures the clipped colour's luminance, rounded.
:func:`soft_written_luminance` is that path with the rounding replaced by additive uniform noise of one
quantisation step (the usual differentiable stand-in for rounding, Ballé et al. 2017). The noise does not change a
term's gradient on average, but the terms that measure correlation or shared information (SCD, MI) see a residual
below one grey level swamped by it and reward it little, as the file's rounding mostly removes it; only a residual
above the noise earns them their value. Colours pushed out of gamut, which the file clips, earn nothing (the
clipping has no gradient). A grey pair (neutral chroma) gets exactly the one rounding of a grey file. Written here
because MONAI and piq have no colour composition in the loss's path; the matrices are the colour transforms' own
(:data:`~monai_fusion.utils.kernels.YCBCR_TO_RGB`).
"""

from __future__ import annotations

import torch

from ..utils.errors import FusionInputError
from ..utils.kernels import RGB_TO_YCBCR, YCBCR_TO_RGB

__all__ = ["soft_written_luminance", "round_straight_through"]


def round_straight_through(x: torch.Tensor, levels: int = 255) -> torch.Tensor:
    """Rounding to ``levels`` steps whose gradient passes through as if it were the identity.

    Args:
        x: values in [0, 1].
        levels: the top level (255 for 8 bits).

    Returns:
        ``round(levels x) / levels``, differentiable in ``x`` with gradient 1.
    """
    return x + (torch.round(x * levels) / levels - x).detach()


def soft_written_luminance(
    pred: torch.Tensor, chroma: torch.Tensor, levels: int = 255, noise: bool = True, straight_through: bool = False
) -> torch.Tensor:
    """The written image's luminance for a fused luminance and the source's chroma, in [0, 1].

    Args:
        pred: fused luminance ``(N, 1, H, W)`` in [0, 1] (clamped).
        chroma: the other source's ``Cb, Cr`` ``(N, 2, H, W)``, centred on 0.5 (as
            :class:`~monai_fusion.transforms.RGBToYCbCrd` stores them); 0.5 for grey pairs, whose output is grey.
        levels: the top grey level of the written file (255 for 8 bits).
        noise: add uniform noise of one quantisation step to the luminance (training); False rounds it (the
            written image itself, no gradient through the rounding).
        straight_through: with ``noise`` False, pass the gradient through the rounding as if it were the identity
            (the values are still the written image's): for an objective that must read the exact written value
            and still move the luminance.

    Returns:
        ``(N, 1, H, W)`` luminance in [0, 1] (up to one step outside with ``noise``).
    """
    if pred.ndim != 4 or pred.shape[1] != 1 or chroma.shape != (pred.shape[0], 2, *pred.shape[2:]):
        raise FusionInputError(
            f"soft_written_luminance: expected (N, 1, H, W) luminance and (N, 2, H, W) chroma, "
            f"got {tuple(pred.shape)} and {tuple(chroma.shape)}"
        )
    if int(levels) != levels or levels < 1:
        raise FusionInputError(f"soft_written_luminance: levels must be a positive integer, got {levels}")
    to_rgb = YCBCR_TO_RGB.to(dtype=pred.dtype, device=pred.device)
    ycc = torch.cat([pred.clamp(0, 1), chroma - 0.5], dim=1)
    rgb = torch.einsum("ij,njhw->nihw", to_rgb, ycc).clamp(0, 1)
    y = torch.einsum("j,njhw->nhw", RGB_TO_YCBCR[0].to(dtype=pred.dtype, device=pred.device), rgb)[:, None]
    if noise:
        return y + (torch.rand_like(y) - 0.5) / levels
    return round_straight_through(y, levels) if straight_through else torch.round(y * levels) / levels
