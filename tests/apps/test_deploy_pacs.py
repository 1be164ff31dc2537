"""The MONAI Deploy app against a real PACS: a study pulled from Orthanc, the fused series sent back with storescu.

The study is the library's demo study (``monai_fusion.data.demo_study``: SimpleITK/GDCM files), uploaded to
Orthanc and pulled with dcmtk's ``getscu`` (C-GET) into the app's input folder, as a hospital integrator would
stage it; the app sends its result with ``MONAI_FUSION_STORE_SCP``. Faults: Orthanc stopped before the send, and
a PACS that silently loses one instance (a Lua filter of the test's Orthanc) - both end with one clear error, no
local output and no partial series on the PACS.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from monai_fusion.data.demo import demo_volume_pair
from monai_fusion.data.demo_study import DEMO_PATIENT, MRI_SERIES_UID, write_demo_study

HERE = Path(__file__).resolve().parent


def _deploy_helpers() -> Any:
    """``tests/apps/test_deploy.py`` (its app runner and library reference), loaded by path."""
    spec = importlib.util.spec_from_file_location("deploy_app_helpers", HERE / "test_deploy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


deploy = _deploy_helpers()


def _pull(orthanc: Any, study_uid: str, folder: Path) -> list[Path]:
    """C-GET the study from Orthanc into ``folder`` with dcmtk's getscu."""
    folder.mkdir(parents=True)
    cmd = ["getscu", "-aet", orthanc.client_aet, "-aec", orthanc.aet, "-to", "30", "-ta", "30", "-td", "60"]
    cmd += ["127.0.0.1", str(orthanc.dicom_port), "-k", "QueryRetrieveLevel=STUDY"]
    cmd += ["-k", f"StudyInstanceUID={study_uid}", "-od", str(folder)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return sorted(folder.iterdir())


@pytest.fixture(scope="module")
def pulled(orthanc: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo study written by the library, uploaded to Orthanc, pulled back with getscu into a folder."""
    import os
    import shutil

    if shutil.which("getscu") is None:
        msg = "getscu is not installed: run make dicom-tools (Debian package dcmtk)"
        if os.environ.get("MONAI_FUSION_REQUIRE_APPS") == "1":
            pytest.fail(msg + " (MONAI_FUSION_REQUIRE_APPS=1)")
        pytest.skip(msg)
    root = tmp_path_factory.mktemp("deploy_pacs")
    written = write_demo_study(root / "demo")
    files = sorted(written["MRI"].glob("*.dcm")) + sorted(written["PET"].glob("*.dcm"))
    assert orthanc.upload(files) == 188
    study_uid = DEMO_PATIENT["0020|000d"]
    pulled = _pull(orthanc, study_uid, root / "input")
    assert len(pulled) == 188, [p.name for p in pulled[:5]]
    demo = demo_volume_pair(2)
    to_u16 = lambda v: np.rint(np.transpose(v[0], (2, 1, 0)) * 1000).astype(np.uint16)  # noqa: E731
    study = {"mri": to_u16(demo["mri"]), "other": to_u16(demo["pet"]), "affine": demo["affine"], "modality": "PET"}
    return {"input": root / "input", "root": root, "study_uid": study_uid, "study": study}


def _store_env(orthanc: Any, rest: bool = True) -> dict[str, str]:
    env = {
        "MONAI_FUSION_STORE_SCP": f"127.0.0.1:{orthanc.dicom_port}:{orthanc.aet}",
        "MONAI_FUSION_STORE_AET": orthanc.client_aet,
        "MONAI_FUSION_STORE_TIMEOUT": "120",
        "MONAI_FUSION_REGISTER": "0",
    }
    if rest:
        env["MONAI_FUSION_STORE_REST"] = orthanc.url
    return env


def _fused_series(orthanc: Any, study_uid: str) -> dict[str, dict[str, Any]]:
    """The derived (Modality OT) series Orthanc holds in the study."""
    return {
        uid: s
        for uid, s in orthanc.series_tags().items()
        if s["Modality"] == "OT" and s["StudyInstanceUID"] == study_uid
    }


def _no_local_output(out: Path) -> None:
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert left == [], f"a failed run left {left} in {out}"


def test_round_trip_pull_fuse_store(orthanc: Any, pulled: dict[str, Any]) -> None:
    """Pulled study in, fused series stored back: tags and geometry of the MRI, pixels of the library (1 level)."""
    before = _fused_series(orthanc, pulled["study_uid"])
    out = pulled["root"] / "out"
    proc = deploy.start_app(pulled["input"], out, **_store_env(orthanc))
    reference = deploy.library_fusion(pulled["study"], register=False)  # computed while the app runs
    done = deploy.finish(proc)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    store = f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
    assert f"the fused series will be sent to {store}" in log
    assert f"MRI series: MR {MRI_SERIES_UID}" in log
    new = {k: v for k, v in _fused_series(orthanc, pulled["study_uid"]).items() if k not in before}
    assert len(new) == 1, new
    ((uid, tags),) = new.items()
    assert f"stored 94 instances of series {uid} on {store} (C-FIND count checked)" in log
    assert tags["instances"] == 94 and tags["PatientID"] == "MF-0001"
    local = sorted((out / "dicom").glob("*.dcm"))
    assert len(local) == 94 and pydicom.dcmread(local[0]).SeriesInstanceUID == uid
    stored = sorted(orthanc.datasets(uid), key=lambda d: float(d.ImagePositionPatient[2]))
    mri = sorted(orthanc.datasets(MRI_SERIES_UID), key=lambda d: float(d.ImagePositionPatient[2]))
    for kw in ("PatientID", "PatientName", "StudyInstanceUID", "StudyID", "AccessionNumber"):
        assert str(stored[0].data_element(kw).value) == str(mri[0].data_element(kw).value), kw
    np.testing.assert_allclose(
        [[float(v) for v in d.ImagePositionPatient] for d in stored],
        [[float(v) for v in d.ImagePositionPatient] for d in mri],
        atol=1e-3,
    )
    for d in stored:
        np.testing.assert_allclose(
            [float(v) for v in d.ImageOrientationPatient], [float(v) for v in mri[0].ImageOrientationPatient], atol=1e-6
        )
    assert stored[0].PhotometricInterpretation == "RGB" and stored[0].Modality == "OT"
    pix = np.stack([d.pixel_array for d in stored]).astype(np.int16)  # (slices, rows, cols, 3)
    ref8 = np.rint(np.clip(np.transpose(reference, (3, 2, 1, 0)), 0, 1) * 255).astype(np.int16)
    assert pix.shape == ref8.shape
    diff = np.abs(pix - ref8)
    assert diff.max() <= 1 and pix.std() > 10, f"max difference {diff.max()} grey levels"


def test_orthanc_stopped_before_the_send(orthanc: Any, pulled: dict[str, Any]) -> None:
    """Orthanc down when the app sends: one error naming the PACS, exit 2, no local output, nothing on the PACS."""
    before = _fused_series(orthanc, pulled["study_uid"])
    out = pulled["root"] / "out_down"
    orthanc.stop()
    try:
        done = deploy.finish(deploy.start_app(pulled["input"], out, **_store_env(orthanc)))
    finally:
        orthanc.start()
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"sending to {orthanc.aet}@127.0.0.1:{orthanc.dicom_port} failed" in errors[0]
    assert "Connection refused" in errors[0] and "nothing was stored (no association)" in errors[0]
    _no_local_output(out)
    assert _fused_series(orthanc, pulled["study_uid"]) == before  # restarted on the same storage: nothing new


def test_a_lost_instance_is_rolled_back(orthanc: Any, pulled: dict[str, Any]) -> None:
    """The PACS answers success but drops instance 5: the count check catches it and the partial series is deleted."""
    before = _fused_series(orthanc, pulled["study_uid"])
    out = pulled["root"] / "out_lost"
    orthanc.fault_marker.write_text("drop")
    try:
        done = deploy.finish(deploy.start_app(pulled["input"], out, **_store_env(orthanc)))
    finally:
        orthanc.fault_marker.unlink()
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1, done.stdout[-2000:] + done.stderr[-3000:]
    store = f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
    assert f"{store} holds 93 of the 94 instances sent of series" in errors[0]
    assert f"the instances already stored were deleted through {orthanc.url}" in errors[0]
    _no_local_output(out)
    assert _fused_series(orthanc, pulled["study_uid"]) == before


def test_demo_study_folder_runs_as_written(pulled: dict[str, Any], tmp_path: Path) -> None:
    """``python -m monai_fusion.data.demo_study`` output read by the app (it reported "series found: none" before):
    MIXED as written (SeriesNumber set), and with SeriesNumber emptied as GDCM writes it when none is given."""
    mixed = pulled["root"] / "demo" / "MIXED"
    blank = tmp_path / "blank"
    blank.mkdir()
    for f in sorted(mixed.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.SeriesNumber = None
        ds.save_as(blank / f.name)
    assert pydicom.dcmread(next(blank.iterdir())).SeriesNumber in (None, "")
    runs = {
        name: deploy.start_app(folder, tmp_path / f"out_{name}", MONAI_FUSION_REGISTER="0")
        for name, folder in (("mixed", mixed), ("blank", blank))
    }
    for name, proc in runs.items():
        done = deploy.finish(proc)
        log = done.stdout + done.stderr
        assert done.returncode == 0, f"{name}:\n{log[-3000:]}"
        assert f"MRI series: MR {MRI_SERIES_UID} ('demo MR', 94 files)" in log
        assert len(list((tmp_path / f"out_{name}" / "dicom").glob("*.dcm"))) == 94


def test_store_settings_from_env() -> None:
    """``MONAI_FUSION_STORE_*``: off when unset, parsed when set, refused by name when malformed (main environment)."""
    sys.path.insert(0, str(deploy.APP.parent))
    try:
        import pacs_store
    finally:
        sys.path.remove(str(deploy.APP.parent))
    from monai_fusion.utils.errors import FusionInputError

    assert pacs_store.StoreTarget.from_env({}) is None
    t = pacs_store.StoreTarget.from_env({"MONAI_FUSION_STORE_SCP": "pacs.local:104:PACS"})
    assert (t.host, t.port, t.called_aet, t.calling_aet, t.rest_url) == ("pacs.local", 104, "PACS", "MONAIFUSION", None)
    assert str(t) == "PACS@pacs.local:104"
    for env, msg in (
        ({"MONAI_FUSION_STORE_SCP": "127.0.0.1:ORTHANC"}, "expected host:port:AET"),
        ({"MONAI_FUSION_STORE_SCP": "h:99999:A"}, "expected host:port:AET"),
        ({"MONAI_FUSION_STORE_SCP": "h:1:A", "MONAI_FUSION_STORE_TIMEOUT": "0"}, "MONAI_FUSION_STORE_TIMEOUT='0'"),
        ({"MONAI_FUSION_STORE_SCP": "h:1:A", "MONAI_FUSION_STORE_REST": "h:8042"}, "MONAI_FUSION_STORE_REST='h:8042'"),
    ):
        with pytest.raises(FusionInputError, match=msg):
            pacs_store.StoreTarget.from_env(env)
