"""Write each fused output of an evaluator as a PNG under the chosen folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from ignite.engine import Engine, Events

from ..utils.constants import PAIR_TYPES
from ..utils.errors import FusionInputError
from ..utils.paths import output_path, safe_filename
from .metric_summary import pair_ids

__all__ = ["FusedImageWriter"]

logger = logging.getLogger(__name__)


class FusedImageWriter:
    """Write each fused image of an inference run to ``<output_dir>/<pair_type>/<name>.png``.

    The layout that ``monai-fusion evaluate --fused`` and :func:`~monai_fusion.engines.evaluation.evaluate_folders`
    read. Runs after the evaluator's postprocessing (e.g. ``fusion_network_postprocess``, which clamps the
    prediction and merges PET/SPECT chroma back), so colour pairs are written as RGB and CT pairs as grey.

    Args:
        output_dir: output folder.
        fused_key: key of the fused image in each decollated output.
        overwrite: replace existing files.
    """

    def __init__(self, output_dir: str | os.PathLike, fused_key: str = "fused", overwrite: bool = True) -> None:
        self.output_dir = Path(output_dir)
        self.fused_key = fused_key
        self.overwrite = bool(overwrite)
        self.written: list[Path] = []

    def attach(self, engine: Engine) -> None:
        """Write after every iteration; log the count at the end."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self._report)

    def _report(self, engine: Engine) -> None:
        engine.logger.info(f"{len(self.written)} fused images written under {self.output_dir}")

    def __call__(self, engine: Engine) -> None:
        """Write the iteration's fused images (decollated output)."""
        from ..data.io import write_png

        batch, output = engine.state.batch, engine.state.output
        if not isinstance(output, list):
            raise FusionInputError("FusedImageWriter needs a decollated evaluator output (decollate=True)")
        for ident, out in zip(pair_ids(batch), output):
            rel = ident["filename_or_obj"]
            pair, _, name = rel.partition("/")
            parts = [pair, name] if pair in PAIR_TYPES and name else [Path(rel).stem]  # else: after the MRI file
            # names are data: sanitised, so a name like '../x' or an absolute path cannot leave output_dir
            path = output_path(self.output_dir, *parts[:-1], safe_filename(parts[-1]) + ".png")
            path.parent.mkdir(parents=True, exist_ok=True)
            fused = torch.as_tensor(out[self.fused_key]).detach().cpu().float().numpy()
            self.written.append(write_png(fused, path, overwrite=self.overwrite))
