"""Named metric protocols: every convention that changes a reported fusion number, in one record.

Fusion papers disagree on how a metric combines the two sources (mean or sum), on the log base
(bits or nats), on the value range, on the histogram bins and on windows; these choices change
reported numbers by up to 2x. A :class:`MetricProtocol` fixes all of them, so a table can say
which protocol it used and be reproduced. Three protocols are built in:

- ``standard``: this project's documented defaults (0..255, bits, per-source mean, Gaussian SSIM).
- ``sum``: the CDDFuse-style evaluation scripts (per-source sum, MI in nats, their SSIM call,
  PSNR peak = max of the fused image, their Qabf code).
- ``poster``: the reference poster's own evaluation code ([0, 1] floats, per-source mean, entropy
  of the unquantised floats, MI by truncation in nats, scikit-image NMI), so its table can be
  reproduced and explained.

``docs/metrics.md`` holds the table that :func:`protocol_table` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..utils.errors import FusionInputError

__all__ = ["MetricProtocol", "PROTOCOLS", "get_protocol", "available_protocols", "protocol_table"]

_CHOICES: dict[str, tuple[object, ...]] = {
    "combine": ("mean", "sum"),
    "en_estimator": ("histogram", "unique"),
    "quantisation": ("round", "floor"),
    "mi_unit": ("bits", "nats"),
    "nmi_form": ("hossny", "studholme"),
    "nmi_binning": ("levels", "minmax"),
    "fmi_feature": ("pixel", "gradient", "edge", "dct", "wavelet"),
    "ssim_window": ("gaussian", "uniform"),
    "psnr_peak": ("range", "fused_max", "source_range"),
    "psnr_average": ("mse", "psnr"),
    "qabf_variant": ("petrovic", "cddfuse"),
    "fsim_variant": ("piq", "phasepack"),
}


@dataclass(frozen=True)
class MetricProtocol:
    """The conventions under which fusion metrics are computed.

    Build a custom protocol with ``dataclasses.replace(get_protocol("standard"), name=..., ...)``.

    Attributes:
        name: the protocol's name, written into tables and CSV files.
        summary: one line saying where the conventions come from.
        value_range: ``(low, high)`` of the input tensors; inputs outside it are refused.
        combine: how the two per-source values (F vs A, F vs B) of MI, NMI, FMI, SSIM, MS-SSIM,
            VIF and FSIM are combined: ``"mean"`` or ``"sum"``.
        en_estimator: ``"histogram"`` (256 grey levels) or ``"unique"`` (one bin per distinct
            float value, scikit-image ``shannon_entropy`` on floats).
        quantisation: how values become the 256 grey levels of EN/MI/NMI histograms:
            ``"round"`` to nearest or ``"floor"`` (``(x * 255).astype(uint8)`` truncation).
        mi_unit: ``"bits"`` (log2) or ``"nats"`` (ln) for MI.
        nmi_form: ``"hossny"``: ``2 MI / (H(X) + H(F))`` in [0, 1]; ``"studholme"``:
            ``(H(X) + H(F)) / H(X, F)`` in [1, 2] (scikit-image).
        nmi_binning: ``"levels"``: the 256 quantised grey levels; ``"minmax"``: ``nmi_bins``
            equal bins between each image's min and max (NumPy ``histogramdd``).
        nmi_bins: number of bins for ``"minmax"`` binning.
        fmi_feature: the feature of the plain ``FMI`` metric (``FMI_<feature>`` names any).
        fmi_window: side of the square FMI windows.
        ssim_window: ``"gaussian"`` or ``"uniform"`` window.
        ssim_size: window side.
        ssim_sigma: Gaussian sigma (ignored for uniform windows).
        ssim_sample_covariance: divide (co)variances by ``n - 1`` instead of ``n``.
        ssim_data_range: the ``L`` in ``C1 = (0.01 L)^2``; ``None`` uses the width of ``value_range``.
        psnr_peak: ``"range"`` (width of ``value_range``), ``"fused_max"`` (max of F, per image) or
            ``"source_range"`` (max - min of each source, per image).
        psnr_average: ``"mse"``: one PSNR of the mean of the two MSEs; ``"psnr"``: mean of the two PSNRs.
        qabf_variant: ``"petrovic"`` (reflect-padded Sobel, orientation difference wrapped modulo
            pi) or ``"cddfuse"`` (zero-padded Sobel, unwrapped orientation difference, as the script).
        fsim_variant: ``"piq"`` (Zhang et al.'s FSIM as piq computes it on the 0..width scale: 4 orientations,
            Scharr gradients in floats) or ``"phasepack"`` (the poster's code: phasepack's phase congruency with 6
            orientations, Scharr gradients of the protocol-unit images written into ``uint16``, ``T2 = 160``).
    """

    name: str
    summary: str
    value_range: tuple[float, float] = (0.0, 255.0)
    combine: Literal["mean", "sum"] = "mean"
    en_estimator: Literal["histogram", "unique"] = "histogram"
    quantisation: Literal["round", "floor"] = "round"
    mi_unit: Literal["bits", "nats"] = "bits"
    nmi_form: Literal["hossny", "studholme"] = "hossny"
    nmi_binning: Literal["levels", "minmax"] = "levels"
    nmi_bins: int = 256
    fmi_feature: Literal["pixel", "gradient", "edge", "dct", "wavelet"] = "pixel"
    fmi_window: int = 3
    ssim_window: Literal["gaussian", "uniform"] = "gaussian"
    ssim_size: int = 11
    ssim_sigma: float = 1.5
    ssim_sample_covariance: bool = False
    ssim_data_range: float | None = None
    psnr_peak: Literal["range", "fused_max", "source_range"] = "range"
    psnr_average: Literal["mse", "psnr"] = "mse"
    qabf_variant: Literal["petrovic", "cddfuse"] = "petrovic"
    fsim_variant: Literal["piq", "phasepack"] = "piq"

    def __post_init__(self) -> None:
        for field, allowed in _CHOICES.items():
            if getattr(self, field) not in allowed:
                raise FusionInputError(
                    f"protocol {self.name!r}: {field}={getattr(self, field)!r} is not one of "
                    f"{', '.join(map(str, allowed))}"
                )
        lo, hi = self.value_range
        if not hi > lo:
            raise FusionInputError(f"protocol {self.name!r}: value_range {self.value_range} must have high > low")
        if self.fmi_window < 2 or self.ssim_size < 3 or self.ssim_size % 2 == 0 or self.nmi_bins < 2:
            raise FusionInputError(
                f"protocol {self.name!r}: need fmi_window >= 2, an odd ssim_size >= 3 and nmi_bins >= 2"
            )

    @property
    def width(self) -> float:
        """Width ``high - low`` of the value range."""
        return float(self.value_range[1] - self.value_range[0])

    def conventions(self) -> dict[str, str]:
        """Each convention in words, keyed by the row names of the docs table."""
        lo, hi = self.value_range
        ssim_l = self.width if self.ssim_data_range is None else self.ssim_data_range
        window = (
            f"Gaussian {self.ssim_size}x{self.ssim_size}, sigma {self.ssim_sigma:g}"
            if self.ssim_window == "gaussian"
            else f"uniform {self.ssim_size}x{self.ssim_size}"
        )
        quant = "round" if self.quantisation == "round" else "floor (truncate)"
        peak = {
            "range": f"{self.width:g} (range)",
            "fused_max": "max(F) per image",
            "source_range": "max(X) - min(X) per source",
        }[self.psnr_peak]
        nmi = (
            "2 MI/(H(X)+H(F)), 256 levels"
            if self.nmi_form == "hossny"
            else f"(H(X)+H(F))/H(X,F), {self.nmi_bins} bins min..max"
            if self.nmi_binning == "minmax"
            else "(H(X)+H(F))/H(X,F), 256 levels"
        )
        return {
            "value range": f"{lo:g}..{hi:g}",
            "two sources (MI, NMI, FMI, SSIM, MS-SSIM, VIF, FSIM)": f"per-source {self.combine}",
            "EN": (
                "256 levels, bits" if self.en_estimator == "histogram" else "one bin per distinct float value, bits"
            ),
            "grey levels for EN/MI": f"256, {quant}",
            "MI": f"256x256 joint histogram, {self.mi_unit}",
            "NMI": nmi,
            "FMI": f"{self.fmi_feature} feature, {self.fmi_window}x{self.fmi_window} windows",
            "SSIM window": window,
            "SSIM covariance": "sample (n-1)" if self.ssim_sample_covariance else "population (n)",
            "SSIM L in C1, C2": f"{ssim_l:g}",
            "PSNR": f"peak {peak}; "
            + ("MSE averaged over sources" if self.psnr_average == "mse" else "PSNR averaged over sources"),
            "Qabf": (
                "Sobel, reflect border, orientation wrapped"
                if self.qabf_variant == "petrovic"
                else "Sobel, zero border, orientation unwrapped (script)"
            ),
            "FSIM": (
                "piq (Zhang et al.), 4 orientations, float gradients"
                if self.fsim_variant == "piq"
                else "phasepack phase congruency, 6 orientations, Scharr gradients rounded into uint16"
            ),
            "CC, SCD": "CC mean of 2 correlations; SCD sum of 2 (its definition)",
            "VIF, Nabf constants": "on the 8-bit scale: sigma_n^2 = 2; edge threshold 2 (Sobel/8)",
        }


PROTOCOLS: dict[str, MetricProtocol] = {
    "standard": MetricProtocol(
        name="standard",
        summary="monai-fusion defaults: 8-bit scale, bits, per-source mean, Gaussian SSIM as Wang et al.",
    ),
    "sum": MetricProtocol(
        name="sum",
        summary=(
            "CDDFuse-style evaluation scripts (Evaluator.py): per-source sum, MI in nats, their SSIM/PSNR/Qabf calls"
        ),
        combine="sum",
        mi_unit="nats",
        ssim_window="uniform",
        ssim_size=7,
        ssim_sample_covariance=True,
        ssim_data_range=2.0,
        psnr_peak="fused_max",
        qabf_variant="cddfuse",
    ),
    "poster": MetricProtocol(
        name="poster",
        summary="the reference poster's code: [0, 1] floats, per-source mean, float entropy, MI by truncation in nats",
        value_range=(0.0, 1.0),
        en_estimator="unique",
        quantisation="floor",
        mi_unit="nats",
        nmi_form="studholme",
        nmi_binning="minmax",
        nmi_bins=100,
        fmi_feature="edge",
        psnr_peak="source_range",
        psnr_average="psnr",
        fsim_variant="phasepack",
    ),
}


def available_protocols() -> list[str]:
    """Names of the built-in protocols."""
    return list(PROTOCOLS)


def get_protocol(protocol: str | MetricProtocol) -> MetricProtocol:
    """Return a protocol by name (or the protocol itself).

    Raises:
        FusionInputError: unknown name (the message lists the known ones).
    """
    if isinstance(protocol, MetricProtocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise FusionInputError(f"unknown metric protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol]


def protocol_table(protocols: list[str | MetricProtocol] | None = None) -> str:
    """Markdown table of every convention (rows) per protocol (columns), as in ``docs/metrics.md``."""
    chosen = [get_protocol(p) for p in (protocols or list(PROTOCOLS))]
    rows = [p.conventions() for p in chosen]
    lines = ["| convention | " + " | ".join(f"`{p.name}`" for p in chosen) + " |", "| --- |" + " --- |" * len(chosen)]
    lines += [f"| {key} | " + " | ".join(r[key] for r in rows) + " |" for key in rows[0]]
    return "\n".join(lines)
