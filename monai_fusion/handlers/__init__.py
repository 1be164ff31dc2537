"""Ignite handlers of the fusion workflows, one handler a module (as ``monai.handlers``)."""

from .best_metric_state import BestMetricState
from .checkpoint_loader import CheckedCheckpointLoader
from .checkpoint_saver import AtomicCheckpointSaver, AtomicDiskSaver
from .fused_image_writer import FusedImageWriter
from .fusion_metric import FusionMetricHandler, FusionMetricOutput, FusionMetricsHandler, fusion_metric_handlers
from .loss_terms import LossTermsHandler, loss_terms_output
from .metric_summary import MetricSummaryWriter, pair_ids
from .propagate_errors import PropagateErrors

__all__ = [
    "BestMetricState",
    "CheckedCheckpointLoader",
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "FusedImageWriter",
    "FusionMetricHandler",
    "FusionMetricOutput",
    "FusionMetricsHandler",
    "fusion_metric_handlers",
    "LossTermsHandler",
    "loss_terms_output",
    "MetricSummaryWriter",
    "pair_ids",
    "PropagateErrors",
]
