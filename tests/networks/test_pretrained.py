"""Frozen backbones: ImageNet VGG loading from the torch cache (never downloading) and the
project's shipped medical feature extractor with the script that trains it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models.vgg import cfgs, make_layers

from monai_fusion.networks import (
    MedicalFeatureExtractor,
    MissingWeightsError,
    VGGFeatures,
    load_medical_feature_extractor,
    load_vgg_features,
    torchvision_weights_file,
)
from monai_fusion.networks.nets.feature_extractor import MEDICAL_FEATURES_FILE
from monai_fusion.networks.train_feature_extractor import main as train_main
from monai_fusion.utils.errors import FusionInputError


def _write_torchvision_vgg(path: Path, cfg: str, batch_norm: bool, layers: int, seed: int = 0) -> dict:
    """A random checkpoint in torchvision's key format holding the first ``layers`` features."""
    torch.manual_seed(seed)
    features = torch.nn.Sequential(*list(make_layers(cfgs[cfg], batch_norm=batch_norm))[:layers])
    state = {f"features.{k}": v for k, v in features.state_dict().items() if not k.endswith("num_batches_tracked")}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_missing_vgg_file_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert torchvision_weights_file("vgg19") == expected
    with pytest.raises(MissingWeightsError) as info:
        load_vgg_features("vgg19")
    message = str(info.value)
    assert str(expected) in message and "IMAGENET1K_V1" in message and "never downloads" in message
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, FusionInputError)
    assert not expected.exists()  # nothing was fetched


def test_vgg19_loads_from_the_torch_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    state = _write_torchvision_vgg(torchvision_weights_file("vgg19"), "E", False, layers=9)
    net = VGGFeatures("vgg19", layers=(3, 8))
    assert torch.equal(net.features[2].weight, state["features.2.weight"])
    assert all(not p.requires_grad for p in net.parameters())
    feats = net(torch.rand(2, 1, 32, 40))
    assert [tuple(f.shape) for f in feats] == [(2, 64, 32, 40), (2, 128, 16, 20)]


def test_vgg16_bn_loads_from_an_explicit_path(tmp_path: Path) -> None:
    path = tmp_path / "my_vgg16_bn.pth"
    state = _write_torchvision_vgg(path, "D", True, layers=13)
    features = load_vgg_features("vgg16_bn", path, last_layer=12)
    assert len(features) == 13 and not features.training
    assert torch.equal(features[1].running_mean, state["features.1.running_mean"])


def test_vgg_checkpoint_missing_a_layer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "short.pth"
    _write_torchvision_vgg(path, "E", False, layers=2)
    with pytest.raises(FusionInputError, match="features.2.weight"):
        load_vgg_features("vgg19", path, last_layer=3)
    with pytest.raises(FusionInputError, match="not one of"):
        load_vgg_features("resnet50", path)


def test_shipped_medical_extractor() -> None:
    assert MEDICAL_FEATURES_FILE.is_file() and MEDICAL_FEATURES_FILE.stat().st_size < 2 * 1024 * 1024
    net = load_medical_feature_extractor()
    assert isinstance(net, MedicalFeatureExtractor) and not net.training
    feats = net(torch.rand(1, 1, 64, 48))
    assert [tuple(f.shape) for f in feats] == [(1, 16, 64, 48), (1, 32, 32, 24), (1, 64, 16, 12)]
    meta = torch.load(MEDICAL_FEATURES_FILE, weights_only=True)["meta"]
    assert meta["last_mse"] < 0.2 * meta["first_mse"]  # the reconstruction was learned
    assert meta["val_accuracy"] > 0.6  # modality from a crop, above the 0.5 of always-MRI


def test_medical_extractor_missing_file_names_the_script(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="train_feature_extractor"):
        load_medical_feature_extractor(tmp_path / "none.pt")


@pytest.mark.slow
@pytest.mark.shared_data
def test_training_script_runs_and_writes_a_loadable_file(harvard_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "features.pt"
    meta = train_main(
        ["--root", str(harvard_root), "--out", str(out), "--steps", "3", "--batch-size", "4", "--crop", "32"]
    )
    assert meta["steps"] == 3 and meta["train_pairs"] > meta["val_pairs"] > 0
    assert 0.0 <= meta["val_accuracy"] <= 1.0
    net = load_medical_feature_extractor(out)
    assert len(net(torch.rand(1, 1, 32, 32))) == 3
