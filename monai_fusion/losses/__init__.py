"""Losses of the fusion networks: MSE + Sobel gradient + perceptual, and the structure-preserving paired loss."""

from .fusion import FusionLoss
from .gradient import SobelGradientLoss, sobel_gradients
from .paired import PairedFusionLoss
from .perceptual import PERCEPTUAL_BACKBONES, PerceptualFeatureLoss, build_feature_backbone
from .structure import StructureFusionLoss, soft_mutual_information, soft_qabf, soft_scd
from .written import round_straight_through, soft_written_luminance

__all__ = [
    "PairedFusionLoss",
    "FusionLoss",
    "StructureFusionLoss",
    "soft_mutual_information",
    "soft_qabf",
    "soft_scd",
    "soft_written_luminance",
    "round_straight_through",
    "SobelGradientLoss",
    "sobel_gradients",
    "PerceptualFeatureLoss",
    "PERCEPTUAL_BACKBONES",
    "build_feature_backbone",
]
