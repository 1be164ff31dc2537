"""Loading transforms for fusion pairs."""

from .array import LoadFusionImage
from .dictionary import CheckPaird, CheckPairD, CheckPairDict, LoadFusionImaged, LoadFusionImageD, LoadFusionImageDict

__all__ = ["LoadFusionImage", "LoadFusionImaged", "LoadFusionImageD", "LoadFusionImageDict", "CheckPaird",
           "CheckPairD", "CheckPairDict"]
