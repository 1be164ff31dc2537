"""Named colour look-up tables for rendering grey PET/SPECT (and optionally CT) in colour.

A clinical PET or SPECT volume is grey uptake; the fusion reads it in colour, as the Whole Brain Atlas renders its
PET/SPECT slices (the pairs the shipped models are trained on). The tables live here, below ``data/`` (the demo
writes atlas-coloured PNGs) and ``transforms/`` (the preset renders grey inputs), so both use one copy.

Written here rather than taken from matplotlib: matplotlib is an optional extra, and the atlas table and the bone
tint exist nowhere else. ``hot`` and ``jet`` follow matplotlib's definitions (piecewise linear), so a user who knows
them from a viewer sees the same colours, except that their first entry is black (a dark-blue or dark-red
background would come back as a coloured halo around the head).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import FusionInputError

__all__ = [
    "COLORMAPS",
    "DEFAULT_COLORMAPS",
    "NO_COLORMAP",
    "wba_pet_colormap",
    "colormap_lut",
    "apply_colormap",
    "check_colormap",
]

#: The name that keeps a grey image grey.
NO_COLORMAP = "none"


def wba_pet_colormap(levels: int = 256) -> np.ndarray:
    """The Whole Brain Atlas PET look-up table: black, blue, yellow, red, magenta.

    Anchors were read off the atlas' PET renderings (128 colours along that path).

    Args:
        levels: number of entries.

    Returns:
        ``(levels, 3)`` float array in [0, 1].
    """
    anchors = np.array([0.0, 0.16, 0.30, 0.55, 0.80, 1.0])
    colours = np.array([[0, 0, 0], [0, 0, 0.5], [0, 0.31, 0.96], [1, 1, 0], [1, 0, 0], [1, 0, 1]], dtype=float)
    x = np.linspace(0, 1, levels)
    return np.stack([np.interp(x, anchors, colours[:, c]) for c in range(3)], axis=1)


def _segments(levels: int, anchors: tuple[tuple[tuple[float, float], ...], ...]) -> np.ndarray:
    """A table from matplotlib-style ``(x, value)`` anchors per channel, with entry 0 black (the background)."""
    x = np.linspace(0, 1, levels)
    lut = np.stack([np.interp(x, *zip(*channel)) for channel in anchors], axis=1)
    lut[0] = 0.0
    return lut


def _hot(levels: int) -> np.ndarray:
    return _segments(
        levels,
        (
            ((0, 0.0416), (0.365079, 1), (1, 1)),
            ((0, 0), (0.365079, 0), (0.746032, 1), (1, 1)),
            ((0, 0), (0.746032, 0), (1, 1)),
        ),
    )


def _jet(levels: int) -> np.ndarray:
    return _segments(
        levels,
        (
            ((0, 0), (0.35, 0), (0.66, 1), (0.89, 1), (1, 0.5)),
            ((0, 0), (0.125, 0), (0.375, 1), (0.64, 1), (0.91, 0), (1, 0)),
            ((0, 0.5), (0.11, 1), (0.34, 1), (0.65, 0), (1, 0)),
        ),
    )


def _bone(levels: int) -> np.ndarray:
    """Grey up to 60 % of the window, then a blend to ivory: CT bone tinted, soft tissue left grey."""
    x = np.linspace(0, 1, levels)
    ivory = np.array([1.0, 0.86, 0.55])
    t = np.clip((x - 0.6) / 0.4, 0, 1)[:, None]
    return (1 - t) * x[:, None] + t * ivory * x[:, None] ** 0.5


#: Table builders by name; every one maps 0 to black, so the background stays black after the chroma is put back.
COLORMAPS: dict[str, Callable[[int], np.ndarray]] = {
    "atlas": wba_pet_colormap,
    "hot": _hot,
    "jet": _jet,
    "bone": _bone,
}

#: What a grey image of each modality is rendered with when no colour map is named.
DEFAULT_COLORMAPS: dict[str, str] = {"PET": "atlas", "SPECT": "atlas", "CT": NO_COLORMAP}


def check_colormap(name: str, what: str = "colormap") -> str:
    """Return ``name`` lower-cased if it is a known colour map or ``none``; raise a clear error otherwise."""
    key = str(name).lower()
    if key != NO_COLORMAP and key not in COLORMAPS:
        known = ", ".join([*COLORMAPS, NO_COLORMAP])
        raise FusionInputError(f"{what}={name!r} is not a known colour map; expected one of {known}")
    return key


def colormap_lut(name: str, levels: int = 256) -> np.ndarray:
    """The ``(levels, 3)`` table of the colour map ``name`` (see :data:`COLORMAPS`), values in [0, 1]."""
    key = check_colormap(name)
    if key == NO_COLORMAP:
        raise FusionInputError(f"colormap {NO_COLORMAP!r} keeps the image grey; it has no table")
    return COLORMAPS[key](levels)


def apply_colormap(grey: np.ndarray, lut: np.ndarray | str | None = None) -> np.ndarray:
    """Render a grey ``(1, ...)`` or ``(...)`` image in [0, 1] with a look-up table.

    Args:
        grey: the image; values outside [0, 1] are clipped.
        lut: a ``(N, 3)`` table, a colour map name, or None for the atlas table.

    Returns:
        ``(3, ...)`` RGB float32 array in [0, 1].
    """
    table = wba_pet_colormap() if lut is None else colormap_lut(lut) if isinstance(lut, str) else np.asarray(lut)
    g = np.asarray(grey)
    g = g[0] if g.ndim >= 3 and g.shape[0] == 1 else g
    idx = np.clip(np.rint(g * (len(table) - 1)), 0, len(table) - 1).astype(np.int64)
    return np.moveaxis(table[idx], -1, 0).astype(np.float32)
