"""Every command of the bundle README, run as a user runs it, on the embedded MNI152 MRI/PET dataset.

One tiny training run (``trained_demo_bundle``) feeds evaluation, inference, export and verification.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_fusion.data.datalist import find_pairs
from monai_fusion.engines.inference import fuse_sample
from monai_fusion.fusers import get_fuser
from monai_fusion.networks.nets.weight_map import WeightMapFusionNet
from monai_fusion.transforms.presets import fusion_preprocess

from .conftest import BUNDLE, NET, TINY, copy_bundle, ok, run_bundle

SMALL = {"channels": 8}
#: The terms of the bundle's loss (StructureFusionLoss.last_terms without ``total``).
TERMS = ("ssim", "qabf", "vif", "scd", "int")
#: md5 of configs/schema.json, MONAI's meta_schema_20240725.json as published (the README shows it too).
SCHEMA_MD5 = "76e1add273836515d0bbb3bc71962474"


def test_training_positional_form_writes_model_and_checkpoint(trained_demo_bundle: tuple[Path, str]) -> None:
    bundle, out = trained_demo_bundle
    models = bundle / "models"
    assert sorted(p.name for p in models.iterdir()) == ["checkpoint_last.pt", "model.pt", "model_best.pt"]
    # every loss term reported each iteration and as epoch means
    assert "Epoch: 2/2, Iter: 2/2 -- loss:" in out
    assert all(f"loss_{t}:" in out for t in TERMS)
    assert "Epoch[2] Metrics -- train_int:" in out and "train_loss:" in out
    assert all(f"train_{t}:" in out for t in TERMS)
    assert "Key metric: SSIM best value:" in out
    last = torch.load(models / "checkpoint_last.pt", weights_only=True)
    assert dict(last["trainer"]) == {"epoch_length": 2, "iteration": 4, "max_epochs": 2}
    assert set(last) == {"model", "optimizer", "lr_scheduler", "trainer", "best_model_ranking", "best_metric"}
    assert len(last["best_model_ranking"]["_saved"]) == 1
    # model.pt is a plain state dict of the network: the fuser registry loads it
    state = torch.load(models / "model.pt", weights_only=True)
    assert set(state) == set(WeightMapFusionNet(**SMALL).state_dict())
    # ... of the final epoch's network (the recipe keeps the last model; model_best.pt has the best key metric's)
    assert all(torch.equal(state[k], last["model"][k]) for k in state)
    assert set(torch.load(models / "model_best.pt", weights_only=True)) == set(state)
    # outputs stay inside the bundle whose config was given, not in the working directory
    assert not (Path.cwd() / "models" / "model.pt").exists()


def test_training_repeats_exactly_and_train_seed_changes_only_the_run(
    trained_demo_bundle: tuple[Path, str], demo_root: Path, tmp_path: Path
) -> None:
    """Same settings: the same model.pt tensor for tensor (what benchmarks/reproduce_training.py relies on on one
    machine); another ``train_seed``: another network from the same case-wise split (``seed`` alone sets the split)."""
    from monai.bundle import ConfigParser

    bundle, _ = trained_demo_bundle

    def train(name: str, *extra: str) -> dict[str, torch.Tensor]:
        copy = copy_bundle(tmp_path / name)
        ok(
            run_bundle(
                [
                    "run",
                    "training",
                    "--config_file",
                    copy / "configs" / "train.json",
                    "--epochs",
                    "2",
                    "--dataset_dir",
                    demo_root,
                    *TINY,
                    *extra,
                ]
            )
        )
        return torch.load(copy / "models" / "model.pt", weights_only=True)

    first = torch.load(bundle / "models" / "model.pt", weights_only=True)
    again = train("again")
    assert all(torch.equal(first[k], again[k]) for k in first)
    other = train("seed0", "--train_seed", "0")  # the recipe's default is 1
    assert not all(torch.equal(first[k], other[k]) for k in first)

    def parsed(key: str, **overrides: object) -> object:
        parser = ConfigParser()
        parser.read_config(str(BUNDLE / "configs" / "train.json"))
        parser.update({"bundle_root": str(tmp_path), "dataset_dir": str(demo_root), **overrides})
        return parser.get_parsed_content(key)

    def split(**overrides: object) -> list[str]:
        return [Path(d["mri"]).name for d in parsed("validate#dataset#data", **overrides)]

    assert split() == split(train_seed=0) and split() != split(seed=1)
    assert parsed("train_seed") == 1 and parsed("train_seed", seed=5) == 1  # the split's seed leaves it alone


def test_tensorboard_holds_loss_terms_metrics_and_images(trained_demo_bundle: tuple[Path, str]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    bundle, _ = trained_demo_bundle
    tags: dict[str, set[str]] = {"scalars": set(), "images": set()}
    for events in (bundle / "eval" / "tensorboard").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for kind in tags:
            tags[kind] |= set(acc.Tags()[kind])
    assert {
        "loss",
        *(f"loss_{t}" for t in TERMS),
        "train_loss",
        *(f"train_{t}" for t in TERMS),
        "SSIM",
        "Qabf",
    } <= tags["scalars"]
    assert any(t.startswith("output") for t in tags["images"]) and any(t.startswith("input_1") for t in tags["images"])


def test_evaluating_writes_metric_csv_and_summary(trained_demo_bundle: tuple[Path, str], demo_root: Path) -> None:
    bundle, _ = trained_demo_bundle
    proc = run_bundle(
        [
            "run",
            "evaluating",
            "--config_file",
            "['configs/train.json','configs/evaluate.json']",
            "--dataset_dir",
            demo_root,
            *NET,
            "--num_workers",
            "0",
            "--val_metrics",
            "['SSIM', 'MI', 'Qabf', 'EN']",
        ],
        cwd=bundle,
    )
    out = ok(proc)
    eval_dir = bundle / "eval"
    rows = dict(line.split(",") for line in (eval_dir / "metrics.csv").read_text().split())
    assert set(rows) == {"SSIM", "MI", "Qabf", "EN"}
    assert 0.0 < float(rows["SSIM"]) < 1.0 and float(rows["MI"]) > 0.0 and float(rows["EN"]) > 0.0
    raw = (eval_dir / "SSIM_raw.csv").read_text().splitlines()
    assert raw[0] == "filename,class0,mean" and len(raw) == 1 + 3  # one held-out case of three slices
    assert all(r.startswith("PET-MRI/") for r in raw[1:])
    per_image = [float(r.split(",")[1]) for r in raw[1:]]
    assert np.mean(per_image) == pytest.approx(float(rows["SSIM"]), abs=1e-4)
    summary = (eval_dir / "summary.md").read_text()
    assert "| PET-MRI | 3 |" in summary and "SSIM" in summary and "standard" in summary
    assert (eval_dir / "SSIM_summary.csv").read_text().startswith("class,mean,median,max,min")
    assert "Restored all variables from" in out and "metric summary written to" in out


def test_inference_walks_the_preset_path(
    trained_demo_bundle: tuple[Path, str], demo_root: Path, tmp_path: Path
) -> None:
    bundle, _ = trained_demo_bundle
    data = demo_root
    out_dir = tmp_path / "fused"
    # gains far apart, so that an output made without the sample's modality (the "default" gain) would show
    gains = {"PET": 1.0, "default": 0.0}
    proc = run_bundle(
        [
            "run",
            "--config_file",
            "configs/inference.json",
            "--input_dir",
            data,
            "--output_dir",
            out_dir,
            "--max_pairs",
            "3",
            "--network_def#detail_gain",
            repr(gains),
            *NET,
        ],
        cwd=bundle,
    )
    out = ok(proc)
    written = sorted(out_dir.glob("PET-MRI/*.png"))
    assert len(written) == 3 and "3 fused images written under" in out
    items = {it["name"]: it for it in find_pairs(data).items}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # trained weights: no random-init warning
        fuser = get_fuser("default", weights=bundle / "models" / "model.pt", detail_gain=gains, **SMALL)
        without = get_fuser("default", weights=bundle / "models" / "model.pt", detail_gain=0.0, **SMALL)
    apart = 0.0
    for path in written:
        img = np.asarray(Image.open(path)).astype(float)
        assert img.shape == (256, 256, 3)  # PET pairs come back in colour
        sample = fusion_preprocess(register=True)(items[path.stem])
        exp8, other8 = (
            np.rint(np.moveaxis(fuse_sample(sample, f)["fused"].numpy(), 0, -1) * 255.0) for f in (fuser, without)
        )
        assert np.abs(img - exp8).max() <= 1.0
        apart = max(apart, float(np.abs(img - other8).max()))
    assert apart > 2.0  # the PET gain was used, not the default one


def test_export_to_torchscript_fuses_as_the_checkpoint(trained_demo_bundle: tuple[Path, str]) -> None:
    bundle, _ = trained_demo_bundle
    ts_file = bundle / "models" / "model.ts"
    ok(
        run_bundle(
            [
                "ckpt_export",
                "network_def",
                "--filepath",
                ts_file,
                "--ckpt_file",
                bundle / "models" / "model.pt",
                "--meta_file",
                "configs/metadata.json",
                "--config_file",
                "configs/inference.json",
                *NET,
            ],
            cwd=bundle,
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
        scripted = torch.jit.load(str(ts_file))
    gains = json.loads((bundle / "configs" / "inference.json").read_text())["network_def"]["detail_gain"]
    # the calibrated gains travel with the export
    assert scripted.modality_gains == {k: v for k, v in gains.items() if k != "default"}
    assert scripted.detail_gain == gains["default"]
    net = WeightMapFusionNet(**SMALL, detail_gain=gains)
    net.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    net.eval()
    x = torch.rand(2, 2, 96, 80, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(scripted(x, modality=["CT", "PET"]), net(x, modality=["CT", "PET"]), atol=1e-5)
        assert torch.allclose(scripted(x), net(x), atol=1e-5)  # no modality: the "default" gain
        assert scripted(x).shape == (2, 1, 96, 80)


def test_verify_metadata_and_network_shapes() -> None:
    cfg = Path("configs")
    out = ok(
        run_bundle(
            [
                "verify_metadata",
                "--meta_file",
                cfg / "metadata.json",
                "--filepath",
                cfg / "schema.json",
                "--hash_val",
                SCHEMA_MD5,
                "--hash_type",
                "md5",
            ],
            cwd=BUNDLE,
        )
    )
    assert "metadata is verified with no error" in out and f"md5: {SCHEMA_MD5}" in out and "skipped downloading" in out
    out = ok(
        run_bundle(
            [
                "verify_net_in_out",
                "network_def",
                "--meta_file",
                cfg / "metadata.json",
                "--config_file",
                cfg / "inference.json",
                "--any",
                "40",
                "--device",
                "cpu",
                *NET,
            ],
            cwd=BUNDLE,
        )
    )
    assert "data shape of network is verified with no error" in out


def test_training_initialize_run_finalize_form(bundle_copy: Path, demo_root: Path) -> None:
    proc = run_bundle(
        ["run", "--config_file", "configs/train.json", "--epochs", "1", "--dataset_dir", demo_root, *TINY],
        cwd=bundle_copy,
    )
    out = ok(proc)
    assert "Epoch: 1/1, Iter: 2/2" in out and "Engine run finished" in out
    assert (bundle_copy / "models" / "model.pt").is_file()
    # a finished run asked for the same epochs resumes and has nothing left to do
    out = ok(
        run_bundle(
            ["run", "--config_file", "configs/train.json", "--epochs", "1", "--dataset_dir", demo_root, *TINY],
            cwd=bundle_copy,
        )
    )
    assert "(epoch 1 done)" in out and "Iter:" not in out
