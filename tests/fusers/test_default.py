"""The `default` method: the shipped trained WeightMapFusionNet, loaded safely, fast and better than the mean rule."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from monai_fusion.fusers import DEFAULT_WEIGHTS, get_fuser
from monai_fusion.fusers import learned
from monai_fusion.metrics import compute_metrics
from monai_fusion.networks import MissingWeightsError, WeightMapFusionNet, load_weights_file, split_checkpoint


def test_shipped_weights_load_without_warnings() -> None:
    assert DEFAULT_WEIGHTS.is_file() and DEFAULT_WEIGHTS.stat().st_size < 1_000_000
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no random-init warning
        fuser = get_fuser("default")
    assert fuser.trained and isinstance(fuser.net, WeightMapFusionNet)
    state, config = split_checkpoint(load_weights_file(DEFAULT_WEIGHTS))
    assert config == fuser.net.config and set(state) == set(fuser.net.state_dict())


def test_fuses_the_demo_pair_in_range_and_keeps_more_edges_than_the_mean() -> None:
    from monai_fusion.data.demo import demo_slice_pair

    torch.set_num_threads(1)
    from monai_fusion.transforms.colour.array import rgb_to_luminance

    pair = demo_slice_pair()
    mri = torch.as_tensor(pair["mri"]).float()[None]
    pet = torch.as_tensor(rgb_to_luminance(pair["pet_rgb_aligned"])).float()[None]
    assert mri.shape == pet.shape == (1, 1, 256, 256) and float(mri.max()) <= 1 and float(pet.max()) <= 1
    fused = get_fuser("default").fuse(mri, pet)
    assert fused.shape == mri.shape and float(fused.min()) >= 0 and float(fused.max()) <= 1
    mean = (mri + pet) / 2
    q = {k: float(compute_metrics(v * 255, mri * 255, pet * 255, metrics=["Qabf"])["Qabf"])
         for k, v in (("default", fused), ("average", mean))}
    assert q["default"] > q["average"]


def test_missing_shipped_file_says_how_to_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(learned, "DEFAULT_WEIGHTS", tmp_path / "gone.pt")
    with pytest.raises(MissingWeightsError, match="reinstall monai-fusion or pass weights="):
        get_fuser("default")


def test_checkpoint_of_an_earlier_bundle_says_which_settings_load_it(tmp_path: Path) -> None:
    """A plain state dict of the pre-0.3.0 network (no context layer, no prior) fails with the settings to pass."""
    old = WeightMapFusionNet(select_prior=0.0, global_context=False)
    path = tmp_path / "model.pt"
    torch.save(old.state_dict(), path)
    with pytest.raises(learned.FusionInputError, match="select_prior=0, global_context=False"):
        get_fuser("default", weights=str(path))
    fuser = get_fuser("default", weights=str(path), select_prior=0, global_context=False)
    x = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fuser.net(*x), old(*x))
