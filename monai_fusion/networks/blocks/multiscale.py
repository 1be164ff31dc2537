"""Multi-scale convolution blocks: parallel dilated convs (poster), the MSRPAN pyramid block and
the MSDRA double-branch block. MONAI has none of these, hence this module.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ParallelConvs",
    "MultiScaleDilatedConv",
    "PyramidResidualAttentionBlock",
    "SqueezeExcitation",
    "DoubleBranchAttentionBlock",
]


class ParallelConvs(nn.Module):
    """Parallel 'same'-padded convs on one input, concatenated along channels.

    Args:
        in_channels: input channels.
        out_channels: channels of each branch.
        kernel_sizes: one kernel size per branch.
        dilations: one dilation per branch (defaults to 1 each).
        act: ReLU after each branch.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_sizes: Sequence[int],
        dilations: Sequence[int] | None = None,
        act: bool = False,
    ) -> None:
        super().__init__()
        dil = list(dilations) if dilations is not None else [1] * len(kernel_sizes)
        if len(dil) != len(kernel_sizes) or not kernel_sizes:
            raise ValueError(f"kernel_sizes {list(kernel_sizes)} and dilations {dil} must be non-empty, of one length")
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, out_channels, k, padding=d * (k // 2), dilation=d) for k, d in zip(kernel_sizes, dil)
        )
        self.act = bool(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, C, H, W)``. Returns: ``(B, branches * out_channels, H, W)``."""
        outs: list[torch.Tensor] = []
        for branch in self.branches:
            y = branch(x)
            outs.append(F.relu(y) if self.act else y)
        return torch.cat(outs, dim=1)


class MultiScaleDilatedConv(nn.Sequential):
    """The poster's multi-scale feature extraction: parallel 3x3 convs with dilations (1, 3, 5),
    concatenated, a 1x1 conv back to ``channels`` and batch norm.

    Args:
        channels: input and output channels.
        dilations: one 3x3 branch per dilation.
        act: ReLU after each branch (the poster's code applies none).
    """

    def __init__(self, channels: int, dilations: Sequence[int] = (1, 3, 5), act: bool = False) -> None:
        super().__init__(
            ParallelConvs(channels, channels, [3] * len(dilations), dilations, act=act),
            nn.Conv2d(channels * len(dilations), channels, 1),
            nn.BatchNorm2d(channels),
        )


class PyramidResidualAttentionBlock(nn.Module):
    """Multi-scale residual pyramid attention block (after Fu et al. 2021, MSRPAN).

    One shared unit (parallel 3x3 and 5x5 convs, 1x1 merge, residual, then a sigmoid spatial
    attention) is applied to each level of an average-pool pyramid (scales 1, 1/2, 1/4, ...);
    the levels are upsampled, concatenated, merged by a 1x1 conv and added to the input.

    Args:
        channels: input and output channels.
        levels: pyramid levels (inputs must divide by ``2 ** (levels - 1)``; the nets pad).
    """

    def __init__(self, channels: int, levels: int = 3) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels={levels} must be >= 1")
        self.levels = int(levels)
        self.unit = nn.Sequential(
            ParallelConvs(channels, channels, (3, 5), act=True), nn.Conv2d(2 * channels, channels, 1)
        )
        self.attention = nn.Conv2d(channels, 1, 3, padding=1)
        self.merge = nn.Conv2d(levels * channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, C, H, W)``. Returns: same shape."""
        size = [x.shape[-2], x.shape[-1]]
        outs: list[torch.Tensor] = []
        k = 1
        for level in range(self.levels):
            if level > 0:
                k = k * 2
            xi = x if level == 0 else F.avg_pool2d(x, kernel_size=k, stride=k)
            r = xi + self.unit(xi)
            r = r * torch.sigmoid(self.attention(r))
            outs.append(r if level == 0 else F.interpolate(r, size=size, mode="bilinear", align_corners=False))
        return x + self.merge(torch.cat(outs, dim=1))


class SqueezeExcitation(nn.Module):
    """Channel attention: global average pool, bottleneck MLP (1x1 convs), sigmoid, rescale.

    Args:
        channels: feature channels.
        reduction: bottleneck reduction factor.
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, C, H, W)``. Returns: ``x`` scaled per channel."""
        return x * self.fc(x.mean(dim=(2, 3), keepdim=True))


class DoubleBranchAttentionBlock(nn.Module):
    """Multi-scale double-branch residual attention block (after Li et al. 2022, MSDRA).

    Branch 1: parallel 5x5, 3x3 and 1x1 convs (multi-scale). Branch 2: a residual chain of
    ``residual_convs`` 3x3 conv + ReLU layers. Both are concatenated, merged by a 1x1 conv,
    re-weighted by channel attention and added to the input.

    Args:
        channels: input and output channels.
        residual_convs: 3x3 convs in the second branch (the paper uses six).
        reduction: channel-attention bottleneck factor.
    """

    def __init__(self, channels: int, residual_convs: int = 6, reduction: int = 4) -> None:
        super().__init__()
        half = max(1, channels // 2)
        self.multiscale = nn.Sequential(
            ParallelConvs(channels, half, (5, 3, 1), act=True), nn.Conv2d(3 * half, channels, 1)
        )
        layers: list[nn.Module] = []
        for _ in range(residual_convs):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
        self.residual = nn.Sequential(*layers)
        self.merge = nn.Conv2d(2 * channels, channels, 1)
        self.attention = SqueezeExcitation(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``(B, C, H, W)``. Returns: same shape."""
        b1 = F.relu(self.multiscale(x))
        b2 = x + self.residual(x)
        return x + self.attention(self.merge(torch.cat([b1, b2], dim=1)))
