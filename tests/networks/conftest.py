"""Fixtures of the network tests: real training pairs (grey, [0, 1]) and fixed aligned crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from monai_fusion.data.datalist import find_pairs, split_by_case
from monai_fusion.networks.train_feature_extractor import load_grey_pairs, random_crops


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors gain nothing from two threads, and lose ~10x when the cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def train_pairs(harvard_root: Path) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Eight pairs of the training split (every pair type), as ``(mri, other, modality)``."""
    train, _ = split_by_case(find_pairs(harvard_root).items, val_fraction=0.2, seed=0)
    return load_grey_pairs(train[::70][:8])


@pytest.fixture(scope="session")
def crops(train_pairs) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned 48x48 crops ``(mri, other)`` of the first four pairs, each ``(4, 1, 48, 48)``."""
    gen = torch.Generator().manual_seed(0)
    both = random_crops([np.concatenate([m, o]) for m, o, _ in train_pairs[:4]], 48, gen)
    return both[:, :1].contiguous(), both[:, 1:].contiguous()


#: Reduced widths/depths of each network that keep the tests fast on two CPU cores.
SMALL_CONFIGS: dict[str, dict] = {
    "poster": {"channels": 16, "decoder_channels": (16, 8)},
    "msrpan": {"channels": 16, "decoder_channels": (8,)},
    "msdra": {"channels": 16, "depth": 1, "residual_convs": 2, "decoder_channels": (16, 8)},
}


@pytest.fixture(scope="session")
def small_configs() -> dict[str, dict]:
    """Reduced constructor arguments per network name (same blocks, fewer channels and layers)."""
    return SMALL_CONFIGS
