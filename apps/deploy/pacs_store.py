"""Send the fused series to a PACS (a DICOM storage SCP) with dcmtk's ``storescu``, and check that it arrived.

Sending is optional: set ``MONAI_FUSION_STORE_SCP=host:port:AET`` and the app sends its Secondary Capture series
once it is written. C-STORE is per file, so a failure can leave part of a series on the PACS; the app therefore
does, in order:

1. stage the series and the NIfTI in a hidden folder of the output folder (nothing is published yet);
2. send every file in one association (``storescu``, which halts at the first failed store);
3. ask the PACS how many instances of the new series it holds (C-FIND, ``NumberOfSeriesRelatedInstances``),
   because a PACS may drop an instance and still answer success;
4. only when all arrived, move the staged files into place; otherwise delete the staged files and, when
   ``MONAI_FUSION_STORE_REST`` names the PACS's Orthanc REST API, delete the instances already stored
   (``DELETE /series/{id}``): a roll-back. Without it the error names the partial series to delete.

The SDK-free half: nothing here imports ``monai.deploy``.

| variable | default | meaning |
| --- | --- | --- |
| ``MONAI_FUSION_STORE_SCP`` | unset | ``host:port:AET`` of the PACS to send the fused series to |
| ``MONAI_FUSION_STORE_AET`` | ``MONAIFUSION`` | the app's own (calling) AE title |
| ``MONAI_FUSION_STORE_REST`` | unset | Orthanc REST base URL (``http://host:8042``) for the roll-back |
| ``MONAI_FUSION_STORE_TIMEOUT`` | ``300`` | seconds allowed for sending (and for each query) |
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from monai_fusion.utils.errors import FusionInputError

__all__ = ["StoreError", "StoreTarget", "send_series", "stored_instances", "rollback"]


class StoreError(FusionInputError):
    """Sending the fused series failed; the message names the PACS and what is left on it.

    Attributes:
        connected: whether an association was accepted (``False``: nothing can have been stored).
    """

    def __init__(self, message: str, connected: bool = True) -> None:
        super().__init__(message)
        self.connected = connected


@dataclass(frozen=True)
class StoreTarget:
    """Where the fused series goes.

    Attributes:
        host: the PACS's host name or address.
        port: its DICOM port.
        called_aet: its AE title.
        calling_aet: the app's AE title (the PACS must know it).
        rest_url: Orthanc REST base URL used to roll a partial series back, or ``None``.
        timeout_s: bound on sending and on each query.
    """

    host: str
    port: int
    called_aet: str
    calling_aet: str = "MONAIFUSION"
    rest_url: str | None = None
    timeout_s: float = 300.0

    def __str__(self) -> str:
        return f"{self.called_aet}@{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "StoreTarget | None":
        """The target of ``MONAI_FUSION_STORE_*`` (module docstring), or ``None`` when sending is off.

        Raises:
            FusionInputError: a malformed value, naming the variable.
        """
        env = os.environ if env is None else env
        raw = env.get("MONAI_FUSION_STORE_SCP", "").strip()
        if not raw:
            return None
        parts = raw.rsplit(":", 2)
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not 0 < int(parts[1]) < 65536 or not parts[2]:
            raise FusionInputError(
                f"MONAI_FUSION_STORE_SCP={raw!r}: expected host:port:AET, e.g. 127.0.0.1:4242:ORTHANC"
            )
        timeout = env.get("MONAI_FUSION_STORE_TIMEOUT", "300").strip()
        try:
            timeout_s = float(timeout)
        except ValueError:
            timeout_s = -1.0
        if timeout_s <= 0:
            raise FusionInputError(f"MONAI_FUSION_STORE_TIMEOUT={timeout!r}: expected a positive number of seconds")
        rest = env.get("MONAI_FUSION_STORE_REST", "").strip().rstrip("/") or None
        if rest is not None and not rest.startswith(("http://", "https://")):
            raise FusionInputError(f"MONAI_FUSION_STORE_REST={rest!r}: expected an http(s) URL of Orthanc's REST API")
        calling = env.get("MONAI_FUSION_STORE_AET", "").strip() or "MONAIFUSION"
        return cls(parts[0], int(parts[1]), parts[2], calling, rest, timeout_s)

    def _dimse(self) -> list[str]:
        return ["-aet", self.calling_aet, "-aec", self.called_aet, "-to", "30", "-ta", "30", "-td", "60"]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StoreError(f"{name} (dcmtk) is not installed; it is needed to send to a PACS (apt-get install dcmtk)")
    return path


def stored_instances(target: StoreTarget, study_uid: str, series_uid: str) -> int:
    """How many instances of the series the PACS holds (C-FIND at SERIES level with ``findscu``).

    Raises:
        StoreError: the query failed (the PACS is unreachable or refused it).
    """
    with tempfile.TemporaryDirectory(prefix="findscu-") as tmp:
        cmd = [_tool("findscu"), "-S", *target._dimse(), "-X", "-od", tmp, target.host, str(target.port)]
        for key in ("QueryRetrieveLevel=SERIES", f"StudyInstanceUID={study_uid}", f"SeriesInstanceUID={series_uid}"):
            cmd += ["-k", key]
        cmd += ["-k", "NumberOfSeriesRelatedInstances"]
        proc = _run(cmd, target, "querying")
        answers = sorted(Path(tmp).glob("rsp*.dcm"))
        if not answers:
            return 0
        import pydicom

        value = pydicom.dcmread(answers[0]).get("NumberOfSeriesRelatedInstances", "")
        if value in ("", None):
            raise StoreError(f"{target} answered C-FIND without NumberOfSeriesRelatedInstances: {proc.stderr[-300:]}")
        return int(value)


def _run(cmd: list[str], target: StoreTarget, what: str) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", timeout=target.timeout_s)
    except subprocess.TimeoutExpired:
        raise StoreError(f"{what} {target}: no answer within {target.timeout_s:.0f} s") from None
    if proc.returncode != 0:
        out = proc.stdout + proc.stderr
        reason = [ln for ln in out.splitlines() if ln.startswith(("E:", "F:"))]
        raise StoreError(
            f"{what} {target} failed: {' '.join(reason[-2:]) or out[-300:]}",
            connected="Association Request Failed" not in out,
        )
    return proc


def rollback(target: StoreTarget, series_uid: str) -> str:
    """Delete the series from the PACS through Orthanc's REST API (``/tools/lookup``, ``DELETE /series/{id}``).

    Returns:
        What happened, for the error message.
    """
    if target.rest_url is None:
        return (
            f"instances of series {series_uid} may remain on {target}: delete them there "
            "(set MONAI_FUSION_STORE_REST to an Orthanc REST URL to have the app roll back)"
        )
    url = target.rest_url
    try:
        req = urllib.request.Request(url + "/tools/lookup", data=series_uid.encode(), method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            found = [r["ID"] for r in json.loads(resp.read()) if r.get("Type") == "Series"]
        for orthanc_id in found:
            delete = urllib.request.Request(f"{url}/series/{orthanc_id}", method="DELETE")
            with urllib.request.urlopen(delete, timeout=30):
                pass
    except (OSError, ValueError, KeyError) as err:
        return f"rolling back through {url} failed ({err}): instances of series {series_uid} may remain on {target}"
    return (
        f"the instances already stored were deleted through {url} (series {series_uid})"
        if found
        else (f"no instance of series {series_uid} is on {target}")
    )


def send_series(folder: Path, target: StoreTarget, study_uid: str, series_uid: str) -> int:
    """Send every ``*.dcm`` of ``folder`` in one association and check the PACS holds them all.

    Args:
        folder: the staged series (one series, written by ``write_dicom_series``).
        target: the PACS.
        study_uid: StudyInstanceUID of the series.
        series_uid: its SeriesInstanceUID.

    Returns:
        The number of instances stored.

    Raises:
        StoreError: sending failed or the PACS holds fewer instances than were sent; what was stored has been
            rolled back when possible (the message says so).
    """
    files = sorted(str(f) for f in Path(folder).glob("*.dcm"))
    if not files:
        raise StoreError(f"nothing to send to {target}: no DICOM file in {folder}")
    try:
        _run([_tool("storescu"), *target._dimse(), target.host, str(target.port), *files], target, "sending to")
        held = stored_instances(target, study_uid, series_uid)
        if held != len(files):
            raise StoreError(f"{target} holds {held} of the {len(files)} instances sent of series {series_uid}")
    except StoreError as err:
        left = rollback(target, series_uid) if err.connected else "nothing was stored (no association)"
        raise StoreError(f"{err}; {left}", err.connected) from None
    return len(files)
