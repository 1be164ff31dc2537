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

Several training seeds per fold (``-- --train_seed S`` into one workdir per seed) land in different places
(the weight map saturates on one source in some runs and not in others). ``python benchmarks/cross_validate.py
loss --workdir runs/cv`` scores each fold network with train.json's own loss on that fold's *training* pairs
(whole slices, detail gain 1 as trained; ``fold<k>/train_loss.json``), and ``select --workdir runs/cvsel
--workdirs runs/cv runs/cvs2`` copies, per fold, the run whose training loss is lowest into ``runs/cvsel``: a choice
among restarts of the optimiser that never looks at the held-out fold.

Not a test: each fold trains for about 7 to 9 minutes on the 2-core CPU (nothing else running; 30 minutes beside
other work).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._paths import data_root  # noqa: E402
from monai_fusion.networks import WeightMapFusionNet, save_checkpoint  # noqa: E402
from monai_fusion.networks.utils import load_weights_file, split_checkpoint  # noqa: E402

__all__ = ["train_folds", "export_folds", "training_loss", "select_runs", "main"]

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


def _fold_network(workdir: Path, k: int, config: dict[str, Any]) -> WeightMapFusionNet:
    """``WeightMapFusionNet(**config)`` with the weights of ``workdir/fold<k>/model.pt``."""
    src = workdir / f"fold{k}" / "model.pt"
    if not src.is_file():
        raise SystemExit(f"{src} does not exist; run `python benchmarks/cross_validate.py train` first")
    state, _ = split_checkpoint(load_weights_file(src, f"fold {k} weights {src}"), str(src))
    net = WeightMapFusionNet(**config)
    net.load_state_dict(state)
    return net


def export_folds(workdir: Path, num_folds: int, gains: dict[str, float] | float) -> list[Path]:
    """Write ``fold<k>/default.pt`` (weights of ``fold<k>/model.pt``, train.json's arguments, ``gains``)."""
    out = []
    for k in range(num_folds):
        config = {**_network_args(), "detail_gain": gains}
        net = _fold_network(workdir, k, config)
        meta = {"recipe": "configs/train.json", "fold": k, "num_folds": num_folds, "detail_gain": gains}
        out.append(save_checkpoint(net, workdir / f"fold{k}" / "default.pt", config=config, meta=meta))
        print(f"wrote {out[-1]}", flush=True)
    return out


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it (a killed run leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def training_loss(workdir: Path, num_folds: int, dataset_dir: str, seed: int = 0) -> list[dict[str, float]]:
    """Score ``fold<k>/model.pt`` with train.json's loss on the pairs fold ``k`` trained on.

    Args:
        workdir: the run (``fold<k>/model.pt`` for every fold).
        num_folds: the folds the run was trained with.
        dataset_dir: the pairs it was trained on.
        seed: the fold seed it was trained with (train.json's ``seed``).

    Returns:
        Per fold ``{pair type: mean loss over its training pairs, "all": mean over every training pair, "pairs": how
        many}``, also written to ``fold<k>/train_loss.json``. The training pairs are train.json's own
        (``bundle_datalist(..., "train", fold=k)``), whole slices one at a time, the raw network output at detail
        gain 1, as training scores it.
    """
    import torch
    from monai.bundle import ConfigParser

    from monai_fusion.data import bundle_datalist
    from monai_fusion.engines.benchmark_setup import load_pairs

    parser = ConfigParser()
    parser.read_config(str(TRAIN))
    loss_fn = parser.get_parsed_content("loss")
    samples = {(s["pair_type"], s["name"]): s for s in load_pairs(dataset_dir, "all")}
    out = []
    for k in range(num_folds):
        net = _fold_network(workdir, k, _network_args()).eval()
        train = bundle_datalist(dataset_dir, "all", "train", seed=seed, fold=k, num_folds=num_folds)
        per: dict[str, list[float]] = {}
        with torch.no_grad():
            for item in train:
                s = samples[(item["pair_type"], item["name"])]
                mri = torch.as_tensor(s["mri"]).float()[None]
                other = torch.as_tensor(s["other"]).float()[None]
                value = float(loss_fn(net(mri, other), mri, other, pair_types=[s["pair_type"]]))
                per.setdefault(s["pair_type"], []).append(value)
        result = {pt: sum(v) / len(v) for pt, v in per.items()}
        result["all"] = sum(sum(v) for v in per.values()) / len(train)
        result["pairs"] = len(train)
        _write_atomic(workdir / f"fold{k}" / "train_loss.json", json.dumps(result, indent=1).encode())
        print(f"fold {k}: training loss " + ", ".join(f"{p} {v:.4f}" for p, v in result.items()), flush=True)
        out.append(result)
    return out


def select_runs(workdirs: Sequence[Path], out: Path, num_folds: int) -> list[Path]:
    """Per fold, copy the run of ``workdirs`` with the lowest training loss (``train_loss.json``, key ``all``) to
    ``out/fold<k>``; returns the chosen run folders.

    Raises:
        SystemExit: a run lacks ``train_loss.json`` or has a loss that is not finite, or ``out`` already holds a
            selection (checked for every fold before anything is written).
    """
    scored: list[list[tuple[float, Path]]] = []
    for k in range(num_folds):
        if (out / f"fold{k}" / "model.pt").exists() or (out / f"fold{k}" / "chosen_from").exists():
            raise SystemExit(f"{out / f'fold{k}'} holds an earlier selection; choose another --workdir or remove it")
        scored.append([])
        for w in workdirs:
            f = w / f"fold{k}" / "train_loss.json"
            if not f.is_file():
                raise SystemExit(f"{f} does not exist; run `python benchmarks/cross_validate.py loss --workdir {w}`")
            value = float(json.loads(f.read_text(encoding="utf-8"))["all"])
            if not math.isfinite(value):
                raise SystemExit(f"{f}: the training loss is {value}; that run cannot be compared")
            scored[k].append((value, w / f"fold{k}"))
    chosen = []
    for k in range(num_folds):
        best = min(scored[k], key=lambda t: t[0])[1]
        dest = out / f"fold{k}"
        _write_atomic(dest / "train_loss.json", (best / "train_loss.json").read_bytes())
        _write_atomic(dest / "chosen_from", str(best).encode())
        _write_atomic(dest / "model.pt", (best / "model.pt").read_bytes())  # last: a complete folder has weights
        print(f"fold {k}: {best} (" + ", ".join(f"{w}: {v:.4f}" for v, w in scored[k]) + ")", flush=True)
        chosen.append(best)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """``train``, ``export``, ``loss`` or ``select``; returns 0."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("step", choices=["train", "export", "loss", "select"])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--num-folds", type=int, default=4)
    p.add_argument(
        "--dataset-dir",
        default=None,
        help="the Whole Brain Atlas pairs (train: default train.json's; loss: $MONAI_FUSION_HARVARD or ../shared/data)",
    )
    p.add_argument("--seed", type=int, default=0, help="loss: the fold seed the run was trained with (train.json's)")
    p.add_argument("--gains", help="export: the detail gains, one number or a JSON object per modality")
    p.add_argument("--workdirs", type=Path, nargs="+", help="select: the runs (one workdir per seed) to choose from")
    args = p.parse_args(argv)
    if args.step == "train":
        train_folds(args.workdir, args.num_folds, args.dataset_dir, extra)
        return 0
    if args.step == "loss":
        training_loss(args.workdir, args.num_folds, args.dataset_dir or data_root(), args.seed)
        return 0
    if args.step == "select":
        if not args.workdirs:
            raise SystemExit("select needs --workdirs (two or more workdirs trained with different --train_seed)")
        select_runs(args.workdirs, args.workdir, args.num_folds)
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
