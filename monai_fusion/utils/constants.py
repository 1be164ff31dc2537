"""Names used across the project (see ``shared/design.md``)."""

from __future__ import annotations

from .errors import FusionInputError

__all__ = ["PAIR_TYPES", "MODALITIES", "OTHER_MODALITIES", "COLOUR_MODALITIES", "modality_of_pair"]

#: Pair types of the Whole Brain Atlas layout: ``<root>/<PAIR>/<MODALITY>/<name>.png``.
PAIR_TYPES: tuple[str, ...] = ("CT-MRI", "PET-MRI", "SPECT-MRI")
#: Modalities, the structural one first.
MODALITIES: tuple[str, ...] = ("MRI", "CT", "PET", "SPECT")
#: The modalities of the other source, fused with the MRI.
OTHER_MODALITIES: tuple[str, ...] = MODALITIES[1:]
#: Functional modalities that the atlas renders in pseudo-colour (fused through YCbCr).
COLOUR_MODALITIES: tuple[str, ...] = ("PET", "SPECT")


def modality_of_pair(pair_type: str) -> str:
    """Return the non-MRI modality of a pair type.

    Args:
        pair_type: one of :data:`PAIR_TYPES`, e.g. ``"PET-MRI"``.

    Returns:
        The other modality, e.g. ``"PET"``.

    Raises:
        FusionInputError: when ``pair_type`` is not a known pair type.
    """
    if pair_type not in PAIR_TYPES:
        raise FusionInputError(f"pair_type={pair_type!r} is not one of {', '.join(PAIR_TYPES)}")
    return pair_type.split("-")[0]
