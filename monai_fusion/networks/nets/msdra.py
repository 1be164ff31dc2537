"""MSDRA baseline (after Li et al. 2022): three multi-scale double-branch residual attention
blocks in series, the Feature L1-Norm fusion rule and a conv decoder.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ..blocks.fusion import FeatureFusion
from ..blocks.multiscale import DoubleBranchAttentionBlock
from .base import FeatureFusionNet, conv_decoder

__all__ = ["MSDRA"]


class MSDRA(FeatureFusionNet):
    """Multi-scale double-branch residual attention network.

    Encoder: 3x3 conv + ReLU to ``channels``, then ``depth`` :class:`DoubleBranchAttentionBlock`.
    Decoder: 3x3 convs with ReLU ``channels -> decoder_channels -> 1``.

    Args:
        in_channels: image channels.
        channels: feature width.
        depth: double-branch blocks in series (the paper uses three).
        residual_convs: 3x3 convs in each block's residual branch (the paper uses six).
        decoder_channels: hidden widths of the decoder.
        fusion: feature-fusion rule (the paper's is the L1-norm rule, ``l1``).
        attention_head: also build the learned attention fusion head.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: int = 32,
        depth: int = 3,
        residual_convs: int = 6,
        decoder_channels: Sequence[int] = (32, 16),
        fusion: str = "l1",
        attention_head: bool = False,
    ) -> None:
        config = dict(
            in_channels=in_channels,
            channels=channels,
            depth=depth,
            residual_convs=residual_convs,
            decoder_channels=tuple(decoder_channels),
            fusion=fusion,
            attention_head=attention_head,
        )
        encoder = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.ReLU(),
            *[DoubleBranchAttentionBlock(channels, residual_convs) for _ in range(depth)],
        )
        super().__init__(
            encoder=encoder,
            decoder=conv_decoder(channels, decoder_channels, in_channels, act=True),
            fusion=FeatureFusion(fusion, channels, attention_head=attention_head),
            size_multiple=1,
            config=config,
        )
