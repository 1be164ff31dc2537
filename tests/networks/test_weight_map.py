"""The default network (WeightMapFusionNet): shapes, both call forms, TorchScript, bad input."""

from __future__ import annotations

import warnings

import pytest
import torch

from monai_fusion.networks import WeightMapFusionNet
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


def test_torchscript_matches_eager() -> None:
    net = WeightMapFusionNet(channels=8).eval()
    x = torch.rand(1, 2, 40, 52)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(net)
    with torch.no_grad():
        assert torch.allclose(scripted(x), net(x), atol=1e-6)


def test_bad_input_and_arguments() -> None:
    net = WeightMapFusionNet()
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        net(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="one shape"):
        net(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9))
    with pytest.raises(FusionInputError, match="must be positive"):
        WeightMapFusionNet(channels=0)
    assert WeightMapFusionNet(channels=8).config["channels"] == 8
