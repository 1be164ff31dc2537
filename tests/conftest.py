"""Shared fixtures: where the real Whole Brain Atlas pairs are (a skip when they are absent), and the scripts of
``benchmarks/`` loaded as modules."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
#: ``../shared/data/harvard`` beside the checkout (as in CI); override with MONAI_FUSION_HARVARD.
HARVARD = Path(os.environ.get("MONAI_FUSION_HARVARD", ROOT.parent / "shared" / "data" / "harvard"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def harvard_root() -> Path:
    """Path of the shared Whole Brain Atlas pairs; skips the test when the folder is absent."""
    if not (HARVARD / "CT-MRI").is_dir():
        pytest.skip(
            f"shared data not found at {HARVARD} (clone the project beside ../shared or set MONAI_FUSION_HARVARD)"
        )
    return HARVARD


@pytest.fixture(scope="session")
def benchmark_script() -> Callable[[str], ModuleType]:
    """A loader of ``benchmarks/<name>.py`` as a module (the benchmarks are scripts, not a package): call it with the
    script's file name without ``.py``, e.g. ``benchmark_script("calibrate_detail_gain")``; a fresh copy each call."""
    return _load_benchmark_script


def _load_benchmark_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
