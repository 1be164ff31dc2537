"""The DICOM series the project writes validate: dicom3tools' ``dciodvfy`` reports no error for grey and colour
series, and dcmtk's ``dcm2pnm`` renders the pixels the library wrote (``make dicom-tools`` installs both)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

import numpy as np
import pydicom
import pytest
from PIL import Image

from monai_fusion.data.demo import demo_volume_pair
from monai_fusion.data.demo_study import DEMO_PATIENT
from monai_fusion.data.dicom import patient_orientation, write_dicom_series


def _reference() -> pydicom.Dataset:
    """An MRI header with the demo patient and study (as the CLI passes the MRI series' header)."""
    ref = pydicom.Dataset()
    ref.PatientName, ref.PatientID = DEMO_PATIENT["0010|0010"], DEMO_PATIENT["0010|0020"]
    ref.StudyInstanceUID, ref.StudyID = DEMO_PATIENT["0020|000d"], DEMO_PATIENT["0020|0010"]
    return ref


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A grey and a colour fused series of the demo volumes (2 mm), written by ``write_dicom_series``."""
    root = tmp_path_factory.mktemp("validate")
    pair = demo_volume_pair(2)
    grey = 0.5 * (pair["mri"] + pair["pet"])
    colour = np.concatenate([grey, pair["pet"], pair["mri"]])
    return {
        "grey": write_dicom_series(grey, pair["affine"], root / "grey", reference=_reference(), method="average"),
        "colour": write_dicom_series(colour, pair["affine"], root / "colour", reference=_reference()),
        "anonymized": write_dicom_series(grey, pair["affine"], root / "anon", reference=_reference(), anonymize=True),
    }


@pytest.mark.parametrize("kind", ["grey", "colour", "anonymized"])
def test_dciodvfy_finds_no_error(series: dict[str, Path], kind: str, dicom_tool: Callable[[str], str]) -> None:
    tool = dicom_tool("dciodvfy")
    files = sorted(series[kind].glob("*.dcm"))
    for path in (files[0], files[len(files) // 2], files[-1]):
        proc = subprocess.run([tool, str(path)], capture_output=True, text=True, encoding="utf-8", timeout=60)
        report = proc.stdout + proc.stderr
        assert "SCImage" in report, report  # it recognised the Secondary Capture IOD
        errors = [line for line in report.splitlines() if line.startswith("Error")]
        assert not errors, f"{path}:\n" + "\n".join(errors)


def test_dcm2pnm_renders_the_pixels_the_library_wrote(
    series: dict[str, Path], tmp_path: Path, dicom_tool: Callable[[str], str]
) -> None:
    tool = dicom_tool("dcm2pnm")
    for kind in ("grey", "colour"):
        path = sorted(series[kind].glob("*.dcm"))[40]
        png = tmp_path / f"{kind}.png"
        subprocess.run([tool, "+on", str(path), str(png)], check=True, capture_output=True, timeout=60)
        rendered = np.asarray(Image.open(png))
        assert np.array_equal(rendered, pydicom.dcmread(path).pixel_array), kind


def test_the_type_2c_attributes_secondary_capture_requires(series: dict[str, Path]) -> None:
    """``PatientOrientation`` from the directions (the demo's axial RAS grid: rows run R, columns A) and a body part
    (unpaired, so no ``Laterality``), the two errors ``dciodvfy`` reported before."""
    assert patient_orientation([-1, 0, 0]) == "R" and patient_orientation([0, -1, 0]) == "A"
    assert patient_orientation([0.6, 0.8, 0]) == "PL" and patient_orientation([0, 0, -1]) == "F"
    ds = pydicom.dcmread(sorted(series["grey"].glob("*.dcm"))[0])
    assert list(ds.PatientOrientation) == ["R", "A"] and ds.BodyPartExamined == "BRAIN" and "Laterality" not in ds


def test_the_validator_output_shown_in_the_cli_docs_is_what_it_prints(
    tmp_path: Path, dicom_tool: Callable[[str], str]
) -> None:
    """docs/cli.md shows dciodvfy's report on a slice of `fuse study/MRI study/PET --dicom-out fd`: run the same."""
    import re

    from monai_fusion.commands import fuse_files
    from monai_fusion.data.demo_study import write_demo_study

    tool = dicom_tool("dciodvfy")
    page = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    block = re.search(r"```text\n\$ dciodvfy fd/0047\.dcm\n(.*?)```", page, re.S)
    assert block, "docs/cli.md has no dciodvfy block"
    study = write_demo_study(tmp_path / "study")
    fuse_files(str(study["MRI"]), str(study["PET"]), None, dicom_out=str(tmp_path / "fd"))
    proc = subprocess.run(
        [tool, str(tmp_path / "fd" / "0047.dcm")], capture_output=True, text=True, encoding="utf-8", timeout=60
    )
    printed = [line.rstrip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert printed == block.group(1).strip().splitlines()
