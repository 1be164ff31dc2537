"""Train tasks of the monai-fusion MONAI Label app."""

from .fusion import FusionTrainTask

__all__ = ["FusionTrainTask"]
