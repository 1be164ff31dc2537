"""The ``monai-fusion`` command line: ``demo``, ``fuse``, ``evaluate``, ``info``.

Every sub-command walks the library's one preset path (``fusion_preprocess`` -> fuser ->
``fusion_postprocess``); bad input ends with one clear ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import __version__
from .utils import constants
from .utils.errors import FusionInputError

__all__ = ["main", "build_parser", "run_demo", "fuse_files", "fuse_folder", "weights_present"]

OTHER_MODALITIES = tuple(m.lower() for m in constants.OTHER_MODALITIES)


def _guess_modality(path: str) -> str | None:
    upper = Path(path).as_posix().upper()
    for mod in ("SPECT", "PET", "CT"):
        if f"/{mod}/" in upper or Path(path).name.upper().startswith(mod):
            return mod
    return None


class _ProgressFuser:
    """Wraps a fuser and advances a progress bar by the slices of each batch (volumes)."""

    def __init__(self, fuser: Any, bar: Any) -> None:
        self.fuser, self.bar = fuser, bar

    def fuse(self, mri: Any, other: Any, modality: Any = None) -> Any:
        out = self.fuser.fuse(mri, other, modality=modality)
        self.bar.update(int(mri.shape[0]))
        return out


def _dicom_input(path: str, series_uid: str | None, what: str, stack: Any) -> tuple[str, Any]:
    """Resolve a DICOM folder to one series: the path to read (a temporary folder of links when the
    folder holds several series) and the series' first header."""
    import tempfile

    from .data.dicom import read_series_header, series_files
    from .data.io import list_dicom_series

    uid, files = series_files(path, series_uid, what)
    header = read_series_header(files)
    if len(list_dicom_series(path)) == 1:
        return path, header
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="monai_fusion_series_")))
    for i, f in enumerate(files):
        (tmp / f"{i:05d}_{Path(f).name}").symlink_to(Path(f).resolve())
    return str(tmp), header


def fuse_files(mri: str, other: str, out: str | None, method: str = "laplacian", modality: str | None = None,
               register: bool = True, overwrite: bool = False, device: str = "cpu", batch_size: int = 16,
               overview: str | None = None, dicom_out: str | None = None, mri_series: str | None = None,
               other_series: str | None = None, force: bool = False, progress: bool = False,
               anonymize: bool = False) -> dict[str, Any]:
    """Fuse one MRI file with one CT/PET/SPECT file and write the result.

    Args:
        mri: MRI file (PNG/JPEG/TIFF or NIfTI) or DICOM series folder.
        other: the other modality's file or folder, same kind as ``mri``.
        out: output file: ``.png`` for 2D inputs, ``.nii``/``.nii.gz`` for volumes (may be ``None``
            when ``dicom_out`` is given).
        method: a registered fusion method name.
        modality: ``ct``, ``pet`` or ``spect`` (guessed from the path when omitted; else PET).
        register: register ``other`` onto ``mri`` first.
        overwrite: replace an existing output.
        device: ``cpu`` or ``cuda``.
        batch_size: slices per call for volumes.
        overview: optional path of an overview PNG (2D only).
        dicom_out: also (or only) write a DICOM Secondary Capture series into this new folder.
        mri_series: series UID to read when the MRI folder holds several.
        other_series: series UID to read when the other folder holds several.
        force: fuse DICOM series of different PatientID (refused otherwise).
        progress: show a progress bar over the slices of a volume.
        anonymize: DICOM output without the MRI's patient/study identifiers (new UIDs); NIfTI output without
            the MRI header's free-text fields and extensions.

    Returns:
        The fused sample dict (``mri``, ``other``, ``fused``, ...) plus ``timings`` in seconds and
        ``outputs`` (the written paths).
    """
    import contextlib

    with contextlib.ExitStack() as stack:
        return _fuse_files(stack, mri, other, out, method, modality, register, overwrite, device, batch_size,
                           overview, dicom_out, mri_series, other_series, force, progress, anonymize)


def _fuse_files(stack: Any, mri: str, other: str, out: str | None, method: str, modality: str | None,
                register: bool, overwrite: bool, device: str, batch_size: int, overview: str | None,
                dicom_out: str | None, mri_series: str | None, other_series: str | None, force: bool,
                progress: bool, anonymize: bool = False) -> dict[str, Any]:
    from .data.io import is_volume_path, write_nifti, write_png
    from .data.overview import save_overview
    from .engines.inference import fuse_sample, other_for_display
    from .fusers import get_fuser
    from .transforms.presets import fusion_preprocess

    mod = (modality or _guess_modality(other) or "PET").upper()
    if mod.lower() not in OTHER_MODALITIES:
        raise FusionInputError(f"--modality {modality!r}: expected one of {', '.join(OTHER_MODALITIES)}")
    for src, what in ((mri, "MRI"), (other, mod)):
        if not Path(src).exists():
            raise FusionInputError(f"{what}: file not found: {src}")
    if out is None and dicom_out is None:
        raise FusionInputError("fuse: give an output file (-o) and/or a DICOM output folder (--dicom-out)")
    outp = Path(out) if out is not None else None
    if outp is not None:
        for src in (mri, other):
            if outp.exists() and outp.resolve() == Path(src).resolve():
                raise FusionInputError(f"output {outp} is one of the inputs; refusing to overwrite an input")
        if outp.exists() and not overwrite:
            raise FusionInputError(f"output {outp} exists; pass --overwrite to replace it")
    volume = is_volume_path(mri)
    if volume != is_volume_path(other):
        raise FusionInputError(f"{mri} and {other} must both be 2D images or both be volumes")
    want = (".nii", ".nii.gz") if volume else (".png",)
    if outp is not None and not any(outp.name.lower().endswith(s) for s in want):
        raise FusionInputError(f"output {outp}: expected a {' or '.join(want)} file for {'volume' if volume else '2D'} inputs")
    for src, uid, flag in ((mri, mri_series, "--mri-series"), (other, other_series, "--other-series")):
        if uid is not None and not Path(src).is_dir():
            raise FusionInputError(f"{flag} chooses a series in a DICOM folder, but {src} is a file")
    headers: dict[str, Any] = {}
    inputs = (mri, other)  # as given: a chosen series may be read through a temporary folder of links
    if Path(mri).is_dir():
        mri, headers["mri"] = _dicom_input(mri, mri_series, "MRI", stack)
    if Path(other).is_dir():
        other, headers["other"] = _dicom_input(other, other_series, mod, stack)
    if len(headers) == 2:
        pid = [str(h.get("PatientID", "")) for h in (headers["mri"], headers["other"])]
        if pid[0] != pid[1]:
            warning = f"the MRI is of PatientID {pid[0]!r} but the {mod} is of PatientID {pid[1]!r}"
            if not force:
                raise FusionInputError(f"{warning}; refusing to fuse two patients (pass --force if this is intended)")
            print(f"WARNING: {warning}; fusing anyway because of --force", file=sys.stderr)
    if dicom_out is not None:
        if not volume:
            raise FusionInputError("--dicom-out needs volume inputs (NIfTI files or DICOM series folders)")
        from .data.dicom import check_dicom_target

        check_dicom_target(dicom_out, overwrite, protect=inputs)
    fuser = get_fuser(method)
    t0 = time.perf_counter()
    sample = fusion_preprocess(register=register)({"mri": mri, "other": other, "modality": mod})
    t1 = time.perf_counter()
    if volume and progress:
        from tqdm import tqdm

        n_slices = int(sample["mri"].shape[-1])
        with tqdm(total=n_slices, desc=f"fusing ({method})", unit="slice", file=sys.stderr) as bar:
            result = fuse_sample(sample, _ProgressFuser(fuser, bar), batch_size=batch_size, device=device)
    else:
        result = fuse_sample(sample, fuser, batch_size=batch_size, device=device)
    t2 = time.perf_counter()
    fused = result["fused"]
    outputs: list[Path] = []
    if volume:
        affine = np.asarray(fused.affine)
        if dicom_out is not None:
            from .data.dicom import write_dicom_series

            outputs.append(write_dicom_series(np.asarray(fused), affine, dicom_out, reference=headers.get("mri"),
                                              method=method, overwrite=overwrite, protect=inputs,
                                              anonymize=anonymize))
        if outp is not None:
            header = None
            if Path(mri).is_file():  # a NIfTI MRI: keep its header (units, qform/sform codes, description)
                import nibabel as nib

                header = nib.load(str(mri)).header
                if anonymize:  # free text and extensions (e.g. a DICOM header, ecode 2) may name the patient
                    header = header.copy()
                    for field in ("descrip", "aux_file", "db_name", "intent_name"):
                        header[field] = b""
                    header.extensions.clear()
            outputs.append(write_nifti(np.asarray(fused), affine, outp, overwrite=overwrite, header=header))
    else:
        write_png(np.asarray(fused), outp, overwrite=overwrite)
        if overview:
            other_show = other_for_display(result)
            save_overview(np.asarray(result["mri"]), other_show, np.asarray(fused), overview,
                          titles=("MRI", mod, f"fused ({method})", f"{mod} over MRI"))
        outputs.append(outp)
    result["timings"] = {"preprocess_s": t1 - t0, "fuse_s": t2 - t1, "write_s": time.perf_counter() - t2}
    result["outputs"] = outputs
    return result


def fuse_folder(pairs: str, out: str, method: str = "laplacian", pair_types: Sequence[str] | None = None,
                register: bool = False, overwrite: bool = False, device: str = "cpu",
                limit: int | None = None) -> list[Path]:
    """Fuse every matched pair of a Whole Brain Atlas style folder into ``<out>/<PAIR>/<name>.png``.

    Args:
        pairs: dataset root (``<root>/<PAIR>/<MODALITY>/<name>.png``).
        out: output folder; must not be inside ``pairs``.
        method: a registered fusion method name.
        pair_types: pair types to fuse (default: all present).
        register: register each pair first (off by default: atlas pairs are co-registered).
        overwrite: replace existing outputs.
        device: ``cpu`` or ``cuda``.
        limit: fuse at most this many pairs (in datalist order), for quick looks.

    Returns:
        The written paths. All or nothing: the images are fused into a hidden staging folder beside ``out``
        and moved into place when every pair is done, so a bad pair or a killed run leaves no output file.
    """
    from tqdm import tqdm

    import os
    import shutil
    import tempfile

    from .data.datalist import find_pairs
    from .data.io import write_png
    from .engines.inference import fuse_sample
    from .fusers import get_fuser
    from .transforms.presets import fusion_preprocess
    from .utils.paths import output_path, safe_filename

    root, outp = Path(pairs).resolve(), Path(out).resolve()
    if outp == root or root in outp.parents:
        raise FusionInputError(f"output folder {outp} is inside the input folder {root}; choose another")
    items = find_pairs(root, pair_types).items[:limit]
    targets = [output_path(outp, it["pair_type"], safe_filename(it["name"]) + ".png") for it in items]
    clashes = [t for t in targets if t.exists()]
    if clashes and not overwrite:
        raise FusionInputError(f"{len(clashes)} outputs exist already (e.g. {clashes[0]}); pass --overwrite to replace them")
    fuser = get_fuser(method)
    pre = fusion_preprocess(register=register)
    # all or nothing: fuse into a hidden staging folder beside the output, move the files into place only when
    # every pair is done; a bad pair or a killed run leaves no output file (only the hidden .part folder if killed)
    outp.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{outp.name}.part", dir=outp.parent))
    try:
        staged = []
        for it, target in tqdm(list(zip(items, targets)), desc=f"fusing ({method})", unit="pair"):
            result = fuse_sample(pre(it), fuser, device=device)
            staged.append(write_png(np.asarray(result["fused"]), stage / target.relative_to(outp)))
        written = []
        for src, target in zip(staged, targets):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, target)
            written.append(target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return written


def run_demo(output_dir: str = "demo_output", method: str = "laplacian", overwrite: bool = False) -> dict[str, Path]:
    """Fuse the embedded MNI152 MRI/PET pair (registered first) and write the fused PNG and an overview.

    Returns:
        ``{"fused": path, "overview": path, "mri": path, "pet": path}``.
    """
    from .data.demo import demo_slice_pair, write_demo_files

    files = write_demo_files()
    out = Path(output_dir)
    fused_p, overview_p = out / "demo_fused.png", out / "demo_overview.png"
    for p in (fused_p, overview_p):
        if p.exists() and not overwrite:
            raise FusionInputError(f"{p} exists; pass --overwrite to replace it")
    res = fuse_files(str(files["mri_png"]), str(files["pet_png"]), str(fused_p), method=method, modality="pet",
                     register=True, overwrite=overwrite, overview=str(overview_p))
    reg = res["other"].meta.get("registration", {}) if hasattr(res["other"], "meta") else {}
    mis = demo_slice_pair()["misalignment"]
    print(f"embedded pair: {files['mri_png']} + {files['pet_png']} (PET misaligned on purpose: rotated "
          f"{mis['rotation_deg'][0]:g} deg, shifted {mis['translation_mm']} px; registered first)")
    if reg:
        print(f"registration: {reg.get('summary', reg.get('type', 'rigid'))}")
    t = res["timings"]
    print(f"fused with '{method}' in {t['fuse_s'] * 1000:.0f} ms (preprocess {t['preprocess_s']:.2f} s)")
    print(f"fused image: {fused_p.resolve()}")
    print(f"overview:    {overview_p.resolve()}")
    return {"fused": fused_p, "overview": overview_p, "mri": files["mri_png"], "pet": files["pet_png"]}


#: The bundle beside the package in a source checkout (``bundles/multimodal_fusion``).
DEFAULT_BUNDLE: Path = Path(__file__).resolve().parents[1] / "bundles" / "multimodal_fusion"


def weights_present(bundle: str | Path | None = None) -> list[tuple[str, Path, bool]]:
    """Which network weight files are on this machine, looked up by path only (nothing is imported
    from the bundle, nothing is loaded or downloaded).

    Args:
        bundle: the MONAI bundle folder whose ``models/model.pt`` is checked (default: the checkout's).

    Returns:
        ``(what, path, present)`` for the shipped default model, the bundle model, the shipped medical feature extractor and
        torchvision's ImageNet VGG files in the torch cache.
    """
    from .fusers.learned import DEFAULT_WEIGHTS
    from .networks.nets.feature_extractor import MEDICAL_FEATURES_FILE
    from .networks.nets.vgg import VGG_ARCHS, torchvision_weights_file

    bundle_dir = Path(bundle) if bundle is not None else DEFAULT_BUNDLE
    rows = [("default model (shipped)", DEFAULT_WEIGHTS),
            ("bundle model", bundle_dir / "models" / "model.pt"),
            ("medical feature extractor", MEDICAL_FEATURES_FILE)]
    rows += [(f"torchvision {arch} (ImageNet)", torchvision_weights_file(arch)) for arch in VGG_ARCHS]
    return [(what, path, path.is_file() and path.stat().st_size > 0) for what, path in rows]


def _info(bundle: str | None = None) -> None:
    import monai
    import torch

    from .fusers import available_fusers

    print(f"monai-fusion {__version__}")
    print(f"monai {monai.__version__}, torch {torch.__version__}, python {sys.version.split()[0]}")
    print(f"device: {'cuda (' + torch.cuda.get_device_name(0) + ')' if torch.cuda.is_available() else 'cpu'}")
    print(f"methods: {', '.join(available_fusers())}")
    print("weights:")
    for what, path, present in weights_present(bundle):
        size = path.stat().st_size if present else 0
        shown = f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB"
        state = f"present ({shown})" if present else "missing"
        print(f"  {what:<32} {state:<22} {path}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per command."""
    parser = argparse.ArgumentParser(prog="monai-fusion", description="Fuse a brain MRI with CT, PET or SPECT.")
    parser.add_argument("--version", action="version", version=f"monai-fusion {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="fuse the embedded MNI152 MRI/PET pair and write an overview PNG")
    demo.add_argument("-o", "--output-dir", default="demo_output", help="folder for the results (default: demo_output)")
    demo.add_argument("--method", default="laplacian", help="fusion method name (see `monai-fusion info`; default: laplacian)")
    demo.add_argument("--overwrite", action="store_true", help="replace earlier demo results")

    fuse = sub.add_parser("fuse", help="fuse an MRI file with a CT/PET/SPECT file, or every pair of a folder")
    fuse.add_argument("mri", nargs="?", help="MRI: PNG/JPEG/TIFF slice, NIfTI volume or DICOM series folder")
    fuse.add_argument("other", nargs="?", help="CT/PET/SPECT file or DICOM folder of the same kind")
    fuse.add_argument("--pairs", help="instead of two files: a folder <root>/<PAIR>/<MODALITY>/<name>.png")
    fuse.add_argument("--pair-types", nargs="+", help="with --pairs: pair types to fuse (default: all)")
    fuse.add_argument("-o", "--output",
                      help="output .png (2D) or .nii/.nii.gz (volume); with --pairs an output folder")
    fuse.add_argument("--dicom-out", metavar="DIR",
                      help="volumes: also (or only) write a DICOM Secondary Capture series into this new folder")
    fuse.add_argument("--mri-series", metavar="UID", help="series UID when the MRI folder holds several DICOM series")
    fuse.add_argument("--other-series", metavar="UID", help="series UID when the OTHER folder holds several")
    fuse.add_argument("--force", action="store_true", help="fuse DICOM series whose PatientID differ")
    fuse.add_argument("--anonymize", action="store_true",
                      help="DICOM/NIfTI output without the MRI's patient and study identifiers (new UIDs)")
    fuse.add_argument("--no-progress", action="store_true", help="no progress bar over the slices of a volume")
    fuse.add_argument("--method", default="laplacian", help="fusion method name (see `monai-fusion info`; default: laplacian)")
    fuse.add_argument("--modality", choices=OTHER_MODALITIES, help="modality of OTHER (guessed from its path)")
    fuse.add_argument("--register", action=argparse.BooleanOptionalAction, default=None,
                      help="register OTHER onto the MRI first (default: on for two files, off for --pairs, "
                           "whose pairs are co-registered)")
    fuse.add_argument("--device", default="cpu", help="cpu or cuda")
    fuse.add_argument("--batch-size", type=int, default=16, help="slices per batch for volumes")
    fuse.add_argument("--overview", help="also write an overview PNG here (2D)")
    fuse.add_argument("--overwrite", action="store_true", help="replace an existing output")

    ev = sub.add_parser("evaluate", help="fusion metrics of fused images against their source pairs")
    ev.add_argument("--pairs", required=True, help="source pairs folder <root>/<PAIR>/<MODALITY>/<name>.png")
    ev.add_argument("--fused", required=True, help="fused images folder <fused>/<PAIR>/<name>.png")
    ev.add_argument("--protocol", default="standard", help="metric protocol: standard, sum or poster")
    ev.add_argument("--metrics", nargs="+", help="metric names (default: the whole suite)")
    ev.add_argument("--csv", help="per-image CSV path (default: <fused>/metrics_<protocol>.csv)")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing CSV")

    bench = sub.add_parser("benchmark", help="every method on the same pairs: metrics CSV, tables, plots, montage, timings")
    bench.add_argument("--data", required=True, help="pairs folder <root>/<PAIR>/<MODALITY>/<name>.png")
    bench.add_argument("--split", choices=("val", "all"), default="val",
                       help="val: the bundle's case-wise validation split (default); all: every pair")
    bench.add_argument("--methods", nargs="+", help="method names (default: every registered method)")
    bench.add_argument("--metrics", nargs="+", help="metric names (default: MI FMI Qabf SSIM VIF FSIM SCD)")
    bench.add_argument("--protocol", default="standard", help="metric protocol: standard, sum or poster")
    bench.add_argument("-o", "--output-dir", default="benchmark_output", help="output folder (default: benchmark_output)")
    bench.add_argument("--max-pairs", type=int, help="at most this many pairs per pair type (quick runs)")
    bench.add_argument("--weights", nargs="+", metavar="METHOD=PATH", default=[],
                       help="checkpoints for network methods, e.g. poster=my_poster.pt")
    bench.add_argument("--val-fraction", type=float, default=0.2, help="validation fraction of cases (as train.json)")
    bench.add_argument("--seed", type=int, default=0, help="split seed (as train.json)")
    bench.add_argument("--device", default="cpu", help="cpu or cuda")
    bench.add_argument("--report", help="markdown report path (default: <output-dir>/report.md), e.g. docs/benchmark.md")
    bench.add_argument("--overwrite", action="store_true", help="replace an earlier benchmark in the output folder")

    info = sub.add_parser("info", help="versions, device, available methods and which network weights are present")
    info.add_argument("--bundle", help="MONAI bundle folder to check for models/model.pt (default: the checkout's)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``monai-fusion`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            run_demo(args.output_dir, args.method, args.overwrite)
        elif args.command == "fuse" and args.pairs:
            if args.mri or args.other:
                raise FusionInputError("fuse: give either MRI and OTHER files or --pairs DIR, not both")
            if not args.output:
                raise FusionInputError("fuse --pairs: give an output folder with -o")
            written = fuse_folder(args.pairs, args.output, method=args.method, pair_types=args.pair_types,
                                  register=bool(args.register), overwrite=args.overwrite, device=args.device)
            print(f"wrote {len(written)} fused images under {args.output}")
        elif args.command == "fuse":
            if not (args.mri and args.other):
                raise FusionInputError("fuse: give MRI and OTHER files (or --pairs DIR)")
            res = fuse_files(args.mri, args.other, args.output, method=args.method, modality=args.modality,
                             register=args.register is not False, overwrite=args.overwrite, device=args.device,
                             batch_size=args.batch_size, overview=args.overview, dicom_out=args.dicom_out,
                             mri_series=args.mri_series, other_series=args.other_series, force=args.force,
                             progress=not args.no_progress, anonymize=args.anonymize)
            t = res["timings"]
            shape = "x".join(str(n) for n in res["fused"].shape[1:])
            print(f"wrote {', '.join(str(o) for o in res['outputs'])} ({args.method}, {shape}; preprocess "
                  f"{t['preprocess_s']:.2f} s, fuse {t['fuse_s']:.2f} s, write {t['write_s']:.2f} s, "
                  f"total {sum(t.values()):.2f} s)")
        elif args.command == "evaluate":
            from .engines.evaluation import evaluate_folders

            csv = Path(args.csv) if args.csv else Path(args.fused) / f"metrics_{args.protocol}.csv"
            if csv.exists() and not args.overwrite:
                raise FusionInputError(f"{csv} exists; pass --overwrite to replace it")
            _, table = evaluate_folders(args.pairs, args.fused, protocol=args.protocol, metrics=args.metrics, csv_path=csv)
            print(table)
            print(f"per-image values: {csv}")
        elif args.command == "benchmark":
            from .engines.benchmark import BENCHMARK_METRICS, BENCHMARK_PREAMBLE, run_benchmark

            weights = {}
            for item in args.weights:
                name, sep, path = item.partition("=")
                if not sep or not name or not path:
                    raise FusionInputError(f"--weights {item!r}: expected METHOD=PATH")
                weights[name] = path
            res = run_benchmark(args.data, args.output_dir, split=args.split, methods=args.methods,
                                metrics=args.metrics or BENCHMARK_METRICS, protocol=args.protocol,
                                max_pairs=args.max_pairs, weights=weights, val_fraction=args.val_fraction,
                                seed=args.seed, device=args.device, overwrite=args.overwrite, report_path=args.report,
                                preamble=BENCHMARK_PREAMBLE if args.report else "")
            for pt, won in res["wins"].items():
                print(f"default leads on {pt}: {len(won)} of {len(args.metrics or BENCHMARK_METRICS)} ({', '.join(won)})")
        elif args.command == "info":
            _info(args.bundle)
    except FusionInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
