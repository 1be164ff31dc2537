"""Fixtures of the bundle tests: a copy of the bundle's configs, the embedded dataset, and a runner for
``python -m monai.bundle`` / ``torchrun`` with the tiny overrides that keep every run to seconds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pytest

from monai_fusion.data import write_demo_dataset

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "bundles" / "multimodal_fusion"

#: Overrides that shrink the real recipe (weight-map network, 128x128 patches, 30 epochs) to a smoke run.
NET = ["--network_def#channels", "8"]
#: The data side of a smoke run, shared by every training config: two iterations of two pairs, two validation pairs.
SMALL_RUN = [
    "--batch_size",
    "2",
    "--epoch_length",
    "2",
    "--max_train_pairs",
    "4",
    "--max_val_pairs",
    "2",
    "--val_batch_size",
    "2",
]
TINY = [
    *NET,
    "--patch_size",
    "[64, 64]",
    *SMALL_RUN,
    "--val_interval",
    "1",
    "--num_workers",
    "0",
    "--val_metrics",
    "['SSIM', 'Qabf']",
]


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded MNI152 MRI/PET pairs as a small PET-MRI dataset in the atlas layout."""
    return write_demo_dataset(tmp_path_factory.mktemp("demo") / "dataset")


def copy_bundle(dest: Path) -> Path:
    """Copy the bundle's configs (not models/ or eval/) to ``dest`` and return the new bundle folder."""
    shutil.copytree(BUNDLE / "configs", dest / "configs")
    return dest


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Path:
    """A fresh copy of the bundle, so runs write their models/ and eval/ under the test's tmp_path."""
    return copy_bundle(tmp_path / "multimodal_fusion")


def bundle_env() -> dict[str, str]:
    """The environment of the runs: one thread per process (two cores, small tensors), unbuffered output."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    return env


def run_bundle(
    args: Sequence[str], cwd: Path = ROOT, timeout: float = 300, launcher: Sequence[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m monai.bundle <args>`` (or ``launcher -m monai.bundle <args>``) and capture its output."""
    head = list(launcher) if launcher else [sys.executable]
    return subprocess.run(
        [*head, "-m", "monai.bundle", *map(str, args)],
        cwd=cwd,
        env=bundle_env(),
        text=True,
        encoding="utf-8",
        capture_output=True,
        timeout=timeout,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    """The run's stdout + stderr; fails the test with both when it did not exit 0."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


@pytest.fixture(scope="session")
def trained_demo_bundle(tmp_path_factory: pytest.TempPathFactory, demo_root: Path) -> tuple[Path, str]:
    """One tiny training run on the embedded data through the positional form, from the project root.

    Returns the bundle copy (with ``models/model.pt``) and the run's output.
    """
    bundle = copy_bundle(tmp_path_factory.mktemp("trained") / "multimodal_fusion")
    proc = run_bundle(
        [
            "run",
            "training",
            "--config_file",
            bundle / "configs" / "train.json",
            "--epochs",
            "2",
            "--dataset_dir",
            demo_root,
            *TINY,
        ]
    )
    return bundle, ok(proc)
