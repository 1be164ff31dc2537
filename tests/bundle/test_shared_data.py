"""The bundle's training, evaluation and inference commands on the real Whole Brain Atlas pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import NET, TINY, copy_bundle, ok, run_bundle

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def trained_real_bundle(tmp_path_factory: pytest.TempPathFactory, harvard_root: Path) -> tuple[Path, str]:
    """One tiny epoch on all three pair types, in the initialize/run/finalize form from the bundle folder."""
    bundle = copy_bundle(tmp_path_factory.mktemp("real") / "multimodal_fusion")
    proc = run_bundle(
        [
            "run",
            "--config_file",
            "configs/train.json",
            "--epochs",
            "1",
            "--dataset_dir",
            harvard_root,
            *TINY,
            "--max_val_pairs",
            "3",
        ],
        cwd=bundle,
    )
    return bundle, ok(proc)


def test_training_on_every_pair_type(trained_real_bundle: tuple[Path, str]) -> None:
    bundle, out = trained_real_bundle
    assert "738 pairs (CT-MRI: 160, PET-MRI: 245, SPECT-MRI: 333)" in out
    assert "Epoch: 1/1, Iter: 2/2 -- loss:" in out and "Key metric: SSIM best value:" in out
    assert (bundle / "models" / "model.pt").is_file() and (bundle / "models" / "checkpoint_last.pt").is_file()


def test_evaluating_on_held_out_cases(trained_real_bundle: tuple[Path, str], harvard_root: Path) -> None:
    bundle, _ = trained_real_bundle
    ok(
        run_bundle(
            [
                "run",
                "evaluating",
                "--config_file",
                "['configs/train.json','configs/evaluate.json']",
                "--dataset_dir",
                harvard_root,
                *NET,
                "--num_workers",
                "0",
                "--max_val_pairs",
                "3",
                "--val_metrics",
                "['SSIM', 'MI']",
            ],
            cwd=bundle,
        )
    )
    raw = (bundle / "eval" / "MI_raw.csv").read_text().splitlines()[1:]
    assert [r.split("/")[0] for r in raw] == ["CT-MRI", "PET-MRI", "SPECT-MRI"]  # spread over the held-out list
    assert all(float(r.split(",")[1]) > 0 for r in raw)
    summary = (bundle / "eval" / "summary.md").read_text()
    for row in ("| CT-MRI | 1 |", "| PET-MRI | 1 |", "| SPECT-MRI | 1 |", "| all | 3 |"):
        assert row in summary


def test_inference_colour_for_pet_spect_grey_for_ct(
    trained_real_bundle: tuple[Path, str], harvard_root: Path, tmp_path: Path
) -> None:
    bundle, _ = trained_real_bundle
    data = tmp_path / "pairs"
    for pair, mod, name in (("CT-MRI", "CT", "16003"), ("PET-MRI", "PET", "25016"), ("SPECT-MRI", "SPECT", "3027")):
        for m in ("MRI", mod):
            (data / pair / m).mkdir(parents=True)
            (data / pair / m / f"{name}.png").symlink_to(harvard_root / pair / m / f"{name}.png")
    out = ok(
        run_bundle(
            [
                "run",
                "--config_file",
                "configs/inference.json",
                "--input_dir",
                data,
                "--output_dir",
                tmp_path / "fused",
                *NET,
            ],
            cwd=bundle,
        )
    )
    assert "3 fused images written under" in out
    modes = {p.parent.name: Image.open(p).mode for p in (tmp_path / "fused").glob("*/*.png")}
    assert modes == {"CT-MRI": "L", "PET-MRI": "RGB", "SPECT-MRI": "RGB"}
    ct = np.asarray(Image.open(tmp_path / "fused" / "CT-MRI" / "16003.png"), dtype=float)
    spect = np.asarray(Image.open(tmp_path / "fused" / "SPECT-MRI" / "3027.png"), dtype=float)
    assert ct.shape == (256, 256) and ct.std() > 1.0
    assert spect.shape == (256, 256, 3) and np.abs(spect[..., 0] - spect[..., 2]).mean() > 1.0  # chroma is back
