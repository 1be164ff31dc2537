"""Shipped weights are never replaced by a training run unasked.

The bundle's ``configs/metadata.json`` lists the shipped files with their SHA-256 under ``shipped_weights``
(``{"models/model.pt": "<sha256>", ...}``). A run whose ``ckpt_dir`` holds one of them unchanged refuses to
start, and names the overrides that keep them (``--ckpt_dir``) or replace them (``--overwrite_shipped``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..utils.errors import FusionInputError

__all__ = ["sha256_file", "shipped_weights", "protect_shipped_weights"]


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
                "(restore them later with `git checkout -- bundles/multimodal_fusion/models`)"
            )
