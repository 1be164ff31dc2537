"""Crash safety: a killed CLI run leaves no output file that looks complete; checkpoints are never half written.

The kill points are drawn from seeded generators, so a failure replays. Training killed with SIGKILL and
resumed is in ``tests/bundle/test_resume_and_distributed.py`` (seeded random kill point).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

from monai_fusion.cli import fuse_folder
from monai_fusion.handlers import AtomicDiskSaver
from monai_fusion.networks import save_checkpoint
from monai_fusion.networks.nets.poster import PosterFusionNet

from .conftest import atlas, files_under, save_nifti, volume


def _start(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.Popen(
        [sys.executable, "-m", "monai_fusion.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 120) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()``; False when it ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("the run neither reached the kill point nor ended")


def _staged(parent: Path, name: str) -> int:
    return sum(len(files_under(p)) for p in parent.glob(f".{name}.part*"))


@pytest.mark.parametrize("seed", [0])
def test_fuse_pairs_killed_midway_leaves_no_output(seed: int, tmp_path: Path, record: Callable[..., None]) -> None:
    n = 30
    root = atlas(tmp_path / "pairs", tuple(f"{1000 + i}" for i in range(n)), size=64)
    kill_after = random.Random(seed).randint(1, n - 5)
    out = tmp_path / "fused"
    proc = _start(["fuse", "--pairs", str(root), "-o", str(out), "--method", "laplacian", "--register"], tmp_path)
    assert _kill_when(proc, lambda: _staged(tmp_path, "fused") >= kill_after), "finished before the kill point"
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # nothing under the final name: every image is still in the hidden staging folder
    staged = _staged(tmp_path, "fused")
    assert staged >= kill_after
    # a rerun completes; the killed run's hidden folder never holds a file under a final name
    assert len(fuse_folder(str(root), str(out), method="average")) == n
    assert len(files_under(out)) == n
    record(
        "crash",
        id=f"fuse-pairs-sigkill-seed{seed}",
        what=f"fuse --pairs ({n} pairs) killed after {staged} staged "
        f"images (seeded point {kill_after}): no file under {out.name}/; rerun wrote all {n}",
    )


def test_fuse_volume_to_dicom_killed_midway(tmp_path: Path, record: Callable[..., None]) -> None:
    shape = (48, 40, 160)
    mri = save_nifti(tmp_path / "mri.nii.gz", volume(shape))
    pet = save_nifti(tmp_path / "pet.nii.gz", volume(shape, 1))
    kill_after = random.Random(2).randint(5, 120)
    dcm, nii = tmp_path / "fused_dicom", tmp_path / "fused.nii.gz"
    proc = _start(
        [
            "fuse",
            str(mri),
            str(pet),
            "--dicom-out",
            str(dcm),
            "-o",
            str(nii),
            "--no-register",
            "--no-progress",
            "--method",
            "average",
            "--modality",
            "pet",
        ],
        tmp_path,
    )
    assert _kill_when(proc, lambda: _staged(tmp_path, "fused_dicom") >= kill_after), "finished before the kill point"
    staged = _staged(tmp_path, "fused_dicom")
    assert not dcm.exists() and not nii.exists()  # neither output exists under its final name
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".dcm", ".nii", ".nii.gz")) and p not in (mri, pet)]
    record(
        "crash",
        id="fuse-volume-dicom-sigkill",
        what=f"fuse --dicom-out ({shape[2]} slices) killed after {staged} "
        f"slices staged (seeded point {kill_after}): no {dcm.name}/ and no {nii.name}",
    )


def test_checkpoint_write_interrupted_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: Callable[..., None]
) -> None:
    net = PosterFusionNet(channels=8, decoder_channels=(8, 8))
    target = save_checkpoint(net, tmp_path / "model.pt")
    before = target.read_bytes()
    real_save = torch.save

    def crash(obj: object, f: object, *a: object, **k: object) -> None:  # dies half-way through writing
        partial = before[: len(before) // 2]
        if hasattr(f, "write"):
            f.write(partial)  # type: ignore[union-attr]
        else:
            Path(f).write_bytes(partial)  # type: ignore[arg-type]
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", crash)
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(net, target)
    saver = AtomicDiskSaver(tmp_path / "ignite")
    monkeypatch.setattr(torch, "save", real_save)
    saver({"model": net.state_dict()}, "checkpoint_last.pt")
    last = (tmp_path / "ignite" / "checkpoint_last.pt").read_bytes()
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        saver({"model": PosterFusionNet(channels=8, decoder_channels=(8, 8)).state_dict()}, "checkpoint_last.pt")
    assert target.read_bytes() == before and (tmp_path / "ignite" / "checkpoint_last.pt").read_bytes() == last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ignite", "model.pt"]  # no temporary under a final name
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.load(target, weights_only=True)["config"]["channels"] == 8
    record(
        "crash",
        id="checkpoint-interrupted-write",
        what="save_checkpoint and AtomicDiskSaver interrupted mid-write: "
        "the previous checkpoint stays byte-identical and loadable",
    )
