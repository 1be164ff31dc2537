"""``configs/train_poster.json``: the poster's autoencoder recipe (and MSRPAN / MSDRA on top of it) runs through
``python -m monai.bundle``, keeps the lowest validation loss, resumes, and exports a checkpoint that
``get_fuser`` loads with its provenance."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch

from monai_fusion.fusers import get_fuser

from .conftest import SMALL_RUN, ok, run_bundle

#: A smoke run of the recipe: narrow network, 32x32 patches, two iterations an epoch, two validation pairs.
SMALL = ["--patch_size", "[32, 32]", *SMALL_RUN]


def _train(bundle: Path, demo_root: Path, *extra: str, config: str = "configs/train_poster.json") -> str:
    args = ["run", "training", "--config_file", config, "--dataset_dir", demo_root, *SMALL, *extra]
    return ok(run_bundle(args, cwd=bundle))


def test_poster_recipe_trains_keeps_the_lowest_val_loss_resumes_and_exports(bundle_copy: Path, demo_root: Path) -> None:
    net = ["--network_def#channels", "8", "--network_def#decoder_channels", "[8, 8]"]
    out = _train(bundle_copy, demo_root, "--epochs", "2", *net)
    run = bundle_copy / "runs" / "poster"
    assert "val_loss" in out and "train_perc" in out and "train_grad" in out
    exported = torch.load(run / "poster.pt", weights_only=True)
    meta = exported["meta"]
    assert meta["recipe"] == "train_poster.json" and meta["perceptual_backbone"] in ("medical", "vgg16_bn")
    assert meta["lambda_grad"] == 0.2 and meta["lambda_perc"] == 0.2 and meta["epochs"] == 2
    losses = [float(v) for v in re.findall(r"Metrics -- val_loss: ([0-9.]+)", out)]  # printed with 4 decimals
    assert len(losses) == 2 and abs(meta["best_val_loss"] - min(losses)) < 1e-4
    best = torch.load(run / "model_best.pt", weights_only=True)
    assert all(torch.equal(best[k], v) for k, v in exported["state_dict"].items())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fuser = get_fuser("poster", weights=run / "poster.pt")  # the config travels with the checkpoint
    assert fuser.trained and fuser.meta["recipe"] == "train_poster.json"
    x = torch.rand(1, 1, 40, 36)
    assert fuser.fuse(x, x.flip(-1)).shape == (1, 1, 40, 36)

    again = _train(bundle_copy, demo_root, "--epochs", "3", *net)
    assert "Restored all variables" in again and "Epoch: 3/3" in again
    assert torch.load(run / "poster.pt", weights_only=True)["meta"]["epochs"] == 3


def test_the_ablation_and_the_baselines_are_overrides_of_the_same_recipe(bundle_copy: Path, demo_root: Path) -> None:
    ablation = ["--lambda_grad", "0", "--lambda_perc", "0", "--run_name", "poster_only_mse"]
    _train(bundle_copy, demo_root, "--epochs", "1", "--network_def#channels", "8", *ablation)
    meta = torch.load(bundle_copy / "runs" / "poster_only_mse" / "poster_only_mse.pt", weights_only=True)["meta"]
    assert meta["lambda_grad"] == 0.0 and meta["lambda_perc"] == 0.0 and meta["perceptual_backbone"] is None

    out = _train(
        bundle_copy,
        demo_root,
        "--epochs",
        "1",
        "--network_def#channels",
        "4",
        config="['configs/train_poster.json','configs/train_msrpan.json']",
    )
    assert "train_ssim" in out
    ckpt = torch.load(bundle_copy / "runs" / "msrpan" / "msrpan.pt", weights_only=True)
    assert ckpt["meta"]["lambda_ssim"] == 1.0 and ckpt["meta"]["recipe"] == "train_poster.json + train_msrpan.json"
    fuser = get_fuser("msrpan", weights=bundle_copy / "runs" / "msrpan" / "msrpan.pt")
    assert fuser.net.config["channels"] == 4
