"""Volume pair datalists and axial-slice datasets, on the embedded MNI152 volumes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from monai_fusion.data.demo import write_demo_files
from monai_fusion.data.volumes import VolumeSliceDataset, find_volume_pairs
from monai_fusion.transforms import fusion_preprocess
from monai_fusion.utils import FusionInputError


@pytest.fixture(scope="module")
def volume_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = write_demo_files(tmp_path_factory.mktemp("demo"))
    root = tmp_path_factory.mktemp("volumes")
    (root / "case01").mkdir()
    shutil.copy(files["mri_nii"], root / "case01" / "MRI.nii.gz")
    shutil.copy(files["pet_nii"], root / "case01" / "PET.nii.gz")
    return root


def test_find_volume_pairs(volume_root: Path, tmp_path: Path) -> None:
    items = find_volume_pairs(volume_root)
    assert items == [
        {
            "mri": str(volume_root / "case01" / "MRI.nii.gz"),
            "other": str(volume_root / "case01" / "PET.nii.gz"),
            "modality": "PET",
            "case": "case01",
            "pair_type": "PET-MRI",
        }
    ]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "MRI.nii.gz").write_bytes(b"x")
    with pytest.raises(FusionInputError, match="exactly one of CT, PET, SPECT"):
        find_volume_pairs(tmp_path)
    with pytest.raises(FusionInputError, match="does not exist"):
        find_volume_pairs(tmp_path / "nowhere")


def test_volume_slice_dataset(volume_root: Path) -> None:
    ds = VolumeSliceDataset(find_volume_pairs(volume_root), fusion_preprocess(register=False))
    assert 40 < len(ds) < 94  # empty slices above and below the head are skipped
    item = ds[len(ds) // 2]
    assert item["mri"].shape == item["other"].shape == (1, 98, 116)
    assert 0 <= float(item["other"].min()) and float(item["other"].max()) <= 1
    assert item["modality"] == "PET" and isinstance(item["slice_index"], int)
    assert torch.corrcoef(torch.stack([item["mri"].flatten(), item["other"].flatten()]))[0, 1] > 0.3
