"""The bad-input matrix of the surfaces: ``monai-fusion fuse`` / ``evaluate`` and the bundle's inference.

A CLI error is exit status 2 with exactly one ``error: ...`` line on stderr that names the input, and no
output file. Names that look like code (``$import os``, ``@id``, ``%macro``) pass through as data.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from monai_fusion.cli import main
from monai_fusion.networks.nets.weight_map import WeightMapFusionNet

from .conftest import ROOT, atlas, dicom_series, files_under, grey, rgb, save_nifti, save_png, volume

INFERENCE = ROOT / "bundles" / "multimodal_fusion" / "configs" / "inference.json"
PWN = "$__import__('os').system('touch PWNED')"


@dataclass(frozen=True)
class CliRow:
    """``args(folder)`` builds the inputs under ``folder/in`` and returns the command line (outputs in ``out``)."""

    id: str
    entry: str
    case: str
    expect: str
    args: Callable[[Path], list[str]]
    error: str | None = None  # regex of the one error line; None: exit 0 and ``check``
    check: Callable[[Path], None] | None = None


def _two(d: Path, mri: np.ndarray, other: np.ndarray, names: tuple[str, str] = ("mri.png", "pet.png")) -> list[str]:
    return [str(save_png(d / "in" / names[0], mri)), str(save_png(d / "in" / names[1], other))]


def _bytes(d: Path, name: str, data: bytes) -> str:
    p = d / "in" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return str(p)


def _png_size(p: Path) -> tuple[int, ...]:
    return np.asarray(Image.open(p)).shape


def _out_png(d: Path, name: str = "fused.png") -> list[str]:
    return ["-o", str(d / "out" / name)]


def _fused_dir(d: Path, pairs: Path, size: int = 32, bad: str | None = None) -> Path:
    """Fused images for every pair of ``pairs`` (``bad``: replace that one's bytes)."""
    out = d / "in" / "fused"
    for mri in sorted(pairs.glob("*/MRI/*.png")):
        target = out / mri.parent.parent.name / mri.name
        save_png(target, rgb(size, size, 7))
        if bad == mri.stem:
            target.write_bytes(target.read_bytes()[:100])
    return out


def _dicom_pair(d: Path, mixed: bool = False) -> list[str]:
    vol = (volume((16, 14, 5)) * 5).transpose(2, 1, 0)
    mri = dicom_series(d / "in" / "mri dicom", vol, "1.2.826.0.1.3680043.8.498.301")
    pet = dicom_series(d / "in" / "pet", vol[:, ::-1] + 1, "1.2.826.0.1.3680043.8.498.302", modality="PT")
    if mixed:
        dicom_series(d / "in" / "pet", vol, "1.2.826.0.1.3680043.8.498.303", modality="PT")
    return [str(mri), str(pet)]


SAG = np.array([[0, 0, 2.0, 0], [2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 1]])

ROWS: list[CliRow] = [
    CliRow(
        "cli-empty-mri",
        "monai-fusion fuse",
        "empty file",
        "error: names the file",
        lambda d: ["fuse", _bytes(d, "empty mri.png", b""), _two(d, grey(), rgb())[1], *_out_png(d)],
        r"MRI: .*empty mri\.png is empty \(0 bytes\)",
    ),
    CliRow(
        "cli-truncated-pet",
        "monai-fusion fuse",
        "truncated PNG",
        "error: names the file",
        lambda d: [
            "fuse",
            _two(d, grey(), rgb())[0],
            _bytes(d, "PET/cut.png", Path(_two(d, grey(), rgb())[1]).read_bytes()[:200]),
            *_out_png(d),
        ],
        r"PET: .*cut\.png could not be read",
    ),
    CliRow(
        "cli-wrong-output-extension",
        "monai-fusion fuse",
        "wrong extension (-o fused.jpg for 2D)",
        "error: expects .png",
        lambda d: ["fuse", *_two(d, grey(), rgb()), *_out_png(d, "fused.jpg")],
        r"fused\.jpg: expected a \.png file",
    ),
    CliRow(
        "cli-mismatched-no-register",
        "monai-fusion fuse",
        "mismatched PNG shapes, --no-register",
        "error: names both sizes (PNG has no pixel size)",
        lambda d: ["fuse", *_two(d, grey(32, 32), rgb(40, 32)), *_out_png(d), "--no-register"],
        r"pet\.png\) is 40x32 pixels but mri .* carry no pixel size",
    ),
    CliRow(
        "cli-mismatched-registered",
        "monai-fusion fuse",
        "mismatched PNG shapes, registered",
        "error: refused before registration could misplace them",
        lambda d: ["fuse", *_two(d, grey(40, 40), rgb(48, 36)), *_out_png(d)],
        r"is 48x36 pixels but mri .* registration would misplace them",
    ),
    CliRow(
        "cli-unicode-spaces",
        "monai-fusion fuse",
        "paths with spaces and unicode",
        "result: written under the unicode name",
        lambda d: [
            "fuse",
            *_two(d, grey(), rgb(), ("IRM été.png", "TEP 脳.png")),
            "--modality",
            "pet",
            "-o",
            str(d / "out" / "fusionné ü.png"),
            "--no-register",
        ],
        check=lambda d: files_under(d / "out") == ["fusionné ü.png"] or pytest.fail(str(files_under(d / "out"))),
    ),
    CliRow(
        "cli-code-like-names",
        "monai-fusion fuse",
        "file names `$import os`, `@x`, `%y`",
        "result: names are data; nothing evaluated",
        lambda d: [
            "fuse",
            *_two(d, grey(), rgb(), ("$import os.png", "@pet%x.png")),
            "--modality",
            "pet",
            "-o",
            str(d / "out" / "%(x)s @y $z.png"),
            "--no-register",
        ],
        check=lambda d: files_under(d / "out") == ["%(x)s @y $z.png"] or pytest.fail(str(files_under(d / "out"))),
    ),
    CliRow(
        "cli-16bit-rgba-palette",
        "monai-fusion fuse",
        "16-bit MRI, palette PET",
        "result: fused RGB",
        lambda d: [
            "fuse",
            str(save_png(d / "in" / "m16.png", grey().astype(np.uint16) * 257)),
            str(save_png(d / "in" / "pal.png", rgb(), "P")),
            "--modality",
            "pet",
            *_out_png(d),
            "--no-register",
        ],
        check=lambda d: _png_size(d / "out" / "fused.png") == (32, 32, 3) or pytest.fail("size"),
    ),
    CliRow(
        "cli-1-pixel",
        "monai-fusion fuse",
        "1-pixel image",
        "error: at least 2x2",
        lambda d: ["fuse", *_two(d, np.array([[3]], np.uint8), rgb()), *_out_png(d)],
        r"mri\.png is 1x1 pixels",
    ),
    CliRow(
        "cli-constant",
        "monai-fusion fuse",
        "constant image",
        "error: constant",
        lambda d: ["fuse", *_two(d, np.full((16, 16), 80, np.uint8), rgb()), *_out_png(d)],
        r"mri\.png is constant",
    ),
    CliRow(
        "cli-nan-volume",
        "monai-fusion fuse",
        "NaN voxels",
        "error: NaN/Inf",
        lambda d: [
            "fuse",
            str(save_nifti(d / "in" / "m.nii.gz", volume())),
            str(save_nifti(d / "in" / "nan.nii.gz", np.where(volume() > 120, np.nan, volume()))),
            "-o",
            str(d / "out" / "f.nii.gz"),
            "--no-progress",
        ],
        r"nan\.nii\.gz contains \d+ NaN/Inf",
    ),
    CliRow(
        "cli-4d",
        "monai-fusion fuse",
        "4D NIfTI",
        "error: expected a 3D volume",
        lambda d: [
            "fuse",
            str(save_nifti(d / "in" / "m.nii.gz", volume())),
            str(save_nifti(d / "in" / "pet4d.nii.gz", np.stack([volume()] * 2, -1))),
            "-o",
            str(d / "out" / "f.nii.gz"),
            "--no-progress",
        ],
        r"pet4d\.nii\.gz has shape .* expected a 3D volume",
    ),
    CliRow(
        "cli-non-axial-poster-odd",
        "monai-fusion fuse",
        "non-axial volumes (sagittal affine), odd sizes, poster net (random weights)",
        "result: fused on the MRI's voxel grid, MRI affine kept",
        lambda d: [
            "fuse",
            str(save_nifti(d / "in" / "m.nii.gz", volume((21, 19, 3)), SAG)),
            str(save_nifti(d / "in" / "p.nii.gz", volume((21, 19, 3), 1), SAG)),
            "--method",
            "poster",
            "--random-weights",
            "-o",
            str(d / "out" / "f.nii.gz"),
            "--no-register",
            "--no-progress",
        ],
        check=lambda d: (
            (
                nib.load(d / "out" / "f.nii.gz").shape == (21, 19, 3, 3)  # grey PET fused in colour: RGB
                and np.allclose(nib.load(d / "out" / "f.nii.gz").affine, SAG)
            )
            or pytest.fail("grid")
        ),
    ),
    CliRow(
        "cli-dicom-mixed-series",
        "monai-fusion fuse",
        "DICOM folder with two series",
        "error: lists them",
        lambda d: ["fuse", *_dicom_pair(d, mixed=True), "-o", str(d / "out" / "f.nii.gz"), "--no-progress"],
        r"PET: .*pet holds 2 DICOM series; choose one by UID \(--other-series",
    ),
    CliRow(
        "cli-dicom-no-pixels",
        "monai-fusion fuse",
        "DICOM slice without pixel data",
        "error: names the slice",
        lambda d: ["fuse", *_drop_one(_dicom_pair(d)), "-o", str(d / "out" / "f.nii.gz"), "--no-progress"],
        r"belong to no readable series .*302_001\.dcm",
    ),
    CliRow(
        "cli-dicom-unicode",
        "monai-fusion fuse",
        "DICOM folders with spaces, NIfTI + DICOM out",
        "result: both written",
        lambda d: [
            "fuse",
            *_dicom_pair(d),
            "-o",
            str(d / "out" / "f é.nii.gz"),
            "--dicom-out",
            str(d / "out" / "dicom ü"),
            "--no-progress",
            "--no-register",
        ],
        check=lambda d: len(files_under(d / "out")) == 6 or pytest.fail(str(files_under(d / "out"))),
    ),
    CliRow(
        "cli-pairs-truncated",
        "monai-fusion fuse --pairs",
        "a truncated PNG among the pairs",
        "error: names the file; no output file at all (all or nothing)",
        lambda d: [
            "fuse",
            "--pairs",
            str(_cut(atlas(d / "in" / "pairs", ("1001", "1002", "1003")), "1003")),
            "-o",
            str(d / "out" / "fused"),
            "--method",
            "average",
        ],
        r"PET: .*1003\.png could not be read",
    ),
    CliRow(
        "cli-pairs-code-like-names",
        "monai-fusion fuse --pairs",
        "unicode root, names `$...`, `@`, `%`",
        "result: one output per pair, names kept",
        lambda d: [
            "fuse",
            "--pairs",
            str(atlas(d / "in" / "données ü", ("$import os001", "@a%b002", PWN.replace("/", "") + "003"))),
            "-o",
            str(d / "out" / "fused é"),
            "--method",
            "average",
        ],
        check=lambda d: (
            (len(files_under(d / "out")) == 3 and not (d / "PWNED").exists() and not Path("PWNED").exists())
            or pytest.fail(str(files_under(d / "out")))
        ),
    ),
    CliRow(
        "evaluate-truncated-fused",
        "monai-fusion evaluate",
        "truncated fused PNG",
        "error: names it, no CSV",
        lambda d: [
            "evaluate",
            "--pairs",
            str(atlas(d / "in" / "pairs")),
            "--fused",
            str(_fused_dir(d, d / "in" / "pairs", bad="1002")),
            "--csv",
            str(d / "out" / "m.csv"),
            "--metrics",
            "EN",
        ],
        r"PET: .*fused/PET-MRI/1002\.png could not be read",
    ),
    CliRow(
        "evaluate-wrong-size",
        "monai-fusion evaluate",
        "fused image of another size",
        "error: names it, no CSV",
        lambda d: [
            "evaluate",
            "--pairs",
            str(atlas(d / "in" / "pairs")),
            "--fused",
            str(_fused_dir(d, d / "in" / "pairs", size=24)),
            "--csv",
            str(d / "out" / "m.csv"),
            "--metrics",
            "EN",
        ],
        r"fused/PET-MRI/1001\.png: fused image \(24, 24\) does not match its pair",
    ),
    CliRow(
        "evaluate-float-fused",
        "monai-fusion evaluate",
        "float TIFF fused images",
        "error: no fixed value range",
        lambda d: [
            "evaluate",
            "--pairs",
            str(atlas(d / "in" / "pairs", ("1001",))),
            "--fused",
            str(_float_fused(d)),
            "--csv",
            str(d / "out" / "m.csv"),
            "--metrics",
            "EN",
        ],
        r"1001\.tif is a floating-point image file with no fixed value range",
    ),
    CliRow(
        "evaluate-unicode",
        "monai-fusion evaluate",
        "paths with spaces and unicode",
        "result: CSV written",
        lambda d: [
            "evaluate",
            "--pairs",
            str(atlas(d / "in" / "paires é")),
            "--fused",
            str(_fused_dir(d, d / "in" / "paires é")),
            "--csv",
            str(d / "out" / "métriques ü.csv"),
            "--metrics",
            "EN",
            "SSIM",
        ],
        check=lambda d: len((d / "out" / "métriques ü.csv").read_text().splitlines()) == 3 or pytest.fail("csv"),
    ),
]


def _drop_one(paths: list[str]) -> list[str]:
    import pydicom

    f = sorted(Path(paths[1]).iterdir())[1]
    ds = pydicom.dcmread(f)
    del ds.PixelData
    ds.save_as(f)
    return paths


def _cut(root: Path, name: str) -> Path:
    p = root / "PET-MRI" / "PET" / f"{name}.png"
    p.write_bytes(p.read_bytes()[:150])
    return root


def _float_fused(d: Path) -> Path:
    out = d / "in" / "fused" / "PET-MRI"
    out.mkdir(parents=True)
    Image.fromarray(grey().astype(np.float32) / 255).save(out / "1001.tif")
    return out.parent


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_cli_row(
    row: CliRow,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a `touch PWNED` that ran would land here
    args = row.args(tmp_path)
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rc = main(args)
    err = capsys.readouterr().err
    if row.error is None:
        assert rc == 0, err
        assert row.check is not None
        row.check(tmp_path)
        actual = "result (exit 0)"
    else:
        lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("fusing (")]  # progress bars
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
        assert re.search(row.error, lines[0]), lines[0]
        assert files_under(tmp_path / "out") == [], "an error left output files"
        actual = lines[0]
    assert not (tmp_path / "PWNED").exists()
    assert not [p for p in tmp_path.rglob("*") if ".part" in p.name]  # no staging or temporary left behind
    record(
        "matrix",
        id=row.id,
        entry=row.entry,
        case=row.case,
        expect=row.expect,
        actual=actual.replace(str(tmp_path), "<tmp>"),
    )


# ------------------------------------------------------------------------------------------ bundle inference
def _bundle_inference(tmp_path: Path, data: Path, out: Path) -> subprocess.CompletedProcess[str]:
    torch.manual_seed(0)
    ckpt = tmp_path / "random weights.pt"
    torch.save(WeightMapFusionNet(channels=8).state_dict(), ckpt)
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(INFERENCE),
        "--bundle_root",
        str(tmp_path),
        "--input_dir",
        str(data),
        "--output_dir",
        str(out),
        "--ckpt_path",
        str(ckpt),
        "--register",
        "False",
        "--network_def#channels",
        "8",
    ]
    env = {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"}
    import os

    env.update({k: v for k, v in os.environ.items() if k in ("HOME", "TMPDIR", "LANG", "LC_ALL")})
    return subprocess.run(
        cmd, cwd=tmp_path, env=env, text=True, encoding="utf-8", errors="replace", capture_output=True, timeout=300
    )


@pytest.mark.slow
def test_bundle_inference_code_like_names_odd_sizes(tmp_path: Path, record: Callable[..., None]) -> None:
    """Names that are bundle syntax (`$`, `@`, `%`) and sizes not divisible by the pooling, random weights."""
    names = ("$import os001", "@network_def%x002", PWN + "003")
    data = atlas(tmp_path / "données ü", names, size=37)
    out = tmp_path / "out dir é"
    proc = _bundle_inference(tmp_path, data, out)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert files_under(out) == sorted(f"PET-MRI/{n}.png" for n in names)
    assert all(_png_size(out / "PET-MRI" / f"{n}.png") == (37, 37, 3) for n in names)
    assert not (tmp_path / "PWNED").exists() and not [p for p in tmp_path.rglob("*") if ".part" in p.name]
    record(
        "matrix",
        id="bundle-code-like-names-odd-size",
        entry="monai.bundle run inference.json",
        case="names `$import os`, `@id`, `%x`, `$__import__(...)`; 37x37 images; unicode paths",
        expect="result: one PNG per pair, names kept, nothing evaluated",
        actual="result (exit 0)",
    )


@pytest.mark.slow
def test_bundle_inference_truncated_input(tmp_path: Path, record: Callable[..., None]) -> None:
    data = _cut(atlas(tmp_path / "data", ("1001", "1002")), "1001")
    out = tmp_path / "out"
    proc = _bundle_inference(tmp_path, data, out)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-4000:]
    assert last.startswith("error: PET: ") and "1001.png could not be read" in last, last
    assert files_under(out) == []  # the bad pair comes first: nothing written, no temporary file
    record(
        "matrix",
        id="bundle-truncated-input",
        entry="monai.bundle run inference.json",
        case="truncated PNG",
        expect="error: one line naming the file (exit 1), no output",
        actual=last.replace(str(tmp_path), "<tmp>"),
    )
