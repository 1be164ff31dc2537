"""The overview figure a reader looks at first: MRI | other modality | fused | colour overlay."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..utils.optional import require_extra

__all__ = ["to_display_rgb", "save_overview"]


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
    matplotlib = require_extra("matplotlib", "plots", "the overview PNG")
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    m, o, f = to_display_rgb(mri), to_display_rgb(other), to_display_rgb(fused)
    weight = overlay_alpha * (o.max(axis=-1, keepdims=True) > 0.05)
    overlay = (1 - weight) * m + weight * o
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4), dpi=100)
    for ax, im, title in zip(axes, (m, o, f, overlay), titles):
        ax.imshow(im, interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    plt.close(fig)
    return p
