"""Fusion networks (the default weight-map network, the poster's, MSRPAN, MSDRA), blocks and feature extractors."""

from pathlib import Path


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
from .utils import MissingWeightsError, count_parameters, load_weights_file, save_checkpoint, split_checkpoint

#: The shipped weights of the default fusion network (trained by the bundle's train.json).
DEFAULT_FUSION_WEIGHTS = Path(__file__).parent / "weights" / "default_fusion.pt"

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
    "WeightMapFusionNet",
    "DEFAULT_FUSION_WEIGHTS",
    "load_vgg_features",
    "torchvision_weights_file",
    "MissingWeightsError",
    "count_parameters",
    "load_weights_file",
    "save_checkpoint",
    "split_checkpoint",
]
