"""Per-modality intensity normalisation to [0, 1].

A thin policy over MONAI's own ``ScaleIntensityRange`` and ``ScaleIntensityRangePercentiles``:
images read from integer files (PNG, 8/16-bit) carry their dtype's maximum in
``meta["value_max"]`` and are scaled by that fixed range (so a rendered pseudo-colour keeps its
meaning); float data (NIfTI, DICOM in physical units) are windowed between two percentiles.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import ScaleIntensityRange, ScaleIntensityRangePercentiles, Transform
from monai.transforms.utils_pytorch_numpy_unification import percentile

from ...utils.errors import FusionInputError

__all__ = ["NormalizeModality"]


class NormalizeModality(Transform):
    """Scale an image to [0, 1] by its file's value range, or by a percentile window.

    Args:
        mode: ``"auto"`` (fixed range when ``meta["value_max"]`` is known, else percentiles),
            ``"range"`` (always fixed range; needs ``value_max``) or ``"percentile"``.
        lower: lower percentile of the window (percentile mode).
        upper: upper percentile of the window (percentile mode).
        value_max: fixed range top to use when the image carries none.
    """

    backend = ScaleIntensityRange.backend

    def __init__(
        self, mode: str = "auto", lower: float = 0.5, upper: float = 99.5, value_max: float | None = None
    ) -> None:
        if mode not in ("auto", "range", "percentile"):
            raise FusionInputError(f"NormalizeModality: mode={mode!r}; expected 'auto', 'range' or 'percentile'")
        if not 0 <= lower < upper <= 100:
            raise FusionInputError(
                f"NormalizeModality: percentiles must satisfy 0 <= lower < upper <= 100, got {lower}, {upper}"
            )
        self.mode, self.lower, self.upper, self.value_max = mode, lower, upper, value_max

    def _value_max(self, img: NdarrayOrTensor) -> float | None:
        vm = img.meta.get("value_max") if isinstance(img, MetaTensor) else None
        if vm is not None and isinstance(vm, torch.Tensor):
            vm = float(vm.flatten()[0])
        if vm is None or (isinstance(vm, float) and math.isnan(vm)):
            vm = self.value_max
        return vm

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Args: img: channel-first image. Returns: the image in [0, 1] (channels share one window)."""
        vm = self._value_max(img)
        if self.mode == "range" and vm is None:
            raise FusionInputError("NormalizeModality: mode='range' needs value_max (none in the image's metadata)")
        if self.mode != "percentile" and vm is not None:
            if not (math.isfinite(float(vm)) and float(np.float32(vm)) > 0.0):  # would divide by zero: NaN out
                raise FusionInputError(f"NormalizeModality: value_max={vm!r} must be a positive finite number")
            out = ScaleIntensityRange(a_min=0.0, a_max=float(vm), b_min=0.0, b_max=1.0, clip=True)(img)
        else:
            lo, hi = (float(percentile(img, q)) for q in (self.lower, self.upper))
            if not hi > lo:  # MONAI would return the image unscaled: a silently wrong, near-binary result
                name = img.meta.get("filename_or_obj", "image") if isinstance(img, MetaTensor) else "image"
                raise FusionInputError(
                    f"NormalizeModality: {name} has an empty percentile window ({self.lower}-{self.upper}: "
                    f"{lo:g} to {hi:g}); it is (almost) constant"
                )
            out = ScaleIntensityRangePercentiles(self.lower, self.upper, b_min=0.0, b_max=1.0, clip=True)(img)
        if isinstance(out, MetaTensor):
            out.meta["value_max"] = 1.0
        return out
