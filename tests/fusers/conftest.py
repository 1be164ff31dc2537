"""Fixtures of the fuser tests: real registered pairs as ``(1, 1, 256, 256)`` tensors in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from monai_fusion.data.datalist import find_pairs
from monai_fusion.networks.train_feature_extractor import load_grey_pairs


@pytest.fixture(scope="session", params=["CT-MRI", "PET-MRI", "SPECT-MRI"])
def real_pair(request, harvard_root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The first pair of each pair type: ``(mri, other luminance)``."""
    mri, other, _ = load_grey_pairs(find_pairs(harvard_root, request.param).items[:1])[0]
    return torch.from_numpy(mri)[None], torch.from_numpy(other)[None]
