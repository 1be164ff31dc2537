"""StructureFusionLoss: terms agree with the metrics they stand for, gradients are finite, training improves them."""

from __future__ import annotations

import pytest
import torch

from monai_fusion.losses import StructureFusionLoss, soft_qabf
from monai_fusion.metrics import compute_metrics
from monai_fusion.utils import FusionInputError


def _pair(seed: int = 0, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    a = ((xx ** 2 + yy ** 2) < 0.6).float() * 0.6 + 0.1 * torch.rand(size, size, generator=g)
    b = torch.exp(-((xx - 0.2) ** 2 + yy ** 2) / 0.1) * 0.9
    return a[None, None].clamp(0, 1), b[None, None].clamp(0, 1)


def test_soft_qabf_is_close_to_the_metric() -> None:
    a, b = _pair()
    for f in (torch.maximum(a, b), (a + b) / 2, a):
        want = compute_metrics(f * 255, a * 255, b * 255, metrics=["Qabf"])["Qabf"]
        got = soft_qabf(f * 255, a * 255, b * 255)
        assert float(got) == pytest.approx(float(want), abs=0.03)


def test_terms_gradients_and_target_forms() -> None:
    a, b = _pair()
    loss = StructureFusionLoss()
    pred = ((a + b) / 2).requires_grad_()
    value = loss(pred, torch.cat([a, b], 1))
    value.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    assert set(loss.last_terms) == {"ssim", "qabf", "vif", "scd", "int", "total"}
    assert loss.last_terms["total"] == pytest.approx(float(value.detach()))
    ssim = compute_metrics(((a + b) / 2) * 255, a * 255, b * 255, metrics=["SSIM"])["SSIM"]
    assert loss.last_terms["ssim"] == pytest.approx(1 - float(ssim), abs=1e-5)
    assert float(loss(pred.detach(), a, b)) == pytest.approx(float(value))
    # constant (background) patches stay finite
    z = torch.zeros(1, 1, 48, 48, requires_grad=True)
    v = loss(z, torch.zeros(1, 2, 48, 48))
    v.backward()
    assert torch.isfinite(v) and torch.isfinite(z.grad).all()


def test_bad_arguments() -> None:
    with pytest.raises(FusionInputError, match="weights must be finite"):
        StructureFusionLoss(w_ssim=-1)
    with pytest.raises(FusionInputError, match="stack both sources"):
        StructureFusionLoss()(torch.rand(1, 1, 16, 16), torch.rand(1, 3, 16, 16))
    with pytest.raises(FusionInputError, match="one shape"):
        StructureFusionLoss()(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 8))


def test_optimising_the_loss_beats_the_average_rule() -> None:
    """A free image optimised by the loss preserves more edges and contrast of both sources than their mean."""
    a, b = _pair(1)
    f = ((a + b) / 2).clone().requires_grad_()
    opt = torch.optim.Adam([f], lr=0.01)
    loss = StructureFusionLoss()
    for _ in range(60):
        opt.zero_grad()
        loss(f, a, b).backward()
        opt.step()
    avg = compute_metrics(((a + b) / 2) * 255, a * 255, b * 255, metrics=["Qabf", "SCD"])
    got = compute_metrics(f.detach().clamp(0, 1) * 255, a * 255, b * 255, metrics=["Qabf", "SCD"])
    assert float(got["Qabf"]) > float(avg["Qabf"]) and float(got["SCD"]) > float(avg["SCD"])
