"""monai-fusion as a MONAI Label app: ``fusion`` infer and train tasks over a datastore of MRI + CT/PET/SPECT studies.

Start it (in the ``.venv-label`` environment that ``make label-env`` builds; see docs/label.md)::

    .venv-label/bin/python -m monailabel.main start_server --app apps/monailabel --studies STUDIES \\
        --host 127.0.0.1 --port 8000 [--conf method laplacian] [--conf model_dir DIR] ...

A study is two images of the datastore, ``<study>_MRI.<ext>`` and ``<study>_CT|PET|SPECT.<ext>`` (both PNG
slices or both NIfTI volumes). ``POST /infer/fusion?image=<either id>`` fuses them; ``POST /train/fusion``
runs the bundle's training on every 2D study.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from fastapi import HTTPException
from lib.config import FusionAppConfig
from lib.infers import FusionInferTask
from lib.studies import split_image_id, study_ids
from lib.trainers import FusionTrainTask
from monailabel.interfaces.app import MONAILabelApp
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
        studies: the datastore folder (or a DICOMweb URL; only local folders are tested).
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

    def _resolve_study(self, request: dict[str, Any], datastore: Any) -> dict[str, Any]:
        """Turn the request's image id (and an optional partner id ``other``) into the MRI id + partner path."""
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
        """MONAI Label's infer, with the study resolved first; bad input answers HTTP 400 with the message."""
        try:
            req = dict(request)
            if req.get("model") == "fusion":
                req = self._resolve_study(req, datastore or self.datastore())
            return super().infer(req, datastore)
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
