"""Sensible relations on real Whole Brain Atlas pairs, and why the poster's entropy exceeds 8 bits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from monai_fusion.metrics import DEFAULT_METRICS, METRICS, compute_metrics, entropy

pytestmark = pytest.mark.shared_data


@pytest.mark.parametrize("pair", ["CT-MRI", "PET-MRI"])
def test_average_fusion_beats_a_noise_image(real_pairs, pair):
    a, b = real_pairs[pair]
    avg = (a + b) / 2
    noise = torch.rand(a.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 255
    good, bad = compute_metrics(avg, a, b), compute_metrics(noise, a, b)
    for name in DEFAULT_METRICS:
        if not METRICS[name].needs_sources:
            continue
        if METRICS[name].higher_is_better:
            assert good[name].item() > bad[name].item(), name
        else:
            assert good[name].item() < bad[name].item(), name
    assert good["Nabf"].item() == pytest.approx(0.0, abs=1e-12)
    # a no-reference metric rewards noise: EN of uniform noise is close to 8 bits
    assert bad["EN"].item() > 7.9 > good["EN"].item()


def test_float_entropy_explains_the_posters_9_887(real_pairs):
    a, b = (t / 255 for t in real_pairs["CT-MRI"])
    g = torch.Generator().manual_seed(1)
    # a network-like output: a smooth blend plus decoder jitter, clamped to [0, 1], kept as float32
    w = F.interpolate(torch.rand(1, 1, 4, 4, generator=g, dtype=torch.float64), size=a.shape[-2:], mode="bilinear")
    fused = (w * a + (1 - w) * b + 0.01 * torch.randn(a.shape, generator=g, dtype=torch.float64)).clamp(0, 1).float()
    float_en = entropy(fused, protocol="poster").item()
    eight_bit_en = entropy(fused * 255).item()
    assert float_en > 8.0 >= eight_bit_en  # impossible for an 8-bit image, yet what shannon_entropy(float) gives
    # saved as an 8-bit PNG, the same image has at most 8 bits under the poster's estimator too
    assert entropy(torch.round(fused * 255) / 255, protocol="poster").item() == pytest.approx(eight_bit_en, abs=1e-9)
