"""Colour transforms for PET/SPECT: RGB <-> YCbCr, and grey rendered through a named colour map."""

from .array import RGB_TO_YCBCR, YCBCR_TO_RGB, ColourMap, RGBToYCbCr, YCbCrToRGB, rgb_to_luminance
from .dictionary import (
    ColourMapD,
    ColourMapd,
    ColourMapDict,
    NeutralChromaD,
    NeutralChromad,
    NeutralChromaDict,
    RGBToYCbCrD,
    RGBToYCbCrd,
    RGBToYCbCrDict,
    YCbCrToRGBD,
    YCbCrToRGBd,
    YCbCrToRGBDict,
    chroma_keys,
)

__all__ = [
    "RGB_TO_YCBCR",
    "YCBCR_TO_RGB",
    "RGBToYCbCr",
    "YCbCrToRGB",
    "ColourMap",
    "rgb_to_luminance",
    "RGBToYCbCrd",
    "RGBToYCbCrD",
    "RGBToYCbCrDict",
    "YCbCrToRGBd",
    "YCbCrToRGBD",
    "YCbCrToRGBDict",
    "ColourMapd",
    "ColourMapD",
    "ColourMapDict",
    "chroma_keys",
    "NeutralChromad",
    "NeutralChromaD",
    "NeutralChromaDict",
]
