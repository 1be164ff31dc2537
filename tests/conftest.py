"""Shared fixtures: where the real Whole Brain Atlas pairs are, and a skip when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

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
