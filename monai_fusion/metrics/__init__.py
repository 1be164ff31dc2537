"""Fusion quality metrics with explicit conventions (protocols), as functions, MONAI metrics and handlers.

Every metric takes the fused image F and the sources A (MRI) and B (CT/PET/SPECT luminance) as
``(B, 1, H, W)`` floating tensors on the protocol's value range and returns one value per image.
See ``docs/metrics.md`` for the definitions and the conventions of each protocol.
"""

from .fusion_metric import FusionMetric, FusionMetrics
from .information import FMI_FEATURES, feature_mutual_information, mutual_information, normalized_mutual_information
from .inputs import FusionInputs
from .no_reference import average_gradient, entropy, spatial_frequency, standard_deviation, unique_value_entropy
from .perceptual import PSNR_LIMIT_DB, fsim, psnr, vif
from .protocols import PROTOCOLS, MetricProtocol, available_protocols, get_protocol, protocol_table
from .registry import DEFAULT_METRICS, METRICS, available_metrics, compute_metrics, resolve_metrics
from .report import format_metric_table
from .structural import correlation_coefficient, ms_ssim, nabf, qabf, scd, ssim
from .utils import pack_sources, split_sources

__all__ = [
    "FusionMetric",
    "FusionMetrics",
    "FusionInputs",
    "MetricProtocol",
    "PROTOCOLS",
    "available_protocols",
    "get_protocol",
    "protocol_table",
    "METRICS",
    "DEFAULT_METRICS",
    "available_metrics",
    "resolve_metrics",
    "compute_metrics",
    "format_metric_table",
    "pack_sources",
    "split_sources",
    "FMI_FEATURES",
    "PSNR_LIMIT_DB",
    "entropy",
    "unique_value_entropy",
    "standard_deviation",
    "spatial_frequency",
    "average_gradient",
    "mutual_information",
    "normalized_mutual_information",
    "feature_mutual_information",
    "ssim",
    "ms_ssim",
    "qabf",
    "nabf",
    "scd",
    "correlation_coefficient",
    "vif",
    "fsim",
    "psnr",
]
