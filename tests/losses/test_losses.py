"""FusionLoss and its terms: Sobel gradient loss, perceptual loss (medical and VGG backbones)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models.vgg import cfgs, make_layers

from monai_fusion.losses import (
    FusionLoss,
    PerceptualFeatureLoss,
    SobelGradientLoss,
    build_feature_backbone,
    sobel_gradients,
)
from monai_fusion.networks import MissingWeightsError
from monai_fusion.utils.errors import FusionInputError


def test_sobel_of_a_ramp() -> None:
    ramp = torch.arange(6.0).repeat(5, 1)[None, None]  # value = column index
    gx, gy = sobel_gradients(ramp)
    assert torch.equal(gx[..., 1:-1], torch.full((1, 1, 5, 4), 8.0))  # (1 + 2 + 1) * 2 per unit step
    assert torch.equal(gy, torch.zeros_like(gy))
    assert gx.shape == ramp.shape


def test_gradient_loss_values() -> None:
    ramp = torch.arange(6.0).repeat(6, 1)[None, None] / 10
    flat = torch.zeros_like(ramp)
    loss = SobelGradientLoss()
    assert loss(ramp, ramp) == 0.0
    assert loss(ramp, ramp.transpose(-1, -2)) > 0.0
    gx, _ = sobel_gradients(ramp)
    assert loss(flat, ramp) == pytest.approx(float((gx.abs() ** 2).mean()))
    assert loss(-ramp, ramp) == 0.0  # absolute responses: the sign of an edge does not matter
    # two targets: the mean of both losses, or against the larger gradient of the two
    assert SobelGradientLoss("mean")(flat, ramp, flat) == pytest.approx(0.5 * float(loss(flat, ramp)))
    assert SobelGradientLoss("max")(ramp, ramp, flat) == 0.0
    with pytest.raises(ValueError):
        SobelGradientLoss("median")


def test_perceptual_loss_with_the_shipped_backbone() -> None:
    torch.manual_seed(0)
    loss = PerceptualFeatureLoss()  # "medical", every stage
    x = torch.rand(2, 1, 32, 32)
    assert loss(x, x) == 0.0
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert loss(noisy, x) > loss((x + 0.02 * torch.randn_like(x)).clamp(0, 1), x) > 0.0
    pred = noisy.clone().requires_grad_(True)
    loss(pred, x).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.backbone.parameters())
    loss.train()
    assert not loss.backbone.training  # frozen batch statistics stay frozen
    deep_only = PerceptualFeatureLoss("medical", layers=[2])
    assert len(deep_only.backbone(x)) == 1


def test_perceptual_loss_with_vgg16_bn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="vgg16_bn-6c64b313.pth"):
        PerceptualFeatureLoss("vgg16_bn")
    torch.manual_seed(0)
    features = torch.nn.Sequential(*list(make_layers(cfgs["D"], batch_norm=True))[:23])
    target = tmp_path / "hub" / "checkpoints" / "vgg16_bn-6c64b313.pth"
    target.parent.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, target)
    loss = PerceptualFeatureLoss("vgg16_bn", layer_weights=(1.0, 1.0, 2.0))
    x = torch.rand(1, 1, 32, 32)
    assert loss(x, x) == 0.0 and loss(x.flip(-1), x) > 0.0


def test_unknown_backbone() -> None:
    with pytest.raises(FusionInputError, match="medical"):
        build_feature_backbone("resnet")


def test_fusion_loss_terms_and_weights() -> None:
    torch.manual_seed(0)
    a, b = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    loss = FusionLoss(lambda_mse=2.0, lambda_grad=0.5, lambda_perc=0.25)
    terms = loss.terms(a, b)
    assert float(terms["mse"]) == pytest.approx(float(((a - b) ** 2).mean()))
    assert float(terms["grad"]) == pytest.approx(float(SobelGradientLoss()(a, b)))
    assert float(terms["perc"]) == pytest.approx(float(PerceptualFeatureLoss()(a, b)), rel=1e-5)
    expected = 2.0 * terms["mse"] + 0.5 * terms["grad"] + 0.25 * terms["perc"]
    assert float(loss(a, b)) == pytest.approx(float(expected))
    assert loss.last_terms["total"] == pytest.approx(float(expected))


def test_fusion_loss_paired_mode_weights_both_sources() -> None:
    torch.manual_seed(0)
    a, b = torch.rand(1, 1, 24, 24), torch.rand(1, 1, 24, 24)
    loss = FusionLoss(lambda_perc=0.0, source_weights=(0.7, 0.3))
    assert loss.perceptual is None  # no backbone is loaded when its weight is zero
    mid = 0.7 * a + 0.3 * b
    terms = loss.terms(mid, a, b)
    expected_mse = 0.7 * float(((mid - a) ** 2).mean()) + 0.3 * float(((mid - b) ** 2).mean())
    assert float(terms["mse"]) == pytest.approx(expected_mse)
    assert float(terms["perc"]) == 0.0
    # the weighted mean of the sources minimises the paired MSE term
    assert float(loss.terms(mid, a, b)["mse"]) < float(loss.terms(a, a, b)["mse"])
    with pytest.raises(ValueError):
        FusionLoss(source_weights=(1.0,))
