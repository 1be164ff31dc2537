"""MONAI integration: cumulative metrics, decollated lists, Ignite handlers in a SupervisedEvaluator."""

from __future__ import annotations

import pytest
import torch
from monai.engines import SupervisedEvaluator
from monai.handlers import from_engine

from monai_fusion.handlers import FusionMetricHandler, FusionMetricsHandler
from monai_fusion.metrics import (
    DEFAULT_METRICS,
    FusionMetric,
    FusionMetrics,
    compute_metrics,
    pack_sources,
    resolve_metrics,
)
from monai_fusion.utils import FusionInputError

NAMES = ["EN", "MI", "SSIM", "Qabf", "CC"]


def test_cumulative_metrics_buffer_per_image_values(images):
    a, b = images(0, n=3), images(1, n=3)
    f = (a + b) / 2
    direct = compute_metrics(f, a, b, NAMES)
    fm = FusionMetrics(NAMES)
    out = fm(y_pred=f[:2], y=pack_sources(a[:2], b[:2]))
    assert out.shape == (2, len(NAMES))
    # decollated lists of channel-first tensors, as MONAI evaluators hand them over
    fm(y_pred=[f[2]], y=[pack_sources(a, b)[2]])
    per = fm.per_image()
    for name in NAMES:
        assert per[name] == pytest.approx(direct[name].tolist(), abs=1e-12)
        assert fm.aggregate()[name] == pytest.approx(direct[name].mean().item(), abs=1e-12)
        assert fm.summary()[name][1] == pytest.approx(direct[name].std().item(), abs=1e-12)
    fm.reset()
    with pytest.raises(ValueError, match="no values yet"):
        fm.aggregate()


def test_metric_names_resolve_case_insensitively():
    assert resolve_metrics("ms-ssim, qabf,fmi_W") == ("MS_SSIM", "Qabf", "FMI_w")
    assert resolve_metrics(None) == resolve_metrics("all") == DEFAULT_METRICS and len(DEFAULT_METRICS) == 16
    with pytest.raises(FusionInputError, match="distinct metrics"):
        resolve_metrics(["SSIM", "ssim"])


def test_single_metric_aggregates_to_a_tensor(images):
    a, b = images(2, n=2), images(3, n=2)
    m = FusionMetric("ssim")
    m(y_pred=a, y=pack_sources(a, b))
    expected = compute_metrics(a, a, b, ["SSIM"])["SSIM"].mean()
    assert (
        m.name == "SSIM" and torch.is_tensor(m.aggregate()) and m.aggregate().item() == pytest.approx(expected.item())
    )
    with pytest.raises(FusionInputError, match="one metric name"):
        FusionMetric("SSIM,MI")


class _AverageNet(torch.nn.Module):
    """A fusion 'network': the mean of its two input channels (MRI, other)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1, keepdim=True)


def test_handlers_in_a_supervised_evaluator(images):
    a, b = images(4, n=4).float(), images(5, n=4).float()
    y = pack_sources(a, b)
    data = [{"image": y[i], "label": y[i]} for i in range(4)]
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader,
        network=_AverageNet(),
        key_val_metric={"val_ssim": FusionMetricHandler("SSIM", output_transform=from_engine(["pred", "label"]))},
        additional_metrics={
            "fusion": FusionMetricsHandler(NAMES, prefix="val_", output_transform=from_engine(["pred", "label"]))
        },
    )
    evaluator.run()
    direct = compute_metrics((a + b) / 2, a, b, NAMES)
    metrics = evaluator.state.metrics
    assert metrics["val_ssim"] == pytest.approx(direct["SSIM"].mean().item(), abs=1e-6)
    for name in NAMES:
        assert metrics[f"val_{name}"] == pytest.approx(direct[name].mean().item(), abs=1e-6)
        assert evaluator.state.metric_details["fusion"][name] == pytest.approx(direct[name].tolist(), abs=1e-6)
    assert evaluator.state.metric_details["val_ssim"].shape == (4, 1)
