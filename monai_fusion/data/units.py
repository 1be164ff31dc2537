"""What a volume's values mean: Hounsfield units for CT, SUV for PET where its DICOM tags allow it.

The intensity window of a clinical volume depends on its units (a CT is read in a brain or bone window of
Hounsfield units, a PET in standardised uptake values), so the readers record them in the image's metadata and
:class:`~monai_fusion.transforms.NormalizeModality` picks the window. The SUV follows the body-weight definition of
the DICOM PET IOD (PS3.3 C.8.9.1, the QIBA FDG-PET profile): activity concentration (Bq/ml) times body weight (g)
over the injected dose decayed to the scan start. pydicom reads the tags; nothing in MONAI or SimpleITK computes
SUV, hence this module.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

from ..utils.errors import FusionInputError

__all__ = [
    "CT_WINDOWS",
    "DEFAULT_CT_WINDOW",
    "DEFAULT_SUV_WINDOW",
    "HU_AIR_BELOW",
    "suv_factor",
    "dicom_units",
    "nifti_units",
    "parse_window",
]

#: Named CT windows (level, width) in Hounsfield units, as radiology reading stations name them.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
    "bone": (600.0, 2800.0),
}
#: The CT window used when none is named: brain tissue mid-grey and bone white, as in the atlas CT slices.
DEFAULT_CT_WINDOW = "brain"
#: The SUV window (low, high) used for a PET in SUV when none is named.
DEFAULT_SUV_WINDOW: tuple[float, float] = (0.0, 10.0)
#: A NIfTI CT whose minimum is below this value holds Hounsfield units (air is -1000 HU).
HU_AIR_BELOW = -500.0


def _parse_dicom_datetime(date: Any, time: Any) -> _dt.datetime | None:
    d, t = str(date or "").strip(), str(time or "").strip()
    if len(d) < 8 or len(t) < 4:
        return None
    t = t.split(".")[0].ljust(6, "0")[:6]
    try:
        return _dt.datetime.strptime(d[:8] + t, "%Y%m%d%H%M%S")
    except ValueError:
        return None


def suv_factor(ds: Any) -> tuple[float | None, str]:
    """The factor from a PET series' stored values (after rescale) to body-weight SUV, and how it was found.

    Args:
        ds: a ``pydicom.Dataset`` of one slice of the series.

    Returns:
        ``(factor, note)``; ``factor`` is None when the tags do not allow an SUV, and ``note`` then says which tag
        is missing or unusable.
    """
    units = str(ds.get("Units", "")).strip().upper()
    if units == "GML":
        return 1.0, "Units GML (values are SUVbw already)"
    if units != "BQML":
        return None, f"Units is {units or 'missing'} (SUV needs BQML)"
    weight = float(ds.get("PatientWeight") or 0.0)
    if not weight > 0:
        return None, "PatientWeight is missing"
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if not seq:
        return None, "RadiopharmaceuticalInformationSequence is missing"
    info = seq[0]
    dose, half_life = float(info.get("RadionuclideTotalDose") or 0.0), float(info.get("RadionuclideHalfLife") or 0.0)
    if not (dose > 0 and half_life > 0):
        return None, "RadionuclideTotalDose or RadionuclideHalfLife is missing"
    correction = str(ds.get("DecayCorrection", "")).strip().upper()
    if correction == "ADMIN":
        decay = 1.0
    elif correction == "START":
        start = str(info.get("RadiopharmaceuticalStartDateTime", "") or "")
        injected = (
            _parse_dicom_datetime(start[:8], start[8:])
            if start
            else _parse_dicom_datetime(ds.get("SeriesDate"), info.get("RadiopharmaceuticalStartTime"))
        )
        scanned = _parse_dicom_datetime(ds.get("SeriesDate"), ds.get("SeriesTime"))
        if injected is None or scanned is None:
            return None, "the injection or series date/time is missing"
        elapsed = (scanned - injected).total_seconds()
        if elapsed < 0:
            return None, f"the injection ({injected}) is after the series start ({scanned})"
        decay = 2.0 ** (-elapsed / half_life)
    else:
        return None, f"DecayCorrection is {correction or 'missing'} (SUV needs START or ADMIN)"
    factor = weight * 1000.0 / (dose * decay)
    return factor, f"SUVbw: {weight:g} kg, {dose / 1e6:.0f} MBq, decay factor {decay:.3f}"


def dicom_units(ds: Any, modality: str, value_min: float) -> dict[str, Any]:
    """The units metadata of a DICOM volume of ``modality`` (``MRI``, ``CT``, ``PET``, ``SPECT``).

    Args:
        ds: a ``pydicom.Dataset`` of the series' first slice.
        modality: the modality the file was given as.
        value_min: the series' lowest value after the rescale (a CT is in Hounsfield units only if it holds air,
            below :data:`HU_AIR_BELOW`; a rendering stored with Modality CT does not).

    Returns:
        ``{"units": "HU"}`` for a CT series in HU; ``{"units": "SUV", "suv_factor": f, "units_note": ...}`` for a PET
        whose tags allow it, else ``{"units": <Units tag or "">, "units_note": why not}``; ``{}`` otherwise.
    """
    dicom_modality = str(ds.get("Modality", "")).upper()
    if modality == "CT" and dicom_modality == "CT":
        if value_min < HU_AIR_BELOW:
            return {"units": "HU", "units_note": "CT series (rescaled to Hounsfield units)"}
        return {"units": "", "units_note": f"CT series without air below {HU_AIR_BELOW:g}: not Hounsfield units"}
    if modality == "PET" and dicom_modality == "PT":
        factor, note = suv_factor(ds)
        if factor is not None:
            return {"units": "SUV", "suv_factor": factor, "units_note": note}
        return {"units": str(ds.get("Units", "")).strip().upper(), "units_note": f"no SUV: {note}"}
    return {}


def nifti_units(value_min: float, modality: str) -> dict[str, Any]:
    """The units metadata of a NIfTI volume: a CT whose air is below :data:`HU_AIR_BELOW` is in Hounsfield units.

    NIfTI has no units field for intensities, so only CT (whose air is -1000 HU) can be recognised.
    """
    if modality == "CT" and value_min < HU_AIR_BELOW:
        return {"units": "HU", "units_note": f"NIfTI CT with air below {HU_AIR_BELOW:g} (Hounsfield units)"}
    return {}


def parse_window(window: str | tuple[float, float] | list[float], what: str = "window") -> str | tuple[float, float]:
    """Check an intensity window: ``auto``, ``percentile``, a name of :data:`CT_WINDOWS`, or ``LOW,HIGH``.

    Args:
        window: the window as given (``"bone"``, ``"-100,300"``, ``(0, 8)``).
        what: how to name the argument in messages.

    Returns:
        A lower-case name, or ``(low, high)`` floats with ``low < high``.

    Raises:
        FusionInputError: anything else.
    """
    names = ("auto", "percentile", *CT_WINDOWS)
    if isinstance(window, str) and window.strip().lower() in names:
        return window.strip().lower()
    parts: Any = window.split(",") if isinstance(window, str) else window
    try:
        low, high = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise FusionInputError(
            f"{what}={window!r}: expected one of {', '.join(names)} or LOW,HIGH (two numbers in the image's units)"
        ) from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise FusionInputError(f"{what}={window!r}: LOW,HIGH must be finite numbers with LOW < HIGH")
    return (low, high)
