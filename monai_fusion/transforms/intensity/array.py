"""Per-modality intensity normalisation to [0, 1].

A thin policy over MONAI's own ``ScaleIntensityRange`` and ``ScaleIntensityRangePercentiles``:
images read from integer files (PNG, 8/16-bit) carry their dtype's maximum in
``meta["value_max"]`` and are scaled by that fixed range (so a rendered pseudo-colour keeps its
meaning); volumes in clinical units get a clinical window (a CT in Hounsfield units a named CT
window, a PET in SUV an SUV window; ``meta["units"]``, see :mod:`monai_fusion.data.units`);
other float data (MRI, NIfTI PET, SPECT) are windowed between two percentiles. The window used is
written to ``meta["intensity_window"]``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import ScaleIntensityRange, ScaleIntensityRangePercentiles, Transform
from monai.transforms.utils_pytorch_numpy_unification import percentile

from ...data.units import CT_WINDOWS, DEFAULT_CT_WINDOW, DEFAULT_SUV_WINDOW, parse_window
from ...utils.errors import FusionInputError

__all__ = ["NormalizeModality"]


class NormalizeModality(Transform):
    """Scale an image to [0, 1] by its file's value range, a clinical window, or a percentile window.

    Args:
        mode: ``"auto"`` (fixed range when ``meta["value_max"]`` is known, else the clinical window of the image's
            units, else percentiles), ``"range"`` (always fixed range; needs ``value_max``) or ``"percentile"``.
        lower: lower percentile of the window (percentile mode).
        upper: upper percentile of the window (percentile mode).
        value_max: fixed range top to use when the image carries none.
        window: the clinical window of a CT/PET volume in ``auto`` mode: ``"auto"`` (CT in HU: the
            :data:`~monai_fusion.data.units.DEFAULT_CT_WINDOW`; PET in SUV: 0 to 10 SUV; else percentiles),
            ``"percentile"``, a name of :data:`~monai_fusion.data.units.CT_WINDOWS` (``brain``, ``subdural``,
            ``stroke``, ``bone``), or ``(low, high)`` / ``"LOW,HIGH"`` in the image's units (HU or SUV). The MRI is
            always windowed by percentiles.

    Raises:
        FusionInputError: bad arguments; a named or numeric window for an image whose units are unknown (a PNG,
            a CT not in HU, a PET without the tags of an SUV), or a CT window for a PET.
    """

    backend = ScaleIntensityRange.backend

    def __init__(
        self,
        mode: str = "auto",
        lower: float = 0.5,
        upper: float = 99.5,
        value_max: float | None = None,
        window: str | tuple[float, float] = "auto",
    ) -> None:
        if mode not in ("auto", "range", "percentile"):
            raise FusionInputError(f"NormalizeModality: mode={mode!r}; expected 'auto', 'range' or 'percentile'")
        if not 0 <= lower < upper <= 100:
            raise FusionInputError(
                f"NormalizeModality: percentiles must satisfy 0 <= lower < upper <= 100, got {lower}, {upper}"
            )
        self.mode, self.lower, self.upper, self.value_max = mode, lower, upper, value_max
        self.window = parse_window(window, "window")
        self.window_text = window if isinstance(window, str) else ",".join(f"{v:g}" for v in window)
        if mode != "auto" and self.window not in ("auto", "percentile"):
            raise FusionInputError(
                f"NormalizeModality: window={self.window_text!r} needs mode='auto', got mode={mode!r}"
            )

    def _value_max(self, img: NdarrayOrTensor) -> float | None:
        vm = img.meta.get("value_max") if isinstance(img, MetaTensor) else None
        if vm is not None and isinstance(vm, torch.Tensor):
            vm = float(vm.flatten()[0])
        if vm is None or (isinstance(vm, float) and math.isnan(vm)):
            vm = self.value_max
        return vm

    def _clinical_window(self, img: NdarrayOrTensor) -> tuple[float, float, str] | None:
        """``(low, high, note)`` in the stored values for a CT in HU or a PET in SUV; None for percentiles."""
        meta = img.meta if isinstance(img, MetaTensor) else {}
        modality, units, name = meta.get("modality"), meta.get("units"), _name(img)
        if modality == "MRI" or self.window == "percentile":
            return None
        explicit = self.window != "auto"
        if modality == "CT" and units == "HU":
            win = DEFAULT_CT_WINDOW if self.window == "auto" else self.window
            if isinstance(win, str):
                level, width = CT_WINDOWS[win]
                return level - width / 2, level + width / 2, f"CT {win} window (level {level:g}, width {width:g} HU)"
            return win[0], win[1], f"CT window {win[0]:g} to {win[1]:g} HU"
        if modality == "PET" and units == "SUV":
            if isinstance(self.window, str) and explicit:
                raise FusionInputError(
                    f"window {self.window_text!r} is a CT window; {name} is a PET in SUV: give LOW,HIGH in SUV"
                )
            low, high = DEFAULT_SUV_WINDOW if self.window == "auto" else self.window
            factor = float(meta["suv_factor"])
            return low / factor, high / factor, f"SUV window {low:g} to {high:g} ({meta.get('units_note', '')})"
        if explicit:
            why = meta.get("units_note") or "its units are not known (Hounsfield units or SUV)"
            raise FusionInputError(
                f"window {self.window_text!r}: {name} has no clinical units to window ({why}); leave the window out "
                "to normalise it by its value range or percentiles"
            )
        if modality == "PET" and meta.get("dicom_files"):
            warnings.warn(
                f"{name}: PET normalised by percentiles, not SUV ({meta.get('units_note', 'tags missing')})",
                stacklevel=2,
            )
        return None

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Args: img: channel-first image. Returns: the image in [0, 1] (channels share one window)."""
        vm = self._value_max(img)
        if self.mode == "range" and vm is None:
            raise FusionInputError("NormalizeModality: mode='range' needs value_max (none in the image's metadata)")
        clinical = self._clinical_window(img) if self.mode == "auto" and vm is None else None
        if self.mode != "percentile" and vm is not None:
            if not (math.isfinite(float(vm)) and float(np.float32(vm)) > 0.0):  # would divide by zero: NaN out
                raise FusionInputError(f"NormalizeModality: value_max={vm!r} must be a positive finite number")
            if self.window not in ("auto", "percentile") and _modality(img) != "MRI":
                raise FusionInputError(
                    f"window {self.window_text!r}: {_name(img)} is an integer image file (0 to {vm:g}) without "
                    "clinical units; a clinical window needs a CT or PET volume (DICOM, or a NIfTI CT in HU)"
                )
            out = ScaleIntensityRange(a_min=0.0, a_max=float(vm), b_min=0.0, b_max=1.0, clip=True)(img)
            note = f"file value range 0 to {float(vm):g}"
        elif clinical is not None:
            low, high, note = clinical
            out = ScaleIntensityRange(a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True)(img)
        else:
            lo, hi = (float(percentile(img, q)) for q in (self.lower, self.upper))
            if not hi > lo:  # MONAI would return the image unscaled: a silently wrong, near-binary result
                raise FusionInputError(
                    f"NormalizeModality: {_name(img)} has an empty percentile window ({self.lower}-{self.upper}: "
                    f"{lo:g} to {hi:g}); it is (almost) constant"
                )
            out = ScaleIntensityRangePercentiles(self.lower, self.upper, b_min=0.0, b_max=1.0, clip=True)(img)
            note = f"percentiles {self.lower:g} to {self.upper:g} ({lo:.4g} to {hi:.4g})"
        if isinstance(out, MetaTensor):
            out.meta["value_max"] = 1.0
            out.meta["intensity_window"] = note
        return out


def _modality(img: NdarrayOrTensor) -> str | None:
    return img.meta.get("modality") if isinstance(img, MetaTensor) else None


def _name(img: NdarrayOrTensor) -> str:
    return str(img.meta.get("filename_or_obj", "image")) if isinstance(img, MetaTensor) else "image"
