"""The preset path (load -> register -> check -> normalise -> colour split) on real and embedded pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_fusion.data.demo import demo_slice_pair, write_demo_files
from monai_fusion.engines.inference import fuse_sample
from monai_fusion.fusers import get_fuser
from monai_fusion.transforms import displacement_error, fusion_preprocess
from monai_fusion.utils import FusionInputError


def test_real_pet_pair_without_registration(harvard_root: Path) -> None:
    item = {
        "mri": str(harvard_root / "PET-MRI/MRI/25016.png"),
        "other": str(harvard_root / "PET-MRI/PET/25016.png"),
        "modality": "PET",
    }
    pre = fusion_preprocess(register=False)
    s = pre(item)
    assert s["mri"].shape == s["other"].shape == s["other_cb"].shape == (1, 256, 256)
    assert float(s["mri"].max()) <= 1 and float(s["other"].min()) >= 0
    rgb = np.asarray(Image.open(item["other"]).convert("RGB"), dtype=np.float32) / 255
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(np.asarray(s["other"][0]), y, atol=1e-4)
    # the inverse of the preset puts the RGB PET back
    back = pre.inverse({k: s[k] for k in ("other", "other_cb", "other_cr")})
    np.testing.assert_allclose(np.moveaxis(np.asarray(back["other"]), 0, -1), rgb, atol=1e-4)
    # fusing the PET with itself through the whole path returns the PET's colours
    s2 = dict(s)
    s2["mri"] = s["other"].clone()
    fused = fuse_sample(s2, get_fuser("average"))["fused"]
    np.testing.assert_allclose(np.moveaxis(np.asarray(fused), 0, -1), rgb, atol=2e-3)


def test_ct_pair_stays_grey(harvard_root: Path) -> None:
    item = {
        "mri": str(harvard_root / "CT-MRI/MRI/16003.png"),
        "other": str(harvard_root / "CT-MRI/CT/16003.png"),
        "modality": "CT",
    }
    s = fusion_preprocess(register=False)(item)
    assert "other_cb" not in s
    fused = fuse_sample(s, get_fuser("max"))["fused"]
    assert fused.shape == (1, 256, 256)
    torch.testing.assert_close(
        torch.as_tensor(fused), torch.maximum(torch.as_tensor(s["mri"]), torch.as_tensor(s["other"]))
    )


def test_mismatched_shapes_without_registration(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(tmp_path / "m.png")
    Image.fromarray(rng.integers(0, 255, (32, 40), dtype=np.uint8)).save(tmp_path / "c.png")
    with pytest.raises(FusionInputError, match=r"c\.png.*carry no pixel size"):
        fusion_preprocess(register=False)(
            {"mri": str(tmp_path / "m.png"), "other": str(tmp_path / "c.png"), "modality": "CT"}
        )


def test_embedded_pair_registers_and_fuses() -> None:
    files = write_demo_files()
    truth = demo_slice_pair()
    item = {"mri": str(files["mri_png"]), "other": str(files["pet_png"]), "modality": "PET"}
    s = fusion_preprocess(register=True)(item)
    raw = fusion_preprocess(register=False)(item)
    # the recovered transform is the known misalignment, within half a pixel over the brain
    reg = s["other"].meta["registration"]
    rows, cols = np.nonzero(np.asarray(s["mri"][0]) > 0.1)
    brain_xy = np.stack([cols, rows], axis=1).astype(float)
    assert displacement_error(reg["matrix"], truth["true_transform"], brain_xy) < 0.5
    # and the registered PET luminance is the aligned PET's, far closer than before registration
    rgb = truth["pet_rgb_aligned"]
    y_true = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    err_reg = np.abs(np.asarray(s["other"][0]) - y_true).mean()
    err_raw = np.abs(np.asarray(raw["other"][0]) - y_true).mean()
    assert err_reg < 0.35 * err_raw
    fused = fuse_sample(s, get_fuser("max"))["fused"]
    assert fused.shape == (3, 256, 256) and 0 <= float(fused.min()) and float(fused.max()) <= 1
