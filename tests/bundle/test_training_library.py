"""The library pieces the bundle configs name, used from Python: network wrapper, loss, engines, checkpoints,
datalist, command-line helpers and the training presets."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.data import DataLoader, Dataset

from monai_fusion.bundle import bundle_root_from_cli, check_training_settings, parse_bundle_argv
from monai_fusion.data import bundle_datalist, default_dataset_dir, write_demo_dataset
from monai_fusion.data.datalist import find_pairs
from monai_fusion.engines import create_fusion_evaluator, create_fusion_trainer
from monai_fusion.fusers import get_fuser
from monai_fusion.handlers import (
    AtomicCheckpointSaver,
    AtomicDiskSaver,
    CheckedCheckpointLoader,
    fusion_metric_handlers,
    loss_terms_output,
)
from monai_fusion.losses import FusionLoss, PairedFusionLoss, StructureFusionLoss
from monai_fusion.metrics import compute_metrics
from monai_fusion.networks import MSRPAN, PosterFusionNet, save_checkpoint
from monai_fusion.networks.nets.two_source import TwoSourceFusionNet
from monai_fusion.networks.nets.weight_map import WeightMapFusionNet
from monai_fusion.transforms.presets import fusion_network_postprocess, fusion_preprocess, fusion_training_preprocess
from monai_fusion.utils.errors import FusionInputError

SMALL = {"channels": 8, "decoder_channels": (8, 8)}
MAIN = "/venv/lib/python3.11/site-packages/monai/bundle/__main__.py"


def _pairs(n: int = 4, size: int = 32) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        {"mri": torch.rand(1, size, size, generator=g), "other": torch.rand(1, size, size, generator=g)}
        for _ in range(n)
    ]


# ------------------------------------------------------------------------------------------ network
def test_two_source_net_is_the_wrapped_network() -> None:
    torch.manual_seed(0)
    net = TwoSourceFusionNet("poster", strategy="attention", **SMALL).eval()
    ref = PosterFusionNet(**SMALL, fusion="attention").eval()
    ref.load_state_dict(net.state_dict())  # same keys, no prefix
    x = torch.rand(2, 2, 37, 41)
    with torch.no_grad():
        assert torch.equal(net(x), ref(x[:, :1], x[:, 1:]))
        assert torch.equal(net(x[:, :1], x[:, 1:]), net(x))
    assert net.config["fusion"] == "attention" and net.config["channels"] == 8
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        net(torch.rand(1, 3, 8, 8))
    with pytest.raises(FusionInputError, match="bad network arguments"):
        TwoSourceFusionNet("poster", chanels=8)
    with pytest.raises(FusionInputError, match="not one of poster, msrpan, msdra"):
        TwoSourceFusionNet("unet")
    wrapped = TwoSourceFusionNet(MSRPAN(channels=8, decoder_channels=(4,)))
    assert wrapped(x).shape == (2, 1, 37, 41) and wrapped.config["fusion"] == "energy"


def test_two_source_checkpoint_loads_into_the_fuser(tmp_path: Path) -> None:
    net = TwoSourceFusionNet("poster", strategy="attention", **SMALL).eval()
    path = save_checkpoint(net, tmp_path / "model.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fuser = get_fuser("poster", weights=path)  # the config travels with the checkpoint
    mri, other = torch.rand(1, 1, 24, 24), torch.rand(1, 1, 24, 24)
    with torch.no_grad():
        assert torch.allclose(fuser.fuse(mri, other), net(torch.cat([mri, other], 1)).clamp(0, 1))


# --------------------------------------------------------------------------------------------- loss
def test_paired_loss_splits_the_stacked_sources() -> None:
    pred, mri, other = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    paired, plain = PairedFusionLoss(lambda_perc=0.0), FusionLoss(lambda_perc=0.0)
    assert torch.allclose(paired(pred, torch.cat([mri, other], 1)), plain(pred, mri, other))
    assert paired.last_terms == pytest.approx(plain.last_terms)
    with pytest.raises(FusionInputError, match=r"\(B, 2, H, W\)"):
        paired(pred, mri)


# ------------------------------------------------------------------------------------------ engines
def test_trainer_reports_every_loss_term() -> None:
    torch.manual_seed(0)
    net = TwoSourceFusionNet("poster", strategy="attention", **SMALL)
    loader = DataLoader(Dataset(_pairs()), batch_size=2)
    trainer = create_fusion_trainer(
        "cpu", 2, loader, net, torch.optim.Adam(net.parameters(), 1e-3), PairedFusionLoss(lambda_perc=0.0)
    )
    trainer.run()
    out = loss_terms_output(trainer.state.output)
    assert set(out) == {"loss", "loss_mse", "loss_grad", "loss_perc", "loss_ssim"} and out["loss_perc"] == 0.0
    assert out["loss"] == pytest.approx(out["loss_mse"] + out["loss_grad"], rel=1e-5)
    metrics = trainer.state.metrics
    assert set(metrics) == {"train_loss", "train_mse", "train_grad", "train_perc", "train_ssim"}
    assert metrics["train_loss"] == pytest.approx(metrics["train_mse"] + metrics["train_grad"], rel=1e-5)


def test_trainer_reports_every_term_of_the_bundle_loss() -> None:
    """The bundle's recipe: WeightMapFusionNet trained with StructureFusionLoss; each term reported."""
    torch.manual_seed(0)
    net = WeightMapFusionNet(channels=8)
    loss = StructureFusionLoss()
    loader = DataLoader(Dataset(_pairs(size=64)), batch_size=2)  # VIF's four scales need 64 px
    trainer = create_fusion_trainer("cpu", 2, loader, net, torch.optim.Adam(net.parameters(), 1e-3), loss)
    trainer.run()
    terms = ("ssim", "qabf", "vif", "scd", "int")
    out = loss_terms_output(trainer.state.output)
    assert set(out) == {"loss", *(f"loss_{t}" for t in terms)}
    assert out["loss"] == pytest.approx(sum(loss.weights[t] * out[f"loss_{t}"] for t in terms), rel=1e-5, abs=1e-6)
    metrics = trainer.state.metrics
    assert set(metrics) == {"train_loss", *(f"train_{t}" for t in terms)}
    assert metrics["train_loss"] == pytest.approx(
        sum(loss.weights[t] * metrics[f"train_{t}"] for t in terms), rel=1e-5, abs=1e-6
    )


def test_evaluator_metrics_are_the_fusion_metrics_of_the_clamped_output() -> None:
    torch.manual_seed(0)
    net = TwoSourceFusionNet("poster", strategy="attention", **SMALL).eval()
    data = _pairs(3)
    evaluator = create_fusion_evaluator(
        "cpu", DataLoader(Dataset(data), batch_size=2), net, metrics=["MI", "SSIM"], key_metric="ssim"
    )
    evaluator.run()
    assert evaluator.state.key_metric_name == "SSIM"
    mri = torch.stack([d["mri"] for d in data])
    other = torch.stack([d["other"] for d in data])
    with torch.no_grad():
        fused = net(torch.cat([mri, other], 1)).clamp(0, 1)
    expected = compute_metrics(fused * 255, mri * 255, other * 255, ["MI", "SSIM"], "standard")
    for name in ("MI", "SSIM"):  # batches of 2 + 1 against one of 3: equal up to float rounding (SSIM is near 0 here)
        assert evaluator.state.metrics[name] == pytest.approx(float(expected[name].mean()), rel=1e-6, abs=1e-7)
    assert len(evaluator.state.metric_details["SSIM"]) == 3


def test_evaluator_takes_the_key_metric_as_the_zoos_key_val_metric() -> None:
    """``validate#key_metric`` of train.json: a ``{name: handler}`` dict; the other metrics stay additional."""
    net = TwoSourceFusionNet("poster", strategy="attention", **SMALL).eval()
    loader = DataLoader(Dataset(_pairs(2)), batch_size=2)
    key = fusion_metric_handlers("MI")
    evaluator = create_fusion_evaluator("cpu", loader, net, metrics=["MI", "SSIM"], key_val_metric=key)
    evaluator.run()
    assert evaluator.state.key_metric_name == "MI" and set(evaluator.state.metrics) == {"MI", "SSIM"}
    alone = create_fusion_evaluator("cpu", loader, net, metrics=["MI"], key_val_metric=fusion_metric_handlers("MI"))
    alone.run()
    assert set(alone.state.metrics) == {"MI"}
    with pytest.raises(ValueError, match="key_val_metric is 'MI' but key_metric is 'SSIM'"):
        create_fusion_evaluator("cpu", loader, net, key_metric="SSIM", key_val_metric=fusion_metric_handlers("MI"))
    with pytest.raises(ValueError, match="expected one"):
        create_fusion_evaluator("cpu", loader, net, key_val_metric=fusion_metric_handlers(["MI", "SSIM"]))


# -------------------------------------------------------------------------------------- checkpoints
def test_atomic_saver_removes_a_replaced_file_only_after_the_next_write(tmp_path: Path) -> None:
    saver = AtomicDiskSaver(tmp_path)
    saver({"a": torch.zeros(1)}, "checkpoint_epoch=1.pt")
    saver.remove("checkpoint_epoch=1.pt")  # ignite asks before writing the successor
    assert (tmp_path / "checkpoint_epoch=1.pt").is_file()
    saver({"a": torch.ones(1)}, "checkpoint_epoch=2.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=2.pt"]
    fixed = AtomicDiskSaver(tmp_path / "fixed", filename="last.pt")
    fixed({"a": torch.zeros(1)}, "whatever_1.pt")
    fixed.remove("whatever_1.pt")
    fixed({"a": torch.ones(1)}, "whatever_2.pt")
    assert [p.name for p in (tmp_path / "fixed").iterdir()] == ["last.pt"]
    assert torch.load(tmp_path / "fixed" / "last.pt", weights_only=True)["a"].item() == 1.0
    assert os.stat(tmp_path / "fixed" / "last.pt").st_mode & 0o044 == 0o044  # readable by group and others


def test_checkpoint_saver_keeps_its_ranking_across_runs(tmp_path: Path) -> None:
    net = torch.nn.Linear(2, 1)
    saver = AtomicCheckpointSaver(
        str(tmp_path), {"model": net}, save_key_metric=True, key_metric_name="m", key_metric_filename="model.pt"
    )
    engine = Engine(lambda e, b: None)
    saver.attach(engine)
    engine.state.metrics = {"m": 0.5}
    saver.metrics_completed(engine)
    state = saver.state_dict()
    assert [p for p, _ in state["_saved"]] == [0.5]
    again = AtomicCheckpointSaver(
        str(tmp_path), {"model": net}, save_key_metric=True, key_metric_name="m", key_metric_filename="model.pt"
    )
    again.load_state_dict(state)
    mtime = (tmp_path / "model.pt").stat().st_mtime_ns
    engine.state.metrics = {"m": 0.4}  # worse than the interrupted run's best: keep its model
    again.metrics_completed(engine)
    assert (tmp_path / "model.pt").stat().st_mtime_ns == mtime
    assert AtomicCheckpointSaver(str(tmp_path), {"model": net}, save_interval=1).state_dict() == {}


def test_checkpoint_loader_checks_before_the_run(tmp_path: Path) -> None:
    net = TwoSourceFusionNet("poster", **SMALL)
    engine = Engine(lambda e, b: None)
    with pytest.raises(FusionInputError, match="not found; train first"):
        CheckedCheckpointLoader(tmp_path / "model.pt", {"model": net}).attach(engine)
    CheckedCheckpointLoader(tmp_path / "model.pt", {"model": net}, required=False).attach(engine)  # fresh start
    torch.save(TwoSourceFusionNet("poster", channels=4).state_dict(), tmp_path / "other.pt")
    with pytest.raises(FusionInputError, match="does not fit the network"):
        CheckedCheckpointLoader(tmp_path / "other.pt", {"model": net}).attach(engine)
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FusionInputError, match="cannot be read"):
        CheckedCheckpointLoader(tmp_path / "broken.pt", {"model": net}).attach(engine)
    trainer = Engine(lambda e, b: None)
    trainer.state.max_epochs, trainer.state.epoch_length = 2, 5
    torch.save(
        {"model": net.state_dict(), "trainer": {"iteration": 15, "epoch_length": 5, "max_epochs": 3}},
        tmp_path / "last.pt",
    )
    with pytest.raises(FusionInputError, match="has 3 epochs done, more than --epochs 2"):
        CheckedCheckpointLoader(tmp_path / "last.pt", {"model": net, "trainer": trainer}).attach(trainer)
    trainer.state.max_epochs = 4
    loader = CheckedCheckpointLoader(tmp_path / "last.pt", {"model": net, "trainer": trainer})
    loader.attach(trainer)
    loader(trainer)
    assert trainer.state.epoch == 3 and trainer.state.max_epochs == 4


# --------------------------------------------------------------------------------------------- data
def test_bundle_datalist_splits_by_case_and_spreads_max_pairs(tmp_path: Path) -> None:
    root = write_demo_dataset(tmp_path / "demo")
    train = bundle_datalist(root, "all", "train", 0.2, 0)
    val = bundle_datalist(root, "PET-MRI", "val", 0.2, 0)
    assert len(train) == 9 and len(val) == 3
    assert not {it["case"] for it in train} & {it["case"] for it in val}
    every = bundle_datalist(root, "PET-MRI,", "all")
    assert len(every) == 12
    spread = bundle_datalist(root, ["PET-MRI"], "all", max_pairs=3)
    assert [it["name"] for it in spread] == [every[0]["name"], every[6]["name"], every[11]["name"]]
    with pytest.raises(FusionInputError, match="no case left for validation"):
        bundle_datalist(root, "all", "val", 0.0)
    with pytest.raises(FusionInputError, match="input_dir is not set"):
        bundle_datalist(None, what="input_dir")
    with pytest.raises(FusionInputError, match="split='test'"):
        bundle_datalist(root, split="test")
    with pytest.raises(FusionInputError, match="max_pairs=0"):
        bundle_datalist(root, split="all", max_pairs=0)


def test_demo_dataset_layout_is_reused(tmp_path: Path) -> None:
    root = write_demo_dataset(tmp_path)
    found = find_pairs(root)
    assert found.counts == {"PET-MRI": 12} and not found.unpaired
    assert sorted({it["case"] for it in found.items}) == ["PET-MRI/1", "PET-MRI/2", "PET-MRI/3", "PET-MRI/4"]
    sample = fusion_preprocess(register=False)(found.items[5])
    assert sample["mri"].shape == (1, 256, 256) and "other_cb" in sample
    assert float(sample["mri"].std()) > 0.1 and float(sample["other"].std()) > 0.05
    stamp = (root / "PET-MRI" / "MRI" / f"{found.items[0]['name']}.png").stat().st_mtime_ns
    write_demo_dataset(tmp_path)
    assert (root / "PET-MRI" / "MRI" / f"{found.items[0]['name']}.png").stat().st_mtime_ns == stamp


def test_default_dataset_dir_reads_the_environment_then_falls_back_to_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONAI_FUSION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MONAI_FUSION_HARVARD", str(tmp_path / "absent"))
    with pytest.warns(UserWarning, match="embedded synthetic MNI152"):
        assert default_dataset_dir() == str(tmp_path / "cache" / "demo" / "dataset")
    # a checkout's ../shared/data/harvard is not looked for: the library holds no development path
    (tmp_path / "shared" / "data" / "harvard").mkdir(parents=True)
    monkeypatch.delenv("MONAI_FUSION_HARVARD")
    with pytest.warns(UserWarning, match="MONAI_FUSION_HARVARD"):
        assert default_dataset_dir() == str(tmp_path / "cache" / "demo" / "dataset")
    monkeypatch.setenv("MONAI_FUSION_HARVARD", str(tmp_path))
    assert default_dataset_dir() == str(tmp_path)


# ------------------------------------------------------------------------------------- command line
def test_parse_bundle_argv_reads_fire_forms() -> None:
    cmd = parse_bundle_argv(
        [
            MAIN,
            "run",
            "training",
            "--config_file",
            "['a/configs/train.json','b.json']",
            "--epochs=2",
            "--network_def#channels",
            "8",
            "--amp",
        ]
    )
    assert cmd == {
        "command": "run",
        "params": {"run_id": "training", "config_file": "['a/configs/train.json','b.json']"},
        "overrides": {"epochs": "2", "network_def#channels": "8", "amp": "True"},
    }
    assert parse_bundle_argv(["/usr/bin/pytest", "run"]) is None
    assert bundle_root_from_cli([MAIN, "run", "--config_file", "['x/configs/train.json','y/configs/e.json']"]) == str(
        Path("x").resolve()
    )
    assert bundle_root_from_cli([MAIN, "run", "--config-file", "inference.json"]) == str(Path(".").resolve())
    assert bundle_root_from_cli(["/usr/bin/pytest"], default="here") == "here"


def test_check_training_settings() -> None:
    good = dict(
        epochs=3,
        batch_size=2,
        patch_size=[64, 64],
        learning_rate=1e-4,
        val_fraction=0.2,
        num_workers=0,
        epoch_length=None,
        max_train_pairs=5,
        resume=True,
        unknown="kept",
    )
    assert check_training_settings(**good) == good
    for name, value, expected in [
        ("patch_size", 64, "two positive integers"),
        ("learning_rate", 0, "positive number"),
        ("val_fraction", 1.0, "[0, 1)"),
        ("num_workers", -1, ">= 0"),
        ("max_val_pairs", 0, "or null"),
        ("batch_size", True, "positive integer"),
        ("written_loss", "true", "True or False"),
    ]:
        with pytest.raises(FusionInputError, match=re.escape(expected)):
            check_training_settings(**{name: value})


# ------------------------------------------------------------------------------------------- presets
def test_training_preprocess_crops_both_sources_alike(tmp_path: Path) -> None:
    item = find_pairs(write_demo_dataset(tmp_path)).items[4]
    same = dict(item, other=item["mri"], modality="MRI")  # two copies of one image must stay identical
    for size in ((128, 112), (96, 96)):
        pre = fusion_training_preprocess(size)
        pre.set_random_state(3)
        patches = [pre(same) for _ in range(6)]
        for out in patches:
            assert out["mri"].shape == (1, *size) and torch.equal(out["mri"], out["other"])
            assert set(out) == {"mri", "other", "pair_type", "modality", "name", "case"}
        assert len({float(p["mri"].sum()) for p in patches}) > 1  # random patches
    with pytest.raises(FusionInputError, match="patch_size"):
        fusion_training_preprocess((64,))


def test_training_preprocess_keeps_the_chroma_aligned() -> None:
    """With ``chroma`` the chroma is cropped, flipped and turned with the luminance: an RGB image with no blue,
    put back together from the patch's Y, Cb and Cr, still has no blue (a misaligned chroma would make some)."""
    from monai_fusion.transforms import YCbCrToRGB

    yy, xx = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 96), indexing="ij")
    rgb = torch.stack([xx, yy**2, torch.zeros_like(xx)])
    item = {"mri": torch.rand(1, 96, 96), "other": rgb, "modality": "PET", "pair_type": "PET-MRI"}
    pre = fusion_training_preprocess((64, 64), load=False, chroma=True)
    pre.set_random_state(5)
    for _ in range(4):
        out = pre(item)
        ycc = torch.cat([torch.as_tensor(out[k]) for k in ("other", "other_cb", "other_cr")])
        assert float(YCbCrToRGB(clip=False)(ycc)[2].abs().max()) < 1e-4
    small = pre({**item, "mri": item["mri"][:, :48, :48], "other": rgb[:, :48, :48]})  # padded to the patch
    assert small["other_cb"].shape == (1, 64, 64) and float((small["other"] == 0).float().mean()) > 0.4
    assert torch.equal(
        small["other_cb"][small["other"] == 0], torch.full_like(small["other_cb"], 0.5)[small["other"] == 0]
    )
    grey_item = {**item, "other": yy[None], "modality": "CT", "pair_type": "CT-MRI"}
    grey = pre(grey_item)
    assert torch.equal(torch.as_tensor(grey["other_cb"]), torch.full((1, 64, 64), 0.5))
    batch = next(iter(DataLoader(Dataset([item, grey_item], transform=pre), batch_size=2)))  # grey and colour collate
    assert batch["other_cb"].shape == (2, 1, 64, 64)
    assert "other_cb" not in fusion_training_preprocess((64, 64), load=False)(item)  # dropped by default


def test_network_postprocess_merges_colour_back(tmp_path: Path) -> None:
    item = find_pairs(write_demo_dataset(tmp_path)).items[4]
    sample = fusion_preprocess(register=False)(item)
    sample["pred"] = sample["other"] * 1.5 - 0.2  # outside [0, 1] on purpose
    out = fusion_network_postprocess()(sample)
    assert out["fused"].shape == (3, 256, 256)
    assert float(out["fused"].min()) >= 0.0 and float(out["fused"].max()) <= 1.0
    assert np.allclose(out["pred"].numpy(), sample["pred"].numpy())  # the raw prediction is kept
