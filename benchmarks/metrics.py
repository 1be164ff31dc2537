"""Speed of the fusion metrics on CPU: each metric and the whole suite for one 256x256 pair, and
the suite for batches of 1, 4 and 16 pairs (time per pair should stay flat: linear scaling).

Run: ``.venv/bin/python benchmarks/metrics.py [--threads 2] [--repeats 5] [--protocol standard]``.
Uses the first CT-MRI pair of ``../shared/data/harvard`` (average fusion) when present, otherwise a
synthetic pair. Times are the minimum over repeats (the least disturbed by other load), after one
warm-up call; the median is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from monai_fusion.metrics import DEFAULT_METRICS, METRICS, FusionInputs, available_metrics, compute_metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._paths import data_root  # noqa: E402

__all__ = ["load_pair", "timed", "main"]

HARVARD = Path(data_root())


def load_pair() -> tuple[torch.Tensor, torch.Tensor, str]:
    """``(mri, ct)`` as ``(1, 1, 256, 256)`` float32 on 0..255, and where they came from."""
    if (HARVARD / "CT-MRI").is_dir():
        from monai_fusion.data.datalist import find_pairs
        from monai_fusion.data.io import read_image

        it = find_pairs(HARVARD, "CT-MRI").items[0]
        return (
            torch.from_numpy(read_image(it["mri"], "MRI").array)[None],
            torch.from_numpy(read_image(it["other"], "CT").array)[None],
            f"harvard {it['pair_type']}/{it['name']}",
        )
    g = torch.Generator().manual_seed(0)
    imgs = [
        F.interpolate(torch.rand(1, 1, 8, 8, generator=g), size=(256, 256), mode="bicubic").clamp(0, 1) * 255
        for _ in range(2)
    ]
    return imgs[0], imgs[1], "synthetic"


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """``(min, median)`` seconds of ``fn`` after one warm-up call."""
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), statistics.median(ts)


def main() -> None:
    """Print the per-metric, suite and batch timings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--protocol", default="standard")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    a, b, source = load_pair()
    scale = 1.0 if args.protocol != "poster" else 1 / 255
    a, b = a * scale, b * scale
    f = (a + b) / 2
    print(
        f"fusion metrics on CPU: {source}, 256x256, protocol {args.protocol}, torch {torch.__version__}, "
        f"{args.threads} threads, min / median of {args.repeats} runs\n"
    )
    print("| metric | min ms | median ms |\n| --- | ---: | ---: |")
    for name in available_metrics():
        tmin, tmed = timed(lambda: METRICS[name].fn(FusionInputs(f, a, b, args.protocol)), args.repeats)
        suite = "" if name in DEFAULT_METRICS else " (not in the default suite)"
        print(f"| {name}{suite} | {tmin * 1e3:.1f} | {tmed * 1e3:.1f} |")
    tmin, tmed = timed(lambda: compute_metrics(f, a, b, protocol=args.protocol), args.repeats)
    print(f"| **suite of {len(DEFAULT_METRICS)} (one pass)** | **{tmin * 1e3:.1f}** | **{tmed * 1e3:.1f}** |\n")
    print("| batch | min s per batch | min ms per pair | median ms per pair |\n| ---: | ---: | ---: | ---: |")
    for n in (1, 4, 16):
        fb, ab, bb = (t.repeat(n, 1, 1, 1) for t in (f, a, b))
        tmin, tmed = timed(lambda: compute_metrics(fb, ab, bb, protocol=args.protocol), max(2, args.repeats // 2))
        print(f"| {n} | {tmin:.3f} | {tmin / n * 1e3:.1f} | {tmed / n * 1e3:.1f} |")


if __name__ == "__main__":
    main()
