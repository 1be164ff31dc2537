"""Property tests (hypothesis): value ranges, symmetry in the two sources, sum = 2 x mean."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monai_fusion.metrics import PROTOCOLS, compute_metrics

from .conftest import structured

SOURCE_METRICS = ["MI", "NMI", "FMI", "SSIM", "Qabf", "Nabf", "SCD", "CC", "VIF", "PSNR"]
RANGES = {
    "EN": (0, 8),
    "NMI": (0, 1),
    "FMI": (0, 1),
    "SSIM": (-1, 1),
    "Qabf": (0, 1),
    "Nabf": (0, 1),
    "SCD": (-2, 2),
    "CC": (-1, 1),
    "VIF": (0, float("inf")),
    "PSNR": (-100, 100),
    "MI": (0, 8),
}
SUM = dataclasses.replace(PROTOCOLS["standard"], name="standard-sum", combine="sum")

trios = st.tuples(
    st.integers(0, 10_000), st.integers(0, 10_000), st.floats(0.0, 1.0), st.floats(0.0, 60.0), st.integers(0, 10_000)
)


def _trio(seeds):
    sa, sb, w, noise, sn = seeds
    a, b = structured(sa, size=48), structured(sb, size=48)
    n = torch.randn(a.shape, generator=torch.Generator().manual_seed(sn), dtype=torch.float64)
    return (w * a + (1 - w) * b + noise * n).clamp(0, 255), a, b


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trios)
def test_ranges_and_symmetry_in_the_sources(seeds):
    f, a, b = _trio(seeds)
    vals = compute_metrics(f, a, b, ["EN", *SOURCE_METRICS])
    for key, (lo, hi) in RANGES.items():
        assert lo - 1e-9 <= vals[key].item() <= hi + 1e-9, (key, vals[key].item())
    swapped = compute_metrics(f, b, a, SOURCE_METRICS)
    for key in SOURCE_METRICS:
        assert swapped[key].item() == pytest.approx(vals[key].item(), abs=1e-9), key


@settings(max_examples=10, deadline=None)
@given(trios)
def test_sum_protocol_is_twice_the_mean_for_per_source_metrics(seeds):
    f, a, b = _trio(seeds)
    names = ["MI", "NMI", "FMI", "SSIM", "VIF"]
    mean, summ = compute_metrics(f, a, b, names), compute_metrics(f, a, b, names, protocol=SUM)
    for key in names:
        assert summ[key].item() == pytest.approx(2 * mean[key].item(), abs=1e-9), key


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_average_fusion_adds_no_artefacts_and_batches_equal_single_images(sa, sb):
    a, b = structured(sa, size=48, n=2), structured(sb, size=48, n=2)
    f = (a + b) / 2
    batch = compute_metrics(f, a, b, ["Nabf", "MI", "FMI", "SSIM"])
    assert batch["Nabf"].abs().max().item() < 1e-9
    for i in range(2):
        one = compute_metrics(f[i : i + 1], a[i : i + 1], b[i : i + 1], ["MI", "FMI", "SSIM"])
        for key, val in one.items():
            assert val.item() == pytest.approx(batch[key][i].item(), abs=1e-12), key
