"""Zero-learning fusion through the real VGG19 loading path (a synthetic checkpoint in the
torchvision format in a temporary TORCH_HOME), its medical-extractor variant, the shipped trained networks and
the inference benchmark."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from monai_fusion.fusers import get_fuser
from monai_fusion.networks import MissingWeightsError

ROOT = Path(__file__).resolve().parents[2]


def _write_conv1(torch_home: Path, weight: torch.Tensor, bias: torch.Tensor) -> Path:
    """VGG19's first layer only, under torchvision's file name and keys."""
    path = torch_home / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"features.0.weight": weight, "features.0.bias": bias}, path)
    return path


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


def test_missing_vgg19_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="vgg19-dcbb9e9d.pth"):
        get_fuser("zero_learning")


def test_zero_learning_weights_are_normalised_activities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weight = torch.full((64, 3, 3, 3), 1.0 / 27)  # every filter: the 3x3 mean over RGB
    _write_conv1(tmp_path, weight, torch.zeros(64))
    fuser = get_fuser("zero_learning")
    gen = torch.Generator().manual_seed(0)
    mri, other = torch.rand(1, 1, 12, 10, generator=gen), torch.rand(1, 1, 12, 10, generator=gen)
    act = [64 * F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True) for x in (mri, other)]
    expected = (act[0] * mri + act[1] * other) / (act[0] + act[1])
    assert torch.allclose(fuser.fuse(mri, other), expected, atol=1e-4)
    soft = get_fuser("zero_learning", softmax=True).pixel_weights(mri, other)
    assert torch.allclose(soft.sum(dim=1), torch.ones(1, 12, 10))


@pytest.mark.shared_data
def test_zero_learning_on_a_real_pair(real_pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    gen = torch.Generator().manual_seed(0)
    _write_conv1(tmp_path, 0.2 * torch.randn(64, 3, 3, 3, generator=gen), 0.01 * torch.randn(64, generator=gen))
    fuser = get_fuser("zero_learning")
    mri, other = real_pair
    fused = fuser.fuse(mri, other)
    assert fused.shape == mri.shape and 0.0 <= float(fused.min()) and float(fused.max()) <= 1.0
    assert _corr(fused, mri) > 0.4 and _corr(fused, other) > 0.4
    assert fuser.fuse(mri[..., :101, :77], other[..., :101, :77]).shape == (1, 1, 101, 77)


@pytest.mark.slow
def test_inference_benchmark_prints_every_method(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_inference", ROOT / "benchmarks" / "inference.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main(["--size", "64", "--repeats", "1", "--methods", "average,dwt,poster,zero_learning"])
    assert [r["method"] for r in rows] == ["average", "dwt", "poster", "zero_learning"]
    by_name = {r["method"]: r for r in rows}
    assert by_name["poster"]["params"] == 253_603 and by_name["poster"]["gflops"] > 1.0
    assert by_name["average"]["params"] == 0 and by_name["average"]["ms"] > 0
    assert by_name["zero_learning"]["params"] == 64 * 27 + 64
    out = capsys.readouterr().out
    assert "ms/pair" in out and "shipped weights" in out


@pytest.mark.parametrize("name", ["poster", "msrpan", "msdra"])
def test_shipped_networks_load_by_name_with_their_provenance(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing-weights error, no random-weights warning
        fuser = get_fuser(name)
    assert fuser.trained
    assert fuser.meta["recipe"].startswith("train_poster.json") and fuser.meta["best_val_loss"] > 0
    assert 0 < fuser.meta["train_seconds"] <= 3600  # the CPU budget of the recipe
    expected = ("medical", "vgg16_bn") if name == "poster" else (None,)  # MSRPAN / MSDRA: pixel + SSIM only
    assert fuser.meta["perceptual_backbone"] in expected


@pytest.mark.parametrize("name", ["poster", "msrpan", "msdra"])
def test_shipped_networks_reconstruct_a_real_slice(name: str, real_pair) -> None:
    """Trained as autoencoders, each network returns a source fused with itself nearly unchanged (a randomly
    initialised one does not: its MSE is far above the bound)."""
    mri, other = real_pair
    fuser = get_fuser(name)
    for x in (mri, other):
        assert float(((fuser.fuse(x, x) - x) ** 2).mean()) < 2e-3
    fused = fuser.fuse(mri, other)
    assert min(_corr(fused, mri), _corr(fused, other)) > 0.25  # both sources show through (trained: 0.34 or more)


def test_zero_learning_medical_runs_the_rule_on_the_shipped_extractor() -> None:
    fuser = get_fuser("zero_learning_medical")
    mri, other = torch.rand(1, 1, 20, 24), torch.zeros(1, 1, 20, 24)
    w = fuser.pixel_weights(mri, other)
    assert w.shape == (1, 2, 20, 24) and torch.allclose(w.sum(1), torch.ones(1, 20, 24))
    fused = fuser.fuse(mri, other)
    assert torch.allclose(fused, w[:, :1] * mri, atol=1e-6)


@pytest.mark.parametrize("name", ["poster", "msrpan", "msdra"])
def test_the_air_stays_black(name: str) -> None:
    """Where both sources are exactly 0 the fused image is 0 (the decoder's faint offset there would cost SSIM)."""
    g = torch.Generator().manual_seed(0)
    mri, other = torch.rand(1, 1, 32, 32, generator=g), torch.rand(1, 1, 32, 32, generator=g)
    mri[..., :8, :], other[..., :8, :] = 0.0, 0.0
    fused = get_fuser(name).fuse(mri, other)
    assert torch.count_nonzero(fused[..., :8, :]) == 0 and torch.count_nonzero(fused[..., 8:, :]) > 0
