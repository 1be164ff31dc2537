"""Clinical intensity windows: CT in Hounsfield units, PET in SUV from its DICOM tags, else percentiles.

The series are written here with pydicom (a CT with a rescale intercept, a PET in Bq/ml with the SUV tags), so the
expected windows follow from the values written, not from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from monai_fusion.commands import fuse_files
from monai_fusion.data.demo import demo_volume_pair
from monai_fusion.data.units import parse_window, suv_factor
from monai_fusion.transforms import NormalizeModality, fusion_preprocess
from monai_fusion.utils.errors import FusionInputError

HALF_LIFE_S = 6586.2  # F-18
DOSE_BQ = 370e6
WEIGHT_KG = 70.0
SUV_MAX = 8.0  # the written PET's highest SUV
ELAPSED_S = 3600.0  # injection 09:30, series 10:30


def _pet_tags(**changes: object) -> dict[str, object]:
    info = Dataset()
    info.RadionuclideTotalDose = f"{DOSE_BQ:g}"
    info.RadionuclideHalfLife = f"{HALF_LIFE_S:g}"
    info.RadiopharmaceuticalStartTime = "093000"
    tags: dict[str, object] = {
        "Units": "BQML",
        "PatientWeight": f"{WEIGHT_KG:g}",
        "DecayCorrection": "START",
        "RadiopharmaceuticalInformationSequence": [info],
    }
    tags.update(changes)
    return tags


def _write(folder: Path, vol: np.ndarray, affine: np.ndarray, modality: str, sop: str, **extra: object) -> Path:
    """An int16 series of ``vol`` ``(X, Y, Z)`` with RescaleIntercept -1024 for CT (stored = value + 1024)."""
    folder.mkdir(parents=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    cosines = lps[:3, :3] / spacing
    intercept = -1024.0 if modality == "CT" else 0.0
    series, frame = generate_uid(), generate_uid()
    for z in range(vol.shape[2]):
        meta = FileMetaDataset()
        uid = generate_uid()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop, uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"{z:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality, ds.InstanceNumber = sop, uid, modality, z + 1
        ds.PatientID, ds.PatientName, ds.StudyInstanceUID = "CW-1", "Window^Test", "1.2.826.0.1.3680043.8.498.7"
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series, frame
        ds.ImagePositionPatient = [f"{v:.4f}" for v in lps[:3, 3] + lps[:3, 2] * z]
        ds.ImageOrientationPatient = [f"{v:g}" for v in np.concatenate([cosines[:, 0], cosines[:, 1]])]
        ds.PixelSpacing, ds.SliceThickness = [f"{spacing[1]:g}", f"{spacing[0]:g}"], f"{spacing[2]:g}"
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = *vol.shape[1::-1], 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = "1", f"{intercept:g}"
        ds.SeriesDate, ds.SeriesTime = "20260101", "103000"
        for key, value in extra.items():
            setattr(ds, key, value)
        ds.PixelData = np.rint(vol[:, :, z].T - intercept).astype(np.int16).tobytes()
        ds.save_as(folder / f"{z:03d}.dcm", enforce_file_format=True)
    return folder


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """MRI, CT (HU), PET (Bq/ml with SUV tags) and PET without SUV tags, co-registered, from the demo volumes."""
    root = tmp_path_factory.mktemp("clinical")
    pair = demo_volume_pair(4)
    mri, pet, affine = pair["mri"][0], pair["pet"][0], pair["affine"]
    head = mri > 0.05
    ct = np.where(head, 20.0 + 25.0 * mri, -1000.0)  # tissue 20-45 HU, air -1000 HU
    decayed = DOSE_BQ * 2.0 ** (-ELAPSED_S / HALF_LIFE_S)
    bqml = SUV_MAX * pet / pet.max() * decayed / (WEIGHT_KG * 1000.0)
    return {
        "MRI": _write(root / "MRI", mri * 1000, affine, "MR", "1.2.840.10008.5.1.4.1.1.4"),
        "CT": _write(root / "CT", ct, affine, "CT", "1.2.840.10008.5.1.4.1.1.2"),
        "PET": _write(root / "PET", bqml, affine, "PT", "1.2.840.10008.5.1.4.1.1.128", **_pet_tags()),
        "PET_NOSUV": _write(root / "PET_NOSUV", bqml, affine, "PT", "1.2.840.10008.5.1.4.1.1.128"),
        "ct_hu": ct,
    }


def _pre(study: dict[str, Path], other: str, modality: str, **kwargs: object) -> dict:
    return fusion_preprocess(register=False, **kwargs)(
        {"mri": str(study["MRI"]), "other": str(study[other]), "modality": modality}
    )


def test_suv_factor_follows_the_body_weight_definition() -> None:
    ds = Dataset()
    for key, value in _pet_tags().items():
        setattr(ds, key, value)
    ds.SeriesDate, ds.SeriesTime = "20260101", "103000"
    factor, note = suv_factor(ds)
    want = WEIGHT_KG * 1000 / (DOSE_BQ * 0.5 ** (ELAPSED_S / HALF_LIFE_S))
    assert factor == pytest.approx(want, rel=1e-9) and "70 kg" in note
    ds.DecayCorrection = "ADMIN"
    assert suv_factor(ds)[0] == pytest.approx(WEIGHT_KG * 1000 / DOSE_BQ)
    ds.Units = "GML"
    assert suv_factor(ds) == (1.0, "Units GML (values are SUVbw already)")
    for key, value, words in (
        ("Units", "CNTS", "Units is CNTS"),
        ("PatientWeight", "", "PatientWeight"),
        ("SeriesTime", "080000", "after the series start"),
        ("DecayCorrection", "NONE", "DecayCorrection is NONE"),
    ):
        bad = Dataset()
        for k, v in {**_pet_tags(), key: value}.items():
            setattr(bad, k, v)
        bad.SeriesDate, bad.SeriesTime = "20260101", value if key == "SeriesTime" else "103000"
        factor, note = suv_factor(bad)
        assert factor is None and words in note


def test_ct_in_hounsfield_units_gets_the_named_window(study: dict[str, Path]) -> None:
    ct_hu = np.rint(study["ct_hu"])  # stored as integers
    for window, (low, high) in (("auto", (0.0, 80.0)), ("bone", (-800.0, 2000.0)), ("-100,300", (-100.0, 300.0))):
        got = np.asarray(_pre(study, "CT", "CT", normalize={"window": window})["other"])[0]
        want = np.clip((ct_hu - low) / (high - low), 0, 1)
        np.testing.assert_allclose(got, want, atol=1e-5)
    note = _pre(study, "CT", "CT")["other"].meta["intensity_window"]
    assert note == "CT brain window (level 40, width 80 HU)"


def test_pet_with_suv_tags_is_windowed_in_suv(study: dict[str, Path]) -> None:
    sample = _pre(study, "PET", "PET", colormap="none")
    assert float(sample["other"].max()) == pytest.approx(SUV_MAX / 10.0, abs=1e-3)  # SUV 8 in a 0-10 window
    assert sample["other"].meta["intensity_window"].startswith("SUV window 0 to 10 (SUVbw: 70 kg, 370 MBq")
    narrow = _pre(study, "PET", "PET", colormap="none", normalize={"window": "0,4"})
    assert float(narrow["other"].max()) == pytest.approx(1.0)
    assert float((np.asarray(narrow["other"]) >= 1.0).mean()) > float((np.asarray(sample["other"]) >= 1.0).mean())


def test_pet_without_suv_tags_falls_back_to_percentiles_with_a_warning(study: dict[str, Path]) -> None:
    with pytest.warns(UserWarning, match=r"PET normalised by percentiles, not SUV .*Units is missing"):
        sample = _pre(study, "PET_NOSUV", "PET")
    assert sample["other"].meta["intensity_window"].startswith("percentiles 0.5 to 99.5")
    with pytest.raises(FusionInputError, match=r"window '0,5': .*PET_NOSUV has no clinical units"):
        _pre(study, "PET_NOSUV", "PET", normalize={"window": "0,5"})


def test_windows_that_do_not_fit_the_image_are_refused(study: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FusionInputError, match=r"window 'bone' is a CT window; .*PET in SUV"):
        _pre(study, "PET", "PET", normalize={"window": "bone"})
    png = MetaTensor(
        torch.full((1, 8, 8), 100.0), meta={"modality": "CT", "value_max": 255.0, "filename_or_obj": "ct.png"}
    )
    png[0, :4] = 0
    with pytest.raises(FusionInputError, match=r"window 'brain': ct.png is an integer image file"):
        NormalizeModality(window="brain")(png)
    mri = MetaTensor(png.clone(), meta={**png.meta, "modality": "MRI"})
    assert float(NormalizeModality(window="brain")(mri).max()) == pytest.approx(100 / 255)  # the MRI keeps its range
    nifti_ct = MetaTensor(torch.linspace(0, 100, 64).reshape(1, 4, 4, 4), meta={"modality": "CT"})  # no air: not HU
    with pytest.raises(FusionInputError, match="no clinical units"):
        NormalizeModality(window="brain")(nifti_ct)
    for bad in ("wide", "5,1", "1,2,3", "a,b"):
        with pytest.raises(FusionInputError, match="window="):
            parse_window(bad)


def test_cli_records_window_and_colour_map_in_both_outputs(study: dict[str, Path], tmp_path: Path) -> None:
    res = fuse_files(
        str(study["MRI"]),
        str(study["CT"]),
        str(tmp_path / "ct.nii.gz"),
        modality="ct",
        register=False,
        window="bone",
        colormap="bone",
        dicom_out=str(tmp_path / "dicom"),
    )
    assert res["fused"].shape[0] == 3  # the bone colour map makes the CT-MRI fusion RGB
    descrip = nib.load(str(tmp_path / "ct.nii.gz")).header["descrip"].tobytes().decode()
    assert descrip.startswith("CT: colour map bone; CT bone window (level 600, width 2800 HU)")
    ds = pydicom.dcmread(next((tmp_path / "dicom").glob("*.dcm")))
    assert "CT: colour map bone; CT bone window" in ds.DerivationDescription
    assert ds.PhotometricInterpretation == "RGB"
    grey = fuse_files(str(study["MRI"]), str(study["CT"]), str(tmp_path / "grey.nii.gz"), modality="ct", register=False)
    assert grey["fused"].shape[0] == 1  # CT stays grey by default
