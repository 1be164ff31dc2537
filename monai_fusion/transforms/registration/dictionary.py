"""Dictionary version of :class:`RegisterToReference`: register ``other`` onto ``mri`` inside a MONAI pipeline.

MONAI has no intensity-based registration transform; this wraps the array transform in MONAI's
``MapTransform`` convention, with optional mask keys, and is invertible through MONAI's machinery
(``Compose.inverse`` / ``Invertd`` put the moving image back on its original grid).
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform, ResampleToMatchd

from ...utils.errors import FusionInputError
from .array import RegisterToReference
from .grid import foreground_inside, shared_information

__all__ = ["RegisterToReferenced", "RegisterToReferenceD", "RegisterToReferenceDict", "ResampleToReferenceGridd"]


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
        min_inside: a registration that leaves less than this share of the moved image's foreground inside the
            reference's head (:func:`~.grid.foreground_inside`) is refused as failed instead of passed on: the
            atlas pairs leave 0.62 to 1 inside, a registration stuck on a wrong optimum a few percent. ``None``:
            no check. The share is recorded as ``meta["registration"]["inside_reference"]``.
        min_shared_information: a registration after which the moved image and the reference share less than this
            part of their information (:func:`~.grid.shared_information`, mutual information over the smaller
            entropy, 32 bins) is refused as failed. All 738 aligned atlas pairs share at least 0.086 after
            registration (median 0.22 to 0.32 per pair type); of 134 registrations of rolled atlas pairs that ended
            on a wrong optimum, 89 share less than 0.06, some of them with the moved head inside the reference's, where
            ``min_inside`` cannot see the failure (``docs/registration.md``). ``None``: no check. The share is
            recorded as ``meta["registration"]["shared_information"]``.
        refuse_unconverged: refuse a registration whose finest pyramid level used every one of its ``iterations``
            without the step shrinking to ``min_step`` (the optimiser still moving). Off by default: how many
            iterations a level takes depends on the machine's floating point, and on the 2-core machine 6 to 7 of
            the 738 aligned atlas pairs ran out of iterations although they were aligned, while the check caught 1
            failure that the two checks above missed, of 137. The ``stop_condition`` in the metadata says either way.
        kwargs: settings of :class:`RegisterToReference` (``transform``, ``bins``, ``sampling``,
            ``sampling_percentage``, ``shrink_factors``, ``smoothing_sigmas``, ``learning_rate``,
            ``min_step``, ``iterations``, ``foreground_mask``, ``mask_dilation``,
            ``interpolation``, ``padding_value``, ``seed``, ``num_threads``).

    Raises:
        FusionInputError: ``reference_key`` among ``keys``, a missing reference or mask key, bad images, or a
            failed registration (see ``min_inside``, ``min_shared_information`` and ``refuse_unconverged``).
    """

    backend = RegisterToReference.backend

    def __init__(
        self,
        keys: KeysCollection,
        reference_key: str = "mri",
        mask_key: str | None = None,
        reference_mask_key: str | None = None,
        allow_missing_keys: bool = False,
        min_inside: float | None = 0.4,
        min_shared_information: float | None = 0.06,
        refuse_unconverged: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if min_inside is not None and not 0.0 <= float(min_inside) <= 1.0:
            raise FusionInputError(f"RegisterToReferenced: min_inside={min_inside} must be in [0, 1] or None")
        self.min_inside = None if min_inside is None else float(min_inside)
        if min_shared_information is not None and not 0.0 <= float(min_shared_information) <= 1.0:
            raise FusionInputError(
                f"RegisterToReferenced: min_shared_information={min_shared_information} must be in [0, 1] or None"
            )
        self.min_shared_information = None if min_shared_information is None else float(min_shared_information)
        self.refuse_unconverged = bool(refuse_unconverged)
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
            if self.refuse_unconverged:
                self._check_converged(d[key], key)
            if self.min_inside is not None:
                self._check_inside(d[key], reference, key, self.min_inside)
            if self.min_shared_information is not None:
                self._check_shared(d[key], reference, key, self.min_shared_information)
        return d

    def _name(self, moved: Any, key: Hashable) -> tuple[Any, str]:
        """The moving image's file name (or its key) and the reference's name, for messages."""
        name = moved.meta.get("filename_or_obj", key) if isinstance(moved, MetaTensor) else key
        return name, "MRI" if self.reference_key == "mri" else self.reference_key

    def _refuse(self, moved: Any, key: Hashable, why: str, advice: str = "") -> None:
        """Raise the failed-registration error: what failed (``why``, may use ``{ref}``), the summary, the advice."""
        name, ref = self._name(moved, key)
        record = moved.meta.get("registration", {}) if isinstance(moved, MetaTensor) else {}
        summary = f"; {record['summary']}" if record.get("summary") else ""
        raise FusionInputError(
            f"registration of {name} onto the {ref} failed: {why.format(ref=ref)}{summary}); "
            "check that both images show the same head and region, or fuse inputs that are already aligned without "
            f"registration (--no-register){advice}"
        )

    def _check_converged(self, moved: Any, key: Hashable) -> None:
        """Refuse a registration whose finest level ran out of iterations (see ``refuse_unconverged``)."""
        record = moved.meta.get("registration", {}) if isinstance(moved, MetaTensor) else {}
        per_level, cap = record.get("iterations_per_level") or [0], self.registrar.iterations
        if per_level[-1] >= cap and "Maximum number of iterations" in str(record.get("stop_condition", "")):
            why = f"it did not converge (the finest level used all {cap} iterations without converging"
            self._refuse(moved, key, why, "; in Python, raise iterations or pass refuse_unconverged=False")

    def _record(self, moved: Any, name: str, value: float) -> None:
        if isinstance(moved, MetaTensor):
            moved.meta["registration"][name] = value

    def _check_inside(self, moved: Any, reference: Any, key: Hashable, min_inside: float) -> None:
        """Record the share of ``moved``'s foreground inside the reference's head; refuse a failed registration."""
        inside = foreground_inside(moved, reference)
        self._record(moved, "inside_reference", inside)
        if inside < min_inside:
            why = (
                f"only {inside:.0%} of its foreground lies inside the {{ref}}'s head afterwards (a good "
                "registration leaves most of it inside"
            )
            self._refuse(moved, key, why)

    def _check_shared(self, moved: Any, reference: Any, key: Hashable, least: float) -> None:
        """Record the information ``moved`` shares with the reference; refuse a failed registration."""
        shared = shared_information(moved, reference)  # 32 bins, as measured: not the metric's bins
        self._record(moved, "shared_information", shared)
        if shared < least:
            why = (
                f"afterwards the two images share only {shared:.3f} of their information (mutual information over "
                f"the smaller entropy; an aligned pair shares more than {least}"
            )
            self._refuse(moved, key, why, "; in Python, min_shared_information=None turns this check off")

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


class ResampleToReferenceGridd(ResampleToMatchd):
    """Put volumes on the reference's voxel grid by their affines alone, when the grids differ (no registration).

    Without registration, two volumes whose grids differ (another shape, voxel size or origin) would be fused voxel
    by voxel, placing anatomy wrongly without a word. MONAI's ``ResampleToMatchd`` resamples by the affines
    (bilinear, zeros outside the moving image's field of view); this subclass applies it only to 3D images whose
    grid differs from the reference's, so co-registered volumes on one grid stay untouched (no interpolation), and
    marks a resampled image with ``meta["resampled_to_reference"]``. 2D rasters carry no geometry and are left
    to :class:`~monai_fusion.transforms.io.dictionary.CheckRasterSized`.

    Args:
        keys: keys of the moving images, e.g. ``"other"``.
        reference_key: key of the reference image, e.g. ``"mri"``.
        atol: largest difference of two affines' entries (mm) still taken as one grid.
        allow_missing_keys: skip absent moving keys.
    """

    def __init__(
        self, keys: KeysCollection, reference_key: str = "mri", atol: float = 1e-3, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, key_dst=reference_key, padding_mode="zeros", allow_missing_keys=allow_missing_keys)
        self.atol = float(atol)

    def _differs(self, img: Any, ref: Any) -> bool:
        if not (isinstance(img, MetaTensor) and isinstance(ref, MetaTensor) and img.ndim == ref.ndim == 4):
            return False
        same_shape = tuple(img.shape[1:]) == tuple(ref.shape[1:])
        return not (same_shape and np.allclose(np.asarray(img.affine), np.asarray(ref.affine), atol=self.atol))

    def __call__(self, data: Mapping[Hashable, Any], lazy: bool | None = None) -> dict[Hashable, Any]:
        """Resample the moving keys whose grid differs from the reference's; returns a new dict."""
        d = dict(data)
        if self.key_dst not in d:
            raise FusionInputError(f"ResampleToReferenceGridd: reference key {self.key_dst!r} is missing")
        todo = [k for k in self.key_iterator(d) if self._differs(d[k], d[self.key_dst])]
        for key in todo:
            out = super().__call__({key: d[key], self.key_dst: d[self.key_dst]}, lazy=lazy)[key]
            out.meta["resampled_to_reference"] = True
            d[key] = out.to(torch.float32)
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Put the resampled keys back on their own grids (the others were not touched)."""
        d = dict(data)
        for key in self.key_iterator(d):
            if isinstance(d[key], MetaTensor) and d[key].meta.get("resampled_to_reference"):
                d[key] = super().inverse({key: d[key]})[key]
        return d
