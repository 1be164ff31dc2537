"""VIF and FSIM against piq, PSNR against known MSEs under each protocol's peak."""

from __future__ import annotations

import math

import piq
import pytest

from monai_fusion.metrics import PSNR_LIMIT_DB, fsim, psnr, vif
from monai_fusion.metrics.perceptual import vif_per_source


def test_psnr_of_a_known_mse(images):
    a = images(0).clamp(0, 250)
    f = a + 5.0  # MSE 25 against both sources
    assert psnr(f, a, a).item() == pytest.approx(10 * math.log10(255.0**2 / 25.0), abs=1e-10)
    # 'sum': the CDDFuse script's peak is max(F)
    assert psnr(f, a, a, protocol="sum").item() == pytest.approx(10 * math.log10(float(f.max()) ** 2 / 25.0), abs=1e-10)
    # 'poster': mean of per-source PSNRs on [0, 1], peak = range of the source (torchmetrics data_range=None)
    b = a.flip(-1)
    mse_a, mse_b = 25.0 / 255**2, float(((f - b) ** 2).mean()) / 255**2
    rng = float(a.max() - a.min()) / 255
    expected = (10 * math.log10(rng**2 / mse_a) + 10 * math.log10(rng**2 / mse_b)) / 2
    assert psnr(f / 255, a / 255, b / 255, protocol="poster").item() == pytest.approx(expected, abs=1e-9)


def test_psnr_of_an_exact_copy_is_the_finite_limit(images):
    a = images(1)
    assert psnr(a, a, a).item() == PSNR_LIMIT_DB


def test_vif_is_piqs_pixel_vif(images):
    a, b = images(2), images(3)
    f = (0.7 * a + 0.3 * b).clamp(0, 255)
    for src in (a, b):
        assert vif_per_source(f, src).item() == pytest.approx(float(piq.vif_p(f, src, data_range=255.0)), abs=1e-9)
    ref = float(piq.vif_p(f, a, data_range=255.0)) + float(piq.vif_p(f, b, data_range=255.0))
    assert vif(f, a, b, protocol="sum").item() == pytest.approx(ref, abs=1e-9)
    assert vif(f / 255, a / 255, b / 255, protocol="poster").item() == pytest.approx(ref / 2, abs=1e-9)
    assert vif(a, a, a).item() == pytest.approx(1.0, abs=1e-8)  # piq's EPS = 1e-8 in the ratio


def test_fsim_matches_piq(images):
    a, b = images(4), images(5)
    f = (a + b) / 2
    ref = [float(piq.fsim(f.float(), s.float(), data_range=255.0, chromatic=False)) for s in (a, b)]
    assert fsim(f, a, b).item() == pytest.approx(sum(ref) / 2, abs=1e-6)
    assert fsim(f, a, b, protocol="sum").item() == pytest.approx(sum(ref), abs=1e-6)
    assert fsim(a, a, a).item() == pytest.approx(1.0, abs=1e-6)
