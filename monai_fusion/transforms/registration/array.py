"""Register a moving image (CT/PET/SPECT) onto a reference image (the MRI) with SimpleITK.

Mattes mutual information, a rigid (default) or affine transform, multi-resolution, optional
foreground masks, 2D slices and 3D volumes; the moving image is resampled onto the reference grid
and the transform is recorded in ``meta["registration"]`` of the output ``MetaTensor``.

What this adds to SimpleITK and MONAI, and why:

- MONAI has no intensity-based (mutual information) registration, and SimpleITK knows nothing of
  channel-first arrays, ``MetaTensor`` metadata, MONAI's RAS affines (SimpleITK is LPS) or
  MONAI's invertible-transform stack. This module converts between the two (2D ``(C, H, W)``
  slices on the pixel grid with x = column, y = row; 3D ``(C, X, Y, Z)`` volumes with a RAS affine)
  and reports the transform in the reference's own coordinates.
- Pseudo-colour PET/SPECT (``C == 3``): the transform is computed on the luminance and every
  channel is resampled with it; SimpleITK registers scalar images only.
- Determinism: SimpleITK's sampling seed ``0`` means "seed from the wall clock"; a fixed, nonzero
  seed is enforced here, so repeated runs agree (to ~1e-13 px: ITK's multi-threaded sums may differ
  in their last bits).
- Optional foreground masks computed on the fly (Otsu threshold, holes filled, dilated). They are
  off by default: on the Whole Brain Atlas slices they did not bring the optimum closer to the
  published alignment and made SPECT worse (``docs/registration.md``, ``benchmarks/registration_drift.py``).
- Well-conditioned optimisation: the rotation centre is the centroid of the reference's foreground
  and the optimizer scales are the mean squared lever arms of that foreground, so one unit of step
  moves the anatomy by about one pixel/mm whatever the parameter. SimpleITK's usual recipe
  (``SetOptimizerScalesFromPhysicalShift``, image centre) under-weights rotations on a 256x256 slice:
  the descent crawls along a rotation/translation valley and stops near wherever it started, so a
  misaligned start ends 6-8 px (median) from where the aligned start ends. With these scales and
  heavier smoothing (sigmas 8/4/2 px) both starts end at the same optimum (median 0.00 px).
- Clear :class:`~monai_fusion.utils.FusionInputError` messages for bad input instead of ITK traces.
"""

from __future__ import annotations

import math
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
from ..colour.array import rgb_to_luminance

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

# RAS <-> LPS: negate x and y (its own inverse).
_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])


def _sitk() -> Any:
    import SimpleITK as sitk  # imported on use: the rest of the transforms package does not need it

    return sitk


def foreground_mask(image: np.ndarray, dilation: int = 0) -> np.ndarray:
    """Foreground of a spatial image: above its Otsu threshold, holes filled, then dilated.

    Args:
        image: a 2D ``(H, W)`` or 3D ``(X, Y, Z)`` array (no channel dimension).
        dilation: dilation in voxels (0 for none).

    Returns:
        Boolean mask of the same shape.

    Raises:
        FusionInputError: a constant image (no threshold separates anything).
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    a = np.asarray(image, dtype=np.float32)
    check_finite_nonconstant(a, "foreground_mask: image")
    mask = ndimage.binary_fill_holes(a > threshold_otsu(a))
    if dilation > 0:
        mask = ndimage.binary_dilation(mask, iterations=int(dilation))
    return mask


def displacement_error(matrix_a: np.ndarray, matrix_b: np.ndarray, points: np.ndarray) -> float:
    """Largest distance between where two homogeneous transforms send the same points.

    Args:
        matrix_a: ``(d + 1, d + 1)`` homogeneous matrix.
        matrix_b: the other one, same shape.
        points: ``(N, d)`` points in the matrices' coordinates (e.g. the foreground voxels).

    Returns:
        ``max_i |A p_i - B p_i|`` in the points' units (0.0 for no points).
    """
    p = np.asarray(points, dtype=np.float64)
    if p.size == 0:
        return 0.0
    d = p.shape[1]
    diff = (np.asarray(matrix_a, float) - np.asarray(matrix_b, float))[:d]
    moved = p @ diff[:, :d].T + diff[:, d]
    return float(np.sqrt((moved**2).sum(axis=1)).max())


def mask_points(mask: np.ndarray, affine: np.ndarray | None = None) -> np.ndarray:
    """Coordinates of the voxels of a mask, in the coordinates :class:`RegisterToReference` reports matrices in.

    Args:
        mask: boolean 2D ``(H, W)`` or 3D ``(X, Y, Z)`` array.
        affine: the 3D image's 4x4 RAS affine (ignored in 2D; identity when ``None``).

    Returns:
        ``(N, 2)`` pixel coordinates ``(x = column, y = row)`` in 2D, ``(N, 3)`` RAS millimetres in 3D.
    """
    idx = np.argwhere(np.asarray(mask, dtype=bool)).astype(np.float64)
    if idx.shape[1] == 2:
        return idx[:, ::-1]
    aff = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    return idx @ aff[:3, :3].T + aff[:3, 3]


def _physical_points(points: np.ndarray, dims: int) -> np.ndarray:
    return points if dims == 2 else points * np.array([-1.0, -1.0, 1.0])


def _channels_first(img: NdarrayOrTensor, name: str) -> np.ndarray:
    arr = convert_to_numpy(img, dtype=np.float32)
    if arr.ndim not in (3, 4):
        raise FusionInputError(
            f"{name}: expected a channel-first 2D (C, H, W) or 3D (C, X, Y, Z) image, got shape {tuple(arr.shape)}"
        )
    if arr.shape[0] not in (1, 3):
        raise FusionInputError(f"{name}: expected 1 (grey) or 3 (RGB) channels, got shape {tuple(arr.shape)}")
    if min(arr.shape[1:]) < 4:
        raise FusionInputError(
            f"{name}: spatial size {tuple(arr.shape[1:])} is too small to register (at least 4 per axis)")
    return arr


def _scalar(arr: np.ndarray) -> np.ndarray:
    """The image the metric sees: the grey channel, or the luminance of an RGB image."""
    return arr[0] if arr.shape[0] == 1 else np.asarray(rgb_to_luminance(arr))[0]


def _affine(img: NdarrayOrTensor, dims: int) -> np.ndarray:
    """RAS affine of a 3D image (identity without one); 2D slices live on the pixel grid."""
    if dims == 3 and isinstance(img, MetaTensor):
        aff = convert_to_numpy(img.affine, dtype=np.float64)
        if aff.shape == (4, 4):
            return aff
    return np.eye(dims + 1)


def _physical(matrix: np.ndarray, dims: int) -> np.ndarray:
    """Reference-space matrix (RAS for 3D) <-> SimpleITK physical (LPS for 3D); 2D is unchanged."""
    return matrix if dims == 2 else _FLIP @ matrix @ _FLIP


def _blank(shape: Sequence[int], affine: np.ndarray) -> Any:
    """An empty SimpleITK image with the grid of an array of ``shape`` (and, in 3D, RAS ``affine``)."""
    sitk = _sitk()
    size = [int(s) for s in (reversed(shape) if len(shape) == 2 else shape)]  # 2D arrays are (row, column)
    image = sitk.Image(size, sitk.sitkUInt8)
    if len(shape) == 3:
        _set_geometry(image, affine)
    return image


def _set_geometry(image: Any, affine: np.ndarray) -> None:
    lps = _FLIP @ np.asarray(affine, dtype=np.float64)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    if np.any(spacing <= 0):
        raise FusionInputError(f"the affine {affine.tolist()} is singular; expected a voxel-to-RAS affine")
    direction = lps[:3, :3] / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise FusionInputError("the affine has shear (non-orthogonal axes), which SimpleITK images cannot represent")
    image.SetSpacing(spacing.tolist())
    image.SetDirection(direction.ravel().tolist())
    image.SetOrigin(lps[:3, 3].tolist())


def _to_sitk(spatial: np.ndarray, affine: np.ndarray, dtype: Any = np.float32) -> Any:
    """Spatial array -> SimpleITK image: 2D ``(H, W)`` (x = column, y = row), 3D ``(X, Y, Z)`` with a RAS affine."""
    sitk = _sitk()
    a = np.asarray(spatial, dtype=dtype)
    if a.ndim == 2:
        return sitk.GetImageFromArray(np.ascontiguousarray(a))
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(a, (2, 1, 0))))
    _set_geometry(image, affine)
    return image


def _from_sitk(image: Any) -> np.ndarray:
    a = _sitk().GetArrayFromImage(image)
    return a if a.ndim == 2 else np.transpose(a, (2, 1, 0))


def _matrix(transform: Any, dims: int) -> np.ndarray:
    """Homogeneous matrix of a SimpleITK matrix-offset transform (``x -> A (x - c) + c + t``)."""
    a = np.asarray(transform.GetMatrix(), dtype=np.float64).reshape(dims, dims)
    c = np.asarray(transform.GetCenter(), dtype=np.float64)
    t = np.asarray(transform.GetTranslation(), dtype=np.float64)
    m = np.eye(dims + 1)
    m[:dims, :dims] = a
    m[:dims, dims] = t + c - a @ c
    return m


def _affine_transform(matrix: np.ndarray, dims: int) -> Any:
    tx = _sitk().AffineTransform(dims)
    tx.SetMatrix(matrix[:dims, :dims].ravel().tolist())
    tx.SetTranslation(matrix[:dims, dims].tolist())
    return tx


def _resample(arr: np.ndarray, arr_affine: np.ndarray, shape: Sequence[int], affine: np.ndarray,
              matrix: np.ndarray, interpolation: str, padding_value: float) -> np.ndarray:
    """Resample every channel of ``arr`` onto the grid ``(shape, affine)``: ``out(x) = arr(M x)``.

    ``matrix`` maps a point of the output grid to the input's, in reference coordinates (RAS in 3D).
    """
    sitk = _sitk()
    dims = len(shape)
    interp = {"linear": sitk.sitkLinear, "bspline": sitk.sitkBSpline,
              "nearest": sitk.sitkNearestNeighbor}[interpolation]
    grid = _blank(shape, affine)
    tx = _affine_transform(_physical(matrix, dims), dims)
    out = [_from_sitk(sitk.Resample(_to_sitk(c, arr_affine), grid, tx, interp, float(padding_value), sitk.sitkFloat32))
           for c in arr]
    return np.stack(out).astype(np.float32)


def _rotation_deg(matrix: np.ndarray, dims: int) -> float:
    a = matrix[:dims, :dims]
    if dims == 2:
        return math.degrees(math.atan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1]))
    u, _, vt = np.linalg.svd(a)  # nearest rotation of an affine
    r = u @ vt
    return math.degrees(math.acos(float(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))


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
    SimpleITK in LPS. The output's ``meta["registration"]`` holds:

    - ``type`` (``rigid``/``affine``), ``dims``, ``space`` (``"pixel (x=column, y=row)"`` or ``"RAS mm"``);
    - ``matrix``: ``(d+1, d+1)`` float64 mapping a point of the reference to the point of the
      moving image where the same anatomy sits (fixed -> moving, as SimpleITK, in ``space``);
    - ``rotation_deg``, ``shift_at_center`` (displacement of the centroid of the reference's
      foreground, the rotation centre), ``summary``;
    - ``sitk_transform``, ``parameters``, ``fixed_parameters``: SimpleITK's own (LPS in 3D);
    - ``metric`` (``"mattes_mi"``), ``initial_metric_value``, ``metric_value`` (lower is better),
      ``iterations`` (total), ``iterations_per_level``, ``stop_condition``, ``settings``.

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
    ) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise FusionInputError(f"RegisterToReference: {msg}")

        need(transform in TRANSFORM_TYPES, f"transform={transform!r} is not one of {', '.join(TRANSFORM_TYPES)}")
        need(int(bins) >= 4, f"bins={bins} must be at least 4")
        need(sampling in SAMPLING_STRATEGIES, f"sampling={sampling!r} is not one of {', '.join(SAMPLING_STRATEGIES)}")
        shrink = [int(s) for s in shrink_factors]
        sigmas = [float(s) for s in smoothing_sigmas]
        need(len(shrink) >= 1 and all(s >= 1 for s in shrink), f"shrink_factors={shrink_factors} must be integers >= 1")
        need(len(sigmas) == len(shrink) and all(s >= 0 for s in sigmas),
             f"smoothing_sigmas={smoothing_sigmas} must give one sigma >= 0 per level ({len(shrink)} levels)")
        pct = [float(sampling_percentage)] * len(shrink) if np.isscalar(sampling_percentage) else [
            float(p) for p in sampling_percentage]  # type: ignore[union-attr]
        need(len(pct) == len(shrink) and all(0 < p <= 1 for p in pct),
             f"sampling_percentage={sampling_percentage} must be in (0, 1], one value or one per level")
        learning_rate = (1.0 if transform == "rigid" else 0.25) if learning_rate is None else float(learning_rate)
        need(learning_rate > 0 and min_step > 0 and int(iterations) >= 1,
             "learning_rate and min_step must be > 0 and iterations >= 1")
        need(foreground_mask in FOREGROUND_MASKS,
             f"foreground_mask={foreground_mask!r} is not one of {', '.join(FOREGROUND_MASKS)}")
        need(int(mask_dilation) >= 0, f"mask_dilation={mask_dilation} must be >= 0")
        need(interpolation in INTERPOLATIONS,
             f"interpolation={interpolation!r} is not one of {', '.join(INTERPOLATIONS)}")
        need(isinstance(seed, (int, np.integer)) and seed > 0,
             f"seed={seed!r} must be a positive integer (SimpleITK seeds from the clock with 0)")
        need(num_threads is None or int(num_threads) >= 1, f"num_threads={num_threads} must be >= 1 or None")
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
        keys = ("transform", "bins", "sampling", "sampling_percentage", "shrink_factors", "smoothing_sigmas",
                "learning_rate", "min_step", "iterations", "foreground_mask", "mask_dilation",
                "interpolation", "padding_value", "seed")
        return {k: getattr(self, k) for k in keys}

    # -- registration -------------------------------------------------------------------------------------------

    def _mask(self, given: NdarrayOrTensor | None, scalar: np.ndarray, auto: bool, name: str) -> np.ndarray | None:
        if given is not None:
            m = convert_to_numpy(given)
            m = m[0] if m.ndim == scalar.ndim + 1 and m.shape[0] == 1 else m
            if m.shape != scalar.shape:
                raise FusionInputError(
                    f"{name} mask has shape {tuple(m.shape)}; expected the image's spatial shape {scalar.shape}")
            m = m > 0
        elif auto:
            m = foreground_mask(scalar, self.mask_dilation)
        else:
            return None
        if m.sum() < 16:
            raise FusionInputError(f"{name} mask covers {int(m.sum())} voxels; expected a foreground to register")
        return m

    def _method(self, levels: Sequence[int], sigmas: Sequence[float], pct: Sequence[float], sampling: str) -> Any:
        sitk = _sitk()
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMattesMutualInformation(self.bins)
        if sampling == "none":
            reg.SetMetricSamplingStrategy(reg.NONE)
        else:
            reg.SetMetricSamplingStrategy(reg.RANDOM if sampling == "random" else reg.REGULAR)
            reg.SetMetricSamplingPercentagePerLevel(list(pct), self.seed)
        reg.SetInterpolator(sitk.sitkLinear)
        reg.SetShrinkFactorsPerLevel(list(levels))
        reg.SetSmoothingSigmasPerLevel(list(sigmas))
        reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
        if self.num_threads is not None:
            reg.SetNumberOfThreads(self.num_threads)
        return reg

    def _initial(self, points: np.ndarray, dims: int) -> tuple[Any, list[float]]:
        """Identity transform about the centroid of ``points`` (SimpleITK physical), and its optimizer scales.

        The scale of a parameter is the mean squared displacement (over the points) of a unit change of it,
        so a step of length 1 moves the foreground by about one pixel/mm for every parameter.
        """
        sitk = _sitk()
        center = points.mean(axis=0)
        sq = ((points - center) ** 2).mean(axis=0)  # mean squared lever arm along each axis
        if self.transform == "rigid":
            tx = sitk.Euler2DTransform() if dims == 2 else sitk.Euler3DTransform()
            rot = [sq.sum()] if dims == 2 else [sq[1] + sq[2], sq[0] + sq[2], sq[0] + sq[1]]
            scales = [*rot, *([1.0] * dims)]
        else:
            tx = sitk.AffineTransform(dims)
            scales = [*np.tile(sq, dims), *([1.0] * dims)]  # a_ij moves a point by a_ij * x_j
        tx.SetCenter(center.tolist())
        return tx, [max(float(v), 1e-6) for v in scales]

    def register(self, img: NdarrayOrTensor, reference: NdarrayOrTensor, img_mask: NdarrayOrTensor | None = None,
                 reference_mask: NdarrayOrTensor | None = None, initial: np.ndarray | None = None) -> dict[str, Any]:
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
        sitk = _sitk()
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
        fixed, moving = _to_sitk(rs, ref_aff), _to_sitk(ms, mov_aff)
        auto = self.foreground_mask
        fmask = self._mask(reference_mask, rs, auto in ("reference", "both"), "reference")
        mmask = self._mask(img_mask, ms, auto in ("moving", "both"), "moving")
        masks = (None if fmask is None else _to_sitk(fmask, ref_aff, np.uint8),
                 None if mmask is None else _to_sitk(mmask, mov_aff, np.uint8))

        lever = fmask if fmask is not None else foreground_mask(rs)
        tx, scales = self._initial(_physical_points(mask_points(lever, ref_aff), dims), dims)
        if initial is not None:
            _start_at(tx, _physical(np.asarray(initial, dtype=np.float64), dims), dims)
        sampling = self.sampling if self.sampling != "auto" else ("none" if dims == 2 else "random")
        try:
            start = _metric_value(self._method([1], [0.0], [1.0], sampling), fixed, moving, masks, tx)
            reg = self._method(self.shrink_factors, self.smoothing_sigmas, self.sampling_percentage, sampling)
            _set_masks(reg, masks)
            reg.SetOptimizerAsRegularStepGradientDescent(self.learning_rate, self.min_step, self.iterations,
                                                         relaxationFactor=0.5, gradientMagnitudeTolerance=1e-8)
            reg.SetOptimizerScales(scales)
            reg.SetInitialTransform(tx, inPlace=True)
            per_level: list[int] = []
            reg.AddCommand(sitk.sitkMultiResolutionIterationEvent, lambda: per_level.append(0))
            reg.AddCommand(sitk.sitkIterationEvent, lambda: per_level.__setitem__(-1, per_level[-1] + 1))
            reg.Execute(fixed, moving)
        except RuntimeError as err:
            if "overlap" in str(err) or "outside" in str(err):
                raise FusionInputError(
                    "the moving image and the reference do not overlap enough to register (check their affines/"
                    f"field of view): {str(err).strip().splitlines()[-1]}"
                ) from err
            raise
        m_phys = _matrix(tx, dims)
        matrix = _physical(m_phys, dims)
        center = np.asarray(tx.GetCenter(), dtype=np.float64)
        center = center if dims == 2 else (_FLIP[:3, :3] @ center)
        shift = matrix[:dims, :dims] @ center + matrix[:dims, dims] - center
        space = "pixel (x=column, y=row)" if dims == 2 else "RAS mm"
        unit = "px" if dims == 2 else "mm"
        rotation = _rotation_deg(matrix, dims)
        final = float(reg.GetMetricValue())
        return {
            "type": self.transform,
            "dims": dims,
            "space": space,
            "matrix": matrix,
            "rotation_deg": rotation,
            "shift_at_center": shift,
            "sitk_transform": tx.GetName(),
            "parameters": list(tx.GetParameters()),
            "fixed_parameters": list(tx.GetFixedParameters()),
            "metric": "mattes_mi",
            "initial_metric_value": start,
            "metric_value": final,
            "iterations": int(sum(per_level)),
            "iterations_per_level": per_level,
            "stop_condition": reg.GetOptimizerStopConditionDescription(),
            "settings": self.settings(),
            "summary": (f"{self.transform}, rotation {rotation:.2f} deg, shift at centre "
                        f"({', '.join(f'{v:.2f}' for v in shift)}) {unit}; Mattes MI {start:.4f} -> {final:.4f} "
                        f"in {int(sum(per_level))} iterations"),
        }

    # -- transform API ------------------------------------------------------------------------------------------

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
                f"moving image {tuple(mov.shape)} and reference {tuple(reference.shape)} differ in dimension")
        mov_aff, ref_aff = _affine(img, dims), _affine(reference, dims)
        matrix = np.asarray(registration["matrix"], dtype=np.float64)
        out = _resample(mov, mov_aff, ref_shape, ref_aff, matrix, self.interpolation, self.padding_value)
        own = img.affine.clone() if isinstance(img, MetaTensor) else None
        return self._wrap(out, img, reference if isinstance(reference, MetaTensor) else None, registration,
                          push={"matrix": matrix, "dims": dims, "moving_affine": own}, orig=mov.shape[1:])

    def _wrap(self, out: np.ndarray, src: NdarrayOrTensor, grid: MetaTensor | None, registration: dict[str, Any] | None,
              push: dict[str, Any] | None, orig: Sequence[int], affine: np.ndarray | None = None) -> MetaTensor:
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

    def __call__(self, img: NdarrayOrTensor, reference: NdarrayOrTensor, img_mask: NdarrayOrTensor | None = None,
                 reference_mask: NdarrayOrTensor | None = None, initial: np.ndarray | None = None) -> MetaTensor:
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
        out = _resample(arr, _affine(data, dims), shape, grid, np.linalg.inv(matrix), self.interpolation,
                        self.padding_value)
        return self._wrap(out, data, None, None, None, shape, affine=own)


def _start_at(tx: Any, matrix: np.ndarray, dims: int) -> None:
    """Set a centred SimpleITK transform to the homogeneous (physical) ``matrix``, keeping its centre."""
    if matrix.shape != (dims + 1, dims + 1):
        raise FusionInputError(f"initial transform has shape {matrix.shape}; expected ({dims + 1}, {dims + 1})")
    a = matrix[:dims, :dims]
    c = np.asarray(tx.GetCenter(), dtype=np.float64)
    try:
        tx.SetMatrix(a.ravel().tolist())
    except RuntimeError as err:
        raise FusionInputError(f"initial transform is not a rotation, as a rigid start must be: {a.tolist()}") from err
    tx.SetTranslation((matrix[:dims, dims] + a @ c - c).tolist())


def _set_masks(reg: Any, masks: tuple[Any, Any]) -> None:
    if masks[0] is not None:
        reg.SetMetricFixedMask(masks[0])
    if masks[1] is not None:
        reg.SetMetricMovingMask(masks[1])


def _metric_value(reg: Any, fixed: Any, moving: Any, masks: tuple[Any, Any], tx: Any) -> float:
    """Mattes MI of the full-resolution images at ``tx`` (before optimisation)."""
    _set_masks(reg, masks)
    reg.SetInitialTransform(tx, inPlace=False)
    return float(reg.MetricEvaluate(fixed, moving))
