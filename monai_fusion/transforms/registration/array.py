"""Register a moving image (CT/PET/SPECT) onto a reference image (the MRI) with SimpleITK.

Mattes mutual information, a rigid (default) or affine transform, multi-resolution, optional
foreground masks, 2D slices and 3D volumes; the moving image is resampled onto the reference grid
and the transform is recorded in ``meta["registration"]`` of the output ``MetaTensor``.

Why this wraps SimpleITK (MONAI has no intensity-based registration; SimpleITK knows nothing of channel-first
arrays, ``MetaTensor`` metadata, RAS affines or the invertible-transform stack), the determinism and the
conditioning of the optimisation: ``docs/registration.md``. Helpers live in ``geometry.py``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import InvertibleTransform
from monai.utils import TraceKeys, TransformBackends, convert_to_numpy

from ...data.io import check_finite_nonconstant
from ...utils.errors import FusionInputError
from .geometry import (
    _affine,
    _channels_first,
    _execute,
    _metric_value,
    _physical,
    _physical_points,
    _resample,
    _scalar,
    _set_masks,
    _start_at,
    _to_sitk,
    displacement_error,
    foreground_mask,
    initial_transform,
    mask_points,
    overlap_errors,
    registration_method,
    registration_record,
)
from .grid import grid_factor, pool_volume, pooled_pyramid, registration_mask

__all__ = [
    "TRANSFORM_TYPES",
    "SAMPLING_STRATEGIES",
    "FOREGROUND_MASKS",
    "INTERPOLATIONS",
    "RegisterToReference",
    "foreground_mask",
    "mask_points",
    "displacement_error",
]

#: Transform models: ``rigid`` (rotation + translation) and ``affine`` (adds scaling and shear).
TRANSFORM_TYPES: tuple[str, ...] = ("rigid", "affine")
#: Metric sampling: ``random``/``regular`` take ``sampling_percentage`` of the voxels, ``none`` all of them,
#: ``auto`` all for 2D slices and ``random`` for 3D volumes.
SAMPLING_STRATEGIES: tuple[str, ...] = ("auto", "random", "regular", "none")
#: Which images get an automatic foreground mask for the metric.
FOREGROUND_MASKS: tuple[str, ...] = ("none", "reference", "moving", "both")
#: Interpolations for the final resampling (the optimisation always interpolates linearly).
INTERPOLATIONS: tuple[str, ...] = ("linear", "bspline", "nearest")

#: The settings recorded in ``meta["registration"]["settings"]``.
_SETTING_KEYS: tuple[str, ...] = tuple(
    "transform bins sampling sampling_percentage shrink_factors smoothing_sigmas learning_rate min_step "
    "iterations foreground_mask mask_dilation interpolation padding_value seed max_voxels".split()
)


class RegisterToReference(InvertibleTransform):
    """Register a moving image onto a reference image (Mattes mutual information, SimpleITK).

    The transform is optimised on the scalar images (luminance for RGB) by SimpleITK's regular-step
    gradient descent over a multi-resolution pyramid, starting from the images' own geometry
    (identity: the grids as given, or ``initial``), rotating about the centroid of the reference's
    foreground. The moving image is then resampled onto the reference grid, every channel with the
    same transform.

    Coordinates: 2D ``(C, H, W)`` images are taken on the pixel grid as SimpleITK's
    ``GetImageFromArray`` does (x = column, y = row, spacing 1, origin 0); 3D ``(C, X, Y, Z)`` images
    use the RAS affine of their ``MetaTensor`` (identity for plain arrays) and are handed to
    SimpleITK in LPS. The output's ``meta["registration"]`` is described in
    :func:`~monai_fusion.transforms.registration.geometry.registration_record`.

    The output's affine is the reference's. The inverse (MONAI's ``inverse``) resamples the image
    back onto the moving image's original grid with the inverse transform; anatomy that the forward
    step pushed outside the reference's field of view comes back as ``padding_value``, and both
    steps interpolate, so the round trip is exact in geometry, not in every value.

    Args:
        transform: ``"rigid"`` or ``"affine"``.
        bins: histogram bins of Mattes mutual information.
        sampling: ``"auto"`` (every pixel of a 2D slice, ``random`` for 3D volumes), ``"random"``,
            ``"regular"`` or ``"none"`` (every voxel).
        sampling_percentage: fraction of voxels sampled per level (one value or one per level).
        shrink_factors: pyramid shrink factors, coarsest first.
        smoothing_sigmas: Gaussian sigmas per level in voxels of the full-resolution images.
        learning_rate: first step length of the gradient descent, in pixels/mm of foreground motion
            (``None``: 1.0 for rigid, 0.25 for affine, whose six or twelve parameters overshoot at 1.0).
        min_step: step length at which a level stops.
        iterations: most iterations per level.
        foreground_mask: which images get an automatic foreground mask (see :func:`foreground_mask`):
            ``"none"``, ``"reference"``, ``"moving"`` or ``"both"``; explicit masks given to
            ``__call__`` take precedence.
        mask_dilation: dilation of the automatic masks, in voxels.
        interpolation: interpolation of the final resampling (``"linear"``, ``"bspline"``, ``"nearest"``).
        padding_value: value of moving voxels outside the moving image.
        seed: seed of the random sampling, a positive integer (SimpleITK takes 0 as "use the clock").
        num_threads: SimpleITK threads for the registration (``None``: SimpleITK's default).
        max_voxels: 3D volumes larger than this are averaged down by the smallest integer factor that fits before
            they are registered (the pyramid scaled to match; see :mod:`.grid`): about 10x faster at 256x256x180,
            within half a voxel. ``None``: always the full resolution.

    Raises:
        FusionInputError: a setting out of range (here) or bad images (on call).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        transform: str = "rigid",
        bins: int = 32,
        sampling: str = "auto",
        sampling_percentage: float | Sequence[float] = 0.1,
        shrink_factors: Sequence[int] = (4, 2, 1),
        smoothing_sigmas: Sequence[float] = (8.0, 4.0, 2.0),
        learning_rate: float | None = None,
        min_step: float = 1e-4,
        iterations: int = 300,
        foreground_mask: str = "none",
        mask_dilation: int = 5,
        interpolation: str = "linear",
        padding_value: float = 0.0,
        seed: int = 1,
        num_threads: int | None = None,
        max_voxels: int | None = 2_000_000,
    ) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise FusionInputError(f"RegisterToReference: {msg}")

        choices = [("transform", transform, TRANSFORM_TYPES), ("sampling", sampling, SAMPLING_STRATEGIES)]
        choices += [
            ("foreground_mask", foreground_mask, FOREGROUND_MASKS),
            ("interpolation", interpolation, INTERPOLATIONS),
        ]
        for name, value, allowed in choices:
            need(value in allowed, f"{name}={value!r} is not one of {', '.join(allowed)}")
        need(int(bins) >= 4, f"bins={bins} must be at least 4")
        shrink = [int(s) for s in shrink_factors]
        sigmas = [float(s) for s in smoothing_sigmas]
        need(len(shrink) >= 1 and all(s >= 1 for s in shrink), f"shrink_factors={shrink_factors} must be integers >= 1")
        need(
            len(sigmas) == len(shrink) and all(s >= 0 for s in sigmas),
            f"smoothing_sigmas={smoothing_sigmas} must give one sigma >= 0 per level ({len(shrink)} levels)",
        )
        sp = sampling_percentage
        pct = [float(sp)] * len(shrink) if np.isscalar(sp) else [float(p) for p in sp]  # type: ignore[union-attr]
        need(
            len(pct) == len(shrink) and all(0 < p <= 1 for p in pct),
            f"sampling_percentage={sampling_percentage} must be in (0, 1], one value or one per level",
        )
        learning_rate = (1.0 if transform == "rigid" else 0.25) if learning_rate is None else float(learning_rate)
        need(
            learning_rate > 0 and min_step > 0 and int(iterations) >= 1,
            "learning_rate and min_step must be > 0 and iterations >= 1",
        )
        need(int(mask_dilation) >= 0, f"mask_dilation={mask_dilation} must be >= 0")
        need(
            isinstance(seed, (int, np.integer)) and seed > 0,
            f"seed={seed!r} must be a positive integer (SimpleITK seeds from the clock with 0)",
        )
        need(num_threads is None or int(num_threads) >= 1, f"num_threads={num_threads} must be >= 1 or None")
        need(max_voxels is None or int(max_voxels) >= 4096, f"max_voxels={max_voxels} must be >= 4096 or None")
        self.max_voxels = None if max_voxels is None else int(max_voxels)
        self.transform = transform
        self.bins = int(bins)
        self.sampling = sampling
        self.sampling_percentage = pct
        self.shrink_factors = shrink
        self.smoothing_sigmas = sigmas
        self.learning_rate = float(learning_rate)
        self.min_step = float(min_step)
        self.iterations = int(iterations)
        self.foreground_mask = foreground_mask
        self.mask_dilation = int(mask_dilation)
        self.interpolation = interpolation
        self.padding_value = float(padding_value)
        self.seed = int(seed)
        self.num_threads = None if num_threads is None else int(num_threads)

    def settings(self) -> dict[str, Any]:
        """The registration settings, as recorded in ``meta["registration"]["settings"]``."""
        return {k: getattr(self, k) for k in _SETTING_KEYS}

    def _method(self, levels: Sequence[int], sigmas: Sequence[float], pct: Sequence[float], sampling: str) -> Any:
        return registration_method(levels, sigmas, pct, sampling, self.bins, self.seed, self.num_threads)

    def register(
        self,
        img: NdarrayOrTensor,
        reference: NdarrayOrTensor,
        img_mask: NdarrayOrTensor | None = None,
        reference_mask: NdarrayOrTensor | None = None,
        initial: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Compute the transform from ``reference`` to ``img`` without resampling.

        Args:
            img: moving image, channel-first ``(1|3, H, W)`` or ``(1|3, X, Y, Z)``.
            reference: reference (fixed) image of the same spatial dimensionality.
            img_mask: optional foreground mask of ``img`` (spatial shape, or with one channel).
            reference_mask: optional foreground mask of ``reference``.
            initial: optional starting transform, a ``(d+1, d+1)`` fixed -> moving matrix in the
                coordinates of ``matrix`` (rigid for ``transform="rigid"``); identity when ``None``.

        Returns:
            The ``meta["registration"]`` dict described in the class docstring.

        Raises:
            FusionInputError: dimension mismatch, bad channel count, NaN/Inf or constant images,
                empty masks, images too small for the pyramid, or images that do not overlap.
        """
        dims, fixed, moving, masks, lever, ref_aff, k = self._prepare(img, reference, img_mask, reference_mask)
        levels, sigmas, pct = pooled_pyramid(self.shrink_factors, self.smoothing_sigmas, self.sampling_percentage, k)
        tx, scales = initial_transform(_physical_points(mask_points(lever, ref_aff), dims), dims, self.transform)
        if initial is not None:
            _start_at(tx, _physical(np.asarray(initial, dtype=np.float64), dims), dims)
        sampling = self.sampling if self.sampling != "auto" else ("none" if dims == 2 else "random")
        with overlap_errors():
            # sampled as the finest level samples, so that the start and the end value compare like for like
            start = _metric_value(self._method([1], [0.0], pct[-1:], sampling), fixed, moving, masks, tx)
        reg = self._method(levels, sigmas, pct, sampling)
        _set_masks(reg, masks)
        reg.SetOptimizerAsRegularStepGradientDescent(
            self.learning_rate, self.min_step, self.iterations, relaxationFactor=0.5, gradientMagnitudeTolerance=1e-8
        )
        reg.SetOptimizerScales(scales)
        reg.SetInitialTransform(tx, inPlace=True)
        per_level = _execute(reg, fixed, moving)
        return {
            **registration_record(tx, reg, dims, self.transform, start, per_level, self.settings()),
            "grid_factor": k,
        }

    def _prepare(
        self,
        img: NdarrayOrTensor,
        reference: NdarrayOrTensor,
        img_mask: NdarrayOrTensor | None,
        reference_mask: NdarrayOrTensor | None,
    ) -> tuple[int, Any, Any, tuple[Any, Any], np.ndarray, np.ndarray, int]:
        """Check the pair and convert it: ``(dims, fixed, moving, sitk masks, lever mask, reference affine, grid
        factor)``; large volumes are averaged down by the grid factor (:func:`.grid.grid_factor`)."""
        mov, ref = _channels_first(img, "moving image"), _channels_first(reference, "reference image")
        dims = ref.ndim - 1
        if mov.ndim != ref.ndim:
            raise FusionInputError(
                f"moving image is {mov.ndim - 1}D {tuple(mov.shape)} but the reference is {dims}D {tuple(ref.shape)}; "
                "expected both 2D (C, H, W) or both 3D (C, X, Y, Z)"
            )
        small = min(min(mov.shape[1:]), min(ref.shape[1:])) // max(self.shrink_factors)
        if small < 4:
            raise FusionInputError(
                f"images of spatial size {tuple(mov.shape[1:])} / {tuple(ref.shape[1:])} are too small for "
                f"shrink factors {self.shrink_factors}; use smaller shrink factors"
            )
        ms, rs = _scalar(mov), _scalar(ref)
        check_finite_nonconstant(ms, "moving image")
        check_finite_nonconstant(rs, "reference image")
        mov_aff, ref_aff = _affine(img, dims), _affine(reference, dims)
        auto = self.foreground_mask
        fmask = registration_mask(reference_mask, rs, auto in ("reference", "both"), "reference", self.mask_dilation)
        mmask = registration_mask(img_mask, ms, auto in ("moving", "both"), "moving", self.mask_dilation)
        k = grid_factor([rs.shape, ms.shape], self.max_voxels) if dims == 3 else 1
        masks = tuple(
            None if m is None else _to_sitk(*pool_volume(m.astype(np.uint8), aff, k, "max"), np.uint8)
            for m, aff in ((fmask, ref_aff), (mmask, mov_aff))
        )
        lever = fmask if fmask is not None else foreground_mask(rs)
        fixed, moving = (_to_sitk(*pool_volume(a, aff, k)) for a, aff in ((rs, ref_aff), (ms, mov_aff)))
        return dims, fixed, moving, masks, lever, ref_aff, k

    def resample(self, img: NdarrayOrTensor, reference: NdarrayOrTensor, registration: dict[str, Any]) -> MetaTensor:
        """Resample ``img`` onto ``reference``'s grid with a transform from :meth:`register`, recording it.

        Args:
            img: moving image (all channels are resampled).
            reference: reference image (its grid and affine are taken).
            registration: the dict :meth:`register` returned (``matrix`` is used).

        Returns:
            The resampled image with the reference's affine and ``meta["registration"]``, and the step on its
            ``applied_operations`` (for :meth:`inverse`); a plain tensor when MONAI's meta tracking is off.
        """
        mov = _channels_first(img, "moving image")
        ref_shape = tuple(int(s) for s in reference.shape[1:])
        dims = len(ref_shape)
        if mov.ndim - 1 != dims:
            raise FusionInputError(
                f"moving image {tuple(mov.shape)} and reference {tuple(reference.shape)} differ in dimension"
            )
        mov_aff, ref_aff = _affine(img, dims), _affine(reference, dims)
        matrix = np.asarray(registration["matrix"], dtype=np.float64)
        out = _resample(mov, mov_aff, ref_shape, ref_aff, matrix, self.interpolation, self.padding_value)
        own = img.affine.clone() if isinstance(img, MetaTensor) else None
        return self._wrap(
            out,
            img,
            reference if isinstance(reference, MetaTensor) else None,
            registration,
            push={"matrix": matrix, "dims": dims, "moving_affine": own},
            orig=mov.shape[1:],
        )

    def _wrap(
        self,
        out: np.ndarray,
        src: NdarrayOrTensor,
        grid: MetaTensor | None,
        registration: dict[str, Any] | None,
        push: dict[str, Any] | None,
        orig: Sequence[int],
        affine: np.ndarray | None = None,
    ) -> MetaTensor:
        t = torch.as_tensor(out)
        if not get_track_meta():
            return t  # type: ignore[return-value]
        res = MetaTensor(t)
        if isinstance(src, MetaTensor):
            res.copy_meta_from(src, copy_attr=True)
        if grid is not None:
            res.affine = grid.affine.clone()
        elif affine is not None:
            res.affine = torch.as_tensor(affine, dtype=torch.float64)
        if "spatial_shape" in res.meta:
            res.meta["spatial_shape"] = np.asarray(out.shape[1:])
        if registration is None:
            res.meta.pop("registration", None)
        else:
            res.meta["registration"] = registration
        if push is not None:
            res = self.push_transform(res, orig_size=tuple(int(s) for s in orig), extra_info=push)
        return res

    def __call__(
        self,
        img: NdarrayOrTensor,
        reference: NdarrayOrTensor,
        img_mask: NdarrayOrTensor | None = None,
        reference_mask: NdarrayOrTensor | None = None,
        initial: np.ndarray | None = None,
    ) -> MetaTensor:
        """Register ``img`` onto ``reference`` and resample it onto the reference grid.

        Args:
            img: moving image ``(1|3, H, W)`` or ``(1|3, X, Y, Z)``; RGB is registered on its luminance.
            reference: reference (fixed) image, grey or RGB, same spatial dimensionality.
            img_mask: optional foreground mask of ``img`` (overrides the automatic one).
            reference_mask: optional foreground mask of ``reference`` (overrides the automatic one).
            initial: optional starting transform (see :meth:`register`).

        Returns:
            ``img`` on the reference grid (float32 ``MetaTensor``) with ``meta["registration"]``.
        """
        return self.resample(img, reference, self.register(img, reference, img_mask, reference_mask, initial))

    def inverse(self, data: NdarrayOrTensor) -> MetaTensor:
        """Resample a registered image back onto the moving image's original grid.

        Args:
            data: an output of this transform (a ``MetaTensor`` carrying the step in ``applied_operations``).

        Returns:
            The image on the original moving grid, with that grid's affine; ``meta["registration"]`` is dropped.
        """
        op = self.pop_transform(data)
        info = op[TraceKeys.EXTRA_INFO]
        dims = int(info["dims"])
        matrix = np.asarray(info["matrix"], dtype=np.float64)
        own = info.get("moving_affine")
        own = None if own is None else convert_to_numpy(own, dtype=np.float64)
        grid = own if dims == 3 and own is not None and own.shape == (4, 4) else np.eye(dims + 1)
        arr = _channels_first(data, "registered image")
        shape = tuple(int(s) for s in op[TraceKeys.ORIG_SIZE])
        out = _resample(
            arr, _affine(data, dims), shape, grid, np.linalg.inv(matrix), self.interpolation, self.padding_value
        )
        return self._wrap(out, data, None, None, None, shape, affine=own)
