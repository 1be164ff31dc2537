"""The MONAI Label app with a real PACS as its datastore: Orthanc's DICOMweb API on 127.0.0.1.

Two studies are uploaded to Orthanc (MRI + PET: the library's demo study; MRI + CT: the demo MRI with a synthetic
CT of another patient), the server is started with ``--studies http://127.0.0.1:PORT/dicom-web``, and an infer
request names one series: the app finds its partner in the same study, fuses them and stores the result back as a
Secondary Capture series of the MRI's study. Then the faults (Orthanc stopped; a lost instance rolled back) and
the load: 20 concurrent requests, every answer equal to the sequential one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import nibabel as nib
import numpy as np
import pytest

from monai_fusion.data.demo import demo_volume_pair
from monai_fusion.data.demo_study import DEMO_PATIENT, MRI_SERIES_UID, PET_SERIES_UID, write_demo_study, write_series
from monai_fusion.engines.inference import fuse_sample
from monai_fusion.fusers import get_fuser
from monai_fusion.transforms.presets import fusion_preprocess

HERE = Path(__file__).resolve().parent
CT_STUDY, CT_MRI, CT_SERIES = (
    "1.2.826.0.1.3680043.8.498.2",
    "1.2.826.0.1.3680043.8.498.201",
    "1.2.826.0.1.3680043.8.498.202",
)
LAPLACIAN = {"method": "laplacian", "register": False}
#: The load test: this many requests at once, each allowed this long (they queue: the server fuses one at a time).
CONCURRENT, REQUEST_TIMEOUT_S = 20, 600.0


def _label_helpers() -> Any:
    spec = importlib.util.spec_from_file_location("label_app_helpers", HERE / "test_monailabel.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


label = _label_helpers()


def _write_studies(root: Path) -> dict[str, Path]:
    """The demo study (MRI + PET of MF-0001) and an MRI + CT study of MF-0002 (the CT: bright bone-like rim)."""
    written = write_demo_study(root / "demo")
    pair = demo_volume_pair(2)
    mri = pair["mri"]
    ct = np.clip(1.0 - mri, 0, 1) * (mri > 0.05)  # a synthetic CT: inverted MRI contrast inside the head
    write_series(root / "ct", mri, pair["affine"], CT_MRI, "MR", "MF-0002", study_uid=CT_STUDY)
    write_series(root / "ct", ct, pair["affine"], CT_SERIES, "CT", "MF-0002", study_uid=CT_STUDY)
    return {"MRI": written["MRI"], "PET": written["PET"], "CT": root / "ct"}


@pytest.fixture(scope="module")
def pacs_server(orthanc: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Orthanc with the two studies, and a MONAI Label server on 127.0.0.1 whose datastore it is."""
    python = label._label_python()
    work = tmp_path_factory.mktemp("label_pacs")
    folders = _write_studies(work / "studies")
    files = [f for folder in folders.values() for f in sorted(folder.glob("*.dcm"))]
    assert orthanc.upload(files) == 94 * 4
    app = work / "app"
    import shutil

    shutil.copytree(label.APP, app, ignore=shutil.ignore_patterns("__pycache__", "logs", "model", "bin"))
    port = label._free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1", MONAI_LABEL_SESSION_PATH=str(work / "sessions"))
    env["MONAI_LABEL_DICOMWEB_CACHE_PATH"] = str(work / "cache")
    cmd = [str(python), "-m", "monailabel.main", "start_server", "--app", str(app), "--studies", orthanc.dicomweb]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--conf", "model_dir", str(work / "models")]
    with label.running_server(cmd, env, port, work, work / "studies", {}) as srv:
        srv.folders = folders
        yield srv


def _fused_series(orthanc: Any) -> dict[str, dict[str, Any]]:
    return {uid: s for uid, s in orthanc.series_tags().items() if s["Modality"] == "OT"}


def _library(folder: Path, mri_uid: str, other_uid: str, modality: str, tmp: Path) -> np.ndarray:
    """The library's fusion of the two DICOM series, read with SimpleITK into NIfTI (as MONAI Label converts them)."""
    import SimpleITK as sitk

    paths = {}
    for name, uid in (("mri", mri_uid), ("other", other_uid)):
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), uid))
        paths[name] = str(tmp / f"{name}.nii.gz")
        sitk.WriteImage(reader.Execute(), paths[name])
    sample = fusion_preprocess(register=False)({**paths, "modality": modality})
    return np.asarray(fuse_sample(sample, get_fuser("laplacian"))["fused"])


def _nifti(body: bytes, path: Path) -> np.ndarray:
    path.write_bytes(body)
    data = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)
    return np.moveaxis(data, -1, 0) if data.ndim == 4 else data[None]


@pytest.mark.parametrize(
    "image, mri_uid, other_uid, modality, patient, study_uid",
    [
        (PET_SERIES_UID, MRI_SERIES_UID, PET_SERIES_UID, "PET", "MF-0001", DEMO_PATIENT["0020|000d"]),
        (CT_MRI, CT_MRI, CT_SERIES, "CT", "MF-0002", CT_STUDY),
    ],
)
def test_infer_fuses_a_pacs_study_and_stores_it_back(
    pacs_server: Any,
    orthanc: Any,
    tmp_path: Path,
    image: str,
    mri_uid: str,
    other_uid: str,
    modality: str,
    patient: str,
    study_uid: str,
) -> None:
    before = _fused_series(orthanc)
    status, ctype, body = pacs_server.infer(image, LAPLACIAN, "all")
    assert status == 200, body[:1000]
    params, image_bytes = label._multipart(body, ctype)
    assert params["modality"] == modality and params["study"] == study_uid and params["method"] == "laplacian"
    stored = params["stored"]
    assert stored["url"] == orthanc.dicomweb and stored["instances"] == 94
    assert (stored["PatientID"], stored["StudyInstanceUID"]) == (patient, study_uid)
    new = {k: v for k, v in _fused_series(orthanc).items() if k not in before}
    assert list(new) == [stored["SeriesInstanceUID"]]
    tags = new[stored["SeriesInstanceUID"]]
    assert (tags["PatientID"], tags["StudyInstanceUID"], tags["instances"]) == (patient, study_uid, 94)
    fused = _nifti(image_bytes, tmp_path / "fused.nii.gz")
    folder = pacs_server.folders["PET" if modality == "PET" else "CT"]
    mri_folder = pacs_server.folders["MRI"] if modality == "PET" else folder
    if mri_folder != folder:  # the demo study keeps its MR and PT series in two folders
        (tmp_path / "both").mkdir()
        for f in [*mri_folder.glob("*.dcm"), *folder.glob("*.dcm")]:
            (tmp_path / "both" / f.name).symlink_to(f)
        folder = tmp_path / "both"
    np.testing.assert_allclose(fused, _library(folder, mri_uid, other_uid, modality, tmp_path), atol=2e-3)
    ds = sorted(orthanc.datasets(stored["SeriesInstanceUID"]), key=lambda d: int(d.InstanceNumber))
    mri = sorted(orthanc.datasets(mri_uid), key=lambda d: int(d.InstanceNumber))
    assert [d.ImagePositionPatient for d in ds] == [d.ImagePositionPatient for d in mri]
    pix = np.stack([d.pixel_array for d in ds]).astype(np.int16)  # (slices, rows, cols[, 3])
    want = np.transpose(fused, (3, 2, 1, 0)) if fused.shape[0] == 3 else np.transpose(fused[0], (2, 1, 0))
    diff = np.abs(pix - np.rint(np.clip(want, 0, 1) * 255).astype(np.int16))
    assert diff.max() <= 1 and pix.std() > 10


def test_a_study_without_a_partner_answers_400(pacs_server: Any, orthanc: Any) -> None:
    status, _, body = pacs_server.infer("1.2.3.4", LAPLACIAN, "json")
    assert status == 400 and "is not an MR, CT, PT or NM series of the DICOMweb datastore" in json.loads(body)["detail"]


def test_concurrent_requests_all_answered_alike(pacs_server: Any, tmp_path: Path) -> None:
    """20 requests at once (store off): every answer is the sequential one, none lost; latency printed."""
    params = {**LAPLACIAN, "store": False}
    status, _, first = pacs_server.request(
        "POST", "/infer/fusion", {"image": MRI_SERIES_UID, "output": "image"}, form={"params": params}
    )
    assert status == 200, first[:500]
    want = _nifti(first, tmp_path / "sequential.nii.gz")

    def one(k: int) -> tuple[int, float, bytes]:
        t0 = time.perf_counter()
        st, _, body = pacs_server.request(
            "POST",
            "/infer/fusion",
            {"image": MRI_SERIES_UID, "output": "image"},
            form={"params": params},
            timeout=REQUEST_TIMEOUT_S,
        )
        return st, time.perf_counter() - t0, body

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        answers = list(pool.map(one, range(CONCURRENT), timeout=REQUEST_TIMEOUT_S + 60))
    wall = time.perf_counter() - t0
    assert len(answers) == CONCURRENT and [a[0] for a in answers] == [200] * CONCURRENT
    for k, (_, _, body) in enumerate(answers):
        np.testing.assert_array_equal(_nifti(body, tmp_path / f"c{k}.nii.gz"), want)
    lat = sorted(a[1] for a in answers)
    sys.stdout.write(
        f"\n{CONCURRENT} concurrent infer requests: all 200 and equal to the sequential answer; latency median "
        f"{statistics.median(lat):.1f} s, max {lat[-1]:.1f} s, min {lat[0]:.1f} s; all answered in {wall:.1f} s\n"
    )


def test_orthanc_stopped_answers_502_and_stores_nothing(pacs_server: Any, orthanc: Any) -> None:
    before = _fused_series(orthanc)
    orthanc.stop()
    try:
        status, _, body = pacs_server.infer(PET_SERIES_UID, LAPLACIAN, "json")
    finally:
        orthanc.start()
    detail = json.loads(body)["detail"]
    assert status == 502, detail
    assert f"DICOMweb server {orthanc.dicomweb} did not answer the series query" in detail
    assert "Connection refused" in detail
    assert _fused_series(orthanc) == before


def test_a_lost_instance_is_rolled_back(pacs_server: Any, orthanc: Any) -> None:
    """Orthanc drops instance 5 of the fused series: the count check sees 93 of 94 and deletes the partial series."""
    before = _fused_series(orthanc)
    orthanc.fault_marker.write_text("drop")
    try:
        status, _, body = pacs_server.infer(PET_SERIES_UID, LAPLACIAN, "json")
    finally:
        orthanc.fault_marker.unlink()
    detail = json.loads(body)["detail"]
    assert status == 502, detail
    assert f"{orthanc.dicomweb} holds 93 of the 94 instances sent of series" in detail
    assert f"was deleted through {orthanc.url}" in detail
    assert _fused_series(orthanc) == before


def test_dicomweb_series_pair_by_study() -> None:
    """A PACS series id names its study; the MR and the one CT/PT/NM series of that StudyInstanceUID pair up."""
    st = label._studies_module()
    from monai_fusion.utils.errors import FusionInputError

    index = [("m1", "S1", "MR"), ("p1", "S1", "PT"), ("m2", "S2", "MR"), ("c2", "S2", "CT"), ("n2", "S2", "NM")]
    index += [("m3", "S3", "MR")]
    assert st.dicomweb_study_ids("p1", index) == ("m1", "p1", "PET", "S1")
    assert st.dicomweb_study_ids("m1", index) == ("m1", "p1", "PET", "S1")
    with pytest.raises(FusionInputError, match="found: CT c2, MR m2, NM n2"):
        st.dicomweb_study_ids("m2", index)
    with pytest.raises(FusionInputError, match="study S3 must hold exactly one MR series"):
        st.dicomweb_study_ids("m3", index)
    with pytest.raises(FusionInputError, match="is not an MR, CT, PT or NM series"):
        st.dicomweb_study_ids("x", index)
