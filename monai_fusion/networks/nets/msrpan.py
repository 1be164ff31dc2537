"""MSRPAN baseline (after Fu et al. 2021): a shared multi-scale residual pyramid attention block on
a 3-level average-pool pyramid, feature-energy-ratio fusion and a linear decoder.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ..blocks.fusion import FeatureFusion
from ..blocks.multiscale import PyramidResidualAttentionBlock
from .base import FeatureFusionNet, conv_decoder

__all__ = ["MSRPAN"]


class MSRPAN(FeatureFusionNet):
    """Multi-scale residual pyramid attention network.

    Encoder: 3x3 conv + ReLU to ``channels``, then ``depth`` :class:`PyramidResidualAttentionBlock`.
    Decoder: linear 3x3 convs ``channels -> decoder_channels -> 1``.

    Args:
        in_channels: image channels.
        channels: feature width.
        levels: pyramid levels (inputs are padded to a multiple of ``2 ** (levels - 1)``).
        depth: pyramid blocks in series.
        decoder_channels: hidden widths of the linear decoder.
        fusion: feature-fusion rule (the paper's is the feature-energy ratio, ``energy``).
        attention_head: also build the learned attention fusion head.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: int = 32,
        levels: int = 3,
        depth: int = 1,
        decoder_channels: Sequence[int] = (16,),
        fusion: str = "energy",
        attention_head: bool = False,
    ) -> None:
        config = dict(
            in_channels=in_channels,
            channels=channels,
            levels=levels,
            depth=depth,
            decoder_channels=tuple(decoder_channels),
            fusion=fusion,
            attention_head=attention_head,
        )
        encoder = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.ReLU(),
            *[PyramidResidualAttentionBlock(channels, levels) for _ in range(depth)],
        )
        super().__init__(
            encoder=encoder,
            decoder=conv_decoder(channels, decoder_channels, in_channels, act=False),
            fusion=FeatureFusion(fusion, channels, attention_head=attention_head),
            size_multiple=2 ** (levels - 1),
            config=config,
        )
