"""A training run killed mid-epoch resumes from its last checkpoint; two-process DDP training (gloo on CPU)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from monai_fusion.networks.nets.weight_map import WeightMapFusionNet

from .conftest import TINY, bundle_env, ok, run_bundle

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [0])
def test_killed_mid_epoch_resumes_without_losing_epochs(bundle_copy: Path, demo_root: Path, seed: int) -> None:
    """SIGKILL at a seeded random iteration of epochs 2-3; the rerun resumes after the last completed epoch."""
    epoch, it = random.Random(seed).choice([(e, i) for e in (2, 3) for i in (1, 2, 3) if (e, i) != (3, 3)])
    args = [
        "run",
        "training",
        "--config_file",
        "configs/train.json",
        "--epochs",
        "3",
        "--dataset_dir",
        demo_root,
        *TINY,
        "--epoch_length",
        "3",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "monai.bundle", *map(str, args)],
        cwd=bundle_copy,
        env=bundle_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
    )
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if f"Epoch: {epoch}/3, Iter: {it}/3" in line:  # epoch - 1 and its checkpoint are done, epoch is under way
            proc.kill()
            break
    proc.wait(timeout=60)
    assert proc.returncode == -9, "".join(seen)[-4000:]
    last = bundle_copy / "models" / "checkpoint_last.pt"
    done = epoch - 1
    assert dict(torch.load(last, weights_only=True)["trainer"])["iteration"] == 3 * done  # whole epochs only
    assert not list((bundle_copy / "models").glob("tmp*"))  # no half-written file left behind

    out = ok(run_bundle(args, cwd=bundle_copy))
    assert f"Restored all variables from {last} (epoch {done} done)" in out
    assert f"Epoch: {done}/3" not in out and f"Epoch: {epoch}/3, Iter: 1/3" in out and "Epoch: 3/3, Iter: 3/3" in out
    ckpt = torch.load(last, weights_only=True)
    assert dict(ckpt["trainer"]) == {"epoch_length": 3, "iteration": 9, "max_epochs": 3}  # the same 3 epochs
    assert len(ckpt["best_model_ranking"]["_saved"]) == 1  # one best model across both runs


def test_torchrun_two_processes(bundle_copy: Path, demo_root: Path) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2"]
    out = ok(
        run_bundle(
            [
                "run",
                "--config_file",
                "['configs/train.json','configs/multi_gpu_train.json']",
                "--epochs",
                "1",
                "--dataset_dir",
                demo_root,
                *TINY,
            ],
            cwd=bundle_copy,
            launcher=launcher,
        )
    )
    assert "backend gloo, rank 0 of 2, device cpu" in out and "backend gloo, rank 1 of 2, device cpu" in out
    # rank 0 alone writes: checkpoint_last.pt and model.pt (train#saver and train#model_saver log once each)
    assert out.count("Saved checkpoint at epoch: 1") == 2
    state = torch.load(bundle_copy / "models" / "model.pt", weights_only=True)
    net = WeightMapFusionNet(channels=8)
    assert set(state) == set(net.state_dict())  # the unwrapped network, not DDP's "module." keys
    ckpt = torch.load(bundle_copy / "models" / "checkpoint_last.pt", weights_only=True)
    assert dict(ckpt["trainer"])["iteration"] == 2
