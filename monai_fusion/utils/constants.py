"""Names used across the project (see ``shared/design.md``)."""

from __future__ import annotations

from typing import Sequence

from .errors import FusionInputError

__all__ = [
    "DEFAULT_METHOD",
    "SCORE_ON",
    "PAIR_TYPES",
    "MODALITIES",
    "OTHER_MODALITIES",
    "COLOUR_MODALITIES",
    "modality_of_pair",
    "check_modality",
]

#: The method every surface (CLI ``fuse``/``demo``/``fuse --pairs``, the bundle, MONAI Deploy and MONAI Label)
#: uses when none is named: the shipped trained model (registry name ``default``).
DEFAULT_METHOD: str = "default"

#: What the benchmark's metrics score: ``luminance``, the fused luminance rounded to 8 bits (what the methods
#: output); or ``written``, the luminance of the 8-bit image a user gets on disk (for PET/SPECT the RGB image that
#: :func:`~monai_fusion.transforms.presets.fusion_postprocess` composes, put on the 8-bit grid keeping its luminance,
#: so it differs from ``luminance`` only where colours out of gamut are clipped; CT pairs score the same either
#: way). Here, low, so the CLI offers the choices without importing the engines.
SCORE_ON: tuple[str, ...] = ("luminance", "written")
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


def check_modality(modality: str | Sequence[str] | None, batch: int, what: str = "fuse: modality") -> list[str] | None:
    """The other source's modality per sample, upper-case: ``None``, one name for the whole batch, or one per sample.

    Args:
        modality: ``CT``, ``PET`` or ``SPECT`` (any case), a sequence of them, or ``None``.
        batch: the batch size.
        what: how to name the argument in messages.

    Returns:
        ``batch`` upper-case names, or ``None`` when none was given.

    Raises:
        FusionInputError: an unknown name, or a sequence of another length than the batch.
    """
    if modality is None:
        return None
    names = [modality] * batch if isinstance(modality, str) else list(modality)
    bad = [m for m in names if not isinstance(m, str) or m.upper() not in OTHER_MODALITIES]
    if bad:
        raise FusionInputError(f"{what} {bad[0]!r} is not one of {', '.join(OTHER_MODALITIES)}")
    if len(names) != batch:
        raise FusionInputError(
            f"{what} lists {len(names)} names for a batch of {batch}; give one name or one per sample"
        )
    return [m.upper() for m in names]
