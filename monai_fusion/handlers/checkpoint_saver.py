"""Checkpoints written atomically (temporary file, then rename); a replaced one removed only afterwards."""

from __future__ import annotations

import os
from typing import Any, Mapping

from ignite.handlers import DiskSaver
from monai.handlers import CheckpointSaver

__all__ = ["AtomicDiskSaver", "AtomicCheckpointSaver"]


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
        fixed = (
            (self._final_checkpoint, kwargs.get("final_filename")),
            (self._key_metric_checkpoint, kwargs.get("key_metric_filename")),
            (self._interval_checkpoint, interval_filename),
        )
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
