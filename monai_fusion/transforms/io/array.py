"""Load a slice or a volume of a given modality as a MONAI ``MetaTensor``.

Wraps :func:`monai_fusion.data.io.read_image` / :func:`~monai_fusion.data.io.read_volume` (which
give clear errors naming the file) instead of MONAI's ``LoadImage``, whose PIL reader transposes
2D images and whose errors do not say which modality or what was expected.
"""

from __future__ import annotations

import os

import torch
from monai.data import MetaTensor
from monai.transforms import Transform

from ...data.io import is_volume_path, read_image, read_volume

__all__ = ["LoadFusionImage"]


class LoadFusionImage(Transform):
    """Read a file path into a channel-first ``MetaTensor`` with the file's metadata and affine.

    Args:
        modality: the modality the file must hold (``MRI``, ``CT``, ``PET``, ``SPECT``).
    """

    def __init__(self, modality: str = "MRI") -> None:
        self.modality = modality

    def __call__(self, path: str | os.PathLike, modality: str | None = None) -> MetaTensor:
        """Args: path: a 2D image file, NIfTI file or DICOM folder; modality: overrides the default.

        Returns:
            ``(C, H, W)`` or ``(1, X, Y, Z)`` float32 ``MetaTensor``.
        """
        mod = modality or self.modality
        loaded = read_volume(path, mod) if is_volume_path(path) else read_image(path, mod)
        meta = dict(loaded.meta)
        meta["spatial_shape"] = tuple(loaded.array.shape[1:])
        meta["original_channel_dim"] = 0
        array = loaded.array if loaded.array.flags.writeable else loaded.array.copy()  # torch needs a writable one
        return MetaTensor(torch.from_numpy(array), affine=torch.as_tensor(loaded.affine), meta=meta)
