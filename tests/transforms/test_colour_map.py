"""Grey PET/SPECT (and, on request, CT) rendered through a named colour map inside the preset path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_fusion.data.demo import write_demo_files
from monai_fusion.engines.inference import fuse_sample, processing_notes
from monai_fusion.fusers import get_fuser
from monai_fusion.transforms import ColourMap, ColourMapd, fusion_preprocess, rgb_to_luminance
from monai_fusion.utils.colormaps import COLORMAPS, apply_colormap, colormap_lut, wba_pet_colormap
from monai_fusion.utils.errors import FusionInputError


@pytest.mark.parametrize("name", ["hot", "jet"])
def test_hot_and_jet_are_matplotlibs(name: str) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    want = matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3]
    np.testing.assert_allclose(colormap_lut(name)[1:], want[1:], atol=0.01)  # entry 0 is black (background)


@pytest.mark.parametrize("name", list(COLORMAPS))
def test_every_table_starts_black_and_stays_in_range(name: str) -> None:
    lut = colormap_lut(name)
    assert lut.shape == (256, 3) and np.all(lut[0] == 0) and lut.min() >= 0 and lut.max() <= 1
    assert rgb_to_luminance(lut.T[:, None])[0, 0, -1] > 0.1  # the top of the window is not black


def test_bone_leaves_soft_tissue_grey_and_tints_bone() -> None:
    lut = colormap_lut("bone")
    soft, bone = lut[100], lut[250]
    assert np.ptp(soft) < 1e-9 and bone[0] > bone[2] + 0.2  # ivory: red above blue


def test_colour_map_transform_equals_the_table_lookup() -> None:
    grey = MetaTensor(torch.rand(1, 5, 6, 7), meta={"modality": "PET"})
    rgb = ColourMap("atlas")(grey)
    assert isinstance(rgb, MetaTensor) and rgb.shape == (3, 5, 6, 7) and rgb.meta["colormap"] == "atlas"
    np.testing.assert_allclose(np.asarray(rgb), apply_colormap(np.asarray(grey), wba_pet_colormap()), atol=1e-6)
    with pytest.raises(FusionInputError, match="'viridis' is not a known colour map"):
        ColourMap("viridis")
    with pytest.raises(FusionInputError, match="expected a channel-first image with 1 channels"):
        ColourMap()(torch.rand(3, 4, 4))


def test_colour_map_choice_by_modality_and_by_name() -> None:
    grey = MetaTensor(torch.rand(1, 4, 4, 4))
    assert ColourMapd("other")({"other": grey, "modality": "PET"})["other"].shape[0] == 3
    assert ColourMapd("other")({"other": grey, "modality": "SPECT"})["other"].shape[0] == 3
    kept = ColourMapd("other")({"other": grey.clone(), "modality": "CT"})["other"]
    assert kept.shape[0] == 1 and kept.meta["colormap"] == "none"  # CT stays grey unless a map is named
    assert ColourMapd("other", colormap="bone")({"other": grey, "modality": "CT"})["other"].shape[0] == 3
    assert ColourMapd("other", colormap="none")({"other": grey, "modality": "PET"})["other"].shape[0] == 1
    rgb = MetaTensor(torch.rand(3, 4, 4), meta={"filename_or_obj": "pet.png"})
    assert ColourMapd("other")({"other": rgb, "modality": "PET"})["other"] is rgb  # atlas colours are kept
    with pytest.raises(FusionInputError, match="colormap 'hot': pet.png is already a colour"):
        ColourMapd("other", colormap="hot")({"other": rgb, "modality": "PET"})


def test_a_grey_pet_volume_is_fused_in_colour_on_the_library_path() -> None:
    files = write_demo_files()
    pair = {"mri": str(files["mri_nii"]), "other": str(files["pet_nii"]), "modality": "PET"}
    sample = fusion_preprocess(register=False)(pair)
    assert processing_notes(sample)["colormap"] == "atlas" and "other_cb" in sample
    fused = fuse_sample(sample, get_fuser("laplacian"))["fused"]
    assert fused.shape[0] == 3 and fused.shape[1:] == sample["mri"].shape[1:]
    chroma = np.ptp(np.asarray(fused), axis=0)
    assert chroma.max() > 0.3  # colour where the PET has uptake
    grey = fuse_sample(fusion_preprocess(register=False, colormap="none")(pair), get_fuser("laplacian"))["fused"]
    assert grey.shape[0] == 1
