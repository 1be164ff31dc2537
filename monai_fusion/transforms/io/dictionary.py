"""Dictionary transforms that load a pair and check that its two images belong together."""

from __future__ import annotations

from typing import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from ...utils.errors import FusionInputError
from .array import LoadFusionImage

__all__ = [
    "LoadFusionImaged",
    "CheckPaird",
    "CheckRasterSized",
    "LoadFusionImageD",
    "LoadFusionImageDict",
    "CheckPairD",
    "CheckPairDict",
    "CheckRasterSizeD",
    "CheckRasterSizeDict",
]


class LoadFusionImaged(MapTransform):
    """Load each key's path with the modality it must hold.

    The modality of a key is ``MRI`` for ``mri_key`` and, for the others, ``data[modality_key]``
    (datalist items carry it) or ``default_modality``.

    Args:
        keys: keys holding paths, e.g. ``("mri", "other")``.
        mri_key: the structural image's key.
        modality_key: key of the other image's modality in the data dict.
        default_modality: modality used when ``modality_key`` is absent.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection = ("mri", "other"),
        mri_key: str = "mri",
        modality_key: str = "modality",
        default_modality: str = "PET",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mri_key, self.modality_key, self.default_modality = mri_key, modality_key, default_modality
        self.loader = LoadFusionImage()

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            mod = "MRI" if key == self.mri_key else str(d.get(self.modality_key, self.default_modality)).upper()
            d[key] = self.loader(d[key], mod)  # type: ignore[arg-type]
        return d


class CheckPaird(MapTransform):
    """Check that the images of a pair have the same spatial size (after registration, if any).

    Args:
        keys: the two keys, reference first.
        allow_missing_keys: skip absent keys.

    Raises:
        FusionInputError: naming both files and sizes when they differ.
    """

    def __init__(self, keys: KeysCollection = ("mri", "other"), allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        present = list(self.key_iterator(d))
        if not present:
            return d
        ref = present[0]
        for key in present[1:]:
            if tuple(d[key].shape[1:]) != tuple(d[ref].shape[1:]):
                raise FusionInputError(
                    f"{_name(d[key], key)} is {tuple(d[key].shape[1:])} but {_name(d[ref], ref)} is "
                    f"{tuple(d[ref].shape[1:])}; a pair must be two 2D slices of one size or two volumes"
                )
        return d


class CheckRasterSized(MapTransform):
    """Refuse a pair of different sizes when either image is a raster file (PNG, JPEG, TIFF, BMP).

    A raster file carries no pixel size (``meta["spacing_known"]`` is False), so a 512x512 PET beside a
    256x256 MRI could cover the same field of view at half the pixel size or twice the field at the same
    size; registration would treat both as 1 mm pixels and place the PET wrongly without a word. Volumes
    (NIfTI, DICOM) carry their spacing and are resampled by registration instead.

    When the user says the two show the same field of view (``same_field_of_view=True``), the moving image is
    resampled to the reference's size instead (MONAI's ``Resize``, area averaging when it shrinks, bilinear when
    it grows), and ``meta["resized_to_reference"]`` records the original size.

    Args:
        keys: the two keys, reference first.
        same_field_of_view: resample a raster image of another size to the reference's size.
        allow_missing_keys: skip absent keys.

    Raises:
        FusionInputError: naming both files and sizes and how to make them match.
    """

    def __init__(
        self,
        keys: KeysCollection = ("mri", "other"),
        same_field_of_view: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.same_field_of_view = same_field_of_view

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        present = list(self.key_iterator(d))
        if len(present) < 2:
            return d
        ref = present[0]
        for key in present[1:]:
            shapes = tuple(d[ref].shape[1:]), tuple(d[key].shape[1:])
            raster = [k for k in (ref, key) if isinstance(d[k], MetaTensor) and d[k].meta.get("spacing_known") is False]
            if shapes[0] != shapes[1] and raster and d[ref].ndim == d[key].ndim:  # 2D with 3D: CheckPaird's
                if self.same_field_of_view:
                    d[key] = _resize_to(d[key], shapes[0])
                    continue
                size = "x".join(map(str, shapes[0]))
                moving = d[key].meta.get("filename_or_obj", key) if isinstance(d[key], MetaTensor) else key
                raise FusionInputError(
                    f"{_name(d[key], key)} is {'x'.join(map(str, shapes[1]))} pixels but {_name(d[ref], ref)} is "
                    f"{size}; raster files (PNG, JPEG, TIFF, BMP) carry no pixel size, so how the two overlap is "
                    f"unknown and registration would misplace them. If {moving} shows the same field of view, say "
                    "so (--same-field-of-view; same_field_of_view=True) and it is resampled to "
                    f"{size}; else give NIfTI/DICOM files, which carry their spacing"
                )
        return d


def _resize_to(img: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """``img`` resampled to ``size`` over the same field of view, its original size recorded in the metadata."""
    from monai.transforms import Resize

    shrink = all(s <= o for s, o in zip(size, img.shape[1:]))
    out = Resize(spatial_size=size, mode="area" if shrink else "bilinear", anti_aliasing=False)(img)
    if isinstance(out, MetaTensor):
        out.meta["resized_to_reference"] = tuple(int(v) for v in img.shape[1:])
    return out


def _name(img: object, key: Hashable) -> str:
    if isinstance(img, MetaTensor) and "filename_or_obj" in img.meta:
        return f"{key} ({img.meta['filename_or_obj']})"
    return str(key)


LoadFusionImageD = LoadFusionImageDict = LoadFusionImaged
CheckPairD = CheckPairDict = CheckPaird
CheckRasterSizeD = CheckRasterSizeDict = CheckRasterSized
