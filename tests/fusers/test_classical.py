"""Classical methods on real pairs and the filters they are built from."""

from __future__ import annotations

import pytest
import torch

from monai_fusion.fusers import get_fuser
from monai_fusion.fusers.classical import (
    box_filter,
    guided_filter,
    laplacian_pyramid,
    reconstruct_laplacian_pyramid,
)
from monai_fusion.utils.errors import FusionInputError

CLASSICAL = ["average", "max", "laplacian", "dwt", "guided_filter"]


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


@pytest.mark.shared_data
@pytest.mark.parametrize("name", CLASSICAL)
def test_sensible_fusion_of_a_real_pair(name: str, real_pair) -> None:
    mri, other = real_pair
    fuser = get_fuser(name)
    fused = fuser.fuse(mri, other)
    assert fused.shape == mri.shape
    assert 0.0 <= float(fused.min()) and float(fused.max()) <= 1.0
    assert _corr(fused, mri) > 0.4 and _corr(fused, other) > 0.4
    odd = fuser.fuse(mri[..., 3:136, 5:104], other[..., 3:136, 5:104])
    assert odd.shape == (1, 1, 133, 99)


@pytest.mark.parametrize("name", CLASSICAL)
def test_identical_sources_give_the_source(name: str) -> None:
    x = torch.rand(1, 1, 45, 38, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(get_fuser(name).fuse(x, x), x, atol=1e-5)


def test_multiscale_rules_keep_the_sharper_detail() -> None:
    """A bright edge present in one source only survives better than in the average."""
    flat = torch.full((1, 1, 64, 64), 0.5)
    edge = flat.clone()
    edge[..., :, 32:] = 0.9
    average = get_fuser("average").fuse(flat, edge)
    assert float(average[..., 32, 33] - average[..., 32, 30]) == pytest.approx(0.2)
    # band-pass rules keep the full edge; GFF keeps it in the detail layer only
    for name, least in (("laplacian", 0.3), ("dwt", 0.3), ("guided_filter", 0.22)):
        fused = get_fuser(name).fuse(flat, edge)
        assert float(fused[..., 32, 33] - fused[..., 32, 30]) > least, name


def test_box_filter_matches_a_direct_mean() -> None:
    x = torch.rand(1, 2, 9, 7, generator=torch.Generator().manual_seed(0))
    out = box_filter(x, 2)
    assert torch.allclose(out[0, 1, 4, 3], x[0, 1, 2:7, 1:6].mean())
    assert torch.allclose(out[0, 0, 0, 0], x[0, 0, :3, :3].mean())  # normalised at the border
    assert torch.allclose(box_filter(x, 50), x.mean(dim=(2, 3), keepdim=True).expand_as(x))


def test_guided_filter_smooths_flat_regions_and_keeps_edges() -> None:
    guide = torch.zeros(1, 1, 32, 32)
    guide[..., 16:, :] = 1.0
    noisy = guide + 0.05 * torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    out = guided_filter(guide, noisy, r=4, eps=1e-2)
    assert out[..., 2:14, 2:30].std() < 0.5 * noisy[..., 2:14, 2:30].std()
    assert float(out[..., 17:, :].mean() - out[..., :15, :].mean()) > 0.9


def test_laplacian_pyramid_is_invertible_at_odd_sizes() -> None:
    x = torch.rand(2, 1, 37, 29, generator=torch.Generator().manual_seed(0))
    pyramid = laplacian_pyramid(x, 4)
    assert [tuple(p.shape[-2:]) for p in pyramid] == [(37, 29), (19, 15), (10, 8), (5, 4)]
    assert torch.allclose(reconstruct_laplacian_pyramid(pyramid), x, atol=1e-6)


def test_bad_parameters() -> None:
    with pytest.raises(FusionInputError, match="wavelet"):
        get_fuser("dwt", wavelet="morl")
    with pytest.raises(FusionInputError, match="levels"):
        get_fuser("laplacian", levels=0)
