"""`benchmarks/metric_frontier.py`: the per-image optimiser lowers its objective, and the summary counts clear wins."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest
import torch

from monai_fusion.data.quantise import WRITER_RULE
from monai_fusion.utils.errors import FusionInputError

M = ["MI", "FMI", "Qabf", "SSIM", "VIF", "FSIM", "SCD"]


@pytest.fixture(scope="module")
def script(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("metric_frontier")


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 48), torch.linspace(-1, 1, 48), indexing="ij")
    head = ((xx**2 + yy**2) < 0.8).float()
    a = (0.5 + 0.3 * torch.sin(6 * xx) + 0.05 * torch.rand(48, 48, generator=g)) * head
    b = (0.9 * ((xx - 0.3) ** 2 + yy**2 < 0.1).float() + 0.1 * torch.rand(48, 48, generator=g)) * head
    return a.clamp(0, 1)[None, None], b.clamp(0, 1)[None, None]


def _objective(script: ModuleType, fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor, targets: dict) -> float:
    m = script.differentiable_metrics(fused, a, b, 64, list(targets))
    return float(script.hinge_objective(m, targets))


def test_differentiable_metrics_read_as_the_benchmark_scores(script: ModuleType) -> None:
    from monai_fusion.metrics.registry import compute_metrics

    a, b = _pair()  # sources off the 8-bit grid (as a PET/SPECT luminance is): the benchmark scores them rounded
    a8, b8 = torch.round(a * 255), torch.round(b * 255)
    for fused in (a8 / 255, torch.maximum(a8, b8) / 255, torch.round((a8 + b8) / 2) / 255):  # 8-bit fusions
        soft = script.differentiable_metrics(fused, a, b)
        real = compute_metrics(fused * 255, a8, b8, metrics=list(script.OPTIMISED))
        for k in ("MI", "SSIM", "VIF", "SCD", "FMI"):  # the same quantity in the same units (MI: bits, mean of sources)
            assert float(soft[k]) == pytest.approx(float(real[k][0]), rel=2e-3, abs=2e-3), k
        assert float(soft["FSIM"]) == pytest.approx(float(real["FSIM"][0]), abs=1e-3)  # dithered by 0.001 grey level
        assert float(soft["Qabf"]) == pytest.approx(float(real["Qabf"][0]), abs=0.05)  # smoothed form


def test_fmi_and_fsim_forms_have_finite_gradients_on_a_black_background(script: ModuleType) -> None:
    a, b = _pair()  # a third of the image is black in both sources and in their maximum: zero variance, zero gradient
    for k in ("FMI", "FSIM"):
        fused = torch.maximum(a, b).clone()
        fused[..., 0, 0] = 1 / 255  # one new grey level in a black window: FMI's zero-variance window is computed
        fused.requires_grad_(True)
        script.differentiable_metrics(fused, a, b, metrics=[k])[k].backward()
        assert fused.grad is not None and bool(torch.isfinite(fused.grad).all()), k
        assert float(fused.grad.abs().sum()) > 0, k
    with pytest.raises(FusionInputError, match="no differentiable form"):
        script.differentiable_metrics(a, a, b, metrics=["PSNR"])


def test_fmi_and_fsim_see_the_rounded_image_and_pass_its_gradient(script: ModuleType) -> None:
    a, b = (torch.round(x * 255) / 255 for x in _pair())
    eight = torch.maximum(a, b)
    residual = eight + 0.3 / 255 * b  # below half a grey level: the written image is the 8-bit one
    for k in ("FMI", "FSIM"):
        assert float(script.differentiable_metrics(residual, a, b, metrics=[k])[k]) == pytest.approx(
            float(script.differentiable_metrics(eight, a, b, metrics=[k])[k]), abs=1e-9
        ), k
    y = residual.clone().requires_grad_(True)
    from monai_fusion.losses import round_straight_through

    r = round_straight_through(y)
    assert torch.equal(r.detach(), eight) and torch.autograd.grad(r.sum(), y)[0].eq(1).all()


def test_hinge_targets_carry_the_real_gap_from_the_start(script: ModuleType) -> None:
    start = {k: 1.0 for k in script.OPTIMISED}
    real = {k: 2.0 for k in script.OPTIMISED}
    best = {k: 2.5 for k in script.OPTIMISED}
    t = script.hinge_targets(start, real, best)
    assert t == {k: 1.5 + script.MARGIN[k] for k in script.OPTIMISED}


def test_per_margin_weighs_a_shortfall_in_margins(script: ModuleType) -> None:
    # the same shortfall of 0.01 below target: per margin FMI's hinge counts MARGIN["MI"] / MARGIN["FMI"] times as
    # much, relative to MI's, as it does in the metric's units; a metric well above its target counts for almost nothing
    targets = {"MI": 1.0, "FMI": 1.0}
    short = {k: torch.tensor(0.99) for k in targets}
    plain = {k: float(script.hinge_objective({k: short[k]}, {k: targets[k]})) for k in targets}
    weighed = {k: float(script.hinge_objective({k: short[k]}, {k: targets[k]}, per_margin=True)) for k in targets}
    assert weighed["FMI"] / weighed["MI"] == pytest.approx(
        plain["FMI"] / plain["MI"] * script.MARGIN["MI"] / script.MARGIN["FMI"]
    )
    above = float(script.hinge_objective({"FMI": torch.tensor(1.1)}, {"FMI": 1.0}, per_margin=True))
    assert above < 1e-6 < weighed["FMI"]


@pytest.mark.parametrize("metrics", [("MI", "Qabf", "SSIM", "VIF", "SCD"), ("FSIM",)])
def test_frontier_fusion_lowers_the_hinge_objective_from_the_maximum_rule(script: ModuleType, metrics: tuple) -> None:
    torch.manual_seed(0)
    a, b = _pair()
    start = torch.maximum(a, b)
    with torch.no_grad():
        d = {k: float(v) for k, v in script.differentiable_metrics(start, a, b, 64, metrics).items()}
    targets = {k: v + 0.05 for k, v in d.items()}  # every metric asked above the start
    fused = script.frontier_fusion(a, b, targets, iters=40, mi_bins=64, metrics=metrics)
    assert fused.shape == a.shape and 0 <= float(fused.min()) and float(fused.max()) <= 1
    assert _objective(script, fused, a, b, targets) < 0.9 * _objective(script, start, a, b, targets)
    assert float(fused[(a == 0) & (b == 0)].abs().max()) == 0  # the background stays black
    mean = (a + b) / 2  # another start: one step stays near it, not near the maximum rule
    near = script.frontier_fusion(a, b, targets, iters=1, mi_bins=64, start=mean, metrics=metrics)
    assert float((near - mean).abs().max()) < 0.03 < float((near - start).abs().max())


def test_frontier_fusion_refuses_missing_targets_and_bad_shapes(script: ModuleType) -> None:
    a, b = _pair()
    with pytest.raises(FusionInputError, match="targets lack"):
        script.frontier_fusion(a, b, {"MI": 1.0}, iters=1)
    with pytest.raises(FusionInputError, match=r"\(1, 1, H, W\)"):
        script.frontier_fusion(a[0], b[0], {k: 0.0 for k in script.OPTIMISED}, iters=1)


def test_summary_counts_clear_wins_on_the_frontier_pairs_only(script: ModuleType) -> None:
    def row(method: str, name: str, fold: int, value: float) -> dict:
        return {"pair_type": "CT-MRI", "name": name, "method": method, "fold": fold, **{k: value for k in M}}

    names = [(f"p{i}", i % 4) for i in range(8)]
    base = [
        row(m, n, f, v + 0.01 * f) for n, f in names for m, v in (("max", 0.5), ("average", 0.4), ("default", 0.55))
    ]
    base += [row("max", f"q{f}", f, 9.0) for f in range(4)]  # pairs the frontier did not fuse: left out of the tables
    ours = [row("frontier", n, f, 0.6 + 0.01 * f) for n, f in names]
    lines = script.summary_lines(ours, base)
    frontier = next(line for line in lines if "| frontier |" in line)
    default = next(line for line in lines if "| default |" in line)
    assert "| 7 / 7 |" in frontier and frontier.count("vs max") == 7  # the default model is not among the others
    assert "| 7 / 7 |" in default and "frontier" not in default  # nor the frontier among the default model's


def test_summary_refuses_a_pair_given_twice(script: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    head = "pair_type,name,case,method,scored_on,writer,fold," + ",".join(M)
    line = f"CT-MRI,1,c,frontier,written,{WRITER_RULE},0," + ",".join(["0.5"] * 7)
    path.write_text(head + "\n" + "\n".join([line] * 2) + "\n")
    with pytest.raises(FusionInputError, match="appears twice"):
        script.main(["--summary", str(path), "--baselines", str(path)])


def test_rows_of_another_writer_rule_are_refused(script: ModuleType, tmp_path: Path) -> None:
    """Frontier and baseline rows are compared only when both scored files written by today's rule."""
    path = tmp_path / "rows.csv"
    head = "pair_type,name,case,method,scored_on,writer,fold," + ",".join(M)
    path.write_text(head + f"\nCT-MRI,1,c,frontier,written,{WRITER_RULE},0," + ",".join(["0.5"] * 7) + "\n")
    for name, scored, writer, message in (
        ("old.csv", "written", "", r"scored_on written and writer \(none recorded\)"),  # before the rule was recorded
        ("lum.csv", "luminance", "", "scored_on luminance"),
        ("other.csv", "written", "per-channel", "writer per-channel"),
    ):
        base = tmp_path / name
        base.write_text(head + f"\nCT-MRI,1,c,max,{scored},{writer},0," + ",".join(["0.4"] * 7) + "\n")
        with pytest.raises(FusionInputError, match=f"{name}: method max on pair CT-MRI 1 .*{message}"):
            script.main(["--summary", str(path), "--baselines", str(base)])
        with pytest.raises(FusionInputError, match=message):
            script._baselines(base)
    with pytest.raises(FusionInputError, match="monai-fusion benchmark --cv 4 --score-on written"):
        script.main(["--summary", str(path), "--baselines", str(base)])  # the baselines: rescore them
    with pytest.raises(FusionInputError, match="run this script again"):  # the frontier's own rows: rerun it
        script.main(["--summary", str(base), "--baselines", str(path)])
    base.write_text(head + f"\nCT-MRI,1,c,max,written,{WRITER_RULE},0," + ",".join(["0.4"] * 7) + "\n")
    assert script._baselines(base)[("CT-MRI", "1")]["max"]["MI"] == 0.4
