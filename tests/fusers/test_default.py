"""The `default` method: the shipped trained WeightMapFusionNet, loaded safely, fast and better than the mean rule."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from monai_fusion.fusers import DEFAULT_WEIGHTS, get_fuser, learned
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
    fused = get_fuser("default").fuse(mri, pet, modality="PET")
    assert fused.shape == mri.shape and float(fused.min()) >= 0 and float(fused.max()) <= 1
    mean = (mri + pet) / 2
    q = {
        k: float(compute_metrics(v * 255, mri * 255, pet * 255, metrics=["Qabf"])["Qabf"])
        for k, v in (("default", fused), ("average", mean))
    }
    assert q["default"] > q["average"]


def test_missing_shipped_file_says_how_to_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(learned, "DEFAULT_WEIGHTS", tmp_path / "gone.pt")
    with pytest.raises(MissingWeightsError, match="reinstall monai-fusion.*weights="):
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


def test_per_modality_gain_reaches_the_network_through_fuse_and_fuse_sample(tmp_path: Path) -> None:
    """A checkpoint with {modality: gain} fuses each pair with its modality's gain; without a modality it refuses."""
    from monai_fusion.engines.inference import fuse_images, fuse_sample
    from monai_fusion.networks import save_checkpoint
    from monai_fusion.utils import FusionInputError

    torch.manual_seed(0)
    net = WeightMapFusionNet(channels=4, full_channels=4, detail_gain={"CT": 0.0, "PET": 1.0, "SPECT": 0.5})
    path = save_checkpoint(net, tmp_path / "m.pt")
    fuser = get_fuser("default", weights=str(path))
    assert fuser.net.modality_gains == {"CT": 0.0, "PET": 1.0, "SPECT": 0.5}
    mri, other = torch.rand(2, 1, 24, 24), torch.rand(2, 1, 24, 24)
    ct = get_fuser("default", weights=str(path), detail_gain=0.0)  # one gain for every input
    pet = get_fuser("default", weights=str(path), detail_gain=1.0)
    assert torch.equal(fuser.fuse(mri, other, modality="ct"), ct.fuse(mri, other))
    assert torch.equal(fuser.fuse(mri, other, modality=["PET", "CT"])[0], pet.fuse(mri, other)[0])
    assert torch.equal(fuser.fuse(mri, other, modality=["PET", "CT"])[1], ct.fuse(mri, other)[1])
    assert not torch.equal(ct.fuse(mri, other), pet.fuse(mri, other))
    both = fuser.fuse(mri, other, modality=["PET", "CT"])
    fuser.max_batch_bytes = 80 * 4 * 24 * 24  # the memory guard fuses one slice per call: the modalities follow
    assert torch.allclose(fuser.fuse(mri, other, modality=["PET", "CT"]), both, atol=1e-6)
    with pytest.raises(FusionInputError, match="set per modality .*CT 0, PET 1, SPECT 0.5.*modality='CT'"):
        fuser.fuse(mri, other)
    with pytest.raises(FusionInputError, match="modality 'MRI' is not one of CT, PET, SPECT"):
        fuser.fuse(mri, other, modality="MRI")
    with pytest.raises(FusionInputError, match="lists 3 names for a batch of 2"):
        fuser.fuse(mri, other, modality=["CT", "PET", "PET"])
    only_ct = save_checkpoint(
        WeightMapFusionNet(channels=4, full_channels=4, detail_gain={"CT": 0.0}), tmp_path / "ct.pt"
    )
    with pytest.raises(FusionInputError, match="no detail gain for PET .*detail_gain=<number>"):
        get_fuser("default", weights=str(only_ct)).fuse(mri, other, modality="PET")
    ct_default = WeightMapFusionNet(channels=4, full_channels=4, detail_gain={"CT": 0.0, "default": 1})
    ct_default.load_state_dict(net.state_dict())
    ct_default = save_checkpoint(ct_default, tmp_path / "ctd.pt")
    with_default = get_fuser("default", weights=str(ct_default))
    assert torch.allclose(with_default.fuse(mri, other, modality="PET"), pet.fuse(mri, other), atol=1e-6)
    with pytest.raises(FusionInputError, match="set per modality"):  # the library has the modality: it must say it
        with_default.fuse(mri, other)
    assert torch.equal(get_fuser("average").fuse(mri, other, modality="PET"), get_fuser("average").fuse(mri, other))
    # the shared workflow step reads the sample's modality, for slices and volumes alike
    sample = {"mri": mri[0], "other": other[0], "modality": "PET"}
    fused = torch.as_tensor(fuse_sample(sample, fuser)["fused"]).as_tensor()
    assert torch.allclose(fused, pet.fuse(mri[:1], other[:1])[0], atol=1e-6)
    assert not torch.allclose(fused, ct.fuse(mri[:1], other[:1])[0], atol=1e-4)
    vol_m, vol_o = torch.rand(1, 16, 16, 3), torch.rand(1, 16, 16, 3)
    by_slice = torch.stack([ct.fuse(vol_m[..., z][None], vol_o[..., z][None])[0] for z in range(3)], -1)
    assert torch.allclose(fuse_images(fuser, vol_m, vol_o, batch_size=2, modality="CT"), by_slice, atol=1e-6)


def test_shipped_gains_agree_everywhere() -> None:
    """The network's default gains, the library's weights file and the bundle's evaluate/inference configs hold
    the same calibrated per-modality gains, and both evaluators hand the network each sample's modality."""
    import json

    from monai_fusion.networks.nets.weight_map import SHIPPED_DETAIL_GAIN

    configs = Path(__file__).resolve().parents[2] / "bundles" / "multimodal_fusion" / "configs"
    inference = json.loads((configs / "inference.json").read_text())
    train = json.loads((configs / "train.json").read_text())
    evaluate = json.loads((configs / "evaluate.json").read_text())
    _, config = split_checkpoint(load_weights_file(DEFAULT_WEIGHTS))
    assert config["detail_gain"] == SHIPPED_DETAIL_GAIN
    assert inference["network_def"]["detail_gain"] == SHIPPED_DETAIL_GAIN
    assert evaluate["network_def#detail_gain"] == SHIPPED_DETAIL_GAIN
    assert train["network_def"]["detail_gain"] == 1.0  # learned at full gain, calibrated after training
    assert inference["evaluator"]["modality_key"] == "modality"
    assert train["validate"]["evaluator"]["modality_key"] == "modality"


@pytest.mark.parametrize("name", ["default", "msrpan", "msdra", "poster"])
def test_network_layout_is_the_fusers_choice_and_keeps_the_output(name: str) -> None:
    fuser = get_fuser(name)
    conv = next(m for m in fuser.net.modules() if isinstance(m, torch.nn.Conv2d) and m.weight[0].numel() > 9)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) == fuser.channels_last
    assert fuser.channels_last == (name != "poster")  # the poster network's wide layers run slower channels-last
    gen = torch.Generator().manual_seed(0)
    mri, other = torch.rand(2, 1, 64, 64, generator=gen), torch.rand(2, 1, 64, 64, generator=gen)
    kw = {"modality": "CT"} if name == "default" else {}
    fused = fuser.fuse(mri, other, **kw)
    assert fused.is_contiguous()
    plain = get_fuser(name)
    plain.net.to(memory_format=torch.contiguous_format)
    plain.channels_last = False  # the same weights in the ordinary layout
    assert torch.allclose(fused, plain.fuse(mri, other, **kw), atol=1e-5)
