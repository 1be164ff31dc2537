"""Workflows: inference over the preset path, batch preparation, training/evaluation factories, folder evaluation."""

from .batch import PrepareFusionBatch, stack_sources
from .evaluation import evaluate_folders, find_fused_image, format_metric_table, write_metric_csv
from .inference import fuse_images, fuse_sample

__all__ = ["PrepareFusionBatch", "stack_sources", "evaluate_folders", "find_fused_image", "format_metric_table",
           "write_metric_csv", "fuse_images", "fuse_sample"]
