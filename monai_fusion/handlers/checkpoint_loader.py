"""Resume or load trained weights, the file checked before the engine starts."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from monai.handlers import CheckpointLoader
from torch import nn

from ..utils.errors import FusionInputError

__all__ = ["CheckedCheckpointLoader"]

logger = logging.getLogger(__name__)


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

    def __init__(
        self,
        load_path: str | os.PathLike,
        load_dict: dict,
        required: bool = True,
        enabled: bool = True,
        map_location: Any = "cpu",
        strict: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(
            load_path=str(load_path), load_dict=load_dict, name=name, map_location=map_location, strict=strict
        )
        self.required = bool(required)
        self.enabled = bool(enabled)
        self.checkpoint: dict[str, Any] | None = None
        self._horizons: dict[str, int] = {}

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
                raise FusionInputError(
                    f"checkpoint {path} not found; train first (run training) or point --ckpt_path at a model.pt"
                )
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

    def _extend_schedule(self, name: str, sched: Any, horizon: int) -> None:
        """Give a restored cosine schedule this run's ``T_max`` and the learning rate it has there.

        A checkpoint restores ``T_max`` of the run that wrote it; resumed with more epochs, the schedule would
        sit at its final (minimum) rate and then climb back. Here it continues as a cosine over the new horizon
        from the epochs already done (the closed form of ``CosineAnnealingLR``).
        """
        old = int(sched.T_max)
        if old == horizon:
            return
        done = int(sched.last_epoch)
        sched.T_max = horizon
        lrs = [
            sched.eta_min + (base - sched.eta_min) * (1 + math.cos(math.pi * done / horizon)) / 2
            for base in sched.base_lrs
        ]
        for group, lr in zip(sched.optimizer.param_groups, lrs):
            group["lr"] = lr
        sched._last_lr = list(lrs)
        self.logger.info(
            f"{name}: cosine schedule extended from T_max {old} to {horizon} after {done} epochs; "
            f"learning rate now {', '.join(f'{lr:.3g}' for lr in lrs)}"
        )

    def _check(self, ckpt: Mapping[str, Any], engine: Engine, path: Path) -> None:
        # this run's horizon of each cosine schedule, before the checkpoint's T_max replaces it
        self._horizons = {k: int(obj.T_max) for k, obj in self.load_dict.items() if hasattr(obj, "T_max")}
        missing = [k for k in self.load_dict if k not in ckpt]
        if missing and self.strict:
            raise FusionInputError(
                f"checkpoint {path} lacks {', '.join(missing)}; it was not written by this "
                "workflow: delete it or pass --resume False"
            )
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
                raise FusionInputError(
                    f"checkpoint {path} has {done} epochs done, more than --epochs "
                    f"{engine.state.max_epochs}; raise --epochs to train further, or pass "
                    "--resume False to start again"
                )
            trained_length = state.get("epoch_length")
            if engine.state.epoch_length is not None and trained_length not in (None, engine.state.epoch_length):
                raise FusionInputError(
                    f"checkpoint {path} was trained with epoch_length {trained_length}, "
                    f"this run has {engine.state.epoch_length}; use the same --epoch_length "
                    "(and data) to resume, or pass --resume False"
                )

    def __call__(self, engine: Engine) -> None:
        """Restore every object (keeping this run's ``max_epochs``)."""
        if self.checkpoint is None:
            return
        prior_max_epochs = engine.state.max_epochs
        Checkpoint.load_objects(to_load=self.load_dict, checkpoint=self.checkpoint, strict=self.strict)
        engine.state.max_epochs = prior_max_epochs
        self.checkpoint = None
        for name, sched in self.load_dict.items():
            if isinstance(self._horizons.get(name), int):
                self._extend_schedule(name, sched, self._horizons[name])
        done = f" (epoch {engine.state.epoch} done)" if "trainer" in self.load_dict else ""
        self.logger.info(f"Restored all variables from {self.load_path}{done}")
