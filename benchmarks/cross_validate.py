"""Cross-validate the default model's recipe: train one network per case-wise fold, then export them with gains.

Run: ``python benchmarks/cross_validate.py train --workdir runs/cv [--num-folds 4] [--dataset-dir DIR]
[-- EXTRA bundle overrides]`` trains ``configs/train.json`` with every default once per fold
(``--fold k --num_folds K``, the fold's cases held out; ``runs/cv/fold<k>/model.pt``), skipping folds already
finished (their ``done`` file holds the wall seconds). ``python benchmarks/cross_validate.py export --workdir
runs/cv --gains '{"CT": 0.0, "PET": 0.4, "SPECT": 0.8, "default": 0.8}'`` writes ``fold<k>/default.pt``: the
fold's weights with the network arguments of ``train.json`` and the given per-modality detail gains, the form
``get_fuser("default", weights=...)`` loads. Then

- ``python benchmarks/calibrate_detail_gain.py --cv K --weights runs/cv/fold{fold}/model.pt --baselines
  CV/per_image.csv`` chooses the gains on the cross-validated means, and
- ``monai-fusion benchmark --cv K --fold-weights default=runs/cv/fold{fold}/default.pt`` reports the recipe's
  cross-validated standing against every other method.

Not a test: each fold trains for about 17 minutes on the 2-core CPU (nothing else running).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monai_fusion.networks import WeightMapFusionNet, save_checkpoint  # noqa: E402
from monai_fusion.networks.utils import load_weights_file, split_checkpoint  # noqa: E402

__all__ = ["train_folds", "export_folds", "main"]

TRAIN = ROOT / "bundles" / "multimodal_fusion" / "configs" / "train.json"


def train_folds(workdir: Path, num_folds: int, dataset_dir: str | None, extra: Sequence[str] = ()) -> list[float]:
    """Train ``train.json`` once per fold under ``workdir/fold<k>``; returns each fold's wall seconds."""
    seconds = []
    for k in range(num_folds):
        d = workdir / f"fold{k}"
        done = d / "done"
        if done.is_file():
            seconds.append(float(done.read_text()))
            print(f"fold {k}: done before ({seconds[-1]:.0f} s)", flush=True)
            continue
        d.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN),
               "--fold", str(k), "--num_folds", str(num_folds), "--ckpt_dir", str(d), "--output_dir", str(d / "eval"),
               *(["--dataset_dir", dataset_dir] if dataset_dir else []), *extra]  # fmt: skip
        t = time.perf_counter()
        with open(d / "log.txt", "w", encoding="utf-8") as log:
            rc = subprocess.call(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        if rc != 0:
            raise SystemExit(f"fold {k}: training failed (exit {rc}); see {d / 'log.txt'}")
        seconds.append(time.perf_counter() - t)
        done.write_text(f"{seconds[-1]:.0f}")
        print(f"fold {k}: trained in {seconds[-1]:.0f} s", flush=True)
    return seconds


def _network_args() -> dict[str, Any]:
    """``network_def`` of train.json without its ``_target_``."""
    net = json.loads(TRAIN.read_text(encoding="utf-8"))["network_def"]
    return {k: v for k, v in net.items() if not k.startswith("_")}


def export_folds(workdir: Path, num_folds: int, gains: dict[str, float] | float) -> list[Path]:
    """Write ``fold<k>/default.pt`` (weights of ``fold<k>/model.pt``, train.json's arguments, ``gains``)."""
    out = []
    for k in range(num_folds):
        src = workdir / f"fold{k}" / "model.pt"
        if not src.is_file():
            raise SystemExit(f"{src} does not exist; run `python benchmarks/cross_validate.py train` first")
        state, _ = split_checkpoint(load_weights_file(src, f"fold {k} weights {src}"), str(src))
        config = {**_network_args(), "detail_gain": gains}
        net = WeightMapFusionNet(**config)
        net.load_state_dict(state)
        meta = {"recipe": "configs/train.json", "fold": k, "num_folds": num_folds, "detail_gain": gains}
        out.append(save_checkpoint(net, workdir / f"fold{k}" / "default.pt", config=config, meta=meta))
        print(f"wrote {out[-1]}", flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``train`` or ``export``; returns 0."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("step", choices=["train", "export"])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--num-folds", type=int, default=4)
    p.add_argument("--dataset-dir", default=None, help="the Whole Brain Atlas pairs (default: train.json's)")
    p.add_argument("--gains", help="export: the detail gains, one number or a JSON object per modality")
    args = p.parse_args(argv)
    if args.step == "train":
        train_folds(args.workdir, args.num_folds, args.dataset_dir, extra)
        return 0
    if args.gains is None:
        raise SystemExit("export needs --gains (e.g. from benchmarks/calibrate_detail_gain.py --cv K)")
    try:
        gains = json.loads(args.gains)
    except json.JSONDecodeError as err:
        raise SystemExit(f"--gains {args.gains!r}: expected a number or a JSON object ({err})") from None
    export_folds(args.workdir, args.num_folds, gains)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
