"""Training and evaluation of the fusion networks on MONAI engines, as the bundle runs them.

Everything ``bundles/multimodal_fusion/configs/*.json`` does is reachable from Python here:

- :func:`create_fusion_trainer` / :func:`create_fusion_evaluator`: MONAI ``SupervisedTrainer`` /
  ``SupervisedEvaluator`` with the two-source batch (:class:`~monai_fusion.engines.batch.PrepareFusionBatch`),
  the paired fusion loss (:class:`PairedFusionLoss`, its terms reported by :class:`LossTermsHandler`) and
  the project's fusion metrics as key and additional metrics (:func:`fusion_metric_handlers`).
- :class:`AtomicCheckpointSaver` (checkpoints written through a temporary file and a rename; the
  previous one removed only after the next is safely written) and :class:`CheckedCheckpointLoader`
  (resume from the last checkpoint, or load trained weights, checked before the engine starts).
- :class:`MetricSummaryWriter` (mean +- std per pair type) and :class:`FusedImageWriter` (fused PNGs).
- :func:`bundle_datalist` (validated datalist, split by case), :func:`default_dataset_dir`,
  :func:`write_demo_dataset` (the embedded MNI152 MRI/PET pair as a small dataset in the atlas layout).
- :func:`install_input_error_hook`, :func:`check_cli_overrides`, :func:`check_training_settings`: bad
  input through ``python -m monai.bundle`` ends with one ``error:`` line instead of a traceback.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import logging
import os
import sys
import warnings
from pathlib import Path
from pydoc import locate
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver
from monai.data import decollate_batch
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import CheckpointLoader, CheckpointSaver, from_engine
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import Transform
from monai.utils import string_list_all_gather
from torch import nn

from ..data.datalist import find_pairs, split_by_case
from ..losses.fusion import FusionLoss
from ..metrics.handlers import FusionMetricHandler
from ..metrics.protocols import MetricProtocol, get_protocol
from ..metrics.registry import METRICS, resolve_metrics
from ..utils.constants import PAIR_TYPES
from ..utils.errors import FusionInputError, find_input_error
from ..utils.paths import output_path, safe_filename
from .batch import PrepareFusionBatch
from .evaluation import format_metric_table

__all__ = [
    "PairedFusionLoss",
    "LossTermsHandler",
    "PropagateErrors",
    "loss_terms_output",
    "FusionMetricOutput",
    "fusion_metric_handlers",
    "create_fusion_trainer",
    "create_fusion_evaluator",
    "AtomicDiskSaver",
    "AtomicCheckpointSaver",
    "CheckedCheckpointLoader",
    "pair_ids",
    "MetricSummaryWriter",
    "FusedImageWriter",
    "bundle_datalist",
    "pair_type_sampler",
    "default_dataset_dir",
    "write_demo_dataset",
    "parse_bundle_argv",
    "bundle_root_from_cli",
    "check_cli_overrides",
    "check_training_settings",
    "install_input_error_hook",
    "distributed_device",
    "init_distributed",
]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- loss
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


class LossTermsHandler:
    """Report every term of the trainer's fusion loss to the engine.

    Each iteration, ``loss_mse``, ``loss_grad`` and ``loss_perc`` (from the loss function's ``last_terms``)
    join ``loss`` in ``engine.state.output`` (every item when decollated); each epoch, their means land in
    ``engine.state.metrics`` as ``train_loss``, ``train_mse``, ``train_grad``, ``train_perc``, where
    ``StatsHandler`` and ``TensorBoardStatsHandler`` print and plot them.

    Args:
        loss_function: the loss holding ``last_terms``; ``None``: the engine's ``loss_function``.
        output_prefix: prefix of the per-iteration keys.
        metric_prefix: prefix of the epoch means.
    """

    def __init__(self, loss_function: nn.Module | None = None, output_prefix: str = "loss_",
                 metric_prefix: str = "train_") -> None:
        self.loss_function = loss_function
        self.output_prefix = output_prefix
        self.metric_prefix = metric_prefix
        self._sums: dict[str, float] = {}
        self._count = 0

    def attach(self, engine: Engine) -> None:
        """Register on the trainer's epoch and iteration events."""
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch)

    def _reset(self, _engine: Engine) -> None:
        self._sums, self._count = {}, 0

    def _iteration(self, engine: Engine) -> None:
        loss = self.loss_function if self.loss_function is not None else getattr(engine, "loss_function", None)
        terms = dict(getattr(loss, "last_terms", None) or {})
        if not terms:
            return
        extra = {f"{self.output_prefix}{k}": v for k, v in terms.items() if k != "total"}
        out = engine.state.output
        for item in out if isinstance(out, list) else [out]:
            if isinstance(item, dict):
                item.update(extra)
        for k, v in terms.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)
        self._count += 1

    def _epoch(self, engine: Engine) -> None:
        if self._count:
            means = {("loss" if k == "total" else k): v / self._count for k, v in self._sums.items()}
            engine.state.metrics.update({f"{self.metric_prefix}{k}": v for k, v in means.items()})


class PropagateErrors:
    """Re-raise an exception of the engine's run at once, before any other ``EXCEPTION_RAISED`` handler.

    Ignite hands an exception to the ``EXCEPTION_RAISED`` handlers, and MONAI's ``StatsHandler`` logs it with
    its whole traceback before re-raising. Attached first (the engine factories here do), this handler lets the
    exception leave ``engine.run()`` untouched instead: bad input then ends in the one ``error:`` line of
    :func:`install_input_error_hook`, and any other error in Python's own traceback, printed once.
    """

    def attach(self, engine: Engine) -> None:
        """Register on ``EXCEPTION_RAISED``."""
        engine.add_event_handler(Events.EXCEPTION_RAISED, self)

    def __call__(self, _engine: Engine, err: BaseException) -> None:
        """Re-raise ``err``."""
        raise err


def loss_terms_output(output: Any) -> dict[str, float]:
    """``loss`` and the ``loss_*`` terms of a trainer's ``engine.state.output`` (first item when decollated).

    The ``output_transform`` of ``StatsHandler`` / ``TensorBoardStatsHandler`` that prints or plots each term.
    """
    first = output[0] if isinstance(output, list) and output else output
    if not isinstance(first, Mapping):
        return {}
    return {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
            for k, v in first.items() if k == "loss" or str(k).startswith("loss_")}


# ------------------------------------------------------------------------------------------- metrics
class FusionMetricOutput:
    """``output_transform`` of the fusion metric handlers: fused prediction and stacked sources, on the
    protocol's value range.

    Network outputs are clamped to [0, 1] (as the fusers and the written images are) and mapped with the
    sources to ``low + x * width`` of the protocol (``standard``: 0..255).

    Args:
        protocol: metric protocol name or object.
        pred_key: key of the fused prediction in ``engine.state.output``.
        label_key: key of the stacked sources ``(2, H, W)``.
    """

    def __init__(self, protocol: str | MetricProtocol = "standard", pred_key: str = "pred",
                 label_key: str = "label") -> None:
        self.protocol = get_protocol(protocol)
        self._get = from_engine([pred_key, label_key])

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        lo = self.protocol.value_range[0]
        return torch.as_tensor(x).float().clamp(0.0, 1.0) * self.protocol.width + lo

    def __call__(self, output: Any) -> tuple[Any, Any]:
        """Return ``(y_pred, y)`` as lists (decollated output) or batched tensors."""
        pred, label = self._get(output)
        if isinstance(pred, list):
            return [self._scale(p) for p in pred], [self._scale(y) for y in label]
        return self._scale(pred), self._scale(label)


def fusion_metric_handlers(metrics: str | Sequence[str] | None, protocol: str | MetricProtocol = "standard",
                           save_details: bool = True) -> dict[str, FusionMetricHandler]:
    """One :class:`~monai_fusion.metrics.handlers.FusionMetricHandler` per metric, keyed by canonical name.

    Args:
        metrics: metric names (``None``: the default suite).
        protocol: metric protocol.
        save_details: keep per-image values in ``engine.state.metric_details`` (for ``MetricsSaver``).

    Returns:
        ``{name: handler}`` in the given order.
    """
    out = FusionMetricOutput(protocol)
    return {name: FusionMetricHandler(name, protocol, output_transform=out, save_details=save_details)
            for name in resolve_metrics(metrics)}


# ------------------------------------------------------------------------------------------ engines
def create_fusion_trainer(device: str | torch.device, max_epochs: int, train_data_loader: Iterable,
                          network: nn.Module, optimizer: torch.optim.Optimizer,
                          loss_function: nn.Module | None = None, epoch_length: int | None = None,
                          train_handlers: Sequence[Any] | None = None, inferer: Inferer | None = None,
                          amp: bool = False, keys: Sequence[str] = ("mri", "other"),
                          **kwargs: Any) -> SupervisedTrainer:
    """A MONAI ``SupervisedTrainer`` for unsupervised paired fusion.

    The batch's ``mri`` and ``other`` are stacked into ``(B, 2, H, W)``, the network's input and the loss
    target; the loss (default :class:`PairedFusionLoss` with its default weights) compares the fused output
    with both sources. :class:`PropagateErrors` and :class:`LossTermsHandler` are attached first, so errors leave
    the run untouched and every loss term is reported.

    Args:
        device: where to train.
        max_epochs: total epochs (a resumed run continues up to it).
        train_data_loader: batches of preprocessed pairs.
        network: takes ``(B, 2, H, W)``, returns ``(B, 1, H, W)`` (e.g. ``TwoSourceFusionNet``).
        optimizer: its optimizer.
        loss_function: ``loss(pred, sources)``, moved to ``device``; default :class:`PairedFusionLoss`.
        epoch_length: iterations per epoch (``None``: the loader's length).
        train_handlers: further handlers, attached in order after :class:`LossTermsHandler`.
        inferer: default ``SimpleInferer``.
        amp: automatic mixed precision.
        keys: the source keys, MRI first.
        kwargs: other ``SupervisedTrainer`` arguments (``decollate`` defaults to False: no postprocessing).

    Returns:
        The trainer (not yet run).
    """
    kwargs.setdefault("decollate", False)
    dev = torch.device(device)
    loss = (loss_function if loss_function is not None else PairedFusionLoss()).to(dev)  # e.g. its perceptual net
    return SupervisedTrainer(
        device=dev, max_epochs=int(max_epochs), train_data_loader=train_data_loader,
        network=network, optimizer=optimizer, loss_function=loss,
        epoch_length=epoch_length, prepare_batch=PrepareFusionBatch(keys), inferer=inferer or SimpleInferer(),
        train_handlers=[PropagateErrors(), LossTermsHandler(), *(train_handlers or [])], amp=amp, **kwargs,
    )


def create_fusion_evaluator(device: str | torch.device, val_data_loader: Iterable, network: nn.Module,
                            metrics: str | Sequence[str] | None = ("SSIM",), key_metric: str | None = None,
                            protocol: str | MetricProtocol = "standard", val_handlers: Sequence[Any] | None = None,
                            postprocessing: Transform | None = None, inferer: Inferer | None = None,
                            epoch_length: int | None = None, amp: bool = False,
                            keys: Sequence[str] = ("mri", "other"), modality_key: str | None = None,
                            **kwargs: Any) -> SupervisedEvaluator:
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
    key = resolve_metrics([key_metric])[0] if key_metric else (names[0] if names else None)
    if key is not None and key not in names:
        names.insert(0, key)
    handlers = fusion_metric_handlers(names, protocol) if names else {}
    key_val_metric = {key: handlers.pop(key)} if key is not None else None
    return SupervisedEvaluator(
        device=torch.device(device), val_data_loader=val_data_loader, network=network, epoch_length=epoch_length,
        prepare_batch=PrepareFusionBatch(keys, modality_key), inferer=inferer or SimpleInferer(),
        postprocessing=postprocessing,
        key_val_metric=key_val_metric, additional_metrics=handlers or None,
        val_handlers=[PropagateErrors(), *(val_handlers or [])], amp=amp,
        **kwargs,
    )


# --------------------------------------------------------------------------------------- checkpoints
class AtomicDiskSaver(DiskSaver):
    """Ignite ``DiskSaver`` that writes atomically, optionally under a fixed name, and removes a replaced
    checkpoint only after its successor is on disk.

    Ignite's ``Checkpoint`` removes the old file *before* writing the new one; a process killed between the
    two would leave no checkpoint. Here removals wait for the next successful write.

    Args:
        dirname: the folder (created when missing).
        filename: fixed file name for every save (``None``: ignite's name).
        kwargs: ``DiskSaver`` arguments (``atomic`` is always True).
    """

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None, **kwargs: Any) -> None:
        kwargs.update(atomic=True, require_empty=False)
        super().__init__(dirname=dirname, **kwargs)
        self.filename = filename
        self._pending: list[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        """Write ``checkpoint`` (temporary file + rename), then delete the files it replaces."""
        name = self.filename or filename
        super().__call__(checkpoint, name, metadata)
        for old in self._pending:
            if old != name:
                super().remove(old)
        self._pending.clear()

    def remove(self, filename: str) -> None:
        """Mark a file for removal after the next successful write."""
        name = self.filename or filename
        if name not in self._pending:
            self._pending.append(name)


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI ``CheckpointSaver`` whose files are written atomically (see :class:`AtomicDiskSaver`).

    Takes ``CheckpointSaver``'s arguments plus ``interval_filename``: a fixed name for the interval
    checkpoints (e.g. ``"checkpoint_last.pt"``), so the last one is always found under one name. Its
    :meth:`state_dict` holds the key-metric ranking, so a resumed run keeps comparing against the best model
    of the interrupted one.

    Args:
        save_dir: the folder.
        save_dict: objects to save.
        interval_filename: fixed name of the interval checkpoints (``None``: ``checkpoint_epoch=N.pt``).
        kwargs: other ``CheckpointSaver`` arguments.
    """

    def __init__(self, save_dir: str, save_dict: dict, interval_filename: str | None = None, **kwargs: Any) -> None:
        super().__init__(save_dir=save_dir, save_dict=save_dict, **kwargs)
        fixed = ((self._final_checkpoint, kwargs.get("final_filename")),
                 (self._key_metric_checkpoint, kwargs.get("key_metric_filename")),
                 (self._interval_checkpoint, interval_filename))
        for ckpt, name in fixed:
            if ckpt is not None:
                ckpt.save_handler = AtomicDiskSaver(save_dir, filename=name)

    def state_dict(self) -> dict[str, Any]:
        """The key-metric ranking (``{"_saved": [(score, file), ...]}``; empty without a key metric)."""
        return dict(self._key_metric_checkpoint.state_dict()) if self._key_metric_checkpoint is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the key-metric ranking (no-op for an empty state)."""
        if state_dict and self._key_metric_checkpoint is not None:
            self._key_metric_checkpoint.load_state_dict(state_dict)


class CheckedCheckpointLoader(CheckpointLoader):
    """MONAI ``CheckpointLoader`` that checks the file when attached, before the engine runs.

    Used to resume training from the last checkpoint (``required=False``: no file means a fresh start, which
    is logged) and to load trained weights for evaluation and inference (``required=True``). A file that does
    not fit, or a finished run asked for fewer epochs than it has done, raises
    :class:`~monai_fusion.utils.FusionInputError` with what to do, instead of failing inside the engine.

    Args:
        load_path: the checkpoint.
        load_dict: objects to restore, e.g. ``{"model": net, "optimizer": opt, "trainer": trainer}``.
        required: whether a missing file is an error.
        enabled: ``False`` skips loading altogether (e.g. ``--resume False``).
        map_location: ``torch.load`` map location (default: CPU).
        strict: strict state-dict loading.
        name: logger name.
    """

    def __init__(self, load_path: str | os.PathLike, load_dict: dict, required: bool = True, enabled: bool = True,
                 map_location: Any = "cpu", strict: bool = True, name: str | None = None) -> None:
        super().__init__(load_path=str(load_path), load_dict=load_dict, name=name, map_location=map_location,
                         strict=strict)
        self.required = bool(required)
        self.enabled = bool(enabled)
        self.checkpoint: dict[str, Any] | None = None

    def attach(self, engine: Engine) -> None:
        """Read and check the file now; restore it when the engine starts."""
        if self._name is None:
            self.logger = engine.logger
        path = Path(self.load_path)
        if not self.enabled:
            self.logger.info(f"not loading {path} (disabled)")
            return
        if not path.is_file():
            if self.required:
                raise FusionInputError(f"checkpoint {path} not found; train first (run training) or point "
                                       "--ckpt_path at a model.pt")
            self.logger.info(f"no checkpoint at {path}: starting from epoch 1")
            return
        try:
            ckpt = torch.load(path, map_location=self.map_location, weights_only=True)
        except Exception as err:  # torch raises several types for truncated or unsafe files
            raise FusionInputError(f"checkpoint {path} cannot be read ({err}); delete it to start again") from err
        key = next(iter(self.load_dict))
        if len(self.load_dict) == 1 and key not in ckpt:
            ckpt = {key: ckpt}
        self._check(ckpt, engine, path)
        self.checkpoint = ckpt
        engine.add_event_handler(Events.STARTED, self)

    def _check(self, ckpt: Mapping[str, Any], engine: Engine, path: Path) -> None:
        missing = [k for k in self.load_dict if k not in ckpt]
        if missing and self.strict:
            raise FusionInputError(f"checkpoint {path} lacks {', '.join(missing)}; it was not written by this "
                                   "workflow: delete it or pass --resume False")
        for k, obj in self.load_dict.items():
            if isinstance(obj, nn.Module) and k in ckpt:
                own = obj.state_dict()
                theirs = ckpt[k]
                bad = sorted(set(own) ^ set(theirs))
                bad += [n for n in own if n in theirs and own[n].shape != theirs[n].shape]
                if bad:
                    raise FusionInputError(
                        f"checkpoint {path}: '{k}' does not fit the network ({len(bad)} mismatched entries, e.g. "
                        f"{bad[0]}); it was trained with other network settings: pass the same --network_def "
                        "overrides, or delete it to start again"
                    )
        state = ckpt.get("trainer") if "trainer" in self.load_dict else None
        if isinstance(state, Mapping) and engine.state.max_epochs is not None:
            length = state.get("epoch_length") or 1
            done = int(state["epoch"]) if "epoch" in state else int(state.get("iteration", 0)) // int(length)
            if done > engine.state.max_epochs:
                raise FusionInputError(f"checkpoint {path} has {done} epochs done, more than --epochs "
                                       f"{engine.state.max_epochs}; raise --epochs to train further, or pass "
                                       "--resume False to start again")
            trained_length = state.get("epoch_length")
            if engine.state.epoch_length is not None and trained_length not in (None, engine.state.epoch_length):
                raise FusionInputError(f"checkpoint {path} was trained with epoch_length {trained_length}, "
                                       f"this run has {engine.state.epoch_length}; use the same --epoch_length "
                                       "(and data) to resume, or pass --resume False")

    def __call__(self, engine: Engine) -> None:
        """Restore every object (keeping this run's ``max_epochs``)."""
        if self.checkpoint is None:
            return
        prior_max_epochs = engine.state.max_epochs
        Checkpoint.load_objects(to_load=self.load_dict, checkpoint=self.checkpoint, strict=self.strict)
        engine.state.max_epochs = prior_max_epochs
        self.checkpoint = None
        done = f" (epoch {engine.state.epoch} done)" if "trainer" in self.load_dict else ""
        self.logger.info(f"Restored all variables from {self.load_path}{done}")


# -------------------------------------------------------------------------------------- evaluation
def pair_ids(batch: Any) -> list[dict[str, str]]:
    """``[{"filename_or_obj": "<pair_type>/<name>"}, ...]`` for each item of a batch.

    The ``batch_transform`` of ``MetricsSaver``, so its per-image CSV rows name the pair. Items without
    ``pair_type``/``name`` fall back to the MRI's file name.
    """
    items = batch if isinstance(batch, list) else decollate_batch(batch, detach=False)
    out = []
    for it in items:
        if "pair_type" in it and "name" in it:
            ident = f"{it['pair_type']}/{it['name']}"
        else:
            ident = str(getattr(it.get("mri"), "meta", {}).get("filename_or_obj", ""))
        out.append({"filename_or_obj": ident})
    return out


class MetricSummaryWriter:
    """Write (and log) mean +- sample std of each fusion metric per pair type after an evaluation.

    Reads the per-image values that the metric handlers keep in ``engine.state.metric_details`` (attach
    after them: use ``save_details=True``, the default of :func:`fusion_metric_handlers`) and the pair types of
    the batches; writes :func:`~monai_fusion.engines.evaluation.format_metric_table`'s markdown table.

    Args:
        save_dir: output folder.
        filename: file name of the table.
        protocol: the metric protocol named in the caption.
        save_rank: the rank that writes in distributed runs.
    """

    def __init__(self, save_dir: str | os.PathLike, filename: str = "summary.md",
                 protocol: str | MetricProtocol = "standard", save_rank: int = 0) -> None:
        self.path = Path(save_dir) / filename
        self.protocol = get_protocol(protocol)
        self.save_rank = save_rank
        self._ids: list[str] = []
        self.table: str = ""

    def attach(self, engine: Engine) -> None:
        """Collect pair ids each iteration, write at the end of the run."""
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _reset(self, _engine: Engine) -> None:
        self._ids = []

    def _collect(self, engine: Engine) -> None:
        self._ids += [m["filename_or_obj"] for m in pair_ids(engine.state.batch)]

    def __call__(self, engine: Engine) -> None:
        """Build the table from ``engine.state.metric_details``; write it on ``save_rank``."""
        ids = string_list_all_gather(self._ids) if torch.distributed.is_initialized() else self._ids
        details = getattr(engine.state, "metric_details", {}) or {}
        names = [n for n in details if n in METRICS]
        if not names or not ids:
            return
        values = {n: torch.as_tensor(details[n]).reshape(-1).tolist() for n in names}
        rows = []
        for i, ident in enumerate(ids):
            pair_type, _, name = ident.rpartition("/")
            rows.append({"pair_type": pair_type if pair_type in PAIR_TYPES else "all", "name": name,
                         **{n: values[n][i] for n in names}})
        self.table = format_metric_table(rows, names, self.protocol)
        if (torch.distributed.get_rank() if torch.distributed.is_initialized() else 0) == self.save_rank:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(self.table + "\n")
            engine.logger.info(f"metric summary written to {self.path}:\n{self.table}")


class FusedImageWriter:
    """Write each fused image of an inference run to ``<output_dir>/<pair_type>/<name>.png``.

    The layout that ``monai-fusion evaluate --fused`` and :func:`~monai_fusion.engines.evaluation.evaluate_folders`
    read. Runs after the evaluator's postprocessing (e.g. ``fusion_network_postprocess``, which clamps the
    prediction and merges PET/SPECT chroma back), so colour pairs are written as RGB and CT pairs as grey.

    Args:
        output_dir: output folder.
        fused_key: key of the fused image in each decollated output.
        overwrite: replace existing files.
    """

    def __init__(self, output_dir: str | os.PathLike, fused_key: str = "fused", overwrite: bool = True) -> None:
        self.output_dir = Path(output_dir)
        self.fused_key = fused_key
        self.overwrite = bool(overwrite)
        self.written: list[Path] = []

    def attach(self, engine: Engine) -> None:
        """Write after every iteration; log the count at the end."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self._report)

    def _report(self, engine: Engine) -> None:
        engine.logger.info(f"{len(self.written)} fused images written under {self.output_dir}")

    def __call__(self, engine: Engine) -> None:
        """Write the iteration's fused images (decollated output)."""
        from ..data.io import write_png

        batch, output = engine.state.batch, engine.state.output
        if not isinstance(output, list):
            raise FusionInputError("FusedImageWriter needs a decollated evaluator output (decollate=True)")
        for ident, out in zip(pair_ids(batch), output):
            rel = ident["filename_or_obj"]
            pair, _, name = rel.partition("/")
            parts = [pair, name] if pair in PAIR_TYPES and name else [Path(rel).stem]  # else: after the MRI file
            # names are data: sanitised, so a name like '../x' or an absolute path cannot leave output_dir
            path = output_path(self.output_dir, *parts[:-1], safe_filename(parts[-1]) + ".png")
            path.parent.mkdir(parents=True, exist_ok=True)
            fused = torch.as_tensor(out[self.fused_key]).detach().cpu().float().numpy()
            self.written.append(write_png(fused, path, overwrite=self.overwrite))


# --------------------------------------------------------------------------------------------- data
def _pair_type_list(pair_types: str | Sequence[str] | None) -> str | list[str]:
    if pair_types is None or pair_types == "all":
        return "all"
    if isinstance(pair_types, str):
        pair_types = [p.strip() for p in pair_types.split(",") if p.strip()]
    wanted = list(pair_types)
    bad = [p for p in wanted if p not in PAIR_TYPES]
    if bad or not wanted:
        raise FusionInputError(f"pair_types {bad or wanted!r}: choose 'all' or any of {', '.join(PAIR_TYPES)} "
                               "(comma-separated)")
    return wanted


def pair_type_sampler(data: Sequence[dict[str, Any]], num_samples: int | None = None,
                      seed: int = 0) -> torch.utils.data.WeightedRandomSampler:
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
    return torch.utils.data.WeightedRandomSampler(weights, num_samples or len(data), replacement=True,
                                                  generator=torch.Generator().manual_seed(int(seed)))


def bundle_datalist(dataset_dir: str | os.PathLike | None, pair_types: str | Sequence[str] | None = "all",
                    split: str = "train", val_fraction: float = 0.2, seed: int = 0,
                    max_pairs: int | None = None, what: str = "dataset_dir") -> list[dict[str, str]]:
    """Pairs of a dataset in the Whole Brain Atlas layout, checked, split by case.

    Args:
        dataset_dir: ``<root>/<PAIR>/<MODALITY>/<name>.png``.
        pair_types: ``"all"``, a pair type, a comma-separated string or a list of them.
        split: ``"train"``, ``"val"`` (whole cases held out, see ``split_by_case``) or ``"all"``.
        val_fraction: fraction of cases per pair type held out for validation.
        seed: split seed.
        max_pairs: keep at most this many pairs, evenly spread over the list (``None``: all).
        what: the option's name in messages.

    Returns:
        Datalist items (``mri``, ``other``, ``modality``, ``pair_type``, ``name``, ``case``).

    Raises:
        FusionInputError: missing or misnamed folder, unknown pair type, a selected pair folder without pairs,
            no case left for validation, or a bad ``split``/``max_pairs``.
    """
    if split not in ("train", "val", "all"):
        raise FusionInputError(f"split={split!r} must be 'train', 'val' or 'all'")
    if dataset_dir is None or str(dataset_dir).strip() == "":
        raise FusionInputError(f"{what} is not set; pass --{what} <root with CT-MRI/, PET-MRI/, SPECT-MRI/>")
    root = Path(dataset_dir).expanduser()
    wanted = _pair_type_list(pair_types)
    try:
        found = find_pairs(root, wanted)
    except FusionInputError as err:
        raise FusionInputError(f"{what}: {err}") from None
    empty = [p for p, n in found.counts.items() if n == 0]
    if empty:
        raise FusionInputError(f"{what}: {', '.join(str(root / p) for p in empty)} hold no MRI/other pairs "
                               f"(pairs are files with the same name in MRI/ and the other modality's folder); "
                               "add images or choose --pair_types among "
                               + ", ".join(p for p in found.counts if p not in empty))
    items = found.items
    if split != "all":
        train, val = split_by_case(items, val_fraction=val_fraction, seed=seed)
        if not val:
            raise FusionInputError(f"{what}: no case left for validation (val_fraction={val_fraction}); each pair "
                                   "type needs at least two cases (file names <case><slice:3>)")
        items = train if split == "train" else val
    if max_pairs is not None:
        if int(max_pairs) < 1:
            raise FusionInputError(f"max_pairs={max_pairs} must be a positive number or null")
        if int(max_pairs) < len(items):
            idx = np.unique(np.linspace(0, len(items) - 1, int(max_pairs)).round().astype(int))
            items = [items[i] for i in idx]
    return items


def default_dataset_dir(bundle_root: str | os.PathLike = ".") -> str:
    """The dataset a bundle run uses when no ``--dataset_dir`` is given.

    In order: ``$MONAI_FUSION_HARVARD``; ``../shared/data/harvard`` beside the project that holds the bundle
    (``<bundle_root>/../..``); else the embedded MNI152 MRI/PET pairs written by :func:`write_demo_dataset` (a
    warning says so: synthetic data, for trying the workflow only).
    """
    env = os.environ.get("MONAI_FUSION_HARVARD")
    candidates = [Path(env)] if env else []
    parents = Path(bundle_root).resolve().parents
    if len(parents) > 2:  # <project>/bundles/<bundle>: ../shared beside <project>
        candidates.append(parents[2] / "shared" / "data" / "harvard")
    for cand in candidates:
        if cand.is_dir():
            return str(cand)
    folder = write_demo_dataset()
    tried = " or ".join(map(str, candidates)) or "the default places"
    warnings.warn(f"no dataset found at {tried}: using the embedded synthetic MNI152 MRI/PET pairs in {folder}; "
                  "pass --dataset_dir for real data", UserWarning, stacklevel=2)
    return str(folder)


def write_demo_dataset(folder: str | os.PathLike | None = None, cases: int = 4, slices_per_case: int = 3,
                       size: int = 256) -> Path:
    """Write the embedded MNI152 MRI/PET pair as a small ``PET-MRI`` dataset in the atlas layout.

    Axial slices of the 2 mm demo volumes (T1 as MRI; the FDG-like PET, aligned, in the atlas' PET colours),
    padded to ``size`` x ``size`` (the atlas' 256 by default), grouped into ``cases`` slabs of
    ``slices_per_case`` slices each: file names ``<case><slice:3>.png``, so ``split_by_case`` can hold whole
    cases out. Written once (reused when complete).

    Args:
        folder: target; default ``<demo cache>/dataset``.
        cases: number of cases (slabs along the axial axis).
        slices_per_case: slices per case.
        size: image side (at least 116, the volume's in-plane extent at 2 mm).

    Returns:
        The dataset root (holding ``PET-MRI/MRI`` and ``PET-MRI/PET``).
    """
    from ..data.demo import apply_colormap, demo_cache_dir, demo_volume_pair
    from ..data.io import write_png

    root = Path(folder) if folder is not None else demo_cache_dir() / "dataset"
    n = cases * slices_per_case
    z = np.linspace(0.3, 0.75, n)  # fractions of the axial extent: basal ganglia to upper cortex
    names = [f"{c + 1}{(k + 1) * 10:03d}" for c in range(cases) for k in range(slices_per_case)]
    paths = [(root / "PET-MRI" / "MRI" / f"{nm}.png", root / "PET-MRI" / "PET" / f"{nm}.png") for nm in names]
    if all(m.is_file() and p.is_file() for m, p in paths):
        return root
    vol = demo_volume_pair(2)
    mri, pet = vol["mri"][0], vol["pet_aligned"][0]
    for frac, (mp, pp) in zip(z, paths):
        k = int(round(frac * (mri.shape[2] - 1)))
        images = []
        for v in (mri, pet):
            img = np.flipud(v[:, :, k].T)
            if max(img.shape) > size:
                raise FusionInputError(f"size={size} is smaller than the demo slices {img.shape}")
            out = np.zeros((size, size), dtype=np.float32)
            r0, c0 = (size - img.shape[0]) // 2, (size - img.shape[1]) // 2
            out[r0:r0 + img.shape[0], c0:c0 + img.shape[1]] = img
            images.append(out)
        mp.parent.mkdir(parents=True, exist_ok=True)
        pp.parent.mkdir(parents=True, exist_ok=True)
        write_png(images[0][None], mp, overwrite=True)
        write_png(apply_colormap(np.clip(images[1], 0, 1)), pp, overwrite=True)
    return root


# ------------------------------------------------------------------------------ command-line checks
#: ``monai.bundle run``'s own parameters, in positional order.
_RUN_PARAMS = ("run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file")


def parse_bundle_argv(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Read a ``python -m monai.bundle <command> ...`` command line (``sys.argv`` by default).

    Returns:
        ``{"command", "params", "overrides"}`` for ``run``/``run_workflow`` (``params``: ``run``'s own
        arguments, positional ones included; ``overrides``: every other ``--key value`` as given), or
        ``None`` when this process was not started as ``monai.bundle``.
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv or not Path(argv[0]).as_posix().endswith("monai/bundle/__main__.py") or len(argv) < 2:
        return None
    command, rest = argv[1], argv[2:]
    positional: list[str] = []
    named: dict[str, str] = {}
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok.startswith("--") and len(tok) > 2:
            key, eq, val = tok[2:].partition("=")
            if not eq:
                if i + 1 < len(rest) and not rest[i + 1].startswith("--"):
                    val, i = rest[i + 1], i + 1
                else:
                    val = "True"
            named[key] = val
        elif tok != "--":
            positional.append(tok)
        i += 1
    params: dict[str, Any] = dict(zip(_RUN_PARAMS, positional))
    overrides: dict[str, str] = {}
    for key, val in named.items():
        norm = key.replace("-", "_")
        if norm in _RUN_PARAMS:
            params[norm] = val
        else:
            overrides[key] = val
    return {"command": command, "params": params, "overrides": overrides}


def _file_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    text = str(value).strip()
    if text[:1] in "[(":
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return [text]
        return [str(v) for v in (parsed if isinstance(parsed, (list, tuple)) else [parsed])]
    return [text]


def bundle_root_from_cli(argv: Sequence[str] | None = None, default: str = ".") -> str:
    """The bundle folder of the ``--config_file`` that ``python -m monai.bundle`` was given.

    ``.../multimodal_fusion/configs/train.json`` gives ``.../multimodal_fusion`` (absolute), wherever the command runs;
    ``default`` when the process is not a ``monai.bundle`` command (e.g. a workflow built from Python).
    """
    cmd = parse_bundle_argv(argv)
    files = _file_list(cmd["params"]["config_file"]) if cmd and cmd["params"].get("config_file") else []
    if not files:
        return default
    parent = Path(files[0]).resolve().parent
    return str(parent.parent if parent.name == "configs" else parent)


def _config_ids(node: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(node, dict):
        items: Iterable[tuple[Any, Any]] = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for k, v in items:
        key = f"{prefix}{k}"
        yield key
        yield from _config_ids(v, key + "#")


def _accepts_argument(config: dict, parent_id: str, name: str) -> bool:
    node: Any = config
    for part in parent_id.split("#") if parent_id else []:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    if not isinstance(node, dict) or not isinstance(node.get("_target_"), str):
        return False
    from monai.bundle import ConfigComponent

    obj = locate(ConfigComponent(node).resolve_module_name())
    if obj is None:
        return False
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    if name in params:
        return True
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return False
    # ``**kwargs`` takes any name: refuse only what looks like a misspelling of a known argument
    return not difflib.get_close_matches(name, [*params, *node], n=1, cutoff=0.8)


def check_cli_overrides(argv: Sequence[str] | None = None) -> None:
    """Refuse ``python -m monai.bundle run`` overrides and run ids that the configs do not define.

    ``monai.bundle`` silently adds an override with a misspelt id (``--epocs 1`` trains with the default
    epochs). This check, run from the configs' ``initialize``, compares every ``--id value`` of the command
    line with the ids of the given config files (and the metadata): an id is accepted when it exists, or when
    its parent is a component whose ``_target_`` takes that argument (for a ``**kwargs`` target: any name that
    is not a near-miss of a known argument, e.g. ``batchsize`` for ``batch_size``). It does nothing for
    workflows built from Python (no ``monai.bundle`` command line) or for ``--args_file`` runs.

    Raises:
        FusionInputError: naming the unknown id and the closest known ones.
    """
    cmd = parse_bundle_argv(argv)
    if cmd is None or cmd["command"] not in ("run", "run_workflow") or not cmd["params"].get("config_file"):
        return
    from monai.bundle import ConfigParser

    files = _file_list(cmd["params"]["config_file"])
    config = ConfigParser.load_config_files(files)
    meta_file = cmd["params"].get("meta_file") or str(Path(files[0]).parent / "metadata.json")
    ids = set(_config_ids(config))
    meta_files = [f for f in _file_list(meta_file) if Path(f).is_file()]
    if meta_files:
        ids |= {f"_meta_#{k}" for k in _config_ids(ConfigParser.load_config_files(meta_files))} | {"_meta_"}
    where = ", ".join(files)
    for raw in cmd["overrides"]:
        key = raw.replace("::", "#").replace("-", "_")  # fire turns every '-' of an option name into '_'
        parent, _, name = key.rpartition("#")
        if key in ids or _accepts_argument(config, parent, name):
            continue
        if "-" in raw:
            head = raw.replace("::", "#").split("#")
            owner = "#".join(head[:next(i for i, part in enumerate(head) if "-" in part)])
            fix = f"; set the whole --{owner} instead (its value may hold '-')" if owner else ""
            raise FusionInputError(f"override --{raw}: python -m monai.bundle (fire) reads '-' in an option name "
                                   f"as '_', so this would set '{key}', which is not in {where}{fix}")
        siblings = sorted(i.rpartition("#")[2] for i in ids if i.rpartition("#")[0] == parent)
        close = [f"{parent}#{c}" if parent else c for c in difflib.get_close_matches(name, siblings, n=3, cutoff=0.6)]
        hint = f"; did you mean {' or '.join('--' + c for c in close)}?" if close else ""
        raise FusionInputError(f"unknown override --{raw}: no id '{key}' in {where}{hint}")
    run_id = cmd["params"].get("run_id")
    if run_id is not None and run_id not in config:
        def runs(v: Any, depth: int = 0) -> bool:  # a list of expressions (not only imports) or a reference to one
            if isinstance(v, str):  # "run": "@training" runs; "train_seed": "@seed" does not
                return v.startswith("@") and depth < 8 and runs(config.get(v[1:].replace("::", "#")), depth + 1)
            return isinstance(v, list) and bool(v) and all(isinstance(e, str) and e.startswith("$") for e in v) \
                and not all(e.split()[0] in ("$import", "$from") for e in v)

        runnable = sorted(k for k, v in config.items() if runs(v) and k not in ("initialize", "finalize"))
        raise FusionInputError(f"run id '{run_id}' is not in {where}; choose one of {', '.join(runnable)}")


def check_training_settings(**settings: Any) -> dict[str, Any]:
    """Check the settings of a bundle run by name before anything is built.

    ``epochs``, ``batch_size``, ``val_batch_size``, ``val_interval``: positive integers; ``epoch_length`` and
    ``max_*``: positive integers or None; ``num_workers``: an integer >= 0; ``learning_rate``: > 0;
    ``val_fraction``: in [0, 1); ``patch_size``: two positive integers; ``resume``, ``register``, ``amp``:
    True or False (``python -m monai.bundle`` reads ``--resume False`` as a bool but ``false`` as a string).
    Other names pass unchecked.

    Returns:
        The settings as given.

    Raises:
        FusionInputError: naming the option and the value that does not fit.
    """
    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    def is_num(v: Any) -> bool:
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "positive": (lambda v: is_int(v) and v > 0, "a positive integer"),
        "optional": (lambda v: v is None or is_int(v) and v > 0, "a positive integer or null"),
        "count": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
        "rate": (lambda v: is_num(v) and v > 0, "a positive number"),
        "fraction": (lambda v: is_num(v) and 0 <= v < 1, "a number in [0, 1)"),
        "patch": (lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(is_int(x) and x > 0 for x in v),
                  "two positive integers, e.g. --patch_size '[128, 128]'"),
        "flag": (lambda v: isinstance(v, bool), "True or False (capitalised)"),
    }
    kinds = {"epochs": "positive", "batch_size": "positive", "val_batch_size": "positive", "val_interval": "positive",
             "epoch_length": "optional", "num_workers": "count", "learning_rate": "rate", "val_fraction": "fraction",
             "patch_size": "patch", "resume": "flag", "register": "flag", "amp": "flag"}
    for name, value in settings.items():
        kind = kinds.get(name, "optional" if name.startswith("max_") else None)
        if kind is not None and not checks[kind][0](value):
            raise FusionInputError(f"--{name} {value!r}: expected {checks[kind][1]}")
    return settings


def install_input_error_hook() -> None:
    """Make an uncaught :class:`~monai_fusion.utils.FusionInputError` end the process with one line.

    ``monai.bundle`` wraps failures of config items in ``RuntimeError("Failed to instantiate ...")`` and prints
    the whole traceback. With this hook (installed by the configs' ``initialize``), an error whose chain holds
    a ``FusionInputError`` prints ``error: <message>`` on stderr (exit status 1); any other error keeps its
    full traceback. Idempotent.
    """
    previous = sys.excepthook
    if getattr(previous, "_fusion_input_errors", False):
        return

    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        found = find_input_error(exc)
        if found is None:
            previous(exc_type, exc, tb)
            return
        print(f"error: {found}", file=sys.stderr)

    hook._fusion_input_errors = True  # type: ignore[attr-defined]
    sys.excepthook = hook


# ------------------------------------------------------------------------------------- distributed
def distributed_device() -> torch.device:
    """This process's device under ``torchrun``: ``cuda:<LOCAL_RANK>`` when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def init_distributed(backend: str | None = None) -> torch.device:
    """Join the ``torchrun`` process group (NCCL on GPUs, gloo on CPUs by default) and pick the device.

    Returns:
        :func:`distributed_device`.

    Raises:
        FusionInputError: when not started by ``torchrun`` (no ``RANK``/``WORLD_SIZE`` in the environment).
    """
    if not torch.distributed.is_initialized():
        if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
            raise FusionInputError("multi_gpu_train.json must be started with torchrun, e.g. torchrun "
                                   "--standalone --nnodes=1 --nproc_per_node=2 -m monai.bundle run --config_file ...")
        torch.distributed.init_process_group(backend=backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    device = distributed_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    logger.info(f"process group: backend {torch.distributed.get_backend()}, rank {torch.distributed.get_rank()} of "
                f"{torch.distributed.get_world_size()}, device {device}")
    return device

