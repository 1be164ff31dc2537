"""Intensity-based registration of the CT/PET/SPECT image onto the MRI (SimpleITK, Mattes mutual information)."""

from .array import (
    FOREGROUND_MASKS,
    INTERPOLATIONS,
    SAMPLING_STRATEGIES,
    TRANSFORM_TYPES,
    RegisterToReference,
    displacement_error,
    foreground_mask,
    mask_points,
)
from .dictionary import RegisterToReferenceD, RegisterToReferenced, RegisterToReferenceDict, ResampleToReferenceGridd

__all__ = [
    "FOREGROUND_MASKS",
    "INTERPOLATIONS",
    "SAMPLING_STRATEGIES",
    "TRANSFORM_TYPES",
    "RegisterToReference",
    "RegisterToReferenced",
    "RegisterToReferenceD",
    "RegisterToReferenceDict",
    "ResampleToReferenceGridd",
    "displacement_error",
    "foreground_mask",
    "mask_points",
]
