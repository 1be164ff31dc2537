"""Fusion networks and frozen feature extractors (MONAI's ``networks.nets`` layout)."""

from .base import FeatureFusionNet, conv_decoder
from .feature_extractor import MEDICAL_FEATURES_FILE, MedicalFeatureExtractor, load_medical_feature_extractor
from .msdra import MSDRA
from .msrpan import MSRPAN
from .poster import PosterFusionNet
from .two_source import TwoSourceFusionNet
from .vgg import VGG_ARCHS, VGG_DEFAULT_LAYERS, VGGFeatures, load_vgg_features, torchvision_weights_file
from .weight_map import WeightMapFusionNet

__all__ = [
    "FeatureFusionNet",
    "conv_decoder",
    "PosterFusionNet",
    "MSRPAN",
    "MSDRA",
    "TwoSourceFusionNet",
    "WeightMapFusionNet",
    "MEDICAL_FEATURES_FILE",
    "MedicalFeatureExtractor",
    "load_medical_feature_extractor",
    "VGG_ARCHS",
    "VGG_DEFAULT_LAYERS",
    "VGGFeatures",
    "load_vgg_features",
    "torchvision_weights_file",
]
