"""The ``monai-fusion`` command line: ``demo``, ``fuse``, ``evaluate``, ``benchmark``, ``info``.

Every sub-command walks the library's one preset path (``fusion_preprocess`` -> fuser ->
``fusion_postprocess``); bad input ends with one clear ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .batch_commands import fuse_folder, run_demo
from .commands import OTHER_MODALITIES, FuseOptions, fuse_files
from .info import info as _info
from .info import weights_present
from .utils.colormaps import COLORMAPS, NO_COLORMAP
from .utils.constants import DEFAULT_METHOD, SCORE_ON
from .utils.errors import FusionInputError

__all__ = ["main", "build_parser", "run_demo", "fuse_files", "fuse_folder", "weights_present"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per command."""
    parser = argparse.ArgumentParser(prog="monai-fusion", description="Fuse a brain MRI with CT, PET or SPECT.")
    parser.add_argument("--version", action="version", version=f"monai-fusion {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="fuse the embedded MNI152 MRI/PET pair and write an overview PNG")
    demo.add_argument("-o", "--output-dir", default="demo_output", help="folder for the results (default: demo_output)")
    demo.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        help=f"fusion method name (see `monai-fusion info`; default: {DEFAULT_METHOD}, the shipped trained model)",
    )
    demo.add_argument("--overwrite", action="store_true", help="replace earlier demo results")

    _add_fuse_parser(sub)

    ev = sub.add_parser("evaluate", help="fusion metrics of fused images against their source pairs")
    ev.add_argument("--pairs", required=True, help="source pairs folder <root>/<PAIR>/<MODALITY>/<name>.png")
    ev.add_argument("--fused", required=True, help="fused images folder <fused>/<PAIR>/<name>.png")
    ev.add_argument("--protocol", default="standard", help="metric protocol: standard, sum or poster")
    ev.add_argument("--metrics", nargs="+", help="metric names (default: the whole suite)")
    ev.add_argument("--csv", help="per-image CSV path (default: <fused>/metrics_<protocol>.csv)")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing CSV")

    _add_benchmark_parser(sub)

    info = sub.add_parser("info", help="versions, device, available methods and which network weights are present")
    info.add_argument("--bundle", help="MONAI bundle folder to check for models/model.pt (default: the checkout's)")
    return parser


def _add_fuse_parser(sub: Any) -> None:
    """The ``fuse`` sub-command's options."""
    fuse = sub.add_parser("fuse", help="fuse an MRI file with a CT/PET/SPECT file, or every pair of a folder")
    fuse.add_argument("mri", nargs="?", help="MRI: PNG/JPEG/TIFF slice, NIfTI volume or DICOM series folder")
    fuse.add_argument("other", nargs="?", help="CT/PET/SPECT file or DICOM folder of the same kind")
    fuse.add_argument("--pairs", help="instead of two files: a folder <root>/<PAIR>/<MODALITY>/<name>.png")
    fuse.add_argument("--pair-types", nargs="+", help="with --pairs: pair types to fuse (default: all)")
    fuse.add_argument("-o", "--output", help="output .png (2D) or .nii/.nii.gz (volume); with --pairs an output folder")
    fuse.add_argument(
        "--dicom-out",
        metavar="DIR",
        help="volumes: also (or only) write a DICOM Secondary Capture series into this new folder",
    )
    fuse.add_argument("--mri-series", metavar="UID", help="series UID when the MRI folder holds several DICOM series")
    fuse.add_argument("--other-series", metavar="UID", help="series UID when the OTHER folder holds several")
    fuse.add_argument(
        "--force", action="store_true", help="fuse DICOM series whose PatientID differ, or inputs that look swapped"
    )
    fuse.add_argument(
        "--anonymize",
        action="store_true",
        help="DICOM/NIfTI output without the MRI's patient and study identifiers (new UIDs)",
    )
    fuse.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (over the slices of a volume, or the pairs of --pairs)",
    )
    fuse.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        help=f"fusion method name (see `monai-fusion info`; default: {DEFAULT_METHOD}, the shipped trained model)",
    )
    fuse.add_argument(
        "--weights",
        metavar="PATH",
        help="weights of --method: a checkpoint (model.pt) for poster/msrpan/msdra/default, torchvision's "
        "vgg19-dcbb9e9d.pth for zero_learning",
    )
    fuse.add_argument(
        "--random-weights",
        action="store_true",
        help="run a network method without weights, randomly initialised (for timing only: not a fusion)",
    )
    fuse.add_argument("--modality", choices=OTHER_MODALITIES, help="modality of OTHER (guessed from its path)")
    fuse.add_argument(
        "--colormap",
        choices=(*COLORMAPS, NO_COLORMAP),
        help="render a grey OTHER in this colour map before fusing (default: a grey PET/SPECT in the atlas "
        "colours, a CT grey; 'bone' tints a CT's bone; 'none' keeps it grey)",
    )
    fuse.add_argument(
        "--same-field-of-view",
        action="store_true",
        help="2D files of two sizes show the same field of view: resample OTHER to the MRI's size (raster files "
        "carry no pixel size, so they are refused otherwise)",
    )
    fuse.add_argument(
        "--window",
        metavar="NAME|LOW,HIGH",
        help="intensity window of a CT in Hounsfield units (brain, subdural, stroke, bone; default brain) or a PET "
        "in SUV (default 0,10), or LOW,HIGH in those units; 'percentile' for percentiles",
    )
    fuse.add_argument(
        "--register",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="register OTHER onto the MRI first (default: on for two files, off for --pairs, "
        "whose pairs are co-registered)",
    )
    fuse.add_argument("--device", default="cpu", help="cpu or cuda")
    fuse.add_argument("--batch-size", type=int, help="slices per batch for volumes (default: 16)")
    fuse.add_argument("--overview", help="also write an overview PNG here (volumes: three planes through the head)")
    fuse.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _add_benchmark_parser(sub: Any) -> None:
    """The ``benchmark`` sub-command's options."""
    bench = sub.add_parser(
        "benchmark", help="every method on the same pairs: metrics CSV, tables, plots, montage, timings"
    )
    bench.add_argument("--data", required=True, help="pairs folder <root>/<PAIR>/<MODALITY>/<name>.png")
    bench.add_argument(
        "--split",
        choices=("val", "all"),
        default="val",
        help="val: the bundle's case-wise validation split (default); all: every pair",
    )
    bench.add_argument("--methods", nargs="+", help="method names (default: every registered method)")
    bench.add_argument("--metrics", nargs="+", help="metric names (default: MI FMI Qabf SSIM VIF FSIM SCD)")
    bench.add_argument("--protocol", default="standard", help="metric protocol: standard, sum or poster")
    bench.add_argument(
        "-o", "--output-dir", default="benchmark_output", help="output folder (default: benchmark_output)"
    )
    bench.add_argument("--max-pairs", type=int, help="at most this many pairs per pair type (quick runs)")
    bench.add_argument(
        "--weights",
        nargs="+",
        metavar="METHOD=PATH",
        default=[],
        help="checkpoints for network methods, e.g. poster=my_poster.pt",
    )
    bench.add_argument(
        "--random-weights",
        nargs="+",
        metavar="METHOD",
        default=[],
        help="also time these network methods randomly initialised (a timing table of their own, no quality rows)",
    )
    bench.add_argument(
        "--cv",
        type=int,
        metavar="K",
        help="K-fold case-wise cross-validation over every pair: means over folds with standard errors",
    )
    bench.add_argument(
        "--fold-weights",
        nargs="+",
        metavar="METHOD=PATTERN",
        default=[],
        help="with --cv: one checkpoint per fold, {fold} in the path, e.g. default=runs/fold{fold}/model.pt",
    )
    bench.add_argument(
        "--reuse-rows",
        metavar="CSV",
        help="per_image.csv of an earlier run on the same pairs (and folds): its methods are not scored again "
        "(only the montage's pairs fused and the timings taken), except those given --weights/--fold-weights",
    )
    bench.add_argument(
        "--score-on",
        choices=SCORE_ON,
        default=SCORE_ON[0],
        help="luminance: the fused luminance in 8 bits (default); written: the luminance of the 8-bit image a user "
        "gets on disk (the RGB image for PET/SPECT)",
    )
    bench.add_argument("--val-fraction", type=float, default=0.2, help="validation fraction of cases (as train.json)")
    bench.add_argument("--seed", type=int, default=0, help="split seed, and fold seed with --cv (as train.json)")
    bench.add_argument("--device", default="cpu", help="cpu or cuda")
    bench.add_argument(
        "--report", help="markdown report path (default: <output-dir>/report.md), e.g. docs/benchmark.md"
    )
    bench.add_argument("--overwrite", action="store_true", help="replace an earlier benchmark in the output folder")


def _method_paths(items: Sequence[str], option: str, form: str) -> dict[str, str]:
    """``["poster=a.pt", ...]`` as ``{"poster": "a.pt"}``; a malformed or repeated item is refused."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise FusionInputError(f"{option} {item!r}: expected {form}")
        if name in out:
            raise FusionInputError(f"{option} names {name} twice ({out[name]!r} and {path!r}); give one")
        out[name] = path
    return out


#: ``fuse`` options that act on two files only (``fuse --pairs`` refuses them rather than ignoring them).
PAIRS_ONLY_FOR_FILES = (
    "overview",
    "dicom_out",
    "modality",
    "force",
    "anonymize",
    "batch_size",
    "mri_series",
    "other_series",
    "colormap",
    "window",
    "same_field_of_view",
)


def _refuse_unused(args: argparse.Namespace, names: Sequence[str], context: str, why: str) -> None:
    """Refuse options that were given but do nothing in this form of the command (never ignore one silently).

    Raises:
        FusionInputError: naming each such option.
    """
    given = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None) not in (None, False)]
    if given:
        raise FusionInputError(f"fuse {context}: {', '.join(given)} cannot be used ({why}); leave it out")


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Show a Python warning as one ``WARNING:`` line on stderr, without the source line a user cannot act on."""
    text = " ".join(str(message).split())
    print(f"WARNING: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``monai-fusion`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _run(args)


def _demo(args: argparse.Namespace) -> None:
    """``demo``: fuse the embedded pair."""
    run_demo(args.output_dir, args.method, args.overwrite)


def _fuse_pairs(args: argparse.Namespace) -> None:
    """``fuse --pairs``: every pair of a folder."""
    if args.mri or args.other:
        raise FusionInputError("fuse: give either MRI and OTHER files or --pairs DIR, not both")
    if not args.output:
        raise FusionInputError("fuse --pairs: give an output folder with -o")
    _refuse_unused(args, PAIRS_ONLY_FOR_FILES, "with --pairs", "for two files only")
    written = fuse_folder(
        args.pairs,
        args.output,
        method=args.method,
        pair_types=args.pair_types,
        register=bool(args.register),
        overwrite=args.overwrite,
        device=args.device,
        progress=not args.no_progress,
        weights=args.weights,
        random_weights=args.random_weights,
    )
    print(f"wrote {len(written)} fused images under {args.output}")


def _fuse_two(args: argparse.Namespace) -> None:
    """``fuse MRI OTHER``: one pair of files."""
    if not (args.mri and args.other):
        raise FusionInputError("fuse: give MRI and OTHER files (or --pairs DIR)")
    _refuse_unused(args, ("pair_types",), "without --pairs", "for a --pairs folder only")
    options = FuseOptions(
        method=args.method,
        modality=args.modality,
        register=args.register is not False,
        overwrite=args.overwrite,
        device=args.device,
        batch_size=16 if args.batch_size is None else args.batch_size,
        overview=args.overview,
        dicom_out=args.dicom_out,
        mri_series=args.mri_series,
        other_series=args.other_series,
        force=args.force,
        progress=not args.no_progress,
        anonymize=args.anonymize,
        weights=args.weights,
        random_weights=args.random_weights,
        colormap=args.colormap or "auto",
        window=args.window or "auto",
        same_field_of_view=args.same_field_of_view,
    )
    res = fuse_files(args.mri, args.other, args.output, options)
    t = res["timings"]
    shape = "x".join(str(n) for n in res["fused"].shape[1:])
    print(
        f"wrote {', '.join(str(o) for o in res['outputs'])} ({args.method}, {shape}; preprocess "
        f"{t['preprocess_s']:.2f} s, fuse {t['fuse_s']:.2f} s, write {t['write_s']:.2f} s, "
        f"total {sum(t.values()):.2f} s)"
    )


def _evaluate(args: argparse.Namespace) -> None:
    """``evaluate``: metrics of fused images against their sources."""
    from .engines.evaluation import evaluate_folders

    csv = Path(args.csv) if args.csv else Path(args.fused) / f"metrics_{args.protocol}.csv"
    if csv.exists() and not args.overwrite:
        raise FusionInputError(f"{csv} exists; pass --overwrite to replace it")
    _, table = evaluate_folders(args.pairs, args.fused, protocol=args.protocol, metrics=args.metrics, csv_path=csv)
    print(table)
    print(f"per-image values: {csv}")


def _benchmark(args: argparse.Namespace) -> None:
    """``benchmark``: every method on the same pairs."""
    from .engines.benchmark import BENCHMARK_METRICS, BENCHMARK_PREAMBLE, BenchmarkOptions, run_benchmark
    from .engines.cross_validation import CrossValidation

    weights = _method_paths(args.weights, "--weights", "METHOD=PATH")
    fold_weights = _method_paths(args.fold_weights, "--fold-weights", "METHOD=PATTERN")
    if fold_weights and args.cv is None:
        raise FusionInputError("--fold-weights needs --cv K (one checkpoint per cross-validation fold)")
    cv = CrossValidation(args.cv, args.seed, fold_weights) if args.cv is not None else None
    options = BenchmarkOptions(
        split=args.split,
        methods=args.methods,
        metrics=args.metrics or BENCHMARK_METRICS,
        protocol=args.protocol,
        max_pairs=args.max_pairs,
        weights=weights,
        val_fraction=args.val_fraction,
        seed=args.seed,
        device=args.device,
        overwrite=args.overwrite,
        report_path=args.report,
        preamble=BENCHMARK_PREAMBLE if args.report else "",
        random_methods=args.random_weights,
        cv=cv,
        reuse_rows=args.reuse_rows,
        score_on=args.score_on,
    )
    res = run_benchmark(args.data, args.output_dir, options)
    for pt, won in res["wins"].items():
        print(f"default leads on {pt}: {len(won)} of {len(args.metrics or BENCHMARK_METRICS)} ({', '.join(won)})")


def _info_command(args: argparse.Namespace) -> None:
    """``info``: versions, methods and weights."""
    _info(args.bundle)


#: What each sub-command runs (``fuse --pairs`` runs :func:`_fuse_pairs`).
COMMANDS = {"demo": _demo, "fuse": _fuse_two, "evaluate": _evaluate, "benchmark": _benchmark, "info": _info_command}


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; a :class:`FusionInputError` becomes one ``error:`` line and exit code 2."""
    command = _fuse_pairs if args.command == "fuse" and args.pairs else COMMANDS[args.command]
    try:
        command(args)
    except FusionInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
