"""Fusion networks (the poster's, MSRPAN, MSDRA), their blocks and frozen feature extractors."""

from .blocks import FUSION_STRATEGIES, FeatureFusion
from .nets import (
    MSDRA,
    MSRPAN,
    FeatureFusionNet,
    MedicalFeatureExtractor,
    PosterFusionNet,
    VGGFeatures,
    load_medical_feature_extractor,
    load_vgg_features,
    torchvision_weights_file,
)
from .utils import MissingWeightsError, count_parameters, load_weights_file, save_checkpoint, split_checkpoint

#: Registry-style names of the fusion networks.
NETWORKS: dict[str, type[FeatureFusionNet]] = {"poster": PosterFusionNet, "msrpan": MSRPAN, "msdra": MSDRA}

__all__ = [
    "NETWORKS",
    "FUSION_STRATEGIES",
    "FeatureFusion",
    "FeatureFusionNet",
    "PosterFusionNet",
    "MSRPAN",
    "MSDRA",
    "MedicalFeatureExtractor",
    "load_medical_feature_extractor",
    "VGGFeatures",
    "load_vgg_features",
    "torchvision_weights_file",
    "MissingWeightsError",
    "count_parameters",
    "load_weights_file",
    "save_checkpoint",
    "split_checkpoint",
]
