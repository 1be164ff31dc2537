"""Each network trains on real pairs (both modes) and its fuser then gives a sensible fusion.

Small crops, reduced widths and a few steps keep this fast; the loss is the default recipe
(MSE + Sobel gradient + perceptual with the shipped medical feature extractor).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from monai_fusion.fusers import get_fuser
from monai_fusion.losses import FusionLoss
from monai_fusion.networks import TWO_SOURCE_NETWORKS, save_checkpoint

pytestmark = pytest.mark.shared_data


def _train(
    net: torch.nn.Module,
    loss_fn: FusionLoss,
    mri: torch.Tensor,
    other: torch.Tensor | None,
    steps: int,
    lr: float = 3e-3,
) -> list[float]:
    """Full-batch Adam steps; autoencoder on ``mri`` when ``other`` is None, else paired fusion."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    history = []
    for _ in range(steps):
        loss = loss_fn(net(mri), mri) if other is None else loss_fn(net(mri, other), mri, other)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    return history


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


@pytest.fixture(scope="module")
def loss_fn() -> FusionLoss:
    return FusionLoss()  # default weights and the shipped medical backbone


@pytest.fixture(scope="module")
def autoencoders(crops, small_configs, loss_fn, tmp_path_factory) -> dict[str, tuple[list[float], Path]]:
    """Each network trained as an autoencoder on MRI and other crops; loss history and checkpoint."""
    mri, other = crops
    images = torch.cat([mri, other])
    out = {}
    for name, cls in TWO_SOURCE_NETWORKS.items():
        torch.manual_seed(0)
        net = cls(**small_configs[name])
        history = _train(net, loss_fn, images, None, steps=25)
        out[name] = (history, save_checkpoint(net, tmp_path_factory.mktemp(name) / f"{name}.pt"))
    return out


@pytest.mark.parametrize("name", sorted(TWO_SOURCE_NETWORKS))
def test_autoencoder_loss_falls(name: str, autoencoders) -> None:
    history, _ = autoencoders[name]
    assert history[-1] < 0.3 * history[0], history
    assert sum(history[-3:]) < sum(history[:3])


@pytest.mark.parametrize("name", sorted(TWO_SOURCE_NETWORKS))
def test_paired_fusion_loss_falls(name: str, crops, small_configs, loss_fn) -> None:
    """Mode (b): fuse the pair and take every loss term against both sources."""
    torch.manual_seed(0)
    net = TWO_SOURCE_NETWORKS[name](**small_configs[name], attention_head=True)
    net.set_strategy("attention" if name == "poster" else net.config["fusion"])
    mri, other = crops
    history = _train(net, loss_fn, mri, other, steps=15)
    # one image cannot match both sources, so the paired loss has a floor well above zero
    assert history[-1] < 0.75 * history[0], history
    assert sum(history[-3:]) < sum(history[:3])
    terms = loss_fn.last_terms
    assert set(terms) == {"mse", "grad", "perc", "ssim", "total"} and terms["ssim"] == 0.0  # lambda_ssim 0
    assert terms["total"] == pytest.approx(terms["mse"] + terms["grad"] + 0.1 * terms["perc"], rel=1e-5)


@pytest.mark.parametrize("name", sorted(TWO_SOURCE_NETWORKS))
def test_trained_network_fuser_on_a_real_pair(name: str, autoencoders, train_pairs) -> None:
    """Loaded through the registry from the checkpoint, with each net's own fusion rule."""
    _, weights = autoencoders[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # trained weights: no random-init warning
        fuser = get_fuser(name, weights=weights)
    assert fuser.trained
    for mri_np, other_np, _ in train_pairs[4:6]:  # pairs the crops did not come from
        mri, other = torch.from_numpy(mri_np)[None], torch.from_numpy(other_np)[None]
        fused = fuser.fuse(mri, other)
        assert fused.shape == mri.shape
        assert 0.0 <= float(fused.min()) and float(fused.max()) <= 1.0
        assert _corr(fused, mri) > 0.5 and _corr(fused, other) > 0.5
        odd = fuser.fuse(mri[..., 20:151, 30:127], other[..., 20:151, 30:127])
        assert odd.shape == (1, 1, 131, 97)
