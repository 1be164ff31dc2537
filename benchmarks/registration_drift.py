"""How far Mattes-MI registration moves the published alignment of the Whole Brain Atlas pairs, and how
consistently it recovers a known misalignment.

For each pair (evenly spread over the sorted names of each pair type) and each configuration:

- drift: register the CT/PET/SPECT image onto the MRI starting from the published alignment; the
  drift is the largest displacement the found transform gives a point of the MRI's foreground
  (pixels). A perfect metric optimum would give 0.
- recovery: misalign the moving image by a known rigid transform ``A`` (3-5 degrees, 3-6 pixels),
  so that its published alignment becomes ``A``; register it once started from ``A`` and once from
  the identity (the misaligned start); the error is the largest distance, over the same points,
  between the two results (what the tests check, bound 1 px). Both runs see the same resampled
  image: comparing with the unresampled pair instead adds the effect of the interpolation itself,
  which moves the optimum of a CT slice by up to about a pixel.

Run from the project root (reads ``../shared/data/harvard`` or ``$MONAI_FUSION_HARVARD``)::

    .venv/bin/python benchmarks/registration_drift.py --pairs 12 --configs plain,default

and it prints a Markdown table (median / 90th percentile / max per pair type) as in
``docs/registration.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from monai_fusion.data.datalist import find_pairs
from monai_fusion.data.demo import rigid_matrix
from monai_fusion.data.io import read_image
from monai_fusion.transforms.registration import RegisterToReference, displacement_error, foreground_mask, mask_points
from monai_fusion.utils.constants import PAIR_TYPES

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._paths import data_root  # noqa: E402

#: Configurations of :class:`RegisterToReference` compared (``default``: its defaults); ``plain`` is separate.
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "textbook conditioned": dict(bins=50, sampling="random", sampling_percentage=0.25, smoothing_sigmas=(2, 1, 0)),
    "bins 50": dict(bins=50),
    "sigmas 2-1-0": dict(smoothing_sigmas=(2, 1, 0)),
    "random 25%": dict(sampling="random", sampling_percentage=0.25),
    "mask reference": dict(foreground_mask="reference"),
    "mask moving": dict(foreground_mask="moving"),
    "mask both": dict(foreground_mask="both"),
}


def plain(other: np.ndarray, mri: np.ndarray, initial: np.ndarray | None = None) -> np.ndarray:
    """SimpleITK's textbook recipe: Mattes MI (50 bins, 25% random samples), rigid about the image centre,
    regular-step gradient descent with ``SetOptimizerScalesFromPhysicalShift``, shrink 4/2/1, sigmas 2/1/0.

    Returns:
        The fixed -> moving matrix in pixel coordinates (x = column, y = row).
    """
    import SimpleITK as sitk

    from monai_fusion.transforms.colour import rgb_to_luminance

    grey = lambda a: np.asarray(a[0] if a.shape[0] == 1 else rgb_to_luminance(a)[0], dtype=np.float32)  # noqa: E731
    fixed, moving = sitk.GetImageFromArray(grey(mri)), sitk.GetImageFromArray(grey(other))
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(50)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.25, 1)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-4, 300, relaxationFactor=0.5)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2, 1, 0])
    tx = sitk.Euler2DTransform()
    c = np.array([(fixed.GetSize()[0] - 1) / 2.0, (fixed.GetSize()[1] - 1) / 2.0])
    tx.SetCenter(c.tolist())
    if initial is not None:
        tx.SetMatrix(initial[:2, :2].ravel().tolist())
        tx.SetTranslation((initial[:2, 2] + initial[:2, :2] @ c - c).tolist())
    reg.SetInitialTransform(tx, inPlace=True)
    reg.Execute(fixed, moving)
    a, t = np.asarray(tx.GetMatrix()).reshape(2, 2), np.asarray(tx.GetTranslation())
    m = np.eye(3)
    m[:2, :2], m[:2, 2] = a, t + c - a @ c
    return m


Registrar = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]


def registrar_of(name: str) -> Registrar:
    """``(other, mri, initial) -> fixed->moving matrix`` for a configuration name."""
    if name == "plain":
        return plain
    reg = RegisterToReference(**CONFIGS[name])
    return lambda other, mri, initial=None: reg.register(other, mri, initial=initial)["matrix"]


def misalignment(i: int, center: np.ndarray) -> np.ndarray:
    """The known rigid misalignment used for pair ``i`` (pixel coordinates, x = column, y = row)."""
    angles, shifts = (4.0, -5.0, 3.0, -3.5), ((5.0, -3.0), (-4.0, 5.0), (-6.0, 2.0), (3.0, -6.0))
    return rigid_matrix((angles[i % 4],), shifts[i % 4], center)


def misalign(moving: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``moving`` moved by ``matrix`` (on its own grid): the result ``m'`` satisfies ``m'(A x) = moving(x)``."""
    moved = RegisterToReference().resample(moving, moving, {"matrix": np.linalg.inv(matrix)})
    return np.asarray(moved.array)


def select(root: Path, pair_type: str, n: int) -> list[dict[str, str]]:
    """``n`` pairs of ``pair_type`` evenly spread over the sorted names (so over the cases)."""
    items = find_pairs(root, pair_type).items
    idx = np.unique(np.linspace(0, len(items) - 1, min(n, len(items))).round().astype(int))
    return [items[i] for i in idx]


def measure(item: dict[str, str], i: int, registrar: Registrar, recovery: bool) -> tuple[float, float]:
    """Drift from the published alignment and recovery error of one pair (pixels)."""
    mri = read_image(item["mri"], "MRI").array
    other = read_image(item["other"], item["modality"]).array
    points = mask_points(foreground_mask(mri[0]))  # (x = column, y = row)
    drift = displacement_error(registrar(other, mri, None), np.eye(3), points)
    if not recovery:
        return drift, float("nan")
    a = misalignment(i, (np.array(mri.shape[:0:-1]) - 1) / 2.0)
    moved = misalign(other, a)
    return drift, displacement_error(registrar(moved, mri, None), registrar(moved, mri, a), points)


def stats(values: list[float]) -> str:
    v = np.asarray(values)
    if np.isnan(v).all():
        return "-"
    return f"{np.median(v):.2f} / {np.percentile(v, 90):.2f} / {v.max():.2f}"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print one Markdown row per (configuration, pair type)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=data_root())
    p.add_argument("--pairs", type=int, default=12, help="pairs per pair type")
    p.add_argument(
        "--configs",
        default="plain,default",
        help="comma-separated, of: plain, " + ", ".join(CONFIGS).replace("%", "%%"),
    )
    p.add_argument("--types", default=",".join(PAIR_TYPES))
    p.add_argument("--no-recovery", action="store_true", help="measure the drift only")
    p.add_argument("--per-pair", action="store_true", help="also print every pair's numbers")
    args = p.parse_args(argv)
    root = Path(args.root)
    if not (root / "CT-MRI").is_dir():
        print(f"shared data not found at {root}; set --root or MONAI_FUSION_HARVARD", file=sys.stderr)
        return 2
    print(
        "| configuration | pair type | pairs | drift px (median / p90 / max) "
        "| recovery error px (median / p90 / max) | s/pair |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.configs.split(","):
        registrar = registrar_of(name)
        for pair_type in args.types.split(","):
            items = select(root, pair_type, args.pairs)
            t0 = time.perf_counter()
            res = [measure(item, i, registrar, not args.no_recovery) for i, item in enumerate(items)]
            sec = (time.perf_counter() - t0) / len(items)
            drift, rec = [r[0] for r in res], [r[1] for r in res]
            print(f"| {name} | {pair_type} | {len(items)} | {stats(drift)} | {stats(rec)} | {sec:.1f} |", flush=True)
            if args.per_pair:
                print("|  | " + " ".join(f"{it['name']}:{d:.1f}/{r:.1f}" for it, d, r in zip(items, drift, rec)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
