"""The fusion loss in paired mode, as MONAI's ``SupervisedTrainer`` calls it: ``loss(pred, sources)``."""

from __future__ import annotations

import torch

from ..losses.fusion import FusionLoss
from ..utils.errors import FusionInputError

__all__ = ["PairedFusionLoss"]


class PairedFusionLoss(FusionLoss):
    """:class:`~monai_fusion.losses.FusionLoss` in paired mode for MONAI trainers: ``loss(pred, sources)``.

    A ``SupervisedTrainer`` calls ``loss_function(pred, target)``; with
    :class:`~monai_fusion.engines.batch.PrepareFusionBatch` the target is ``cat([mri, other], 1)``, which
    this loss splits into the two sources of :meth:`FusionLoss.forward` (each term taken against both).
    Explicit ``loss(pred, mri, other)`` calls work as in the parent. Takes the parent's arguments.
    """

    def forward(self, pred: torch.Tensor, target: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted total over both sources; the terms are kept in ``last_terms``."""
        if other is None:
            c = pred.shape[1]
            if target.ndim != pred.ndim or target.shape[1] != 2 * c:
                raise FusionInputError(
                    f"PairedFusionLoss: target must stack both sources, (B, {2 * c}, H, W), got {tuple(target.shape)}"
                )
            target, other = target[:, :c], target[:, c:]
        return super().forward(pred, target, other)
