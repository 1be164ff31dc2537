"""Sobel gradient loss: squared difference of absolute Sobel responses in x and y (the metrics' Sobel)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.kernels import sobel

__all__ = ["sobel_gradients", "SobelGradientLoss"]


def sobel_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel responses of each channel, as the metrics take them (:func:`monai_fusion.utils.kernels.sobel`).

    Args:
        x: ``(B, C, H, W)``.

    Returns:
        ``(gx, gy)``, each ``(B, C, H, W)``; ``gx`` responds to changes along W (columns).
    """
    return sobel(x)


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
