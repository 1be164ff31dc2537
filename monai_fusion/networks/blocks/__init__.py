"""Building blocks of the fusion networks (MONAI's ``networks.blocks`` layout)."""

from .attention import DilatedResidualAttentionBlock, RecursiveConvSum, ResidualAttentionGate, pooled_attention
from .fusion import (
    FUSION_STRATEGIES,
    AttentionFusionHead,
    FeatureFusion,
    fuse_energy,
    fuse_l1,
    fuse_nuclear,
    nuclear_activities,
    nuclear_weights,
)
from .multiscale import (
    DoubleBranchAttentionBlock,
    MultiScaleDilatedConv,
    ParallelConvs,
    PyramidResidualAttentionBlock,
    SqueezeExcitation,
)

__all__ = [
    "pooled_attention",
    "ResidualAttentionGate",
    "RecursiveConvSum",
    "DilatedResidualAttentionBlock",
    "ParallelConvs",
    "MultiScaleDilatedConv",
    "PyramidResidualAttentionBlock",
    "SqueezeExcitation",
    "DoubleBranchAttentionBlock",
    "FUSION_STRATEGIES",
    "fuse_energy",
    "fuse_l1",
    "nuclear_activities",
    "nuclear_weights",
    "fuse_nuclear",
    "AttentionFusionHead",
    "FeatureFusion",
]
