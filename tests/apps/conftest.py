"""A real PACS for the app tests: Orthanc with its DICOMweb plugin, started on loopback with a temporary storage.

``make pacs-tools`` installs the Debian packages ``orthanc`` and ``orthanc-dicomweb``. Without them the tests
that use :func:`orthanc` skip; under ``MONAI_FUSION_REQUIRE_APPS=1`` (``make test-apps``) they fail instead.

Orthanc 1.10 has no bind-address option, so it runs with ``loopback_bind.c`` preloaded (built with ``cc`` into the
server's folder): its wildcard binds become 127.0.0.1 binds, and :meth:`OrthancServer.start` checks in
``/proc/net/tcp*`` that both ports listen on loopback only. Besides, its HTTP server answers loopback clients only
(``RemoteAccessAllowed`` false) and its DICOM server accepts only the AE titles registered below, from 127.0.0.1
(``DicomCheckModalityHost``, ``DicomCheckCalledAet``, no ``DicomAlwaysAllow*``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

__all__ = ["OrthancServer", "free_port", "require_tool"]

#: AE title of Orthanc and of the clients the tests and apps use (storescu, getscu, findscu, the apps).
ORTHANC_AET, CLIENT_AET = "ORTHANC", "FUSION"
#: Lua filter: while the marker file exists, instance 5 of a derived (Modality OT) series is dropped without an
#: error status, as a PACS that loses an instance would (Orthanc answers C-STORE success for filtered instances).
LUA_FILTER = """
function ReceivedInstanceFilter(dicom, origin, info)
  local marker = io.open('{marker}', 'r')
  if marker ~= nil then
    marker:close()
    if dicom.Modality == 'OT' and dicom.InstanceNumber == '5' then
      return false
    end
  end
  return true
end
"""


def require_tool(name: str, package: str, target: str) -> str:
    """The path of ``name``; skips (or fails under MONAI_FUSION_REQUIRE_APPS=1) when it is not installed."""
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}",) if os.access(p, os.X_OK)), None)
    if path is None:
        msg = f"{name} is not installed: run make {target} (Debian package {package})"
        if os.environ.get("MONAI_FUSION_REQUIRE_APPS") == "1":
            pytest.fail(msg + " (MONAI_FUSION_REQUIRE_APPS=1)")
        pytest.skip(msg)
    return path


@pytest.fixture
def dicom_tool() -> Callable[[str], str]:
    """``dicom_tool(name)``: the path of a dicom3tools or dcmtk program (``make dicom-tools``; :func:`require_tool`)."""
    packages = {"dciodvfy": "dicom3tools", "dcm2pnm": "dcmtk"}
    return lambda name: require_tool(name, packages.get(name, "dicom3tools or dcmtk"), "dicom-tools")


def loopback_shim(folder: Path) -> Path:
    """Build ``loopback_bind.c`` (beside this file) into ``folder`` with ``cc``; skip or fail without a compiler."""
    out = folder / "libloopback_bind.so"
    if not out.exists():
        cc = require_tool("cc", "gcc", "pacs-tools")
        src = Path(__file__).with_name("loopback_bind.c")
        subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(out), str(src), "-ldl"], check=True, timeout=120)
    return out


def listening_addresses(port: int) -> list[str]:
    """The local addresses (hex, as ``/proc/net/tcp`` and ``tcp6`` write them) of the sockets listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def free_port() -> int:
    """A free TCP port of 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dicomweb_plugin() -> Path:
    """``libOrthancDicomWeb.so`` as the Debian package ``orthanc-dicomweb`` installed it."""
    try:
        listed = subprocess.run(["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        listed = ""
    found = [Path(p) for p in listed.splitlines() if p.endswith("libOrthancDicomWeb.so")]
    if not found:
        msg = "the Orthanc DICOMweb plugin is not installed: run make pacs-tools (Debian package orthanc-dicomweb)"
        if os.environ.get("MONAI_FUSION_REQUIRE_APPS") == "1":
            pytest.fail(msg + " (MONAI_FUSION_REQUIRE_APPS=1)")
        pytest.skip(msg)
    return found[0]


class OrthancServer:
    """One Orthanc process on 127.0.0.1 with its storage in ``root``; restartable on the same storage and ports.

    Args:
        root: a folder of its own (config, storage, index, log, Lua filter marker).
        binary: the ``Orthanc`` executable.
        plugin: the DICOMweb plugin.
    """

    def __init__(self, root: Path, binary: str, plugin: Path) -> None:
        self.root, self.binary = root, binary
        self.http_port, self.dicom_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.dicomweb = self.url + "/dicom-web"
        self.aet, self.client_aet = ORTHANC_AET, CLIENT_AET
        self.log = root / "orthanc.log"
        self.fault_marker = root / "drop-instance-5"
        self.proc: subprocess.Popen | None = None
        (root / "filter.lua").write_text(LUA_FILTER.format(marker=self.fault_marker))
        config = {
            "Name": "monai-fusion-tests",
            "StorageDirectory": str(root / "storage"),
            "IndexDirectory": str(root / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": True,
            "DicomCheckModalityHost": True,
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomModalities": {"fusion": [self.client_aet, "127.0.0.1", free_port()]},
            "Plugins": [str(plugin)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
            "LuaScripts": [str(root / "filter.lua")],
            "SaveJobs": False,
            "HttpTimeout": 30,
            "DicomScpTimeout": 30,
        }
        (root / "orthanc.json").write_text(json.dumps(config, indent=1))

    def start(self, timeout: float = 60.0) -> None:
        """Start Orthanc on loopback only and wait (bounded) until ``/system`` answers."""
        shim = loopback_shim(self.root)
        env = {**os.environ, "LD_PRELOAD": str(shim)}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, str(self.root / "orthanc.json")],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"Orthanc exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.request("GET", "/system", timeout=2)[0] == 200:
                    self._check_loopback_only()
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"Orthanc did not answer {self.url}/system within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.2)

    def _check_loopback_only(self) -> None:
        """Fail unless the HTTP and DICOM ports listen, and only on 127.0.0.1 / ::1 (``/proc/net/tcp*``)."""
        for port in (self.http_port, self.dicom_port):
            addresses = listening_addresses(port)
            if not addresses or any(a not in ("0100007F", "00000000000000000000000001000000") for a in addresses):
                self.stop()
                pytest.fail(f"Orthanc port {port} listens on {addresses or 'nothing'}; expected 127.0.0.1 only")

    def stop(self, timeout: float = 20.0) -> None:
        """Stop Orthanc: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_tail(self, n: int = 30) -> str:
        """The last lines of Orthanc's log."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])

    def request(
        self, method: str, path: str, body: bytes | None = None, ctype: str = "", timeout: float = 30.0
    ) -> tuple[int, bytes]:
        """One REST request to Orthanc; returns ``(status, body)`` (error statuses too)."""
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if ctype:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def json(self, path: str) -> Any:
        """``GET path`` as JSON (fails the test on an error status)."""
        status, body = self.request("GET", path)
        assert status == 200, f"GET {self.url}{path}: HTTP {status} {body[:300]!r}"
        return json.loads(body)

    def upload(self, files: list[Path]) -> int:
        """Store DICOM files through the REST API (``POST /instances``); returns how many were stored."""
        for f in files:
            status, body = self.request("POST", "/instances", f.read_bytes(), "application/dicom")
            assert status == 200, f"uploading {f} to {self.url}: HTTP {status} {body[:300]!r}"
        return len(files)

    def series(self) -> list[dict[str, Any]]:
        """Every series held: Orthanc's expanded series records (``MainDicomTags``, ``Instances``, ``ParentStudy``)."""
        return self.json("/series?expand")

    def series_tags(self) -> dict[str, dict[str, Any]]:
        """SeriesInstanceUID -> ``{Modality, StudyInstanceUID, PatientID, instances}`` of every series held."""
        out = {}
        for s in self.series():
            study = self.json(f"/studies/{s['ParentStudy']}")
            out[s["MainDicomTags"]["SeriesInstanceUID"]] = {
                "Modality": s["MainDicomTags"].get("Modality"),
                "StudyInstanceUID": study["MainDicomTags"]["StudyInstanceUID"],
                "PatientID": study["PatientMainDicomTags"].get("PatientID"),
                "instances": len(s["Instances"]),
                "id": s["ID"],
            }
        return out

    def datasets(self, series_uid: str) -> list[Any]:
        """The instances of a series, read with pydicom from ``/instances/{id}/file``."""
        import pydicom

        tags = self.series_tags()
        assert series_uid in tags, f"series {series_uid} is not in Orthanc {self.url}: {sorted(tags)}"
        out = []
        for inst in self.json(f"/series/{tags[series_uid]['id']}/instances"):
            status, body = self.request("GET", f"/instances/{inst['ID']}/file")
            assert status == 200
            out.append(pydicom.dcmread(io.BytesIO(body)))
        return out


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """A running Orthanc (127.0.0.1, free ports, temporary storage) for one test module; stopped afterwards."""
    binary = require_tool("Orthanc", "orthanc", "pacs-tools")
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"), binary, dicomweb_plugin())
    server.start()
    try:
        yield server
    finally:
        server.stop()
