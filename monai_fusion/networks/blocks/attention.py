"""The poster's residual attention gate and the dilated residual attention block built on it.

The gate multiplies a body's output by a parameter-free attention map
``ReLU(upsample(avgpool(x)))`` and adds the input back: ``out = att(x) * body(x) + x``. With a
1x1 conv as body it is the poster's shallow stage; with the shared-conv sum it is the dilated
residual attention block; with the whole feature extractor as body it is the second gate.
MONAI has no such block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["pooled_attention", "ResidualAttentionGate", "RecursiveConvSum", "DilatedResidualAttentionBlock"]


def pooled_attention(x: torch.Tensor, pool: int = 2) -> torch.Tensor:
    """Parameter-free attention map ``ReLU(upsample(avgpool(x)))`` at ``x``'s spatial size.

    Args:
        x: ``(B, C, H, W)`` features.
        pool: average-pooling window and stride; nearest upsampling brings the map back to
            ``(H, W)`` (sizes not divisible by ``pool`` are stretched to fit).

    Returns:
        The ``(B, C, H, W)`` non-negative map.
    """
    if pool <= 1:
        return F.relu(x)
    pooled = F.avg_pool2d(x, kernel_size=pool, stride=pool)
    return F.relu(F.interpolate(pooled, size=[x.shape[-2], x.shape[-1]], mode="nearest"))


class ResidualAttentionGate(nn.Module):
    """``out = pooled_attention(x) * body(x) + x`` (channels broadcast when ``x`` has one channel).

    Args:
        body: the gated module (``None``: identity, i.e. ``x * att(x) + x``).
        pool: pooling window of the attention map.
    """

    def __init__(self, body: nn.Module | None = None, pool: int = 2) -> None:
        super().__init__()
        self.body = body if body is not None else nn.Identity()
        self.pool = int(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, C, H, W)``. Returns: ``(B, C', H, W)`` with ``C'`` the body's channels."""
        return pooled_attention(x, self.pool) * self.body(x) + x


class RecursiveConvSum(nn.Module):
    """One shared 3x3 conv applied 1, 2, ..., ``repeats`` times in a chain, outputs summed.

    With 3 repeats the terms have receptive fields 3, 5 and 7 for the parameters of one conv.

    Args:
        channels: input and output channels.
        repeats: how many chained applications are summed.
        kernel_size: the shared conv's kernel.
        act: apply ReLU after each application (the poster's code applies none).
    """

    def __init__(self, channels: int, repeats: int = 3, kernel_size: int = 3, act: bool = False) -> None:
        super().__init__()
        if repeats < 1:
            raise ValueError(f"repeats={repeats} must be >= 1")
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.repeats = int(repeats)
        self.act = bool(act)

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return F.relu(y) if self.act else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, C, H, W)``. Returns: the summed chain, same shape."""
        y = self._step(x)
        total = y
        for _ in range(self.repeats - 1):
            y = self._step(y)
            total = total + y
        return total


class DilatedResidualAttentionBlock(ResidualAttentionGate):
    """The poster's dilated residual attention block (DRAB): a gated :class:`RecursiveConvSum`.

    ``out = ReLU(up(pool(x))) * (g(x) + g(g(x)) + g(g(g(x)))) + x`` with one shared conv ``g``.

    Args:
        channels: feature channels.
        repeats: chained applications of the shared conv (3 gives receptive fields 3, 5, 7).
        pool: pooling window of the attention map.
        act: ReLU after each application of the shared conv.
    """

    def __init__(self, channels: int, repeats: int = 3, pool: int = 2, act: bool = False) -> None:
        super().__init__(RecursiveConvSum(channels, repeats=repeats, act=act), pool=pool)
