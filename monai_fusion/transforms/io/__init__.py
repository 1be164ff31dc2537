"""Loading transforms for fusion pairs."""

from .array import LoadFusionImage
from .dictionary import CheckPairD, CheckPaird, CheckPairDict, LoadFusionImageD, LoadFusionImaged, LoadFusionImageDict

__all__ = [
    "LoadFusionImage",
    "LoadFusionImaged",
    "LoadFusionImageD",
    "LoadFusionImageDict",
    "CheckPaird",
    "CheckPairD",
    "CheckPairDict",
]
