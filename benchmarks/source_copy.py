"""How far the default model's fusion is from a copy of the MRI, and what such a copy scores.

Run: ``python benchmarks/source_copy.py [--data DIR] [--step 3] [--weights CKPT]``. For every ``step``-th pair of
the Whole Brain Atlas pool it fuses the luminance images with the ``default`` fuser (8-bit output, as the
benchmark scores it) and prints per pair type:

- the fused image's distance from the MRI: the mean absolute difference inside the head (either source non-zero),
  the largest one, and the share of head pixels more than one grey level away;
- the share of head pixels where the other source is the brighter (what a maximum rule would take from it);
- the mean of each benchmark metric for the fusion, for the MRI itself used as the fused image, and for the
  pixel-wise maximum rule, each scored on the 8-bit fused luminance (the benchmark's default) and, for PET/SPECT,
  on the luminance of the written RGB image (``monai-fusion benchmark --score-on written``).

Why it exists: the metrics compare the fused image with each source, and a copy of the MRI scores well on most of
them. A fusion that stays within a grey level of the MRI everywhere is that copy, whatever its table says: on
luminance it keeps none of the other source (the colour of a PET/SPECT fusion then comes from the PET/SPECT's
chroma only). Scale-invariant metrics (SCD, a correlation of ``F - A`` with ``B``; MI) also reward residuals below
one grey level that the 8-bit rounding turns into +-1 steps correlated with the other source; this script shows
how much of a score comes from such a residual. The written image is the fused luminance rounded once, as in the
8-bit column, except where colours out of gamut are clipped (the writers keep the luminance,
:func:`~monai_fusion.data.quantise.rgb_to_uint8`; their earlier per-channel rounding added noise that hid much of such a
residual). Not a test: a few minutes of CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._paths import data_root  # noqa: E402
from monai_fusion.engines.benchmark import BENCHMARK_METRICS, load_pairs  # noqa: E402
from monai_fusion.engines.benchmark_setup import scored_fusion  # noqa: E402
from monai_fusion.fusers import get_fuser  # noqa: E402
from monai_fusion.metrics.registry import compute_metrics  # noqa: E402
from monai_fusion.utils.constants import PAIR_TYPES, modality_of_pair  # noqa: E402

__all__ = ["copy_distance", "main"]


def copy_distance(fused8: torch.Tensor, mri8: torch.Tensor, other8: torch.Tensor) -> dict[str, float]:
    """Distance of 8-bit fusions ``(N, 1, H, W)`` from their 8-bit MRIs inside the head.

    Returns:
        ``mean_abs`` and ``max_abs`` (grey levels), ``share_over_1`` (head pixels more than one level from the MRI)
        and ``share_other_brighter`` (head pixels where the other source is brighter than the MRI).
    """
    head = (mri8 > 0) | (other8 > 0)
    diff = (fused8 - mri8).abs()[head]
    return {
        "mean_abs": float(diff.mean()),
        "max_abs": float(diff.max()),
        "share_over_1": float((diff > 1).float().mean()),
        "share_other_brighter": float((other8 > mri8)[head].float().mean()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the distance and the three methods' metric means per pair type; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=data_root())
    p.add_argument("--step", type=int, default=3, help="use every step-th pair of the pool (default 3)")
    p.add_argument("--weights", default=None, help="a default-model checkpoint (default: the shipped weights)")
    args = p.parse_args(argv)
    if not Path(args.data).is_dir():
        raise SystemExit(f"--data {args.data} does not exist; point it at the Whole Brain Atlas pairs")
    if args.step < 1:
        raise SystemExit(f"--step must be >= 1, got {args.step}")
    samples = load_pairs(args.data, "all", 0.2, 0)[:: args.step]
    fuser = get_fuser("default", **({"weights": args.weights} if args.weights else {}))
    metrics = list(BENCHMARK_METRICS)
    print(
        "pair type | pairs | mean abs F-MRI | max | share > 1 level | share other brighter | method | scored | "
        + " | ".join(metrics)
    )
    for pt in PAIR_TYPES:
        chosen = [s for s in samples if s["pair_type"] == pt]
        if not chosen:
            continue
        mri = torch.stack([torch.as_tensor(s["mri"]).float() for s in chosen])
        other = torch.stack([torch.as_tensor(s["other"]).float() for s in chosen])
        with torch.no_grad():
            fused = torch.cat(
                [
                    fuser.fuse(mri[i : i + 1], other[i : i + 1], modality=[modality_of_pair(pt)])
                    for i in range(len(chosen))
                ]
            )
        q = lambda x: torch.round(x.clamp(0, 1) * 255)  # noqa: E731
        d8, m8, o8 = q(fused), q(mri), q(other)
        dist = copy_distance(d8, m8, o8)
        for name, f in (("default", fused), ("MRI copy", mri), ("max", torch.maximum(mri, other))):
            for scored in ("luminance", "written"):
                if pt == "CT-MRI" and scored == "written":
                    continue  # grey output: the file holds the fused luminance
                f8 = torch.stack([scored_fusion(s, f[i], scored) for i, s in enumerate(chosen)])
                vals = compute_metrics(f8, m8, o8, metrics=metrics)
                lead = (
                    f"{pt} | {len(chosen)} | {dist['mean_abs']:.2f} | {dist['max_abs']:.0f} | "
                    f"{dist['share_over_1']:.3f} | {dist['share_other_brighter']:.3f}"
                    if name == "default" and scored == "luminance"
                    else " | | | | |"
                )
                print(
                    f"{lead} | {name} | {scored} | " + " | ".join(f"{float(vals[k].mean()):.4f}" for k in metrics),
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
