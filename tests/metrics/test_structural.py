"""SSIM, MS-SSIM, Qabf, Nabf, SCD and CC against scikit-image, piq and closed forms."""

from __future__ import annotations

import math

import piq
import pytest
import torch
from skimage.metrics import structural_similarity

from monai_fusion.metrics import correlation_coefficient, ms_ssim, nabf, qabf, scd, ssim


def _sig(v: float, gamma: float, kappa: float, sigma: float) -> float:
    return gamma / (1 + math.exp(kappa * (v - sigma)))


Q_ALPHA_1 = _sig(1.0, 0.9879, -22.0, 0.8)  # orientation preserved exactly


def test_ssim_of_identical_images_is_one(images):
    a = images(0)
    for proto in ("standard", "poster"):
        scale = 1.0 if proto == "standard" else 1 / 255
        assert ssim(a * scale, a * scale, a * scale, protocol=proto).item() == pytest.approx(1.0, abs=1e-12)
    assert ssim(a, a, a, protocol="sum").item() == pytest.approx(2.0, abs=1e-12)


def test_ssim_matches_scikit_image_gaussian_window(images):
    a, b = images(1), images(2)
    f = 0.6 * a + 0.4 * b
    ref = [
        structural_similarity(
            s[0, 0].numpy(),
            f[0, 0].numpy(),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255.0,
        )
        for s in (a, b)
    ]
    assert ssim(f, a, b).item() == pytest.approx(sum(ref) / 2, abs=1e-12)


def test_sum_protocol_ssim_is_the_scripts_skimage_default_call(images):
    a, b = images(3), images(4)
    f = 0.5 * a + 0.5 * b
    # the CDDFuse script: structural_similarity(F, X) on float images, skimage 0.19 took data_range=2
    ref = [structural_similarity(f[0, 0].numpy(), s[0, 0].numpy(), data_range=2.0) for s in (a, b)]
    assert ssim(f, a, b, protocol="sum").item() == pytest.approx(sum(ref), abs=1e-12)


def test_ms_ssim_is_piqs_per_source(images):
    a, b = images(5, size=192), images(6, size=192)
    f = (a + b) / 2
    ref = [float(piq.multi_scale_ssim(f.float(), s.float(), data_range=255.0)) for s in (a, b)]
    assert ms_ssim(f, a, b).item() == pytest.approx(sum(ref) / 2, abs=1e-6)
    assert ms_ssim(a, a, a).item() == pytest.approx(1.0, abs=1e-6)


def _step_pair(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.zeros(1, 1, size, size, dtype=torch.float64)
    a[..., size // 2 :] = 200.0  # vertical step edge
    return a, torch.full_like(a, 100.0)  # B has no edges: only A's edges weigh


@pytest.mark.parametrize("k", [1.0, 0.5, 0.25])
def test_qabf_closed_form_for_a_scaled_step_edge(k):
    a, b = _step_pair()
    # same orientation, edge strength ratio k: Q = Q_g(k) Q_alpha(1) at every weighted pixel
    expected = _sig(k, 0.9994, -15.0, 0.5) * Q_ALPHA_1
    assert qabf(k * a, a, b).item() == pytest.approx(expected, abs=1e-12)


def test_qabf_closed_forms_for_a_flat_fused_image_and_the_script_variant():
    a, b = _step_pair()
    # F flat: strength ratio 0, orientation difference 0 (flat F counts angle 0 like A's vertical edge)
    assert qabf(b, a, b).item() == pytest.approx(_sig(0.0, 0.9994, -15.0, 0.5) * Q_ALPHA_1, abs=1e-15)
    # the CDDFuse script sets the ratio to g_F (not 1) where g_A == g_F: Q_g saturates at 0.9994;
    # its zero border makes the frame of a non-zero image an edge, so B is 0 here
    assert qabf(a, a, torch.zeros_like(a), protocol="sum").item() == pytest.approx(0.9994 * Q_ALPHA_1, abs=1e-12)
    assert qabf(a, a, b, protocol="sum").item() < 0.8  # B's frame edges are missing from F


def test_qabf_ranks_the_average_above_noise(images):
    a, b = images(7), images(8)
    noise = torch.rand(a.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 255
    v_avg, v_noise = qabf((a + b) / 2, a, b).item(), qabf(noise, a, b).item()
    assert 0.0 <= v_noise < v_avg <= 1.0


def test_nabf_is_zero_without_new_edges_and_positive_for_artefacts(images):
    a, b = images(9), images(10)
    # Sobel is linear: |grad((A + B) / 2)| <= max(|grad A|, |grad B|), so the average adds no edge
    assert nabf((a + b) / 2, a, b).item() == pytest.approx(0.0, abs=1e-12)
    assert nabf(a, a, torch.full_like(a, 50.0)).item() == 0.0
    noisy = (a + 40 * torch.randn(a.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)).clamp(
        0, 255
    )
    val = nabf(noisy, a, b).item()
    assert 0.01 < val <= 1.0


def _orthogonal_sources(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    i, j = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    checker = (-1.0) ** (i + j)
    stripes = (-1.0) ** i  # zero mean, zero covariance with the checkerboard, same variance
    return (60 + 30 * checker).double().view(1, 1, size, size), (60 + 30 * stripes).double().view(1, 1, size, size)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.3, 0.7), (1.0, 1.0)])
def test_scd_and_cc_of_linear_combinations(alpha, beta):
    a, b = _orthogonal_sources()
    f = alpha * a + beta * b
    norm = math.hypot(alpha, beta)
    assert correlation_coefficient(f, a, b).item() == pytest.approx((alpha + beta) / norm / 2, abs=1e-12)
    # corr(F - B, A) + corr(F - A, B) with orthogonal unit-variance parts
    expected = alpha / math.hypot(alpha, beta - 1) + (
        beta / math.hypot(alpha - 1, beta) if (alpha, beta) != (1.0, 0.0) else 0.0
    )
    assert scd(f, a, b).item() == pytest.approx(expected, abs=1e-12)


def test_scd_of_the_sum_of_the_sources_is_two(images):
    a, b = images(11) / 2, images(12) / 2
    assert scd(a + b, a, b).item() == pytest.approx(2.0, abs=1e-12)
