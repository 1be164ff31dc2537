"""Helpers shared by the fusion networks: size padding, safe checkpoint loading and saving.

Checkpoints are always read with ``torch.load(..., weights_only=True)``; a file is either a plain
state dict or ``{"state_dict": ..., "config": {...}}`` where ``config`` holds the constructor
arguments (plain Python values), so a fuser can rebuild the network a file was trained with.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import FusionInputError

__all__ = [
    "MissingWeightsError",
    "pad_to_multiple",
    "load_weights_file",
    "split_checkpoint",
    "save_checkpoint",
    "count_parameters",
]


class MissingWeightsError(FusionInputError, FileNotFoundError):
    """A weights file that the code needs is absent; the message says how to provide it.

    A :class:`~monai_fusion.utils.FusionInputError` (so the CLI shows it cleanly) and a
    ``FileNotFoundError``. Nothing in this project downloads weights at run time.
    """


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom/right of ``(B, C, H, W)`` so that H and W divide by ``multiple``.

    Args:
        x: the batch.
        multiple: the size multiple the network's pooling needs (1 means no padding).

    Returns:
        The padded batch (``x`` itself when nothing is needed); crop with ``[..., :H, :W]``.
    """
    h, w = x.shape[-2], x.shape[-1]
    ph = (multiple - h % multiple) % multiple
    pw = (multiple - w % multiple) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, [0, pw, 0, ph], mode="replicate")


def load_weights_file(path: str | os.PathLike, what: str = "weights") -> Any:
    """Read a checkpoint with ``torch.load(..., weights_only=True)`` onto the CPU.

    Args:
        path: the ``.pt``/``.pth`` file.
        what: how to name the file in error messages.

    Returns:
        The loaded object (a state dict or a dict holding one).

    Raises:
        MissingWeightsError: the file does not exist.
        FusionInputError: the file cannot be read as a weights-only checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingWeightsError(f"{what}: file not found: {p}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe pickles
        raise FusionInputError(f"{what}: {p} is not a readable weights-only checkpoint: {err}") from err


def split_checkpoint(obj: Any, what: str = "weights") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split a loaded checkpoint into ``(state_dict, config)``.

    Args:
        obj: a state dict, or a dict with ``state_dict`` (and optionally ``config``).
        what: how to name the file in error messages.

    Returns:
        The state dict and the constructor config (empty when the file holds none).

    Raises:
        FusionInputError: the object is neither form.
    """
    if isinstance(obj, Mapping) and "state_dict" in obj:
        state, config = obj["state_dict"], dict(obj.get("config") or {})
    else:
        state, config = obj, {}
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FusionInputError(f"{what}: expected a state dict of tensors or {{'state_dict': ..., 'config': ...}}")
    return dict(state), config


def save_checkpoint(
    module: nn.Module,
    path: str | os.PathLike,
    config: Mapping[str, Any] | None = None,
    half: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``{"state_dict", "config"}`` (and ``meta``) so that :func:`load_weights_file` can read it back safely.

    Written to a temporary file beside ``path`` and renamed into place, so a killed process leaves either the
    previous file or the new one, never a truncated one.

    Args:
        module: the network; its ``config`` attribute is used when ``config`` is not given.
        path: output file (parent folders are created).
        config: constructor arguments (plain Python values only).
        half: store floating-point tensors as float16 (halves the file; loading casts back).
        meta: provenance (recipe, perceptual backbone, training time, validation figures): plain Python values.

    Returns:
        The written path.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
        for k, v in module.state_dict().items()
    }
    cfg = dict(config if config is not None else getattr(module, "config", {}))
    tmp = p.with_name(f".{p.name}.part{os.getpid()}")  # temporary file + rename: never a half-written checkpoint
    try:
        payload: dict[str, Any] = {"state_dict": state, "config": cfg}
        if meta is not None:
            payload["meta"] = dict(meta)
        torch.save(payload, tmp)
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return p


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
