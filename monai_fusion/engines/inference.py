"""Run a fusion method over a preprocessed pair: the workflow step shared by demo, CLI and bundle.

2D pairs are fused as one batch item; volumes ``(1, X, Y, Z)`` are fused slice-wise along the axial
(last) axis, in batches, and reassembled on the MRI's grid.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from monai.data import MetaTensor

from ..fusers import Fuser
from ..transforms.presets import fusion_postprocess
from ..utils.errors import FusionInputError

__all__ = ["fuse_images", "fuse_sample", "other_for_display", "processing_notes"]


def fuse_images(
    fuser: Fuser,
    mri: torch.Tensor,
    other: torch.Tensor,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    modality: str | None = None,
) -> torch.Tensor:
    """Fuse a ``(1, H, W)`` slice pair or a ``(1, X, Y, Z)`` volume pair (slice by slice along Z).

    Args:
        fuser: the method.
        mri: MRI in [0, 1].
        other: the other modality's grey/luminance image in [0, 1], same shape.
        batch_size: slices per call for volumes.
        device: where the fuser runs.
        modality: the other source's modality (``CT``, ``PET``, ``SPECT``), passed to the fuser.

    Returns:
        The fused image, same shape as ``mri``, on the CPU.
    """
    if mri.shape != other.shape or mri.ndim not in (3, 4) or mri.shape[0] != 1:
        raise FusionInputError(
            f"fuse_images: expected mri and other of one shape (1, H, W) or (1, X, Y, Z), got "
            f"{tuple(mri.shape)} and {tuple(other.shape)}"
        )
    m, o = torch.as_tensor(mri).float(), torch.as_tensor(other).float()
    kw = {} if modality is None else {"modality": modality}  # kept: third-party fusers may lack a modality argument
    if m.ndim == 3:
        with torch.no_grad():
            return fuser.fuse(m[None].to(device), o[None].to(device), **kw)[0].cpu()
    ms, os_ = m[0].permute(2, 0, 1)[:, None], o[0].permute(2, 0, 1)[:, None]  # (Z, 1, X, Y)
    out = []
    with torch.no_grad():
        for i in range(0, ms.shape[0], max(1, batch_size)):
            out.append(fuser.fuse(ms[i : i + batch_size].to(device), os_[i : i + batch_size].to(device), **kw).cpu())
    return torch.cat(out)[:, 0].permute(1, 2, 0)[None]


def fuse_sample(
    sample: Mapping[str, Any], fuser: Fuser, batch_size: int = 16, device: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Fuse a preprocessed pair dict (output of ``fusion_preprocess``) and merge colour back.

    Args:
        sample: dict with ``mri`` and ``other`` (and ``other_cb``/``other_cr`` for colour pairs), and ``modality``
            (the other source's, as ``fusion_preprocess`` keeps it) for the methods that use it.
        fuser: the method.
        batch_size: slices per call for volumes.
        device: where the fuser runs.

    Returns:
        The dict with ``fused``: RGB ``(3, ...)`` for colour pairs, grey ``(1, ...)`` otherwise,
        carrying the MRI's metadata and affine.
    """
    d = dict(sample)
    fused = fuse_images(fuser, d["mri"], d["other"], batch_size=batch_size, device=device, modality=d.get("modality"))
    meta = dict(d["mri"].meta) if isinstance(d["mri"], MetaTensor) else {}  # holds the MRI's affine
    d["fused"] = MetaTensor(fused, meta=meta)
    return fusion_postprocess()(d)


def other_for_display(sample: Mapping[str, Any]) -> np.ndarray:
    """The other modality as a reader sees it: colour again for PET/SPECT (chroma merged back around its own Y).

    Args:
        sample: a preprocessed pair dict with ``other`` (and ``other_cb``/``other_cr`` for colour pairs).

    Returns:
        ``(3, ...)`` RGB for colour pairs, else the grey ``(1, ...)`` image, in [0, 1].
    """
    from ..transforms.colour import YCbCrToRGB

    y = np.asarray(sample["other"])
    if "other_cb" in sample:
        return np.asarray(
            YCbCrToRGB(1.0)(np.concatenate([y, np.asarray(sample["other_cb"]), np.asarray(sample["other_cr"])]))
        )
    return y


def processing_notes(sample: Mapping[str, Any]) -> dict[str, str]:
    """How the other source was rendered: its intensity window and colour map, for the console and the output's
    metadata (NIfTI ``descrip``, DICOM ``DerivationDescription``).

    Args:
        sample: a preprocessed pair dict (``fusion_preprocess``'s output).

    Returns:
        ``{"intensity_window": ..., "colormap": ...}`` with the entries the preset recorded.
    """
    meta = getattr(sample.get("other"), "meta", {}) or {}
    return {k: str(meta[k]) for k in ("intensity_window", "colormap") if k in meta}
