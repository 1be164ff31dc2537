"""Workflows: inference over the preset path, batch preparation, trainer/evaluator factories, distributed setup,
folder evaluation, the benchmark."""

from .batch import PrepareFusionBatch, stack_sources
from .distributed import distributed_device, init_distributed
from .evaluation import evaluate_folders, find_fused_image, format_metric_table, write_metric_csv
from .inference import fuse_images, fuse_sample
from .training import create_fusion_evaluator, create_fusion_trainer

__all__ = [
    "PrepareFusionBatch",
    "stack_sources",
    "distributed_device",
    "init_distributed",
    "evaluate_folders",
    "find_fused_image",
    "format_metric_table",
    "write_metric_csv",
    "fuse_images",
    "fuse_sample",
    "create_fusion_evaluator",
    "create_fusion_trainer",
]
