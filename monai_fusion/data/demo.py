"""The embedded default pair: a realistic synthetic MRI/PET pair made from files that ``nilearn`` ships.

The MNI152 2009 T1, grey-matter and white-matter templates (1 mm, inside nilearn's package data)
give the MRI (the T1) and an FDG-like PET: uptake GM:WM = 4:1, blurred to a PET resolution of
6 mm FWHM, with mild deterministic noise, rendered in the Whole Brain Atlas PET pseudo-colour, and
moved by a known small rigid misalignment. Everything is generated on demand, deterministic, cached
in memory and (as PNG/NIfTI files for the CLI and demo) under :func:`demo_cache_dir`.
No public data set or package provides such a registered MRI/PET pair offline, hence this module.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.colormaps import apply_colormap, wba_pet_colormap
from ..utils.errors import FusionInputError
from ..utils.paths import DATASET_ROOT_ENV, dataset_root

__all__ = [
    "default_dataset_dir",
    "write_demo_dataset",
    "PET_FWHM_MM",
    "DEMO_MISALIGNMENT_3D",
    "DEMO_MISALIGNMENT_2D",
    "wba_pet_colormap",
    "apply_colormap",
    "rigid_matrix",
    "demo_cache_dir",
    "demo_volume_pair",
    "demo_slice_pair",
    "write_demo_files",
]

#: Spatial resolution (FWHM, mm) the synthetic PET is blurred to.
PET_FWHM_MM: float = 6.0
#: Known 3D misalignment of the demo PET (degrees about x, y, z; mm along x, y, z), about the grid centre.
DEMO_MISALIGNMENT_3D: dict[str, tuple[float, ...]] = {
    "rotation_deg": (3.0, -2.0, 4.0),
    "translation_mm": (4.0, -3.0, 2.0),
}
#: Known 2D misalignment of the demo PET slice (degrees; pixels along x=column, y=row), about the centre.
DEMO_MISALIGNMENT_2D: dict[str, tuple[float, ...]] = {"rotation_deg": (5.0,), "translation_mm": (4.0, -3.0)}
_SLICE_Z_MM: float = 8.0  # axial level of the 2D demo slice (through the basal ganglia)
_SIZE_2D: int = 256

_TEMPLATES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


def rigid_matrix(rotation_deg: tuple[float, ...], translation: tuple[float, ...], center: np.ndarray) -> np.ndarray:
    """Homogeneous rigid transform ``x -> Rot (x - c) + c + t`` in 2D (one angle) or 3D (x, y, z angles).

    3D rotations compose as ``Rz @ Ry @ Rx`` (SimpleITK's Euler3DTransform order).

    Returns:
        ``(3, 3)`` or ``(4, 4)`` matrix.
    """
    a = np.deg2rad(np.asarray(rotation_deg, dtype=float))
    if len(translation) == 2:
        c, s = np.cos(a[0]), np.sin(a[0])
        rot = np.array([[c, -s], [s, c]])
    else:
        cx, sx, cy, sy, cz, sz = np.cos(a[0]), np.sin(a[0]), np.cos(a[1]), np.sin(a[1]), np.cos(a[2]), np.sin(a[2])
        rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
        rot = rz @ ry @ rx
    n = len(translation)
    m = np.eye(n + 1)
    m[:n, :n] = rot
    m[:n, n] = np.asarray(center, float) - rot @ np.asarray(center, float) + np.asarray(translation, float)
    return m


def _template_dir() -> Path:
    try:
        import nilearn.datasets
    except ImportError as err:  # pragma: no cover - nilearn comes with the demo, bundle and all extras
        raise FusionInputError(
            'the embedded demo needs nilearn (pip install "monai-fusion[demo]"); it ships the MNI152 templates'
        ) from err
    d = Path(nilearn.datasets.__file__).parent / "data"
    missing = [f for f in _TEMPLATES.values() if not (d / f).is_file()]
    if missing:
        raise FusionInputError(
            f"nilearn's MNI152 templates are missing from {d}: {', '.join(missing)}; reinstall nilearn"
        )
    return d


@functools.lru_cache(maxsize=2)
def _templates_1mm() -> tuple[dict[str, np.ndarray], np.ndarray]:
    import nibabel as nib

    d = _template_dir()
    imgs = {k: nib.load(str(d / f)) for k, f in _TEMPLATES.items()}
    arrays = {k: np.asarray(im.dataobj, dtype=np.float32) / 255.0 for k, im in imgs.items()}
    return arrays, np.asarray(imgs["t1"].affine, dtype=np.float64)


def _downsample(vol: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return vol
    s = [n - n % factor for n in vol.shape]
    v = vol[: s[0], : s[1], : s[2]]
    return v.reshape(s[0] // factor, factor, s[1] // factor, factor, s[2] // factor, factor).mean(axis=(1, 3, 5))


def _pet_uptake(gm: np.ndarray, wm: np.ndarray, voxel_mm: float, seed: int = 0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    uptake = 4.0 * gm + 1.0 * wm
    uptake = gaussian_filter(uptake, sigma=PET_FWHM_MM / 2.3548 / voxel_mm)
    rng = np.random.default_rng(seed)
    noise = gaussian_filter(rng.standard_normal(uptake.shape), sigma=1.0 / voxel_mm)
    uptake = uptake * (1.0 + 0.05 * noise / noise.std())
    uptake = np.clip(uptake, 0, None)
    return (uptake / np.percentile(uptake, 99.9)).clip(0, 1).astype(np.float32)


def _resample_moved(vol: np.ndarray, fixed_to_moving_index: np.ndarray) -> np.ndarray:
    """Image ``m`` with ``m(F x) = vol(x)`` for index-space matrix ``F``: sample ``vol`` at ``F^-1 x``."""
    from scipy.ndimage import affine_transform

    inv = np.linalg.inv(fixed_to_moving_index)
    n = vol.ndim
    return affine_transform(vol, inv[:n, :n], offset=inv[:n, n], order=1, mode="constant", cval=0.0).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _volume_pair(resolution: int) -> dict[str, Any]:
    if resolution not in (1, 2, 3, 4):
        raise FusionInputError(f"resolution={resolution} mm is not supported; use 1, 2, 3 or 4")
    arrays, affine = _templates_1mm()
    t1, gm, wm = (_downsample(arrays[k], resolution) for k in ("t1", "gm", "wm"))
    aff = affine.copy()
    aff[:3, :3] *= resolution
    aff[:3, 3] += (resolution - 1) / 2.0 * np.diag(affine)[:3]  # voxel centres of the averaged blocks
    pet = _pet_uptake(gm, wm, float(resolution))
    centre = aff @ np.r_[(np.array(t1.shape) - 1) / 2.0, 1.0]
    true = rigid_matrix(DEMO_MISALIGNMENT_3D["rotation_deg"], DEMO_MISALIGNMENT_3D["translation_mm"], centre[:3])
    index_map = np.linalg.inv(aff) @ true @ aff
    moved = _resample_moved(pet, index_map)
    mri = np.clip(t1 / np.percentile(t1, 99.9), 0, 1).astype(np.float32)
    return {
        "mri": mri[None],
        "pet": moved[None],
        "pet_aligned": pet[None],
        "affine": aff,
        "true_transform": true,
        "misalignment": dict(DEMO_MISALIGNMENT_3D),
        "resolution_mm": float(resolution),
    }


def demo_volume_pair(resolution: int = 2) -> dict[str, Any]:
    """The embedded 3D MRI/PET pair on the MNI152 grid.

    Args:
        resolution: voxel size in mm (1 gives 197x233x189 voxels, 2 gives 98x116x94).

    Returns:
        dict with ``mri``, ``pet`` (misaligned) and ``pet_aligned``: float32 ``(1, X, Y, Z)`` in [0, 1];
        ``affine``: 4x4 RAS affine of all three; ``true_transform``: 4x4 RAS-mm matrix mapping a
        point of the MRI to where the same anatomy sits in ``pet`` (fixed -> moving);
        ``misalignment``: rotation (deg) and translation (mm).
    """
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in _volume_pair(resolution).items()}


def _axial_slice(vol: np.ndarray, k: int) -> np.ndarray:
    """Axial slice as an image: rows anterior to posterior, columns along +x; padded to 256x256."""
    img = np.flipud(vol[:, :, k].T)
    out = np.zeros((_SIZE_2D, _SIZE_2D), dtype=np.float32)
    r0, c0 = (_SIZE_2D - img.shape[0]) // 2, (_SIZE_2D - img.shape[1]) // 2
    out[r0 : r0 + img.shape[0], c0 : c0 + img.shape[1]] = img
    return out


@functools.lru_cache(maxsize=1)
def _slice_pair() -> dict[str, Any]:
    vols = _volume_pair(1)
    k = int(round(np.linalg.inv(vols["affine"])[2] @ np.array([0.0, 0.0, _SLICE_Z_MM, 1.0])))
    mri = _axial_slice(vols["mri"][0], k)
    pet = _axial_slice(vols["pet_aligned"][0], k)
    centre = np.array([(_SIZE_2D - 1) / 2.0] * 2)
    true = rigid_matrix(DEMO_MISALIGNMENT_2D["rotation_deg"], DEMO_MISALIGNMENT_2D["translation_mm"], centre)
    swap = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=float)  # (x=col, y=row) <-> (row, col)
    moved = _resample_moved(pet, swap @ true @ swap)
    return {
        "mri": mri[None],
        "pet_grey": moved[None],
        "pet_rgb": apply_colormap(moved),
        "pet_rgb_aligned": apply_colormap(pet),
        "true_transform": true,
        "misalignment": dict(DEMO_MISALIGNMENT_2D),
        "slice_index": k,
    }


def demo_slice_pair() -> dict[str, Any]:
    """The embedded 2D pair: an axial MNI152 slice (256x256) and its pseudo-coloured, misaligned PET.

    Returns:
        dict with ``mri`` ``(1, H, W)``, ``pet_rgb`` ``(3, H, W)`` (misaligned) and ``pet_rgb_aligned``,
        all float32 in [0, 1]; ``true_transform``: 3x3 matrix in SimpleITK 2D coordinates
        (x = column, y = row, pixel units) mapping an MRI point to the same anatomy in ``pet_rgb``.
    """
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in _slice_pair().items()}


def demo_cache_dir() -> Path:
    """Where generated demo files live: ``$MONAI_FUSION_CACHE`` or ``~/.cache/monai_fusion``, plus ``/demo``."""
    base = os.environ.get("MONAI_FUSION_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "monai_fusion")
    return Path(base) / "demo"


def write_demo_files(folder: str | os.PathLike | None = None) -> dict[str, Path]:
    """Write the demo pair as files (once; reused when present): PNG slices and NIfTI volumes (2 mm).

    Args:
        folder: target folder; defaults to :func:`demo_cache_dir`.

    Returns:
        ``{"mri_png", "pet_png", "mri_nii", "pet_nii"}`` paths.
    """
    from .io import write_nifti, write_png

    d = Path(folder) if folder is not None else demo_cache_dir()
    paths = {
        "mri_png": d / "demo_mri.png",
        "pet_png": d / "demo_pet.png",
        "mri_nii": d / "demo_mri.nii.gz",
        "pet_nii": d / "demo_pet.nii.gz",
    }
    if all(p.is_file() for p in paths.values()):
        return paths
    d.mkdir(parents=True, exist_ok=True)
    sl = demo_slice_pair()
    write_png(sl["mri"], paths["mri_png"], overwrite=True)
    write_png(sl["pet_rgb"], paths["pet_png"], overwrite=True)
    vol = demo_volume_pair(2)
    write_nifti(vol["mri"], vol["affine"], paths["mri_nii"], overwrite=True)
    write_nifti(vol["pet"], vol["affine"], paths["pet_nii"], overwrite=True)
    return paths


def default_dataset_dir() -> str:
    """The dataset a bundle run uses when no ``--dataset_dir`` is given.

    ``$MONAI_FUSION_HARVARD`` (:func:`~monai_fusion.utils.paths.dataset_root`) when it names a folder, else the
    embedded MNI152 MRI/PET pairs written by :func:`write_demo_dataset` (a warning says so: synthetic data, for
    trying the workflow only).

    Returns:
        The dataset root.
    """
    root = dataset_root()
    if root is not None and root.is_dir():
        return str(root)
    folder = write_demo_dataset()
    tried = f"${DATASET_ROOT_ENV}={root}" if root is not None else f"${DATASET_ROOT_ENV} (not set)"
    warnings.warn(
        f"no dataset found at {tried}: using the embedded synthetic MNI152 MRI/PET pairs in {folder}; "
        f"pass --dataset_dir or set {DATASET_ROOT_ENV} for real data",
        UserWarning,
        stacklevel=2,
    )
    return str(folder)


def write_demo_dataset(
    folder: str | os.PathLike | None = None, cases: int = 4, slices_per_case: int = 3, size: int = 256
) -> Path:
    """Write the embedded MNI152 MRI/PET pair as a small ``PET-MRI`` dataset in the atlas layout.

    Axial slices of the 2 mm demo volumes (T1 as MRI; the FDG-like PET, aligned, in the atlas' PET colours),
    padded to ``size`` x ``size`` (the atlas' 256 by default), grouped into ``cases`` slabs of
    ``slices_per_case`` slices each: file names ``<case><slice:3>.png``, so ``split_by_case`` can hold whole
    cases out. Written once (reused when complete).

    Args:
        folder: target; default ``<demo cache>/dataset``.
        cases: number of cases (slabs along the axial axis).
        slices_per_case: slices per case.
        size: image side (at least 116, the volume's in-plane extent at 2 mm).

    Returns:
        The dataset root (holding ``PET-MRI/MRI`` and ``PET-MRI/PET``).
    """
    from .io import write_png

    root = Path(folder) if folder is not None else demo_cache_dir() / "dataset"
    n = cases * slices_per_case
    z = np.linspace(0.3, 0.75, n)  # fractions of the axial extent: basal ganglia to upper cortex
    names = [f"{c + 1}{(k + 1) * 10:03d}" for c in range(cases) for k in range(slices_per_case)]
    paths = [(root / "PET-MRI" / "MRI" / f"{nm}.png", root / "PET-MRI" / "PET" / f"{nm}.png") for nm in names]
    if all(m.is_file() and p.is_file() for m, p in paths):
        return root
    vol = demo_volume_pair(2)
    mri, pet = vol["mri"][0], vol["pet_aligned"][0]
    for frac, (mp, pp) in zip(z, paths):
        k = int(round(frac * (mri.shape[2] - 1)))
        images = []
        for v in (mri, pet):
            img = np.flipud(v[:, :, k].T)
            if max(img.shape) > size:
                raise FusionInputError(f"size={size} is smaller than the demo slices {img.shape}")
            out = np.zeros((size, size), dtype=np.float32)
            r0, c0 = (size - img.shape[0]) // 2, (size - img.shape[1]) // 2
            out[r0 : r0 + img.shape[0], c0 : c0 + img.shape[1]] = img
            images.append(out)
        mp.parent.mkdir(parents=True, exist_ok=True)
        pp.parent.mkdir(parents=True, exist_ok=True)
        write_png(images[0][None], mp, overwrite=True)
        write_png(apply_colormap(np.clip(images[1], 0, 1)), pp, overwrite=True)
    return root
