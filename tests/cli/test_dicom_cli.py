"""`monai-fusion fuse` on DICOM series folders: NIfTI and DICOM outputs, series choice, patients, refusals."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from monai_fusion import __version__
from monai_fusion.cli import main
from monai_fusion.data.demo import demo_volume_pair, write_demo_files
from monai_fusion.data.dicom import SECONDARY_CAPTURE_SOP_CLASS


def _sitk_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_fuse_dicom_series_to_nifti_and_dicom(
    dicom_pair: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nii, dcm = tmp_path / "fused.nii.gz", tmp_path / "fused_dicom"
    assert (
        main(
            [
                "fuse",
                str(dicom_pair["mri"]),
                str(dicom_pair["pet"]),
                "-o",
                str(nii),
                "--dicom-out",
                str(dcm),
                "--modality",
                "pet",
                "--method",
                "laplacian",
                "--colormap",
                "none",  # grey, so the pixels compare with SimpleITK's reading (colour: test_clinical_windows)
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "98x116x94" in captured.out and "total" in captured.out
    assert "94/94" in captured.err  # the progress bar ran over every slice
    files = sorted(dcm.iterdir())
    assert len(files) == 94 and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    mri_ds = pydicom.dcmread(next(dicom_pair["mri"].iterdir()))
    out_ds = [pydicom.dcmread(f) for f in files]
    first = out_ds[0]
    assert first.SOPClassUID == SECONDARY_CAPTURE_SOP_CLASS == first.file_meta.MediaStorageSOPClassUID
    assert first.PhotometricInterpretation == "MONOCHROME2" and first.SamplesPerPixel == 1  # --colormap none
    assert first.BitsAllocated == 8 and (first.Rows, first.Columns) == (116, 98)
    for kw in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyID",
        "AccessionNumber",
    ):
        assert str(first.data_element(kw).value) == str(mri_ds.data_element(kw).value), kw
    assert first.PatientID == "MF-0001" and first.AccessionNumber == "ACC42"
    assert first.SeriesInstanceUID != mri_ds.SeriesInstanceUID
    assert len({d.SeriesInstanceUID for d in out_ds}) == 1
    sops = {d.SOPInstanceUID for d in out_ds}
    assert len(sops) == 94 and mri_ds.SOPInstanceUID not in sops
    assert "laplacian" in first.SeriesDescription and __version__ in first.SeriesDescription
    assert "laplacian" in first.DerivationDescription and __version__ in first.DerivationDescription
    np.testing.assert_allclose(
        [float(v) for v in first.ImageOrientationPatient], [float(v) for v in mri_ds.ImageOrientationPatient], atol=1e-6
    )
    np.testing.assert_allclose(
        [float(v) for v in first.ImagePositionPatient], [float(v) for v in mri_ds.ImagePositionPatient], atol=1e-3
    )
    assert [float(v) for v in first.PixelSpacing] == [2.0, 2.0] and float(first.SliceThickness) == 2.0

    # SimpleITK reads the fused series on the MRI's grid, with the fusion's values in 8 bits
    mri_img, fused_img = _sitk_series(dicom_pair["mri"]), _sitk_series(dcm)
    assert fused_img.GetSize() == mri_img.GetSize() == (98, 116, 94)
    np.testing.assert_allclose(fused_img.GetOrigin(), mri_img.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(fused_img.GetSpacing(), mri_img.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(fused_img.GetDirection(), mri_img.GetDirection(), atol=1e-6)
    fused_xyz = np.transpose(sitk.GetArrayFromImage(fused_img), (2, 1, 0)).astype(float)
    lib = np.asarray(nib.load(nii).dataobj)  # the library's float fusion, written by the same run
    assert np.abs(fused_xyz - np.rint(np.clip(lib, 0, 1) * 255)).max() <= 1
    assert lib.std() > 0.05 and np.corrcoef(lib.ravel(), demo_volume_pair(2)["mri"][0].ravel())[0, 1] > 0.6

    # existing output: refused without --overwrite, replaced with it
    names = {f.name: f.stat().st_mtime_ns for f in files}
    assert (
        main(
            [
                "fuse",
                str(dicom_pair["mri"]),
                str(dicom_pair["pet"]),
                "--dicom-out",
                str(dcm),
                "--no-register",
                "--no-progress",
            ]
        )
        == 2
    )
    assert "exists and is not empty" in capsys.readouterr().err
    assert {f.name: f.stat().st_mtime_ns for f in dcm.iterdir()} == names
    assert (
        main(
            [
                "fuse",
                str(dicom_pair["mri"]),
                str(dicom_pair["pet"]),
                "--dicom-out",
                str(dcm),
                "--no-register",
                "--no-progress",
                "--overwrite",
            ]
        )
        == 0
    )
    assert len(list(dcm.iterdir())) == 94
    assert pydicom.dcmread(next(dcm.iterdir())).SeriesInstanceUID != first.SeriesInstanceUID


def test_dicom_folder_with_several_series(
    dicom_pair: dict[str, Path], tmp_path: Path, series_writer: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    both = tmp_path / "both"
    shutil.copytree(dicom_pair["mri"], both)
    d = demo_volume_pair(2)
    series_writer(both, d["pet_aligned"], d["affine"], "1.2.826.0.1.3680043.8.498.777", "PT")
    out = tmp_path / "f.nii.gz"
    assert main(["fuse", str(both), str(dicom_pair["pet"]), "-o", str(out), "--no-register"]) == 2
    err = capsys.readouterr().err
    assert "2 DICOM series" in err and "1.2.826.0.1.3680043.8.498.101" in err and "--mri-series" in err
    assert "1.2.826.0.1.3680043.8.498.777" in err and not out.exists()
    assert (
        main(
            [
                "fuse",
                str(both),
                str(both),
                "-o",
                str(out),
                "--no-register",
                "--no-progress",
                "--mri-series",
                "1.2.826.0.1.3680043.8.498.101",
                "--other-series",
                "1.2.826.0.1.3680043.8.498.777",
                "--method",
                "max",
                "--colormap",
                "none",
            ]
        )
        == 0
    )
    fused = np.asarray(nib.load(out).dataobj)
    mri, pet = d["mri"][0], d["pet_aligned"][0]
    assert fused.shape == mri.shape
    # max of two percentile-windowed images: at least as bright as the MRI's own windowing almost everywhere
    assert np.corrcoef(fused.ravel(), np.maximum(mri, pet).ravel())[0, 1] > 0.9
    assert (
        main(
            [
                "fuse",
                str(both),
                str(dicom_pair["pet"]),
                "--dicom-out",
                str(both / "fused"),
                "--overwrite",
                "--mri-series",
                "1.2.826.0.1.3680043.8.498.101",
            ]
        )
        == 2
    )
    assert "refusing to touch an input" in capsys.readouterr().err and not (both / "fused").exists()
    assert (
        main(["fuse", str(both), str(dicom_pair["pet"]), "-o", str(tmp_path / "g.nii.gz"), "--mri-series", "9.9.9"])
        == 2
    )
    assert "is not in" in capsys.readouterr().err


def test_dicom_mismatched_patients(
    dicom_pair: dict[str, Path], tmp_path: Path, series_writer: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    d = demo_volume_pair(2)
    other = series_writer(
        tmp_path / "pet_other", d["pet"], d["affine"], "1.2.826.0.1.3680043.8.498.555", "PT", patient_id="SOMEONE-ELSE"
    )
    dcm, nii = tmp_path / "out_dcm", tmp_path / "out.nii.gz"
    args = [
        "fuse",
        str(dicom_pair["mri"]),
        str(other),
        "-o",
        str(nii),
        "--dicom-out",
        str(dcm),
        "--no-register",
        "--no-progress",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "'MF-0001'" in err and "'SOMEONE-ELSE'" in err and "--force" in err
    assert not dcm.exists() and not nii.exists()
    assert main([*args, "--force"]) == 0
    assert "WARNING" in capsys.readouterr().err
    assert pydicom.dcmread(next(dcm.iterdir())).PatientID == "MF-0001"  # the MRI's patient


def test_dicom_bad_outputs(dicom_pair: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mri, pet = str(dicom_pair["mri"]), str(dicom_pair["pet"])
    before = sorted(p.name for p in dicom_pair["mri"].iterdir())
    for target in (dicom_pair["mri"], dicom_pair["mri"] / "sub", dicom_pair["root"]):
        assert main(["fuse", mri, pet, "--dicom-out", str(target), "--overwrite", "--no-register"]) == 2
        assert "refusing to touch an input" in capsys.readouterr().err
    assert sorted(p.name for p in dicom_pair["mri"].iterdir()) == before
    assert main(["fuse", mri, str(tmp_path / "missing"), "--dicom-out", str(tmp_path / "o")]) == 2
    assert "file not found" in capsys.readouterr().err
    files = write_demo_files()
    assert (
        main(
            [
                "fuse",
                str(files["mri_nii"]),
                str(files["pet_nii"]),
                "-o",
                str(tmp_path / "f.nii.gz"),
                "--other-series",
                "1.2.3",
            ]
        )
        == 2
    )
    assert "--other-series chooses a series in a DICOM folder" in capsys.readouterr().err
    assert main(["fuse", mri, pet]) == 2
    assert "--dicom-out" in capsys.readouterr().err
    assert main(["fuse", mri, pet, "-o", str(tmp_path / "f.png")]) == 2
    assert ".nii" in capsys.readouterr().err
    (tmp_path / "notdicom").mkdir()
    (tmp_path / "notdicom" / "x.txt").write_text("hello")
    assert main(["fuse", mri, str(tmp_path / "notdicom"), "-o", str(tmp_path / "f.nii.gz")]) == 2
    assert "no DICOM series" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notdicom"]
