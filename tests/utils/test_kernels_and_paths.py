"""The shared kernels are the ones both the metrics and the losses use; the dataset root has one lookup."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from monai_fusion.losses import sobel_gradients, soft_qabf
from monai_fusion.metrics import compute_metrics
from monai_fusion.utils.kernels import sobel
from monai_fusion.utils.paths import DATASET_ROOT_ENV, dataset_root


def test_sobel_of_a_ramp_and_its_padding() -> None:
    ramp = torch.arange(8.0).repeat(8, 1)[None, None]  # increases by 1 along W
    gx, gy = sobel(ramp)
    assert torch.allclose(gx[..., 1:-1], torch.full_like(gx[..., 1:-1], 8.0))  # 2 * (1 + 2 + 1)
    assert torch.count_nonzero(gy) == 0
    assert torch.all(sobel(ramp)[0][..., 0] == 0)  # reflection: the mirrored column cancels the edge
    assert torch.all(sobel(ramp, padding="replicate")[0][..., 0] == 4)
    # zeros outside: the corners lose the row beyond the image too (as scipy.signal.convolve2d(mode="same"))
    assert sobel(ramp, padding="zeros")[0][0, 0, :, 0].tolist() == [3.0] + [4.0] * 6 + [3.0]
    with pytest.raises(ValueError, match="padding='circular'"):
        sobel(ramp, padding="circular")


def test_the_gradient_loss_uses_the_metrics_sobel() -> None:
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for got, want in zip(sobel_gradients(x), sobel(x)):
        assert torch.equal(got, want)
    one = sobel(x[:, :1])
    assert torch.allclose(one[0], sobel(x)[0][:, :1], atol=1e-6)  # per channel, as for one channel alone


def test_soft_qabf_tracks_the_reported_qabf() -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.rand(1, 1, 32, 32, generator=g) * 255
    b = torch.rand(1, 1, 32, 32, generator=g) * 255
    fused = torch.maximum(a, b)
    reported = float(compute_metrics(fused, a, b, metrics=["Qabf"])["Qabf"][0])
    assert float(soft_qabf(fused, a, b)[0]) == pytest.approx(reported, abs=0.02)


def test_dataset_root_argument_then_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATASET_ROOT_ENV, raising=False)
    assert dataset_root() is None
    assert dataset_root(tmp_path) == tmp_path
    monkeypatch.setenv(DATASET_ROOT_ENV, str(tmp_path / "env"))
    assert dataset_root() == tmp_path / "env"
    assert dataset_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.setenv(DATASET_ROOT_ENV, "  ")
    assert dataset_root() is None
