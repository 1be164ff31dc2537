"""Bundle sharing for real: the bundle runs, exports, infers and trains where only it and the installed package are.

``make share-env`` builds ``.venv-share`` with nothing but the wheel of ``make dist`` and the packages the bundle
metadata pins. Here the current tree's wheel is reinstalled into it, the bundle is packed as the single zip a
user downloads (``monai_fusion.bundle.pack_bundle``) and unpacked with ``python -m monai.bundle download --url``
into a temporary folder, and every command runs there with that venv's python: no repository on the path.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
from PIL import Image

from monai_fusion.bundle.sharing import pack_bundle
from monai_fusion.data import write_demo_dataset

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "bundles" / "multimodal_fusion"
SHARE_VENV = ROOT / ".venv-share"
#: A smoke run of each training config: two iterations of two pairs, one epoch, a narrow network.
SMOKE = ["--epochs", "1", "--batch_size", "2", "--epoch_length", "2", "--max_train_pairs", "4"]
SMOKE += ["--max_val_pairs", "2", "--val_batch_size", "2", "--num_workers", "0", "--network_def#channels", "4"]
TRAIN_CONFIGS = {
    "train.json": ["--patch_size", "[64, 64]", "--val_metrics", "['SSIM']", "--ckpt_dir", "{tmp}/ckpt"],
    "train_poster.json": ["--patch_size", "[32, 32]", "--network_def#decoder_channels", "[8, 8]"],
    "train_msrpan.json": ["--patch_size", "[32, 32]"],
    "train_msdra.json": ["--patch_size", "[32, 32]"],
}


def _share_python() -> Path:
    """The sharing venv's python; skipped (or, under MONAI_FUSION_REQUIRE_APPS=1, failed) when absent."""
    python = SHARE_VENV / "bin" / "python"
    if not (python.is_file() and (SHARE_VENV / ".installed").is_file()):
        msg = f"bundle sharing environment {SHARE_VENV} is missing: run make share-env"
        if os.environ.get("MONAI_FUSION_REQUIRE_APPS") == "1":
            pytest.fail(msg + " (MONAI_FUSION_REQUIRE_APPS=1)")
        pytest.skip(msg)
    return python


def _run(python: Path, args: Sequence[str], cwd: Path, timeout: float = 600) -> str:
    """Run ``python args`` in ``cwd`` with no project path or shared data in the environment; its output."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MONAI_FUSION_HARVARD", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PATH=f"{python.parent}:{env.get('PATH', '')}")
    cmd = [str(python), *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, env=env, text=True, encoding="utf-8", capture_output=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{python} {' '.join(map(str, args))} (in {cwd}) failed:\n{out[-6000:]}"
    return out


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(sharing python, the downloaded bundle folder, the embedded dataset), the wheel of this tree installed."""
    python = _share_python()
    tmp = tmp_path_factory.mktemp("sharing")
    build = [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", tmp / "dist", ROOT]
    _run(Path(sys.executable), build[1:], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("monai_fusion-*.whl")
    _run(python, ["-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel], cwd=tmp)
    archive = pack_bundle(BUNDLE, tmp / "zip" / "multimodal_fusion.zip")
    url = archive.resolve().as_uri()
    download = ["-m", "monai.bundle", "download", "--name", "multimodal_fusion", "--url", url]
    _run(python, [*download, "--bundle_dir", tmp / "bundles"], tmp)
    bundle = tmp / "bundles" / "multimodal_fusion"
    assert (bundle / "models" / "model.pt").is_file() and not (bundle / "eval").exists()
    return python, bundle, write_demo_dataset(tmp / "demo")


def test_the_package_is_the_installed_wheel_with_no_repository_on_the_path(shared: tuple[Path, Path, Path]) -> None:
    python, bundle, _ = shared
    code = "import monai_fusion, sys; print(monai_fusion.__file__); print(monai_fusion.__version__); print(sys.path)"
    file, version, path = _run(python, ["-c", code], cwd=bundle).splitlines()[-3:]
    assert Path(file).is_relative_to(SHARE_VENV)
    entries = [Path(e).resolve() for e in ast.literal_eval(path) if e]
    assert not [e for e in entries if e.is_relative_to(ROOT.resolve()) and not e.is_relative_to(SHARE_VENV.resolve())]
    import monai_fusion

    assert version == monai_fusion.__version__


def test_verify_metadata_verify_net_in_out_and_ckpt_export(shared: tuple[Path, Path, Path]) -> None:
    python, bundle, _ = shared
    meta = ["--meta_file", "configs/metadata.json"]
    out = _run(python, ["-m", "monai.bundle", "verify_metadata", *meta, "--filepath", "configs/schema.json"], bundle)
    assert "metadata is verified with no error" in out
    net = ["network_def", *meta, "--config_file", "configs/inference.json"]
    out = _run(python, ["-m", "monai.bundle", "verify_net_in_out", *net, "--any", "64"], bundle)
    assert "verified with no error" in out
    exported = bundle.parent / "exported.ts"
    args = ["-m", "monai.bundle", "ckpt_export", *net, "--filepath", exported, "--ckpt_file", "models/model.pt"]
    assert "exported to file" in _run(python, args, bundle)
    same = (
        "import torch; torch.set_grad_enabled(False); torch.manual_seed(0); x = torch.rand(2, 2, 64, 64); "
        f"m = ['CT', 'PET']; a = torch.jit.load('models/model.ts')(x, modality=m); "
        f"b = torch.jit.load('{exported}')(x, modality=m); print('max difference', float((a - b).abs().max()))"
    )
    found = re.search(r"max difference (\S+)", _run(python, ["-c", same], bundle))
    assert found and float(found.group(1)) < 1e-6


def test_inference_on_the_embedded_pairs_equals_the_repositorys(shared: tuple[Path, Path, Path]) -> None:
    python, bundle, demo = shared
    run = ["-m", "monai.bundle", "run", "--input_dir", demo, "--register", "False"]
    here, there = bundle.parent / "fused_shared", bundle.parent / "fused_repo"
    _run(python, [*run, "--config_file", "configs/inference.json", "--output_dir", here], bundle)
    _run(
        Path(sys.executable),
        [*run, "--config_file", BUNDLE / "configs" / "inference.json", "--output_dir", there],
        ROOT,
    )
    pngs = sorted(p.relative_to(here) for p in here.rglob("*.png"))
    assert pngs and pngs == sorted(p.relative_to(there) for p in there.rglob("*.png"))
    for rel in pngs:
        a = np.asarray(Image.open(here / rel), dtype=np.int16)
        b = np.asarray(Image.open(there / rel), dtype=np.int16)
        assert a.shape == b.shape and int(np.abs(a - b).max()) <= 1, rel


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(TRAIN_CONFIGS))
def test_one_short_training_run_of_every_training_config(shared: tuple[Path, Path, Path], config: str) -> None:
    python, bundle, demo = shared
    merged = config in ("train_msrpan.json", "train_msdra.json")  # merged over the poster's recipe
    files = f"['configs/train_poster.json','configs/{config}']" if merged else f"configs/{config}"
    extra = [a.format(tmp=bundle.parent / config) for a in TRAIN_CONFIGS[config]]
    args = ["-m", "monai.bundle", "run", "training", "--config_file", files, "--dataset_dir", demo, *SMOKE, *extra]
    out = _run(python, args, bundle)
    assert "Epoch[1] Complete" in out
