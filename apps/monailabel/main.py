"""monai-fusion as a MONAI Label app: ``fusion`` infer and train tasks over a datastore of MRI + CT/PET/SPECT studies.

Start it (in the ``.venv-label`` environment that ``make label-env`` builds; see docs/label.md)::

    .venv-label/bin/python -m monailabel.main start_server --app apps/monailabel --studies STUDIES \\
        --host 127.0.0.1 --port 8000 [--conf method laplacian] [--conf model_dir DIR] ...

A study is two images of the datastore, ``<study>_MRI.<ext>`` and ``<study>_CT|PET|SPECT.<ext>`` (both PNG
slices or both NIfTI volumes). ``POST /infer/fusion?image=<either id>`` fuses them; ``POST /train/fusion``
runs the bundle's training on every 2D study.

With ``--studies http://HOST:PORT/dicom-web`` the datastore is a PACS (:mod:`lib.pacs`): an image id is a
SeriesInstanceUID, a study is the MR series and the CT/PT/NM series of one StudyInstanceUID, and the fused volume
is stored back into the MRI's study as a Secondary Capture series (request parameter ``store``, default true).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import requests
from fastapi import HTTPException
from lib.config import FusionAppConfig, parse_bool
from lib.infers import FusionInferTask
from lib.pacs import DICOMwebStoreError, FusionDICOMwebDatastore, store_fused
from lib.studies import dicomweb_study_ids, split_image_id, study_ids
from lib.trainers import FusionTrainTask
from monailabel.config import settings as label_settings
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask

from monai_fusion import __version__
from monai_fusion.utils.errors import FusionInputError, find_input_error

__all__ = ["FusionApp"]

logger = logging.getLogger(__name__)


class FusionApp(MONAILabelApp):
    """The app: one infer task and one train task, both named ``fusion``.

    Args:
        app_dir: this folder.
        studies: the datastore folder, or a DICOMweb URL (a PACS, see :mod:`lib.pacs`).
        conf: ``--conf`` settings, see :mod:`lib.config`.

    Raises:
        FusionInputError: bad settings (the server does not start).
    """

    def __init__(self, app_dir: str, studies: str, conf: Mapping[str, str]) -> None:
        self.settings = FusionAppConfig(app_dir, conf)
        logger.info(
            "monai-fusion %s: bundle %s, model %s (%s), method %s",
            __version__,
            self.settings.bundle,
            self.settings.model_path,
            "present" if self.settings.model_path.is_file() else "missing",
            self.settings.method,
        )
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=dict(conf),
            name="monai-fusion",
            description="Fuse a brain MRI with its CT, PET or SPECT (monai-fusion)",
            version=__version__,
        )

    def init_infers(self) -> dict[str, InferTask]:
        """The ``fusion`` infer task."""
        method = self.settings.method
        if method == "auto":
            method = (
                f"auto: the bundle network ({self.settings.model_path}) when present, else the shipped default model"
            )
        return {"fusion": FusionInferTask(self.settings, f"Fuse a study's MRI with its CT/PET/SPECT; method {method}")}

    def init_trainers(self) -> dict[str, TrainTask]:
        """The ``fusion`` train task."""
        return {
            "fusion": FusionTrainTask(
                self.settings, "Train the bundle's fusion network on the datastore's 2D studies (configs/train.json)"
            )
        }

    def init_remote_datastore(self) -> Datastore:
        """A DICOMweb URL: the app's PACS datastore (every MR/CT/PT/NM series; no dcmqi download, no SEG)."""
        if label_settings.MONAI_LABEL_DATASTORE.lower() not in ("", "dicomweb"):
            return super().init_remote_datastore()
        cache = (label_settings.MONAI_LABEL_DICOMWEB_CACHE_PATH or "").strip() or None
        return FusionDICOMwebDatastore(self.studies, cache_path=cache)

    def info(self) -> dict[str, Any]:
        """MONAI Label's info (every infer request asks it first); an unreachable PACS answers 502 naming it."""
        try:
            return super().info()
        except DICOMwebStoreError as err:
            logger.error("info: %s", err)
            raise HTTPException(status_code=502, detail=str(err)) from err

    def _resolve_dicomweb_study(self, request: dict[str, Any], datastore: FusionDICOMwebDatastore) -> dict[str, Any]:
        """A PACS series id -> the MRI series id, the partner's cached NIfTI, the modality and the study UID."""
        image = request.get("image")
        if not isinstance(image, str) or request.get("other"):
            return request
        mri_id, other_id, modality, study_uid = dicomweb_study_ids(image, datastore.series_index())
        out = dict(request)
        out.update(image=mri_id, other=datastore.get_image_uri(other_id), modality=modality, study=study_uid)
        out["mri_series"] = mri_id
        return out

    def _resolve_study(self, request: dict[str, Any], datastore: Any) -> dict[str, Any]:
        """Turn the request's image id (and an optional partner id ``other``) into the MRI id + partner path."""
        if isinstance(datastore, FusionDICOMwebDatastore):
            return self._resolve_dicomweb_study(request, datastore)
        image = request.get("image")
        ids = set(datastore.list_images())
        if not isinstance(image, str) or image not in ids:
            return request  # a path or an uploaded file: the task finds the partner beside it, or takes 'other'
        other = request.get("other")
        if not other:
            mri_id, other_id, modality = study_ids(image, sorted(ids))
        elif other in ids:
            parts = split_image_id(other)
            if parts is not None and parts[1] == "MRI":
                image, other = other, image
                parts = split_image_id(other)
            modality = request.get("modality") or (parts[1] if parts else None)
            if not modality:
                raise FusionInputError(
                    f"other {other!r}: its id does not say its modality (<study>_CT|PET|SPECT); "
                    "pass request parameter 'modality'"
                )
            mri_id, other_id = image, other
        else:
            return request  # 'other' given as a path
        out = dict(request)
        parts = split_image_id(mri_id)
        out.update(
            image=mri_id,
            other=datastore.get_image_uri(other_id),
            modality=str(modality).upper(),
            study=parts[0] if parts else mri_id,
        )
        return out

    def infer(self, request: Mapping[str, Any], datastore: Any = None) -> dict[str, Any]:
        """MONAI Label's infer, with the study resolved first, and the result stored back to a PACS datastore.

        Bad input answers HTTP 400 with the message; an unreachable PACS or a failed store answers 502 naming it.
        """
        dstore: Any = None
        try:
            req = dict(request)
            dstore = datastore or self.datastore()
            if req.get("model") == "fusion":
                req = self._resolve_study(req, dstore)
            result = super().infer(req, datastore)
            if req.get("mri_series") and parse_bool(req.get("store", True), "store"):
                method = str(result["params"].get("method", "fusion"))
                result["params"]["stored"] = store_fused(dstore, result["file"], req["mri_series"], method)
            return result
        except DICOMwebStoreError as err:
            logger.error("infer: %s", err)
            raise HTTPException(status_code=502, detail=str(err)) from err
        except requests.RequestException as err:
            url = getattr(dstore, "url", self.studies)
            logger.error("infer: DICOMweb server %s: %s", url, err)
            raise HTTPException(status_code=502, detail=f"DICOMweb server {url} failed: {err}") from err
        except Exception as err:
            cause = find_input_error(err)
            if cause is None:
                raise
            logger.error("infer: %s", cause)
            raise HTTPException(status_code=400, detail=str(cause)) from err

    def train(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """MONAI Label's train; bad options answer HTTP 400 with the message (``run_sync``) or end the task."""
        try:
            return super().train(dict(request))
        except Exception as err:
            cause = find_input_error(err)
            if cause is None:
                raise
            logger.error("train: %s", cause)
            raise HTTPException(status_code=400, detail=str(cause)) from err
