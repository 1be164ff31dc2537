"""A DICOMweb PACS (Orthanc, say) as the app's datastore: studies paired by StudyInstanceUID, results stored back.

Started with ``--studies http://HOST:PORT/dicom-web``, MONAI Label 0.8.5 would list CT series only (its default
search filter), download dcmqi from GitHub at start-up and save results only as DICOM SEG. The app's own
:class:`FusionDICOMwebDatastore` instead lists the MR, CT, PT and NM series (an image id is a SeriesInstanceUID),
downloads and converts series as MONAI Label does (cached NIfTI), and :func:`store_fused` sends a fused volume
back as a Secondary Capture series of the MRI's study (``write_dicom_series``) with STOW-RS.

Storing is all or nothing as far as the server allows: every instance goes in one STOW-RS request, then the
server is asked (QIDO-RS) how many instances of the new series it holds; when that is not all of them, the
partial series is deleted through Orthanc's REST API (``DELETE /series/{id}``, beside ``/dicom-web``) and the
error says what was done. Every HTTP request has a timeout.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import requests
from monailabel.datastore.dicom import DICOMwebClientX, DICOMWebDatastore
from pydicom.dataset import Dataset

from .studies import DICOM_MODALITIES

__all__ = ["DICOMwebStoreError", "FusionDICOMwebDatastore", "store_fused"]

logger = logging.getLogger(__name__)


class DICOMwebStoreError(RuntimeError):
    """The DICOMweb server could not be reached or did not store the whole series (the message names its URL)."""


class _TimeoutSession(requests.Session):
    """A requests session whose every request has a timeout (dicomweb-client passes none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(*args, **kwargs)


class FusionDICOMwebDatastore(DICOMWebDatastore):
    """MONAI Label's DICOMweb datastore listing every MR, CT, PT and NM series of the server.

    Args:
        url: the DICOMweb root (``http://127.0.0.1:8042/dicom-web``).
        cache_path: where downloaded series and their NIfTI conversions are kept.
        timeout: seconds allowed for each HTTP request.
    """

    def __init__(self, url: str, cache_path: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        client = DICOMwebClientX(url=self.url, session=_TimeoutSession(timeout))
        super().__init__(client=client, search_filter={}, cache_path=cache_path)

    def series_index(self) -> list[tuple[str, str, str]]:
        """``(SeriesInstanceUID, StudyInstanceUID, Modality)`` of every listed series (one QIDO-RS query).

        Raises:
            DICOMwebStoreError: the server does not answer.
        """
        try:
            found = self._client.search_for_series(fields=["StudyInstanceUID", "Modality"])
        except requests.RequestException as err:
            raise DICOMwebStoreError(f"DICOMweb server {self.url} did not answer the series query: {err}") from err
        out = []
        for item in found:
            ds = Dataset.from_json(item)
            modality = str(ds.get("Modality", "")).upper()
            if modality in DICOM_MODALITIES:
                out.append((str(ds.SeriesInstanceUID), str(ds.StudyInstanceUID), modality))
        return sorted(out)

    def list_images(self) -> list[str]:
        """The SeriesInstanceUIDs of the MR, CT, PT and NM series (asked anew each time: a PACS changes)."""
        return [uid for uid, _, _ in self.series_index()]

    def series_folder(self, series_uid: str) -> Path:
        """The cache folder of a downloaded series (``get_image_uri`` fills it)."""
        return Path(self._datastore.image_path()) / series_uid


def _server_root(url: str) -> str:
    return url[: -len("/dicom-web")] if url.endswith("/dicom-web") else url


def _rollback(datastore: FusionDICOMwebDatastore, series_uid: str) -> str:
    """Delete a partially stored series through Orthanc's REST API; what happened, for the message."""
    root = _server_root(datastore.url)
    session = datastore._client._session
    try:
        found = session.post(f"{root}/tools/lookup", data=series_uid).json()
        ids = [r["ID"] for r in found if r.get("Type") == "Series"]
        for orthanc_id in ids:
            session.delete(f"{root}/series/{orthanc_id}").raise_for_status()
    except (requests.RequestException, ValueError, KeyError) as err:
        return f"deleting the partial series {series_uid} through {root} failed ({err}); delete it there"
    return f"the partial series {series_uid} was deleted through {root}" if ids else "nothing was stored"


def store_fused(
    datastore: FusionDICOMwebDatastore, nifti: str | Path, mri_series_uid: str, method: str
) -> dict[str, Any]:
    """Store a fused NIfTI (the infer result, on the MRI's grid) as a Secondary Capture series of the MRI's study.

    Args:
        datastore: the DICOMweb datastore (the MRI series is in its cache).
        nifti: the fused volume written by the infer task.
        mri_series_uid: the MRI's SeriesInstanceUID: patient and study identifiers come from its first file.
        method: the fusion method, named in the series description.

    Returns:
        ``{"url", "SeriesInstanceUID", "StudyInstanceUID", "PatientID", "instances"}``.

    Raises:
        DICOMwebStoreError: the server is unreachable or holds fewer instances than were sent (rolled back).
    """
    import nibabel as nib
    import numpy as np
    import pydicom

    from monai_fusion.data.dicom import write_dicom_series

    files = sorted(datastore.series_folder(mri_series_uid).glob("*.dcm"))
    if not files:
        raise DICOMwebStoreError(f"MRI series {mri_series_uid} is not in the cache of {datastore.url}")
    reference = pydicom.dcmread(files[0], stop_before_pixels=True)
    img = nib.load(str(nifti))
    data = np.asarray(img.dataobj, dtype=np.float32)
    array = np.moveaxis(data, -1, 0) if data.ndim == 4 else data[None]
    with tempfile.TemporaryDirectory(prefix="fused-dicom-") as tmp:
        folder = write_dicom_series(array, img.affine, Path(tmp) / "dicom", reference=reference, method=method)
        datasets = [pydicom.dcmread(f) for f in sorted(folder.glob("*.dcm"))]
    study_uid, series_uid = str(datasets[0].StudyInstanceUID), str(datasets[0].SeriesInstanceUID)
    client = datastore._client
    try:
        client.store_instances(datasets, study_instance_uid=study_uid)
        held = len(client.search_for_instances(study_uid, series_uid, fields=["SOPInstanceUID"]) or [])
    except requests.RequestException as err:
        refused = isinstance(err, requests.ConnectionError) and "Connection refused" in str(err)
        left = "nothing was stored (the connection was refused)" if refused else _rollback(datastore, series_uid)
        raise DICOMwebStoreError(f"storing the fused series to {datastore.url} failed: {err}; {left}") from err
    if held != len(datasets):
        left = _rollback(datastore, series_uid)
        raise DICOMwebStoreError(
            f"{datastore.url} holds {held} of the {len(datasets)} instances sent of series {series_uid}; {left}"
        )
    logger.info("stored %d instances of series %s to %s", held, series_uid, datastore.url)
    return {
        "url": datastore.url,
        "SeriesInstanceUID": series_uid,
        "StudyInstanceUID": study_uid,
        "PatientID": str(reference.get("PatientID", "")),
        "instances": held,
    }
