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

from ..utils.constants import check_modality
from ..utils.errors import FusionInputError

__all__ = ["PrepareFusionBatch", "PrepareReconstructionBatch", "stack_sources"]


def stack_sources(batch: dict[str, Any], keys: Sequence[str] = ("mri", "other")) -> torch.Tensor:
    """Concatenate the single-channel source images of a batch along channels: ``(B, 2, H, W)``.

    Raises:
        FusionInputError: a key is missing or a source is not single-channel.
    """
    parts = []
    for k in keys:
        if k not in batch:
            raise FusionInputError(
                f"batch has no {k!r} key; expected keys {', '.join(keys)} (got {', '.join(map(str, batch))})"
            )
        t = torch.as_tensor(batch[k])
        if t.ndim < 3 or t.shape[1] != 1:
            raise FusionInputError(f"batch[{k!r}] must be (B, 1, ...) (grey or luminance), got {tuple(t.shape)}")
        parts.append(t)
    return torch.cat(parts, dim=1)


class PrepareFusionBatch(PrepareBatch):
    """Return ``(sources, target)``: the stacked ``mri`` + ``other`` images as input and as target (the target
    with the chroma too when ``chroma_keys`` are given).

    When the batch has ``pair_type`` the target is a ``MetaTensor`` view of the same data whose
    ``meta["pair_type"]`` lists them (read by :class:`~monai_fusion.losses.StructureFusionLoss`'s
    ``pair_weights``). With ``modality_key`` the network is also called with ``modality=[...]``, the batch's
    other-source modality per sample (for :class:`~monai_fusion.networks.WeightMapFusionNet` with a detail gain
    per modality); MONAI's engines pass it on as a keyword argument of the network.

    With ``chroma_keys`` the target also stacks the other source's chroma, ``cat([mri, other, cb, cr], 1)``
    (for :class:`~monai_fusion.losses.StructureFusionLoss` with ``written=True``); the input stays the two sources.

    Args:
        keys: the source keys, MRI first.
        modality_key: the batch key holding the other source's modality (``None``: the network gets none).
        chroma_keys: the batch keys of the other source's Cb and Cr (``None``: the target has no chroma).
    """

    def __init__(
        self,
        keys: Sequence[str] = ("mri", "other"),
        modality_key: str | None = None,
        chroma_keys: Sequence[str] | None = None,
    ) -> None:
        self.keys = tuple(keys)
        self.modality_key = modality_key
        self.chroma_keys = tuple(chroma_keys) if chroma_keys else ()
        if self.chroma_keys and len(self.chroma_keys) != 2:
            raise FusionInputError(f"PrepareFusionBatch: chroma_keys must name Cb and Cr, got {chroma_keys}")

    def __call__(
        self,
        batchdata: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[Any, ...]:
        x = stack_sources(batchdata, self.keys).to(device=device, non_blocking=non_blocking, **kwargs)
        pair_types = batchdata.get("pair_type") if isinstance(batchdata, dict) else None
        target = x
        if self.chroma_keys:
            chroma = stack_sources(batchdata, self.chroma_keys).to(device=device, non_blocking=non_blocking, **kwargs)
            target = torch.cat([x, chroma], dim=1)
        if pair_types is not None:
            # the target carries each sample's pair type, for losses with per-pair-type settings
            target = MetaTensor(target.as_tensor() if isinstance(target, MetaTensor) else target)
            target.meta["pair_type"] = [str(p) for p in pair_types]
        if self.modality_key is None:
            return x, target
        modality = batchdata.get(self.modality_key) if isinstance(batchdata, dict) else None
        if modality is None:
            raise FusionInputError(
                f"batch has no {self.modality_key!r} key (the other source's modality, which the "
                f"network needs); got keys {', '.join(map(str, batchdata))}"
            )
        names = check_modality(
            [modality] if isinstance(modality, str) else list(modality),
            int(x.shape[0]),
            what=f"batch[{self.modality_key!r}]",
        )
        return x, target, (), {"modality": names}


class PrepareReconstructionBatch(PrepareBatch):
    """Return ``(images, images)``: every source image of the batch as a sample of its own, ``(B * 2, 1, H, W)``.

    The autoencoder recipe of the poster (and of MSRPAN / MSDRA) trains the network to reconstruct single
    images: the MRI and the other source's luminance of each pair are stacked along the batch axis (MRIs first),
    and the same tensor is the input and the target.

    Args:
        keys: the source keys.
    """

    def __init__(self, keys: Sequence[str] = ("mri", "other")) -> None:
        self.keys = tuple(keys)

    def __call__(
        self,
        batchdata: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = stack_sources(batchdata, self.keys)  # (B, 2, H, W): checks every key is there and single-channel
        x = x.transpose(0, 1).reshape(-1, 1, *x.shape[2:])
        x = x.as_tensor() if isinstance(x, MetaTensor) else x
        x = x.to(device=device, non_blocking=non_blocking, **kwargs)
        return x, x
