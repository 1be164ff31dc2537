"""Reproduce the shipped default model: train with the bundle's defaults and compare the validation figures.

Run: ``python benchmarks/reproduce_training.py [--dataset-dir ../shared/data/harvard] [--workdir DIR]``.

Copies the bundle's configs to a work folder, runs
``python -m monai.bundle run training --config_file configs/train.json --dataset_dir DIR`` there with every
default (the recipe that made ``models/model.pt``), then ``run evaluating`` on the case-wise validation
split, and prints, side by side, the shipped figures recorded in ``configs/metadata.json``
(``eval_metrics``) and the reproduced ones with their relative difference (the promise: within 2%),
plus the wall time of the training (the promise: under 30 minutes on the 2-core CPU development machine).
Not a test: it takes minutes of CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "multimodal_fusion"

__all__ = ["main"]


def _run(args: Sequence[str], cwd: Path) -> None:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", *args], cwd=cwd, env=env, text=True, capture_output=True
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"monai.bundle {args[0]} {args[1] if len(args) > 1 else ''} failed ({proc.returncode})")


def main(argv: Sequence[str] | None = None) -> int:
    """Train, evaluate, compare; returns 0 when every figure is within the tolerance."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset-dir", default=str(ROOT.parent / "shared" / "data" / "harvard"))
    p.add_argument("--workdir", help="work folder (default: a temporary one, removed afterwards)")
    p.add_argument("--tolerance", type=float, default=0.02, help="relative tolerance (default 0.02)")
    args = p.parse_args(argv)
    if not Path(args.dataset_dir).is_dir():
        raise SystemExit(f"--dataset-dir {args.dataset_dir} does not exist; point it at the Whole Brain Atlas pairs")
    args.dataset_dir = str(Path(args.dataset_dir).resolve())  # the bundle runs in the work folder, not here
    shipped = json.loads((BUNDLE / "configs" / "metadata.json").read_text(encoding="utf-8"))["eval_metrics"]
    tmp = None if args.workdir else tempfile.mkdtemp(prefix="reproduce_")
    work = Path(args.workdir or tmp) / "multimodal_fusion"
    try:
        shutil.copytree(BUNDLE / "configs", work / "configs")
        t0 = time.perf_counter()
        _run(["run", "training", "--config_file", "configs/train.json", "--dataset_dir", args.dataset_dir], work)
        train_s = time.perf_counter() - t0
        _run(
            [
                "run",
                "evaluating",
                "--config_file",
                "['configs/train.json','configs/evaluate.json']",
                "--dataset_dir",
                args.dataset_dir,
                "--val_metrics",
                json.dumps(sorted(shipped)),
            ],
            work,
        )
        with open(work / "eval" / "metrics.csv", encoding="utf-8") as fh:
            got = {row[0]: float(row[1]) for row in csv.reader(fh) if len(row) == 2}
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"training wall time: {train_s / 60:.1f} min (promise: < 30 min on the 2-core CPU machine)")
    print(f"{'metric':<8} {'shipped':>9} {'reproduced':>11} {'rel. diff':>10}")
    ok = True
    for name, want in shipped.items():
        have = got.get(name, float("nan"))
        rel = abs(have - want) / max(abs(want), 1e-12)
        ok &= rel <= args.tolerance
        print(f"{name:<8} {want:>9.4f} {have:>11.4f} {rel * 100:>9.2f}%")
    print("within tolerance" if ok else f"NOT within {args.tolerance * 100:.0f}%")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
