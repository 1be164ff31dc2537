"""How well the failed-registration checks of ``RegisterToReferenced`` separate good registrations from failed ones.

Every chosen Whole Brain Atlas pair is registered as published (aligned) and with its CT/PET/SPECT image rolled
sideways by each ``--rolls`` value (pixels; ``np.roll``, so a roll of 100 splits the head in two), with every check
off and one ITK thread. A rolled registration has failed when its shift at the centre is more than ``--tolerance``
pixels from the aligned registration's shift plus the roll. For each check the script counts the aligned pairs it
would refuse (false refusals) and the failed registrations it would refuse (caught):

- ``shared``: :func:`~monai_fusion.transforms.registration.grid.shared_information` below ``--min-shared``;
- ``inside``: :func:`~monai_fusion.transforms.registration.grid.foreground_inside` below ``--min-inside``;
- ``unconverged``: the finest level used all of its iterations (what ``refuse_unconverged`` refuses).

Aligned pairs: every refusal is a false one. Rolled pairs: only the failed registrations are counted.

Run from the project root (reads ``../shared/data/harvard`` or ``$MONAI_FUSION_HARVARD``)::

    .venv/bin/python benchmarks/registration_refusal.py --step 1 --rolls 0          # every aligned pair, ~15 min
    .venv/bin/python benchmarks/registration_refusal.py --start 3 --step 6 --rolls 100,-60

The figures in ``docs/registration.md`` come from these two runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._paths import data_root  # noqa: E402
from monai_fusion.data.datalist import find_pairs  # noqa: E402
from monai_fusion.data.io import read_image  # noqa: E402
from monai_fusion.transforms.registration import RegisterToReferenced  # noqa: E402
from monai_fusion.transforms.registration.grid import foreground_inside, shared_information  # noqa: E402
from monai_fusion.utils.constants import PAIR_TYPES  # noqa: E402

__all__ = ["register_unchecked", "main"]


def register_unchecked(mri: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """Register ``other`` onto ``mri`` (both 0..1, channel-first) with every check off; the check values."""
    pair = {"mri": MetaTensor(torch.as_tensor(mri)), "other": MetaTensor(torch.as_tensor(other))}
    reg = RegisterToReferenced(keys="other", num_threads=1, min_inside=None, min_shared_information=None)
    moved = reg(pair)["other"]
    record = moved.meta["registration"]
    return {
        "shift": np.asarray(record["shift_at_center"], dtype=np.float64),
        "shared": shared_information(moved, mri),
        "inside": foreground_inside(moved, mri),
        "unconverged": record["iterations_per_level"][-1] >= reg.registrar.iterations
        and "Maximum number of iterations" in str(record["stop_condition"]),
    }


def main(argv: list[str] | None = None) -> None:
    """Register the chosen pairs, print one Markdown row per pair type and roll."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=data_root(), help="Whole Brain Atlas root")
    ap.add_argument("--start", type=int, default=0, help="first pair of each type (sorted by name)")
    ap.add_argument("--step", type=int, default=6, help="every STEP-th pair")
    ap.add_argument("--rolls", default="0,100,-60", help="comma-separated sideways rolls in pixels (0: as published)")
    ap.add_argument("--tolerance", type=float, default=5.0, help="pixels from the expected shift still a success")
    ap.add_argument("--min-shared", type=float, default=0.06)
    ap.add_argument("--min-inside", type=float, default=0.4)
    args = ap.parse_args(argv)
    rolls = [int(r) for r in args.rolls.split(",")]
    pairs = find_pairs(args.data)
    t0 = time.perf_counter()
    head = "refused by shared / inside / unconverged / shared or inside"
    print(f"| pair type | roll (px) | registrations | failed | {head} |")
    print("|---|---|---|---|---|")
    for pair_type in PAIR_TYPES:
        items = sorted((i for i in pairs.items if i["pair_type"] == pair_type), key=lambda i: Path(i["mri"]).name)
        items = items[args.start :: args.step]
        rows: dict[int, list[dict[str, Any]]] = {r: [] for r in rolls}
        for n, item in enumerate(items):
            mri = read_image(item["mri"], "MRI").array / 255.0
            other = read_image(item["other"], item["modality"]).array / 255.0
            base = register_unchecked(mri, other)
            for roll in rolls:
                res = base if roll == 0 else register_unchecked(mri, np.roll(other, roll, axis=-1))
                expected = base["shift"] + np.array([roll, 0.0])
                res["failed"] = roll != 0 and float(np.linalg.norm(res["shift"] - expected)) > args.tolerance
                rows[roll].append(res)
            print(f"  {pair_type}: {n + 1}/{len(items)} pairs ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        for roll in rolls:
            # aligned pairs: every refusal is a false one; rolled pairs: the refusals of failed registrations
            judged = rows[roll] if roll == 0 else [r for r in rows[roll] if r["failed"]]
            hits = [
                sum(r["shared"] < args.min_shared for r in judged),
                sum(r["inside"] < args.min_inside for r in judged),
                sum(r["unconverged"] for r in judged),
                sum(r["shared"] < args.min_shared or r["inside"] < args.min_inside for r in judged),
            ]
            failed = sum(r["failed"] for r in rows[roll])
            print(f"| {pair_type} | {roll} | {len(rows[roll])} | {failed} | {' / '.join(map(str, hits))} |")
        shared = [r["shared"] for r in rows[0]] if 0 in rows and rows[0] else []
        if shared:
            print(f"  {pair_type} aligned shared information: min {min(shared):.3f}, median {np.median(shared):.3f}")


if __name__ == "__main__":
    main()
