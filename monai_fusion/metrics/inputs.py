"""Validated metric inputs with the intermediate results that several metrics share.

A :class:`FusionInputs` holds the fused image F and the sources A (MRI) and B (CT/PET/SPECT
luminance) of one batch under one protocol. It checks them once (shape, dtype, range, NaN) and
caches what more than one metric needs (8-bit scale copies, grey levels, joint histograms, Sobel
gradients, FMI features), so :class:`~monai_fusion.metrics.FusionMetrics` computes a whole suite
in one pass.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch

from ..utils.errors import FusionInputError
from ..utils.kernels import sobel
from .protocols import MetricProtocol, get_protocol
from .utils import joint_histogram

__all__ = ["FusionInputs", "metric_function"]

#: How messages name the images, keyed ``F`` (fused), ``A`` (MRI) and ``B`` (other modality).
_LABELS = {"F": "fused (y_pred)", "A": "source A (MRI, y[:, 0])", "B": "source B (other modality, y[:, 1])"}


class FusionInputs:
    """The fused image and its two sources, checked, with per-batch caches.

    Args:
        fused: F, ``(B, 1, H, W)`` floating tensor on the protocol's value range.
        a: source A (MRI), same shape, or ``None`` for no-reference metrics only.
        b: source B (CT/PET/SPECT luminance), same shape, or ``None``.
        protocol: a protocol name or :class:`MetricProtocol`.

    Raises:
        FusionInputError: not a tensor, not floating point, not ``(B, 1, H, W)``, shapes that
            differ, NaN/Inf, values outside the protocol's range, or 0..1 data under a 0..255
            protocol.
    """

    def __init__(
        self,
        fused: torch.Tensor,
        a: torch.Tensor | None = None,
        b: torch.Tensor | None = None,
        protocol: str | MetricProtocol = "standard",
    ) -> None:
        self.protocol = get_protocol(protocol)
        if (a is None) != (b is None):
            raise FusionInputError("give both sources A and B, or neither (no-reference metrics only)")
        self.images: dict[str, torch.Tensor] = {"F": fused} if a is None else {"F": fused, "A": a, "B": b}
        for key, t in self.images.items():
            self._check(key, t, fused)
        self._check_scale()
        self._cache: dict[tuple, object] = {}

    # ------------------------------------------------------------------ checks
    def _check(self, key: str, t: object, fused: object) -> None:
        what = _LABELS[key]
        if not isinstance(t, torch.Tensor):
            raise FusionInputError(f"{what}: expected a torch.Tensor of shape (B, 1, H, W), got {type(t).__name__}")
        if not t.is_floating_point():
            raise FusionInputError(
                f"{what}: dtype {t.dtype} is not floating point; convert 8-bit images with .float() "
                f"(protocol {self.protocol.name!r} expects values in {self._range_text()})"
            )
        if t.ndim != 4 or t.shape[1] != 1:
            raise FusionInputError(
                f"{what}: expected shape (B, 1, H, W) (one grey/luminance channel), got {tuple(t.shape)}"
            )
        if min(t.shape[-2:]) < 2 or t.shape[0] < 1:
            raise FusionInputError(f"{what}: shape {tuple(t.shape)} is empty or smaller than 2x2 pixels")
        if isinstance(fused, torch.Tensor) and t.shape != fused.shape:
            raise FusionInputError(
                f"{what}: shape {tuple(t.shape)} differs from the fused image's {tuple(fused.shape)}; "
                "register and resample the images to one grid first"
            )
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            raise FusionInputError(f"{what}: contains {int((~finite).sum())} NaN/Inf values")
        lo, hi = self.protocol.value_range
        tol = 1e-4 * self.protocol.width
        tmin, tmax = float(t.min()), float(t.max())
        if tmin < lo - tol or tmax > hi + tol:
            raise FusionInputError(
                f"{what}: values span [{tmin:g}, {tmax:g}], outside protocol {self.protocol.name!r}'s range "
                f"{self._range_text()}; clamp the image or choose the protocol that matches its scale"
            )

    def _check_scale(self) -> None:
        if self.protocol.width <= 1.0:
            return
        top = max(float(t.max()) for t in self.images.values())
        if 0.0 < top <= 1.0:
            raise FusionInputError(
                f"all images lie in [0, 1] but protocol {self.protocol.name!r} expects {self._range_text()}; "
                "multiply by 255 (or use a protocol on [0, 1])"
            )

    def _range_text(self) -> str:
        lo, hi = self.protocol.value_range
        return f"[{lo:g}, {hi:g}]"

    # ------------------------------------------------------------------ accessors
    @property
    def has_sources(self) -> bool:
        """Whether A and B were given."""
        return "A" in self.images

    def sources(self) -> tuple[str, str]:
        """The source keys ``("A", "B")``.

        Raises:
            FusionInputError: when the inputs carry no sources.
        """
        if not self.has_sources:
            raise FusionInputError("this metric compares the fused image with its sources; pass A and B")
        return ("A", "B")

    def cached(self, key: tuple, make: Callable[[], object]) -> object:
        """Return ``make()``, computed once per key for this batch."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def raw(self, key: str) -> torch.Tensor:
        """The image as given (its dtype and protocol units)."""
        return self.images[key]

    def value(self, key: str) -> torch.Tensor:
        """The image in protocol units, float64."""
        return self.cached(("value", key), lambda: self.images[key].double())  # type: ignore[return-value]

    def scaled(self, key: str) -> torch.Tensor:
        """The image on the 8-bit scale 0..255, float64 (for constants defined on that scale)."""
        lo = self.protocol.value_range[0]
        return self.cached(  # type: ignore[return-value]
            ("scaled", key), lambda: (self.value(key) - lo) * (255.0 / self.protocol.width)
        )

    def levels(self, key: str) -> torch.Tensor:
        """256 integer grey levels (long) by the protocol's quantisation, computed in the input dtype."""

        def make() -> torch.Tensor:
            v = (self.images[key] - self.protocol.value_range[0]) * (255.0 / self.protocol.width)
            q = torch.floor(v) if self.protocol.quantisation == "floor" else torch.round(v)
            return q.clamp(0, 255).long()

        return self.cached(("levels", key), make)  # type: ignore[return-value]

    def joint(self, key: str) -> torch.Tensor:
        """Joint 256x256 grey-level histogram ``p(source level, fused level)``, ``(B, 256, 256)``."""
        return self.cached(  # type: ignore[return-value]
            ("joint", key), lambda: joint_histogram(self.levels(key), self.levels("F"), 256)
        )

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Sources stacked ``[A; B]`` and F repeated ``[F; F]`` (float64, protocol units), so one
        batched call serves both sources; also returns the batch size to split them again."""
        a, b = self.sources()
        f = self.value("F")
        return torch.cat([self.value(a), self.value(b)]), torch.cat([f, f]), f.shape[0]

    def piq_pairs(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``[F; F]`` and ``[A; B]`` shifted to ``[0, width]`` (piq's range check) in float32: piq's
        filters run several times faster in float32 on CPU and agree to about 1e-6."""
        src, fused, n = self.pairs()
        lo, width = self.protocol.value_range[0], self.protocol.width
        return (fused - lo).clamp(0, width).float(), (src - lo).clamp(0, width).float(), n

    def gradients(self, padding: str = "reflect") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Sobel ``(gx, gy)`` of every image on the 8-bit scale, computed in one batched call."""

        def make() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
            keys = list(self.images)
            gx, gy = sobel(torch.cat([self.scaled(k) for k in keys]), padding)
            n = self.images["F"].shape[0]
            return {k: (gx[i * n : (i + 1) * n], gy[i * n : (i + 1) * n]) for i, k in enumerate(keys)}

        return self.cached(("sobel", padding), make)  # type: ignore[return-value]


def metric_function(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Let a metric written on :class:`FusionInputs` also take tensors ``(fused, a, b, protocol)``.

    The decorated function accepts either a ready :class:`FusionInputs` (shared caches, as
    :class:`~monai_fusion.metrics.FusionMetrics` passes) or the tensors and a protocol name.
    """

    @functools.wraps(fn)
    def wrapper(
        fused: torch.Tensor | FusionInputs,
        a: torch.Tensor | None = None,
        b: torch.Tensor | None = None,
        protocol: str | MetricProtocol = "standard",
        **kwargs: Any,
    ) -> torch.Tensor:
        inputs = fused if isinstance(fused, FusionInputs) else FusionInputs(fused, a, b, protocol)
        return fn(inputs, **kwargs)

    return wrapper
