"""SimpleITK and geometry helpers of :class:`~monai_fusion.transforms.registration.array.RegisterToReference`.

Conversions between channel-first arrays with MONAI's RAS affines and SimpleITK images (LPS), the transform
and resampling helpers, foreground masks and the displacement error that tests and benchmarks use.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Sequence

import numpy as np
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.utils import convert_to_numpy

from ...data.io import check_finite_nonconstant
from ...utils.errors import FusionInputError
from ..colour.array import rgb_to_luminance

__all__ = [
    "registration_record",
    "registration_method",
    "initial_transform",
    "overlap_errors",
    "foreground_mask",
    "displacement_error",
    "mask_points",
]

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
            f"{name}: spatial size {tuple(arr.shape[1:])} is too small to register (at least 4 per axis)"
        )
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


def _resample(
    arr: np.ndarray,
    arr_affine: np.ndarray,
    shape: Sequence[int],
    affine: np.ndarray,
    matrix: np.ndarray,
    interpolation: str,
    padding_value: float,
) -> np.ndarray:
    """Resample every channel of ``arr`` onto the grid ``(shape, affine)``: ``out(x) = arr(M x)``.

    ``matrix`` maps a point of the output grid to the input's, in reference coordinates (RAS in 3D).
    """
    sitk = _sitk()
    dims = len(shape)
    interp = {"linear": sitk.sitkLinear, "bspline": sitk.sitkBSpline, "nearest": sitk.sitkNearestNeighbor}[
        interpolation
    ]
    grid = _blank(shape, affine)
    tx = _affine_transform(_physical(matrix, dims), dims)
    out = [
        _from_sitk(sitk.Resample(_to_sitk(c, arr_affine), grid, tx, interp, float(padding_value), sitk.sitkFloat32))
        for c in arr
    ]
    return np.stack(out).astype(np.float32)


def _rotation_deg(matrix: np.ndarray, dims: int) -> float:
    a = matrix[:dims, :dims]
    if dims == 2:
        return math.degrees(math.atan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1]))
    u, _, vt = np.linalg.svd(a)  # nearest rotation of an affine
    r = u @ vt
    return math.degrees(math.acos(float(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))


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


def _execute(reg: Any, fixed: Any, moving: Any) -> list[int]:
    """Run a set-up ``ImageRegistrationMethod``; returns the iterations of each pyramid level.

    Raises:
        FusionInputError: when the images do not overlap enough (ITK's message appended).
    """
    sitk = _sitk()
    per_level: list[int] = []
    reg.AddCommand(sitk.sitkMultiResolutionIterationEvent, lambda: per_level.append(0))
    reg.AddCommand(sitk.sitkIterationEvent, lambda: per_level.__setitem__(-1, per_level[-1] + 1))
    with overlap_errors():
        reg.Execute(fixed, moving)
    return per_level


@contextlib.contextmanager
def overlap_errors() -> Iterator[None]:
    """Turn ITK's "do not overlap" / "outside" errors into a :class:`FusionInputError` with ITK's last line."""
    try:
        yield
    except RuntimeError as err:
        if "overlap" in str(err) or "outside" in str(err):
            raise FusionInputError(
                "the moving image and the reference do not overlap enough to register (check their affines/"
                f"field of view): {str(err).strip().splitlines()[-1]}"
            ) from err
        raise


def registration_record(
    tx: Any, reg: Any, dims: int, transform: str, start: float, per_level: list[int], settings: dict[str, Any]
) -> dict[str, Any]:
    """The ``meta["registration"]`` record of a finished registration (see ``RegisterToReference``).

    Args:
        tx: the optimised SimpleITK transform.
        reg: the ``ImageRegistrationMethod`` that ran.
        dims: 2 or 3.
        transform: ``rigid`` or ``affine``.
        start: the metric value at the start.
        per_level: iterations per pyramid level.
        settings: the transform's settings, recorded as they were.

    Returns:
        A dict with
        - ``type`` (``rigid``/``affine``), ``dims``, ``space`` (``"pixel (x=column, y=row)"`` or ``"RAS mm"``);
        - ``matrix``: ``(d+1, d+1)`` float64 mapping a point of the reference to the point of the
          moving image where the same anatomy sits (fixed -> moving, as SimpleITK, in ``space``);
        - ``rotation_deg``, ``shift_at_center`` (displacement of the centroid of the reference's
          foreground, the rotation centre), ``summary``;
        - ``sitk_transform``, ``parameters``, ``fixed_parameters``: SimpleITK's own (LPS in 3D);
        - ``metric`` (``"mattes_mi"``), ``initial_metric_value``, ``metric_value`` (lower is better),
          ``iterations`` (total), ``iterations_per_level``, ``stop_condition``, ``settings``.
    """
    matrix = _physical(_matrix(tx, dims), dims)
    center = np.asarray(tx.GetCenter(), dtype=np.float64)
    center = center if dims == 2 else (_FLIP[:3, :3] @ center)
    shift = matrix[:dims, :dims] @ center + matrix[:dims, dims] - center
    unit = "px" if dims == 2 else "mm"
    rotation = _rotation_deg(matrix, dims)
    final = float(reg.GetMetricValue())
    return {
        "type": transform,
        "dims": dims,
        "space": "pixel (x=column, y=row)" if dims == 2 else "RAS mm",
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
        "settings": settings,
        "summary": (
            f"{transform}, rotation {rotation:.2f} deg, shift at centre "
            f"({', '.join(f'{v:.2f}' for v in shift)}) {unit}; Mattes MI {start:.4f} -> {final:.4f} "
            f"in {int(sum(per_level))} iterations"
        ),
    }


def initial_transform(points: np.ndarray, dims: int, transform: str) -> tuple[Any, list[float]]:
    """Identity transform about the centroid of ``points`` (SimpleITK physical), and its optimizer scales.

    The scale of a parameter is the mean squared displacement (over the points) of a unit change of it,
    so a step of length 1 moves the foreground by about one pixel/mm for every parameter.
    """
    sitk = _sitk()
    center = points.mean(axis=0)
    sq = ((points - center) ** 2).mean(axis=0)  # mean squared lever arm along each axis
    if transform == "rigid":
        tx = sitk.Euler2DTransform() if dims == 2 else sitk.Euler3DTransform()
        rot = [sq.sum()] if dims == 2 else [sq[1] + sq[2], sq[0] + sq[2], sq[0] + sq[1]]
        scales = [*rot, *([1.0] * dims)]
    else:
        tx = sitk.AffineTransform(dims)
        scales = [*np.tile(sq, dims), *([1.0] * dims)]  # a_ij moves a point by a_ij * x_j
    tx.SetCenter(center.tolist())
    return tx, [max(float(v), 1e-6) for v in scales]


def registration_method(
    levels: Sequence[int],
    sigmas: Sequence[float],
    pct: Sequence[float],
    sampling: str,
    bins: int,
    seed: int,
    num_threads: int | None,
) -> Any:
    """A SimpleITK ``ImageRegistrationMethod``: Mattes MI with ``bins``, the pyramid, sampling and a fixed seed."""
    sitk = _sitk()
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(bins)
    if sampling == "none":
        reg.SetMetricSamplingStrategy(reg.NONE)
    else:
        reg.SetMetricSamplingStrategy(reg.RANDOM if sampling == "random" else reg.REGULAR)
        reg.SetMetricSamplingPercentagePerLevel(list(pct), seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetShrinkFactorsPerLevel(list(levels))
    reg.SetSmoothingSigmasPerLevel(list(sigmas))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    if num_threads is not None:
        reg.SetNumberOfThreads(num_threads)
    return reg
