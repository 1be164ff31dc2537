"""Fusion networks (the default weight-map network, the poster's, MSRPAN, MSDRA), blocks and feature extractors."""

from .blocks import FUSION_STRATEGIES, FeatureFusion
from .nets import (
    MSDRA,
    MSRPAN,
    FeatureFusionNet,
    MedicalFeatureExtractor,
    PosterFusionNet,
    VGGFeatures,
    WeightMapFusionNet,
    load_medical_feature_extractor,
    load_vgg_features,
    torchvision_weights_file,
)
from .nets.two_source import TWO_SOURCE_NETWORKS
from .utils import MissingWeightsError, count_parameters, load_weights_file, save_checkpoint, split_checkpoint

__all__ = [
    "TWO_SOURCE_NETWORKS",
    "FUSION_STRATEGIES",
    "FeatureFusion",
    "FeatureFusionNet",
    "PosterFusionNet",
    "MSRPAN",
    "MSDRA",
    "MedicalFeatureExtractor",
    "load_medical_feature_extractor",
    "VGGFeatures",
    "WeightMapFusionNet",
    "load_vgg_features",
    "torchvision_weights_file",
    "MissingWeightsError",
    "count_parameters",
    "load_weights_file",
    "save_checkpoint",
    "split_checkpoint",
]
