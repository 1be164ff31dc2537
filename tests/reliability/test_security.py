"""Security: checkpoints are loaded as weights only, names never become code or paths outside the output
folder, and DICOM outputs carry the MRI's identifiers only (none at all with ``--anonymize``)."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pydicom
import pytest
import torch
from ignite.engine import Engine

from monai_fusion.cli import main
from monai_fusion.data.dicom import PATIENT_STUDY_KEYWORDS, write_dicom_series
from monai_fusion.fusers import get_fuser
from monai_fusion.handlers import CheckedCheckpointLoader, FusedImageWriter
from monai_fusion.networks import PosterFusionNet, load_weights_file
from monai_fusion.networks.nets.feature_extractor import load_medical_feature_extractor
from monai_fusion.networks.nets.vgg import load_vgg_features
from monai_fusion.utils import FusionInputError, output_path, safe_filename

from .conftest import ROOT, dicom_series, files_under, volume

MARKER_NAME = "PICKLE_RAN"


class _Payload:
    """Unpickling this object would create a marker file (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.fixture
def evil_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """A real torch checkpoint (zip format) whose state dict holds an object with a code-running ``__reduce__``."""
    marker = tmp_path / MARKER_NAME
    path = tmp_path / "evil.pt"
    state = dict(PosterFusionNet(channels=8, decoder_channels=(8, 8)).state_dict())
    state["encoder.0.conv.weight"] = _Payload(marker)  # type: ignore[assignment]
    torch.save({"state_dict": state, "config": {"channels": 8}, "model": state}, path)
    return path, marker


def _torch_load_calls() -> list[tuple[str, int, bool]]:
    """Every ``torch.load(...)`` in the package: (file, line, has weights_only=True)."""
    found = []
    for py in sorted((ROOT / "monai_fusion").rglob("*.py")):
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            ):
                safe = any(
                    k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                    for k in node.keywords
                )
                found.append((str(py.relative_to(ROOT)), node.lineno, safe))
    return found


def test_every_torch_load_is_weights_only(record: Callable[..., None]) -> None:
    calls = _torch_load_calls()
    assert calls, "no torch.load found: the scan is broken"
    assert [c for c in calls if not c[2]] == []
    record(
        "security",
        id="torch-load-weights-only",
        what=f"{len(calls)} torch.load calls in monai_fusion/, all "
        "weights_only=True: " + ", ".join(f"{f}:{n}" for f, n, _ in calls),
    )


@pytest.mark.parametrize(
    "loader",
    [
        "load_weights_file",
        "fuser-weights",
        "vgg-weights",
        "medical-extractor",
        "training-resume",
        "bundle-model-loader",
    ],
)
def test_crafted_pickle_is_refused(
    loader: str, evil_checkpoint: tuple[Path, Path], record: Callable[..., None]
) -> None:
    path, marker = evil_checkpoint
    net = PosterFusionNet(channels=8, decoder_channels=(8, 8))
    calls: dict[str, Callable[[], Any]] = {
        "load_weights_file": lambda: load_weights_file(path),
        "fuser-weights": lambda: get_fuser("poster", weights=path),
        "vgg-weights": lambda: load_vgg_features("vgg19", path, last_layer=1),
        "medical-extractor": lambda: load_medical_feature_extractor(path),
        "training-resume": lambda: CheckedCheckpointLoader(
            path, {"model": net, "trainer": Engine(lambda e, b: None)}, required=False
        ).attach(Engine(lambda e, b: None)),
        "bundle-model-loader": lambda: CheckedCheckpointLoader(path, {"model": net}).attach(Engine(lambda e, b: None)),
    }
    with pytest.raises(FusionInputError, match=r"weights-only|cannot be read") as info:
        calls[loader]()
    assert not marker.exists(), "the pickle ran"
    assert "evil.pt" in str(info.value)
    msg = str(info.value).replace(str(path.parent), "<tmp>")
    record("security", id=f"crafted-pickle-{loader}", what=f"{loader}: refused, pickle not run ({msg[:110]}...)")


def test_safe_output_names() -> None:
    assert safe_filename("../../etc/passwd") == ".._.._etc_passwd"
    assert safe_filename("..") == "_" and safe_filename("") == "_" and safe_filename("a\\b\x00c") == "a_b_c"
    assert safe_filename("$import os @x %y") == "$import os @x %y"  # kept: names are never evaluated
    assert output_path("/out", "PET-MRI", "/abs/x.png") == Path("/out/PET-MRI/_abs_x.png")
    with pytest.raises(FusionInputError, match="no file name"):
        output_path("/out")


@pytest.mark.parametrize(
    ("label", "ident"),
    [
        ("dotdot-name", {"pair_type": "PET-MRI", "name": "../../../escaped"}),
        ("dotdot-pair-type", {"pair_type": "../..", "name": "escaped"}),
        ("absolute-mri-path", {"mri_file": "/elsewhere/MRI/escaped.png"}),
    ],
)
def test_fused_image_writer_stays_inside_its_folder(
    label: str, ident: dict[str, str], tmp_path: Path, record: Callable[..., None]
) -> None:
    """Datalist names (from files or users) cannot steer the bundle's writer out of ``output_dir``."""
    from monai.data import MetaTensor

    out = tmp_path / "a" / "b" / "out"
    item: dict[str, Any] = {k: v for k, v in ident.items() if k in ("pair_type", "name")}
    item["mri"] = MetaTensor(torch.zeros(1, 4, 4), meta={"filename_or_obj": ident.get("mri_file", "x.png")})
    engine = Engine(lambda e, b: None)
    engine.state.batch = [item]
    engine.state.output = [{"fused": torch.rand(3, 4, 4)}]
    writer = FusedImageWriter(out)
    writer(engine)
    written = [p.resolve() for p in tmp_path.rglob("*.png")]
    assert len(written) == 1 and out.resolve() in written[0].parents, written
    record(
        "security",
        id=f"writer-path-{label}",
        what=f"FusedImageWriter {ident} -> <output_dir>/{written[0].relative_to(out.resolve())}",
    )


# ------------------------------------------------------------------------------------------------- DICOM
IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
    "ReferringPhysicianName",
    "InstitutionName",
    "OperatorsName",
    "PerformingPhysicianName",
    "PatientAddress",
    "OtherPatientIDs",
)


def _identified_series(folder: Path, uid: str, who: str) -> Path:
    dicom_series(folder, (volume((12, 10, 4)) * 5).transpose(2, 1, 0), uid)
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = f"{who}^Secret", f"ID-{who}", "19610203", "M"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "101010", f"S-{who}", f"ACC-{who}"
        ds.StudyDescription, ds.ReferringPhysicianName = f"study of {who}", f"Dr^{who}"
        ds.InstitutionName, ds.OperatorsName, ds.PatientAddress = f"Hospital {who}", f"Op^{who}", f"1 {who} street"
        ds.OtherPatientIDs = f"OTHER-{who}"
        ds.save_as(f)
    return folder


#: Value representations that can carry identifiers (names, IDs, dates, UIDs, free text); not geometry numbers.
TEXT_VRS = ("PN", "LO", "SH", "DA", "TM", "DT", "UI", "LT", "ST", "UT", "AE", "AS")


def _values(ds: pydicom.Dataset) -> set[str]:
    return {str(el.value) for el in ds.iterall() if el.keyword and el.VR in TEXT_VRS and str(el.value)}


@pytest.mark.parametrize("anonymize", [False, True])
def test_dicom_output_identifiers(
    anonymize: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str], record: Callable[..., None]
) -> None:
    mri = _identified_series(tmp_path / "mri", "1.2.826.0.1.3680043.8.498.401", "Alice")
    pet = _identified_series(tmp_path / "pet", "1.2.826.0.1.3680043.8.498.402", "Bob")
    out = tmp_path / "out"
    args = [
        "fuse",
        str(mri),
        str(pet),
        "--dicom-out",
        str(out),
        "--no-register",
        "--no-progress",
        "--force",
        "--modality",
        "pet",
        *(["--anonymize"] if anonymize else []),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(args) == 0, capsys.readouterr().err
    mri_ds, pet_ds = pydicom.dcmread(next(mri.iterdir())), pydicom.dcmread(next(pet.iterdir()))
    outs = [pydicom.dcmread(f) for f in sorted(out.iterdir())]
    assert [f.name for f in sorted(out.iterdir())] == [f"{k:04d}.dcm" for k in range(4)]  # names from no tag
    pet_only = _values(pet_ds) - _values(mri_ds)
    for ds in outs:
        assert not (_values(ds) & pet_only), f"leaked from the other series: {_values(ds) & pet_only}"
        for kw in ("InstitutionName", "OperatorsName", "PatientAddress", "OtherPatientIDs"):
            assert kw not in ds, kw  # never copied, even from the MRI
        if anonymize:
            for kw in IDENTIFYING:
                assert str(ds.get(kw, "")) == "", kw
            assert not (_values(ds) & _values(mri_ds) & {str(mri_ds.get(k)) for k in IDENTIFYING})
            assert ds.StudyInstanceUID != mri_ds.StudyInstanceUID and ds.PatientIdentityRemoved == "YES"
            assert ds.FrameOfReferenceUID != mri_ds.get("FrameOfReferenceUID", "")
        else:
            for kw in PATIENT_STUDY_KEYWORDS:
                if kw in mri_ds and kw != "FrameOfReferenceUID":
                    assert str(ds.data_element(kw).value) == str(mri_ds.data_element(kw).value), kw
    assert len({ds.SOPInstanceUID for ds in outs}) == 4
    record(
        "security",
        id=f"dicom-identifiers-anonymize-{anonymize}",
        what=(
            "--anonymize: every identifier empty, new Study/Frame of Reference UIDs, PatientIdentityRemoved=YES"
            if anonymize
            else "MRI's patient/study identifiers only; nothing from the other series; no "
            "institution/operator/address tags"
        ),
    )


def test_anonymized_writer_without_cli(tmp_path: Path) -> None:
    ref = pydicom.Dataset()
    ref.PatientName, ref.PatientID, ref.StudyInstanceUID = "Doe^Jane", "P7", "1.2.3.9"
    out = write_dicom_series(
        np.random.default_rng(0).random((1, 4, 5, 2)), np.eye(4), tmp_path / "o", reference=ref, anonymize=True
    )
    ds = pydicom.dcmread(out / "0000.dcm")
    assert (str(ds.PatientName), ds.PatientID, ds.PatientIdentityRemoved) == ("", "", "YES")
    assert ds.StudyInstanceUID != "1.2.3.9" and files_under(tmp_path) == ["o/0000.dcm", "o/0001.dcm"]


def test_anonymized_nifti_drops_header_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import nibabel as nib

    img = nib.Nifti1Image(volume(), np.diag([2.0, 2.0, 2.0, 1.0]))
    img.header["descrip"] = b"Alice Secret 1961"
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"patient: Alice Secret"))
    nib.save(img, tmp_path / "mri.nii.gz")
    nib.save(nib.Nifti1Image(volume(seed=1), np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "ct.nii.gz")
    for flag, name in (([], "kept.nii.gz"), (["--anonymize"], "anon.nii.gz")):
        assert (
            main(
                [
                    "fuse",
                    str(tmp_path / "mri.nii.gz"),
                    str(tmp_path / "ct.nii.gz"),
                    "-o",
                    str(tmp_path / name),
                    "--modality",
                    "ct",
                    "--no-register",
                    "--no-progress",
                    *flag,
                ]
            )
            == 0
        ), capsys.readouterr().err
    kept, anon = nib.load(tmp_path / "kept.nii.gz").header, nib.load(tmp_path / "anon.nii.gz").header
    # descrip says how the fused volume was made (the window and colour map), never the MRI's free text
    for header in (kept, anon):
        text = bytes(header["descrip"])
        assert text.startswith(b"CT: colour map none; ") and b"Alice" not in text
    assert len(kept.extensions) == 1 and len(anon.extensions) == 0
