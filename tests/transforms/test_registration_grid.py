"""Large volumes are registered on an averaged grid: the same physical transform, a fraction of the time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_fusion.data.demo import demo_volume_pair
from monai_fusion.transforms.registration import RegisterToReference, displacement_error, foreground_mask, mask_points
from monai_fusion.transforms.registration.grid import grid_factor, pool_volume, pooled_pyramid
from monai_fusion.utils.errors import FusionInputError


def test_grid_factor_is_the_smallest_that_fits_every_image() -> None:
    assert grid_factor([(256, 256, 180)], None) == 1
    assert grid_factor([(256, 256, 180)], 2_000_000) == 2  # 11.8 M voxels -> 1.47 M
    assert grid_factor([(100, 100, 100), (256, 256, 180)], 12_000_000) == 1
    assert grid_factor([(99, 99, 99)], 125_000) == 2  # ceil(99 / 2) = 50 per side


def test_pooled_volume_keeps_its_place_in_space() -> None:
    arr = np.arange(5 * 4 * 3, dtype=np.float32).reshape(5, 4, 3)
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = (10.0, 20.0, 30.0)
    out, aff = pool_volume(arr, affine, 2)
    assert out.shape == (3, 2, 2)
    assert out[0, 0, 0] == pytest.approx(arr[:2, :2, :2].mean())
    assert out[2, 1, 1] == pytest.approx(arr[4:, 2:, 2:].mean())  # an edge block averages what it holds
    # the pooled voxel (0, 0, 0) sits at the centre of the block it averages: voxel (0.5, 0.5, 0.5) of the input
    np.testing.assert_allclose(aff @ [0, 0, 0, 1], affine @ [0.5, 0.5, 0.5, 1])
    np.testing.assert_allclose(aff[:3, :3], affine[:3, :3] * 2)
    mask = np.zeros((4, 4, 4), bool)
    mask[3, 3, 3] = True
    assert pool_volume(mask.astype(np.uint8), affine, 2, "max")[0][1, 1, 1] == 1  # masks keep a lone voxel


def test_pyramid_on_the_averaged_grid_merges_levels_that_meet() -> None:
    assert pooled_pyramid([4, 2, 1], [8.0, 4.0, 2.0], [0.1, 0.1, 0.1], 1) == ([4, 2, 1], [8.0, 4.0, 2.0], [0.1] * 3)
    assert pooled_pyramid([4, 2, 1], [8.0, 4.0, 2.0], [0.1, 0.2, 0.3], 2) == ([2, 1], [4.0, 1.0], [0.1, 0.3])
    assert pooled_pyramid([4, 2, 1], [8.0, 4.0, 2.0], [0.1, 0.1, 0.1], 4) == ([1], [0.5], [0.1])


def test_a_volume_above_the_limit_is_registered_averaged_within_one_voxel() -> None:
    p = demo_volume_pair(resolution=2)  # 98x116x94 voxels of 2 mm
    affine = torch.as_tensor(p["affine"])
    mri, pet = (MetaTensor(torch.as_tensor(p[k]), affine=affine) for k in ("mri", "pet"))
    voxel = float(np.linalg.norm(p["affine"][:3, 0]))
    points = mask_points(foreground_mask(p["mri"][0]), p["affine"])
    averaged = RegisterToReference(max_voxels=200_000).register(pet, mri)
    full = RegisterToReference(max_voxels=None).register(pet, mri)
    assert averaged["grid_factor"] == 2 and full["grid_factor"] == 1
    assert averaged["settings"]["max_voxels"] == 200_000
    assert displacement_error(averaged["matrix"], p["true_transform"], points) < 1.0 * voxel
    assert displacement_error(averaged["matrix"], full["matrix"], points) < 0.5 * voxel
    with pytest.raises(FusionInputError, match="max_voxels=100 must be >= 4096"):
        RegisterToReference(max_voxels=100)
