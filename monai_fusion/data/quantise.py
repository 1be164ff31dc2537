"""Fused images onto the 8-bit grid of PNG and DICOM files: grey by rounding, RGB keeping its luminance.

The writers of :mod:`monai_fusion.data.io` and :mod:`monai_fusion.data.dicom`, and the benchmark's written image
(:func:`~monai_fusion.engines.benchmark_setup.written_luminance`), all go through these two functions, so what is
scored is what is written.
"""

from __future__ import annotations

import numpy as np

from ..utils.errors import FusionInputError
from ..utils.kernels import BT601_Y

__all__ = ["WRITER_RULE", "to_uint8", "rgb_to_uint8", "channels_to_uint8"]

#: The name of the writers' 8-bit rule (:func:`channels_to_uint8`). The benchmark records it on every row scored
#: on the written image (``per_image.csv``'s ``writer`` column) and reuses only rows that carry it, so that rows
#: scored on files of another rule are never mixed with today's; give it a new name whenever the rule changes.
WRITER_RULE = "luminance-kept-0.005"


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Values in [0, 1] to 8-bit grey levels: ``rint(v * 255)``, clipped to 0..255 (the writers' grey rule)."""
    return np.clip(np.rint(np.asarray(array, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


#: Each channel rounded down (0) or up (1): the eight ways to put an RGB pixel on the 8-bit grid.
_CORNERS = np.array([[(k >> c) & 1 for c in range(3)] for k in range(8)], dtype=np.float64)
#: How far inside the half-level a kept luminance must lie, so that no reader's rounding turns it: Pillow's fixed
#: point weights differ from BT.601's by up to 2e-4 level and round a half up, float32 rounds it either way.
_MARGIN = 0.005
#: Pixels converted at a time by :func:`rgb_to_uint8` (about 12 MB of work arrays, whatever the volume's size).
_BLOCK = 1 << 16


def _rgb_block(v: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(n, 3)`` colours on 0..255 to the ``(n, 3)`` grid colours of :func:`rgb_to_uint8`."""
    low = np.floor(v)
    frac = v - low
    target = np.rint(v @ weights)
    up = (frac > 0)[:, None, :] * _CORNERS[None]  # (n, 8, 3): the channels each corner rounds up
    y = (low @ weights)[:, None] + up @ weights
    kept = np.abs(y - target[:, None]) < 0.5 - _MARGIN
    cost = np.where(kept, 0.0, 1e3 + np.abs(y - target[:, None])) + np.abs(up - frac[:, None, :]).sum(-1)
    plain = ((np.rint(v) > low) * (1 << np.arange(3))).sum(-1)  # the corner of per-channel rounding
    cost[np.arange(len(v)), plain] -= 1e-9  # wins a tie of cost
    return low + up[np.arange(len(v)), cost.argmin(-1)]


def rgb_to_uint8(array: np.ndarray, axis: int = 0) -> np.ndarray:
    """RGB values in [0, 1] to 8 bits per channel, keeping the luminance to the nearest grey level.

    Rounding each channel on its own (:func:`to_uint8`) moves the BT.601 luminance of a pixel by up to half a grey
    level, so the luminance a reader measures (PIL's ``convert("L")``, the benchmark's written image) differs by one
    grey level from the rounded fused luminance on about one pixel in six (of uniformly random colours): noise that
    the fusion did not make. Here each pixel takes, of the eight floor/ceil roundings of its channels, the one
    closest to the unrounded colour among those whose luminance rounds to the unrounded colour's rounded luminance,
    by more than a 0.005-level margin (neighbouring roundings are at most 0.587 level apart, so one always does; the
    closest in luminance otherwise). Where per-channel rounding already keeps the luminance it is chosen, so the two
    rules differ only where it does not, and never by more than one level per channel. Pixels are converted in
    blocks, so a volume needs little more memory than its output. NumPy and Pillow round channels one by one;
    nothing they ship keeps a derived quantity.

    Args:
        array: RGB image in [0, 1] (values outside are clipped), any shape with 3 entries along ``axis``.
        axis: the channel axis.

    Returns:
        ``uint8`` array of the input's shape.

    Raises:
        FusionInputError: ``axis`` is not an axis of ``array`` or does not have 3 entries.
    """
    a = np.asarray(array)
    if not -a.ndim <= axis < a.ndim or a.shape[axis] != 3:
        raise FusionInputError(f"rgb_to_uint8: expected 3 channels along axis {axis}, got shape {a.shape}")
    moved = np.moveaxis(a, axis, -1)
    flat = moved.reshape(-1, 3)
    weights = np.asarray(BT601_Y, dtype=np.float64)
    out = np.empty(flat.shape, dtype=np.uint8)
    for start in range(0, len(flat), _BLOCK):
        v = np.clip(flat[start : start + _BLOCK].astype(np.float64) * 255.0, 0.0, 255.0)
        out[start : start + _BLOCK] = _rgb_block(v, weights)
    return np.moveaxis(out.reshape(moved.shape), -1, axis)


def channels_to_uint8(array: np.ndarray) -> np.ndarray:
    """A channel-first ``(1|3, ...)`` image in [0, 1] to the 8 bits a file holds: the writers' one rule.

    Args:
        array: grey (1 channel) or RGB (3 channels), channel first.

    Returns:
        ``uint8`` array of the input's shape: grey by :func:`to_uint8`, RGB by :func:`rgb_to_uint8`.
    """
    a = np.asarray(array)
    return rgb_to_uint8(a) if a.shape[0] == 3 else to_uint8(a)
