"""The default network (WeightMapFusionNet): shapes, both call forms, TorchScript, bad input."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from monai_fusion.networks import WeightMapFusionNet
from monai_fusion.networks.nets.weight_map import SHIPPED_DETAIL_GAIN
from monai_fusion.utils import FusionInputError


@pytest.mark.parametrize("shape", [(1, 2, 256, 256), (2, 2, 37, 61)])
def test_any_size_both_call_forms(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = WeightMapFusionNet().eval()
    x = torch.rand(*shape)
    with torch.no_grad():
        y = net(x)
        assert y.shape == (shape[0], 1, *shape[2:])
        assert torch.equal(y, net(x[:, :1], x[:, 1:]))


def test_output_is_a_weighted_source_mix_plus_bounded_detail() -> None:
    torch.manual_seed(0)
    net = WeightMapFusionNet(residual_scale=0.25).eval()
    x = torch.rand(2, 2, 48, 48)
    with torch.no_grad():
        y = net(x)
    lo, hi = x.min(dim=1, keepdim=True).values, x.max(dim=1, keepdim=True).values
    assert bool((y >= lo - 0.25).all()) and bool((y <= hi + 0.25).all())
    with torch.no_grad():  # without the detail term the output stays between the sources
        net.residual_scale = 0.0
        y0 = net(x)
    assert bool((y0 >= lo - 1e-6).all()) and bool((y0 <= hi + 1e-6).all())


def test_select_prior_starts_as_a_soft_maximum() -> None:
    """With the prior and zeroed head weights the untrained output is sigmoid(k (a - b)) a + ... ~ max(a, b)."""
    net = WeightMapFusionNet(select_prior=50.0, residual_scale=0.0, global_context=False).eval()
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
    a = torch.tensor([[0.9, 0.1], [0.5, 0.2]])[None, None]
    b = torch.tensor([[0.1, 0.8], [0.5, 0.6]])[None, None]
    with torch.no_grad():
        y = net(a, b)
    assert torch.allclose(y, torch.maximum(a, b), atol=1e-3)
    assert net.config["select_prior"] == 50.0
    with torch.no_grad():  # without the prior the same head gives the average
        net.select_prior = 0.0
        assert torch.allclose(net(a, b), (a + b) / 2)


@pytest.mark.parametrize("global_context", [False, True])
def test_torchscript_matches_eager(global_context: bool) -> None:
    net = WeightMapFusionNet(channels=8, select_prior=20.0, global_context=global_context).eval()
    x = torch.rand(2, 2, 40, 52)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(net)
    with torch.no_grad():
        assert torch.allclose(scripted(x), net(x), atol=1e-6)


def test_global_context_is_a_per_image_bias() -> None:
    """The context branch shifts a whole image's weight map: a constant offset per image, from its own content."""
    torch.manual_seed(0)
    net = WeightMapFusionNet(global_context=True).eval()
    x = torch.rand(2, 2, 32, 32)
    with torch.no_grad():
        base = net(x)
        net.context.bias.add_(torch.tensor([3.0, 0.0]))  # push every weight towards the MRI
        pushed = net(x)
    assert float((pushed - x[:, :1]).abs().mean()) < float((base - x[:, :1]).abs().mean())
    with torch.no_grad():  # each image's bias depends only on that image
        assert torch.allclose(net(x[1:]), pushed[1:], atol=1e-6)


def test_bad_input_and_arguments() -> None:
    net = WeightMapFusionNet()
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        net(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="one shape"):
        net(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9))
    with pytest.raises(FusionInputError, match="must be positive"):
        WeightMapFusionNet(channels=0)
    assert WeightMapFusionNet(channels=8).config["channels"] == 8


def test_detail_gain_scales_only_the_detail_term() -> None:
    """F(g) = mix + g * s * tanh(r): linear in the gain, the weighted mix untouched; the gain is in the config."""
    torch.manual_seed(0)
    net = WeightMapFusionNet(detail_gain=0.0).eval()
    x = torch.rand(2, 2, 32, 40)
    with torch.no_grad():
        mix = net(x)
        net.detail_gain = 1.0
        full = net(x)
        net.detail_gain = 0.5
        half = net(x)
    assert float((full - mix).abs().max()) > 1e-4
    assert torch.allclose(half - mix, (full - mix) / 2, atol=1e-6)
    assert WeightMapFusionNet().config["detail_gain"] == SHIPPED_DETAIL_GAIN  # the shipped model's gains
    assert WeightMapFusionNet(detail_gain=1).config["detail_gain"] == 1.0
    for bad in (-0.1, float("nan")):
        with pytest.raises(FusionInputError, match="detail_gain"):
            WeightMapFusionNet(detail_gain=bad)


def test_detail_gain_per_modality_is_each_samples_own_uniform_gain() -> None:
    """{modality: gain}: each sample gets its modality's gain, exactly as a network with that single gain."""
    torch.manual_seed(0)
    net = WeightMapFusionNet(detail_gain={"ct": 0.0, "PET": 0.8, "SPECT": 0.4}).eval()
    assert net.config["detail_gain"] == {"CT": 0.0, "PET": 0.8, "SPECT": 0.4}
    x = torch.rand(3, 2, 32, 40)
    with torch.no_grad():
        mixed = net(x, modality=["SPECT", "ct", "PET"])
        for i, (mod, g) in enumerate((("SPECT", 0.4), ("CT", 0.0), ("PET", 0.8))):
            single = WeightMapFusionNet(detail_gain=g).eval()
            single.load_state_dict(net.state_dict())
            assert torch.allclose(mixed[i], single(x[i : i + 1])[0], atol=1e-6), mod
        assert float((net(x[:1], modality=["PET"]) - net(x[:1], modality=["CT"])).abs().max()) > 1e-4
        assert torch.equal(net(x[:, :1], x[:, 1:], modality=["SPECT", "CT", "PET"]), mixed)  # both call forms
        uniform = WeightMapFusionNet(detail_gain=0.4).eval()  # a single gain ignores the modality
        uniform.load_state_dict(net.state_dict())
        assert torch.equal(uniform(x, modality=["CT", "CT", "CT"]), uniform(x))
    with pytest.raises(ValueError, match="set per modality .*pass modality"):
        net(x)
    with pytest.raises(ValueError, match="lists 2 values for a batch of 3"):
        net(x, modality=["CT", "PET"])
    with pytest.raises(ValueError, match="modality MRI is not one of CT, PET, SPECT"):
        net(x, modality=["CT", "MRI", "PET"])
    only_ct = WeightMapFusionNet(detail_gain={"CT": 0.0})
    with pytest.raises(ValueError, match="PET has no detail gain; expected one of CT"):
        only_ct(x[:1], modality=["PET"])
    # a "default" entry serves calls without a modality (MONAI's generic tools) and modalities without their own
    with_default = WeightMapFusionNet(detail_gain={"CT": 0.0, "Default": 0.8}).eval()
    with_default.load_state_dict(net.state_dict())
    assert with_default.config["detail_gain"] == {"CT": 0.0, "default": 0.8}
    with torch.no_grad():
        assert torch.allclose(with_default(x), net(x, modality=["PET"] * 3), atol=1e-6)
        assert torch.allclose(
            with_default(x, modality=["SPECT", "CT", "PET"]), net(x, modality=["PET", "CT", "PET"]), atol=1e-6
        )
    with pytest.raises(ValueError, match="modality PT is not one of CT, PET, SPECT"):  # never the default gain
        with_default(x[:1], modality=["PT"])
    for bad, match in (
        ({"MRI": 0.1}, "key 'MRI' is not a modality of the other source"),
        ({"CT": 0.1, "ct": 0.2}, "names CT twice"),
        ({"CT": -1.0}, r"detail_gain\['CT'\]"),
        ({}, "names no modality"),
        ({"default": 0.3}, "names no modality"),
        ({"PET": {"x": 1}}, "must be a number"),
        ("a", "must be a number"),
    ):
        with pytest.raises(FusionInputError, match=match):
            WeightMapFusionNet(detail_gain=bad)


def test_torchscript_keeps_the_detail_gain() -> None:
    """One gain, or one per modality (with and without a "default"), survives scripting."""
    net = WeightMapFusionNet(channels=8, detail_gain=0.3).eval()
    per = WeightMapFusionNet(channels=8, detail_gain={"CT": 0.0, "PET": 1.0}).eval()
    fallback = WeightMapFusionNet(channels=8, detail_gain={"CT": 0.0, "PET": 1.0, "default": 1.0}).eval()
    ref = WeightMapFusionNet(channels=8, detail_gain=1.0).eval()
    for other in (per, fallback, ref):
        other.load_state_dict(net.state_dict())
    x = torch.rand(2, 2, 24, 24)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted, scripted_per, scripted_fallback = (torch.jit.script(n) for n in (net, per, fallback))
    with torch.no_grad():
        assert torch.allclose(scripted(x), net(x), atol=1e-6)
        assert not torch.allclose(scripted(x), ref(x), atol=1e-4)
        assert torch.allclose(scripted_per(x, modality=["PET", "CT"]), per(x, modality=["PET", "CT"]), atol=1e-6)
        assert not torch.allclose(scripted_per(x, modality=["PET", "CT"]), per(x, modality=["CT", "PET"]), atol=1e-4)
        assert torch.allclose(scripted_fallback(x), ref(x), atol=1e-6)  # no modality: the "default" gain
    with pytest.raises(Exception, match="pass modality"):
        scripted_per(x)


def test_background_where_both_sources_are_zero_stays_zero() -> None:
    """The detail term is held at 0 where neither source has signal; elsewhere it is untouched."""
    torch.manual_seed(0)
    net = WeightMapFusionNet(detail_gain=1.0).eval()
    with torch.no_grad():
        for layer in (net.head, net.context):
            layer.weight.zero_()
            layer.bias.zero_()
        net.head.bias[1] = 3.0  # a detail term of +0.25 * tanh(3) everywhere before the gate
    x = torch.rand(1, 2, 40, 40)
    x[:, :, :10] = 0.0  # air: both sources black
    x[:, 0, 10:14] = 0.0  # only the MRI black: the other source still has signal there
    with torch.no_grad():
        y = net(x)
        assert float(y[:, :, :10].abs().max()) == 0.0
        net.detail_gain = 0.0
        detail = y - net(x)
        net.detail_gain = 1.0
        # wherever one source has signal the detail term is there in full (only the MRI black: rows 10-13)
        assert torch.allclose(detail[:, :, 10:], torch.full_like(detail[:, :, 10:], 0.25 * math.tanh(3.0)), atol=1e-6)
        scripted = torch.jit.script(net)
        assert torch.equal(scripted(x)[:, :, :10], y[:, :, :10])


def test_torchscript_export_raises_no_user_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.jit.script(WeightMapFusionNet().eval())
    # PyTorch's FutureWarnings about torch.jit are its own (shown in the bundle docs); no warning of ours
    assert [str(w.message) for w in caught if not issubclass(w.category, FutureWarning)] == []


def test_logit_bound_keeps_the_maximum_rule_where_sources_differ() -> None:
    """A head saturated towards the MRI copies it unbounded; bounded by L, a source brighter by > L / k shows."""
    a = torch.full((1, 1, 8, 8), 0.2)  # MRI dark, other bright by 0.6 > L / k = 4 / 20
    b = torch.full((1, 1, 8, 8), 0.8)
    outs = {}
    for bound in (None, 4.0):
        net = WeightMapFusionNet(residual_scale=0.0, global_context=False, logit_bound=bound).eval()
        with torch.no_grad():
            net.head.weight.zero_()
            net.head.bias.fill_(100.0)  # a saturated head: w = 1, the MRI's copy
            outs[bound] = net(a, b)
        assert net.config.get("logit_bound") == bound  # unbounded: not in the config, as in earlier checkpoints
    assert torch.allclose(outs[None], a, atol=1e-6)
    w = (outs[4.0] - b) / (a - b)  # the weight of the MRI
    assert torch.allclose(w, torch.sigmoid(torch.tensor(4.0 * math.tanh(25.0) - 20.0 * 0.6)), atol=1e-5)
    assert float(w.max()) < 0.01  # the brighter other source is kept


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_logit_bound_refuses_non_positive_or_infinite(bad: float) -> None:
    with pytest.raises(FusionInputError, match="logit_bound"):
        WeightMapFusionNet(logit_bound=bad)


def test_logit_bound_torchscript_and_old_state_dicts() -> None:
    """The bound is a plain float attribute that TorchScript keeps; it adds no parameters, so old weights load."""
    net = WeightMapFusionNet(channels=8, residual_scale=0.0, global_context=False, logit_bound=2.0).eval()
    WeightMapFusionNet(channels=8, global_context=False).load_state_dict(net.state_dict())
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.fill_(100.0)  # saturated: the bound alone decides the weight
    a, b = torch.full((1, 1, 24, 24), 0.2), torch.full((1, 1, 24, 24), 0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(net)
    w = torch.sigmoid(torch.tensor(2.0 - 20.0 * 0.6))
    with torch.no_grad():
        assert torch.allclose(scripted(a, b), w * a + (1 - w) * b, atol=1e-6)
        assert torch.allclose(scripted(a, b), net(a, b), atol=1e-6)
