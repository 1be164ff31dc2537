"""The one preset path every surface walks: load -> register -> check -> normalise -> colour split.

The CLI, the bundle's inference config, the benchmark, the demo, MONAI Label and MONAI Deploy build
their pipelines from :func:`fusion_preprocess` and :func:`fusion_postprocess` rather than keeping
private copies of these steps.
"""

from __future__ import annotations

from typing import Any, Sequence

from monai.transforms import Compose

from ..utils.errors import FusionInputError
from .colour import RGBToYCbCrd, YCbCrToRGBd
from .intensity import NormalizeModalityd
from .io import CheckPaird, LoadFusionImaged
from .registration import RegisterToReferenced

__all__ = ["FusionCompose", "fusion_preprocess", "fusion_postprocess"]


def _input_error_in(err: BaseException) -> FusionInputError | None:
    seen = err
    while seen is not None:
        if isinstance(seen, FusionInputError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class FusionCompose(Compose):
    """MONAI ``Compose`` that lets a :class:`FusionInputError` through instead of wrapping it.

    MONAI wraps every failure of a step in ``RuntimeError("applying transform ...")``; bad input
    must reach the user as the one clear message that names the file, so it is re-raised as is.
    """

    def __call__(self, input_: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(input_, *args, **kwargs)
        except RuntimeError as err:
            cause = _input_error_in(err)
            if cause is None:
                raise
            raise cause from None

    def inverse(self, data: Any) -> Any:
        try:
            return super().inverse(data)
        except RuntimeError as err:
            cause = _input_error_in(err)
            if cause is None:
                raise
            raise cause from None


def fusion_preprocess(register: bool = True, registration: dict[str, Any] | None = None,
                      normalize: dict[str, Any] | None = None, load: bool = True,
                      keys: Sequence[str] = ("mri", "other")) -> Compose:
    """Build the preprocessing ``Compose`` for a pair dict ``{"mri": path, "other": path, "modality": ...}``.

    Args:
        register: register ``other`` onto ``mri`` (SimpleITK, Mattes MI, rigid by default).
        registration: keyword arguments for :class:`RegisterToReferenced` (e.g. ``{"transform": "affine"}``).
        normalize: keyword arguments for :class:`NormalizeModalityd` (e.g. ``{"mode": "percentile"}``).
        load: start with :class:`LoadFusionImaged` (set False when the dict already holds images).
        keys: the reference key and the moving key.

    Returns:
        A :class:`FusionCompose` whose output has ``mri`` ``(1, ...)`` and ``other`` ``(1, ...)`` in [0, 1]; for
        RGB inputs also ``other_cb`` and ``other_cr``. ``Compose.inverse`` restores the RGB ``other``.
    """
    ref, moving = keys
    steps: list[Any] = [LoadFusionImaged(keys=keys, mri_key=ref)] if load else []
    if register:
        steps.append(RegisterToReferenced(keys=moving, reference_key=ref, **(registration or {})))
    steps += [
        CheckPaird(keys=keys),
        NormalizeModalityd(keys=keys, **(normalize or {})),
        RGBToYCbCrd(keys=moving, value_max=1.0),
    ]
    return FusionCompose(steps)


def fusion_postprocess(fused_key: str = "fused", moving_key: str = "other") -> Compose:
    """Build the postprocessing ``Compose``: put the moving image's chroma back around the fused luminance.

    Args:
        fused_key: key of the fused ``(1, ...)`` luminance in [0, 1].
        moving_key: key the chroma was split from (chroma keys ``<moving_key>_cb``/``_cr``).

    Returns:
        A ``Compose`` that leaves ``fused`` RGB ``(3, ...)`` for PET/SPECT and grey for CT.
    """
    return FusionCompose([YCbCrToRGBd(keys=fused_key, cb_key=f"{moving_key}_cb", cr_key=f"{moving_key}_cr", value_max=1.0)])
