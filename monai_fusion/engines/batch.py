"""Two-input batch preparation for MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator``.

MONAI's default ``prepare_batch`` reads ``image`` and ``label``; fusion has two inputs and no
label. :class:`PrepareFusionBatch` stacks ``mri`` and ``other`` into one ``(B, 2, H, W)`` tensor that
is both the network input (the fusion networks take the two sources as channels) and the target
(the unsupervised fusion loss and the fusion metrics compare the output with both sources).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from monai.data import MetaTensor
from monai.engines.utils import PrepareBatch

from ..utils.errors import FusionInputError

__all__ = ["PrepareFusionBatch", "stack_sources"]


def stack_sources(batch: dict[str, Any], keys: Sequence[str] = ("mri", "other")) -> torch.Tensor:
    """Concatenate the single-channel source images of a batch along channels: ``(B, 2, H, W)``.

    Raises:
        FusionInputError: a key is missing or a source is not single-channel.
    """
    parts = []
    for k in keys:
        if k not in batch:
            raise FusionInputError(f"batch has no {k!r} key; expected keys {', '.join(keys)} (got {', '.join(map(str, batch))})")
        t = torch.as_tensor(batch[k])
        if t.ndim < 3 or t.shape[1] != 1:
            raise FusionInputError(f"batch[{k!r}] must be (B, 1, ...) (grey or luminance), got {tuple(t.shape)}")
        parts.append(t)
    return torch.cat(parts, dim=1)


class PrepareFusionBatch(PrepareBatch):
    """Return ``(sources, sources)``: the stacked ``mri`` + ``other`` images as input and as target.

    When the batch has ``pair_type`` the target is a ``MetaTensor`` view of the same data whose
    ``meta["pair_type"]`` lists them (read by :class:`~monai_fusion.losses.StructureFusionLoss`'s
    ``pair_weights``).

    Args:
        keys: the source keys, MRI first.
    """

    def __init__(self, keys: Sequence[str] = ("mri", "other")) -> None:
        self.keys = tuple(keys)

    def __call__(self, batchdata: dict[str, torch.Tensor], device: str | torch.device | None = None,
                 non_blocking: bool = False, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x = stack_sources(batchdata, self.keys).to(device=device, non_blocking=non_blocking, **kwargs)
        pair_types = batchdata.get("pair_type") if isinstance(batchdata, dict) else None
        if pair_types is None:
            return x, x
        # the target carries each sample's pair type, for losses with per-pair-type settings
        target = MetaTensor(x.as_tensor() if isinstance(x, MetaTensor) else x)
        target.meta["pair_type"] = [str(p) for p in pair_types]
        return x, target
