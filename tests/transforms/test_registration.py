"""Registration onto the MRI: known transforms recovered on real slices, the 3D demo volume and RGB images.

Errors are measured as the largest displacement, over the foreground of the reference, between the
found transform and the known one (pixels in 2D, voxels in 3D).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

from monai_fusion.data.demo import demo_slice_pair, demo_volume_pair, rigid_matrix
from monai_fusion.data.io import read_image
from monai_fusion.transforms.registration import (
    RegisterToReference,
    RegisterToReferenced,
    displacement_error,
    foreground_mask,
    mask_points,
)
from monai_fusion.utils import FusionInputError

#: Pairs of each type: those at 25%, 50% and 75% of the sorted names (so three cases each), not picked by result.
CROSS_MODAL = {
    "CT-MRI": ("2019", "32010", "34016"),
    "PET-MRI": ("25086", "30067", "41047"),
    "SPECT-MRI": ("18026", "29013", "36039"),
}
#: Known misalignments applied to the moving image: (degrees, (x, y) pixels) about the centre.
MISALIGNMENTS = ((4.0, (5.0, -3.0)), (-5.0, (-4.0, 5.0)), (3.0, (-6.0, 2.0)))
CENTRE_2D = np.array([127.5, 127.5])


def _moved(img: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``img`` moved by ``matrix`` on its own grid: the result ``m`` has ``m(A x) = img(x)``."""
    return np.asarray(RegisterToReference().resample(img, img, {"matrix": np.linalg.inv(matrix)}).array)


def _pair(root: Path, pair_type: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    modality = pair_type.split("-")[0]
    mri = read_image(root / pair_type / "MRI" / f"{name}.png", "MRI").array
    return mri, read_image(root / pair_type / modality / f"{name}.png", modality).array


@pytest.mark.shared_data
def test_mono_modal_slice_recovered_within_a_tenth_of_a_pixel(harvard_root: Path) -> None:
    mri = read_image(harvard_root / "CT-MRI" / "MRI" / "28018.png", "MRI").array
    a = rigid_matrix((3.0,), (2.5, -1.5), CENTRE_2D)
    reference = _moved(mri, a)  # the rotated, shifted copy: reference(a x) = mri(x)
    reg = RegisterToReference()(mri, reference).meta["registration"]
    points = mask_points(foreground_mask(reference[0]))
    # reference(x) = mri(a^-1 x): the fixed -> moving transform is a^-1
    assert displacement_error(reg["matrix"], np.linalg.inv(a), points) < 0.1
    assert reg["type"] == "rigid" and abs(reg["rotation_deg"] + 3.0) < 0.01


@pytest.mark.shared_data
@pytest.mark.parametrize("pair_type", list(CROSS_MODAL))
def test_cross_modal_misalignment_recovered_to_where_the_aligned_start_lands(
    harvard_root: Path, pair_type: str
) -> None:
    # one ITK thread: multi-threaded metric sums differ in their last bits from run to run, and on PET 30067 that
    # once sent the misaligned start to another optimum 14 px away (a full `make test`; the test alone passed)
    registrar = RegisterToReference(num_threads=1)
    for name, (deg, shift) in zip(CROSS_MODAL[pair_type], MISALIGNMENTS):
        mri, other = _pair(harvard_root, pair_type, name)
        points = mask_points(foreground_mask(mri[0]))
        a = rigid_matrix((deg,), shift, CENTRE_2D)
        moved = _moved(other, a)  # misaligned by a: its published alignment is now a
        m_published = registrar.register(moved, mri, initial=a)["matrix"]
        m_found = registrar.register(moved, mri)["matrix"]  # from the misaligned start (identity)
        # the optimum of one cross-modal slice is a few pixels from the published alignment (see
        # docs/registration.md); what must hold is that a misaligned start reaches that same optimum
        assert displacement_error(m_found, m_published, points) < 1.0, (pair_type, name)
        assert displacement_error(m_published, a, points) < 10.0, (pair_type, name)


def test_demo_volume_misalignment_recovered_within_one_voxel() -> None:
    p = demo_volume_pair(resolution=2)
    affine = torch.as_tensor(p["affine"])
    mri = MetaTensor(torch.as_tensor(p["mri"]), affine=affine)
    pet = MetaTensor(torch.as_tensor(p["pet"]), affine=affine)
    out = RegisterToReference()(pet, mri)
    reg = out.meta["registration"]
    voxel = float(np.linalg.norm(p["affine"][:3, 0]))
    points = mask_points(foreground_mask(p["mri"][0]), p["affine"])
    assert displacement_error(reg["matrix"], p["true_transform"], points) < 1.0 * voxel
    assert reg["space"] == "RAS mm" and reg["matrix"].shape == (4, 4)
    assert out.shape == mri.shape and torch.allclose(out.affine, mri.affine.to(out.affine.dtype))
    assert np.corrcoef(np.asarray(out).ravel(), p["pet_aligned"].ravel())[0, 1] > 0.99


def test_transform_is_reported_in_ras_whatever_the_voxel_axes() -> None:
    """The same volume stored with its x axis reversed (LAS) gives the same RAS transform."""
    p = demo_volume_pair(resolution=4)
    centre = p["affine"][:3, :3] @ (np.array(p["mri"].shape[1:]) / 2) + p["affine"][:3, 3]
    a = rigid_matrix((2.0, -3.0, 4.0), (3.0, -4.0, 2.0), centre)
    registrar = RegisterToReference(shrink_factors=(2, 1), smoothing_sigmas=(2.0, 1.0))
    flip = np.diag([-1.0, 1, 1, 1])
    flip[0, 3] = p["mri"].shape[1] - 1
    for affine, arr in ((p["affine"], p["mri"]), (p["affine"] @ flip, p["mri"][:, ::-1].copy())):
        mri = MetaTensor(torch.as_tensor(arr), affine=torch.as_tensor(affine))
        moved = registrar.resample(mri, mri, {"matrix": np.linalg.inv(a)})  # moved(a x) = mri(x)
        reg = registrar.register(moved, mri)
        points = mask_points(foreground_mask(arr[0]), affine)
        assert displacement_error(reg["matrix"], a, points) < 0.25 * 4.0


def test_rgb_demo_slice_registered_on_luminance_all_channels_moved() -> None:
    p = demo_slice_pair()
    out = RegisterToReference()(p["pet_rgb"], p["mri"])
    reg = out.meta["registration"]
    points = mask_points(foreground_mask(p["mri"][0]))
    assert displacement_error(reg["matrix"], p["true_transform"], points) < 1.0
    assert out.shape == (3, 256, 256) and out.dtype == torch.float32
    inside = foreground_mask(p["mri"][0])
    after = np.abs(np.asarray(out) - p["pet_rgb_aligned"])[:, inside].mean(axis=1)
    before = np.abs(p["pet_rgb"] - p["pet_rgb_aligned"])[:, inside].mean(axis=1)
    assert np.all(after < 0.2 * before)  # every channel lands where the aligned PET is (0.19-0.27 -> 0.015-0.034)
    affine = RegisterToReference(transform="affine").register(p["pet_rgb"], p["mri"])
    assert affine["type"] == "affine" and displacement_error(affine["matrix"], p["true_transform"], points) < 1.5


def test_dictionary_transform_meta_and_inverse_through_compose() -> None:
    p = demo_slice_pair()
    pipe = Compose([RegisterToReferenced(keys="other", reference_key="mri")])
    original = MetaTensor(torch.as_tensor(p["pet_rgb"]), meta={"filename_or_obj": "pet.png"})
    d = pipe({"mri": MetaTensor(torch.as_tensor(p["mri"])), "other": original})
    reg = d["other"].meta["registration"]
    for key in ("type", "parameters", "matrix", "metric_value", "iterations", "initial_metric_value", "summary"):
        assert key in reg
    assert reg["metric_value"] < reg["initial_metric_value"] and reg["iterations"] == sum(reg["iterations_per_level"])
    assert d["other"].meta["filename_or_obj"] == "pet.png"
    back = pipe.inverse(d)["other"]
    assert back.shape == original.shape and "registration" not in back.meta
    assert len(back.applied_operations) == 0
    centre = (slice(None), slice(64, 192), slice(64, 192))  # away from what the rotation pushed off the grid
    moved = float(torch.abs(d["other"][centre] - original[centre]).mean())
    assert float(torch.abs(back[centre] - original[centre]).mean()) < 0.1 * moved  # two interpolations blur a little

    def centroid(img: torch.Tensor) -> np.ndarray:
        w = np.asarray(img).sum(axis=0)
        return np.array([(w * np.arange(256)[:, None]).sum(), (w * np.arange(256)[None]).sum()]) / w.sum()

    assert np.abs(centroid(back) - centroid(original)).max() < 0.2


def test_deterministic_with_random_sampling() -> None:
    p = demo_slice_pair()
    registrar = RegisterToReference(sampling="random", sampling_percentage=0.2, seed=7)
    a, b = (registrar.register(p["pet_rgb"], p["mri"]) for _ in range(2))
    # same samples, same path; ITK's multi-threaded sums may differ in the last bits (~1e-13 px)
    assert displacement_error(a["matrix"], b["matrix"], mask_points(foreground_mask(p["mri"][0]))) < 1e-6
    assert a["iterations_per_level"] == b["iterations_per_level"]


def test_bad_input_raises_a_clear_error() -> None:
    reg = RegisterToReference()
    img = np.random.default_rng(0).random((1, 64, 64)).astype(np.float32)
    with pytest.raises(FusionInputError, match="2D .* 3D|3D .* 2D"):
        reg(img, np.random.default_rng(1).random((1, 32, 32, 32)).astype(np.float32))
    with pytest.raises(FusionInputError, match="constant"):
        reg(np.ones((1, 64, 64), np.float32), img)
    with pytest.raises(FusionInputError, match="NaN"):
        reg(np.where(img > 0.5, np.nan, img), img)
    with pytest.raises(FusionInputError, match="channels"):
        reg(np.stack([img[0], img[0]]), img)
    with pytest.raises(FusionInputError, match="too small"):
        reg(img[:, :8, :8], img[:, :8, :8])
    with pytest.raises(FusionInputError, match="mask"):
        reg(img, img, reference_mask=np.zeros((64, 64), bool))
    with pytest.raises(FusionInputError, match="seed"):
        RegisterToReference(seed=0)
    with pytest.raises(FusionInputError, match="transform"):
        RegisterToReference(transform="bspline")
    with pytest.raises(FusionInputError, match="smoothing_sigmas"):
        RegisterToReference(shrink_factors=(4, 2, 1), smoothing_sigmas=(2, 1))
    with pytest.raises(FusionInputError, match="reference_key"):
        RegisterToReferenced(keys=("mri", "other"), reference_key="mri")
    with pytest.raises(FusionInputError, match="missing"):
        RegisterToReferenced(keys="other")({"other": img})
