"""Volume pairs (NIfTI files or DICOM series folders): datalists and axial-slice datasets.

Layout read by :func:`find_volume_pairs`: ``<root>/<case>/MRI.nii.gz`` (or ``MRI.nii`` or an
``MRI/`` DICOM series folder) beside ``CT``, ``PET`` or ``SPECT`` in the same form. Whole volumes
go to inference; :class:`VolumeSliceDataset` turns preprocessed volume pairs into 2D axial slices
for training. MONAI's datasets slice patches, not whole axial planes of a *pair*, hence this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import Dataset

from ..utils.constants import OTHER_MODALITIES
from ..utils.errors import FusionInputError

__all__ = ["find_volume_pairs", "VolumeSliceDataset"]


def _volume_entry(case_dir: Path, modality: str) -> Path | None:
    for name in (f"{modality}.nii.gz", f"{modality}.nii", modality):
        p = case_dir / name
        if p.is_file() or (p.is_dir() and any(p.iterdir())):
            return p
    return None


def find_volume_pairs(root: str | os.PathLike) -> list[dict[str, str]]:
    """List ``{"mri", "other", "modality", "case", "pair_type"}`` for each case folder under ``root``.

    Args:
        root: folder of case folders, each with an MRI and one of CT/PET/SPECT (NIfTI or DICOM folder).

    Returns:
        One item per case, sorted by case name.

    Raises:
        FusionInputError: missing root, a case with no MRI or no/several other modalities, no cases.
    """
    base = Path(root)
    if not base.is_dir():
        raise FusionInputError(f"volume root {base} does not exist; expected <root>/<case>/MRI.nii.gz + PET.nii.gz ...")
    items = []
    for case_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        mri = _volume_entry(case_dir, "MRI")
        others = {m: p for m in OTHER_MODALITIES if (p := _volume_entry(case_dir, m)) is not None}
        if mri is None:
            raise FusionInputError(f"case {case_dir} has no MRI (MRI.nii.gz, MRI.nii or an MRI/ DICOM folder)")
        if len(others) != 1:
            found = ", ".join(others) or "none"
            raise FusionInputError(
                f"case {case_dir} must hold exactly one of CT, PET, SPECT beside the MRI; found {found}"
            )
        ((mod, other),) = others.items()
        items.append(
            {"mri": str(mri), "other": str(other), "modality": mod, "case": case_dir.name, "pair_type": f"{mod}-MRI"}
        )
    if not items:
        raise FusionInputError(f"no case folders found under {base}")
    return items


class VolumeSliceDataset(Dataset):
    """Axial slices of preprocessed volume pairs, for training 2D networks on 3D data.

    Each volume pair is preprocessed once (``transform``, e.g. ``fusion_preprocess()``) and kept in
    memory; item ``i`` is one axial slice: every ``(C, X, Y, Z)`` tensor of the sample becomes
    ``(C, X, Y)``. Slices where the MRI is (almost) empty are skipped.

    Args:
        items: volume pair dicts (see :func:`find_volume_pairs`).
        transform: callable applied to each item dict, returning tensors ``(C, X, Y, Z)``.
        keys: keys to slice (others are copied as they are).
        min_foreground: least fraction of MRI voxels above 0.05 for a slice to be kept.
    """

    def __init__(
        self,
        items: Sequence[dict[str, Any]],
        transform: Callable[[dict[str, Any]], dict[str, Any]],
        keys: Sequence[str] = ("mri", "other", "other_cb", "other_cr"),
        min_foreground: float = 0.02,
    ) -> None:
        self.keys = tuple(keys)
        self.samples = [transform(dict(it)) for it in items]
        self.index: list[tuple[int, int]] = []
        for s_i, s in enumerate(self.samples):
            mri = torch.as_tensor(s["mri"])
            if mri.ndim != 4:
                raise FusionInputError(
                    f"VolumeSliceDataset: {items[s_i].get('mri')} gave shape {tuple(mri.shape)}; expected (C, X, Y, Z)"
                )
            fg = (mri[0] > 0.05).float().mean(dim=(0, 1))
            self.index += [(s_i, z) for z in range(mri.shape[-1]) if float(fg[z]) >= min_foreground]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s_i, z = self.index[i]
        sample = self.samples[s_i]
        out = {k: v for k, v in sample.items() if k not in self.keys}
        for k in self.keys:
            if k in sample:
                out[k] = torch.as_tensor(sample[k])[..., z].clone()
        out["slice_index"] = z
        return out
