"""Kernels and constants that the metrics and the losses both use, so a loss optimises what a metric reports.

- :func:`sobel`: 3x3 Sobel responses of every channel (the metrics' Qabf/FMI edges and the losses' gradients).
- :data:`QABF_STRENGTH`, :data:`QABF_ORIENTATION`, :func:`qabf_sigmoid`: the Xydeas-Petrovic constants;
  :data:`NABF_STRENGTH`, :data:`NABF_ORIENTATION`: the artefact measure's (Shreyamsha Kumar).
- :data:`BT601_Y`: full-range BT.601 luminance weights of R, G, B; :data:`RGB_TO_YCBCR`, :data:`YCBCR_TO_RGB`: the
  full-range (JFIF) matrices (the colour transforms and the written-image loss term).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "SOBEL_X",
    "sobel",
    "BT601_Y",
    "RGB_TO_YCBCR",
    "YCBCR_TO_RGB",
    "HALF_PI",
    "QABF_STRENGTH",
    "QABF_ORIENTATION",
    "NABF_STRENGTH",
    "NABF_ORIENTATION",
    "qabf_sigmoid",
]

#: Horizontal 3x3 Sobel kernel (responds to changes along W); its transpose is the vertical one.
SOBEL_X: tuple[tuple[float, ...], ...] = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
#: Full-range BT.601 luminance weights of R, G, B (``Y = 0.299 R + 0.587 G + 0.114 B``).
BT601_Y: tuple[float, float, float] = (0.299, 0.587, 0.114)
#: Full-range BT.601 (JFIF) matrix; rows give Y, Cb, Cr (the chroma before centring) from R, G, B.
RGB_TO_YCBCR = torch.tensor(
    [list(BT601_Y), [-0.168735892, -0.331264108, 0.5], [0.5, -0.418687589, -0.081312411]], dtype=torch.float64
)
#: Its inverse (R, G, B from Y, Cb - v/2, Cr - v/2 for a value range [0, v]).
YCBCR_TO_RGB = torch.linalg.inv(RGB_TO_YCBCR)
HALF_PI: float = math.pi / 2
#: Qabf edge-strength sigmoid ``(gamma, kappa, sigma)`` (Xydeas and Petrovic 2000).
QABF_STRENGTH: tuple[float, float, float] = (0.9994, -15.0, 0.5)
#: Qabf edge-orientation sigmoid ``(gamma, kappa, sigma)``.
QABF_ORIENTATION: tuple[float, float, float] = (0.9879, -22.0, 0.8)
#: Nabf (fusion artefacts) edge-strength sigmoid ``(gamma, kappa, sigma)`` (Shreyamsha Kumar 2013).
NABF_STRENGTH: tuple[float, float, float] = (0.9999, -19.0, 0.5)
#: Nabf edge-orientation sigmoid ``(gamma, kappa, sigma)``.
NABF_ORIENTATION: tuple[float, float, float] = (0.9995, -22.0, 0.5)


def qabf_sigmoid(v: torch.Tensor, gamma: float, kappa: float, sigma: float) -> torch.Tensor:
    """``gamma / (1 + exp(kappa (v - sigma)))``: Qabf's preservation sigmoid."""
    return gamma / (1 + torch.exp(kappa * (v - sigma)))


def sobel(x: torch.Tensor, padding: str = "reflect") -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel responses ``(gx, gy)`` of every channel of ``(B, C, H, W)`` images, same size as the input.

    MONAI's ``SobelGradients`` is an unbatched transform; metrics and losses need a batched conv.

    Args:
        x: images.
        padding: ``"reflect"`` (mirror without repeating the edge, as Petrovic's code; the default of the
            metrics and the losses), ``"zeros"`` (``scipy.signal.convolve2d(mode="same")``, as the CDDFuse
            script) or ``"replicate"``.

    Returns:
        Horizontal and vertical derivative responses (unnormalised 3x3 Sobel), each ``(B, C, H, W)``.
    """
    if padding not in ("reflect", "zeros", "replicate"):
        raise ValueError(f"sobel: padding={padding!r} must be 'reflect', 'zeros' or 'replicate'")
    c = x.shape[1]
    kx = torch.tensor(SOBEL_X, dtype=x.dtype, device=x.device)
    weight = torch.stack([kx, kx.t()])[:, None].repeat(c, 1, 1, 1)  # (2C, 1, 3, 3): x, y per channel
    xp = F.pad(x, (1, 1, 1, 1)) if padding == "zeros" else F.pad(x, (1, 1, 1, 1), mode=padding)
    g = F.conv2d(xp, weight, groups=c)
    return g[:, 0::2], g[:, 1::2]
