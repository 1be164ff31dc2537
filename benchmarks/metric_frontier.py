"""How far one fused image can go on every benchmark metric at once: a per-image optimisation towards the targets.

Run (rows, two processes side by side, then the summary)::

    python benchmarks/metric_frontier.py --step 18 --part 0 --parts 2 -o runs/frontier/rows0.csv
    python benchmarks/metric_frontier.py --step 18 --part 1 --parts 2 -o runs/frontier/rows1.csv
    python benchmarks/metric_frontier.py --summary runs/frontier/rows0.csv runs/frontier/rows1.csv

For every ``step``-th pair of the Whole Brain Atlas pool it starts from one method's fusion (``--start``: the pixel-
wise maximum rule by default) and optimises one fused luminance for that pair alone (Adam, ``--iters`` steps), in the
form of the default network's output but with free per-image parameters instead of a network: ``F = (1 - m) S + m (w *
mri + (1 - w) * other) + 0.25 tanh(r)`` (``r`` held at 0 where both sources are 0), ``w = sigmoid(up(z) + 20 (mri -
other))``, ``m = sigmoid(up(q))``, with ``z`` and ``q`` smooth 64x64 grids (bilinearly upsampled) and ``r`` a free
per-pixel detail field (``--no-detail``: no ``r``). ``S`` is the start's fusion; the optimiser begins at it (``q`` -5,
so ``m`` 0.007; ``z`` and ``r`` 0) and can reach the network's own form (``m`` = 1). The objective is the issue's target
itself: for each metric of ``--optimise`` (all seven by default; MI as a soft 256-bin histogram, Qabf smoothed, FMI the
metric's own windows with a gradient finite at zero variance, FSIM piq's on an image dithered by at most 0.001 grey
level so that its gradient magnitudes are never exactly 0) a soft hinge ``tau * softplus((target - m(F)) / tau)`` whose
pull fades once the metric is above the best score any other benchmark method reaches on this pair (from
``--baselines``, the benchmark's per-image rows) plus a margin (the default model's own rows are not among the others:
the targets are the issue's, against every other method). The differentiable forms are in the benchmark's units
(``standard`` protocol); each target is the start's differentiable score plus the gap from the start's real score to the
best real score. For PET/SPECT, MI, Qabf, SSIM, VIF and SCD see the luminance of the image that would be written (the
fused luminance with the source's colours put back; the rounding replaced by noise of one grey level,
:func:`~monai_fusion.losses.written.soft_written_luminance`); FMI and FSIM see the written 8-bit luminance itself, with
a gradient passed straight through the rounding (for grey pairs the rounded luminance); every metric reads the sources
rounded to 8 bits, as the benchmark scores them. Each result is then scored like a benchmark row (the 8-bit written
image, the ``standard`` protocol, as ``docs/benchmark.md``) and written in the benchmark's ``per_image.csv`` form as
method ``frontier``.

Why it exists: the default model's recipes land at one of two ends of a trade-off (MI, FMI and VIF against SCD and Qabf;
the model card has the runs), never at 6 of 7 clear wins. An optimiser that knows the other methods' scores on the very
pair and has every parameter free for it shows how far each metric can be pushed before another falls: a metric it
cannot win without losing another is one that a network of this output form, trained on these terms, is unlikely to win
either. It is not a proof (the optimiser finds a local optimum). Before FMI and FSIM were in the objective (``--optimise
MI,Qabf,SSIM,VIF,SCD`` is close to those runs, which read the sources unrounded) the optimiser gave FMI away for MI and
SCD. Written here because no library has a fusion objective of per-image targets; the metric terms are the library's own
(the pieces of :class:`~monai_fusion.losses.StructureFusionLoss`). About 40 to 55 s a pair at 150 steps on one CPU
thread with five metrics; with all seven about 3.7 minutes a pair, two processes side by side on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import piq
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._paths import data_root  # noqa: E402
from monai_fusion.data.quantise import WRITER_RULE  # noqa: E402
from monai_fusion.engines.benchmark import BENCHMARK_METRICS, load_pairs  # noqa: E402
from monai_fusion.engines.benchmark_setup import scored_fusion  # noqa: E402
from monai_fusion.engines.cross_validation import assign_folds, clear_wins, summarise_folds  # noqa: E402
from monai_fusion.fusers import get_fuser  # noqa: E402
from monai_fusion.losses.mutual_information import soft_mutual_information  # noqa: E402
from monai_fusion.losses.structure import soft_qabf, soft_scd  # noqa: E402
from monai_fusion.losses.written import round_straight_through, soft_written_luminance  # noqa: E402
from monai_fusion.metrics.information import fmi_against  # noqa: E402
from monai_fusion.metrics.perceptual import vif_per_source  # noqa: E402
from monai_fusion.metrics.registry import compute_metrics  # noqa: E402
from monai_fusion.metrics.structural import ssim_per_source  # noqa: E402
from monai_fusion.utils.constants import modality_of_pair  # noqa: E402
from monai_fusion.utils.errors import FusionInputError  # noqa: E402

__all__ = [
    "OPTIMISED",
    "differentiable_metrics",
    "soft_fsim",
    "frontier_fusion",
    "hinge_objective",
    "hinge_targets",
    "summary_lines",
]

#: The benchmark metrics with a differentiable form here (in the ``standard`` protocol's conventions: MI in bits; MI,
#: FMI, SSIM, VIF and FSIM averaged over the two sources): all seven.
OPTIMISED: tuple[str, ...] = ("MI", "FMI", "Qabf", "SSIM", "VIF", "FSIM", "SCD")
#: Softness of each hinge and the margin each target asks beyond the best other method, in the metric's units.
TAU: dict[str, float] = {
    "MI": 0.01,
    "FMI": 0.002,
    "Qabf": 0.003,
    "SSIM": 0.003,
    "VIF": 0.003,
    "FSIM": 0.002,
    "SCD": 0.01,
}
MARGIN: dict[str, float] = {
    "MI": 0.02,
    "FMI": 0.002,
    "Qabf": 0.005,
    "SSIM": 0.003,
    "VIF": 0.005,
    "FSIM": 0.002,
    "SCD": 0.03,
}
METHOD = "frontier"


def soft_fsim(f: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """piq's FSIM (grey, no chromatic term) with a gradient.

    ``f`` is dithered by at most 0.001 grey level (a fixed pattern): at a pixel of zero gradient magnitude piq's square
    root has an infinite derivative and the whole gradient turns NaN. The values move by less than 1e-4.

    Args:
        f: the fused image ``(B, 1, H, W)`` on 0..255.
        src: a source, same shape and scale.

    Returns:
        ``(B,)`` FSIM of ``f`` against ``src``.
    """
    g = torch.Generator().manual_seed(0)
    dither = 1e-3 * torch.rand(tuple(f.shape), generator=g).to(f)
    return piq.fsim(f.clamp(0, 254.999) + dither, src, data_range=255.0, chromatic=False, reduction="none")


def differentiable_metrics(
    fused: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    mi_bins: int = 256,
    metrics: Sequence[str] = OPTIMISED,
    written: torch.Tensor | None = None,
) -> dict:
    """The differentiable forms of ``metrics`` (of :data:`OPTIMISED`) for one ``(1, 1, H, W)`` pair in [0, 1].

    Args:
        fused: what MI, Qabf, SSIM, VIF and SCD see of the fused image.
        a, b: the MRI and the other source's luminance; every metric reads them rounded to 8 bits, as the benchmark
            scores them (a PET/SPECT luminance is off the 8-bit grid on about a sixth of its pixels, and FMI counts a
            window equal to its source only when the values are equal).
        mi_bins: bins of the soft MI.
        metrics: the metrics computed.
        written: what FMI and FSIM see, the written 8-bit luminance with a straight-through gradient; default:
            ``round_straight_through(fused)`` (:mod:`monai_fusion.losses.written`). They must see the exact written
            values: a flat window of the written image that a sub-level residual or noise makes non-flat is min-max
            normalised into noise by FMI.

    Returns:
        ``{metric: scalar tensor}`` in the units of the ``standard`` protocol (what ``--baselines`` holds): SSIM,
        VIF, FSIM, FMI (0..255 scale) and MI (bits, from a soft histogram, which equals the metric's own on 8-bit
        images at 256 bins) averaged over the sources, SCD (``corr(F - B, A) + corr(F - A, B)``) and soft Qabf.
    """
    f, sa, sb = fused * 255.0, torch.round(a * 255.0), torch.round(b * 255.0)
    a, b = sa / 255.0, sb / 255.0
    w8 = (round_straight_through(fused) if written is None else written) * 255.0
    forms: dict[str, Callable[[], torch.Tensor]] = {
        "MI": lambda: (
            (soft_mutual_information(fused, a, mi_bins) + soft_mutual_information(fused, b, mi_bins)).sum()
            / (2 * math.log(2))
        ),
        "FMI": lambda: ((fmi_against(sa.double(), w8.double()) + fmi_against(sb.double(), w8.double())) / 2).sum(),
        "Qabf": lambda: soft_qabf(f, sa, sb).sum(),
        "SSIM": lambda: ((ssim_per_source(sa, f) + ssim_per_source(sb, f)) / 2).sum(),
        "VIF": lambda: ((vif_per_source(f, sa) + vif_per_source(f, sb)) / 2).sum(),
        "FSIM": lambda: ((soft_fsim(w8, sa) + soft_fsim(w8, sb)) / 2).sum(),
        "SCD": lambda: soft_scd(f, sa, sb).sum(),
    }
    unknown = sorted(set(metrics) - set(forms))
    if unknown:
        raise FusionInputError(f"differentiable_metrics: no differentiable form of {unknown}; choose from {OPTIMISED}")
    return {k: forms[k]() for k in metrics}


def hinge_targets(
    start: Mapping[str, float], start_real: Mapping[str, float], best_real: Mapping[str, float]
) -> dict[str, float]:
    """The per-metric targets: ``start + (best_real - start_real) + MARGIN``, so that a differentiable form that
    reads a little off the real metric (soft Qabf) is asked for the real gap from where it starts.

    Args:
        start: the differentiable metrics of the starting image (their keys are the metrics given targets).
        start_real: the real (benchmark) scores of the starting image.
        best_real: the best real score of any other method on the pair.
    """
    return {k: float(start[k]) + float(best_real[k]) - float(start_real[k]) + MARGIN[k] for k in start}


def hinge_objective(
    metrics: Mapping[str, torch.Tensor], targets: Mapping[str, float], per_margin: bool = False
) -> torch.Tensor:
    """The optimiser's objective: ``sum_k TAU[k] * softplus((targets[k] - metrics[k]) / TAU[k])`` over the metrics
    of ``targets``, a soft hinge per metric whose pull fades once the metric is above its target.

    Args:
        metrics: :func:`differentiable_metrics` of the fused image.
        targets: ``{metric: target}`` in the same units.
        per_margin: divide each metric's hinge by its :data:`MARGIN`, so that a shortfall counts in margins rather
            than in the metric's own units (where a bit of MI outweighs a hundredth of FMI or FSIM).

    Returns:
        The scalar objective (differentiable in ``metrics``).
    """
    return sum(
        TAU[k] * F.softplus((targets[k] - metrics[k]) / TAU[k]) / (MARGIN[k] if per_margin else 1.0) for k in targets
    )


def frontier_fusion(
    a: torch.Tensor,
    b: torch.Tensor,
    targets: Mapping[str, float],
    seen: Callable[[torch.Tensor], torch.Tensor] | None = None,
    iters: int = 150,
    detail: bool = True,
    mi_bins: int = 256,
    start: torch.Tensor | None = None,
    metrics: Sequence[str] = OPTIMISED,
    written: Callable[[torch.Tensor], torch.Tensor] | None = None,
    per_margin: bool = False,
) -> torch.Tensor:
    """One pair's fused luminance, optimised from ``start`` towards ``targets`` (see the module docstring).

    Args:
        a: the MRI ``(1, 1, H, W)`` in [0, 1].
        b: the other source's luminance, same shape.
        targets: ``{metric: target}`` for every metric of ``metrics``, in the units of
            :func:`differentiable_metrics`.
        seen: what the metrics see of a fused luminance (e.g. the soft written luminance); default: the luminance.
        iters: optimiser steps.
        detail: optimise the per-pixel detail field as well as the weight map.
        mi_bins: bins of the soft MI.
        start: the fused luminance to start from, ``(1, 1, H, W)``; default: the maximum rule.
        metrics: the metrics optimised (of :data:`OPTIMISED`).
        written: the written 8-bit luminance of a fused luminance, straight-through (what FMI and FSIM see); default:
            :func:`~monai_fusion.losses.written.round_straight_through`.
        per_margin: weigh the hinges per margin (:func:`hinge_objective`).

    Returns:
        The fused luminance ``(1, 1, H, W)`` in [0, 1] (no gradient).
    """
    if a.shape != b.shape or a.ndim != 4 or a.shape[:2] != (1, 1):
        raise FusionInputError(
            f"frontier_fusion: expected two (1, 1, H, W) images, got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    missing = sorted(set(metrics) - set(targets))
    if missing:
        raise FusionInputError(f"frontier_fusion: targets lack {missing}; expected one for each of {list(metrics)}")
    targets = {k: targets[k] for k in metrics}
    look = seen or (lambda y: y)
    exact = written or round_straight_through
    z = torch.zeros((1, 1, 64, 64), requires_grad=True)
    q = torch.full((1, 1, 64, 64), -5.0, requires_grad=True)  # mix 0.007: the start
    r = torch.zeros(tuple(a.shape), requires_grad=True)
    brighter = torch.maximum(a, b)
    signal = (brighter > 0).to(a.dtype)
    first = brighter if start is None else start.detach().reshape(a.shape)
    groups: list[dict[str, Any]] = [{"params": [z, q], "lr": 0.05}]
    if detail:
        groups.append({"params": [r], "lr": 0.005})
    opt = torch.optim.Adam(groups)
    undefined = 0

    def up(grid: torch.Tensor) -> torch.Tensor:
        return F.interpolate(grid, size=a.shape[-2:], mode="bilinear", align_corners=False)

    def fuse() -> torch.Tensor:
        w = torch.sigmoid(up(z) + 20 * (a - b))
        mix = torch.sigmoid(up(q))  # 0: the start (about where it begins), 1: the weight map
        return ((1 - mix) * first + mix * (w * a + (1 - w) * b) + 0.25 * torch.tanh(r) * signal).clamp(0, 1)

    for _ in range(int(iters)):
        y = fuse()
        m = differentiable_metrics(look(y), a, b, mi_bins, list(targets), exact(y))
        loss = hinge_objective(m, targets, per_margin)
        opt.zero_grad()
        loss.backward()
        for group in groups:  # a metric's gradient can be undefined at a tie (FMI's sort, FSIM's maxima): that part 0
            for p in group["params"]:
                if not bool(torch.isfinite(p.grad).all()):
                    undefined += 1
                    p.grad.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
        opt.step()
    if undefined:
        print(f"frontier_fusion: {undefined} parameter gradients had undefined entries (set to 0)", flush=True)
    with torch.no_grad():
        return fuse()


#: What to run for rows of today's writers: the other methods' (``--baselines``) and this script's (``--summary``).
_BASELINE_REMEDY = "`monai-fusion benchmark --cv 4 --score-on written` (its per_image.csv)"
_ROWS_REMEDY = "run this script again (its -o rows)"


def _written_by_today(row: Mapping[str, str], path: Any, remedy: str) -> Mapping[str, str]:
    """``row`` itself, if it was scored on the image today's writers write; the frontier's rows are, and comparing
    them with rows of another writer rule would count a grey level here and there as a win or a loss."""
    if row.get("scored_on") != "written" or row.get("writer") != WRITER_RULE:
        raise FusionInputError(
            f"{path}: method {row.get('method')} on pair {row.get('pair_type')} {row.get('name')} has scored_on "
            f"{row.get('scored_on') or '(none: the luminance)'} and writer {row.get('writer') or '(none recorded)'}; "
            f"give rows with writer {WRITER_RULE} (today's writers): {remedy}"
        )
    return row


def _baselines(path: Path) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """``(pair_type, name) -> method -> metric -> value`` of the rows of ``path`` (the other methods' rows)."""
    out: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in (_written_by_today(r, path, _BASELINE_REMEDY) for r in csv.DictReader(fh)):
            out.setdefault((row["pair_type"], row["name"]), {})[row["method"]] = {
                k: float(row[k]) for k in BENCHMARK_METRICS
            }
    return out


def _tensor(v: Any) -> torch.Tensor:
    return torch.tensor(np.asarray(v), dtype=torch.float32)[None]


def run(args: argparse.Namespace) -> None:
    """Optimise and score this part's pairs; rows written as they are done (the file is the run's log)."""
    base = _baselines(Path(args.baselines))
    samples = load_pairs(args.data, split="all")
    folds = assign_folds(samples, 4, 0)
    picked = [i for i in range(0, len(samples), args.step) if (i // args.step) % args.parts == args.part]
    for i in picked:  # every row needed, checked before anything is written
        rows = base.get((samples[i]["pair_type"], str(samples[i]["name"])), {})
        if "max" not in rows or args.start not in rows:
            raise FusionInputError(
                f"--baselines {args.baselines} has no 'max' or {args.start!r} row for pair "
                f"{samples[i]['pair_type']} {samples[i]['name']}; give the benchmark's per_image.csv of a run with both"
            )
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not args.overwrite:
        raise FusionInputError(f"--output {out} exists; pass --overwrite to replace it")
    torch.set_num_threads(args.threads)
    if args.start == "default":  # the fold networks behind the benchmark's default rows, each on its held-out fold
        nets = {f: get_fuser("default", weights=args.fold_weights.format(fold=f)) for f in sorted(set(folds))}
    else:  # a method with its shipped weights, as the benchmark ran it
        nets = dict.fromkeys(set(folds), get_fuser(args.start))
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["pair_type", "name", "case", "method", "scored_on", "writer", "fold", *BENCHMARK_METRICS, "seconds"]
        )
        for n, i in enumerate(picked, 1):
            s, t0 = samples[i], time.time()
            key = (s["pair_type"], str(s["name"]))
            rows = base.get(key, {})
            others = {m: v for m, v in rows.items() if m not in ("default", METHOD)}
            a, b = _tensor(s["mri"]), _tensor(s["other"])
            seen = written = None
            if "other_cb" in s:
                chroma = torch.cat([_tensor(s["other_cb"]), _tensor(s["other_cr"])], 1)
                seen = lambda y, c=chroma: soft_written_luminance(y, c)  # noqa: E731
                written = lambda y, c=chroma: soft_written_luminance(y, c, noise=False, straight_through=True)  # noqa: E731
            with torch.no_grad():
                start = nets[folds[i]].fuse(a, b, modality=modality_of_pair(s["pair_type"])).clamp(0, 1)
                look = soft_written_luminance(start, chroma, noise=False) if seen else start
                start_d = differentiable_metrics(look, a, b, args.mi_bins, args.optimise, look if seen else None)
                start_d = {k: float(v) for k, v in start_d.items()}
            best = {k: max(v[k] for v in others.values()) for k in BENCHMARK_METRICS}
            targets = hinge_targets(start_d, rows[args.start], best)
            fused = frontier_fusion(
                a,
                b,
                targets,
                seen,
                args.iters,
                not args.no_detail,
                args.mi_bins,
                start,
                args.optimise,
                written,
                per_margin=args.per_margin,
            )[0]
            v = compute_metrics(
                scored_fusion(s, fused, "written")[None],
                torch.round(a[0] * 255)[None],
                torch.round(b[0] * 255)[None],
                metrics=BENCHMARK_METRICS,
            )
            vals = [float(v[k][0]) for k in BENCHMARK_METRICS]
            writer.writerow(
                [*key, s.get("case", ""), METHOD, "written", WRITER_RULE, folds[i], *vals, round(time.time() - t0, 1)]
            )
            fh.flush()
            lead = " ".join(f"{k} {x - best[k]:+.3f}" for k, x in zip(BENCHMARK_METRICS, vals))
            print(f"[{n}/{len(picked)}] {key[0]} {key[1]}: against the best other method {lead}", flush=True)


def summary_lines(rows: Sequence[dict[str, Any]], baseline_rows: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown: per pair type, the frontier's (and the default model's) clear wins over the best other method on
    the same pairs, with each metric's paired margin ± its fold-to-fold standard error."""
    keys = {(r["pair_type"], r["name"]) for r in rows}
    same = [r for r in baseline_rows if (r["pair_type"], r["name"]) in keys]
    lines = ["| pair type | method | clear wins | " + " | ".join(BENCHMARK_METRICS) + " |", "| --- " * 10 + "|"]
    for label, mine in ((METHOD, rows), ("default", [r for r in same if r["method"] == "default"])):
        pool = [r for r in same if r["method"] not in ("default", METHOD)] + list(mine)
        names = sorted({r["method"] for r in pool})
        summ = summarise_folds(pool, names, BENCHMARK_METRICS)
        for pt, table in summ.items():
            if label not in table:
                continue
            cw = clear_wins(pool, table, pt, label, BENCHMARK_METRICS)
            cells = [
                f"{'**' if c['clear'] else ''}{c['margin']:+.4f} ± {0 if math.isnan(c['se']) else c['se']:.4f}"
                f"{'**' if c['clear'] else ''} vs {c['runner_up']}"
                for c in (cw[k] for k in BENCHMARK_METRICS)
            ]
            lines.append(f"| {pt} | {label} | {sum(c['clear'] for c in cw.values())} / 7 | " + " | ".join(cells) + " |")
    return lines


def _read(paths: Sequence[str], remedy: str, unique_method: bool = False) -> list[dict[str, Any]]:
    """The rows of ``paths`` (``remedy``: what to run for rows of today's writers); with ``unique_method``, a pair
    twice (e.g. two runs' files given together) is refused."""
    out, seen = [], set()
    for p in paths:
        with open(p, newline="", encoding="utf-8") as fh:
            for row in (_written_by_today(r, p, remedy) for r in csv.DictReader(fh)):
                key = (row["pair_type"], row["name"], row["method"])
                if unique_method and key in seen:
                    raise FusionInputError(
                        f"--summary: pair {key[0]} {key[1]} appears twice ({p}); give one run's rows"
                    )
                seen.add(key)
                out.append({**row, "fold": int(row["fold"]), **{k: float(row[k]) for k in BENCHMARK_METRICS}})
    return out


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="Whole Brain Atlas root (default: $MONAI_FUSION_HARVARD or ../shared)")
    p.add_argument(
        "--baselines",
        default=str(ROOT / "docs" / "benchmark" / "per_image.csv"),
        help="the benchmark's per-image rows (written image, cross-validated) of the other methods",
    )
    p.add_argument("--step", type=int, default=18, help="every STEP-th pair of the pool")
    p.add_argument("--part", type=int, default=0, help="this process's share of the pairs (0..parts-1)")
    p.add_argument("--parts", type=int, default=1, help="number of processes sharing the pairs")
    p.add_argument("--iters", type=int, default=150, help="optimiser steps per pair")
    p.add_argument("--mi-bins", type=int, default=256, help="bins of the soft MI (256: the MI metric's own)")
    p.add_argument("--no-detail", action="store_true", help="optimise the weight map only")
    p.add_argument("--per-margin", action="store_true", help="weigh each hinge per margin (hinge_objective)")
    p.add_argument(
        "--optimise",
        default=",".join(OPTIMISED),
        help="comma-separated metrics in the objective (default: all seven; the earlier runs: MI,Qabf,SSIM,VIF,SCD)",
    )
    p.add_argument(
        "--start",
        default="max",
        help="the method whose fusion is the start (any registered method, shipped weights; 'default': the default "
        "model's fold networks of --fold-weights, each on the pairs it never saw); its rows must be in --baselines",
    )
    p.add_argument(
        "--fold-weights",
        default=str(ROOT / "runs" / "cv" / "fold{fold}" / "default.pt"),
        help="the fold networks behind --baselines' default rows ({fold} is replaced)",
    )
    p.add_argument("--threads", type=int, default=1, help="CPU threads of this process")
    p.add_argument("-o", "--output", help="per-image rows (CSV); refused if it exists, unless --overwrite")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--summary", nargs="+", metavar="ROWS", help="print the summary table of these row files and stop")
    args = p.parse_args(argv)
    if args.summary:
        rows = _read(args.summary, _ROWS_REMEDY, unique_method=True)
        print("\n".join(summary_lines(rows, _read([args.baselines], _BASELINE_REMEDY))))
        return
    if not args.output:
        p.error("-o/--output is required unless --summary is given")
    if args.step < 1 or args.parts < 1 or not 0 <= args.part < args.parts or args.iters < 1:
        p.error("--step, --parts and --iters must be >= 1 and --part in [0, parts)")
    args.optimise = [m for m in args.optimise.split(",") if m]
    unknown = sorted(set(args.optimise) - set(OPTIMISED))
    if unknown or not args.optimise:
        p.error(f"--optimise: {unknown or 'nothing'}; give metrics of {','.join(OPTIMISED)}")
    args.data = args.data or data_root()
    run(args)


if __name__ == "__main__":
    main()
