"""Colour transforms for PET/SPECT: RGB <-> YCbCr (full-range BT.601), and grey rendered through a colour map.

MONAI has no colour-space transforms. These follow JPEG/PIL's full-range ITU-R BT.601 definition
(Y in [0, v], Cb/Cr centred on v/2 for a value range [0, v]) on channel-first tensors, so a fusion
method can fuse the luminance Y with the MRI and the original chroma can be put back.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import Transform
from monai.utils import convert_to_tensor
from monai.utils.type_conversion import convert_to_dst_type

from ...utils.colormaps import check_colormap, colormap_lut
from ...utils.errors import FusionInputError
from ...utils.kernels import RGB_TO_YCBCR, YCBCR_TO_RGB

__all__ = ["RGB_TO_YCBCR", "YCBCR_TO_RGB", "RGBToYCbCr", "YCbCrToRGB", "ColourMap", "rgb_to_luminance"]


def _mix(img: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    m = matrix.to(dtype=img.dtype if img.is_floating_point() else torch.float32, device=img.device)
    x = img if img.is_floating_point() else img.float()
    return torch.einsum("ij,j...->i...", m, x)


def _check_channels(img: NdarrayOrTensor, name: str, channels: int) -> None:
    if img.ndim < 3 or img.shape[0] != channels:
        raise FusionInputError(
            f"{name}: expected a channel-first image with {channels} channels, got shape {tuple(img.shape)}"
        )


def rgb_to_luminance(img: NdarrayOrTensor) -> NdarrayOrTensor:
    """Luminance Y of a channel-first RGB image (any value range), as a ``(1, ...)`` image of the same type."""
    _check_channels(img, "rgb_to_luminance", 3)
    t = convert_to_tensor(img, track_meta=False)
    y = _mix(t, RGB_TO_YCBCR[:1])
    out, *_ = convert_to_dst_type(y, img, dtype=y.dtype)
    return out


class RGBToYCbCr(Transform):
    """Convert a channel-first RGB image to YCbCr (full-range BT.601).

    Args:
        value_max: the top of the value range, 1.0 for [0, 1] data, 255.0 for 8-bit values;
            Cb and Cr are centred on ``value_max / 2``.
    """

    backend = [torch.Tensor.__module__, np.ndarray.__module__]

    def __init__(self, value_max: float = 1.0) -> None:
        if value_max <= 0:
            raise FusionInputError(f"value_max must be positive, got {value_max}")
        self.value_max = float(value_max)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Args: img: ``(3, ...)`` RGB. Returns: ``(3, ...)`` Y, Cb, Cr in the same type."""
        _check_channels(img, "RGBToYCbCr", 3)
        t = convert_to_tensor(img, track_meta=False)
        out = _mix(t, RGB_TO_YCBCR)
        out[1:] += self.value_max / 2
        res, *_ = convert_to_dst_type(out, img, dtype=out.dtype)
        return res


class YCbCrToRGB(Transform):
    """Convert a channel-first YCbCr image (full-range BT.601) back to RGB, clipped to the value range.

    Args:
        value_max: the top of the value range (as for :class:`RGBToYCbCr`).
        clip: clip the result to ``[0, value_max]`` (a fused Y may push colours out of gamut).
    """

    backend = RGBToYCbCr.backend

    def __init__(self, value_max: float = 1.0, clip: bool = True) -> None:
        if value_max <= 0:
            raise FusionInputError(f"value_max must be positive, got {value_max}")
        self.value_max = float(value_max)
        self.clip = clip

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Args: img: ``(3, ...)`` Y, Cb, Cr. Returns: ``(3, ...)`` RGB in the same type."""
        _check_channels(img, "YCbCrToRGB", 3)
        t = convert_to_tensor(img, track_meta=False)
        t = t if t.is_floating_point() else t.float()
        centred = t.clone()
        centred[1:] -= self.value_max / 2
        out = _mix(centred, YCBCR_TO_RGB)
        if self.clip:
            out = out.clamp(0, self.value_max)
        res, *_ = convert_to_dst_type(out, img, dtype=out.dtype)
        return res


class ColourMap(Transform):
    """Render a grey ``(1, ...)`` image in [0, 1] as RGB ``(3, ...)`` through a named look-up table.

    A clinical PET/SPECT volume is grey uptake; rendered in colour (the atlas table by default) it is fused as the
    atlas' pseudo-colour slices are: its luminance with the MRI, its chroma put back. The tables are in
    :mod:`monai_fusion.utils.colormaps`.

    Args:
        colormap: a name of :data:`~monai_fusion.utils.colormaps.COLORMAPS` (``atlas``, ``hot``, ``jet``, ``bone``).
    """

    backend = [torch.Tensor.__module__, np.ndarray.__module__]

    def __init__(self, colormap: str = "atlas") -> None:
        self.colormap = check_colormap(colormap, "ColourMap: colormap")
        self.lut = torch.as_tensor(colormap_lut(self.colormap), dtype=torch.float32)

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Args: img: ``(1, ...)`` grey in [0, 1]. Returns: ``(3, ...)`` RGB in [0, 1], same type and metadata."""
        _check_channels(img, "ColourMap", 1)
        t = convert_to_tensor(img, track_meta=False).float()
        idx = (t[0].clamp(0, 1) * (len(self.lut) - 1)).round().long()
        rgb = self.lut.to(t.device)[idx].movedim(-1, 0).contiguous()
        out, *_ = convert_to_dst_type(rgb, img, dtype=rgb.dtype)
        if isinstance(out, MetaTensor):
            out.meta["colormap"] = self.colormap
        return out
