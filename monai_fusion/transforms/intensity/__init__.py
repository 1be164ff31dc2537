"""Per-modality intensity normalisation."""

from .array import NormalizeModality
from .dictionary import NormalizeModalityd, NormalizeModalityD, NormalizeModalityDict

__all__ = ["NormalizeModality", "NormalizeModalityd", "NormalizeModalityD", "NormalizeModalityDict"]
