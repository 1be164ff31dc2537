"""The overview figure a reader looks at first: MRI | other modality | fused | colour overlay.

For a volume the four columns are shown in three planes (axial, coronal, sagittal) through the centre of the MRI's
head; matplotlib draws them (the ``plots`` extra).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..utils.optional import require_extra

__all__ = ["to_display_rgb", "save_overview", "save_volume_overview", "orthogonal_slices"]


def to_display_rgb(img: np.ndarray) -> np.ndarray:
    """``(1|3, H, W)`` in [0, 1] -> ``(H, W, 3)`` for display."""
    a = np.asarray(img, dtype=np.float32)
    a = np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a
    return np.clip(np.moveaxis(a, 0, -1), 0, 1)


def save_overview(
    mri: np.ndarray,
    other: np.ndarray,
    fused: np.ndarray,
    path: str | os.PathLike,
    titles: tuple[str, str, str, str] = ("MRI", "other", "fused", "overlay"),
    overlay_alpha: float = 0.5,
    suptitle: str | None = None,
) -> Path:
    """Save a four-panel PNG: MRI, other modality, fused image and the other modality over the MRI.

    Args:
        mri: ``(1, H, W)`` in [0, 1].
        other: ``(1|3, H, W)`` in [0, 1], registered onto the MRI.
        fused: ``(1|3, H, W)`` in [0, 1].
        path: output PNG.
        titles: panel titles.
        overlay_alpha: opacity of the other modality in the overlay panel (0 where it is black).
        suptitle: optional figure title.

    Returns:
        The written path.
    """
    return _save_rows([(mri, other, fused)], path, titles, overlay_alpha, suptitle, [1.0])


def orthogonal_slices(volume: np.ndarray, centre: tuple[int, int, int]) -> list[np.ndarray]:
    """Axial, coronal and sagittal planes of a ``(C, X, Y, Z)`` RAS volume through ``centre``, as ``(C, H, W)``
    display images (anterior or superior at the top, the patient's left on the right)."""
    x, y, z = centre
    planes = (volume[:, :, :, z], volume[:, :, y, :], volume[:, x, :, :])
    return [np.ascontiguousarray(np.flip(np.swapaxes(p, 1, 2), axis=1)) for p in planes]


def save_volume_overview(
    mri: np.ndarray,
    other: np.ndarray,
    fused: np.ndarray,
    path: str | os.PathLike,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    titles: tuple[str, str, str, str] = ("MRI", "other", "fused", "overlay"),
    suptitle: str | None = None,
) -> Path:
    """Save the four panels of :func:`save_overview` in the axial, coronal and sagittal planes of a volume.

    The planes pass through the centre of the MRI's head (voxels above 5 % of its range).

    Args:
        mri: ``(1, X, Y, Z)`` in [0, 1], RAS.
        other: ``(1|3, X, Y, Z)`` in [0, 1] on the MRI's grid.
        fused: ``(1|3, X, Y, Z)`` in [0, 1].
        path: output PNG.
        spacing: voxel size along X, Y, Z (mm), for the planes' aspect ratios.
        titles: column titles.
        suptitle: optional figure title.

    Returns:
        The written path.
    """
    head = np.argwhere(np.asarray(mri)[0] > 0.05)
    centre = tuple(int(v) for v in (head.mean(axis=0) if len(head) else np.array(mri.shape[1:]) // 2))
    rows = list(zip(*(orthogonal_slices(np.asarray(v), centre) for v in (mri, other, fused))))
    sx, sy, sz = (float(s) for s in spacing)
    return _save_rows(rows, path, titles, 0.5, suptitle, [sy / sx, sz / sx, sz / sy])


def _save_rows(
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    titles: tuple[str, str, str, str],
    overlay_alpha: float,
    suptitle: str | None,
    aspects: list[float],
) -> Path:
    """One figure row per ``(mri, other, fused)`` triple: the three images and the other over the MRI."""
    matplotlib = require_extra("matplotlib", "plots", "the overview PNG")
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 4, figsize=(16, 4.4 * len(rows)), dpi=100, squeeze=False)
    for r, ((mri, other, fused), aspect) in enumerate(zip(rows, aspects)):
        m, o, f = to_display_rgb(mri), to_display_rgb(other), to_display_rgb(fused)
        weight = overlay_alpha * (o.max(axis=-1, keepdims=True) > 0.05)
        overlay = (1 - weight) * m + weight * o
        for ax, im, title in zip(axes[r], (m, o, f, overlay), titles):
            ax.imshow(im, interpolation="nearest", aspect=aspect)
            ax.set_title(title if r == 0 else "")
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    plt.close(fig)
    return p
