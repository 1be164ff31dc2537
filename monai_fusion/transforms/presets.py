"""The one preset path every surface walks: load -> register -> check -> normalise -> colour split.

The CLI, the bundle's inference config, the benchmark, the demo, MONAI Label and MONAI Deploy build
their pipelines from :func:`fusion_preprocess` and :func:`fusion_postprocess` rather than keeping
private copies of these steps.
"""

from __future__ import annotations

from typing import Any, Sequence

from monai.transforms import (
    Compose,
    CopyItemsd,
    RandFlipd,
    RandRotate90d,
    RandSpatialCropd,
    ScaleIntensityRanged,
    SelectItemsd,
    SpatialPadd,
)

from ..utils.errors import FusionInputError, find_input_error
from .colour import ColourMapd, NeutralChromad, RGBToYCbCrd, YCbCrToRGBd, chroma_keys
from .intensity import NormalizeModalityd
from .io import CheckPaird, CheckRasterSized, LoadFusionImaged
from .registration import RegisterToReferenced, ResampleToReferenceGridd

__all__ = [
    "FusionCompose",
    "fusion_preprocess",
    "fusion_postprocess",
    "fusion_training_preprocess",
    "fusion_validation_preprocess",
    "fusion_network_postprocess",
    "PAIR_INFO_KEYS",
]

#: Datalist keys kept beside the images by the training/validation presets (names the pair in logs).
PAIR_INFO_KEYS: tuple[str, ...] = ("pair_type", "modality", "name", "case")


class FusionCompose(Compose):
    """MONAI ``Compose`` that lets a :class:`FusionInputError` through instead of wrapping it.

    MONAI wraps every failure of a step in ``RuntimeError("applying transform ...")``; bad input
    must reach the user as the one clear message that names the file, so it is re-raised as is.
    """

    def __call__(self, input_: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(input_, *args, **kwargs)
        except RuntimeError as err:
            cause = find_input_error(err)
            if cause is None:
                raise
            raise cause from None

    def inverse(self, data: Any) -> Any:
        try:
            return super().inverse(data)
        except RuntimeError as err:
            cause = find_input_error(err)
            if cause is None:
                raise
            raise cause from None


def fusion_preprocess(
    register: bool = True,
    registration: dict[str, Any] | None = None,
    normalize: dict[str, Any] | None = None,
    load: bool = True,
    keys: Sequence[str] = ("mri", "other"),
    colormap: str = "auto",
    same_field_of_view: bool = False,
) -> Compose:
    """Build the preprocessing ``Compose`` for a pair dict ``{"mri": path, "other": path, "modality": ...}``.

    Args:
        register: register ``other`` onto ``mri`` (SimpleITK, Mattes MI, rigid by default).
        registration: keyword arguments for :class:`RegisterToReferenced` (e.g. ``{"transform": "affine"}``).
        normalize: keyword arguments for :class:`NormalizeModalityd` (e.g. ``{"mode": "percentile"}``, or
            ``{"window": "bone"}`` for a CT in Hounsfield units).
        load: start with :class:`LoadFusionImaged` (set False when the dict already holds images).
        keys: the reference key and the moving key.
        colormap: how a grey ``other`` is rendered before the colour split (:class:`ColourMapd`): ``"auto"``
            (grey PET/SPECT in the atlas colours, CT grey), a colour map name, or ``"none"``.
        same_field_of_view: raster files (no pixel size) of two sizes show the same field of view: the moving one
            is resampled to the reference's size (:class:`CheckRasterSized`) instead of refused.

    Returns:
        A :class:`FusionCompose` whose output has ``mri`` ``(1, ...)`` and ``other`` ``(1, ...)`` in [0, 1]; for
        RGB or colour-mapped inputs also ``other_cb`` and ``other_cr``. ``Compose.inverse`` restores the RGB
        ``other``.
    """
    ref, moving = keys
    steps: list[Any] = [LoadFusionImaged(keys=keys, mri_key=ref)] if load else []
    steps.append(CheckRasterSized(keys=keys, same_field_of_view=same_field_of_view))  # before registration
    if register:
        steps.append(RegisterToReferenced(keys=moving, reference_key=ref, **(registration or {})))
    else:  # volumes on two grids are put on the MRI's by their geometry, never fused voxel by voxel
        steps.append(ResampleToReferenceGridd(keys=moving, reference_key=ref))
    steps += [
        CheckPaird(keys=keys),
        NormalizeModalityd(keys=keys, **(normalize or {})),
        ColourMapd(keys=moving, colormap=colormap),
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
    return FusionCompose(
        [YCbCrToRGBd(keys=fused_key, cb_key=f"{moving_key}_cb", cr_key=f"{moving_key}_cr", value_max=1.0)]
    )


def fusion_validation_preprocess(
    register: bool = False,
    keys: Sequence[str] = ("mri", "other"),
    info_keys: Sequence[str] = PAIR_INFO_KEYS,
    chroma: bool = False,
    **kwargs: Any,
) -> Compose:
    """:func:`fusion_preprocess` for training and validation batches: whole images, the sources and pair info.

    The chroma of PET/SPECT is dropped (networks fuse luminance), so pairs of every type batch together, unless
    ``chroma``: then every pair keeps ``<moving>_cb``/``_cr``, neutral for grey pairs (:class:`NeutralChromad`),
    for a loss that scores the written colour image.

    Args:
        register: register ``other`` onto ``mri`` (the atlas pairs are already registered).
        keys: the reference key and the moving key.
        info_keys: datalist keys kept when present (``pair_type``, ``name``...).
        chroma: keep the moving image's chroma (see above).
        kwargs: further :func:`fusion_preprocess` arguments (``registration``, ``normalize``).

    Returns:
        A :class:`FusionCompose` giving ``mri`` and ``other`` ``(1, H, W)`` in [0, 1] plus the pair info (and the
        chroma keys with ``chroma``).
    """
    pre = fusion_preprocess(register=register, keys=keys, **kwargs)
    keep = [*keys, *(chroma_keys(keys[1]) if chroma else ()), *info_keys]
    extra = [NeutralChromad(keys=keys[1])] if chroma else []
    return FusionCompose([*pre.transforms, *extra, SelectItemsd(keys=keep, allow_missing_keys=True)])


def fusion_training_preprocess(
    patch_size: Sequence[int] = (128, 128),
    register: bool = False,
    keys: Sequence[str] = ("mri", "other"),
    flip_prob: float = 0.5,
    rotate90_prob: float = 0.5,
    info_keys: Sequence[str] = PAIR_INFO_KEYS,
    chroma: bool = False,
    **kwargs: Any,
) -> Compose:
    """:func:`fusion_validation_preprocess` followed by the same random patch, flips and (square patches)
    90-degree rotations of both sources.

    The deterministic steps come first, so a ``CacheDataset`` caches them and repeats only the random ones.
    Images smaller than the patch are zero-padded first.

    Args:
        patch_size: ``(H, W)`` of the random patch.
        register: register ``other`` onto ``mri``.
        keys: the reference key and the moving key.
        flip_prob: probability of a flip along each axis.
        rotate90_prob: probability of a rotation by a random multiple of 90 degrees.
        info_keys: datalist keys kept when present.
        chroma: keep the moving image's chroma, cropped, flipped and rotated with the sources (see
            :func:`fusion_validation_preprocess`).
        kwargs: further :func:`fusion_preprocess` arguments.

    Returns:
        A :class:`FusionCompose` giving aligned ``(1, *patch_size)`` patches of ``mri`` and ``other``.
    """
    size = [int(s) for s in patch_size]
    if len(size) != 2 or min(size) < 1:
        raise FusionInputError(f"patch_size={tuple(patch_size)} must be two positive integers (H, W)")
    base = fusion_validation_preprocess(register=register, keys=keys, info_keys=info_keys, chroma=chroma, **kwargs)
    colour = list(chroma_keys(keys[1])) if chroma else []
    ks = [*keys, *colour]
    steps = [
        *base.transforms,
        SpatialPadd(keys=list(keys), spatial_size=size),
        *([SpatialPadd(keys=colour, spatial_size=size, value=0.5)] if colour else []),  # neutral chroma
        RandSpatialCropd(keys=ks, roi_size=size, random_size=False),
        RandFlipd(keys=ks, prob=flip_prob, spatial_axis=0),
        RandFlipd(keys=ks, prob=flip_prob, spatial_axis=1),
    ]
    if size[0] == size[1]:  # a quarter turn of a non-square patch would change its shape within a batch
        steps.append(RandRotate90d(keys=ks, prob=rotate90_prob, max_k=3))
    return FusionCompose(steps)


def fusion_network_postprocess(pred_key: str = "pred", fused_key: str = "fused", moving_key: str = "other") -> Compose:
    """Postprocessing of a network's output item: ``fused = clamp(pred, 0, 1)``, then :func:`fusion_postprocess`.

    For MONAI evaluators whose decollated items hold the preprocessed pair (with ``<moving_key>_cb``/``_cr``
    for colour pairs) and the network output under ``pred_key``.

    Returns:
        A :class:`FusionCompose` leaving ``fused`` RGB ``(3, H, W)`` for PET/SPECT and grey ``(1, H, W)`` for CT.
    """
    return FusionCompose(
        [
            CopyItemsd(keys=pred_key, names=fused_key),
            ScaleIntensityRanged(keys=fused_key, a_min=0.0, a_max=1.0, b_min=0.0, b_max=1.0, clip=True),
            *fusion_postprocess(fused_key=fused_key, moving_key=moving_key).transforms,
        ]
    )
