"""The embedded MNI152 MRI/PET pair: deterministic, realistic and misaligned by the stated transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import affine_transform

from monai_fusion.data.demo import demo_slice_pair, demo_volume_pair, wba_pet_colormap, write_demo_files
from monai_fusion.data.io import read_image, read_volume


def test_volume_pair_properties() -> None:
    p = demo_volume_pair(2)
    assert p["mri"].shape == p["pet"].shape == (1, 98, 116, 94)
    np.testing.assert_allclose(np.diag(p["affine"])[:3], [2, 2, 2])
    for k in ("mri", "pet", "pet_aligned"):
        assert p[k].dtype == np.float32 and p[k].min() >= 0 and p[k].max() <= 1
    # FDG-like: grey matter takes up 4x white matter; the 6 mm blur (partial volume) lowers the
    # measured contrast to about 2, as in real FDG PET
    from monai_fusion.data import demo as demo_mod

    arrays, _ = demo_mod._templates_1mm()
    gm, wm = (demo_mod._downsample(arrays[k], 2) for k in ("gm", "wm"))
    pet = p["pet_aligned"][0]
    assert 1.7 < pet[gm > 0.8].mean() / pet[wm > 0.8].mean() < 4.0
    # deterministic
    np.testing.assert_array_equal(demo_volume_pair(2)["pet"], p["pet"])


def test_volume_misalignment_is_the_stated_transform() -> None:
    p = demo_volume_pair(2)
    aff, true = p["affine"], p["true_transform"]
    # undo it: sample the misaligned PET at T(x) for every x on the grid -> the aligned PET
    idx = np.linalg.inv(aff) @ true @ aff
    undone = affine_transform(p["pet"][0], idx[:3, :3], offset=idx[:3, 3], order=1)
    inner = (slice(15, -15),) * 3
    err_undone = np.abs(undone - p["pet_aligned"][0])[inner].mean()
    err_raw = np.abs(p["pet"][0] - p["pet_aligned"][0])[inner].mean()
    assert err_undone < 0.25 * err_raw
    assert np.linalg.norm(true[:3, 3]) > 3  # a real misalignment, not identity


def test_slice_pair_and_colour() -> None:
    s = demo_slice_pair()
    assert s["mri"].shape == (1, 256, 256) and s["pet_rgb"].shape == (3, 256, 256)
    lut = wba_pet_colormap(128)
    np.testing.assert_allclose(lut[0], [0, 0, 0])
    np.testing.assert_allclose(lut[-1], [1, 0, 1])
    assert s["mri"][0, 128, 128] > 0.2  # brain in the middle of the slice
    # the misaligned PET differs from the aligned one by more than interpolation noise
    assert np.abs(s["pet_rgb"] - s["pet_rgb_aligned"]).mean() > 0.02


def test_write_demo_files(tmp_path: Path) -> None:
    paths = write_demo_files(tmp_path)
    assert read_image(paths["mri_png"], "MRI").array.shape == (1, 256, 256)
    assert read_image(paths["pet_png"], "PET").array.shape == (3, 256, 256)
    vol = read_volume(paths["pet_nii"], "PET")
    assert vol.array.shape == (1, 98, 116, 94)
    mtime = paths["mri_png"].stat().st_mtime_ns
    assert write_demo_files(tmp_path)["mri_png"].stat().st_mtime_ns == mtime  # cached, not rewritten
