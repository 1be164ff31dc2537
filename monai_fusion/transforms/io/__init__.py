"""Loading transforms for fusion pairs."""

from .array import LoadFusionImage
from .dictionary import (
    CheckPairD,
    CheckPaird,
    CheckPairDict,
    CheckRasterSizeD,
    CheckRasterSized,
    CheckRasterSizeDict,
    LoadFusionImageD,
    LoadFusionImaged,
    LoadFusionImageDict,
)

__all__ = [
    "LoadFusionImage",
    "LoadFusionImaged",
    "LoadFusionImageD",
    "LoadFusionImageDict",
    "CheckPaird",
    "CheckPairD",
    "CheckPairDict",
    "CheckRasterSized",
    "CheckRasterSizeD",
    "CheckRasterSizeDict",
]
