"""``python -m monai_fusion.data.demo_study DIR --atlas PAIR_DIR --case N``: an atlas case as a DICOM study."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from monai_fusion.data.demo_study import main, write_atlas_study, write_series
from monai_fusion.data.io import read_volume


def _series(folder: Path) -> dict[str, list[pydicom.Dataset]]:
    out: dict[str, list[pydicom.Dataset]] = {}
    for f in folder.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        out.setdefault(ds.Modality, []).append(ds)
    return {k: sorted(v, key=lambda d: float(d.ImagePositionPatient[2])) for k, v in out.items()}


def test_an_atlas_case_is_written_as_an_mr_and_an_rgb_pt_series(tmp_path: Path, harvard_root: Path) -> None:
    pair = harvard_root / "PET-MRI"
    written = write_atlas_study(tmp_path / "study", pair, "25", slices=3)
    assert written == {"MRI": tmp_path / "study", "PET": tmp_path / "study"}
    series = _series(tmp_path / "study")
    assert sorted(series) == ["MR", "PT"] and all(len(v) == 3 for v in series.values())
    mr, pt = series["MR"], series["PT"]
    assert {d.StudyInstanceUID for d in mr + pt} == {"1.2.826.0.1.3680043.8.498.25"}
    assert {d.PatientID for d in mr + pt} == {"WBA-25"} and pt[0].PhotometricInterpretation == "RGB"
    first = sorted(p.name for p in (pair / "MRI").glob("25???.png"))[:3]
    png_first_mri = np.asarray(Image.open(pair / "MRI" / first[0]).convert("L"), dtype=np.float64) / 255
    for k, name in enumerate(first):
        png_pet = np.asarray(Image.open(pair / "PET" / name).convert("RGB"))
        png_mri = np.asarray(Image.open(pair / "MRI" / name).convert("L"), dtype=np.float64) / 255
        assert np.array_equal(pt[k].pixel_array, png_pet)  # rows and columns as in the PNG, values exact
        assert np.abs(mr[k].pixel_array / 1000 - png_mri).max() <= 0.5e-3
    # the library reads the MR series back as the columns x rows x slices volume it came from (its DICOM reader takes
    # grey series only; the RGB PT series is for the MONAI Deploy app, whose SDK reads colour series)
    mri = read_volume(tmp_path / "study", "MRI", series_uid=mr[0].SeriesInstanceUID)
    assert np.abs(mri.array[0, :, :, 0].T / 1000 - png_first_mri).max() <= 0.5e-3


def test_bad_atlas_requests_are_refused(tmp_path: Path, harvard_root: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ValueError, match="PET-MRI or SPECT-MRI"):
        write_atlas_study(tmp_path / "ct", harvard_root / "CT-MRI", "16")
    with pytest.raises(FileNotFoundError, match="case 999"):
        write_atlas_study(tmp_path / "none", harvard_root / "PET-MRI", "999")
    with pytest.raises(FileNotFoundError, match="expected 1000 .*found"):  # fewer slices than asked: said
        write_atlas_study(tmp_path / "few", harvard_root / "PET-MRI", "25", slices=1000)
    with pytest.raises(ValueError, match="case '2\\?'"):
        write_atlas_study(tmp_path / "glob", harvard_root / "PET-MRI", "2?")
    with pytest.raises(ValueError, match=r"\(1\|3, X, Y, Z\) volume, got shape \(2, 4, 4, 2\)"):
        write_series(tmp_path / "two", np.zeros((2, 4, 4, 2)), np.eye(4), "1.2.3.4")
    assert not (tmp_path / "few").exists() and not list(tmp_path.glob(".*partial*"))
    write_atlas_study(tmp_path / "twice", harvard_root / "SPECT-MRI", "3", slices=1)
    with pytest.raises(SystemExit, match="DICOM files already"):
        main([str(tmp_path / "twice"), "--atlas", str(harvard_root / "SPECT-MRI"), "--case", "3"])
    with pytest.raises(SystemExit):
        main([str(tmp_path / "x"), "--case", "3"])
    assert "--atlas and --case go together" in capsys.readouterr().err
    assert _series(tmp_path / "twice").keys() == {"MR", "NM"}
