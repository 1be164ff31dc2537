"""The MONAI Label app (apps/monailabel) run for real: a server on 127.0.0.1 in ``.venv-label``, called over HTTP.

The server runs in its own environment (monailabel 0.8.5 holds pydicom < 3 and numpy < 2); this test runs in the
project's environment and compares every returned image with the library's own fusion of the same input, so the
two environments are also checked against each other. Without ``.venv-label`` the tests skip (``make label-env``
builds it); with ``MONAI_FUSION_REQUIRE_APPS=1`` (as ``make test`` sets) they fail instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from monai_fusion.data import write_demo_dataset
from monai_fusion.data.demo import write_demo_files
from monai_fusion.data.quantise import channels_to_uint8
from monai_fusion.engines.inference import fuse_sample
from monai_fusion.fusers import get_fuser
from monai_fusion.transforms.presets import fusion_preprocess

ROOT = Path(__file__).resolve().parents[2]
LABEL_VENV = ROOT / ".venv-label"
APP = ROOT / "apps" / "monailabel"
START_TIMEOUT_S = 240.0
#: Small network and training run, so the train test takes seconds on a CPU.
CHANNELS = 8
TINY_TRAIN = {
    "epochs": 1,
    "epoch_length": 1,
    "batch_size": 2,
    "patch_size": [64, 64],
    "val_interval": 1,
    "pair_types": "PET-MRI",
    "val_metrics": ["SSIM"],
    "max_val_pairs": 1,
    "resume": False,
}


def _label_python() -> Path:
    """``.venv-label/bin/python``; skips (or fails under MONAI_FUSION_REQUIRE_APPS=1) when the venv is absent."""
    python = LABEL_VENV / "bin" / "python"
    if not (python.is_file() and (LABEL_VENV / ".installed").is_file()):
        reason = f"{LABEL_VENV} is absent or incomplete: run make label-env to build the MONAI Label environment"
        if os.environ.get("MONAI_FUSION_REQUIRE_APPS") == "1":
            pytest.fail(reason + " (MONAI_FUSION_REQUIRE_APPS=1 requires it)")
        pytest.skip(reason)
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _copy_pair(mri: Path, other: Path, studies: Path, study: str, modality: str, link: bool = False) -> None:
    ext = "".join(mri.suffixes[-2:]) if mri.name.endswith(".nii.gz") else mri.suffix
    for src, dst in ((mri, studies / f"{study}_MRI{ext}"), (other, studies / f"{study}_{modality}{ext}")):
        if link:  # a study of links: MONAI Label resolves them to the atlas' own names
            dst.symlink_to(src.resolve())
        else:
            shutil.copyfile(src, dst)


def _build_studies(studies: Path, harvard: Path | None) -> dict[str, Any]:
    """A datastore folder: the embedded pair (2D and volume), real atlas pairs when present, one MRI alone."""
    studies.mkdir(parents=True)
    demo = write_demo_files()
    _copy_pair(demo["mri_png"], demo["pet_png"], studies, "demo", "PET")
    _copy_pair(demo["mri_nii"], demo["pet_nii"], studies, "demovol", "PET")
    shutil.copyfile(demo["mri_png"], studies / "lonely_MRI.png")
    found: dict[str, Any] = {"pet": None, "ct": None}
    if harvard is not None:
        pet = (
            sorted((harvard / "PET-MRI" / "MRI").glob("25*.png"))[:2]
            + sorted((harvard / "PET-MRI" / "MRI").glob("30*.png"))[:1]
        )
        for m in pet:
            _copy_pair(m, harvard / "PET-MRI" / "PET" / m.name, studies, m.stem, "PET")
        ct = sorted((harvard / "CT-MRI" / "MRI").glob("*.png"))[0]
        _copy_pair(ct, harvard / "CT-MRI" / "CT" / ct.name, studies, ct.stem, "CT", link=True)
        found.update(pet=pet[0].stem, ct=ct.stem)
    else:  # two more cases of the embedded dataset, so training can hold one case out
        root = write_demo_dataset()
        for m in sorted((root / "PET-MRI" / "MRI").glob("*.png"))[::6][:2]:
            _copy_pair(m, root / "PET-MRI" / "PET" / m.name, studies, m.stem, "PET")
    return found


class LabelServer:
    """A running ``monailabel start_server`` process and its base URL."""

    def __init__(self, proc: subprocess.Popen, url: str, work: Path, studies: Path, log: Path, found: dict) -> None:
        self.proc, self.url, self.work, self.studies, self.log, self.found = proc, url, work, studies, log, found

    def log_tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        form: dict[str, Any] | None = None,
        body: Any = None,
        timeout: float = 300.0,
    ) -> tuple[int, str, bytes]:
        """Send a request; returns ``(status, content type, body)`` (error statuses too)."""
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data, headers = None, {}
        if form is not None:
            data = urllib.parse.urlencode({k: json.dumps(v) for k, v in form.items()}).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", ""), err.read()

    def infer(self, image: str, params: dict[str, Any], output: str) -> tuple[int, str, bytes]:
        """``POST /infer/fusion?image=ID&output=...`` with the request parameters as the ``params`` form field."""
        return self.request("POST", "/infer/fusion", {"image": image, "output": output}, form={"params": params})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LabelServer]:
    """Start the app on a free port of 127.0.0.1 with a copy of the app and a studies folder in tmp; stop it by PID."""
    python = _label_python()
    try:
        harvard: Path | None = request.getfixturevalue("harvard_root")
    except pytest.skip.Exception:
        harvard = None
    work = tmp_path_factory.mktemp("monailabel")
    studies = work / "studies"
    found = _build_studies(studies, harvard)
    app = work / "app"  # MONAI Label creates model/, logs/, bin/ in the app folder: keep them out of the checkout
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__", "logs", "model", "bin"))
    port = _free_port()
    env = dict(os.environ)
    env.update(
        MONAI_LABEL_SESSION_PATH=str(work / "sessions"),
        MONAI_LABEL_DATASTORE_CACHE_PATH=str(work / "cache"),
        PYTHONUNBUFFERED="1",
    )
    cmd = [
        str(python),
        "-m",
        "monailabel.main",
        "start_server",
        "--app",
        str(app),
        "--studies",
        str(studies),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--conf",
        "model_dir",
        str(work / "models"),
        "--conf",
        "network_def#channels",
        str(CHANNELS),
    ]
    with running_server(cmd, env, port, work, studies, found) as srv:
        yield srv


@contextlib.contextmanager
def running_server(
    cmd: list[str],
    env: dict[str, str],
    port: int,
    work: Path,
    studies: Path,
    found: dict[str, Any],
    cwd: Path | None = None,
) -> Iterator[LabelServer]:
    """Start the server ``cmd`` (on 127.0.0.1:``port``, log in ``work``, run in ``cwd``, default ``work``), wait
    (bounded) until ``/info/`` answers, and stop it afterwards with its process group (a session of its own):
    SIGTERM, then SIGKILL after 20 s, and SIGKILL for anything of the group still running (a training run it
    started)."""
    log = work / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd or work, env=env, start_new_session=True
        )
    srv = LabelServer(proc, f"http://127.0.0.1:{port}", work, studies, log, found)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the MONAI Label server exited with code {proc.returncode}:\n{srv.log_tail()}")
            try:
                if srv.request("GET", "/info/", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the MONAI Label server did not answer /info/ within {START_TIMEOUT_S:.0f} s:\n{srv.log_tail()}"
                )
            time.sleep(0.5)
        yield srv
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # what the server started (a training run) goes with it
            os.killpg(proc.pid, signal.SIGKILL)
        sys.stdout.write(f"\nMONAI Label server log ({log}), last lines:\n{srv.log_tail(15)}\n")


def _studies_module() -> Any:
    """``apps/monailabel/lib/studies.py`` (it needs only monai-fusion, so it loads in this environment too)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("monailabel_app_studies", APP / "lib" / "studies.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_auto_without_a_bundle_model_runs_the_shipped_default_model(tmp_path: Path) -> None:
    """``method auto`` with no ``model.pt`` resolves to ``default`` (the package's weights), never a classical rule."""
    import importlib.util

    from monai_fusion.fusers.learned import DefaultFuser
    from monai_fusion.utils.errors import FusionInputError

    spec = importlib.util.spec_from_file_location("monailabel_app_config", APP / "lib" / "config.py")
    config = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = config
    spec.loader.exec_module(config)
    settings = config.FusionAppConfig(APP, {"model_dir": str(tmp_path / "no_model")})
    assert settings.method == "auto" and settings.resolve() == "default"
    fuser, info = settings.fuser(settings.resolve())
    assert isinstance(fuser, DefaultFuser) and fuser.trained and info["weights"].startswith("shipped")
    assert config.FusionAppConfig(APP, {"model_dir": str(tmp_path), "method": "default"}).resolve() == "default"
    with pytest.raises(FusionInputError, match="use method bundle"):
        config.FusionAppConfig(APP, {"model_dir": str(tmp_path), "method": "poster"})


def test_study_naming_convention(tmp_path: Path) -> None:
    """Ids and files ``<study>_<MODALITY>``: the partner is found, incomplete or mixed studies are named."""
    st = _studies_module()
    from monai_fusion.utils.errors import FusionInputError

    assert st.split_image_id("25016_PET") == ("25016", "PET")
    assert st.split_image_id("a_b_mri") == ("a_b", "MRI")
    assert st.split_image_id("25016") is None
    assert st.split_image_name("x_CT.nii.gz") == ("x", "CT", ".nii.gz")
    assert st.split_image_name("x_CT.txt") is None
    ids = ["1_MRI", "1_PET", "2_MRI", "2_CT", "2_SPECT", "3_MRI"]
    assert st.study_ids("1_PET", ids) == ("1_MRI", "1_PET", "PET")
    for bad in ("2_MRI", "3_MRI", "nothing"):
        with pytest.raises(FusionInputError):
            st.study_ids(bad, ids)
    for name in ("a_MRI.png", "a_PET.png", "b_MRI.png", "b_CT.nii.gz", "c_MRI.png"):
        (tmp_path / name).write_bytes(b"x")
    pair = st.find_study_pair(tmp_path / "a_PET.png")
    assert (pair.study, pair.mri.name, pair.other.name, pair.modality, pair.volume) == (
        "a",
        "a_MRI.png",
        "a_PET.png",
        "PET",
        False,
    )
    with pytest.raises(FusionInputError, match="both be 2D images or both be NIfTI"):
        st.find_study_pair(tmp_path / "b_MRI.png")
    with pytest.raises(FusionInputError, match="exactly one"):
        st.find_study_pair(tmp_path / "c_MRI.png")
    pair = st.find_study_pair(tmp_path / "a_PET.png", other=tmp_path / "a_MRI.png")  # given the other way round
    assert (pair.mri.name, pair.other.name) == ("a_MRI.png", "a_PET.png")
    pairs, skipped = st.study_pairs((p.name.split(".")[0], p) for p in sorted(tmp_path.iterdir()))
    assert [p.study for p in pairs] == ["a"] and len(skipped) == 2


def _library_fusion(mri: Path, other: Path, modality: str, register: bool, fuser: Any) -> np.ndarray:
    """The library's fusion of the same files: ``fusion_preprocess`` -> fuser -> ``fuse_sample``."""
    sample = fusion_preprocess(register=register)({"mri": str(mri), "other": str(other), "modality": modality})
    return np.asarray(fuse_sample(sample, fuser)["fused"])


def _png(body: bytes) -> tuple[np.ndarray, str]:
    from PIL import Image

    with Image.open(io.BytesIO(body)) as im:
        return np.asarray(im), im.mode


def _multipart(body: bytes, content_type: str) -> tuple[dict[str, Any], bytes]:
    """Split MONAI Label's ``output=all`` answer into its JSON ``params`` and its image bytes."""
    from email.parser import BytesParser
    from email.policy import HTTP

    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True) for p in msg.iter_parts()}
    return json.loads(parts["params"]), parts["image"]


def _as_png_array(fused: np.ndarray) -> np.ndarray:
    """The pixels ``write_png`` stores for a ``(1|3, H, W)`` fusion (RGB keeping its luminance)."""
    u8 = channels_to_uint8(fused)
    return u8[0] if u8.shape[0] == 1 else np.moveaxis(u8, 0, -1)


def test_info_lists_fusion_tasks_and_datastore(server: LabelServer) -> None:
    status, _, body = server.request("GET", "/info/")
    assert status == 200
    info = json.loads(body)
    assert info["name"] == "monai-fusion"
    assert info["models"]["fusion"]["type"] == "others"
    assert info["models"]["fusion"]["config"]["method"] == "auto"
    assert info["trainers"]["fusion"]["config"]["epochs"] == 10
    images = [p for p in server.studies.iterdir() if p.name.endswith((".png", ".nii.gz"))]
    assert info["datastore"]["total"] == len(images)


def test_infer_png_rgb_pet_equals_library(server: LabelServer, harvard_root: Path) -> None:
    study = server.found["pet"]
    mri, pet = server.studies / f"{study}_MRI.png", server.studies / f"{study}_PET.png"
    status, ctype, body = server.infer(f"{study}_PET", {"method": "laplacian", "register": False}, "all")
    assert status == 200, body[:500]
    params, image = _multipart(body, ctype)
    assert params["study"] == study and params["modality"] == "PET" and params["method"] == "laplacian"
    assert params["format"] == "png uint8 rgb"
    got, mode = _png(image)
    assert mode == "RGB" and got.dtype == np.uint8
    want = _as_png_array(_library_fusion(mri, pet, "PET", False, get_fuser("laplacian")))
    assert got.shape == want.shape == (256, 256, 3)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    # the MRI's id names the same study and gives the same image
    status, _, body2 = server.infer(f"{study}_MRI", {"method": "laplacian", "register": False}, "image")
    assert status == 200 and _png(body2)[0].tobytes() == got.tobytes()


def test_infer_png_grey_ct_equals_library(server: LabelServer, harvard_root: Path) -> None:
    study = server.found["ct"]
    status, _, body = server.infer(f"{study}_MRI", {"method": "max", "register": False}, "image")
    assert status == 200, body[:500]
    got, mode = _png(body)
    assert mode == "L" and got.dtype == np.uint8
    want = _as_png_array(
        _library_fusion(
            server.studies / f"{study}_MRI.png", server.studies / f"{study}_CT.png", "CT", False, get_fuser("max")
        )
    )
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_infer_registers_the_misaligned_demo_pair(server: LabelServer) -> None:
    """Default settings (``register`` true): the embedded PET, misaligned on purpose, is registered first."""
    status, _, body = server.infer("demo_MRI", {"method": "laplacian"}, "image")
    assert status == 200, body[:500]
    got, mode = _png(body)
    want = _as_png_array(
        _library_fusion(
            server.studies / "demo_MRI.png", server.studies / "demo_PET.png", "PET", True, get_fuser("laplacian")
        )
    )
    unregistered = _as_png_array(
        _library_fusion(
            server.studies / "demo_MRI.png", server.studies / "demo_PET.png", "PET", False, get_fuser("laplacian")
        )
    )
    diff = np.abs(got.astype(int) - want.astype(int))
    # registration runs in another environment (numpy 1 vs 2): the same transform to rounding of a grey level
    assert mode == "RGB" and diff.max() <= 1 and (diff > 0).mean() < 0.01
    assert np.abs(got.astype(int) - unregistered.astype(int)).max() > 20


def test_infer_volume_returns_nifti_on_the_mri_grid(server: LabelServer) -> None:
    import nibabel as nib

    status, ctype, body = server.infer("demovol_PET", {"method": "laplacian", "register": False}, "image")
    assert status == 200, body[:500]
    out = server.work / "fused_volume.nii.gz"
    out.write_bytes(body)
    img = nib.load(str(out))
    mri = nib.load(str(server.studies / "demovol_MRI.nii.gz"))
    # a grey PET volume is fused in colour (the atlas colour map): RGB as a 4th dimension of 3
    assert img.shape == (*mri.shape, 3) and img.get_data_dtype() == np.float32
    np.testing.assert_allclose(img.affine, mri.affine, atol=1e-5)
    want = np.moveaxis(
        _library_fusion(
            server.studies / "demovol_MRI.nii.gz",
            server.studies / "demovol_PET.nii.gz",
            "PET",
            False,
            get_fuser("laplacian"),
        ),
        0,
        -1,
    )
    np.testing.assert_allclose(np.asarray(img.dataobj), want, atol=1e-5)


def test_bad_requests_answer_400_with_the_reason(server: LabelServer) -> None:
    status, _, body = server.infer("lonely_MRI", {}, "image")
    assert status == 400 and "study 'lonely' must hold exactly one" in json.loads(body)["detail"]
    status, _, body = server.infer("demo_MRI", {"method": "poster"}, "image")
    assert status == 400 and "use method bundle" in json.loads(body)["detail"]
    status, _, body = server.infer("demo_MRI", {"method": "default"}, "image")  # the shipped model, by name
    assert status == 200, body[:300]
    status, _, body = server.infer("demo_MRI", {"method": "bundle"}, "image")
    assert status == 400 and "model.pt does not exist" in json.loads(body)["detail"]
    status, _, body = server.request("POST", "/train/fusion", {"run_sync": "true"}, body={"epocs": 1})
    assert status == 400 and "'epocs' is not a setting" in json.loads(body)["detail"]


def test_train_then_infer_with_the_trained_bundle_network(server: LabelServer) -> None:
    """One tiny epoch of the bundle's training on the datastore's 2D PET-MRI studies; ``auto`` then uses model.pt."""
    model = server.work / "models" / "model.pt"
    assert not model.exists()
    status, _, body = server.request("POST", "/train/fusion", {"run_sync": "true"}, body=TINY_TRAIN)
    assert status == 200, body[:1000]
    stats = json.loads(body)
    assert stats["epochs"] == 1 and stats["iterations"] == 1 and stats["key_metric"] == "SSIM"
    assert stats["model"] == str(model) and model.is_file() and stats["pairs_train"] >= 1
    assert any("demovol" in s and "volumes are not trained on" in s for s in stats["skipped"])
    status, _, body = server.request("GET", "/info/")
    assert json.loads(body)["train_stats"]["fusion"]["best_metric_epoch"] == 1

    status, ctype, body = server.infer("demo_PET", {"register": False}, "all")  # method auto: the bundle network now
    assert status == 200, body[:500]
    params, image = _multipart(body, ctype)
    assert params["method"] == "bundle" and params["weights"] == str(model)
    assert params["network"] == {
        "name": "default",
        "channels": CHANNELS,
        "full_channels": 8,
        "dilations": [2, 4],
        "residual_scale": 0.25,
        "select_prior": 20.0,
        "global_context": True,
        "detail_gain": {"CT": 0.0, "PET": 0.4, "SPECT": 0.8, "default": 0.8},
    }
    fuser = get_fuser("default", weights=str(model), channels=CHANNELS)
    want = _as_png_array(
        _library_fusion(server.studies / "demo_MRI.png", server.studies / "demo_PET.png", "PET", False, fuser)
    )
    got, _ = _png(image)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
