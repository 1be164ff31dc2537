"""The MONAI Deploy app (apps/deploy) run for real on DICOM studies written from the shared atlas pairs
and from the embedded 3D pair.

Each study folder holds an MR series and one CT or PET series of one patient (as a PACS sends
them); the app runs in its own environment (``make deploy-env``: ``.venv-deploy``) as a subprocess,
``python apps/deploy/app.py -i STUDY -o OUT``. The output series is read back with pydicom and
checked for tags, geometry and pixels against the library's own fusion of the same volumes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from monai_fusion import __version__
from monai_fusion.data.demo import demo_volume_pair
from monai_fusion.data.dicom import SECONDARY_CAPTURE_SOP_CLASS
from monai_fusion.engines.inference import fuse_sample
from monai_fusion.fusers import get_fuser
from monai_fusion.networks.nets.weight_map import WeightMapFusionNet
from monai_fusion.transforms.presets import fusion_preprocess

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "apps" / "deploy" / "app.py"
DEPLOY_PYTHON = ROOT / ".venv-deploy" / "bin" / "python"
#: In-plane spacing (rows, columns) and slice step of the test volumes: non-square pixels catch a swapped spacing.
ROW_MM, COL_MM, SLICE_MM = 0.9, 1.1, 5.0
#: ImageOrientationPatient of the atlas test series (axial; rows along +x, columns along +y in LPS).
IOP = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
ORIGIN = np.array([-120.0, -135.0, 20.0])


def _deploy_python() -> Path:
    """The deploy venv's python; skipped (or, under MONAI_FUSION_REQUIRE_APPS=1, failed) when absent."""
    ok = DEPLOY_PYTHON.is_file() and (ROOT / ".venv-deploy" / ".installed").is_file()
    if not ok:
        msg = f"MONAI Deploy environment {DEPLOY_PYTHON.parent.parent} is missing: run make deploy-env"
        if os.environ.get("MONAI_FUSION_REQUIRE_APPS") == "1":
            pytest.fail(msg + " (MONAI_FUSION_REQUIRE_APPS=1)")
        pytest.skip(msg)
    return DEPLOY_PYTHON


def _slices(harvard: Path, pair: str, modality: str, names: list[str]) -> np.ndarray:
    """Stack atlas slices into a (slices, rows, cols[, 3]) uint8 array, 2x2-averaged to 128x128 (keeps the
    3D registration of the test volumes to a few seconds on two cores)."""
    vol = np.stack(
        [
            np.asarray(
                Image.open(harvard / pair / modality / n).convert("RGB" if modality in ("PET", "SPECT") else "L"),
                dtype=np.float32,
            )
            for n in names
        ]
    )
    s, r, c = vol.shape[:3]
    vol = vol.reshape(s, r // 2, 2, c // 2, 2, *vol.shape[3:]).mean(axis=(2, 4))
    return np.rint(vol).astype(np.uint8)


def write_series(
    folder: Path,
    vol: np.ndarray,
    affine: np.ndarray,
    modality: str,
    patient_id: str,
    study_uid: str,
    series_uid: str,
    description: str,
) -> None:
    """Write a (slices, rows, cols) grey or (slices, rows, cols, 3) RGB uint8/uint16 volume as one DICOM series.

    ``affine`` is the RAS affine of the matching (X=column, Y=row, Z=slice) array.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop_class = {
        "MR": "1.2.840.10008.5.1.4.1.1.4",
        "CT": "1.2.840.10008.5.1.4.1.1.2",
        "PT": "1.2.840.10008.5.1.4.1.1.128",
    }[modality]
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    cosines = lps[:3, :3] / spacing
    bits = 16 if vol.dtype == np.uint16 else 8
    folder.mkdir(parents=True, exist_ok=True)
    for k, sl in enumerate(vol):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"{modality}_{k:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Atlas^Case", patient_id, "19600101", "M"
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = study_uid, "20260102", "101010", "S1"
        ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyDescription = "ACC7", "", "brain"
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = (
            series_uid,
            1 if modality == "MR" else 2,
            description,
        )
        ds.Modality, ds.InstanceNumber, ds.FrameOfReferenceUID = modality, k + 1, study_uid + ".9"
        ds.PatientPosition = "HFS"
        ds.ImageOrientationPatient = [f"{v:.6g}" for v in np.concatenate([cosines[:, 0], cosines[:, 1]])]
        ds.ImagePositionPatient = [f"{v:.6g}" for v in (lps @ np.array([0.0, 0.0, k, 1.0]))[:3]]
        ds.PixelSpacing = [f"{spacing[1]:.6g}", f"{spacing[0]:.6g}"]  # between rows (along Y), between columns (X)
        ds.SliceThickness = f"{spacing[2]:.6g}"
        ds.Rows, ds.Columns = sl.shape[0], sl.shape[1]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
        if sl.ndim == 3:
            ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        else:
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelData = np.ascontiguousarray(sl).tobytes()
        ds.save_as(folder / f"{modality}_{k:03d}.dcm", enforce_file_format=True)


def ras_affine() -> np.ndarray:
    """RAS affine of the atlas test volumes (non-square pixels catch a swapped spacing) for (X, Y, Z) arrays."""
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1] = np.array(IOP[:3]) * COL_MM, np.array(IOP[3:]) * ROW_MM
    lps[:3, 2], lps[:3, 3] = np.cross(IOP[:3], IOP[3:]) * SLICE_MM, ORIGIN
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def library_fusion(study: dict, register: bool, method: str = "laplacian", **fuser_kwargs: str) -> np.ndarray:
    """The library's fusion of a study's volumes (as written), through the CLI's preset path.

    A grey PET is rendered in the atlas colour map by the preset itself (``colormap="auto"``), as in the app.
    """

    def mt(a: np.ndarray, value_max: float) -> MetaTensor:
        chw = np.transpose(a, (3, 2, 1, 0)) if a.ndim == 4 else np.transpose(a, (2, 1, 0))[None]
        return MetaTensor(
            torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32)),
            affine=torch.as_tensor(study["affine"]),
            meta={"value_max": value_max},
        )

    other = mt(study["other"], 255.0 if study["other"].ndim == 4 else float("nan"))  # RGB keeps its range
    sample = fusion_preprocess(register=register, load=False)(
        {"mri": mt(study["mri"], float("nan")), "other": other, "modality": study["modality"]}
    )
    return np.asarray(fuse_sample(sample, get_fuser(method, **fuser_kwargs))["fused"])


def start_app(study: Path, out: Path, **env: str) -> subprocess.Popen[str]:
    """Start the Deploy app in its own environment on ``study`` (``python app.py -i STUDY -o OUT``)."""
    python = _deploy_python()
    e = {k: v for k, v in os.environ.items() if not k.startswith(("MONAI_FUSION_", "HOLOSCAN_"))}
    e.update({"MONAI_FUSION_METHOD": "laplacian", "MONAI_FUSION_DEVICE": "cpu", **env})
    cmd = f"ulimit -s 32768 2>/dev/null; exec {python} {APP} -i {study} -o {out}"
    return subprocess.Popen(
        ["bash", "-c", cmd],
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        cwd=out.parent,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Wait for the app; its exit code and output."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _write_study(root: Path, key: str, s: dict, index: int) -> dict:
    study_uid = f"1.2.826.0.1.3680043.8.498.{70 + index}"
    s["study"], s["mri_series"] = root / key, study_uid + ".1"
    write_series(s["study"], s["mri"], s["affine"], "MR", s["patient"], study_uid, study_uid + ".1", "T2 axial")
    write_series(
        s["study"],
        s["other"],
        s["affine"],
        s["dicom_modality"],
        s["patient"],
        study_uid,
        study_uid + ".2",
        f"{s['modality']} axial",
    )
    return s


@pytest.fixture(scope="module")
def atlas_studies(harvard_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Two DICOM studies from real, co-registered atlas pairs: MRI + RGB PET (case 25), MRI + CT (case 34)."""
    root = tmp_path_factory.mktemp("atlas")
    out: dict[str, dict] = {}
    for i, (key, pair, mod, dicom_mod, case, pid) in enumerate(
        (("pet", "PET-MRI", "PET", "PT", "25", "WBA-25"), ("ct", "CT-MRI", "CT", "CT", "34", "WBA-34"))
    ):
        names = sorted(p.name for p in (harvard_root / pair / "MRI").glob(f"{case}???.png"))[:16]
        assert len(names) == 16, f"{pair} case {case}: expected at least 16 slices in {harvard_root}"
        s = {
            "mri": _slices(harvard_root, pair, "MRI", names),
            "other": _slices(harvard_root, pair, mod, names),
            "affine": ras_affine(),
            "modality": mod,
            "dicom_modality": dicom_mod,
            "patient": pid,
        }
        out[key] = _write_study(root, key, s, i)
    return out


@pytest.fixture(scope="module")
def demo_study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A DICOM study from the embedded 3D pair (98x116x94, 2 mm): MRI + grey PET, misaligned on purpose."""
    demo = demo_volume_pair(2)
    to_u16 = lambda v: np.rint(np.transpose(v[0], (2, 1, 0)) * 1000).astype(np.uint16)  # noqa: E731
    s = {
        "mri": to_u16(demo["mri"]),
        "other": to_u16(demo["pet"]),
        "affine": demo["affine"],
        "modality": "PET",
        "dicom_modality": "PT",
        "patient": "MF-0001",
    }
    return _write_study(tmp_path_factory.mktemp("demo"), "demo", s, 2)


@pytest.fixture(scope="module")
def app_runs(
    request: pytest.FixtureRequest, demo_study: dict, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[subprocess.Popen[str], Path]]:
    """Start every app run of this module at once (two cores: the runs overlap their start-up); each test
    computes its reference and then waits for its own run."""
    _deploy_python()
    try:
        atlas = request.getfixturevalue("atlas_studies")
    except pytest.skip.Exception:
        atlas = {}
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for key, study, register in (("demo", demo_study, True), *((k, atlas[k], False) for k in atlas)):
        runs[key] = (start_app(study["study"], root / key, MONAI_FUSION_REGISTER="1" if register else "0"), root / key)
    pet_only = root / "pet_only_study"
    pet_only.mkdir()
    for f in demo_study["study"].glob("PT_*.dcm"):
        (pet_only / f.name).symlink_to(f)
    runs["no_mri"] = (start_app(pet_only, root / "no_mri"), pet_only)
    # method auto with a bundle model.pt (the bundle's network_def, seeded random weights): the `default` fuser
    torch.manual_seed(0)
    (root / "bundle_models").mkdir()
    torch.save(WeightMapFusionNet().state_dict(), root / "bundle_models" / "model.pt")
    runs["model"] = (
        start_app(
            demo_study["study"],
            root / "model",
            MONAI_FUSION_METHOD="auto",
            MONAI_FUSION_REGISTER="0",
            HOLOSCAN_MODEL_PATH=str(root / "bundle_models"),
        ),
        root / "model",
    )
    yield runs
    for proc, _ in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _read_series(folder: Path) -> list[pydicom.Dataset]:
    files = sorted(folder.iterdir())
    assert files and all(f.suffix == ".dcm" for f in files), f"no DICOM files in {folder}"
    return [pydicom.dcmread(f) for f in files]


def _check_output(
    study: dict,
    out: Path,
    proc: subprocess.CompletedProcess[str],
    photometric: str,
    reference: np.ndarray,
    register: bool,
    method: str = "laplacian",
    reason: str = "MONAI_FUSION_METHOD=laplacian",
) -> list[pydicom.Dataset]:
    """Tags, geometry and pixels of the app's output series; returns the datasets."""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert f"fusion method: {method} ({reason})" in log
    assert f"registration {'on' if register else 'off'}" in log and ("registration: Mattes MI" in log) == register
    mri_first = pydicom.dcmread(sorted(study["study"].glob("MR_*.dcm"))[0])
    series = _read_series(out / "dicom")
    n_slices = study["mri"].shape[0]
    assert len(series) == n_slices
    first = series[0]
    assert first.SOPClassUID == SECONDARY_CAPTURE_SOP_CLASS == first.file_meta.MediaStorageSOPClassUID
    assert first.Modality == "OT" and first.ConversionType == "WSD"
    assert first.PhotometricInterpretation == photometric
    assert first.SamplesPerPixel == (3 if photometric == "RGB" else 1) and first.BitsAllocated == 8
    for kw in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyID",
        "AccessionNumber",
        "FrameOfReferenceUID",
    ):
        assert str(first.data_element(kw).value) == str(mri_first.data_element(kw).value), kw
    assert first.PatientID == study["patient"]
    uids = {d.SeriesInstanceUID for d in series}
    assert len(uids) == 1 and uids.isdisjoint({study["mri_series"], mri_first.SeriesInstanceUID})
    assert len({d.SOPInstanceUID for d in series}) == n_slices
    assert f"({method})" in first.SeriesDescription and __version__ in first.SeriesDescription
    # geometry: the MRI's grid (rows x columns, spacing, orientation, slice positions)
    rows, cols = study["mri"].shape[1:3]
    assert (first.Rows, first.Columns) == (rows, cols)
    assert [float(v) for v in first.PixelSpacing] == pytest.approx([float(v) for v in mri_first.PixelSpacing])
    assert [float(v) for v in first.ImageOrientationPatient] == pytest.approx(
        [float(v) for v in mri_first.ImageOrientationPatient], abs=1e-6
    )
    mri_pos = sorted(
        ([float(v) for v in pydicom.dcmread(f).ImagePositionPatient] for f in study["study"].glob("MR_*.dcm")),
        key=lambda p: p[2],
    )
    out_pos = sorted(([float(v) for v in d.ImagePositionPatient] for d in series), key=lambda p: p[2])
    np.testing.assert_allclose(out_pos, mri_pos, atol=1e-3)
    # pixels: the library's fusion of the same volumes, to 8 bits (rint(v * 255)), within one grey level
    by_z = sorted(series, key=lambda d: float(d.ImagePositionPatient[2]))
    pix = np.stack([d.pixel_array for d in by_z]).astype(np.int16)  # (slices, rows, cols[, 3])
    ref = np.transpose(reference, (3, 2, 1, 0)) if reference.shape[0] == 3 else np.transpose(reference[0], (2, 1, 0))
    ref8 = np.rint(np.clip(ref, 0, 1) * 255).astype(np.int16)
    assert pix.shape == ref8.shape
    diff = np.abs(pix - ref8)
    assert diff.max() <= 1, f"max difference {diff.max()} grey levels at {np.argwhere(diff == diff.max())[:3]}"
    assert pix.std() > 10  # a real image, not a blank one
    # the NIfTI: the float fusion on the MRI's RAS grid
    nii = nib.load(out / "fused.nii.gz")
    np.testing.assert_allclose(nii.affine, study["affine"], atol=1e-4)
    data = np.asarray(nii.dataobj)
    data = np.moveaxis(data, -1, 0) if data.ndim == 4 else data[None]
    np.testing.assert_allclose(data, reference, atol=2e-3)
    return series


@pytest.mark.parametrize(
    "key, photometric, register",
    [
        (
            "pet",
            "RGB",
            False,
        ),  # real atlas MRI + RGB PET: co-registered, and a 16-slice slab is too thin for 3D registration
        ("ct", "MONOCHROME2", False),  # real atlas MRI + CT
        ("demo", "RGB", True),  # embedded 3D pair: grey PET, misaligned on purpose -> registered, rendered in colour
    ],
)
def test_deploy_app_fuses_a_study(
    request: pytest.FixtureRequest, app_runs: dict, key: str, photometric: str, register: bool
) -> None:
    """DICOM study in -> fused Secondary Capture series (RGB for PET, MONOCHROME2 for CT) + NIfTI on the MRI's grid,
    equal to the library's fusion of the same volumes within one grey level."""
    s = request.getfixturevalue("demo_study") if key == "demo" else request.getfixturevalue("atlas_studies")[key]
    proc, out = app_runs[key]
    reference = library_fusion(s, register)  # computed while the app runs
    done = finish(proc)
    series = _check_output(s, out, done, photometric, reference, register)
    log = done.stdout + done.stderr
    assert f"MRI series: MR {s['mri_series']}" in log and f"CT/PET/SPECT series: {s['dicom_modality']} " in log
    if photometric == "RGB":
        assert series[0].PlanarConfiguration == 0
    if key == "demo":
        assert "PET series: colour map atlas; percentiles 0.5 to 99.5" in log


def test_deploy_app_fuses_with_the_bundle_model(app_runs: dict, demo_study: dict) -> None:
    """MONAI_FUSION_METHOD=auto with a bundle model.pt under the model path: the `default` fuser with those weights,
    equal to the library's get_fuser("default", weights=model.pt) within one grey level."""
    proc, out = app_runs["model"]
    model = out.parent / "bundle_models" / "model.pt"
    reference = library_fusion(demo_study, False, "default", weights=str(model))
    done = finish(proc)
    _check_output(
        demo_study,
        out,
        done,
        "RGB",
        reference,
        False,
        method="default",
        reason=f"MONAI_FUSION_METHOD=auto and bundle model {model} found",
    )


def test_deploy_app_refuses_a_study_without_mri(app_runs: dict) -> None:
    """A study with no MR series ends with one error line naming the folder and the series found, nothing written."""
    proc, study = app_runs["no_mri"]
    done = finish(proc)
    out = study.parent / "no_mri"
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-2000:]
    assert f"no MRI series (Modality (?i)^(MR)$) found in {study}" in errors[0]
    assert "series found: PT " in errors[0] and "(94 files, 'PET axial')" in errors[0]
    assert not (out / "dicom").exists() and not (out / "fused.nii.gz").exists()


# ---- the app's SDK-free core (main environment; no deploy venv needed) ----


def _core():
    sys.path.insert(0, str(APP.parent))
    try:
        import fusion_core
    finally:
        sys.path.remove(str(APP.parent))
    return fusion_core


def test_method_choice_never_falls_back_silently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    core = _core()
    from monai_fusion.fusers import available_fusers
    from monai_fusion.utils.errors import FusionInputError

    monkeypatch.setattr(core, "REPO_BUNDLE_MODEL", tmp_path / "absent" / "model.pt")
    model, searched = core.find_bundle_model(tmp_path / "models")
    assert model is None and tmp_path / "models" / "model.pt" in searched
    choice = core.choose_method("auto", model, searched)
    assert choice.name == core.DEFAULT_METHOD == "default" and choice.kwargs == {}  # the shipped weights
    assert "no bundle model.pt found" in choice.reason and str(tmp_path / "models" / "model.pt") in choice.reason
    assert core.choose_method("dwt", None).name == "dwt"
    with pytest.raises(FusionInputError, match="MONAI_FUSION_METHOD='nope' is not a fusion method"):
        core.choose_method("nope", None)
    (tmp_path / "map_models" / "fusion").mkdir(parents=True)
    (tmp_path / "map_models" / "fusion" / "model.pt").write_bytes(b"x")  # a MAP's /opt/holoscan/models/<name>/
    model, _ = core.find_bundle_model(tmp_path / "map_models")
    assert model == tmp_path / "map_models" / "fusion" / "model.pt"
    if "default" in available_fusers():
        choice = core.choose_method("auto", model)
        assert choice.name == "default" and choice.kwargs == {"weights": str(model)}
    else:
        with pytest.raises(FusionInputError, match="has no 'default' fusion method"):
            core.choose_method("auto", model)
    if "default" in available_fusers():
        choice = core.choose_method("default", None)
        assert choice.kwargs == {} and "shipped weights" in choice.reason


def test_settings_from_env_and_selection_rules() -> None:
    import json

    from monai_fusion.utils.errors import FusionInputError

    core = _core()
    s = core.DeploySettings.from_env({})
    assert (s.method, s.register, s.device, s.pet_colours, s.overwrite) == ("auto", True, "auto", "wba", False)
    s = core.DeploySettings.from_env(
        {"MONAI_FUSION_REGISTER": "0", "MONAI_FUSION_METHOD": "max", "MONAI_FUSION_OTHER_SERIES": "1.2.3"}
    )
    assert (s.register, s.method, s.other_series) == (False, "max", "1.2.3")
    for env, msg in (
        ({"MONAI_FUSION_REGISTER": "maybe"}, "MONAI_FUSION_REGISTER='maybe'"),
        ({"MONAI_FUSION_DEVICE": "tpu"}, "MONAI_FUSION_DEVICE='tpu'"),
        ({"MONAI_FUSION_PET_COLOURS": "plasma"}, "MONAI_FUSION_PET_COLOURS=.plasma. is not a known colour map"),
    ):
        with pytest.raises(FusionInputError, match=msg):
            core.DeploySettings.from_env(env)
    rules = json.loads(core.selection_rules("functional", ("CT", "PT", "NM"), "1.2.3"))
    cond = rules["selections"][0]["conditions"]
    assert cond["Modality"] == "(?i)^(CT|PT|NM)$" and cond["SeriesInstanceUID"] == r"^1\.2\.3$"


def test_series_geometry_fixes_the_sdk_spacing_swap() -> None:
    core = _core()
    # what DICOMSeriesToVolumeOperator gives for PixelSpacing [ROW_MM, COL_MM]: row cosine x ROW_MM (swapped)
    sdk_lps = np.eye(4)
    sdk_lps[:3, 0], sdk_lps[:3, 1] = np.array(IOP[:3]) * ROW_MM, np.array(IOP[3:]) * COL_MM
    sdk_lps[:3, 2], sdk_lps[:3, 3] = np.cross(IOP[:3], IOP[3:]) * SLICE_MM, ORIGIN
    meta = {
        "dicom_affine_transform": sdk_lps,
        "row_direction_cosine": list(IOP[:3]),
        "col_direction_cosine": list(IOP[3:]),
        "row_pixel_spacing": ROW_MM,
        "col_pixel_spacing": COL_MM,
    }
    np.testing.assert_allclose(core.series_geometry(meta), ras_affine())
    from monai_fusion.utils.errors import FusionInputError

    with pytest.raises(FusionInputError, match="at least 2 slices"):
        core.series_geometry({"SeriesInstanceUID": "1.2", "row_pixel_spacing": 1.0})


def test_existing_outputs_are_refused(tmp_path: Path) -> None:
    from monai_fusion.utils.errors import FusionInputError

    core = _core()
    (tmp_path / "in").mkdir()
    core.check_outputs(tmp_path / "out", tmp_path / "in")  # nothing there yet
    (tmp_path / "out" / "dicom").mkdir(parents=True)
    (tmp_path / "out" / "dicom" / "0000.dcm").write_bytes(b"x")
    with pytest.raises(FusionInputError, match="not empty; set MONAI_FUSION_OVERWRITE=1"):
        core.check_outputs(tmp_path / "out", tmp_path / "in")
    core.check_outputs(tmp_path / "out", tmp_path / "in", overwrite=True)
    with pytest.raises(FusionInputError, match="refusing to touch an input"):
        core.check_outputs(tmp_path / "in" / "out", tmp_path / "in", overwrite=True)


def test_grey_pet_is_rendered_in_colour_and_rgb_ct_refused() -> None:
    from monai_fusion.utils.errors import FusionInputError

    core = _core()
    grey = np.linspace(0, 1000, 4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)  # (slices, rows, cols)
    pet = core.volume_to_metatensor(grey, ras_affine(), "PET", "PT series 1")
    assert tuple(pet.shape) == (1, 6, 5, 4) and np.isnan(pet.meta["value_max"])
    mri = core.volume_to_metatensor(grey[::-1].copy(), ras_affine(), "MRI", "MR series 1")
    choice = core.MethodChoice("average", {}, "test")
    rgb = core.fuse_volumes(mri, pet, "PET", choice, register=False)["fused"]  # the library's colour map
    assert tuple(rgb.shape) == (3, 6, 5, 4) and float((rgb[0] - rgb[2]).abs().max()) > 0.1
    np.testing.assert_allclose(np.asarray(rgb.affine), ras_affine())
    kept = core.fuse_volumes(mri, pet, "PET", choice, register=False, colormap="none")["fused"]
    assert tuple(kept.shape) == (1, 6, 5, 4)
    with pytest.raises(FusionInputError, match="CT: CT series 2 is an RGB series"):
        core.volume_to_metatensor(
            np.zeros((4, 5, 6, 3), np.uint8) + np.arange(6, dtype=np.uint8)[:, None], ras_affine(), "CT", "CT series 2"
        )
    with pytest.raises(FusionInputError, match="MONAI_FUSION_PET_COLOURS='viridis' is not a known colour map"):
        core.DeploySettings.from_env({"MONAI_FUSION_PET_COLOURS": "viridis"})
    with pytest.raises(FusionInputError, match="MONAI_FUSION_WINDOW='wide'"):
        core.DeploySettings.from_env({"MONAI_FUSION_WINDOW": "wide"})
    assert core.DeploySettings.from_env({"MONAI_FUSION_WINDOW": "Bone"}).window == "bone"


def test_requirements_list_the_library_requirements() -> None:
    """The MAP installs apps/deploy/requirements.txt, not setup.cfg: every install_requires name must be there."""
    import configparser
    import re

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    names = lambda text: {  # noqa: E731
        re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0].lower()  # noqa: E731
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith(("#", "-"))
    }
    library = names(cfg["options"]["install_requires"])
    app = names((APP.parent / "requirements.txt").read_text())
    assert library and not library - app, f"missing from apps/deploy/requirements.txt: {sorted(library - app)}"
