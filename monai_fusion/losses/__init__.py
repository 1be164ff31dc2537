"""Losses of the fusion networks: MSE + Sobel gradient + perceptual (MONAI's ``losses`` layout)."""

from .fusion import FusionLoss
from .gradient import SobelGradientLoss, sobel_gradients
from .perceptual import PERCEPTUAL_BACKBONES, PerceptualFeatureLoss, build_feature_backbone

__all__ = [
    "FusionLoss",
    "SobelGradientLoss",
    "sobel_gradients",
    "PerceptualFeatureLoss",
    "PERCEPTUAL_BACKBONES",
    "build_feature_backbone",
]
