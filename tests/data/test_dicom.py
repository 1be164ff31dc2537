"""The DICOM Secondary Capture series writer: RGB/grey pixels, geometry, identifiers, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset

from monai_fusion.data.dicom import SECONDARY_CAPTURE_SOP_CLASS, series_files, write_dicom_series
from monai_fusion.data.io import read_volume
from monai_fusion.data.quantise import rgb_to_uint8
from monai_fusion.utils.errors import FusionInputError


def _oblique_affine() -> np.ndarray:
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    aff = np.eye(4)
    aff[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([0.9, 1.1, 2.5])
    aff[:3, 3] = [-40.0, 12.5, 7.0]
    return aff


def test_rgb_series_pixels_geometry_and_identifiers(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vol = rng.random((3, 7, 5, 4)).astype(np.float32)  # (C, X, Y, Z)
    ref = Dataset()
    ref.PatientName, ref.PatientID, ref.StudyInstanceUID, ref.AccessionNumber = "Doe^Jane", "P7", "1.2.3.9", "A1"
    out = write_dicom_series(vol, _oblique_affine(), tmp_path / "rgb", reference=ref, method="dwt")
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["0000.dcm", "0001.dcm", "0002.dcm", "0003.dcm"]
    ds = pydicom.dcmread(files[2])
    assert ds.SOPClassUID == SECONDARY_CAPTURE_SOP_CLASS
    assert (ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.PlanarConfiguration) == ("RGB", 3, 0)
    assert (ds.Rows, ds.Columns, ds.InstanceNumber) == (5, 7, 3)
    assert (str(ds.PatientName), ds.PatientID, ds.StudyInstanceUID, ds.AccessionNumber) == (
        "Doe^Jane",
        "P7",
        "1.2.3.9",
        "A1",
    )
    assert ds.PatientBirthDate == "" and "dwt" in ds.SeriesDescription
    expected = np.transpose(rgb_to_uint8(vol[:, :, :, 2]), (2, 1, 0))  # (rows=Y, cols=X, 3), the luminance kept
    np.testing.assert_array_equal(ds.pixel_array, expected)
    # geometry: SimpleITK reads the RGB series back on the written grid (LPS = diag(-1, -1, 1) RAS)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    img = reader.Execute()
    assert img.GetNumberOfComponentsPerPixel() == 3 and img.GetSize() == (7, 5, 4)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ _oblique_affine()
    np.testing.assert_allclose(img.GetSpacing(), [0.9, 1.1, 2.5], atol=1e-5)
    np.testing.assert_allclose(img.GetOrigin(), lps[:3, 3], atol=1e-4)
    np.testing.assert_allclose(np.reshape(img.GetDirection(), (3, 3)), lps[:3, :3] / [0.9, 1.1, 2.5], atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img)[2], expected)


def test_grey_series_values_and_new_uids(tmp_path: Path) -> None:
    vol = np.linspace(-0.1, 1.1, 6 * 4 * 3, dtype=np.float32).reshape(1, 6, 4, 3)
    aff = np.diag([1.0, 1.0, 3.0, 1.0])
    a = write_dicom_series(vol, aff, tmp_path / "a")
    b = write_dicom_series(vol, aff, tmp_path / "b")
    back = read_volume(a, "MRI")
    np.testing.assert_array_equal(back.array, np.rint(np.clip(vol, 0, 1) * 255))
    da, db = pydicom.dcmread(a / "0000.dcm"), pydicom.dcmread(b / "0000.dcm")
    assert da.PhotometricInterpretation == "MONOCHROME2" and da.BitsStored == 8
    assert da.SeriesInstanceUID != db.SeriesInstanceUID and da.SOPInstanceUID != db.SOPInstanceUID
    assert series_files(a)[0] == da.SeriesInstanceUID and len(series_files(a)[1]) == 3


def test_writer_refusals_leave_nothing(tmp_path: Path) -> None:
    vol = np.full((1, 4, 4, 2), 0.5, dtype=np.float32)
    out = write_dicom_series(vol, np.eye(4), tmp_path / "s")
    first = pydicom.dcmread(out / "0000.dcm").SeriesInstanceUID
    with pytest.raises(FusionInputError, match="not empty"):
        write_dicom_series(vol, np.eye(4), out)
    assert pydicom.dcmread(out / "0000.dcm").SeriesInstanceUID == first
    with pytest.raises(FusionInputError, match="refusing to touch an input"):
        write_dicom_series(vol, np.eye(4), tmp_path / "s" / "inner", protect=[tmp_path / "s"])
    with pytest.raises(FusionInputError, match=r"\(1\|3, X, Y, Z\)"):
        write_dicom_series(vol[:, :, :, 0], np.eye(4), tmp_path / "bad")
    write_dicom_series(vol * 0.2, np.eye(4), out, overwrite=True)
    assert pydicom.dcmread(out / "0000.dcm").SeriesInstanceUID != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary or old folder left


def test_patient_mismatch_is_the_one_rule_of_the_cli_and_deploy() -> None:
    from monai_fusion.data.dicom import patient_mismatch

    assert patient_mismatch({"PatientID": "A"}, {"PatientID": "A"}, "PET") is None
    msg = patient_mismatch({"PatientID": "A"}, {"PatientID": "B"}, "PET")
    assert msg == "the MRI is of PatientID 'A' but the PET series is of PatientID 'B'"
    assert patient_mismatch({}, {"PatientID": "B"}, "CT") is not None  # a missing ID is not a match
