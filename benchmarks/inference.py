"""Inference speed, parameter count and FLOPs of every registered fusion method on one pair (CPU).

Run: ``python benchmarks/inference.py [--size 256] [--repeats 5] [--threads 1] [--methods a,b]``.

The ``poster/x`` column is the poster network's time divided by the method's, measured in the same run.
Times are the median wall time of ``fuser.fuse`` over ``--repeats`` calls after one warm-up, on
the first CT-MRI pair of the shared data (``$MONAI_FUSION_HARVARD`` or ``../shared/data/harvard``)
or, when absent, on a random pair. FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``
(convolutions and matrix products; element-wise ops, SVDs and NumPy code such as PyWavelets are
not counted). Network methods run with random weights and zero-learning with a synthetic VGG19
first layer when the ImageNet file is absent: the same compute as trained weights, so the
timings hold, but their outputs are not meaningful fusions.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from monai_fusion.data.datalist import find_pairs
from monai_fusion.engines.benchmark import time_method
from monai_fusion.fusers import Fuser, available_fusers, get_fuser
from monai_fusion.networks.nets.vgg import torchvision_weights_file
from monai_fusion.networks.train_feature_extractor import default_data_root, load_grey_pairs
from monai_fusion.networks.utils import count_parameters
from monai_fusion.utils.errors import FusionInputError

#: The other source's modality of the timed pair (a CT-MRI pair, or a random one standing in for it).
MODALITY = "CT"

__all__ = ["MODALITY", "load_pair", "build_fuser", "time_fuser", "count_flops", "run", "main"]


def load_pair(size: int, root: Path | None = None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """A ``(1, 1, size, size)`` MRI/CT pair in [0, 1] and where it came from (fused as modality :data:`MODALITY`)."""
    try:
        item = find_pairs(root or default_data_root(), "CT-MRI").items[0]
        mri, other, _ = load_grey_pairs([item])[0]
        pair = torch.from_numpy(mri)[None], torch.from_numpy(other)[None]
        source = f"{item['pair_type']} {item['name']}"
    except FusionInputError:
        gen = torch.Generator().manual_seed(0)
        pair = torch.rand(1, 1, 256, 256, generator=gen), torch.rand(1, 1, 256, 256, generator=gen)
        source = "random pair (shared data not found)"
    if pair[0].shape[-1] != size or pair[0].shape[-2] != size:
        pair = tuple(torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear") for t in pair)
    return pair[0], pair[1], source


def build_fuser(name: str, tmp: Path) -> tuple[Fuser, str]:
    """Instantiate a method for timing; returns the fuser and a note on its weights."""
    if name == "zero_learning" and not torchvision_weights_file("vgg19").is_file():
        path = tmp / "vgg19_conv1_synthetic.pth"
        gen = torch.Generator().manual_seed(0)
        torch.save(
            {"features.0.weight": 0.1 * torch.randn(64, 3, 3, 3, generator=gen), "features.0.bias": torch.zeros(64)},
            path,
        )
        return get_fuser(name, weights=path), "synthetic VGG19 conv1_1 (timing only)"
    fuser = get_fuser(name)
    return fuser, ("shipped weights" if getattr(fuser, "trained", False) else "")


def time_fuser(fuser: Fuser, mri: torch.Tensor, other: torch.Tensor, repeats: int) -> float:
    """Median milliseconds of ``fuser.fuse(mri, other)`` over ``repeats`` calls after a warm-up
    (:func:`monai_fusion.engines.benchmark.time_method`, the benchmark command's timer)."""
    return time_method(fuser, mri, other, repeats, modality=MODALITY) * 1e3


def count_flops(fuser: Fuser, mri: torch.Tensor, other: torch.Tensor) -> int:
    """FLOPs of one ``fuse`` call as counted by ``FlopCounterMode`` (conv/matmul only)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fuser.fuse(mri, other, modality=MODALITY)
    return int(counter.get_total_flops())


def _params(fuser: Fuser) -> int:
    net = getattr(fuser, "net", None)
    return count_parameters(net) if isinstance(net, torch.nn.Module) else 0


def run(methods: Sequence[str], size: int = 256, repeats: int = 5) -> list[dict[str, object]]:
    """Measure each method; returns one row per method (``ms``, ``params``, ``gflops``, ``note``)."""
    mri, other, source = load_pair(size)
    print(f"pair: {source}, {size}x{size}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in methods:
            fuser, note = build_fuser(name, Path(tmp))
            ms = time_fuser(fuser, mri, other, repeats)
            flops = count_flops(fuser, mri, other)
            if name == "dwt":
                note = "NumPy (PyWavelets): FLOPs not counted"
            rows.append({"method": name, "ms": ms, "params": _params(fuser), "gflops": flops / 1e9, "note": note})
    poster = next((r["ms"] for r in rows if r["method"] == "poster"), None)
    print(f"{'method':<14} {'ms/pair':>9} {'params':>9} {'GFLOPs':>8} {'poster/x':>9}  note")
    for r in rows:
        ratio = f"{poster / r['ms']:.1f}x" if poster and r["ms"] > 0 else "-"
        r["ratio_to_poster"] = poster / r["ms"] if poster and r["ms"] > 0 else None
        print(f"{r['method']:<14} {r['ms']:>9.1f} {r['params']:>9,} {r['gflops']:>8.2f} {ratio:>9}  {r['note']}")
    return rows


def main(argv: Sequence[str] | None = None) -> list[dict[str, object]]:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256, help="side of the square pair")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per method (median reported)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: stable on a shared machine)")
    ap.add_argument("--methods", default="", help="comma-separated registry names (default: all)")
    args = ap.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m] or available_fusers()
    unknown = sorted(set(methods) - set(available_fusers()))
    if unknown:
        ap.error(f"unknown methods {unknown}; choose from {available_fusers()}")
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, args.threads))
    try:
        return run(methods, args.size, args.repeats)
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
