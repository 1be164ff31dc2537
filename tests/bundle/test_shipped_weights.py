"""Training never replaces the shipped weights unasked; the metadata's checksums are the shipped files'."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from monai_fusion.bundle.weights import protect_shipped_weights, sha256_file, shipped_weights
from monai_fusion.utils.errors import FusionInputError

from .conftest import BUNDLE, TINY, ok, run_bundle


def test_metadata_lists_the_shipped_files_with_their_checksums() -> None:
    listed = shipped_weights(BUNDLE)
    assert set(listed) == {"models/model.pt", "models/model.ts"}
    for rel, digest in listed.items():
        assert sha256_file(BUNDLE / rel) == digest, rel


def test_protect_refuses_only_the_unchanged_shipped_model(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    (bundle / "models").mkdir(parents=True)
    shutil.copytree(BUNDLE / "configs", bundle / "configs")
    model = bundle / "models" / "model.pt"
    model.write_bytes(b"shipped")
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    meta["shipped_weights"] = {"models/model.pt": sha256_file(model)}
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(FusionInputError, match="would replace the shipped weights .*--ckpt_dir .*--overwrite_shipped"):
        protect_shipped_weights(bundle / "models", bundle)
    if not any((d / ".git").exists() for d in tmp_path.parents):  # a copy outside git: no git advice
        with pytest.raises(FusionInputError, match="from the bundle's zip; configs/metadata.json shipped_weights"):
            protect_shipped_weights(bundle / "models", bundle)
    (bundle / ".git").mkdir()
    with pytest.raises(FusionInputError, match=f"git checkout -- b/models` in {tmp_path.resolve()}"):
        protect_shipped_weights(bundle / "models", bundle)
    protect_shipped_weights(bundle / "models", bundle, overwrite_shipped=True)
    protect_shipped_weights(tmp_path / "elsewhere", bundle)
    model.write_bytes(b"a run's own model")  # written by a run, not shipped: a later run may replace it
    protect_shipped_weights(bundle / "models", bundle)


def test_training_in_the_shipped_bundle_refuses_then_writes_elsewhere(tmp_path: Path, demo_root: Path) -> None:
    bundle = tmp_path / "multimodal_fusion"
    shutil.copytree(BUNDLE / "configs", bundle / "configs")
    shutil.copytree(BUNDLE / "models", bundle / "models")
    args = ["run", "training", "--config_file", "configs/train.json", "--epochs", "1", "--dataset_dir", demo_root]
    proc = run_bundle([*args, *TINY], cwd=bundle)
    assert proc.returncode != 0
    assert "error: training would replace the shipped weights" in proc.stdout + proc.stderr
    assert sha256_file(bundle / "models" / "model.pt") == shipped_weights(BUNDLE)["models/model.pt"]
    ok(run_bundle([*args, *TINY, "--ckpt_dir", tmp_path / "run"], cwd=bundle))
    assert (tmp_path / "run" / "model.pt").is_file()
    assert sha256_file(bundle / "models" / "model.pt") == shipped_weights(BUNDLE)["models/model.pt"]


def test_metadata_records_the_library_networks_as_shipped() -> None:
    """Size, checksum and provenance of the package's trained networks (the model card's table) are the files'."""
    import torch

    from monai_fusion.fusers.learned import shipped_weights_file
    from monai_fusion.networks import count_parameters
    from monai_fusion.networks.nets.two_source import TWO_SOURCE_NETWORKS

    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text(encoding="utf-8"))["library_weights"]
    assert set(meta) == {"poster", "poster_only_mse", "msrpan", "msdra"}
    for name, record in meta.items():
        file = shipped_weights_file(name)
        assert record["file"] == f"monai_fusion/networks/weights/{file.name}"
        assert record["sha256"] == sha256_file(file) and record["bytes"] == file.stat().st_size
        ckpt = torch.load(file, weights_only=True)
        net = TWO_SOURCE_NETWORKS[name.split("_")[0]](**ckpt["config"])
        assert record["parameters"] == count_parameters(net)
        for key in ("recipe", "perceptual_backbone", "best_val_loss", "best_epoch", "train_seconds"):
            assert record[key] == ckpt["meta"][key], (name, key)
