"""Dictionary version of :class:`NormalizeModality`."""

from __future__ import annotations

from typing import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from .array import NormalizeModality

__all__ = ["NormalizeModalityd", "NormalizeModalityD", "NormalizeModalityDict"]


class NormalizeModalityd(MapTransform):
    """Scale each key to [0, 1] (see :class:`NormalizeModality` for the arguments)."""

    backend = NormalizeModality.backend

    def __init__(
        self,
        keys: KeysCollection,
        mode: str = "auto",
        lower: float = 0.5,
        upper: float = 99.5,
        value_max: float | None = None,
        window: str | tuple[float, float] = "auto",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.normalizer = NormalizeModality(mode, lower, upper, value_max, window)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizer(d[key])
        return d


NormalizeModalityD = NormalizeModalityDict = NormalizeModalityd
