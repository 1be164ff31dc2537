"""What ``monai-fusion fuse`` does for two files (a folder of pairs and the demo: ``batch_commands``).

:mod:`monai_fusion.cli` parses the command line and calls these; they are callable from Python too.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .data.checks import looks_swapped, volume_swap_reason
from .data.dicom import patient_mismatch
from .utils import constants
from .utils.constants import check_modality
from .utils.errors import FusionInputError

__all__ = ["OTHER_MODALITIES", "FuseOptions", "build_fuser", "fuse_files"]

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
    from .data.dicom_series import list_dicom_series

    uid, files = series_files(path, series_uid, what)
    header = read_series_header(files)
    if len(list_dicom_series(path)) == 1:
        return path, header
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="monai_fusion_series_")))
    for i, f in enumerate(files):
        (tmp / f"{i:05d}_{Path(f).name}").symlink_to(Path(f).resolve())
    return str(tmp), header


@dataclass
class FuseOptions:
    """How :func:`fuse_files` fuses and writes one pair (the ``fuse`` command's options).

    Attributes:
        method: a registered fusion method name.
        modality: ``ct``, ``pet`` or ``spect`` (guessed from the path when omitted; else PET).
        register: register ``other`` onto ``mri`` first.
        overwrite: replace an existing output.
        device: ``cpu`` or ``cuda``.
        batch_size: slices per call for volumes.
        overview: optional path of an overview PNG (four panels; for volumes in three planes).
        dicom_out: also (or only) write a DICOM Secondary Capture series into this new folder (volumes only).
        mri_series: series UID to read when the MRI folder holds several.
        other_series: series UID to read when the other folder holds several.
        force: fuse DICOM series of different PatientID, or a CT-MRI pair that looks swapped (refused otherwise).
        progress: show a progress bar over the slices of a volume.
        anonymize: DICOM output without the MRI's patient/study identifiers (new UIDs); NIfTI output without
            the MRI header's free-text fields and extensions.
        weights: the method's weights file (see :func:`build_fuser`).
        random_weights: run a network method without weights, randomly initialised (for timing only).
        colormap: how a grey ``other`` is rendered (``auto``: PET/SPECT in the atlas colours, CT grey; a name of
            :data:`~monai_fusion.utils.colormaps.COLORMAPS`; ``none``).
        window: the intensity window of a CT in HU or a PET in SUV (``auto``, ``percentile``, a CT window name or
            ``LOW,HIGH``; see :class:`~monai_fusion.transforms.NormalizeModality`).
        same_field_of_view: 2D files of two sizes show the same field of view: resample OTHER to the MRI's size.
    """

    method: str = constants.DEFAULT_METHOD
    modality: str | None = None
    register: bool = True
    overwrite: bool = False
    device: str = "cpu"
    batch_size: int = 16
    overview: str | None = None
    dicom_out: str | None = None
    mri_series: str | None = None
    other_series: str | None = None
    force: bool = False
    progress: bool = False
    anonymize: bool = False
    weights: str | None = None
    random_weights: bool = False
    colormap: str = "auto"
    window: str = "auto"
    same_field_of_view: bool = False


def fuse_files(
    mri: str, other: str, out: str | None, options: FuseOptions | None = None, **settings: Any
) -> dict[str, Any]:
    """Fuse one MRI file with one CT/PET/SPECT file and write the result.

    Args:
        mri: MRI file (PNG/JPEG/TIFF or NIfTI) or DICOM series folder.
        other: the other modality's file or folder, same kind as ``mri``.
        out: output file: ``.png`` for 2D inputs, ``.nii``/``.nii.gz`` for volumes (may be ``None``
            when ``options.dicom_out`` is given).
        options: the :class:`FuseOptions` (default: every option at its default).
        settings: :class:`FuseOptions` fields that replace those of ``options`` (e.g. ``method="max"``).

    Returns:
        The fused sample dict (``mri``, ``other``, ``fused``, ...) plus ``timings`` in seconds and
        ``outputs`` (the written paths).

    Raises:
        FusionInputError: a missing input, an output that exists or is an input, inputs of two kinds, an option
            that does not fit the inputs, two patients or swapped inputs without ``force``.
    """
    import contextlib

    opts = replace(options or FuseOptions(), **settings)
    with contextlib.ExitStack() as stack:
        fuser = build_fuser(opts.method, opts.weights, opts.random_weights)
        mod = check_modality(opts.modality or _guess_modality(other) or "PET", 1, "--modality")[0]
        outp, volume = _check_request(mri, other, out, mod, opts)
        inputs = (mri, other)  # as given: a chosen series may be read through a temporary folder of links
        mri, other, headers = _read_dicom_headers(mri, other, mod, opts, stack)
        if opts.dicom_out is not None:
            from .data.dicom import check_dicom_target

            check_dicom_target(opts.dicom_out, opts.overwrite, protect=inputs)
        t0 = time.perf_counter()
        sample = _preprocess(mri, other, mod, inputs, volume, opts)
        t1 = time.perf_counter()
        result = _fuse(sample, fuser, volume, opts)
        t2 = time.perf_counter()
        result["outputs"] = _write(result, mri, outp, headers, inputs, mod, volume, opts)
        result["timings"] = {"preprocess_s": t1 - t0, "fuse_s": t2 - t1, "write_s": time.perf_counter() - t2}
        return result


def _check_request(mri: str, other: str, out: str | None, mod: str, opts: FuseOptions) -> tuple[Path | None, bool]:
    """Check the inputs exist and the outputs and options fit them; returns the output path and whether the
    inputs are volumes."""
    from .data.io import is_volume_path

    for src, what in ((mri, "MRI"), (other, mod)):
        if not Path(src).exists():
            raise FusionInputError(f"{what}: file not found: {src}")
    if out is None and opts.dicom_out is None:
        raise FusionInputError("fuse: give an output file (-o) and/or a DICOM output folder (--dicom-out)")
    outp = Path(out) if out is not None else None
    if outp is not None:
        for src in (mri, other):
            if outp.exists() and outp.resolve() == Path(src).resolve():
                raise FusionInputError(f"output {outp} is one of the inputs; refusing to overwrite an input")
        if outp.exists() and not opts.overwrite:
            raise FusionInputError(f"output {outp} exists; pass --overwrite to replace it")
    volume = is_volume_path(mri)
    if volume != is_volume_path(other):
        raise FusionInputError(f"{mri} and {other} must both be 2D images or both be volumes")
    if opts.overview:  # before anything is written: the overview needs the plots extra
        from .utils.optional import require_extra

        require_extra("matplotlib", "plots", "the overview PNG")
    if opts.dicom_out is not None and not volume:
        raise FusionInputError("--dicom-out needs volume inputs (NIfTI files or DICOM series folders)")
    want = (".nii", ".nii.gz") if volume else (".png",)
    if outp is not None and not any(outp.name.lower().endswith(s) for s in want):
        raise FusionInputError(
            f"output {outp}: expected a {' or '.join(want)} file for {'volume' if volume else '2D'} inputs"
        )
    for src, uid, flag in ((mri, opts.mri_series, "--mri-series"), (other, opts.other_series, "--other-series")):
        if uid is not None and not Path(src).is_dir():
            raise FusionInputError(f"{flag} chooses a series in a DICOM folder, but {src} is a file")
    return outp, volume


def _read_dicom_headers(
    mri: str, other: str, mod: str, opts: FuseOptions, stack: Any
) -> tuple[str, str, dict[str, Any]]:
    """Resolve DICOM folders to one series each (paths to read, first headers) and refuse two patients."""
    headers: dict[str, Any] = {}
    if Path(mri).is_dir():
        mri, headers["mri"] = _dicom_input(mri, opts.mri_series, "MRI", stack)
    if Path(other).is_dir():
        other, headers["other"] = _dicom_input(other, opts.other_series, mod, stack)
    warning = patient_mismatch(headers["mri"], headers["other"], mod) if len(headers) == 2 else None
    if warning:
        if not opts.force:
            raise FusionInputError(f"{warning}; refusing to fuse two patients (pass --force if this is intended)")
        print(f"WARNING: {warning}; fusing anyway because of --force", file=sys.stderr)
    return mri, other, headers


def _preprocess(
    mri: str, other: str, mod: str, inputs: tuple[str, str], volume: bool, opts: FuseOptions
) -> dict[str, Any]:
    """Load, register and normalise the pair (the library's preset); refuse swapped inputs, say what moved."""
    from .transforms.presets import fusion_preprocess

    pre = fusion_preprocess(
        register=opts.register,
        colormap=opts.colormap,
        normalize={"window": opts.window},
        same_field_of_view=opts.same_field_of_view,
    )
    sample = pre({"mri": mri, "other": other, "modality": mod})
    if volume:
        why = volume_swap_reason(getattr(sample["mri"], "meta", {}), getattr(sample["other"], "meta", {}))
        why = why and f"{why} ({inputs[0]} given as the MRI, {inputs[1]} as the {mod})"
    elif looks_swapped(np.asarray(sample["mri"]), np.asarray(sample["other"]), mod):
        why = f"{inputs[0]} (given as the MRI) has more bone-bright head than {inputs[1]} (given as the {mod})"
    else:
        why = None
    if why:
        warning = f"the inputs look swapped: {why}"
        if not opts.force:
            raise FusionInputError(f"{warning}; give the MRI first (or pass --force if the order is right)")
        print(f"WARNING: {warning}; fusing in the given order because of --force", file=sys.stderr)
    meta = getattr(sample["other"], "meta", {})
    if meta.get("resized_to_reference"):  # raster files of two sizes, said to show the same field of view
        size = "x".join(str(v) for v in meta["resized_to_reference"])
        print(f"resized {Path(inputs[1]).name} from {size} to the MRI's size (--same-field-of-view)", file=sys.stderr)
    if meta.get("resampled_to_reference"):  # --no-register: two grids, put on the MRI's by the files' geometry
        print(f"resampled {Path(inputs[1]).name} onto the MRI's grid by the files' geometry", file=sys.stderr)
    if volume:  # a clinical volume's window and colours are a reading choice: say which were used
        print(f"{Path(inputs[1]).name}: {_rendering_note(sample)}", file=sys.stderr)
    reg = meta.get("registration") if opts.register else None
    if reg:  # the default for two files: say that OTHER was moved, and how to keep co-registered inputs as they are
        print(
            f"registered {Path(inputs[1]).name} onto the MRI: {reg.get('summary', reg.get('type'))} "
            "(pass --no-register for inputs that are already aligned)",
            file=sys.stderr,
        )
    return sample


def _rendering_note(sample: dict[str, Any]) -> str:
    """``colour map <name>; <intensity window>`` of the other source (:func:`processing_notes`)."""
    from .engines.inference import processing_notes

    notes = processing_notes(sample)
    return f"colour map {notes.get('colormap', 'none')}; {notes.get('intensity_window', 'window not recorded')}"


def _fuse(sample: dict[str, Any], fuser: Any, volume: bool, opts: FuseOptions) -> dict[str, Any]:
    """Fuse the preprocessed pair, with a progress bar over a volume's slices when asked."""
    from .engines.inference import fuse_sample

    if volume and opts.progress:
        from tqdm import tqdm

        n_slices = int(sample["mri"].shape[-1])
        with tqdm(total=n_slices, desc=f"fusing ({opts.method})", unit="slice", file=sys.stderr) as bar:
            return fuse_sample(sample, _ProgressFuser(fuser, bar), batch_size=opts.batch_size, device=opts.device)
    return fuse_sample(sample, fuser, batch_size=opts.batch_size, device=opts.device)


def _write(
    result: dict[str, Any],
    mri: str,
    outp: Path | None,
    headers: dict[str, Any],
    inputs: tuple[str, str],
    mod: str,
    volume: bool,
    opts: FuseOptions,
) -> list[Path]:
    """Write the fused image (PNG and overview; or NIfTI and/or a DICOM series); returns the written paths."""
    from .data.io import write_nifti, write_png

    fused = result["fused"]
    outputs: list[Path] = []
    if not volume:
        write_png(np.asarray(fused), outp, overwrite=opts.overwrite)
        if opts.overview:
            from .data.overview import save_overview
            from .engines.inference import other_for_display

            titles = ("MRI", mod, f"fused ({opts.method})", f"{mod} over MRI")
            save_overview(
                np.asarray(result["mri"]), other_for_display(result), np.asarray(fused), opts.overview, titles=titles
            )
        return [outp] if outp is not None else []
    affine, note = np.asarray(fused.affine), f"{mod}: {_rendering_note(result)}"
    if opts.overview:  # three planes through the head
        from .data.overview import save_volume_overview
        from .engines.inference import other_for_display, processing_notes

        colormap = processing_notes(result).get("colormap", "none")
        titles = ("MRI", f"{mod} (colour map {colormap})", f"fused ({opts.method})", f"{mod} over MRI")
        spacing = tuple(np.linalg.norm(affine[:3, :3], axis=0))
        save_volume_overview(
            np.asarray(result["mri"]),
            other_for_display(result),
            np.asarray(fused),
            opts.overview,
            spacing=spacing,
            titles=titles,
        )
    if opts.dicom_out is not None:
        from .data.dicom import write_dicom_series

        outputs.append(
            write_dicom_series(
                np.asarray(fused),
                affine,
                opts.dicom_out,
                reference=headers.get("mri"),
                method=opts.method,
                overwrite=opts.overwrite,
                protect=inputs,
                anonymize=opts.anonymize,
                description=note,
            )
        )
    if outp is not None:
        header = None
        if Path(mri).is_file():  # a NIfTI MRI: keep its header (units, qform/sform codes, description)
            import nibabel as nib

            header = nib.load(str(mri)).header
            if opts.anonymize:  # free text and extensions (e.g. a DICOM header, ecode 2) may name the patient
                header = header.copy()
                for field in ("descrip", "aux_file", "db_name", "intent_name"):
                    header[field] = b""
                header.extensions.clear()
        outputs.append(
            write_nifti(np.asarray(fused), affine, outp, overwrite=opts.overwrite, header=header, description=note)
        )
    return outputs


def build_fuser(method: str, weights: str | None = None, random_weights: bool = False) -> Any:
    """The registered method ``method`` as the command line builds it: shipped weights, ``weights`` or random.

    Network methods load their shipped weights unless ``weights`` names another checkpoint; ``random_weights``
    builds a randomly initialised network instead (timing only). ``zero_learning`` takes torchvision's VGG19
    file as ``weights``, ``zero_learning_medical`` the medical feature extractor's file.

    Args:
        method: a registry name.
        weights: a checkpoint (network methods) or a backbone file (the zero-learning methods).
        random_weights: a randomly initialised network (network methods only, not with ``weights``).

    Returns:
        The fuser.

    Raises:
        FusionInputError: unknown method, ``weights`` for a method that takes none, ``random_weights`` for a
            method that is no network or together with ``weights``.
    """
    from .fusers.base import fuser_factory
    from .fusers.learned import NetworkFuser, ZeroLearningFuser
    from .networks.utils import MissingWeightsError

    cls = fuser_factory(method)
    kind = cls if isinstance(cls, type) else type(None)  # a registered factory function is no network
    if weights is not None and not issubclass(kind, (NetworkFuser, ZeroLearningFuser)):
        raise FusionInputError(f"--weights {weights}: method {method!r} takes no weights")
    if random_weights and not issubclass(kind, NetworkFuser):
        raise FusionInputError(f"--random-weights: method {method!r} is not a network")
    if random_weights and weights is not None:
        raise FusionInputError("--random-weights and --weights: give one of them")
    if random_weights:
        print(f"WARNING: {method}: randomly initialised network, its output is no meaningful fusion", file=sys.stderr)
        return cls(random_init=True)
    try:
        return cls(**({} if weights is None else {"weights": weights}))
    except MissingWeightsError as err:  # the library's advice names keyword arguments; say the options here
        network = issubclass(kind, NetworkFuser)
        raise MissingWeightsError(
            f"{err}\nOn the command line: --weights PATH names the file"
            + (" (--random-weights runs a randomly initialised network, for timing only)" if network else "")
        ) from err
