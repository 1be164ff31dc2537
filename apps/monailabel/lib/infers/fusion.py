"""The ``fusion`` infer task: a study's MRI fused with its CT, PET or SPECT through the library's one path.

``fusion_preprocess`` (load, register, check, normalise, colour split) -> fuser (the bundle network or a
classical rule, :func:`monai_fusion.fusers.get_fuser`) -> ``fuse_sample`` (slice-wise for volumes, colour
merged back) -> the library's writers: an 8-bit PNG (RGB for PET/SPECT, grey for CT) for 2D studies, a
float32 NIfTI on the MRI's grid (RGB as a last axis of 3) for volumes.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from monai.inferers import Inferer, SimpleInferer
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.tasks.infer.basic_infer import BasicInferTask

from monai_fusion import __version__
from monai_fusion.data.io import write_nifti, write_png
from monai_fusion.engines.inference import fuse_sample
from monai_fusion.transforms.presets import fusion_preprocess
from monai_fusion.utils.constants import check_modality
from monai_fusion.utils.errors import FusionInputError

from ..config import FusionAppConfig, parse_bool, parse_value
from ..studies import find_study_pair

__all__ = ["FusionInferTask"]

logger = logging.getLogger(__name__)


class _ResolvePaird:
    """Set ``mri``, ``other``, ``modality`` of the request: given by the app (``other``/``modality``) or
    found by the study naming convention beside ``image``."""

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        d = dict(data)
        image = d.get("image")
        if not isinstance(image, str) or not image:
            raise FusionInputError("fusion: the request has no image path (give an image id of the datastore)")
        if d.get("other") and d.get("modality"):
            mod = check_modality(str(d["modality"]), 1, "fusion: modality")[0]
            d.update(
                mri=image,
                other=str(d["other"]),
                modality=mod,
                study=d.get("study", Path(image).name),
                mri_path=image,
                other_path=str(d["other"]),
            )
            return d
        pair = find_study_pair(image, d.get("other") or None)
        d.update(
            mri=str(pair.mri),
            other=str(pair.other),
            modality=pair.modality,
            study=pair.study,
            mri_path=str(pair.mri),
            other_path=str(pair.other),
        )
        return d


class FusionInferTask(BasicInferTask):
    """Fuse a study's MRI with its CT/PET/SPECT (``InferType.OTHERS``: the result is an image, not a label).

    Request parameters (besides MONAI Label's ``image`` and ``device``): ``method`` (``auto``, ``bundle`` or a
    classical name; default the app's ``--conf method``), ``register`` (``true``/``false``), ``other`` (the
    partner's path when it is not found by name; the app resolves an image id to a path) and ``modality``.

    Args:
        settings: the app's parsed ``--conf`` settings (bundle, model folder, default method, ...).
        description: shown by ``/info/`` and the clients.
    """

    def __init__(self, settings: FusionAppConfig, description: str) -> None:
        self.settings = settings
        super().__init__(
            path=str(settings.model_path),
            network=None,
            type=InferType.OTHERS,
            labels=None,
            dimension=3,
            description=description,
            config={"method": settings.method, "register": settings.register},
        )

    def is_valid(self) -> bool:
        """Always listed: ``auto`` and classical methods run without a model file, and ``bundle`` was checked
        at start-up."""
        return True

    def pre_transforms(self, data: dict[str, Any] | None = None) -> Sequence[Callable]:
        """Find the pair, then the library's ``fusion_preprocess`` (registration per the request)."""
        register = parse_bool((data or {}).get("register", self.settings.register), "register")
        return [_ResolvePaird(), fusion_preprocess(register=register)]

    def inferer(self, data: dict[str, Any] | None = None) -> Inferer:
        """Unused by :meth:`run_inferer` (fusers take two inputs); MONAI's plain inferer for completeness."""
        return SimpleInferer()

    def post_transforms(self, data: dict[str, Any] | None = None) -> Sequence[Callable]:
        """None: colour is merged back inside ``fuse_sample`` (``fusion_postprocess``)."""
        return []

    def run_inferer(self, data: dict[str, Any], convert_to_batch: bool = True, device: str = "cuda") -> dict[str, Any]:
        """Fuse with the resolved method; ``data["fused"]`` is RGB ``(3, ...)`` for PET/SPECT, grey otherwise.

        Returns:
            ``data`` with ``fused`` and ``fusion_info`` (the method actually used, weights and network).
        """
        method = self.settings.resolve(str(data["method"]) if data.get("method") else None)
        if method != "bundle" and self.settings.method == "auto" and not data.get("method"):
            logger.warning(
                "fusion: no trained model at %s; using the classical '%s' rule (method auto)",
                self.settings.model_path,
                method,
            )
        fuser, info = self.settings.fuser(method, device=str(device))
        batch = int(parse_value(data.get("batch_size", self.settings.batch_size)))
        out = fuse_sample(data, fuser, batch_size=batch, device=device)
        out["fusion_info"] = info
        return out

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
        """Write the fused image with the library's writers into a temporary file (MONAI Label sends and deletes it).

        Returns:
            The file path and the result JSON (study, inputs, modality, method, shape, registration).
        """
        fused = data["fused"]
        arr = np.asarray(fused)
        volume = arr.ndim == 4
        fd, name = tempfile.mkstemp(prefix="fused_", suffix=".nii.gz" if volume else ".png")
        os.close(fd)
        if volume:
            header = None
            if data["mri_path"].lower().endswith((".nii", ".nii.gz")):  # keep the MRI's NIfTI header, as the CLI does
                import nibabel as nib

                header = nib.load(data["mri_path"]).header
            write_nifti(arr, np.asarray(fused.affine), name, overwrite=True, header=header)
        else:
            write_png(arr, name, overwrite=True)
        result = {
            "study": data.get("study"),
            "mri": data["mri_path"],
            "other": data["other_path"],
            "modality": data["modality"],
            **data["fusion_info"],
            "register": parse_bool(data.get("register", self.settings.register), "register"),
            "shape": list(arr.shape),
            "format": "nifti float32" if volume else ("png uint8 rgb" if arr.shape[0] == 3 else "png uint8 grey"),
            "monai_fusion": __version__,
        }
        return name, result
