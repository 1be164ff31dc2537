"""RGB <-> YCbCr transforms for pseudo-colour PET/SPECT."""

from .array import RGB_TO_YCBCR, YCBCR_TO_RGB, RGBToYCbCr, YCbCrToRGB, rgb_to_luminance
from .dictionary import RGBToYCbCrD, RGBToYCbCrd, RGBToYCbCrDict, YCbCrToRGBD, YCbCrToRGBd, YCbCrToRGBDict

__all__ = [
    "RGB_TO_YCBCR",
    "YCBCR_TO_RGB",
    "RGBToYCbCr",
    "YCbCrToRGB",
    "rgb_to_luminance",
    "RGBToYCbCrd",
    "RGBToYCbCrD",
    "RGBToYCbCrDict",
    "YCbCrToRGBd",
    "YCbCrToRGBD",
    "YCbCrToRGBDict",
]
