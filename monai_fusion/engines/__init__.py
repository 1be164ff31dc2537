"""Workflows: evaluation of fused images (and, from their own modules, inference and batch preparation)."""

from .evaluation import evaluate_folders, find_fused_image, format_metric_table, write_metric_csv

__all__ = ["evaluate_folders", "find_fused_image", "format_metric_table", "write_metric_csv"]
