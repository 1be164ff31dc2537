"""Utilities shared by several layers of monai-fusion."""

from .constants import COLOUR_MODALITIES, MODALITIES, PAIR_TYPES, modality_of_pair
from .errors import FusionInputError, find_input_error
from .paths import output_path, safe_filename

__all__ = [
    "FusionInputError",
    "find_input_error",
    "COLOUR_MODALITIES",
    "MODALITIES",
    "PAIR_TYPES",
    "modality_of_pair",
    "output_path",
    "safe_filename",
]
