"""The written-image loss path: its luminance is the one a reader of the written file measures, a residual below one
grey level is swamped by the noise while a visible one is not, clipped colours get no gradient, and the loss needs
the chroma with ``written``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from monai_fusion.data import write_demo_dataset
from monai_fusion.data.datalist import find_pairs
from monai_fusion.engines.benchmark_setup import written_luminance
from monai_fusion.losses import StructureFusionLoss, soft_written_luminance
from monai_fusion.transforms.presets import fusion_preprocess
from monai_fusion.utils import FusionInputError


def test_rounded_path_is_the_written_images_luminance(tmp_path: Path) -> None:
    items = find_pairs(write_demo_dataset(tmp_path)).items
    sample = fusion_preprocess(register=False)(next(i for i in items if i["modality"] == "PET"))
    assert "other_cb" in sample  # a colour pair
    fused = (0.7 * sample["mri"] + 0.5 * sample["other"]).clamp(0, 1).as_tensor()  # some colours leave the gamut
    chroma = torch.cat([torch.as_tensor(sample["other_cb"]), torch.as_tensor(sample["other_cr"])])[None].float()
    got = soft_written_luminance(fused[None].float(), chroma, noise=False)[0] * 255
    want = written_luminance(sample, fused)
    diff = (got - want).abs()
    assert float(diff.max()) <= 1 + 1e-3 and float((diff > 1e-3).float().mean()) < 1e-3  # ties of float rounding
    # grey pairs: neutral chroma gives the rounded luminance
    grey = soft_written_luminance(fused[None].float(), torch.full_like(chroma, 0.5), noise=False)
    assert torch.allclose(grey, torch.round(fused[None] * 255) / 255, atol=1e-5)
    # straight through: the same values, and a gradient that the plain rounding does not have
    y = fused[None].float().clone().requires_grad_(True)
    through = soft_written_luminance(y, chroma, noise=False, straight_through=True)
    assert torch.equal(through.detach(), soft_written_luminance(y.detach(), chroma, noise=False))
    (grad,) = torch.autograd.grad(through.sum(), y)
    (flat,) = torch.autograd.grad(soft_written_luminance(y, chroma, noise=False).sum(), y)
    assert float(grad.abs().sum()) > 0 and float(flat.abs().sum()) == 0


def test_noise_hides_subgrey_residuals_and_clipping_stops_the_gradient() -> None:
    torch.manual_seed(0)
    base = torch.rand(1, 1, 64, 64) * 0.5 + 0.25
    neutral = torch.full((1, 2, 64, 64), 0.5)
    pattern = torch.sign(torch.randn_like(base))

    def corr(step: float) -> float:  # SCD's kind of measure: how much of the residual the scored image keeps
        diff = soft_written_luminance(base + step / 255 * pattern, neutral) - soft_written_luminance(base, neutral)
        d, q = diff - diff.mean(), pattern - pattern.mean()
        return float((d * q).sum() / torch.sqrt((d * d).sum() * (q * q).sum()))

    assert corr(0.1) < 0.3 and corr(4.0) > 0.9  # a tenth of a grey level is swamped (about 0.24), four are kept
    # a saturated red (Cr high) at high luminance: red clips, so raising Y there moves only G and B
    pred = torch.full((1, 1, 4, 4), 0.9, requires_grad=True)
    red = torch.stack([torch.full((4, 4), 0.5), torch.full((4, 4), 0.95)])[None]
    soft_written_luminance(pred, red).sum().backward()
    assert 0 < float(pred.grad.mean()) < 0.9  # only G and B carry the gradient
    with pytest.raises(FusionInputError, match="chroma"):
        soft_written_luminance(pred, red[:, :1])


def test_written_loss_needs_the_chroma_and_scores_the_written_image() -> None:
    torch.manual_seed(1)
    a, b = torch.rand(2, 1, 1, 48, 48)
    pred = ((a + b) / 2).requires_grad_()
    neutral = torch.full((1, 2, 48, 48), 0.5)
    loss = StructureFusionLoss(written=True)
    value = loss(pred, torch.cat([a, b, neutral], 1))
    value.backward()
    assert torch.isfinite(value) and pred.grad.abs().sum() > 0
    plain = StructureFusionLoss()(pred.detach(), torch.cat([a, b], 1))
    assert float(value) != pytest.approx(float(plain), abs=1e-6)  # the quantised image, not the float one
    with pytest.raises(FusionInputError, match=r"\(N, 4, H, W\)"):
        loss(pred, torch.cat([a, b], 1))
    with pytest.raises(FusionInputError, match=r"\(N, 4, H, W\)"):
        loss(pred, a, b)
    with pytest.raises(FusionInputError, match="does not combine with reference_rules"):
        StructureFusionLoss(written=True, reference_rules=["max"])
    assert np.isfinite(loss.last_terms["total"])


def test_written_terms_score_only_the_named_terms_on_the_written_image() -> None:
    torch.manual_seed(2)
    a, b = torch.rand(2, 1, 1, 48, 48)
    pred = (a + b) / 2
    red = torch.stack([torch.full((48, 48), 0.3), torch.full((48, 48), 0.9)])[None]
    target = torch.cat([a, b, red], 1)
    plain, every, some = (
        StructureFusionLoss(),
        StructureFusionLoss(written=True),
        StructureFusionLoss(written=True, written_terms=["scd"]),
    )
    plain(pred, torch.cat([a, b], 1))
    torch.manual_seed(3)
    every(pred, target)
    torch.manual_seed(3)
    some(pred, target)
    assert some.written_terms == ("scd",)
    assert some.last_terms["scd"] == pytest.approx(every.last_terms["scd"], abs=1e-6)
    assert some.last_terms["scd"] != pytest.approx(plain.last_terms["scd"], abs=1e-3)
    for k in ("ssim", "qabf", "vif", "int"):
        assert some.last_terms[k] == pytest.approx(plain.last_terms[k], abs=1e-6), k
    with pytest.raises(FusionInputError, match="written_terms must be a list of term names"):
        StructureFusionLoss(written=True, written_terms=["sdc"])
    with pytest.raises(FusionInputError, match="written_terms must be a list of term names"):
        StructureFusionLoss(written=True, written_terms="scd")
