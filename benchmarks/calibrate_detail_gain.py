"""Calibrate the default model's detail gain on the validation split.

Run: ``python benchmarks/calibrate_detail_gain.py [--data ../shared/data/harvard] [--weights CKPT]
[--baselines docs/benchmark/per_image.csv] [--gains 0.1,0.2,...]``, or cross-validated:
``... --cv 4 --weights runs/fold{fold}/model.pt --baselines CV_OUT/per_image.csv`` (one checkpoint per fold,
trained by ``train.json --fold k --num_folds 4``; the baselines from ``monai-fusion benchmark --cv 4``).

``WeightMapFusionNet`` adds a bounded detail term ``g * s * tanh(r)`` to its weighted mean of the sources.
Training learns ``r`` at ``g = 1``; the losses that shape it (Qabf, SSIM, SCD) keep more of it than the
information metrics (MI, FMI) reward, so the gain used at inference is chosen after training: with ``--cv K``
on the means over K case-wise folds (each fold fused by the checkpoint trained without it), else on the
case-wise validation split only (the split ``monai-fusion benchmark`` reports). For every gain on the grid
this script fuses the validation pairs exactly as the benchmark does (the ``default`` fuser, 8-bit output,
the project's metrics; ``--score-on written`` scores the luminance of the written image, RGB for PET/SPECT, as
``monai-fusion benchmark --score-on written`` does, against baselines scored the same way) and counts, per pair
type, the metrics on which the model is at least as good as
every other method of the baseline CSV (a ``per_image.csv`` written by ``monai-fusion benchmark``; its
``default`` rows are ignored). It prints one row per gain (each win with its relative margin over the best
other method) and the chosen gain of each modality (the network takes one per modality of the other source):
per pair type, the gain with the most wins, within 0.01 of the average rule's SSIM; among those, the one whose
narrowest win is widest, then the middle one; and the best single gain for callers that cannot say the
modality (the ``"default"`` entry: the most pair types at 5 of 7, then the most wins on the worst pair type).
With ``--cv`` only clear wins count (the margin over the best other method larger than its fold-to-fold
standard error): a lead of a few hundredths of a percent would otherwise decide a gain.
Not a test: it takes a few minutes of CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._paths import data_root  # noqa: E402
from monai_fusion.engines.benchmark import BENCHMARK_METRICS, load_pairs, summarise, wins_against  # noqa: E402
from monai_fusion.engines.benchmark_setup import SCORE_ON, reusable_rows, scored_fusion  # noqa: E402
from monai_fusion.engines.cross_validation import (  # noqa: E402
    CrossValidation,
    assign_folds,
    clear_wins,
    summarise_folds,
)
from monai_fusion.fusers import available_fusers, get_fuser  # noqa: E402
from monai_fusion.metrics.registry import compute_metrics  # noqa: E402
from monai_fusion.utils.constants import modality_of_pair  # noqa: E402
from monai_fusion.utils.errors import FusionInputError  # noqa: E402

__all__ = ["win_margins", "choose_gains", "choose_single_gain", "main"]


def _read_baselines(
    path: Path,
    samples: Sequence[dict[str, Any]],
    folds: Sequence[int],
    cross_validated: bool,
    scored_on: str = "luminance",
) -> list[dict[str, Any]]:
    """The non-default rows of a benchmark CSV for exactly these pairs (and, cross-validated, their folds).

    :func:`monai_fusion.engines.benchmark_setup.reusable_rows` reads and checks them (every pair present, the same
    fold); this adds the command that writes such a file to its errors.
    """
    hint = (
        f"write one with `monai-fusion benchmark --data DIR -o OUT{' --cv K' if cross_validated else ''}"
        f"{' --score-on written' if scored_on == 'written' else ''}` "
        "(same split or folds) and pass OUT/per_image.csv"
    )
    methods = [m for m in available_fusers() if m != "default"]
    try:
        found = reusable_rows(
            path, samples, folds, methods, BENCHMARK_METRICS, cross_validated, option="--baselines", scored_on=scored_on
        )
    except FusionInputError as err:
        raise SystemExit(f"{err}; {hint}") from None
    if not found:
        raise SystemExit(f"--baselines {path}: no rows of any method but default; {hint}")
    return [row for name in sorted(found) for row in found[name]]


def win_margins(
    table: dict[str, dict[str, tuple[float, float]]], method: str, metrics: Sequence[str]
) -> dict[str, float]:
    """The metrics ``method`` wins (as :func:`wins_against` counts them), each with its relative margin over the
    best other method, ``(mean - best) / |best|``."""
    out = {}
    for k in wins_against(table, method, metrics):
        best = max(v[k][0] for name, v in table.items() if name != method)
        out[k] = (table[method][k][0] - best) / max(abs(best), 1e-12)
    return out


def choose_gains(
    results: dict[float, dict[str, dict[str, float]]],
    ssim_gap: dict[float, dict[str, float]] | None = None,
    max_ssim_drop: float = 0.01,
) -> dict[str, float]:
    """Per pair type, the gain with the most wins, then the widest narrowest win, then the middle one.

    Each pair type's inputs are fused with its own gain (``WeightMapFusionNet``'s per-modality ``detail_gain``),
    so the pair types are calibrated independently: the issue's target is per pair type, and one shared gain
    had to trade one pair type's wins for another's (CT-MRI fusions score best with little detail, PET/SPECT-MRI
    ones with more). Among gains with equally many wins, the one whose smallest relative win margin is largest
    is the least likely to lose a win on other pairs; the wins' count still comes first.

    Args:
        results: ``gain -> pair_type -> {metric won: relative margin}`` (:func:`win_margins`).
        ssim_gap: ``gain -> pair_type -> SSIM minus the average rule's``; on each pair type the gains more than
            ``max_ssim_drop`` below it are left out (unless every gain is).
        max_ssim_drop: the allowed SSIM shortfall against the average rule (issue 6: 0.01).

    Returns:
        ``modality -> gain`` (``CT``, ``PET``, ``SPECT``: the other source of each pair type scored).

    Raises:
        ValueError: no results.
    """
    if not results:
        raise ValueError("choose_gains: no gains were scored")
    chosen: dict[str, float] = {}
    for pt in sorted({pt for per_type in results.values() for pt in per_type}):
        scored = [g for g in results if pt in results[g]]
        ok = [g for g in scored if ssim_gap is None or ssim_gap[g].get(pt, 0.0) >= -max_ssim_drop] or scored
        key = {g: (len(results[g][pt]), round(min(results[g][pt].values(), default=0.0), 9)) for g in ok}
        best = max(key.values())
        tied = sorted(g for g in ok if key[g] == best)
        chosen[modality_of_pair(pt)] = tied[(len(tied) - 1) // 2]
    return chosen


def choose_single_gain(
    results: dict[float, dict[str, dict[str, float]]],
    ssim_gap: dict[float, dict[str, float]] | None = None,
    max_ssim_drop: float = 0.01,
    target_wins: int = 5,
) -> float:
    """The one gain for inputs of unknown modality (the ``"default"`` entry): the gain with the most pair types at
    the target (``target_wins`` of 7), then the most wins on its worst pair type, then in total; among equally good
    gains, the middle one. Gains more than ``max_ssim_drop`` below the average rule's SSIM on any pair type are left
    out (unless every gain is).

    Raises:
        ValueError: no results.
    """
    if not results:
        raise ValueError("choose_single_gain: no gains were scored")
    ok = [g for g in results if ssim_gap is None or min(ssim_gap[g].values(), default=0.0) >= -max_ssim_drop]
    score = {
        g: (
            sum(len(w) >= target_wins for w in results[g].values()),
            min(len(w) for w in results[g].values()),
            sum(len(w) for w in results[g].values()),
        )
        for g in (ok or list(results))
    }
    best = max(score.values())
    tied = sorted(g for g, v in score.items() if v == best)
    return tied[(len(tied) - 1) // 2]


def _wins(margins: dict[str, float]) -> str:
    return ", ".join(f"{k} {100 * v:+.2f}%" for k, v in margins.items()) or "-"


def main(argv: Sequence[str] | None = None) -> int:
    """Scan the gains, print the table and the chosen gain; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=data_root())
    p.add_argument(
        "--weights",
        default=str(ROOT / "bundles" / "multimodal_fusion" / "models" / "model.pt"),
        help="the trained checkpoint (default: the bundle's models/model.pt)",
    )
    p.add_argument("--baselines", default=str(ROOT / "docs" / "benchmark" / "per_image.csv"))
    p.add_argument("--gains", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cv", type=int, metavar="K", help="cross-validate: --weights holds {fold}, one checkpoint a fold")
    p.add_argument(
        "--score-on",
        choices=SCORE_ON,
        default="luminance",
        help="what is scored, as monai-fusion benchmark --score-on: the 8-bit fused luminance (default) or the "
        "luminance of the written image (RGB for PET/SPECT); the baselines must have been scored the same way",
    )
    args = p.parse_args(argv)
    cv = CrossValidation(args.cv, args.seed, {"default": args.weights}) if args.cv else None
    if not Path(args.data).is_dir():
        raise SystemExit(f"--data {args.data} does not exist; point it at the Whole Brain Atlas pairs")
    try:
        gains = [float(g) for g in args.gains.split(",")]
    except ValueError:
        raise SystemExit(f"--gains {args.gains!r}: expected comma-separated numbers") from None
    samples = load_pairs(args.data, "all" if cv else "val", args.val_fraction, args.seed)
    folds = assign_folds(samples, cv.num_folds, cv.seed) if cv else [0] * len(samples)
    baselines = _read_baselines(Path(args.baselines), samples, folds, cv is not None, args.score_on)
    mri = torch.stack([torch.as_tensor(s["mri"]).float() for s in samples])
    other = torch.stack([torch.as_tensor(s["other"]).float() for s in samples])
    metrics = list(BENCHMARK_METRICS)
    results: dict[float, dict[str, dict[str, float]]] = {}
    ssim_gap: dict[float, dict[str, float]] = {}
    for g in gains:
        fusers = {
            f: get_fuser("default", weights=cv.weights_of("default", f) if cv else args.weights, detail_gain=g)
            for f in sorted(set(folds))
        }
        fused = torch.cat([fusers[folds[i]].fuse(mri[i : i + 1], other[i : i + 1]) for i in range(len(samples))])
        scored = torch.stack([scored_fusion(s, fused[i], args.score_on) for i, s in enumerate(samples)])
        vals = compute_metrics(scored, torch.round(mri * 255), torch.round(other * 255), metrics=metrics)
        rows = baselines + [
            {
                "pair_type": s["pair_type"],
                "name": s["name"],
                "method": "default",
                **({"fold": folds[i]} if cv else {}),
                **{m: float(vals[m][i]) for m in metrics},
            }
            for i, s in enumerate(samples)
        ]
        names = sorted({r["method"] for r in rows})
        summary = summarise_folds(rows, names, metrics) if cv else summarise(rows, names, metrics)
        results[g] = {pt: win_margins(table, "default", metrics) for pt, table in summary.items()}
        clear = {pt: clear_wins(rows, t, pt, "default", metrics) for pt, t in summary.items()} if cv else {}
        if cv:  # choose on clear wins only: a lead within the fold-to-fold spread is not a win
            results[g] = {pt: {k: v for k, v in w.items() if clear[pt][k]["clear"]} for pt, w in results[g].items()}
        ssim_gap[g] = {
            pt: table["default"]["SSIM"][0] - table["average"]["SSIM"][0]
            for pt, table in summary.items()
            if "average" in table
        }
        print(
            f"gain {g:.2f}: "
            + "; ".join(f"{pt} {len(w)}/7{' clear' if cv else ''} ({_wins(w)})" for pt, w in results[g].items())
            + "; SSIM - average: "
            + ", ".join(f"{v:+.4f}" for v in ssim_gap[g].values())
            + ("; clear: margin over the best other method > its fold-to-fold SE" if cv else ""),
            flush=True,
        )
    chosen: dict[str, float] = choose_gains(results, ssim_gap)
    for pt, per_type in next(iter(results.values())).items():
        g = chosen[modality_of_pair(pt)]
        print(f"{pt}: gain {g:.2f}, {len(results[g][pt])}/7 ({_wins(results[g][pt])})")
    single = choose_single_gain(results, ssim_gap)
    chosen["default"] = single
    print(
        f"one gain for every pair type (the 'default' entry, for callers that give no modality): {single:.2f}, "
        + "; ".join(f"{pt} {len(w)}/7" for pt, w in results[single].items())
    )
    as_json = json.dumps(chosen)
    override = as_json.replace('"', "'")
    print(
        f"chosen detail_gain {as_json} ({len(samples)} {'cross-validated' if cv else 'validation'} pairs, baselines "
        f"from {args.baselines}); set it "
        f'in the configs or with --network_def#detail_gain "{override}"'
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
