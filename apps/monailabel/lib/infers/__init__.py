"""Infer tasks of the monai-fusion MONAI Label app."""

from .fusion import FusionInferTask

__all__ = ["FusionInferTask"]
