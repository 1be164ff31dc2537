"""Fixtures for the metric tests: structured synthetic images and one real pair per pair type."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F


def structured(seed: int, size: int = 64, n: int = 1) -> torch.Tensor:
    """``(n, 1, size, size)`` float64 images in [0, 255]: smooth blobs, a step edge and mild noise."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 1, 6, 6, generator=g, dtype=torch.float64)
    img = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    step = (torch.arange(size, dtype=torch.float64) > size * float(torch.rand(1, generator=g))).double()
    img = img + 0.5 * step.view(1, 1, 1, -1) + 0.05 * torch.rand(n, 1, size, size, generator=g, dtype=torch.float64)
    img = img - img.amin(dim=(1, 2, 3), keepdim=True)
    return img / img.amax(dim=(1, 2, 3), keepdim=True) * 255.0


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    """These tests use small images, where a second torch thread only adds synchronisation (and
    stalls when another job holds the other core); restore the thread count afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def images() -> Callable[..., torch.Tensor]:
    """Factory ``images(seed, size=64, n=1)`` of structured test images (see :func:`structured`)."""
    return structured


@pytest.fixture(scope="session")
def real_pairs(harvard_root: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """First pair of each pair type as ``(mri, other luminance)``, ``(1, 1, 256, 256)`` float64 on 0..255."""
    from monai_fusion.data.datalist import find_pairs
    from monai_fusion.data.io import read_image

    out = {}
    for pair in ("CT-MRI", "PET-MRI", "SPECT-MRI"):
        it = find_pairs(harvard_root, pair).items[0]
        mri = read_image(it["mri"], "MRI").array
        other = read_image(it["other"], it["modality"]).array
        if other.shape[0] == 3:
            other = np.tensordot(np.array([0.299, 0.587, 0.114], dtype=np.float32), other, axes=1)[None]
        out[pair] = (torch.from_numpy(mri).double()[None], torch.from_numpy(other).double()[None])
    return out
