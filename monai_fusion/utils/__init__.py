"""Utilities shared by several layers of monai-fusion."""

from .errors import FusionInputError
from .constants import COLOUR_MODALITIES, MODALITIES, PAIR_TYPES, modality_of_pair

__all__ = ["FusionInputError", "COLOUR_MODALITIES", "MODALITIES", "PAIR_TYPES", "modality_of_pair"]
