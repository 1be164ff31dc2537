"""The monai-fusion command: demo, fuse and info end to end, and clean errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_fusion.cli import main
from monai_fusion.data.demo import write_demo_files


def test_demo_writes_fused_and_overview(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    fused, overview = tmp_path / "demo_fused.png", tmp_path / "demo_overview.png"
    assert str(fused.resolve()) in out and str(overview.resolve()) in out
    f = np.asarray(Image.open(fused))
    assert f.shape == (256, 256, 3) and f.std() > 10
    assert Image.open(overview).size[0] > 3 * Image.open(overview).size[1]
    # no silent overwrite
    assert main(["demo", "-o", str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["demo", "-o", str(tmp_path), "--overwrite"]) == 0


def test_fuse_png_and_nifti(tmp_path: Path) -> None:
    files = write_demo_files()
    out_png = tmp_path / "f.png"
    assert (
        main(
            [
                "fuse",
                str(files["mri_png"]),
                str(files["pet_png"]),
                "-o",
                str(out_png),
                "--modality",
                "pet",
                "--method",
                "average",
                "--no-register",
            ]
        )
        == 0
    )
    mri = np.asarray(Image.open(files["mri_png"]), dtype=float)
    fused = np.asarray(Image.open(out_png).convert("L"), dtype=float)
    assert np.corrcoef(mri.ravel(), fused.ravel())[0, 1] > 0.5
    out_nii = tmp_path / "f.nii.gz"
    assert (
        main(
            [
                "fuse",
                str(files["mri_nii"]),
                str(files["pet_nii"]),
                "-o",
                str(out_nii),
                "--modality",
                "pet",
                "--no-register",
            ]
        )
        == 0
    )
    import nibabel as nib

    img = nib.load(out_nii)
    assert img.shape == (98, 116, 94, 3)  # the NIfTI PET is grey uptake, rendered in the atlas colours: RGB
    mri_img = nib.load(files["mri_nii"])
    np.testing.assert_allclose(img.affine, mri_img.affine, atol=1e-5)
    for field in ("xyzt_units", "qform_code", "sform_code", "pixdim"):  # the MRI's header is kept
        np.testing.assert_array_equal(img.header[field], mri_img.header[field])


def test_fuse_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = write_demo_files()
    assert main(["fuse", str(tmp_path / "none.png"), str(files["pet_png"]), "-o", str(tmp_path / "o.png")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["fuse", str(files["mri_png"]), str(files["pet_png"]), "-o", str(files["pet_png"])]) == 2
    assert "input" in capsys.readouterr().err
    assert main(["fuse", str(files["mri_png"]), str(files["pet_nii"]), "-o", str(tmp_path / "o.png")]) == 2
    assert "both be 2D" in capsys.readouterr().err
    assert (
        main(["fuse", str(files["mri_png"]), str(files["pet_png"]), "-o", str(tmp_path / "o.png"), "--method", "nope"])
        == 2
    )
    assert "unknown fusion method" in capsys.readouterr().err
    assert main(["fuse", str(files["mri_png"]), str(files["pet_png"]), "--dicom-out", str(tmp_path / "d")]) == 2
    assert "--dicom-out needs volume inputs" in capsys.readouterr().err
    assert main(["fuse", "--pairs", str(tmp_path)]) == 2
    assert "output folder with -o" in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == []


def test_console_script_info() -> None:
    exe = Path(sys.executable).with_name("monai-fusion")
    cmd = [str(exe), "info"] if exe.exists() else [sys.executable, "-m", "monai_fusion.cli", "info"]
    res = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert res.returncode == 0, res.stderr
    assert "monai-fusion" in res.stdout and "max" in res.stdout


def test_fuse_folder_then_evaluate(few_real_pairs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fused"
    assert main(["fuse", "--pairs", str(few_real_pairs), "-o", str(out), "--method", "average"]) == 0
    written = sorted(out.rglob("*.png"))
    assert len(written) == 6
    assert np.asarray(Image.open(next((out / "PET-MRI").iterdir()))).shape == (256, 256, 3)
    assert np.asarray(Image.open(next((out / "CT-MRI").iterdir()))).shape == (256, 256)
    assert main(["fuse", "--pairs", str(few_real_pairs), "-o", str(out)]) == 2  # no silent overwrite
    assert "exist" in capsys.readouterr().err
    assert main(["fuse", "--pairs", str(few_real_pairs), "-o", str(few_real_pairs / "x")]) == 2
    assert "inside the input folder" in capsys.readouterr().err
    csv = tmp_path / "m.csv"
    assert (
        main(
            [
                "evaluate",
                "--pairs",
                str(few_real_pairs),
                "--fused",
                str(out),
                "--metrics",
                "EN",
                "SSIM",
                "PSNR",
                "--csv",
                str(csv),
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    for pair in ("CT-MRI", "PET-MRI", "SPECT-MRI"):
        assert pair in table
    lines = csv.read_text().strip().splitlines()
    assert len(lines) == 7 and "SSIM" in lines[0]
    assert main(["evaluate", "--pairs", str(few_real_pairs), "--fused", str(out), "--csv", str(csv)]) == 2
