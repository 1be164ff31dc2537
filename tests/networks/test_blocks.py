"""Blocks and feature-fusion rules: shapes, odd sizes and the values each rule must give."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_fusion.networks.blocks import (
    FUSION_STRATEGIES,
    AttentionFusionHead,
    DilatedResidualAttentionBlock,
    DoubleBranchAttentionBlock,
    FeatureFusion,
    MultiScaleDilatedConv,
    PyramidResidualAttentionBlock,
    RecursiveConvSum,
    ResidualAttentionGate,
    fuse_energy,
    fuse_l1,
    nuclear_weights,
    pooled_attention,
)
from monai_fusion.networks.nets import PosterFusionNet


def test_pooled_attention_values() -> None:
    x = torch.tensor([[1.0, 3.0, -8.0, -8.0], [1.0, 3.0, -8.0, -8.0]])[None, None]
    att = pooled_attention(x, 2)
    # left 2x2 block averages to 2, right block to -8 -> ReLU gives 0; nearest upsampling back
    assert torch.equal(att, torch.tensor([[2.0, 2.0, 0.0, 0.0], [2.0, 2.0, 0.0, 0.0]])[None, None])
    odd = pooled_attention(torch.rand(1, 3, 7, 5), 2)
    assert odd.shape == (1, 3, 7, 5) and (odd >= 0).all()


def test_residual_attention_gate_is_att_times_body_plus_input() -> None:
    torch.manual_seed(0)
    body = torch.nn.Conv2d(1, 8, 1)
    gate = ResidualAttentionGate(body, pool=2)
    x = torch.rand(2, 1, 6, 8)
    expected = pooled_attention(x, 2) * body(x) + x  # one input channel broadcasts to eight
    assert torch.allclose(gate(x), expected)
    assert gate(x).shape == (2, 8, 6, 8)


def test_recursive_conv_sum_shares_one_conv() -> None:
    torch.manual_seed(0)
    block = RecursiveConvSum(4, repeats=3)
    x = torch.rand(1, 4, 9, 9)
    c = block.conv
    assert torch.allclose(block(x), c(x) + c(c(x)) + c(c(c(x))), atol=1e-6)
    assert sum(p.numel() for p in block.parameters()) == 4 * 4 * 9 + 4


def test_drab_receptive_field_is_seven() -> None:
    """An impulse influences outputs 3 pixels away (3x3 conv applied three times), not 4."""
    torch.manual_seed(0)
    block = RecursiveConvSum(2, repeats=3)
    x = torch.zeros(1, 2, 15, 15)
    x[..., 7, 7] = 1.0
    changed = (block(x) - block(torch.zeros_like(x))).abs().sum(dim=(0, 1)) > 0
    rows = changed.any(dim=1).nonzero().flatten()
    assert rows.min() == 4 and rows.max() == 10


@pytest.mark.parametrize("size", [(16, 16), (13, 21)])
def test_blocks_keep_shape(size: tuple[int, int]) -> None:
    x = torch.rand(2, 8, *size)
    blocks = (DilatedResidualAttentionBlock(8), MultiScaleDilatedConv(8, (1, 3, 5)), DoubleBranchAttentionBlock(8, 2))
    for block in blocks:
        assert block(x).shape == x.shape
    if size[0] % 4 == 0:  # the pyramid block needs sizes divisible by 4 (the nets pad)
        assert PyramidResidualAttentionBlock(8, levels=3)(x).shape == x.shape


def test_energy_rule_picks_the_stronger_feature() -> None:
    a = torch.tensor([3.0, 0.0, -2.0])
    b = torch.tensor([1.0, 0.0, 2.0])
    out = fuse_energy(a, b)
    assert out[0] == pytest.approx(0.9 * 3 + 0.1 * 1)  # weights 9/10 and 1/10
    assert out[1] == 0.0 and out[2] == pytest.approx(0.0)  # equal energies: plain average


def test_l1_rule_weights_by_channel_activity() -> None:
    a = torch.ones(1, 2, 4, 4)
    b = 3 * torch.ones(1, 2, 4, 4)
    out = fuse_l1(a, b, window=3)
    assert torch.allclose(out, torch.full_like(a, 0.25 * 1 + 0.75 * 3))


def test_nuclear_weights_favour_the_larger_norm_and_sum_to_one() -> None:
    torch.manual_seed(0)
    a = torch.rand(2, 4, 16, 16)
    w = nuclear_weights(3 * a, a)
    assert torch.allclose(w.sum(dim=1), torch.ones(2))
    # activities 3n and n, mean 2n -> softmax(1.5, 0.5)
    assert torch.allclose(w[:, 0], torch.sigmoid(torch.tensor(1.0)).expand(2), atol=1e-5)
    assert torch.allclose(nuclear_weights(a, a), torch.full((2, 2), 0.5))
    pooled = nuclear_weights(3 * a, a, pool=4)
    assert torch.allclose(pooled, w, atol=1e-5)  # the ratio survives pooling here


def test_a_cold_nuclear_rule_keeps_the_more_active_source_alone() -> None:
    torch.manual_seed(0)
    a, b = torch.rand(1, 4, 16, 16), torch.rand(1, 4, 16, 16)
    # activities 3n and n: at temperature 0.01 the softmax of (150, 50) gives b no weight
    assert torch.allclose(FeatureFusion("nuclear", 4, temperature=0.01)(3 * a, b), 3 * a, atol=1e-6)
    net = PosterFusionNet(channels=8, temperature=0.25)
    assert net.fusion.temperature == 0.25 and net.config["temperature"] == 0.25
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            FeatureFusion("nuclear", 4, temperature=bad)


def test_attention_head_starts_as_average() -> None:
    a, b = torch.rand(1, 8, 5, 7), torch.rand(1, 8, 5, 7)
    assert torch.allclose(AttentionFusionHead(8)(a, b), (a + b) / 2)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([s for s in FUSION_STRATEGIES if s not in ("add",)]), st.integers(0, 2**31 - 1))
def test_convex_rules_stay_between_the_sources(strategy: str, seed: int) -> None:
    """Every rule except addition is a per-element convex combination (or the max) of the two maps."""
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.randn(2, 4, 8, 8, generator=gen), torch.randn(2, 4, 8, 8, generator=gen)
    out = FeatureFusion(strategy, channels=4)(a, b)
    assert out.shape == a.shape
    assert (out >= torch.minimum(a, b) - 1e-5).all() and (out <= torch.maximum(a, b) + 1e-5).all()


def test_feature_fusion_names_and_errors() -> None:
    a, b = torch.rand(1, 4, 4, 4), torch.rand(1, 4, 4, 4)
    assert torch.equal(FeatureFusion("add", 4)(a, b), a + b)
    assert torch.equal(FeatureFusion("max", 4)(a, b), torch.maximum(a, b))
    with pytest.raises(ValueError, match="not one of"):
        FeatureFusion("median", 4)
    with pytest.raises(ValueError, match="attention_head=True"):
        FeatureFusion("average", 4).set_strategy("attention")
