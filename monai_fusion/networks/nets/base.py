"""The encoder / fusion / decoder skeleton every fusion network here shares.

``net(x)`` reconstructs ``x`` (autoencoder training, the poster's recipe); ``net(x, y)`` encodes
both sources (in one batch), fuses their features with the net's :class:`FeatureFusion` rule and
decodes (paired training and inference). Any H, W works: inputs are replicate-padded to the
size multiple the pooling needs and the output is cropped back.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn

from ..blocks.fusion import FeatureFusion
from ..utils import pad_to_multiple

__all__ = ["FeatureFusionNet", "conv_decoder"]


def conv_decoder(in_channels: int, channels: Sequence[int], out_channels: int = 1, act: bool = False) -> nn.Sequential:
    """A chain of 3x3 convs ``in_channels -> channels... -> out_channels``.

    Args:
        in_channels: feature channels coming in.
        channels: hidden widths, e.g. ``(64, 32)``.
        out_channels: image channels out.
        act: ReLU between convs (none after the last); ``False`` gives a linear decoder.

    Returns:
        The decoder.
    """
    layers: list[nn.Module] = []
    widths = [in_channels, *channels, out_channels]
    for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Conv2d(cin, cout, 3, padding=1))
        if act and i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class FeatureFusionNet(nn.Module):
    """Base of the fusion networks: ``encoder``, ``fusion`` (a :class:`FeatureFusion`), ``decoder``.

    Args:
        encoder: ``(B, 1, H, W) -> (B, C, H, W)`` features.
        decoder: ``(B, C, H, W) -> (B, 1, H, W)`` image.
        fusion: the feature-fusion rule.
        size_multiple: H and W are padded to a multiple of this.
        config: the subclass's constructor arguments, kept for checkpoints.
    """

    __jit_ignored_attributes__ = ["config"]

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        fusion: FeatureFusion,
        size_multiple: int = 1,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.fusion = fusion
        self.decoder = decoder
        self.size_multiple = int(size_multiple)
        self.config: dict[str, Any] = dict(config or {})

    def set_strategy(self, strategy: str) -> None:
        """Change the feature-fusion rule used by ``forward(x, y)`` (see :data:`FUSION_STRATEGIES`)."""
        self.fusion.set_strategy(strategy)
        self.config["fusion"] = strategy

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Features of ``x`` padded to the size multiple: ``(B, C, H', W')``."""
        return self.encoder(pad_to_multiple(x, self.size_multiple))

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Reconstruct ``x`` or, with ``y``, fuse ``x`` and ``y``.

        Args:
            x: ``(B, 1, H, W)``, e.g. the MRI.
            y: ``None`` (autoencoder) or the other source, same shape.

        Returns:
            ``(B, 1, H, W)`` output of the (linear) decoder, not clamped.
        """
        h, w = x.shape[-2], x.shape[-1]
        if y is None:
            feats = self.encode(x)
        else:
            both = self.encode(torch.cat([x, y], dim=0))
            n = x.shape[0]
            feats = self.fusion(both[:n], both[n:])
        return self.decoder(feats)[:, :, :h, :w]
