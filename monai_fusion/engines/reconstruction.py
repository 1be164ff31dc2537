"""Trainer and evaluator factories for the autoencoder recipe (the poster's network, MSRPAN, MSDRA).

These networks learn to reconstruct single images (``net(x) ~ x``; every MRI and every CT / PET / SPECT
luminance image is a sample of its own) and fuse only at inference, where both sources are encoded, their
features merged by the network's fusion rule and the result decoded. The batch is therefore
:class:`~monai_fusion.engines.batch.PrepareReconstructionBatch`, the loss is
:class:`~monai_fusion.losses.FusionLoss` in reconstruction mode and the evaluator's key metric is the
validation loss, lower is better (the checkpoint with the lowest validation loss is kept, as the authors do).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch
from ignite.metrics import Loss
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.inferers import Inferer, SimpleInferer
from torch import nn

from ..handlers.propagate_errors import PropagateErrors
from .batch import PrepareReconstructionBatch
from .training import create_fusion_trainer

__all__ = ["create_reconstruction_trainer", "create_reconstruction_evaluator", "lower_is_better"]


def lower_is_better(current: float, best: float) -> bool:
    """``metric_cmp_fn`` of an evaluator whose key metric is a loss.

    MONAI's workflows start ``state.best_metric`` at ``-1``; a loss is never negative, so a negative best means
    "none yet".
    """
    return best < 0 or current < best


def _pred_label(output: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return output["pred"], output["label"]


def create_reconstruction_trainer(
    device: str | torch.device,
    max_epochs: int,
    train_data_loader: Iterable,
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_function: nn.Module,
    epoch_length: int | None = None,
    train_handlers: Sequence[Any] | None = None,
    inferer: Inferer | None = None,
    amp: bool = False,
    keys: Sequence[str] = ("mri", "other"),
    **kwargs: Any,
) -> SupervisedTrainer:
    """A MONAI ``SupervisedTrainer`` that trains ``network(x) ~ x`` on every source image of the batches.

    It is :func:`~monai_fusion.engines.training.create_fusion_trainer` (the same handlers and defaults) with
    :class:`~monai_fusion.engines.batch.PrepareReconstructionBatch`.

    Args:
        device: where to train.
        max_epochs: total epochs (a resumed run continues up to it).
        train_data_loader: batches of preprocessed pairs (each pair gives two samples).
        network: a :class:`~monai_fusion.networks.nets.base.FeatureFusionNet` (called with one input).
        optimizer: its optimizer.
        loss_function: ``loss(pred, target)``, e.g. :class:`~monai_fusion.losses.FusionLoss`; moved to ``device``.
        epoch_length: iterations per epoch (``None``: the loader's length).
        train_handlers: further handlers, attached after :class:`LossTermsHandler`.
        inferer: default ``SimpleInferer``.
        amp: automatic mixed precision.
        keys: the source keys of the batch.
        kwargs: other ``SupervisedTrainer`` arguments (``decollate`` defaults to False).

    Returns:
        The trainer (not yet run).
    """
    return create_fusion_trainer(
        device,
        max_epochs,
        train_data_loader,
        network,
        optimizer,
        loss_function,
        epoch_length=epoch_length,
        train_handlers=train_handlers,
        inferer=inferer,
        amp=amp,
        keys=keys,
        prepare_batch=PrepareReconstructionBatch(keys),
        **kwargs,
    )


def create_reconstruction_evaluator(
    device: str | torch.device,
    val_data_loader: Iterable,
    network: nn.Module,
    loss_function: nn.Module,
    key_metric: str = "val_loss",
    val_handlers: Sequence[Any] | None = None,
    inferer: Inferer | None = None,
    epoch_length: int | None = None,
    amp: bool = False,
    keys: Sequence[str] = ("mri", "other"),
    **kwargs: Any,
) -> SupervisedEvaluator:
    """A MONAI ``SupervisedEvaluator`` whose key metric is the reconstruction loss of the validation images.

    The key metric is the mean of ``loss_function`` over the validation samples (Ignite's ``Loss``), and the
    best is the lowest (:func:`lower_is_better`); a ``CheckpointSaver`` ranking by it needs
    ``key_metric_negative_sign=True``. ``val_mse`` (the pixel term alone) is reported beside it.

    Args:
        device: where to run.
        val_data_loader: batches of preprocessed pairs (each pair gives two samples).
        network: the network being trained.
        loss_function: the training loss (moved to ``device``).
        key_metric: the name of the loss metric.
        val_handlers: handlers, attached after :class:`PropagateErrors`.
        inferer: default ``SimpleInferer``.
        epoch_length: iterations per run (``None``: the loader's length).
        amp: automatic mixed precision.
        keys: the source keys of the batch.
        kwargs: other ``SupervisedEvaluator`` arguments (``decollate`` defaults to False).

    Returns:
        The evaluator; after ``run()``, ``state.metrics`` holds ``key_metric`` and ``val_mse``.
    """
    kwargs.setdefault("decollate", False)
    kwargs.setdefault("metric_cmp_fn", lower_is_better)
    dev = torch.device(device)
    loss = loss_function.to(dev)
    return SupervisedEvaluator(
        device=dev,
        val_data_loader=val_data_loader,
        network=network,
        epoch_length=epoch_length,
        prepare_batch=PrepareReconstructionBatch(keys),
        inferer=inferer or SimpleInferer(),
        key_val_metric={key_metric: Loss(loss, output_transform=_pred_label)},
        additional_metrics={"val_mse": Loss(nn.MSELoss(), output_transform=_pred_label)},
        val_handlers=[PropagateErrors(), *(val_handlers or [])],
        amp=amp,
        **kwargs,
    )
