"""Bad input gives a clear FusionInputError; degenerate (constant) input gives documented finite values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_fusion.metrics import DEFAULT_METRICS, METRICS, FusionMetrics, compute_metrics, ms_ssim, ssim, vif
from monai_fusion.metrics.registry import MetricSpec
from monai_fusion.utils import FusionInputError


@pytest.fixture
def trio(images):
    a, b = images(0), images(1)
    return (a + b) / 2, a, b


@pytest.mark.parametrize(
    "case,match",
    [
        ("shape", "differs from the fused image"),
        ("channels", r"expected shape \(B, 1, H, W\)"),
        ("rank", r"expected shape \(B, 1, H, W\)"),
        ("dtype", "not floating point"),
        ("numpy", "expected a torch.Tensor"),
        ("nan", "NaN/Inf"),
        ("range", r"outside protocol 'standard'.s range \[0, 255\]"),
        ("unit_range", r"lie in \[0, 1\] but protocol 'standard' expects \[0, 255\]"),
    ],
)
def test_bad_inputs_raise_a_clear_error(trio, case, match):
    f, a, b = trio
    if case == "shape":
        b = b[..., :-1]
    elif case == "channels":
        a = a.repeat(1, 3, 1, 1)
    elif case == "rank":
        a = a[0]
    elif case == "dtype":
        a = a.to(torch.uint8)
    elif case == "numpy":
        a = a.numpy()
    elif case == "nan":
        f = f.clone()
        f[0, 0, 3, 3] = float("nan")
    elif case == "range":
        f = f + 100.0
    elif case == "unit_range":
        f, a, b = f / 255, a / 255, b / 255
    with pytest.raises(FusionInputError, match=match):
        compute_metrics(f, a, b, ["SSIM"])


def test_poster_range_and_sources_are_checked(trio):
    f, a, b = trio
    with pytest.raises(FusionInputError, match=r"outside protocol 'poster'.s range \[0, 1\]"):
        compute_metrics(f, a, b, ["MI"], protocol="poster")
    with pytest.raises(FusionInputError, match="give both sources"):
        compute_metrics(f, a, None, ["MI"])
    with pytest.raises(FusionInputError, match="MI compares the fused image with its sources"):
        compute_metrics(f, metrics=["EN", "MI"])
    assert set(compute_metrics(f, metrics=["EN", "SD"])) == {"EN", "SD"}


def test_unknown_metric_and_too_small_images(trio, images):
    f, a, b = trio
    with pytest.raises(FusionInputError, match="unknown fusion metric 'SIMM'"):
        compute_metrics(f, a, b, ["SIMM"])
    with pytest.raises(FusionInputError, match="MS-SSIM .* at least 161x161"):
        ms_ssim(f, a, b)
    small = images(2, size=32)
    with pytest.raises(FusionInputError, match="at least 41x41"):
        vif(small, small, small)
    with pytest.raises(FusionInputError, match="at least that size"):
        ssim(small[..., :8, :8], small[..., :8, :8], small[..., :8, :8])
    with pytest.raises(FusionInputError, match=r"y = torch.cat\(\[A, B\], dim=1\)"):
        FusionMetrics(["SSIM"])(y_pred=f, y=a)


def test_constant_images_give_documented_finite_values():
    f = torch.full((1, 1, 200, 200), 90.0, dtype=torch.float64)
    a, b = torch.full_like(f, 30.0), torch.full_like(f, 200.0)
    vals = {k: v.item() for k, v in compute_metrics(f, a, b, DEFAULT_METRICS).items()}
    assert all(np.isfinite(v) for v in vals.values())
    for key in ("EN", "SD", "SF", "AG", "MI", "NMI", "FMI", "Qabf", "Nabf", "SCD", "CC"):
        assert vals[key] == 0.0, key
    assert vals["VIF"] == pytest.approx(1.0)  # a constant reference has nothing to lose (as piq and the script)
    assert 0.0 <= vals["FSIM"] <= 1.0 and 0.0 < vals["SSIM"] < 1.0
    assert vals["PSNR"] == pytest.approx(10 * np.log10(255.0**2 / ((60.0**2 + 110.0**2) / 2)))
    same = compute_metrics(a, a, a, ["FMI", "SSIM", "NMI", "PSNR"])
    assert [same[k].item() for k in ("FMI", "SSIM", "NMI", "PSNR")] == [1.0, 1.0, 0.0, 100.0]


def test_a_nan_from_a_metric_is_never_passed_on(trio, monkeypatch):
    f, a, b = trio
    monkeypatch.setitem(METRICS, "SSIM", MetricSpec("SSIM", lambda x: torch.tensor([float("nan")])))
    with pytest.raises(FusionInputError, match=r"SSIM is undefined \(NaN/Inf\) for batch item\(s\) \[0\]"):
        compute_metrics(f, a, b, ["SSIM"])
