"""MONAI Deploy application: fuse a study's MRI with its CT/PET/SPECT series, DICOM in, DICOM + NIfTI out.

    StudyLoaderOperator (the SDK's DICOMDataLoaderOperator; CountCondition 1)
      -> ModalitySeriesSelectorOperator "MRI"        (Modality MR)       -> DICOMSeriesToVolumeOperator -+
      -> ModalitySeriesSelectorOperator "functional" (Modality CT|PT|NM) -> DICOMSeriesToVolumeOperator -+
                                                                  FusionOperator (library preset path) <-+
        -> FusedSeriesWriterOperator (OUT/dicom, OUT/fused.nii.gz; sent to a PACS with MONAI_FUSION_STORE_SCP)

Run: ``python apps/deploy/app.py -i STUDY_DIR -o OUT [-m MODEL_DIR]`` (settings: ``fusion_core``'s and
``pacs_store``'s environment variables). Bad input, or a failed send to the PACS, ends with one ``error:`` line
and exit code 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

from monai.deploy.conditions import CountCondition
from monai.deploy.core import Application, init_app_context
from monai.deploy.operators.dicom_series_to_volume_operator import DICOMSeriesToVolumeOperator

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, also under `python -m` / runpy

from fusion_core import DeploySettings, check_outputs, choose_method, find_bundle_model, selection_rules  # noqa: E402
from fusion_operators import (  # noqa: E402
    FusedSeriesWriterOperator,
    FusionOperator,
    ModalitySeriesSelectorOperator,
    StudyLoaderOperator,
)
from pacs_store import StoreTarget  # noqa: E402

from monai_fusion.utils.errors import FusionInputError, find_input_error  # noqa: E402

__all__ = ["FusionDeployApp", "main"]

logger = logging.getLogger("monai_fusion.deploy")


class FusionDeployApp(Application):
    """DICOM study in (an MR series and one CT, PT or NM series), fused Secondary Capture series and NIfTI out."""

    name = "monai_fusion_deploy"
    description = "Fuses a brain MRI with its CT, PET or SPECT series (monai-fusion)."
    version = "0.1.0"

    def compose(self) -> None:
        """Build the operator graph (settings, method and outputs are checked here, before any work)."""
        app_context = init_app_context(self.argv)
        input_path, output_path = Path(app_context.input_path), Path(app_context.output_path)
        if not input_path.is_dir():
            raise FusionInputError(f"input {input_path} is not a folder; expected a folder of DICOM files (-i)")
        settings = DeploySettings.from_env()
        model, searched = find_bundle_model(app_context.model_path)
        choice = choose_method(settings.method, model, searched)
        store = StoreTarget.from_env()
        logger.info("fusion method: %s (%s)", choice.name, choice.reason)
        output_path.mkdir(parents=True, exist_ok=True)
        check_outputs(output_path, input_path, settings.overwrite)

        if store is not None:
            logger.info("the fused series will be sent to %s (MONAI_FUSION_STORE_SCP)", store)
        loader = StudyLoaderOperator(self, CountCondition(self, 1), input_folder=input_path, name="study_loader_op")
        mri_sel = ModalitySeriesSelectorOperator(
            self,
            what="MRI",
            rules=selection_rules("MRI", ("MR",), settings.mri_series),
            input_folder=input_path,
            choose_env="MONAI_FUSION_MRI_SERIES",
            name="mri_selector_op",
        )
        other_sel = ModalitySeriesSelectorOperator(
            self,
            what="CT/PET/SPECT",
            rules=selection_rules("functional", ("CT", "PT", "NM"), settings.other_series),
            input_folder=input_path,
            choose_env="MONAI_FUSION_OTHER_SERIES",
            name="functional_selector_op",
        )
        mri_vol = DICOMSeriesToVolumeOperator(self, name="mri_to_volume_op")
        other_vol = DICOMSeriesToVolumeOperator(self, name="functional_to_volume_op")
        fusion = FusionOperator(self, settings=settings, choice=choice, name="fusion_op")
        writer = FusedSeriesWriterOperator(
            self,
            output_folder=output_path,
            protect=input_path,
            overwrite=settings.overwrite,
            store=store,
            name="fused_writer_op",
        )

        self.add_flow(loader, mri_sel, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(loader, other_sel, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(mri_sel, mri_vol, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(other_sel, other_vol, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(mri_vol, fusion, {("image", "mri_image")})
        self.add_flow(other_vol, fusion, {("image", "other_image")})
        self.add_flow(mri_sel, fusion, {("study_selected_series_list", "mri_series")})
        self.add_flow(other_sel, fusion, {("study_selected_series_list", "other_series")})
        self.add_flow(fusion, writer, {("fused", "fused")})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app; bad input gives one ``error:`` line on stderr and exit code 2.

    Args:
        argv: ``[program, -i, IN, -o, OUT, ...]`` (default: ``sys.argv``).

    Returns:
        The exit code.
    """
    app = FusionDeployApp(list(argv) if argv is not None else None)
    try:
        app.run()
    except Exception as err:  # Holoscan re-raises an operator's exception after stopping the graph
        cause = find_input_error(err)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
