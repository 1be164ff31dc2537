"""The app's own operators: a modality selector with clear errors, the fusion operator, the fused-series writer.

The fusion operator calls the library (``fusion_core.fuse_volumes``: ``fusion_preprocess`` ->
``get_fuser`` -> ``fuse_sample``); the writer calls ``monai_fusion.data.dicom.write_dicom_series``
(Secondary Capture, RGB for colour fusions, MONOCHROME2 for grey) and ``data.io.write_nifti``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from fusion_core import (
    MODALITY_OF_DICOM,
    DeploySettings,
    MethodChoice,
    check_outputs,
    fuse_volumes,
    series_geometry,
    volume_to_metatensor,
)
from monai.deploy.core import ConditionType, Fragment, Operator, OperatorSpec
from monai.deploy.operators.dicom_data_loader_operator import DICOMDataLoaderOperator
from monai.deploy.operators.dicom_series_selector_operator import DICOMSeriesSelectorOperator
from pacs_store import StoreTarget, send_series

from monai_fusion.data.dicom import patient_mismatch
from monai_fusion.data.units import dicom_units
from monai_fusion.engines.inference import processing_notes
from monai_fusion.utils.constants import COLOUR_MODALITIES
from monai_fusion.utils.errors import FusionInputError

__all__ = ["StudyLoaderOperator", "ModalitySeriesSelectorOperator", "FusionOperator", "FusedSeriesWriterOperator"]

logger = logging.getLogger("monai_fusion.deploy")


def _series_listing(dicom_study_list: Any) -> str:
    rows = []
    for study in dicom_study_list or []:
        for s in study.get_all_series():
            rows.append(
                f"{s.Modality or '?'} {s.SeriesInstanceUID} ({len(s.get_sop_instances())} files, "
                f"'{s.SeriesDescription or ''}')"
            )
    return "; ".join(rows) or "none"


class StudyLoaderOperator(DICOMDataLoaderOperator):
    """The SDK's loader, which also keeps series whose ``SeriesNumber`` is present but empty.

    SeriesNumber is Type 2 (present, may be empty; GDCM writes it empty when none is given). The SDK 4.0 loader
    calls ``int()`` on the empty value, logs "Error parsing SOP Instance" and drops the whole series, so such a
    study looked empty ("series found: none"). Here an empty SeriesNumber is left out of the series attributes.
    """

    def populate_series_attributes(self, series: Any, sop_instance: Any) -> None:
        """As the SDK's, with an empty SeriesNumber treated as absent."""
        if "SeriesNumber" in sop_instance and sop_instance["SeriesNumber"].value in (None, ""):
            sop_instance = sop_instance.copy()  # shallow: the instance itself keeps its element
            del sop_instance["SeriesNumber"]
        super().populate_series_attributes(series, sop_instance)


class ModalitySeriesSelectorOperator(DICOMSeriesSelectorOperator):
    """The SDK's series selector with one rule by Modality, which insists on exactly one matching series.

    Named input ``dicom_study_list``; named output ``study_selected_series_list`` (one study, one series).

    Args:
        fragment: the application.
        what: how to name the selection in messages (``MRI``, ``functional``).
        rules: selection rules (``fusion_core.selection_rules``).
        input_folder: the app's input folder, named in messages.
        choose_env: the environment variable that picks one of several matches.
    """

    def __init__(
        self, fragment: Fragment, *args: Any, what: str, rules: str, input_folder: Path, choose_env: str, **kwargs: Any
    ) -> None:
        self.what, self.input_folder, self.choose_env = what, Path(input_folder), choose_env
        super().__init__(fragment, *args, rules=rules, all_matched=True, **kwargs)

    def filter(
        self,
        selection_rules: Any,
        dicom_study_list: Any,
        all_matched: bool = False,
        sort_by_sop_instance_count: bool = False,
    ) -> list[Any]:
        """Select with the SDK's rules, then require exactly one series.

        Raises:
            FusionInputError: no series matches (the series found are listed) or several do.
        """
        selected = super().filter(selection_rules, dicom_study_list, True, False)
        matches = [(st, ss) for st in selected for ss in st.selected_series]
        wanted = selection_rules["selections"][0]["conditions"]["Modality"]
        if not matches:
            raise FusionInputError(
                f"no {self.what} series (Modality {wanted}) found in {self.input_folder}; "
                f"series found: {_series_listing(dicom_study_list)}"
            )
        if len(matches) > 1:
            listing = "; ".join(
                f"{ss.series.Modality} {ss.series.SeriesInstanceUID} ('{ss.series.SeriesDescription or ''}')"
                for _, ss in matches
            )
            raise FusionInputError(
                f"{len(matches)} {self.what} series found in {self.input_folder}; choose one with "
                f"{self.choose_env}=<SeriesInstanceUID>: {listing}"
            )
        study, chosen = matches[0]
        study.selected_series[:] = [chosen]
        logger.info(
            "%s series: %s %s ('%s', %d files)",
            self.what,
            chosen.series.Modality,
            chosen.series.SeriesInstanceUID,
            chosen.series.SeriesDescription or "",
            len(chosen.series.get_sop_instances()),
        )
        return [study]


def _first_dataset(study_selected_series_list: Any) -> Any:
    """The first SOP instance's pydicom Dataset of the one selected series."""
    series = study_selected_series_list[0].selected_series[0].series
    return series.get_sop_instances()[0].get_native_sop_instance()


class FusionOperator(Operator):
    """Register the functional volume onto the MRI and fuse them with the library.

    Named inputs: ``mri_image`` and ``other_image`` (SDK ``Image`` volumes), ``mri_series`` and
    ``other_series`` (the selectors' ``study_selected_series_list``, for the headers).
    Named output: ``fused``, a dict with ``array`` ``(C, X, Y, Z)`` in [0, 1], ``affine``,
    ``reference`` (the MRI's first header), ``method``, ``modality`` and ``timings``.

    Args:
        fragment: the application.
        settings: the app's settings.
        choice: the fusion method.
    """

    def __init__(
        self, fragment: Fragment, *args: Any, settings: DeploySettings, choice: MethodChoice, **kwargs: Any
    ) -> None:
        self.settings, self.choice = settings, choice
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        """Declare the ports."""
        for name in ("mri_image", "other_image", "mri_series", "other_series"):
            spec.input(name)
        spec.output("fused").condition(ConditionType.NONE)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Fuse the received pair and emit the result."""
        mri_img, other_img = op_input.receive("mri_image"), op_input.receive("other_image")
        mri_ds = _first_dataset(op_input.receive("mri_series"))
        other_ds = _first_dataset(op_input.receive("other_series"))
        dicom_mod = str(other_ds.get("Modality", "")).upper()
        modality = MODALITY_OF_DICOM[dicom_mod]
        mismatch = patient_mismatch(mri_ds, other_ds, modality)
        if mismatch:
            raise FusionInputError(f"{mismatch}; refusing to fuse two patients")
        t0 = time.perf_counter()
        mri_meta, other_meta = mri_img.metadata(), other_img.metadata()
        mri = volume_to_metatensor(
            mri_img.asnumpy(), series_geometry(mri_meta), "MRI", f"MR series {mri_meta.get('SeriesInstanceUID')}"
        )
        other = volume_to_metatensor(
            other_img.asnumpy(),
            series_geometry(other_meta),
            modality,
            f"{dicom_mod} series {other_meta.get('SeriesInstanceUID')}",
            bits_stored=int(other_ds.get("BitsStored", 8)),
        )
        # HU / SUV from the series' tags: the clinical window (MONAI_FUSION_WINDOW)
        other.meta.update(dicom_units(other_ds, modality, float(other.min())))
        colormap = "auto" if self.settings.pet_colours == "wba" else self.settings.pet_colours
        if other.shape[0] == 3 or modality not in COLOUR_MODALITIES:
            colormap = "auto"  # RGB renderings keep their colours; CT stays grey
        device = self.settings.torch_device()
        logger.info(
            "fusing MRI %s with %s %s: method '%s' (%s), registration %s, device %s",
            tuple(mri.shape[1:]),
            modality,
            tuple(other.shape[1:]),
            self.choice.name,
            self.choice.reason,
            "on" if self.settings.register else "off",
            device,
        )
        result = fuse_volumes(
            mri,
            other,
            modality,
            self.choice,
            register=self.settings.register,
            device=device,
            colormap=colormap,
            window=self.settings.window,
        )
        t1 = time.perf_counter()
        notes = processing_notes(result)
        rendering = f"colour map {notes.get('colormap', 'none')}; {notes.get('intensity_window', '')}"
        logger.info("%s series: %s (MONAI_FUSION_PET_COLOURS, MONAI_FUSION_WINDOW)", modality, rendering)
        reg = result["other"].meta.get("registration") if hasattr(result["other"], "meta") else None
        if isinstance(reg, dict) and "metric_value" in reg:
            params = ", ".join(f"{float(v):.3g}" for v in reg.get("parameters", []))
            logger.info(
                "registration: Mattes MI %.4f -> %.4f in %s iterations; SimpleITK parameters [%s]",
                float(reg.get("initial_metric_value", float("nan"))),
                float(reg["metric_value"]),
                reg.get("iterations"),
                params,
            )
        fused = result["fused"]
        op_output.emit(
            {
                "array": np.asarray(fused),
                "affine": np.asarray(fused.affine),
                "reference": mri_ds,
                "method": self.choice.name,
                "modality": modality,
                "rendering": f"{modality}: {rendering}",
                "timings": {"convert_register_fuse_s": t1 - t0},
            },
            "fused",
        )


class FusedSeriesWriterOperator(Operator):
    """Write the fused volume as a DICOM Secondary Capture series (``OUT/dicom``) and a NIfTI (``OUT/fused.nii.gz``),
    and send the series to a PACS when ``store`` is given (``pacs_store``).

    With a PACS, both outputs are staged in a hidden folder of ``OUT`` and published only once the PACS holds the
    whole series; a failed send leaves no output behind (and no partial series on the PACS, see ``pacs_store``).

    Named input: ``fused`` (from :class:`FusionOperator`).

    Args:
        fragment: the application.
        output_folder: the app's output folder.
        protect: the input folder (never written into).
        overwrite: replace existing outputs.
        store: the PACS to send the series to, or ``None``.
    """

    def __init__(
        self,
        fragment: Fragment,
        *args: Any,
        output_folder: Path,
        protect: Path,
        overwrite: bool = False,
        store: StoreTarget | None = None,
        **kwargs: Any,
    ) -> None:
        self.output_folder, self.protect, self.overwrite = Path(output_folder), Path(protect), overwrite
        self.store = store
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        """Declare the port."""
        spec.input("fused")

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Write both outputs (staged, sent and then published when a PACS is set)."""
        r = op_input.receive("fused")
        t0 = time.perf_counter()
        check_outputs(self.output_folder, self.protect, self.overwrite)
        if self.store is None:
            dicom_dir, nifti = self._write(r, self.output_folder)
        else:
            staging = Path(tempfile.mkdtemp(prefix=".fused-staging-", dir=self.output_folder))
            try:
                dicom_dir, nifti = self._write(r, staging)
                first = sorted(dicom_dir.glob("*.dcm"))[0]
                import pydicom

                head = pydicom.dcmread(first, stop_before_pixels=True)
                sent = send_series(dicom_dir, self.store, str(head.StudyInstanceUID), str(head.SeriesInstanceUID))
                logger.info(
                    "stored %d instances of series %s on %s (C-FIND count checked)",
                    sent,
                    head.SeriesInstanceUID,
                    self.store,
                )
                dicom_dir, nifti = self._publish(dicom_dir, nifti)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        kind = "RGB" if r["array"].shape[0] == 3 else "MONOCHROME2"
        logger.info(
            "wrote %s (%d slices, %s, %dx%d) and %s in %.2f s; fusion took %.2f s",
            dicom_dir,
            r["array"].shape[3],
            kind,
            r["array"].shape[1],
            r["array"].shape[2],
            nifti,
            time.perf_counter() - t0,
            r["timings"]["convert_register_fuse_s"],
        )

    def _write(self, r: dict[str, Any], folder: Path) -> tuple[Path, Path]:
        from monai_fusion.data.dicom import write_dicom_series
        from monai_fusion.data.io import write_nifti

        dicom_dir = write_dicom_series(
            r["array"],
            r["affine"],
            folder / "dicom",
            reference=r["reference"],
            method=r["method"],
            overwrite=self.overwrite,
            protect=[self.protect],
            description=r.get("rendering"),
        )
        nifti = write_nifti(
            r["array"], r["affine"], folder / "fused.nii.gz", overwrite=self.overwrite, description=r.get("rendering")
        )
        return Path(dicom_dir), Path(nifti)

    def _publish(self, dicom_dir: Path, nifti: Path) -> tuple[Path, Path]:
        """Move the staged outputs into the output folder (replacing old ones only under ``overwrite``)."""
        out_dicom, out_nifti = self.output_folder / "dicom", self.output_folder / "fused.nii.gz"
        check_outputs(self.output_folder, self.protect, self.overwrite)
        if out_dicom.exists():
            shutil.rmtree(out_dicom)
        os.replace(dicom_dir, out_dicom)
        os.replace(nifti, out_nifti)
        return out_dicom, out_nifti
