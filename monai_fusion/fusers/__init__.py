"""The fusion interface: one :class:`Fuser` protocol and a registry of every method by name.

A fuser takes an MRI batch and the other modality's grey/luminance batch, both ``(B, 1, H, W)``
float tensors in [0, 1], and returns the fused ``(B, 1, H, W)`` tensor in [0, 1]. Colour handling
(YCbCr split and merge) happens outside, in the transforms, so every method sees grey images.
The CLI, the bundle, the benchmark and the demo all pick methods through :func:`get_fuser`.

Registered methods: ``default`` (the shipped trained model); classical ``average``, ``max``, ``laplacian``,
``dwt``, ``guided_filter``;
networks ``poster``, ``msrpan``, ``msdra`` (shipped weights by default, ``weights=`` another checkpoint,
``random_init=True`` for timing only), ``zero_learning`` (needs torchvision's ImageNet VGG19 file, never
downloaded) and ``zero_learning_medical`` (the same rule on the shipped medical feature extractor).
"""

from .base import BaseFuser, Fuser, available_fusers, check_fuser_inputs, get_fuser, register_fuser
from .classical import AverageFuser, GuidedFilterFuser, LaplacianPyramidFuser, MaxFuser, WaveletFuser
from .learned import (
    DEFAULT_WEIGHTS,
    DefaultFuser,
    MedicalZeroLearningFuser,
    MSDRAFuser,
    MSRPANFuser,
    NetworkFuser,
    PosterFuser,
    ZeroLearningFuser,
)

__all__ = [
    "Fuser",
    "BaseFuser",
    "register_fuser",
    "get_fuser",
    "available_fusers",
    "check_fuser_inputs",
    "AverageFuser",
    "MaxFuser",
    "LaplacianPyramidFuser",
    "WaveletFuser",
    "GuidedFilterFuser",
    "DEFAULT_WEIGHTS",
    "DefaultFuser",
    "NetworkFuser",
    "PosterFuser",
    "MSRPANFuser",
    "MSDRAFuser",
    "ZeroLearningFuser",
    "MedicalZeroLearningFuser",
]
