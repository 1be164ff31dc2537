"""A sampler that balances the pair types of a training datalist."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..utils.errors import FusionInputError

__all__ = ["pair_type_sampler"]


def pair_type_sampler(
    data: Sequence[dict[str, Any]], num_samples: int | None = None, seed: int = 0
) -> torch.utils.data.WeightedRandomSampler:
    """A sampler that draws every pair type equally often (each item weighted by 1 / its type's count).

    The atlas has 125 CT-MRI training pairs against 160 PET-MRI and 270 SPECT-MRI; with plain shuffling
    the network would mostly learn the SPECT-MRI trade-off. Uses PyTorch's ``WeightedRandomSampler``.

    Args:
        data: the training datalist (items with ``pair_type``).
        num_samples: draws per epoch (default: the datalist's length).
        seed: seed of the sampler's generator.

    Returns:
        The sampler, to pass as a ``DataLoader``'s ``sampler`` (with ``shuffle`` false).
    """
    if not data:
        raise FusionInputError("pair_type_sampler: the training datalist is empty")
    counts: dict[str, int] = {}
    for item in data:
        counts[item.get("pair_type", "")] = counts.get(item.get("pair_type", ""), 0) + 1
    weights = torch.tensor([1.0 / counts[item.get("pair_type", "")] for item in data], dtype=torch.double)
    return torch.utils.data.WeightedRandomSampler(
        weights, num_samples or len(data), replacement=True, generator=torch.Generator().manual_seed(int(seed))
    )
