"""End-to-end CPU timing of a 3D MRI+PET pair of about 256x256x180 voxels: load, register, fuse, write.

Run: ``python benchmarks/volume.py [--shape 256 256 180] [--method laplacian] [--threads N] [--batch-size 16]``.

The 1 mm embedded MNI152 pair (``demo_volume_pair(1)``, 197x233x189, PET misaligned on purpose by a
known rigid transform) is resampled (trilinear) onto ``--shape`` over the same field of view and
written as NIfTI; the script then walks the library's own preset (``fusion_preprocess``, each step
timed) -> ``fuse_sample`` -> ``write_nifti``, and prints registration time, fusion time and total,
plus the registration's result beside the known misalignment and their largest displacement over the MRI's
foreground, in voxels.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from monai_fusion.data.demo import demo_volume_pair
from monai_fusion.data.io import write_nifti
from monai_fusion.engines.inference import fuse_sample
from monai_fusion.fusers import get_fuser
from monai_fusion.transforms import fusion_preprocess
from monai_fusion.transforms.registration import displacement_error, foreground_mask, mask_points

__all__ = ["resample_pair", "run", "main"]


def resample_pair(shape: Sequence[int]) -> dict[str, Any]:
    """The 1 mm demo pair resampled onto ``shape`` voxels over the same field of view.

    Returns:
        ``mri``, ``pet`` as ``(1, *shape)`` float32, their common RAS ``affine``, the PET's known
        ``misalignment`` (rotation in degrees, translation in mm) and its ``true_transform`` (RAS, mm).
    """
    from scipy.ndimage import affine_transform

    d = demo_volume_pair(1)
    old = np.asarray(d["mri"].shape[1:], dtype=float)
    new = np.asarray(shape, dtype=float)
    factors = (new - 1) / (old - 1)  # corner voxel centres stay where they were
    affine = d["affine"] @ np.diag([*(1.0 / factors), 1.0])
    out = {
        k: affine_transform(d[k][0], 1.0 / factors, output_shape=tuple(int(n) for n in shape), order=1)[None].astype(
            np.float32
        )
        for k in ("mri", "pet")
    }
    out["affine"], out["misalignment"], out["true_transform"] = affine, d["misalignment"], d["true_transform"]
    return out


def run(shape: Sequence[int] = (256, 256, 180), method: str = "laplacian", batch_size: int = 16) -> dict[str, float]:
    """Resample, write, then load/register/normalise (timed per step), fuse and write; returns seconds."""
    t = {}
    t0 = time.perf_counter()
    pair = resample_pair(shape)
    t["make_pair_s"] = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="monai_fusion_bench_") as tmp:
        mri_p, pet_p = Path(tmp) / "MRI.nii.gz", Path(tmp) / "PET.nii.gz"
        write_nifti(pair["mri"], pair["affine"], mri_p)
        write_nifti(pair["pet"], pair["affine"], pet_p)
        start = time.perf_counter()
        data: Any = {"mri": str(mri_p), "other": str(pet_p), "modality": "PET"}
        for step in fusion_preprocess(register=True).transforms:  # the preset itself, one step at a time
            s = time.perf_counter()
            data = step(data)
            name = type(step).__name__
            key = {"LoadFusionImaged": "load_s", "RegisterToReferenced": "registration_s"}.get(name, "normalise_s")
            t[key] = t.get(key, 0.0) + time.perf_counter() - s
        s = time.perf_counter()
        result = fuse_sample(data, get_fuser(method), batch_size=batch_size)
        t["fusion_s"] = time.perf_counter() - s
        s = time.perf_counter()
        write_nifti(np.asarray(result["fused"]), np.asarray(result["fused"].affine), Path(tmp) / "fused.nii.gz")
        t["write_s"] = time.perf_counter() - s
        t["total_s"] = time.perf_counter() - start
    t["voxels"] = float(np.prod(shape))
    reg = data["other"].meta.get("registration", {})
    t["registration"] = reg.get("summary", "")  # type: ignore[assignment]
    voxel = float(np.linalg.norm(pair["affine"][:3, :3], axis=0).max())  # the coarsest voxel side, mm
    points = mask_points(foreground_mask(pair["mri"][0]), pair["affine"])
    t["error_voxels"] = displacement_error(reg["matrix"], pair["true_transform"], points) / voxel
    t["grid_factor"] = float(reg.get("grid_factor", 1))
    t["misalignment"] = pair["misalignment"]  # type: ignore[assignment]
    return t


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(256, 256, 180), help="voxels (X Y Z)")
    parser.add_argument("--method", default="laplacian", help="fusion method (default: laplacian)")
    parser.add_argument("--batch-size", type=int, default=16, help="slices per fuser call")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t = run(args.shape, args.method, args.batch_size)
    print(
        f"volume {'x'.join(map(str, args.shape))} ({t['voxels'] / 1e6:.1f} M voxels), method {args.method}, "
        f"torch threads {torch.get_num_threads()}, CPU"
    )
    print(f"registration: {t['registration']}")
    print(f"known misalignment: {t['misalignment']}")
    print(
        f"largest displacement from the known transform over the MRI's foreground: {t['error_voxels']:.2f} voxels "
        f"(registered on a grid averaged by {t['grid_factor']:.0f})"
    )
    for key in ("load_s", "registration_s", "normalise_s", "fusion_s", "write_s", "total_s"):
        print(f"  {key[:-2]:<13} {t[key]:7.2f} s")


if __name__ == "__main__":
    main()
