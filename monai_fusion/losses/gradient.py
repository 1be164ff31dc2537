"""Sobel gradient loss: squared difference of absolute Sobel responses in x and y.

A batched conv implementation: MONAI's ``SobelGradients`` is an (unbatched) transform, not a loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["sobel_gradients", "SobelGradientLoss"]

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel responses of each channel (replicate padding, so the output keeps ``x``'s size).

    Args:
        x: ``(B, C, H, W)``.

    Returns:
        ``(gx, gy)``, each ``(B, C, H, W)``; ``gx`` responds to changes along W (columns).
    """
    c = x.shape[1]
    kx = _SOBEL_X.to(dtype=x.dtype, device=x.device)
    weight = torch.stack([kx, kx.t()])[:, None].repeat(c, 1, 1, 1)  # (2C, 1, 3, 3): x, y per channel
    g = F.conv2d(F.pad(x, [1, 1, 1, 1], mode="replicate"), weight, groups=c)
    return g[:, 0::2], g[:, 1::2]


class SobelGradientLoss(nn.Module):
    """``mean((|Gx p| - |Gx t|)^2) + mean((|Gy p| - |Gy t|)^2)`` with Sobel responses ``G``.

    With two targets (paired fusion), ``rule`` picks the target gradients: ``"mean"`` averages
    the two losses, ``"max"`` compares with the element-wise larger absolute response of the two
    sources (keeps the sharper edges of each).

    Args:
        rule: ``"mean"`` or ``"max"`` for two targets.
    """

    def __init__(self, rule: str = "mean") -> None:
        super().__init__()
        if rule not in ("mean", "max"):
            raise ValueError(f"rule={rule!r} must be 'mean' or 'max'")
        self.rule = rule

    def forward(self, pred: torch.Tensor, target: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        """Args: pred, target, other: ``(B, C, H, W)``. Returns: the scalar loss."""
        px, py = sobel_gradients(pred)
        tx, ty = sobel_gradients(target)
        tx, ty = tx.abs(), ty.abs()
        if other is not None:
            ox, oy = sobel_gradients(other)
            if self.rule == "max":
                tx, ty = torch.maximum(tx, ox.abs()), torch.maximum(ty, oy.abs())
            else:
                loss_o = F.mse_loss(px.abs(), ox.abs()) + F.mse_loss(py.abs(), oy.abs())
                return 0.5 * (F.mse_loss(px.abs(), tx) + F.mse_loss(py.abs(), ty) + loss_o)
        return F.mse_loss(px.abs(), tx) + F.mse_loss(py.abs(), ty)
