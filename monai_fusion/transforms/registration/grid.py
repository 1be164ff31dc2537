"""The grid and masks a registration runs on: large 3D volumes are averaged down before SimpleITK sees them.

SimpleITK's registration smooths and resamples the full-resolution images at every pyramid level, whatever the
shrink factor and the metric's sampling, so a 256x256x180 volume costs about 20 s where its 2x-averaged copy costs
2 s for a transform within half a voxel of the full-resolution one. Registration works in physical space, so the
averaged volumes (with their affines adjusted) give the same transform; the result is applied to the full images.
MONAI's ``Spacing`` would resample by interpolation (a second blur and an interpolation per voxel); a box average
by an integer factor is the cheap, alias-free choice here, written with PyTorch's ``avg_pool3d``/``max_pool3d``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.utils import convert_to_numpy
from scipy.stats import entropy

from ...utils.errors import FusionInputError
from .geometry import foreground_mask

__all__ = [
    "foreground_inside",
    "grid_factor",
    "pool_volume",
    "pooled_pyramid",
    "registration_mask",
    "shared_information",
]


def registration_mask(
    given: NdarrayOrTensor | None, scalar: np.ndarray, auto: bool, name: str, dilation: int
) -> np.ndarray | None:
    """The metric mask of one image: the given one (checked), an automatic foreground mask, or none.

    Args:
        given: an explicit mask (the image's spatial shape, optionally with one channel), or ``None``.
        scalar: the image (spatial shape).
        auto: make a :func:`~.geometry.foreground_mask` when none is given.
        name: ``"reference"`` or ``"moving"``, for messages.
        dilation: dilation of the automatic mask, in voxels.

    Raises:
        FusionInputError: a mask of another shape, or one that covers fewer than 16 voxels.
    """
    if given is not None:
        m = convert_to_numpy(given)
        m = m[0] if m.ndim == scalar.ndim + 1 and m.shape[0] == 1 else m
        if m.shape != scalar.shape:
            raise FusionInputError(
                f"{name} mask has shape {tuple(m.shape)}; expected the image's spatial shape {scalar.shape}"
            )
        m = m > 0
    elif auto:
        m = foreground_mask(scalar, dilation)
    else:
        return None
    if m.sum() < 16:
        raise FusionInputError(f"{name} mask covers {int(m.sum())} voxels; expected a foreground to register")
    return m


def grid_factor(shapes: Sequence[Sequence[int]], max_voxels: int | None) -> int:
    """The smallest integer factor that brings every one of ``shapes`` to at most ``max_voxels`` voxels.

    Args:
        shapes: spatial shapes (3D) of the images to register.
        max_voxels: the limit; ``None`` keeps the full resolution.

    Returns:
        1 when no image is larger than the limit (or no limit), else the averaging factor.
    """
    if max_voxels is None:
        return 1
    k = 1
    while any(math.prod(math.ceil(n / k) for n in s) > max_voxels for s in shapes):
        k += 1
    return k


def pool_volume(array: np.ndarray, affine: np.ndarray, k: int, mode: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Average (``mode="mean"``) or take the maximum (``"max"``, for masks) of ``k``x``k``x``k`` blocks.

    Args:
        array: a 3D ``(X, Y, Z)`` volume.
        affine: its voxel-to-RAS ``(4, 4)`` affine.
        k: the block size (1 returns the inputs unchanged).
        mode: ``"mean"`` or ``"max"``.

    Returns:
        The pooled volume (edge blocks averaged over the voxels they hold) and its affine, whose voxel ``i`` lies
        at the centre of the block it averages.
    """
    if k == 1:
        return array, affine
    t = torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    pool = torch.nn.functional.avg_pool3d if mode == "mean" else torch.nn.functional.max_pool3d
    out = pool(t, k, ceil_mode=True)[0, 0].numpy()
    scale = np.diag([float(k), float(k), float(k), 1.0])
    scale[:3, 3] = (k - 1) / 2.0
    return out.astype(array.dtype, copy=False), np.asarray(affine, dtype=np.float64) @ scale


def pooled_pyramid(
    levels: Sequence[int], sigmas: Sequence[float], pct: Sequence[float], k: int
) -> tuple[list[int], list[float], list[float]]:
    """The pyramid of the full-resolution settings, expressed on a grid averaged by ``k``.

    Shrink factors and smoothing sigmas (in voxels) are divided by ``k`` (a factor at least 1); levels that fall on
    the same factor are merged into the last of them (the finer smoothing).

    Returns:
        ``(shrink factors, sigmas, sampling percentages)`` per level of the averaged grid.
    """
    if k == 1:
        return list(levels), list(sigmas), list(pct)
    out: list[tuple[int, float, float]] = []
    for f, s, p in zip(levels, sigmas, pct):
        level = (max(1, int(f) // k), float(s) / k, float(p))
        if out and out[-1][0] == level[0]:
            out[-1] = level
        else:
            out.append(level)
    return [lv[0] for lv in out], [lv[1] for lv in out], [lv[2] for lv in out]


def foreground_inside(moved: NdarrayOrTensor, reference: NdarrayOrTensor, dilation: int = 5) -> float:
    """Share of the registered image's foreground that lies inside the reference's head (dilated foreground).

    A registration that converged on the wrong optimum leaves the moved image mostly outside the reference's head
    (on the embedded pair shifted by 100 px: 4%), where a good one leaves most of it inside (the atlas pairs: see
    ``docs/registration.md``), so a low share marks a failed registration.

    Args:
        moved: the registered image on the reference's grid, channel-first (RGB: its channel mean).
        reference: the reference image, channel-first.
        dilation: dilation of the reference's foreground mask, in voxels.

    Returns:
        The share in [0, 1] (1 when the moved image has no foreground above 5% of its maximum).
    """
    mov = np.asarray(convert_to_numpy(moved), dtype=np.float32).mean(axis=0)
    ref = np.asarray(convert_to_numpy(reference), dtype=np.float32).mean(axis=0)
    fg = mov > 0.05 * float(mov.max()) if mov.max() > 0 else np.zeros(mov.shape, bool)
    if not fg.any():
        return 1.0
    return float((fg & foreground_mask(ref, dilation)).sum() / fg.sum())


def shared_information(
    moved: NdarrayOrTensor, reference: NdarrayOrTensor, bins: int = 32, max_samples: int = 1_000_000
) -> float:
    """Mutual information of the registered image and the reference as a share of the smaller of their entropies.

    The uncertainty coefficient ``MI(A, B) / min(H(A), H(B))`` over the whole grid (``bins`` equal bins per image
    between its minimum and maximum): 0 for independent images, 1 when one determines the other. Unlike the Mattes
    value the optimiser reports, it does not depend on how much information the images hold: a thin PET slice at the
    top of the head holds little, and its aligned MI is as low as a misregistered pair's, but it shares most of what
    it holds with its MRI. Written here because scikit-image's ``normalized_mutual_information`` divides by the joint
    entropy (``(H(A) + H(B)) / H(A, B)``), which separates aligned from misregistered atlas pairs less well
    (``docs/registration.md``).

    Args:
        moved: the registered image on the reference's grid, channel-first (RGB: its channel mean).
        reference: the reference image, channel-first, of the same spatial shape.
        bins: histogram bins per image.
        max_samples: larger grids are read at every ``k``-th voxel (``k`` the smallest that fits), for speed.

    Returns:
        The share in [0, 1]; 0 when the moved image is constant (it shares nothing).
    """
    mov = np.asarray(convert_to_numpy(moved), dtype=np.float32).mean(axis=0).ravel()
    ref = np.asarray(convert_to_numpy(reference), dtype=np.float32).mean(axis=0).ravel()
    if mov.shape != ref.shape:
        raise FusionInputError(
            f"shared_information: the moved image has {mov.size} voxels but the reference {ref.size}; "
            "expected the moved image resampled onto the reference's grid"
        )
    step = max(1, math.ceil(mov.size / int(max_samples)))
    joint, _, _ = np.histogram2d(mov[::step], ref[::step], bins=int(bins))
    p = joint / joint.sum()
    h_mov, h_ref = float(entropy(p.sum(axis=1))), float(entropy(p.sum(axis=0)))
    if min(h_mov, h_ref) <= 0:
        return 0.0
    return float(np.clip((h_mov + h_ref - float(entropy(p.ravel()))) / min(h_mov, h_ref), 0.0, 1.0))
