"""Evaluate fused images on disk against their source pairs: per-image CSV and a markdown table.

This is what ``monai-fusion evaluate --pairs DIR --fused DIR [--protocol P] [--metrics ...]``
runs. ``pairs_dir`` has the Whole Brain Atlas layout ``<PAIR>/<MODALITY>/<name>.png``;
``fused_dir`` holds ``<PAIR>/<name>.png`` (grey for CT-MRI, grey or RGB for PET/SPECT-MRI).
Colour images are compared on their luminance, full-range BT.601 ``Y = 0.299 R + 0.587 G +
0.114 B`` (the project's colour transform), the fused Y against the MRI and the other source's Y.
Files are read with the project's readers and rescaled from their bit depth to the protocol's
value range (8-bit: ``x / 255 * width + low``).
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data.datalist import find_pairs
from ..data.io import IMAGE_SUFFIXES, read_image
from ..metrics.protocols import MetricProtocol, get_protocol
from ..metrics.registry import compute_metrics, resolve_metrics
from ..metrics.report import format_metric_table
from ..utils.constants import PAIR_TYPES
from ..utils.errors import FusionInputError

__all__ = ["evaluate_folders", "format_metric_table", "write_metric_csv", "find_fused_image"]

_ID_COLUMNS = ("pair_type", "name", "case")


def find_fused_image(fused_dir: str | os.PathLike, pair_type: str, name: str) -> Path | None:
    """``<fused_dir>/<pair_type>/<name>.<ext>`` for the first image suffix that exists, else None."""
    folder = Path(fused_dir) / pair_type
    for suffix in IMAGE_SUFFIXES:
        for cand in (folder / f"{name}{suffix}", folder / f"{name}{suffix.upper()}"):
            if cand.is_file():
                return cand
    return None


def _luminance_0_255(path: str | os.PathLike, modality: str) -> np.ndarray:
    """Grey or luminance ``(1, H, W)`` float32 on the 8-bit scale."""
    img = read_image(path, modality)
    value_max = float(img.meta.get("value_max", float("nan")))
    if not math.isfinite(value_max) or value_max <= 0:
        raise FusionInputError(
            f"{modality}: {path} is a floating-point image file with no fixed value range; "
            "save fused images as 8- or 16-bit PNG"
        )
    arr = img.array
    if arr.shape[0] == 3:
        # imported here: the transforms package pulls in registration (SimpleITK), not needed for grey pairs
        from ..transforms.colour.array import rgb_to_luminance

        arr = np.asarray(rgb_to_luminance(arr))
    return (arr * (255.0 / value_max)).astype(np.float32)


def _to_protocol(batch: list[np.ndarray], protocol: MetricProtocol) -> torch.Tensor:
    lo = protocol.value_range[0]
    return torch.from_numpy(np.stack(batch)).clamp(0, 255) * (protocol.width / 255.0) + lo


def evaluate_folders(
    pairs_dir: str | os.PathLike,
    fused_dir: str | os.PathLike,
    protocol: str | MetricProtocol = "standard",
    metrics: str | Sequence[str] | None = None,
    csv_path: str | os.PathLike | None = None,
    pair_types: str | Sequence[str] | None = None,
    batch_size: int = 8,
) -> tuple[list[dict[str, Any]], str]:
    """Compute fusion metrics for every fused image of ``fused_dir`` against its pair in ``pairs_dir``.

    Args:
        pairs_dir: dataset root in the Whole Brain Atlas layout.
        fused_dir: ``<PAIR>/<name>.png`` fused images, one per pair of the evaluated pair types.
        protocol: metric protocol (``standard``, ``sum``, ``poster`` or a :class:`MetricProtocol`).
        metrics: metric names (``None``: the default suite).
        csv_path: where to write the per-image CSV (``None``: no file).
        pair_types: pair types to evaluate; ``None``: those with a folder in ``fused_dir``.
        batch_size: images per metric call.

    Returns:
        ``(rows, table)``: one dict per image (``pair_type``, ``name``, ``case`` and each metric),
        and a markdown table of mean +- sample std per pair type and over all images.

    Raises:
        FusionInputError: missing folders, fused images missing for some pairs, unreadable files,
            shape mismatches, or metric input errors (each names the file).
    """
    proto = get_protocol(protocol)
    names = resolve_metrics(metrics)
    fused_root = Path(fused_dir)
    if not fused_root.is_dir():
        raise FusionInputError(f"fused folder {fused_root} does not exist; expected <fused>/<PAIR>/<name>.png")
    if pair_types is None:
        pair_types = [t for t in PAIR_TYPES if (fused_root / t).is_dir()]
        if not pair_types:
            raise FusionInputError(f"{fused_root} has none of the pair folders {', '.join(PAIR_TYPES)}")
    items = find_pairs(pairs_dir, pair_types).items
    fused_paths = {
        (it["pair_type"], it["name"]): find_fused_image(fused_root, it["pair_type"], it["name"]) for it in items
    }
    missing = [f"{pair}/{name}" for (pair, name), path in fused_paths.items() if path is None]
    if missing:
        raise FusionInputError(
            f"{len(missing)} of {len(items)} pairs have no fused image under {fused_root}: "
            + ", ".join(missing[:10])
            + (" ..." if len(missing) > 10 else "")
        )
    groups: dict[tuple, list[tuple[dict[str, str], list[np.ndarray]]]] = defaultdict(list)
    for it in items:
        fpath = fused_paths[(it["pair_type"], it["name"])]
        imgs = [
            _luminance_0_255(fpath, it["modality"]),
            _luminance_0_255(it["mri"], "MRI"),
            _luminance_0_255(it["other"], it["modality"]),
        ]
        if len({im.shape for im in imgs}) != 1:
            raise FusionInputError(
                f"{fpath}: fused image {imgs[0].shape[1:]} does not match its pair "
                f"({it['mri']}: {imgs[1].shape[1:]}, {it['other']}: {imgs[2].shape[1:]})"
            )
        groups[(it["pair_type"], imgs[0].shape)].append((it, imgs))
    rows_by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for group in groups.values():
        for start in range(0, len(group), max(1, batch_size)):
            chunk = group[start : start + max(1, batch_size)]
            f, a, b = (_to_protocol([imgs[i] for _, imgs in chunk], proto) for i in range(3))
            try:
                vals = compute_metrics(f, a, b, names, proto)
            except FusionInputError as err:
                files = ", ".join(str(fused_paths[(it["pair_type"], it["name"])]) for it, _ in chunk)
                raise FusionInputError(f"{err} (files: {files})") from err
            for i, (it, _) in enumerate(chunk):
                row: dict[str, Any] = {"pair_type": it["pair_type"], "name": it["name"], "case": it["case"]}
                row.update({n: float(vals[n][i]) for n in names})
                rows_by_key[(it["pair_type"], it["name"])] = row
    rows = [rows_by_key[(it["pair_type"], it["name"])] for it in items]
    if csv_path is not None:
        write_metric_csv(rows, csv_path, names)
    return rows, format_metric_table(rows, names, proto)


def write_metric_csv(rows: Sequence[dict[str, Any]], path: str | os.PathLike, metrics: Sequence[str]) -> Path:
    """Write per-image rows (``pair_type, name, case`` and the metrics) as CSV.

    Returns:
        The written path.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*_ID_COLUMNS, *metrics])
        for r in rows:
            writer.writerow([r[c] for c in _ID_COLUMNS] + [f"{r[m]:.8g}" for m in metrics])
    return p
