"""Shipped weights are never replaced by a training run unasked, and a run's best model is exported with its
provenance.

The bundle's ``configs/metadata.json`` lists the shipped files with their SHA-256 under ``shipped_weights``
(``{"models/model.pt": "<sha256>", ...}``). A run whose ``ckpt_dir`` holds one of them unchanged refuses to
start, and names the overrides that keep them (``--ckpt_dir``) or replace them (``--overwrite_shipped``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine
from torch import nn

from ..networks.utils import save_checkpoint
from ..utils.errors import FusionInputError

__all__ = ["sha256_file", "shipped_weights", "protect_shipped_weights", "export_network_weights"]


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped_weights(bundle_root: str | os.PathLike) -> dict[str, str]:
    """``{relative path: sha256}`` of the files the bundle ships (empty when its metadata lists none).

    Args:
        bundle_root: the bundle folder (holding ``configs/metadata.json``).
    """
    meta = Path(bundle_root) / "configs" / "metadata.json"
    if not meta.is_file():
        return {}
    listed = json.loads(meta.read_text(encoding="utf-8")).get("shipped_weights", {})
    return {str(k): str(v) for k, v in listed.items()}


def protect_shipped_weights(
    ckpt_dir: str | os.PathLike, bundle_root: str | os.PathLike, overwrite_shipped: bool = False
) -> None:
    """Refuse a training run that would write over a shipped weights file it did not write.

    Args:
        ckpt_dir: where the run writes ``model.pt`` and its checkpoints.
        bundle_root: the bundle folder.
        overwrite_shipped: replace the shipped files anyway.

    Raises:
        FusionInputError: ``ckpt_dir`` holds a shipped file unchanged and ``overwrite_shipped`` is false.
    """
    if overwrite_shipped:
        return
    root, target = Path(bundle_root).resolve(), Path(ckpt_dir).resolve()
    for rel, digest in shipped_weights(root).items():
        path = (root / rel).resolve()
        if path.parent == target and path.name == "model.pt" and path.is_file() and sha256_file(path) == digest:
            raise FusionInputError(
                f"training would replace the shipped weights {path} (sha256 {digest[:12]}...); pass "
                "--ckpt_dir <another folder> to keep them, or --overwrite_shipped True to replace them "
                f"({_restore_hint(root)})"
            )


def _restore_hint(root: Path) -> str:
    """How to get the shipped files back: from git in a checkout, else from the bundle's zip."""
    if any((d / ".git").exists() for d in (root, *root.parents)):
        return f"restore them later with `git checkout -- {root.name}/models` in {root.parent}"
    return "restore them later from the bundle's zip; configs/metadata.json shipped_weights has their sha256"


def export_network_weights(
    best_path: str | os.PathLike,
    network: nn.Module,
    out_path: str | os.PathLike,
    recipe: str,
    loss: nn.Module | None = None,
    trainer: Engine | None = None,
    evaluator: Engine | None = None,
    **extra: Any,
) -> Path:
    """Write a training run's best model as the library's checkpoint form, with its provenance.

    ``get_fuser(name, weights=out_path)`` reads it (``{"state_dict", "config", "meta"}``); the shipped
    ``monai_fusion/networks/weights/<name>.pt`` files are such exports. ``meta`` records the recipe, the loss
    weights and the perceptual backbone actually used, the epochs, the training wall time and the best
    validation loss with its epoch.

    Args:
        best_path: the run's ``model_best.pt`` (a state dict written by the key-metric saver).
        network: the trained network (its ``config`` is stored; its weights are replaced by the best ones).
        out_path: the file to write (atomically).
        recipe: the config that trained it, e.g. ``"train_poster.json"``.
        loss: the training loss (its ``lambda_*`` weights and ``backbone_name`` are recorded).
        trainer: the finished trainer (epochs, wall time).
        evaluator: the validator (best validation loss and epoch).
        extra: further plain values for ``meta``.

    Returns:
        The written path.

    Raises:
        FusionInputError: ``best_path`` is missing (no validation ran).
    """
    best = Path(best_path)
    if not best.is_file():
        raise FusionInputError(
            f"{best} not found: the run saved no best model (validation never ran; check --val_interval <= --epochs)"
        )
    state = torch.load(best, map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    meta: dict[str, Any] = {"recipe": recipe, "torch": str(torch.__version__)}
    if loss is not None:
        meta.update({k: float(v) for k, v in vars(loss).items() if k.startswith("lambda_")})
        meta["perceptual_backbone"] = getattr(loss, "backbone_name", None)
    if trainer is not None:
        meta["epochs"] = int(trainer.state.epoch)
        meta["iterations"] = int(trainer.state.iteration)
        meta["train_seconds"] = round(float(trainer.state.times.get("COMPLETED") or 0.0), 1)
    if evaluator is not None:
        meta["best_val_loss"] = float(evaluator.state.best_metric)
        meta["best_epoch"] = int(evaluator.state.best_metric_epoch)
    meta.update(extra)
    return save_checkpoint(network, out_path, meta=meta)
