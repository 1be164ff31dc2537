"""Checks that a pair's two sources are what their slots say, before a fused image is written.

A CT given as the MRI and the MRI as the CT fuse without error into a wrong picture whose overview labels the
CT "MRI". On the atlas' CT-MRI pairs the CT has the larger share of near-white head pixels (bone) in every
one of the 160 pairs (by 0.055 to 0.9 of the head), so a pair whose MRI slot has the larger share is reported
as swapped. Measured for 2D slices scaled to [0, 1]; volumes are not checked (their scaling depends on the
source's units).
"""

from __future__ import annotations

import numpy as np

__all__ = ["bright_fraction", "looks_swapped"]


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
