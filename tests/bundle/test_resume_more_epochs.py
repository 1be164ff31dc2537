"""A finished run resumed with more ``--epochs`` trains every new epoch on an extended cosine schedule, and the
best-metric record of the epochs before the resume survives it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from .conftest import TINY, ok, run_bundle


def _train(bundle: Path, demo_root: Path, epochs: int) -> str:
    args = ["run", "training", "--config_file", "configs/train.json", "--epochs", str(epochs)]
    return ok(run_bundle([*args, "--dataset_dir", demo_root, *TINY], cwd=bundle))


def _epoch_ssim(out: str) -> dict[int, float]:
    """SSIM of every validated epoch, from the evaluator's epoch metric lines (4 decimals)."""
    return {int(e): float(v) for e, v in re.findall(r"Epoch\[(\d+)\] Metrics -- .*?SSIM: ([0-9.]+)", out)}


@pytest.mark.slow
def test_resume_with_more_epochs_extends_the_schedule_and_keeps_the_best(bundle_copy: Path, demo_root: Path) -> None:
    first = _train(bundle_copy, demo_root, 2)
    last = bundle_copy / "models" / "checkpoint_last.pt"
    ckpt2 = torch.load(last, weights_only=True)
    lrs = [float(v) for v in re.findall(r"Current learning rate: ([0-9.e-]+)", first)]
    assert lrs[-1] == 0.0  # the two-epoch cosine ends at its minimum
    best2 = ckpt2["best_metric"]
    assert best2["best_metric"] == pytest.approx(max(_epoch_ssim(first).values()), abs=1e-4)

    second = _train(bundle_copy, demo_root, 3)
    assert "Restored all variables" in second and "(epoch 2 done)" in second
    assert "cosine schedule extended from T_max 2 to 3 after 2 epochs; learning rate now 0.00075" in second
    assert "Epoch: 3/3" in second
    ckpt3 = torch.load(last, weights_only=True)
    assert ckpt3["lr_scheduler"]["T_max"] == 3
    changed = [k for k in ckpt3["model"] if not torch.equal(ckpt3["model"][k], ckpt2["model"][k])]
    assert changed, "epoch 3 left every weight as epoch 2 had it"
    epoch3 = _epoch_ssim(second)[3]
    best3 = ckpt3["best_metric"]
    # the record is the best of all three epochs, not of the resumed run alone
    if epoch3 > best2["best_metric"] + 1e-4:
        assert best3["best_metric_epoch"] == 3
        assert "Got new best metric" in second
    elif epoch3 < best2["best_metric"] - 1e-4:
        assert best3 == best2
        assert "Got new best metric" not in second
    assert best3["best_metric"] >= best2["best_metric"]


def test_best_metric_state_round_trips_through_the_evaluator() -> None:
    from monai.engines import SupervisedEvaluator

    from monai_fusion.handlers import BestMetricState

    net = torch.nn.Conv2d(2, 1, 1)
    ev = SupervisedEvaluator(device=torch.device("cpu"), val_data_loader=[], network=net, epoch_length=1)
    record = BestMetricState(ev)
    assert record.state_dict() == {"best_metric": -1.0, "best_metric_epoch": -1}
    record.load_state_dict({"best_metric": 0.9, "best_metric_epoch": 1})
    assert (ev.state.best_metric, ev.state.best_metric_epoch) == (0.9, 1)
    assert BestMetricState(ev).state_dict() == {"best_metric": 0.9, "best_metric_epoch": 1}
