"""The SDK-free half of the MONAI Deploy app: settings, method choice, volume conversion and fusion.

Nothing here imports ``monai.deploy``; the operators in ``fusion_operators.py`` call these functions,
and the tests import them from the main environment. The fusion itself is the library's one path
(``fusion_preprocess`` -> ``get_fuser(...)`` -> ``fuse_sample``), as in ``monai-fusion fuse``.

Settings come from environment variables, because the SDK's command line (``-i``, ``-o``, ``-m``,
``-w``, ``-l``) is fixed and a packaged app (MAP) is configured with ``docker run -e``:

| variable | default | meaning |
| --- | --- | --- |
| ``MONAI_FUSION_METHOD`` | ``auto`` | a registered method; ``auto``: the bundle model (``default``) when a ``model.pt`` is found, else ``default`` with the package's shipped weights |
| ``MONAI_FUSION_REGISTER`` | ``1`` | register the functional series onto the MRI first |
| ``MONAI_FUSION_DEVICE`` | ``auto`` | ``cpu``, ``cuda`` or ``auto`` (CUDA when available) |
| ``MONAI_FUSION_PET_COLOURS`` | ``wba`` | grey PET/SPECT series: ``wba`` renders them in the Whole Brain Atlas PET colours (colour map ``atlas``, RGB output), another colour map name (``hot``, ``jet``) renders them in that one, ``none`` keeps them grey |
| ``MONAI_FUSION_WINDOW`` | ``auto`` | intensity window of a CT in HU (``brain``, ``subdural``, ``stroke``, ``bone`` or ``LOW,HIGH``; default ``brain``) or a PET in SUV (``LOW,HIGH``; default ``0,10``), ``percentile`` for percentiles |
| ``MONAI_FUSION_MRI_SERIES`` / ``MONAI_FUSION_OTHER_SERIES`` | unset | SeriesInstanceUID to pick when several series match |
| ``MONAI_FUSION_OVERWRITE`` | ``0`` | replace existing outputs in the output folder |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from monai_fusion.data.units import parse_window
from monai_fusion.utils import constants
from monai_fusion.utils.colormaps import check_colormap
from monai_fusion.utils.errors import FusionInputError

__all__ = [
    "DEFAULT_METHOD",
    "MODALITY_OF_DICOM",
    "REPO_BUNDLE_MODEL",
    "DeploySettings",
    "MethodChoice",
    "find_bundle_model",
    "choose_method",
    "selection_rules",
    "series_geometry",
    "volume_to_metatensor",
    "check_outputs",
    "fuse_volumes",
]


#: Method used when ``MONAI_FUSION_METHOD`` is ``auto`` and no bundle model is found: the shipped trained model
#: (the package's weights), the same default as ``monai-fusion fuse``.
DEFAULT_METHOD: str = constants.DEFAULT_METHOD
#: DICOM Modality (0008,0060) of the functional series -> the library's modality name.
MODALITY_OF_DICOM: dict[str, str] = {"CT": "CT", "PT": "PET", "NM": "SPECT"}
#: The bundle model of a source checkout (``bundles/multimodal_fusion/models/model.pt``).
REPO_BUNDLE_MODEL: Path = Path(__file__).resolve().parents[2] / "bundles" / "multimodal_fusion" / "models" / "model.pt"

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in _TRUE + _FALSE:
        raise FusionInputError(f"{name}={env[name]!r}: expected one of {', '.join(_TRUE + _FALSE)}")
    return raw in _TRUE


@dataclass(frozen=True)
class DeploySettings:
    """The app's settings (see the module docstring for the environment variables).

    Attributes:
        method: a registered method name or ``auto``.
        register: register the functional series onto the MRI.
        device: ``cpu``, ``cuda`` or ``auto``.
        pet_colours: ``wba`` (the atlas colour map), another colour map name, or ``none`` (grey PET/SPECT only).
        window: the intensity window of a CT in HU or a PET in SUV (``NormalizeModality``'s ``window``).
        mri_series: SeriesInstanceUID of the MRI when several MR series match.
        other_series: SeriesInstanceUID of the functional series when several match.
        overwrite: replace existing outputs.
    """

    method: str = "auto"
    register: bool = True
    device: str = "auto"
    pet_colours: str = "wba"
    window: str = "auto"
    mri_series: str | None = None
    other_series: str | None = None
    overwrite: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "DeploySettings":
        """Read the settings from ``env`` (default: ``os.environ``).

        Raises:
            FusionInputError: a value out of its choices, naming the variable.
        """
        e = os.environ if env is None else env
        device = e.get("MONAI_FUSION_DEVICE", "auto").strip().lower() or "auto"
        if device not in ("auto", "cpu", "cuda"):
            raise FusionInputError(f"MONAI_FUSION_DEVICE={device!r}: expected auto, cpu or cuda")
        colours = e.get("MONAI_FUSION_PET_COLOURS", "wba").strip().lower() or "wba"
        if colours != "wba":
            check_colormap(colours, "MONAI_FUSION_PET_COLOURS")
        window = e.get("MONAI_FUSION_WINDOW", "auto").strip().lower() or "auto"
        parse_window(window, "MONAI_FUSION_WINDOW")
        return cls(
            method=e.get("MONAI_FUSION_METHOD", "auto").strip() or "auto",
            register=_flag(e, "MONAI_FUSION_REGISTER", True),
            device=device,
            pet_colours=colours,
            window=window,
            mri_series=e.get("MONAI_FUSION_MRI_SERIES", "").strip() or None,
            other_series=e.get("MONAI_FUSION_OTHER_SERIES", "").strip() or None,
            overwrite=_flag(e, "MONAI_FUSION_OVERWRITE", False),
        )

    def torch_device(self) -> str:
        """The device to fuse on (``auto`` resolved)."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class MethodChoice:
    """Which fusion method runs, with what arguments, and why (logged and written into the series)."""

    name: str
    kwargs: dict[str, Any]
    reason: str


def find_bundle_model(model_path: str | os.PathLike | None) -> tuple[Path | None, list[Path]]:
    """Look for the bundle's ``model.pt``: in the SDK's model path (``-m`` / ``HOLOSCAN_MODEL_PATH``), then
    in the source checkout's bundle.

    Args:
        model_path: a ``model.pt`` file, or a folder holding ``model.pt``, ``models/model.pt`` or
            ``<name>/model.pt`` (a MAP's ``/opt/holoscan/models``).

    Returns:
        The model file (``None`` when absent) and the paths that were searched.
    """
    searched: list[Path] = []
    if model_path:
        p = Path(model_path)
        candidates = [p] if p.suffix == ".pt" else [p / "model.pt", p / "models" / "model.pt"]
        if p.is_dir():
            candidates += sorted(p.glob("*/model.pt"))
        for c in candidates:
            searched.append(c)
            if c.is_file() and c.stat().st_size > 0:
                return c, searched
    searched.append(REPO_BUNDLE_MODEL)
    if REPO_BUNDLE_MODEL.is_file() and REPO_BUNDLE_MODEL.stat().st_size > 0:
        return REPO_BUNDLE_MODEL, searched
    return None, searched


def choose_method(requested: str, model: Path | None, searched: list[Path] | None = None) -> MethodChoice:
    """Resolve ``MONAI_FUSION_METHOD`` to a registered method; never falls back silently.

    Args:
        requested: ``auto`` or a method name.
        model: the bundle model found by :func:`find_bundle_model` (``None`` when absent).
        searched: where the model was looked for (named in the reason and in errors).

    Returns:
        The method, its constructor arguments and the reason it was chosen.

    Raises:
        FusionInputError: an unknown method, or a model found while the library has no ``default``
            method (set ``MONAI_FUSION_METHOD`` explicitly then).
    """
    from monai_fusion.fusers import available_fusers

    where = ", ".join(str(p) for p in (searched or [])) or "nowhere"
    known = available_fusers()
    if requested == "auto":
        if model is None:
            return MethodChoice(
                DEFAULT_METHOD,
                {},
                f"MONAI_FUSION_METHOD=auto and no bundle model.pt found "
                f"(searched {where}); using the shipped default model (the package's weights)",
            )
        if "default" not in known:
            raise FusionInputError(
                f"bundle model {model} found, but this monai_fusion has no 'default' fusion method "
                f"(available: {', '.join(known)}); set MONAI_FUSION_METHOD to one of them"
            )
        return MethodChoice(
            "default", {"weights": str(model)}, f"MONAI_FUSION_METHOD=auto and bundle model {model} found"
        )
    if requested not in known:
        raise FusionInputError(
            f"MONAI_FUSION_METHOD={requested!r} is not a fusion method; choose auto or one of {', '.join(known)}"
        )
    if requested == "default":
        if model is None:
            return MethodChoice(
                "default",
                {},
                f"MONAI_FUSION_METHOD=default and no bundle model.pt found (searched {where}); "
                "using the package's shipped weights",
            )
        return MethodChoice("default", {"weights": str(model)}, f"MONAI_FUSION_METHOD=default with {model}")
    return MethodChoice(requested, {}, f"MONAI_FUSION_METHOD={requested}")


def selection_rules(name: str, modalities: tuple[str, ...], series_uid: str | None = None) -> str:
    """Selection rules (JSON) for the SDK's ``DICOMSeriesSelectorOperator``: one selection by Modality.

    Args:
        name: the selection's name (``MRI`` or ``functional``).
        modalities: DICOM Modality values that match (``("MR",)``, ``("CT", "PT", "NM")``).
        series_uid: also require this SeriesInstanceUID.

    Returns:
        The rules as a JSON string.
    """
    import json

    conditions: dict[str, Any] = {"Modality": "(?i)^(" + "|".join(modalities) + ")$"}
    if series_uid:
        conditions["SeriesInstanceUID"] = "^" + series_uid.replace(".", r"\.") + "$"
    return json.dumps({"selections": [{"name": name, "conditions": conditions}]})


def series_geometry(meta: Mapping[str, Any]) -> np.ndarray:
    """The RAS affine of a volume from the metadata of the SDK's ``DICOMSeriesToVolumeOperator``.

    The SDK's own affine multiplies the row direction cosine by the spacing between rows
    (``PixelSpacing[0]``) and the column cosine by the spacing between columns, which is wrong
    for non-square pixels; the in-plane columns are rebuilt here, the slice step and origin kept.

    Args:
        meta: the Image's metadata (``dicom_affine_transform``, direction cosines, pixel spacings).

    Returns:
        4x4 RAS affine for a ``(X=column, Y=row, Z=slice)`` array.

    Raises:
        FusionInputError: a single-slice series or missing geometry.
    """
    need = (
        "dicom_affine_transform",
        "row_direction_cosine",
        "col_direction_cosine",
        "row_pixel_spacing",
        "col_pixel_spacing",
    )
    missing = [k for k in need if meta.get(k) is None]
    if missing:
        raise FusionInputError(
            f"series {meta.get('SeriesInstanceUID', '?')} has no volume geometry (missing "
            f"{', '.join(missing)}); a series of at least 2 slices with ImagePositionPatient, "
            "ImageOrientationPatient and PixelSpacing is needed"
        )
    lps = np.array(meta["dicom_affine_transform"], dtype=np.float64)
    lps[:3, 0] = np.asarray(meta["row_direction_cosine"], dtype=np.float64) * float(meta["col_pixel_spacing"])
    lps[:3, 1] = np.asarray(meta["col_direction_cosine"], dtype=np.float64) * float(meta["row_pixel_spacing"])
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def volume_to_metatensor(
    array: np.ndarray, affine: np.ndarray, modality: str, name: str, bits_stored: int | None = None
) -> Any:
    """An SDK volume (``(D, H, W)`` grey or ``(D, H, W, 3)`` RGB) as the library's ``(C, X, Y, Z)`` MetaTensor.

    Grey volumes are windowed by percentiles downstream (as ``read_volume`` does for DICOM); RGB
    renderings keep their fixed range (``value_max = 2**BitsStored - 1``), as the PNG reader does.

    Args:
        array: the voxel data, slices first.
        affine: its RAS affine (:func:`series_geometry`).
        modality: ``MRI``, ``CT``, ``PET`` or ``SPECT``.
        name: how to name the series in messages.
        bits_stored: BitsStored of an RGB series.

    Returns:
        A float32 ``MetaTensor`` with the affine and ``value_max`` in its metadata.
    """
    import torch
    from monai.data import MetaTensor

    from monai_fusion.data.io import check_finite_nonconstant
    from monai_fusion.utils.constants import COLOUR_MODALITIES

    a = np.asarray(array)
    if a.ndim == 3:
        chw = np.transpose(a, (2, 1, 0))[None]
        value_max = float("nan")
    elif a.ndim == 4 and a.shape[-1] == 3:
        if modality not in COLOUR_MODALITIES:
            raise FusionInputError(f"{modality}: {name} is an RGB series; expected a grey-level {modality} series")
        chw = np.transpose(a, (3, 2, 1, 0))
        value_max = float(2 ** int(bits_stored or 8) - 1)
    else:
        raise FusionInputError(
            f"{modality}: {name} has voxel array shape {a.shape}; expected (slices, rows, columns) "
            "grey or (slices, rows, columns, 3) RGB"
        )
    out = np.ascontiguousarray(chw, dtype=np.float32)
    check_finite_nonconstant(out, f"{modality}: {name}")
    meta = {
        "filename_or_obj": name,
        "modality": modality,
        "value_max": value_max,
        "spatial_shape": tuple(out.shape[1:]),
        "original_channel_dim": 0,
    }
    return MetaTensor(torch.from_numpy(out), affine=torch.as_tensor(affine, dtype=torch.float64), meta=meta)


def check_outputs(output_folder: str | os.PathLike, protect: str | os.PathLike, overwrite: bool = False) -> None:
    """Check that ``OUT/dicom`` and ``OUT/fused.nii.gz`` may be written (before any work is done).

    Raises:
        FusionInputError: an output exists without ``overwrite``, or the output lies in the input.
    """
    from monai_fusion.data.dicom import check_dicom_target

    out = Path(output_folder)
    try:
        check_dicom_target(out / "dicom", overwrite, protect=[protect])
    except FusionInputError as err:  # the library names the CLI's flag; the app's switch is an environment variable
        raise FusionInputError(str(err).replace("pass --overwrite", "set MONAI_FUSION_OVERWRITE=1")) from None
    nifti = out / "fused.nii.gz"
    if nifti.exists() and not overwrite:
        raise FusionInputError(f"output {nifti} exists; set MONAI_FUSION_OVERWRITE=1 to replace it")


def fuse_volumes(
    mri: Any,
    other: Any,
    modality: str,
    choice: MethodChoice,
    register: bool = True,
    device: str = "cpu",
    colormap: str = "auto",
    window: str = "auto",
) -> dict[str, Any]:
    """Fuse two volumes through the library's preset path (the one ``monai-fusion fuse`` walks).

    Args:
        mri: ``(1, X, Y, Z)`` MetaTensor.
        other: ``(1|3, X', Y', Z')`` MetaTensor of the functional series.
        modality: ``CT``, ``PET`` or ``SPECT``.
        choice: the method (:func:`choose_method`).
        register: register ``other`` onto ``mri`` first.
        device: where the fuser runs.
        colormap: how a grey ``other`` is rendered (``fusion_preprocess``'s ``colormap``: ``auto`` renders a grey
            PET/SPECT in the atlas colours and keeps a CT grey).
        window: the intensity window of a CT in HU or a PET in SUV (``NormalizeModality``'s ``window``).

    Returns:
        The library's sample dict: ``fused`` ``(1|3, X, Y, Z)`` in [0, 1] on the MRI's grid, with its affine.
    """
    from monai_fusion.engines.inference import fuse_sample
    from monai_fusion.fusers import get_fuser
    from monai_fusion.transforms.presets import fusion_preprocess

    fuser = get_fuser(choice.name, **choice.kwargs)
    pre = fusion_preprocess(register=register, load=False, colormap=colormap, normalize={"window": window})
    sample = pre({"mri": mri, "other": other, "modality": modality})
    return fuse_sample(sample, fuser, device=device)
