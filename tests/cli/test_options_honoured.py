"""Options do what their help says for every input kind, or are refused for that kind with a message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monai_fusion.cli import main
from monai_fusion.data.demo import write_demo_files


def test_overview_with_volumes_shows_three_planes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    from PIL import Image

    files = write_demo_files()
    out, ov = tmp_path / "f.nii.gz", tmp_path / "ov.png"
    args = ["fuse", str(files["mri_nii"]), str(files["pet_nii"]), "-o", str(out), "--no-register", "--no-progress"]
    assert main([*args, "--overview", str(ov)]) == 0
    assert "colour map atlas; percentiles 0.5 to 99.5" in capsys.readouterr().err
    with Image.open(ov) as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
    assert rgb.shape[0] > 0.7 * rgb.shape[1]  # three rows of four panels
    third = rgb.shape[0] // 3
    for row in (rgb[:third], rgb[third : 2 * third], rgb[2 * third :]):  # every plane shows colour on anatomy
        assert (np.ptp(row, axis=-1) > 100).mean() > 0.01


def test_no_progress_hides_the_bar_of_fuse_pairs(
    few_real_pairs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fuse", "--pairs", str(few_real_pairs), "--method", "average"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    assert "fusing (average)" in capsys.readouterr().err  # the bar, by default
    assert main([*args, "-o", str(tmp_path / "b"), "--no-progress"]) == 0
    assert "fusing (average)" not in capsys.readouterr().err
    assert len(list((tmp_path / "b").rglob("*.png"))) == 6


def test_default_registration_of_two_files_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = write_demo_files()
    args = ["fuse", str(files["mri_png"]), str(files["pet_png"]), "--modality", "pet", "--method", "average"]
    assert main([*args, "-o", str(tmp_path / "r.png")]) == 0
    err = capsys.readouterr().err
    assert f"registered {Path(files['pet_png']).name} onto the MRI: rigid, rotation" in err
    assert "pass --no-register for inputs that are already aligned" in err
    assert main([*args, "-o", str(tmp_path / "n.png"), "--no-register"]) == 0
    assert "registered" not in capsys.readouterr().err


def test_swapped_volumes_are_refused_by_their_units_and_dicom_modality(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import nibabel as nib
    import numpy as np

    from monai_fusion.data.demo import demo_volume_pair
    from monai_fusion.data.demo_study import write_series

    pair = demo_volume_pair(4)
    ct, mri = tmp_path / "ct.nii.gz", tmp_path / "mri.nii.gz"
    hu = np.where(pair["mri"][0] > 0.05, 10 + 25 * pair["mri"][0], -1000.0).astype(np.float32)  # a CT in HU
    nib.save(nib.Nifti1Image(hu, pair["affine"]), ct)
    nib.save(nib.Nifti1Image(pair["mri"][0], pair["affine"]), mri)
    common = ["--modality", "ct", "--method", "average", "--no-register", "--no-progress"]
    assert main(["fuse", str(ct), str(mri), "-o", str(tmp_path / "s.nii.gz"), *common]) == 2
    err = capsys.readouterr().err
    assert "the inputs look swapped: the volume given as the MRI holds values down to -1000" in err
    assert f"({ct} given as the MRI, {mri} as the CT)" in err and not (tmp_path / "s.nii.gz").exists()
    assert main(["fuse", str(ct), str(mri), "-o", str(tmp_path / "f.nii.gz"), *common, "--force"]) == 0
    assert "WARNING: the inputs look swapped" in capsys.readouterr().err
    assert main(["fuse", str(mri), str(ct), "-o", str(tmp_path / "ok.nii.gz"), *common]) == 0
    assert "swapped" not in capsys.readouterr().err
    mr_dir = write_series(tmp_path / "MR", pair["mri"], pair["affine"], "1.2.826.0.1.3680043.8.498.901")
    pt_dir = write_series(tmp_path / "PT", pair["pet_aligned"], pair["affine"], "1.2.826.0.1.3680043.8.498.902", "PT")
    pet = ["--modality", "pet", "--method", "average", "--no-register", "--no-progress"]
    assert main(["fuse", str(pt_dir), str(mr_dir), "-o", str(tmp_path / "d.nii.gz"), *pet]) == 2
    assert "the series given as the MRI is of DICOM Modality PT" in capsys.readouterr().err


def test_ct_given_as_the_mri_is_refused_naming_both_files(
    harvard_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct, mri = harvard_root / "CT-MRI" / "CT" / "2005.png", harvard_root / "CT-MRI" / "MRI" / "2005.png"
    common = ["--modality", "ct", "--method", "average", "--no-register"]
    assert main(["fuse", str(ct), str(mri), "-o", str(tmp_path / "s.png"), *common]) == 2
    err = capsys.readouterr().err
    assert f"the inputs look swapped: {ct} (given as the MRI) has more bone-bright head than {mri}" in err
    assert "pass --force" in err and not (tmp_path / "s.png").exists()
    assert main(["fuse", str(ct), str(mri), "-o", str(tmp_path / "f.png"), *common, "--force"]) == 0
    assert "WARNING: the inputs look swapped" in capsys.readouterr().err
    assert main(["fuse", str(mri), str(ct), "-o", str(tmp_path / "ok.png"), *common]) == 0
    assert "swapped" not in capsys.readouterr().err


def test_no_atlas_ct_mri_pair_in_the_right_order_looks_swapped(harvard_root: Path) -> None:
    import numpy as np
    from PIL import Image

    from monai_fusion.data.checks import looks_swapped

    def grey(p: Path) -> np.ndarray:
        return np.asarray(Image.open(p).convert("L"), dtype=np.float32) / 255

    cts = sorted((harvard_root / "CT-MRI" / "CT").glob("*.png"))
    flagged = [p.name for p in cts if looks_swapped(grey(p.parent.parent / "MRI" / p.name), grey(p), "CT")]
    assert flagged == []
    reversed_caught = sum(looks_swapped(grey(p), grey(p.parent.parent / "MRI" / p.name), "CT") for p in cts)
    assert reversed_caught == len(cts)


def test_networks_use_shipped_weights_or_given_ones_random_only_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from monai_fusion.networks import MSRPAN, save_checkpoint

    files = write_demo_files()
    args = ["fuse", str(files["mri_png"]), str(files["pet_png"]), "--modality", "pet", "--no-register"]
    assert main([*args, "-o", str(tmp_path / "a.png"), "--method", "msrpan"]) == 0  # the shipped weights
    assert "WARNING" not in capsys.readouterr().err and (tmp_path / "a.png").is_file()

    assert main([*args, "-o", str(tmp_path / "r.png"), "--method", "msrpan", "--random-weights"]) == 0
    err = capsys.readouterr().err
    assert err.count("WARNING: msrpan: randomly initialised") == 1 and "warnings.warn" not in err  # one clean line
    assert main([*args, "-o", str(tmp_path / "x.png"), "--method", "msrpan", "--random-weights", "--weights", "m"]) == 2
    assert "give one of them" in capsys.readouterr().err

    torch.manual_seed(0)
    ckpt = tmp_path / "msrpan.pt"
    save_checkpoint(MSRPAN(), ckpt)
    assert main([*args, "-o", str(tmp_path / "w.png"), "--method", "msrpan", "--weights", str(ckpt)]) == 0
    assert "WARNING" not in capsys.readouterr().err

    assert main([*args, "-o", str(tmp_path / "x.png"), "--method", "average", "--weights", str(ckpt)]) == 2
    assert "method 'average' takes no weights" in capsys.readouterr().err
    missing = tmp_path / "vgg19.pth"
    assert main([*args, "-o", str(tmp_path / "z.png"), "--method", "zero_learning", "--weights", str(missing)]) == 2
    assert f"weights not found at {missing}" in capsys.readouterr().err


def test_options_of_the_other_form_of_fuse_are_refused_by_name(
    few_real_pairs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = ["fuse", "--pairs", str(few_real_pairs), "--method", "average", "-o", str(tmp_path / "p")]
    assert main([*pairs, "--overview", str(tmp_path / "ov.png"), "--batch-size", "4", "--modality", "ct"]) == 2
    err = capsys.readouterr().err
    assert "fuse with --pairs: --overview, --dicom-out" not in err  # only what was given is named
    assert "fuse with --pairs: --overview, --modality, --batch-size cannot be used (for two files only)" in err
    assert not (tmp_path / "p").exists() and not (tmp_path / "ov.png").exists()
    files = write_demo_files()
    two = ["fuse", str(files["mri_png"]), str(files["pet_png"]), "--method", "average", "-o", str(tmp_path / "t.png")]
    assert main([*two, "--pair-types", "PET-MRI"]) == 2
    assert "fuse without --pairs: --pair-types cannot be used (for a --pairs folder only)" in capsys.readouterr().err
    assert not (tmp_path / "t.png").exists()


def test_missing_weights_name_the_command_line_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monai_fusion.fusers import learned

    files = write_demo_files()
    args = ["fuse", str(files["mri_png"]), str(files["pet_png"]), "--modality", "pet", "--no-register"]
    monkeypatch.setattr(learned, "shipped_weights_file", lambda name: tmp_path / f"{name}.pt")  # a broken install
    assert main([*args, "-o", str(tmp_path / "m.png"), "--method", "msdra"]) == 2
    err = capsys.readouterr().err
    assert f"shipped weights {tmp_path / 'msdra.pt'} are missing" in err
    assert "--weights PATH names the file" in err and "--random-weights runs a randomly initialised" in err
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert main([*args, "-o", str(tmp_path / "z.png"), "--method", "zero_learning"]) == 2
    err = capsys.readouterr().err
    assert "ImageNet vgg19 weights not found" in err and "--weights PATH names the file" in err
    assert "--random-weights" not in err  # not a network: random weights are no option there
    assert not (tmp_path / "m.png").exists() and not (tmp_path / "z.png").exists()


def test_python_warnings_reach_the_console_as_one_clean_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import warnings

    from monai_fusion import cli

    def warn(*_: object) -> None:
        warnings.warn("the demo pairs stand in for\n   the atlas", UserWarning, stacklevel=1)

    monkeypatch.setattr(cli, "run_demo", warn)
    assert main(["demo"]) == 0
    err = capsys.readouterr().err
    assert err == "WARNING: the demo pairs stand in for the atlas\n"  # no file name, line number or source line


def test_volumes_on_two_grids_without_registration_are_resampled_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import nibabel as nib
    import numpy as np

    files = write_demo_files()
    img = nib.load(str(files["pet_nii"]))
    half = nib.Nifti1Image(np.asarray(img.dataobj)[::2, ::2, ::2].copy(), img.affine @ np.diag([2, 2, 2, 1]))
    nib.save(half, str(tmp_path / "pet_half.nii.gz"))  # the same field of view on a grid of twice the voxel size
    args = ["fuse", str(files["mri_nii"]), str(tmp_path / "pet_half.nii.gz"), "--method", "average", "--no-register"]
    assert main([*args, "-o", str(tmp_path / "f.nii.gz"), "--modality", "pet"]) == 0
    assert "resampled pet_half.nii.gz onto the MRI's grid by the files' geometry" in capsys.readouterr().err
    assert nib.load(str(tmp_path / "f.nii.gz")).shape[:3] == nib.load(str(files["mri_nii"])).shape[:3]


def test_a_failed_registration_is_reported_not_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    from PIL import Image
    from scipy.ndimage import shift

    files = write_demo_files()
    pet = np.asarray(Image.open(files["pet_png"])).astype(float)
    far = np.stack([shift(pet[..., c], (60, 100), order=1) for c in range(3)], -1)  # beyond what registration finds
    Image.fromarray(far.clip(0, 255).astype(np.uint8)).save(tmp_path / "pet_far.png")
    args = ["fuse", str(files["mri_png"]), str(tmp_path / "pet_far.png"), "--modality", "pet", "--method", "average"]
    assert main([*args, "-o", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    found = re.search(r"pet_far.png onto the MRI failed: only (\d+)% of its foreground lies inside the MRI's head", err)
    assert found and int(found.group(1)) < 10, err  # the share found (3 or 4% as the demo PNG rounds) is named
    assert not (tmp_path / "f.png").exists()
    assert main(["fuse", str(files["mri_png"]), str(files["pet_png"]), *args[3:], "-o", str(tmp_path / "ok.png")]) == 0
