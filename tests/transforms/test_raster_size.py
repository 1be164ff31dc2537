"""Raster pairs of different pixel sizes are refused before registration could misplace them; volumes, which
carry their spacing, are still resampled by registration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from monai_fusion.cli import main
from monai_fusion.data.demo import write_demo_files
from monai_fusion.transforms.io import CheckRasterSized
from monai_fusion.utils.errors import FusionInputError


def _resized(src: Path, size: int, dest: Path) -> Path:
    Image.open(src).resize((size, size)).save(dest)
    return dest


@pytest.mark.parametrize("size", [512, 200])
@pytest.mark.parametrize("register", ["--register", "--no-register"])
def test_a_pet_png_of_another_size_is_refused_with_both_sizes(
    size: int, register: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_demo_files()
    mri_size = Image.open(files["mri_png"]).size
    pet = _resized(files["pet_png"], size, tmp_path / f"pet{size}.png")
    out = tmp_path / "fused.png"
    assert main(["fuse", str(files["mri_png"]), str(pet), "-o", str(out), "--modality", "pet", register]) == 2
    err = capsys.readouterr().err
    assert f"is {size}x{size} pixels" in err and f"{mri_size[1]}x{mri_size[0]}" in err
    assert "carry no pixel size" in err and str(pet) in err and not out.exists()


def test_the_same_size_passes_and_volumes_are_left_to_registration() -> None:
    check = CheckRasterSized(keys=("mri", "other"))
    png = MetaTensor(torch.rand(1, 8, 8), meta={"spacing_known": False, "filename_or_obj": "a.png"})
    assert check({"mri": png, "other": png.clone()})["mri"] is png
    vol_a, vol_b = MetaTensor(torch.rand(1, 8, 8, 4)), MetaTensor(torch.rand(1, 4, 4, 2))  # spacing in the affine
    assert set(check({"mri": vol_a, "other": vol_b})) == {"mri", "other"}
    with pytest.raises(FusionInputError, match="b.png"):
        small = MetaTensor(torch.rand(1, 4, 4), meta={"spacing_known": False, "filename_or_obj": "b.png"})
        check({"mri": png, "other": small})
    assert np.isfinite(float(png.sum()))


@pytest.mark.parametrize("size", [512, 200])
def test_same_field_of_view_resamples_to_the_mri_size(
    size: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Said to show the same field of view, a PET of another size is resized, not misplaced: the fusion of the
    resized PET equals the fusion of the same-size PET within the resampling error."""
    files = write_demo_files()
    pet = _resized(files["pet_png"], size, tmp_path / f"pet{size}.png")
    common = ["--modality", "pet", "--method", "average", "--no-register"]
    out, ref = tmp_path / "fused.png", tmp_path / "ref.png"
    assert main(["fuse", str(files["mri_png"]), str(pet), "-o", str(out), *common, "--same-field-of-view"]) == 0
    assert (
        f"resized pet{size}.png from {size}x{size} to the MRI's size (--same-field-of-view)" in capsys.readouterr().err
    )
    assert main(["fuse", str(files["mri_png"]), str(files["pet_png"]), "-o", str(ref), *common]) == 0
    got, want = (np.asarray(Image.open(p), dtype=float) for p in (out, ref))
    assert got.shape == want.shape
    assert np.abs(got - want).mean() < 2 and np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.995  # 8 px off: 27, 0.74
