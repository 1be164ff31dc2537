"""Trainer and evaluator factories on MONAI engines, as the bundle's configs call them.

- :func:`create_fusion_trainer`: MONAI ``SupervisedTrainer`` with the two-source batch
  (:class:`~monai_fusion.engines.batch.PrepareFusionBatch`) and the given loss (e.g.
  :class:`~monai_fusion.losses.paired.PairedFusionLoss`, its terms reported by
  :class:`~monai_fusion.handlers.LossTermsHandler`).
- :func:`create_fusion_evaluator`: MONAI ``SupervisedEvaluator`` whose key and additional metrics are the
  project's fusion metrics (:func:`~monai_fusion.handlers.fusion_metric_handlers`).

Handlers live in :mod:`monai_fusion.handlers`, datalists and the sampler in :mod:`monai_fusion.data`, the
bundle's command-line checks in :mod:`monai_fusion.bundle`.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import torch
from ignite.metrics import Metric
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.engines.utils import PrepareBatch
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import Transform
from torch import nn

from ..handlers.fusion_metric import fusion_metric_handlers
from ..handlers.loss_terms import LossTermsHandler
from ..handlers.propagate_errors import PropagateErrors
from ..metrics.protocols import MetricProtocol
from ..metrics.registry import resolve_metrics
from .batch import PrepareFusionBatch

__all__ = ["create_fusion_trainer", "create_fusion_evaluator"]


def create_fusion_trainer(
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
    prepare_batch: PrepareBatch | None = None,
    chroma_keys: Sequence[str] | None = None,
    **kwargs: Any,
) -> SupervisedTrainer:
    """A MONAI ``SupervisedTrainer`` for unsupervised paired fusion.

    The batch's ``mri`` and ``other`` are stacked into ``(B, 2, H, W)``, the network's input and the loss
    target; the loss compares the fused output with both sources. :class:`PropagateErrors` and
    :class:`LossTermsHandler` are attached first, so errors leave the run untouched and every loss term is reported.

    Args:
        device: where to train.
        max_epochs: total epochs (a resumed run continues up to it).
        train_data_loader: batches of preprocessed pairs.
        network: takes ``(B, 2, H, W)``, returns ``(B, 1, H, W)`` (e.g. ``TwoSourceFusionNet``).
        optimizer: its optimizer.
        loss_function: ``loss(pred, sources)``, moved to ``device``, e.g.
            :class:`~monai_fusion.losses.paired.PairedFusionLoss`.
        epoch_length: iterations per epoch (``None``: the loader's length).
        train_handlers: further handlers, attached in order after :class:`LossTermsHandler`.
        inferer: default ``SimpleInferer``.
        amp: automatic mixed precision.
        keys: the source keys, MRI first.
        prepare_batch: how a batch becomes ``(input, target)``; default ``PrepareFusionBatch(keys)``
            (:func:`~monai_fusion.engines.reconstruction.create_reconstruction_trainer` passes its own).
        chroma_keys: the other source's Cb and Cr keys, stacked into the target for a loss that scores the written
            colour image (``StructureFusionLoss(written=True)``).
        kwargs: other ``SupervisedTrainer`` arguments (``decollate`` defaults to False: no postprocessing).

    Returns:
        The trainer (not yet run).
    """
    if prepare_batch is not None and chroma_keys:
        raise ValueError("create_fusion_trainer: give chroma_keys or prepare_batch, not both (chroma_keys builds one)")
    kwargs.setdefault("decollate", False)
    dev = torch.device(device)
    loss = loss_function.to(dev)  # e.g. its perceptual net
    return SupervisedTrainer(
        device=dev,
        max_epochs=int(max_epochs),
        train_data_loader=train_data_loader,
        network=network,
        optimizer=optimizer,
        loss_function=loss,
        epoch_length=epoch_length,
        prepare_batch=prepare_batch or PrepareFusionBatch(keys, chroma_keys=chroma_keys),
        inferer=inferer or SimpleInferer(),
        train_handlers=[PropagateErrors(), LossTermsHandler(), *(train_handlers or [])],
        amp=amp,
        **kwargs,
    )


def create_fusion_evaluator(
    device: str | torch.device,
    val_data_loader: Iterable,
    network: nn.Module,
    metrics: str | Sequence[str] | None = ("SSIM",),
    key_metric: str | None = None,
    protocol: str | MetricProtocol = "standard",
    key_val_metric: Mapping[str, Metric] | None = None,
    val_handlers: Sequence[Any] | None = None,
    postprocessing: Transform | None = None,
    inferer: Inferer | None = None,
    epoch_length: int | None = None,
    amp: bool = False,
    keys: Sequence[str] = ("mri", "other"),
    modality_key: str | None = None,
    **kwargs: Any,
) -> SupervisedEvaluator:
    """A MONAI ``SupervisedEvaluator`` whose key and additional metrics are the project's fusion metrics.

    Outputs are ``{"image", "label", "pred"}`` with ``image`` = ``label`` = ``cat([mri, other], 1)``; each
    metric compares ``clamp(pred, 0, 1)`` with both sources under ``protocol`` (:class:`FusionMetricOutput`).

    Args:
        device: where to run.
        val_data_loader: batches of preprocessed pairs.
        network: takes ``(B, 2, H, W)``.
        metrics: metric names (empty or ``None`` with ``key_metric=None``: no metrics, as for inference).
        key_metric: the metric that picks the best model (default: the first of ``metrics``).
        protocol: metric protocol.
        key_val_metric: the key metric as ``{name: metric}``, the model zoo's ``validate#key_metric`` (for example
            :func:`~monai_fusion.handlers.fusion_metric_handlers` of one name); replaces the handler
            ``key_metric`` would build. Its name must agree with ``key_metric`` when both are given.
        val_handlers: handlers, attached in order after :class:`PropagateErrors`.
        postprocessing: transform of each decollated ``batch + output`` item (e.g. colour merge for writing).
        inferer: default ``SimpleInferer``.
        epoch_length: iterations per run (``None``: the loader's length).
        amp: automatic mixed precision.
        keys: the source keys, MRI first.
        modality_key: batch key of the other source's modality, passed to the network as ``modality=[...]``
            (:class:`~monai_fusion.engines.batch.PrepareFusionBatch`); ``None``: not passed.
        kwargs: other ``SupervisedEvaluator`` arguments.

    Returns:
        The evaluator; after ``run()``, ``state.metrics`` holds each metric's mean.
    """
    names = list(resolve_metrics(metrics)) if metrics else []
    key = resolve_metrics([key_metric])[0] if key_metric else None
    if key_val_metric is not None:
        if len(key_val_metric) != 1:
            raise ValueError(f"key_val_metric: expected one {{name: metric}} entry, got {sorted(key_val_metric)}")
        given = next(iter(key_val_metric))
        if key is not None and given != key:
            raise ValueError(f"key_val_metric is {given!r} but key_metric is {key!r}; give one of them, or the same")
        rest = [n for n in names if n != given]
        handlers = fusion_metric_handlers(rest, protocol) if rest else {}
        key_val_metric = dict(key_val_metric)
    else:
        key = key or (names[0] if names else None)
        handlers = fusion_metric_handlers([key, *[n for n in names if n != key]], protocol) if key else {}
        key_val_metric = {key: handlers.pop(key)} if key is not None else None
    return SupervisedEvaluator(
        device=torch.device(device),
        val_data_loader=val_data_loader,
        network=network,
        epoch_length=epoch_length,
        prepare_batch=PrepareFusionBatch(keys, modality_key),
        inferer=inferer or SimpleInferer(),
        postprocessing=postprocessing,
        key_val_metric=key_val_metric,
        additional_metrics=handlers or None,
        val_handlers=[PropagateErrors(), *(val_handlers or [])],
        amp=amp,
        **kwargs,
    )
