"""Checks that a pair's two sources are what their slots say, before a fused image is written.

A CT given as the MRI and the MRI as the CT fuse without error into a wrong picture whose overview labels the
CT "MRI". On the atlas' CT-MRI pairs the CT has the larger share of near-white head pixels (bone) in every
one of the 160 pairs (by 0.055 to 0.9 of the head), so a pair whose MRI slot has the larger share is reported
as swapped. Measured for 2D slices scaled to [0, 1]. Volumes are checked by what they say they are
(:func:`volume_swap_reason`): a DICOM series' Modality tag, and Hounsfield units (air near -1000, which no MRI has).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .units import HU_AIR_BELOW

__all__ = ["bright_fraction", "looks_swapped", "volume_swap_reason"]

#: DICOM Modality values of the other slot's modalities; an MRI series is ``MR``.
_FUNCTIONAL_DICOM = ("CT", "PT", "NM")


def bright_fraction(image: np.ndarray, head: float = 0.05, bright: float = 0.8) -> float:
    """Share of the head's pixels (above ``head`` of the maximum) that are above ``bright`` of the maximum.

    Args:
        image: a grey image, any shape.
        head: threshold of the head mask, relative to the maximum.
        bright: threshold of a bright (bone-like) pixel, relative to the maximum.

    Returns:
        The share in [0, 1]; 0 for an image without a head (fewer than 100 pixels above ``head``).
    """
    a = np.asarray(image, dtype=np.float64)
    top = float(a.max()) if a.size else 0.0
    if top <= 0:
        return 0.0
    fg = a[a > head * top]
    return float((fg > bright * top).mean()) if fg.size >= 100 else 0.0


def looks_swapped(mri: np.ndarray, other: np.ndarray, modality: str) -> bool:
    """Whether a CT-MRI pair looks reversed: the MRI slot holds more bone-bright head than the CT slot.

    Args:
        mri: the image in the MRI slot (2D, grey).
        other: the image in the other slot.
        modality: the other slot's modality; only ``CT`` is checked.

    Returns:
        True when ``modality`` is CT and the MRI slot's :func:`bright_fraction` exceeds the CT slot's.
    """
    return modality.upper() == "CT" and bright_fraction(mri) > bright_fraction(other)


def volume_swap_reason(mri_meta: Mapping[str, Any], other_meta: Mapping[str, Any]) -> str | None:
    """Why a volume pair looks reversed or wrong, from the metadata of its two loaded volumes; None when it does not.

    Args:
        mri_meta: metadata of the volume in the MRI slot (``dicom_tags`` for a DICOM series, ``value_min``).
        other_meta: metadata of the volume in the other slot.

    Returns:
        A sentence naming the evidence: the MRI slot holds a DICOM series of Modality CT/PT/NM, the other slot one of
        Modality MR, or the MRI slot holds values below -500 (Hounsfield units of air: a CT).
    """
    mri_tag = str((mri_meta.get("dicom_tags") or {}).get("0008|0060", "")).strip().upper()
    other_tag = str((other_meta.get("dicom_tags") or {}).get("0008|0060", "")).strip().upper()
    if mri_tag in _FUNCTIONAL_DICOM:
        return f"the series given as the MRI is of DICOM Modality {mri_tag}"
    if other_tag == "MR":
        return "the series given as the CT/PET/SPECT is of DICOM Modality MR"
    low = mri_meta.get("value_min")
    if low is not None and float(low) < HU_AIR_BELOW:
        return f"the volume given as the MRI holds values down to {float(low):g} (Hounsfield units of air: a CT)"
    return None
