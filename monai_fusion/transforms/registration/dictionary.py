"""Dictionary version of :class:`RegisterToReference`: register ``other`` onto ``mri`` inside a MONAI pipeline.

MONAI has no intensity-based registration transform; this wraps the array transform in MONAI's
``MapTransform`` convention, with optional mask keys, and is invertible through MONAI's machinery
(``Compose.inverse`` / ``Invertd`` put the moving image back on its original grid).
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping

from monai.config import KeysCollection
from monai.transforms import InvertibleTransform, MapTransform

from ...utils.errors import FusionInputError
from .array import RegisterToReference

__all__ = ["RegisterToReferenced", "RegisterToReferenceD", "RegisterToReferenceDict"]


class RegisterToReferenced(MapTransform, InvertibleTransform):
    """Register each image under ``keys`` onto the image under ``reference_key``, and resample it there.

    Each key is registered on its own (its own transform, in its ``meta["registration"]``); see
    :class:`RegisterToReference` for the method, the metadata layout and the settings.

    Args:
        keys: keys of the moving images, e.g. ``"other"``.
        reference_key: key of the reference (fixed) image, e.g. ``"mri"``.
        mask_key: optional key of a foreground mask of the moving image(s).
        reference_mask_key: optional key of a foreground mask of the reference.
        allow_missing_keys: skip absent moving keys.
        kwargs: settings of :class:`RegisterToReference` (``transform``, ``bins``, ``sampling``,
            ``sampling_percentage``, ``shrink_factors``, ``smoothing_sigmas``, ``learning_rate``,
            ``min_step``, ``iterations``, ``foreground_mask``, ``mask_dilation``, ``search``,
            ``interpolation``, ``padding_value``, ``seed``, ``num_threads``).

    Raises:
        FusionInputError: ``reference_key`` among ``keys``, a missing reference or mask key, or bad images.
    """

    backend = RegisterToReference.backend

    def __init__(
        self,
        keys: KeysCollection,
        reference_key: str = "mri",
        mask_key: str | None = None,
        reference_mask_key: str | None = None,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if reference_key in self.keys:
            raise FusionInputError(
                f"RegisterToReferenced: reference_key {reference_key!r} is also among keys {self.keys}"
            )
        self.reference_key = reference_key
        self.mask_key = mask_key
        self.reference_mask_key = reference_mask_key
        self.registrar = RegisterToReference(**kwargs)

    def _get(self, d: Mapping[Hashable, Any], key: str | None, what: str) -> Any:
        if key is None:
            return None
        if key not in d:
            raise FusionInputError(
                f"RegisterToReferenced: {what} key {key!r} is missing; keys present: {sorted(map(str, d))}"
            )
        return d[key]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Register and resample every moving key.

        Args:
            data: a dict holding the reference and moving images (channel-first arrays or ``MetaTensor``).

        Returns:
            A new dict whose moving keys hold the registered images.
        """
        d = dict(data)
        reference = self._get(d, self.reference_key, "reference")
        reference_mask = self._get(d, self.reference_mask_key, "reference mask")
        mask = self._get(d, self.mask_key, "mask")
        for key in self.key_iterator(d):
            d[key] = self.registrar(d[key], reference, mask, reference_mask)
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Put every moving key back on its original grid (see :meth:`RegisterToReference.inverse`).

        Args:
            data: a dict this transform produced (possibly after further invertible steps were undone).

        Returns:
            A new dict with the moving keys resampled back.
        """
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.registrar.inverse(d[key])
        return d


RegisterToReferenceD = RegisterToReferenceDict = RegisterToReferenced
