"""Dictionary versions of the colour transforms: split a pseudo-colour image into Y/Cb/Cr keys and merge back.

``RGBToYCbCrd`` replaces ``other`` by its luminance and stores the chroma under ``other_cb`` and
``other_cr``; it is invertible through MONAI's machinery (``Compose.inverse`` puts the RGB image
back). ``YCbCrToRGBd`` merges a fused luminance with stored chroma into an RGB image. Grey inputs
(one channel, e.g. CT) pass through unchanged, so one preset serves every pair type. ``NeutralChromad`` gives a
grey image neutral chroma, so that a training batch that mixes grey and colour pairs can carry the chroma of each.
"""

from __future__ import annotations

from typing import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform

from ...utils.colormaps import COLORMAPS, DEFAULT_COLORMAPS, NO_COLORMAP, check_colormap
from ...utils.errors import FusionInputError
from .array import ColourMap, RGBToYCbCr, YCbCrToRGB

__all__ = [
    "chroma_keys",
    "NeutralChromad",
    "NeutralChromaD",
    "NeutralChromaDict",
    "RGBToYCbCrd",
    "YCbCrToRGBd",
    "ColourMapd",
    "RGBToYCbCrD",
    "YCbCrToRGBD",
    "ColourMapD",
    "RGBToYCbCrDict",
    "YCbCrToRGBDict",
    "ColourMapDict",
]


def _as_meta(x: object) -> MetaTensor:
    return x if isinstance(x, MetaTensor) else MetaTensor(torch.as_tensor(x))


class RGBToYCbCrd(MapTransform, InvertibleTransform):
    """Split each RGB ``key`` into Y (kept under ``key``) and chroma (``key_cb``, ``key_cr``).

    Args:
        keys: keys of RGB images, e.g. ``"other"``.
        value_max: top of the value range (1.0 for [0, 1], 255.0 for 8-bit values).
        cb_postfix: postfix of the Cb key (``other`` -> ``other_cb``).
        cr_postfix: postfix of the Cr key.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        value_max: float = 1.0,
        cb_postfix: str = "cb",
        cr_postfix: str = "cr",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.converter = RGBToYCbCr(value_max)
        self.cb_postfix, self.cr_postfix = cb_postfix, cr_postfix

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = _as_meta(d[key])
            cb_key, cr_key = f"{key}_{self.cb_postfix}", f"{key}_{self.cr_postfix}"
            if img.shape[0] == 1:  # grey (CT, grey PET): nothing to split
                self.push_transform(img, extra_info={"grey": True})
                d[key] = img
                continue
            for k in (cb_key, cr_key):
                if k in d:
                    raise FusionInputError(f"RGBToYCbCrd: key {k!r} already exists; it would be overwritten")
            ycc = self.converter(img)
            y = ycc[:1]
            self.push_transform(y, extra_info={"grey": False, "cb_key": cb_key, "cr_key": cr_key})
            d[key], d[cb_key], d[cr_key] = y, ycc[1:2], ycc[2:3]
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            info = self.pop_transform(d[key])
            extra = info["extra_info"]
            if extra["grey"]:
                continue
            y = d[key]
            ycc = torch.cat(
                [torch.as_tensor(y), torch.as_tensor(d.pop(extra["cb_key"])), torch.as_tensor(d.pop(extra["cr_key"]))],
                dim=0,
            )
            rgb = YCbCrToRGB(self.converter.value_max)(ycc)
            d[key] = (
                MetaTensor(rgb, meta=y.meta, applied_operations=y.applied_operations)
                if isinstance(y, MetaTensor)
                else rgb
            )
        return d


class YCbCrToRGBd(MapTransform):
    """Merge a luminance ``key`` (e.g. ``fused``) with chroma keys into an RGB image under ``key``.

    When the chroma keys are absent (grey pair types such as CT-MRI) the image stays grey, unless
    ``allow_missing_chroma=False``, which raises instead.

    Args:
        keys: luminance keys to merge, e.g. ``"fused"``.
        cb_key: key of the Cb channel (``other_cb``).
        cr_key: key of the Cr channel (``other_cr``).
        value_max: top of the value range.
        allow_missing_chroma: leave grey images grey when the chroma keys are absent.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        cb_key: str = "other_cb",
        cr_key: str = "other_cr",
        value_max: float = 1.0,
        allow_missing_chroma: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.cb_key, self.cr_key = cb_key, cr_key
        self.converter = YCbCrToRGB(value_max)
        self.allow_missing_chroma = allow_missing_chroma

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        have = self.cb_key in d and self.cr_key in d
        if not have and not self.allow_missing_chroma:
            raise FusionInputError(f"YCbCrToRGBd: chroma keys {self.cb_key!r}/{self.cr_key!r} are missing")
        for key in self.key_iterator(d):
            y = d[key]
            if not have:
                continue
            if y.shape[0] != 1:
                raise FusionInputError(
                    f"YCbCrToRGBd: {key!r} must be a 1-channel luminance, got shape {tuple(y.shape)}"
                )
            cb, cr = torch.as_tensor(d[self.cb_key]), torch.as_tensor(d[self.cr_key])
            if cb.shape[1:] != y.shape[1:] or cr.shape[1:] != y.shape[1:]:
                raise FusionInputError(
                    f"YCbCrToRGBd: {key!r} {tuple(y.shape[1:])} and chroma {tuple(cb.shape[1:])} differ in size"
                )
            rgb = self.converter(torch.cat([torch.as_tensor(y), cb.to(y.device), cr.to(y.device)], dim=0))
            d[key] = MetaTensor(rgb, meta=y.meta) if isinstance(y, MetaTensor) else rgb
        return d


class ColourMapd(MapTransform):
    """Render each grey ``key`` in colour through a colour map chosen by the sample's modality or by name.

    Runs after the intensity window (it needs [0, 1]) and before :class:`RGBToYCbCrd`, so a grey clinical PET is
    fused like the atlas' pseudo-colour PET. Images that are already RGB keep their colours.

    Args:
        keys: keys of the moving image, e.g. ``"other"``.
        colormap: ``"auto"`` (:data:`~monai_fusion.utils.colormaps.DEFAULT_COLORMAPS`: ``atlas`` for PET/SPECT,
            grey for CT), a name of :data:`~monai_fusion.utils.colormaps.COLORMAPS` (applied to every grey image,
            e.g. ``bone`` tints a CT's bone), or ``"none"`` (keep grey).
        modality_key: key of the sample's modality (``CT``, ``PET``, ``SPECT``).
        allow_missing_keys: skip absent keys.

    Raises:
        FusionInputError: an unknown colour map; a named colour map for an image that is already RGB.
    """

    def __init__(
        self,
        keys: KeysCollection,
        colormap: str = "auto",
        modality_key: str = "modality",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.colormap = "auto" if str(colormap).lower() == "auto" else check_colormap(colormap, "colormap")
        self.modality_key = modality_key
        self.maps = {name: ColourMap(name) for name in COLORMAPS}

    def _name_for(self, d: Mapping[Hashable, object]) -> str:
        if self.colormap != "auto":
            return self.colormap
        mod = d.get(self.modality_key)
        mod = mod[0] if isinstance(mod, (list, tuple)) and mod else mod
        return DEFAULT_COLORMAPS.get(str(mod).upper(), NO_COLORMAP) if isinstance(mod, str) else NO_COLORMAP

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            img, name = d[key], self._name_for(d)
            if img.shape[0] == 3:  # already pseudo-colour (the atlas' PET/SPECT slices)
                if self.colormap not in ("auto", NO_COLORMAP):
                    raise FusionInputError(
                        f"colormap {self.colormap!r}: {_name(img, key)} is already a colour (RGB) image; a colour "
                        f"map renders grey images (leave it out, or give {NO_COLORMAP!r})"
                    )
                continue
            if name == NO_COLORMAP:
                if isinstance(img, MetaTensor):
                    img.meta["colormap"] = NO_COLORMAP
                continue
            d[key] = self.maps[name](img)
        return d


def chroma_keys(key: str = "other") -> tuple[str, str]:
    """The chroma keys :class:`RGBToYCbCrd` writes for ``key`` by default (``other`` -> ``other_cb``, ``other_cr``)."""
    return f"{key}_cb", f"{key}_cr"


class NeutralChromad(MapTransform):
    """Add neutral chroma (``value_max / 2``, no colour) under ``<key>_cb``/``<key>_cr`` where a key has none.

    After :class:`RGBToYCbCrd`, a grey pair (CT-MRI) has no chroma keys and a colour pair has both; with this
    every sample has both, so a batch of mixed pair types collates them, and the grey pair's output composed with
    them stays grey (what the writers write for it).

    Args:
        keys: the luminance keys whose chroma keys are filled, e.g. ``"other"``.
        value_max: top of the value range (the chroma's neutral value is half of it).
        allow_missing_keys: skip absent keys.

    Raises:
        FusionInputError: only one of the two chroma keys is present.
    """

    def __init__(self, keys: KeysCollection, value_max: float = 1.0, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.value_max = float(value_max)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            names = chroma_keys(key)
            present = [k in d for k in names]
            if all(present):
                continue
            if any(present):
                raise FusionInputError(f"NeutralChromad: {key!r} has only one of its chroma keys {names}")
            img = torch.as_tensor(d[key])
            for k in names:
                d[k] = torch.full_like(img, self.value_max / 2)
        return d


def _name(img: object, key: Hashable) -> str:
    if isinstance(img, MetaTensor) and "filename_or_obj" in img.meta:
        return str(img.meta["filename_or_obj"])
    return f"key {key!r}"


NeutralChromaD = NeutralChromaDict = NeutralChromad
RGBToYCbCrD = RGBToYCbCrDict = RGBToYCbCrd
YCbCrToRGBD = YCbCrToRGBDict = YCbCrToRGBd
ColourMapD = ColourMapDict = ColourMapd
