"""The reference poster's network: dilated residual attention encoder, fusion rule, conv decoder.

Encoder: a 1x1 conv to ``channels`` behind a residual attention gate (shallow stage); a feature
extractor of parallel dilated 3x3 convs (1, 3, 5), a 1x1 merge and batch norm, followed by
``depth`` dilated residual attention blocks (each followed by batch norm); a second attention gate
with a residual around the feature extractor. Decoder: 3x3 convs ``channels -> 64 -> 32 -> 1``.
At inference the authors fuse features with the softmax + nuclear-norm rule.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ..blocks.attention import DilatedResidualAttentionBlock, ResidualAttentionGate
from ..blocks.fusion import FeatureFusion
from ..blocks.multiscale import MultiScaleDilatedConv
from .base import FeatureFusionNet, conv_decoder

__all__ = ["PosterFusionNet"]


class PosterFusionNet(FeatureFusionNet):
    """The poster's encoder / fusion / decoder network for single-channel 2D slices.

    Args:
        in_channels: image channels (1 for grey/luminance slices).
        channels: feature width of the encoder.
        dilations: dilations of the parallel 3x3 convs of the feature extractor.
        depth: number of dilated residual attention blocks.
        repeats: chained applications of each block's shared conv (3: receptive fields 3, 5, 7).
        pool: pooling window of the attention gates (inputs are padded to a multiple of it).
        decoder_channels: hidden widths of the decoder.
        decoder_act: ReLU between decoder convs (the poster's decoder is linear).
        fusion: feature-fusion rule for ``forward(x, y)`` (see ``FUSION_STRATEGIES``).
        temperature: softmax temperature of the ``nuclear`` rule, relative to the mean activity of the two
            sources (:func:`~monai_fusion.networks.blocks.nuclear_weights`). 1 weighs the sources by their
            activities; towards 0 the rule picks the more active source's features alone, which is what a softmax
            over the raw nuclear norms (hundreds of units apart) does (``docs/reproduction.md`` measures both).
        attention_head: also build the learned attention fusion head (for paired training).

    Example:
        >>> net = PosterFusionNet()
        >>> fused = net(mri, ct)   # (B, 1, H, W)
        >>> recon = net(mri)       # autoencoder mode
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: int = 64,
        dilations: Sequence[int] = (1, 3, 5),
        depth: int = 1,
        repeats: int = 3,
        pool: int = 2,
        decoder_channels: Sequence[int] = (64, 32),
        decoder_act: bool = False,
        fusion: str = "nuclear",
        attention_head: bool = True,
        temperature: float = 1.0,
    ) -> None:
        config = dict(
            in_channels=in_channels,
            channels=channels,
            dilations=tuple(dilations),
            depth=depth,
            repeats=repeats,
            pool=pool,
            decoder_channels=tuple(decoder_channels),
            decoder_act=decoder_act,
            fusion=fusion,
            attention_head=attention_head,
            temperature=float(temperature),
        )
        extractor: list[nn.Module] = [MultiScaleDilatedConv(channels, dilations)]
        for _ in range(depth):
            extractor += [DilatedResidualAttentionBlock(channels, repeats=repeats, pool=pool), nn.BatchNorm2d(channels)]
        encoder = nn.Sequential(
            ResidualAttentionGate(nn.Conv2d(in_channels, channels, 1), pool=pool),  # shallow stage
            ResidualAttentionGate(nn.Sequential(*extractor), pool=pool),  # second gate + residual
        )
        super().__init__(
            encoder=encoder,
            decoder=conv_decoder(channels, decoder_channels, in_channels, act=decoder_act),
            fusion=FeatureFusion(fusion, channels, attention_head=attention_head, temperature=temperature),
            size_multiple=pool,
            config=config,
        )
