"""Workflows: inference over the preset path, batch preparation, trainer/evaluator factories, distributed setup,
folder evaluation, the benchmark."""

from .batch import PrepareFusionBatch, PrepareReconstructionBatch, stack_sources
from .distributed import distributed_device, finish_distributed, init_distributed
from .evaluation import evaluate_folders, find_fused_image, format_metric_table, write_metric_csv
from .inference import fuse_images, fuse_sample
from .reconstruction import create_reconstruction_evaluator, create_reconstruction_trainer, lower_is_better
from .training import create_fusion_evaluator, create_fusion_trainer

__all__ = [
    "PrepareFusionBatch",
    "PrepareReconstructionBatch",
    "stack_sources",
    "distributed_device",
    "finish_distributed",
    "init_distributed",
    "evaluate_folders",
    "find_fused_image",
    "format_metric_table",
    "write_metric_csv",
    "fuse_images",
    "fuse_sample",
    "create_fusion_evaluator",
    "create_fusion_trainer",
    "create_reconstruction_evaluator",
    "create_reconstruction_trainer",
    "lower_is_better",
]
