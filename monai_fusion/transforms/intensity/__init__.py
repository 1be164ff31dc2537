"""Per-modality intensity normalisation."""

from .array import NormalizeModality
from .dictionary import NormalizeModalityD, NormalizeModalityd, NormalizeModalityDict

__all__ = ["NormalizeModality", "NormalizeModalityd", "NormalizeModalityD", "NormalizeModalityDict"]
