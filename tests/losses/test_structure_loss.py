"""StructureFusionLoss: terms agree with the metrics they stand for, gradients are finite, training improves them."""

from __future__ import annotations

import math

import pytest
import torch

from monai_fusion.losses import StructureFusionLoss, soft_mutual_information, soft_qabf
from monai_fusion.metrics import compute_metrics
from monai_fusion.utils import FusionInputError


def _pair(seed: int = 0, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    a = ((xx**2 + yy**2) < 0.6).float() * 0.6 + 0.1 * torch.rand(size, size, generator=g)
    b = torch.exp(-((xx - 0.2) ** 2 + yy**2) / 0.1) * 0.9
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
    assert set(loss.last_terms) == {"ssim", "qabf", "vif", "scd", "int", "total"}  # w_grad 0: not computed
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


def test_int_margin_counts_only_pixels_where_the_sources_disagree() -> None:
    a = torch.full((1, 1, 48, 48), 0.5)
    b = a.clone()
    b[..., :8, :] = 0.95  # only one source shows this band ("bone"), |a - b| = 0.45
    b[..., 8:16, :] = 0.6  # similar brightness, |a - b| = 0.1
    pred = a.clone()  # keeps neither
    plain = StructureFusionLoss(w_ssim=0, w_qabf=0, w_vif=0, w_scd=0, w_int=1)
    margin = StructureFusionLoss(w_ssim=0, w_qabf=0, w_vif=0, w_scd=0, w_int=1, int_margin=0.25)
    assert float(plain(pred, a, b)) == pytest.approx((8 * 0.45 + 8 * 0.1) / 48, abs=1e-6)
    assert float(margin(pred, a, b)) == pytest.approx(8 * 0.45 / 48, abs=1e-6)
    with pytest.raises(FusionInputError, match="int_margin"):
        StructureFusionLoss(int_margin=1.0)


def test_pair_weights_apply_per_sample() -> None:
    """Per-pair-type settings weight each sample's terms; the pair types ride on the target's meta."""
    from monai.data import MetaTensor

    from monai_fusion.engines.batch import PrepareFusionBatch

    a = torch.full((2, 1, 48, 48), 0.5)
    b = a.clone()
    b[..., :8, :] = 0.95
    pred = a.clone()
    kw = dict(w_ssim=0, w_qabf=0, w_vif=0, w_scd=0, w_int=1)
    loss = StructureFusionLoss(**kw, pair_weights={"CT-MRI": {"w_int": 3.0, "int_margin": 0.25}})
    one = 8 * 0.45 / 48
    assert float(loss(pred, a, b)) == pytest.approx(one, abs=1e-6)  # no pair types: the base settings
    assert float(loss(pred, a, b, pair_types=["CT-MRI", "PET-MRI"])) == pytest.approx((3 * one + one) / 2, abs=1e-6)
    batch = {"mri": MetaTensor(a), "other": MetaTensor(b), "pair_type": ["CT-MRI", "CT-MRI"]}
    x, target = PrepareFusionBatch()(batch)
    assert target.meta["pair_type"] == ["CT-MRI", "CT-MRI"] and torch.equal(x, target)
    assert float(loss(pred, target)) == pytest.approx(3 * one, abs=1e-6)
    with pytest.raises(FusionInputError, match="2 pair types for a batch of 1"):
        loss(pred[:1], a[:1], b[:1], pair_types=["CT-MRI", "CT-MRI"])
    with pytest.raises(FusionInputError, match="unknown settings"):
        StructureFusionLoss(pair_weights={"CT-MRI": {"w_bone": 1.0}})
    with pytest.raises(FusionInputError, match="key 'CT_MRI' is not a pair type; .*did you mean 'CT-MRI'"):
        StructureFusionLoss(pair_weights={"CT_MRI": {"w_mi": 3.0}})
    with pytest.raises(FusionInputError, match=r"pair_weights\['CT-MRI'\].*int_margin"):
        StructureFusionLoss(pair_weights={"CT-MRI": {"int_margin": 2.0}})


def test_soft_mutual_information_matches_histograms_and_monai() -> None:
    """On grey levels at the bin centres the soft histogram is the plain one: MI(x, x) is its entropy."""
    from monai.losses import GlobalMutualInformationLoss

    g = torch.Generator().manual_seed(0)
    bins = 16
    x = torch.randint(0, bins, (2, 1, 32, 32), generator=g).double() / (bins - 1)
    counts = torch.stack([torch.bincount(torch.round(v.flatten() * (bins - 1)).long(), minlength=bins) for v in x])
    p = counts.double() / counts.sum(dim=1, keepdim=True)
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(dim=1)
    assert torch.allclose(soft_mutual_information(x, x, bins), entropy, atol=1e-6)
    # two independent images share (almost) nothing; a monotone function of one keeps what it shares
    y = torch.randint(0, bins, (2, 1, 32, 32), generator=g).double() / (bins - 1)
    assert float(soft_mutual_information(x, y, bins).max()) < 0.2 * float(entropy.min())
    # the same estimate in form as MONAI's Gaussian-window loss, on smooth images (its wider window smooths the
    # histogram a little more, so it reads about 10% lower)
    a, b = _pair(2)
    ours = soft_mutual_information(torch.cat([a, b]), torch.cat([b, (a + b) / 2]), 64)
    monai = -GlobalMutualInformationLoss(num_bins=64, reduction="none")(torch.cat([a, b]), torch.cat([b, (a + b) / 2]))
    assert torch.allclose(ours.float(), monai.float(), rtol=0.15) and bool((ours > monai).all())
    with pytest.raises(FusionInputError, match="bins must be >= 2"):
        soft_mutual_information(x, x, 1)
    with pytest.raises(FusionInputError, match="one shape"):
        soft_mutual_information(x, x[..., :16])


def test_mi_term_is_computed_only_where_weighted_and_raises_the_mi_metric() -> None:
    a, b = _pair(1)
    loss = StructureFusionLoss(w_ssim=0, w_qabf=0, w_vif=0, w_scd=0, w_int=0, pair_weights={"CT-MRI": {"w_mi": 1.0}})
    pred = ((a + b) / 2).repeat(2, 1, 1, 1).requires_grad_()
    loss(pred, a.repeat(2, 1, 1, 1), b.repeat(2, 1, 1, 1), pair_types=["CT-MRI", "PET-MRI"]).backward()
    assert pred.grad[0].abs().sum() > 0 and pred.grad[1].abs().sum() == 0  # PET-MRI: weight 0, term not computed
    assert set(loss.last_terms) == {"mi", "total"}
    terms = loss.terms(
        pred.detach(), a.repeat(2, 1, 1, 1), b.repeat(2, 1, 1, 1), mi_samples=torch.tensor([True, False])
    )
    assert float(terms["mi"][1]) == 0.0 and float(terms["mi"][0]) < 0
    # a batch without any weighted sample (no CT-MRI in it) gives a zero term and a finite loss
    none = loss(pred, a.repeat(2, 1, 1, 1), b.repeat(2, 1, 1, 1), pair_types=["PET-MRI", "SPECT-MRI"])
    assert float(none) == 0.0 and loss.last_terms["mi"] == 0.0
    # optimising the term alone from the average rule raises the 8-bit MI metric it stands for
    f = ((a + b) / 2).clone().requires_grad_()
    opt = torch.optim.Adam([f], lr=0.01)
    only_mi = StructureFusionLoss(w_ssim=0, w_qabf=0, w_vif=0, w_scd=0, w_int=0, w_mi=1.0)
    for _ in range(40):
        opt.zero_grad()
        only_mi(f, a, b).backward()
        opt.step()
    before = compute_metrics(((a + b) / 2) * 255, a * 255, b * 255, metrics=["MI"])["MI"]
    after = compute_metrics(torch.round(f.detach().clamp(0, 1) * 255), a * 255, b * 255, metrics=["MI"])["MI"]
    assert float(after) > float(before) + 0.1
    with pytest.raises(FusionInputError, match="mi_bins"):
        StructureFusionLoss(mi_bins=1)


def test_grad_term_rewards_the_stronger_edges() -> None:
    a, b = _pair()
    loss = StructureFusionLoss(w_ssim=0, w_qabf=0, w_vif=0, w_scd=0, w_int=0, w_grad=1)
    assert float(loss(torch.maximum(a, b), a, b)) < float(loss((a + b) / 2, a, b))
    assert set(loss.last_terms) == {"grad", "total"}


def test_reference_rules_measure_each_term_from_the_best_simple_rule() -> None:
    a, b = _pair()
    tau = 0.02
    loss = StructureFusionLoss(w_int=0.0, reference_rules=("max", "average"), hinge_scale=tau)
    plain = StructureFusionLoss(w_int=0.0)
    # a fusion equal to the better rule on every term sits at the hinge's zero point: tau * softplus(0) per term
    best = torch.maximum(a, b)
    ref = {k: torch.minimum(v, plain.terms((a + b) / 2, a, b)[k]) for k, v in plain.terms(best, a, b).items()}
    value = loss(best, a, b)
    expected = sum(
        loss.weights[k] * tau * float(torch.nn.functional.softplus((v - ref[k]) / tau))
        for k, v in plain.terms(best, a, b).items()
    )  # the gaps are 0 where max is the better rule
    assert float(value) == pytest.approx(expected, rel=1e-5)
    # the logged terms stay the raw ones (comparable with a plain run)
    plain(best, a, b)
    assert {k: v for k, v in loss.last_terms.items() if k != "total"} == pytest.approx(
        {k: v for k, v in plain.last_terms.items() if k != "total"}
    )
    # a copy of the MRI is far behind both rules on SCD and Qabf: its hinged loss is larger
    assert float(loss(a, a, b)) > float(value)
    pred = best.clone().requires_grad_()
    loss(pred, a, b).backward()
    assert torch.isfinite(pred.grad).all()
    # hinge_leak adds alpha * gap per term: the copy of the MRI is behind on the sum of gaps, so it costs more
    leaky = StructureFusionLoss(w_int=0.0, reference_rules=("max", "average"), hinge_scale=tau, hinge_leak=0.5)
    gaps = {k: v - ref[k] for k, v in plain.terms(a, a, b).items()}
    extra = sum(0.5 * leaky.weights[k] * float(v) for k, v in gaps.items())
    assert float(leaky(a, a, b)) == pytest.approx(float(loss(a, a, b)) + extra, rel=1e-5)


def test_reference_rules_bad_arguments() -> None:
    with pytest.raises(FusionInputError, match="reference_rules"):
        StructureFusionLoss(reference_rules=("median",))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(FusionInputError, match="hinge_scale"):
            StructureFusionLoss(reference_rules=("max",), hinge_scale=bad)
        with pytest.raises(FusionInputError, match="hinge_leak"):
            StructureFusionLoss(reference_rules=("max",), hinge_leak=bad - 1.0)


def test_reference_rules_take_a_callable() -> None:
    """A callable rule (the bundle can pass a fuser's ``fuse``) is the zero point when the fusion equals it."""
    a, b = _pair()
    loss = StructureFusionLoss(w_int=0.0, reference_rules=(lambda mri, other: mri,), hinge_scale=0.05)
    expected = sum(w * 0.05 * math.log(2) for k, w in loss.weights.items() if k in loss.used_terms)
    assert float(loss(a, a, b)) == pytest.approx(expected, rel=1e-5)
