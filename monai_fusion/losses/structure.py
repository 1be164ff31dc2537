"""A paired fusion loss that rewards keeping the stronger structure of each source.

``loss(pred, mri, other)`` (or ``loss(pred, cat([mri, other], 1))`` from a MONAI trainer) is a weighted
sum of these terms, each a differentiable form of what the evaluation measures:

- ``ssim``: ``1 - mean(SSIM(F, A), SSIM(F, B))``, the metrics' own SSIM (Gaussian 11x11, 8-bit scale);
- ``qabf``: ``1 - Qabf``, Xydeas-Petrovic edge preservation with the metric's sigmoid constants, made
  differentiable: gradient magnitudes get a small epsilon and the edge-orientation difference is the
  angle between the two edge lines, ``atan2(|g_s x g_f|, |g_s . g_f|)``, instead of a difference of
  ``atan`` values (the same quantity where both are defined, with a gradient everywhere);
- ``vif``: ``-mean(VIF(F, A), VIF(F, B))``, the metrics' own pixel-domain VIF;
- ``scd``: ``-SCD / 2``, ``corr(F - B, A) + corr(F - A, B)`` with an epsilon under the square root;
- ``grad``: ``mean | |grad F| - max(|grad A|, |grad B|) |`` (Sobel magnitudes of the [0, 1] images), the
  texture term of SwinFusion (Ma et al. 2022): the fused edges as strong as the stronger source's, which
  a copy of one source cannot satisfy where only the other shows an edge;
- ``mi``: ``-(MI(F, A) + MI(F, B)) / 2`` in nats, from a soft joint histogram of ``mi_bins`` bins over [0, 1]
  (:func:`soft_mutual_information`): the sources' own grey levels kept, which none of the terms above
  measures and which the MI metric rewards (off by default; the bundle's model card has the runs with it);
- ``int``: ``mean |F - max(A, B)|``, which keeps the brighter source's intensities; with ``int_margin`` > 0
  only where the sources differ by more than the margin (``|A - B| > int_margin``: CT bone over dark MRI
  skull, tracer uptake over dark MRI), so that it keeps what only one source shows without pulling the
  soft tissue, where both sources are of similar brightness, towards a pixel-wise mixture of the two.

``pair_weights`` replaces any of these settings for the samples of one pair type (the bundle weights the
max-intensity term 4x on CT-MRI, where otherwise a copy of the MRI wins and the bone is lost).

``reference_rules`` turns the structure terms (all but ``int``) into margins over simple fusion rules: for
each sample, each term ``t(F)`` becomes ``tau * softplus((t(F) - min_R t(R)) / tau)``, where ``R`` runs over
the given rules applied to the same two sources: the pixel-wise maximum, the average, or any fusion callable
(``tau`` = ``hinge_scale``). A term on which the
fusion already beats every rule by a clear margin then pulls little, and the gradient goes to the terms on
which it still loses: a smooth form of "at least as good as every simple rule on each measure", which is
what the benchmark counts (a plain weighted sum lets a term that is easy to improve, such as VIF on CT-MRI,
pay for losses on the others). It is not part of the bundle's recipe (it lost MI on every pair type; the
bundle's model card has the runs).

``written=True`` scores the image a user gets instead of the fused luminance: the target then also stacks the
other source's chroma (``cat([mri, other, cb, cr], 1)``, :class:`~monai_fusion.engines.PrepareFusionBatch` with
``chroma_keys``) and the terms see :func:`~monai_fusion.losses.written.soft_written_luminance` of the prediction:
all of them, or only those named in ``written_terms`` (the others then score the fused luminance itself).

Written here because neither MONAI nor piq has a fusion loss against two sources; the SSIM and VIF terms
reuse :mod:`monai_fusion.metrics` (one implementation of each quantity, so the loss optimises what the
metrics report; this is the one place where the ``losses`` package imports from ``metrics``).
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Callable, Mapping, Sequence

import torch
from monai.data import MetaTensor
from torch import nn

from ..metrics.perceptual import vif_per_source
from ..metrics.structural import ssim_per_source
from ..utils.constants import PAIR_TYPES
from ..utils.errors import FusionInputError
from ..utils.kernels import HALF_PI, QABF_ORIENTATION, QABF_STRENGTH, qabf_sigmoid, sobel
from .mutual_information import soft_mutual_information
from .written import soft_written_luminance

__all__ = ["StructureFusionLoss", "soft_mutual_information", "soft_qabf", "soft_scd"]

#: The reference fusion rules of ``reference_rules``: ``(mri, other) -> fused``.
_RULES = {"max": torch.maximum, "average": lambda a, b: (a + b) / 2}


def soft_qabf(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """Differentiable Qabf of ``(N, 1, H, W)`` images on the 8-bit scale (see the module docstring).

    Args:
        fused: F.
        a: source A.
        b: source B.
        eps: added under the square roots of the gradient magnitudes and the orientation terms.

    Returns:
        ``(N,)`` values in [0, 1], close to :func:`monai_fusion.metrics.qabf` (Petrovic variant).
    """
    gxf, gyf = sobel(fused)
    gf = torch.sqrt(gxf * gxf + gyf * gyf + eps)
    num = torch.zeros(fused.shape[0], dtype=fused.dtype, device=fused.device)
    den = torch.zeros_like(num)
    for src in (a, b):
        gx, gy = sobel(src)
        gs = torch.sqrt(gx * gx + gy * gy + eps)
        ratio = torch.minimum(gs, gf) / torch.maximum(gs, gf)
        dot, cross = gx * gxf + gy * gyf, gx * gyf - gy * gxf
        theta = torch.atan2(torch.sqrt(cross * cross + eps), torch.sqrt(dot * dot + eps))  # in [0, pi/2]
        q = qabf_sigmoid(ratio, *QABF_STRENGTH) * qabf_sigmoid(1 - theta / HALF_PI, *QABF_ORIENTATION)
        weight = torch.sqrt(gx * gx + gy * gy + 1e-12)
        num = num + (q * weight).sum(dim=(1, 2, 3))
        den = den + weight.sum(dim=(1, 2, 3))
    return num / (den + 1e-6)


def _corr(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    x = x - x.mean(dim=(1, 2, 3), keepdim=True)
    y = y - y.mean(dim=(1, 2, 3), keepdim=True)
    return (x * y).sum(dim=(1, 2, 3)) / torch.sqrt((x * x).sum(dim=(1, 2, 3)) * (y * y).sum(dim=(1, 2, 3)) + eps)


def soft_scd(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Differentiable SCD of ``(N, 1, H, W)`` images: ``corr(F - B, A) + corr(F - A, B)`` per sample.

    Args:
        fused: F.
        a: source A.
        b: source B.
        eps: added under the square root of the correlations' denominators (a flat difference image).

    Returns:
        ``(N,)`` SCD values; the metric's own where the denominators are far above ``eps``.
    """
    return _corr(fused - b, a, eps) + _corr(fused - a, b, eps)


class StructureFusionLoss(nn.Module):
    """``w_ssim (1 - SSIM) + w_qabf (1 - Qabf) - w_vif VIF - w_scd SCD / 2 - w_mi MI / 2 + w_grad grad + w_int int``.

    ``int`` is ``|F - max(A, B)|`` (see the module docstring for every term).

    Args:
        w_ssim: weight of the SSIM term.
        w_qabf: weight of the edge-preservation term.
        w_vif: weight of the VIF term.
        w_scd: weight of the SCD term.
        w_int: weight of the max-intensity term.
        int_margin: the max-intensity term counts only pixels where ``|A - B|`` exceeds this (images in
            [0, 1]); 0 counts every pixel.
        w_grad: weight of the max-gradient term.
        w_mi: weight of the mutual-information term (computed only for the samples whose weight is not 0).
        mi_bins: histogram bins of the mutual-information term.
        pair_weights: per pair type (``"CT-MRI"``, ...), settings that replace the ones above for the
            samples of that type, e.g. ``{"CT-MRI": {"w_int": 4, "int_margin": 0.25}}``. The pair types
            come with the target (``target.meta["pair_type"]``, one per sample, as
            :class:`~monai_fusion.engines.batch.PrepareFusionBatch` sends them) or as ``pair_types=``.
        reference_rules: fusion rules whose per-sample terms become the zero point of each structure term (see
            the module docstring): ``"max"``, ``"average"``, or any callable ``(mri, other) -> fused`` on
            ``(N, 1, H, W)`` batches (e.g. ``get_fuser("guided_filter").fuse``); empty: the plain weighted sum.
        hinge_scale: the softness ``tau`` of those margins, in the terms' units.
        hinge_leak: slope ``alpha`` kept beyond the margin, ``tau * softplus(d / tau) + alpha * d``: with
            ``alpha > 0`` a term that is already ahead of every rule still pulls, at that fraction.
        written: score the written image's luminance (the prediction with the other source's chroma put back,
            clipped and quantised to 8 bits; see the module docstring); the target must stack the chroma.
        written_terms: with ``written``, the terms scored on the written image (e.g. ``["scd"]``: the colour
            contrast on what the file keeps, the structure terms on the fused luminance); None: every term.

    Attributes:
        last_terms: the unweighted batch means of the terms of the last call (``ssim``, ``qabf``, ``vif``, ``scd``,
            ``grad``, ``int``, those with a weight) and the weighted ``total``, as floats.

    Example:
        >>> loss = StructureFusionLoss()
        >>> value = loss(net(x), x)          # x = cat([mri, other], 1) in [0, 1]
    """

    _NAMES = ("ssim", "qabf", "vif", "scd", "mi", "int", "grad")

    def __init__(
        self,
        w_ssim: float = 1.0,
        w_qabf: float = 2.0,
        w_vif: float = 1.0,
        w_scd: float = 1.0,
        w_int: float = 1.0,
        int_margin: float = 0.0,
        w_grad: float = 0.0,
        w_mi: float = 0.0,
        mi_bins: int = 64,
        pair_weights: Mapping[str, Mapping[str, float]] | None = None,
        reference_rules: Sequence[str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = (),
        hinge_scale: float = 0.02,
        hinge_leak: float = 0.0,
        written: bool = False,
        written_terms: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if written and reference_rules:  # the rules' terms would be scored on the float luminance, not the written one
            raise FusionInputError("StructureFusionLoss: written=True does not combine with reference_rules")
        if written_terms is not None:
            if isinstance(written_terms, str) or sorted(set(written_terms) - set(self._NAMES)):
                raise FusionInputError(
                    f"StructureFusionLoss: written_terms must be a list of term names among {list(self._NAMES)}, "
                    f"got {written_terms!r}"
                )
        self.written = bool(written)
        #: the terms scored on the written image (empty without ``written``)
        self.written_terms = (
            tuple(k for k in self._NAMES if written_terms is None or k in written_terms) if self.written else ()
        )
        unknown_rules = sorted(str(r) for r in reference_rules if not callable(r) and r not in _RULES)
        if unknown_rules:
            raise FusionInputError(
                f"StructureFusionLoss: reference_rules {unknown_rules} unknown; expected any of "
                f"{sorted(_RULES)} or a callable (mri, other) -> fused"
            )
        rules = tuple(r if callable(r) else _RULES[r] for r in reference_rules)
        if not (math.isfinite(hinge_scale) and hinge_scale > 0):
            raise FusionInputError(f"StructureFusionLoss: hinge_scale must be a positive number, got {hinge_scale}")
        if not (math.isfinite(hinge_leak) and hinge_leak >= 0):
            raise FusionInputError(f"StructureFusionLoss: hinge_leak must be a number >= 0, got {hinge_leak}")
        if int(mi_bins) != mi_bins or mi_bins < 2:
            raise FusionInputError(f"StructureFusionLoss: mi_bins must be an integer >= 2, got {mi_bins}")
        self.mi_bins = int(mi_bins)
        self.reference_rules = rules
        self.hinge_scale = float(hinge_scale)
        self.hinge_leak = float(hinge_leak)
        base = {
            "w_ssim": w_ssim,
            "w_qabf": w_qabf,
            "w_vif": w_vif,
            "w_scd": w_scd,
            "w_int": w_int,
            "int_margin": int_margin,
            "w_grad": w_grad,
            "w_mi": w_mi,
        }
        self.settings = self._check(base, "StructureFusionLoss")
        self.pair_settings: dict[str, dict[str, float]] = {}
        for pair_type, over in (pair_weights or {}).items():
            if pair_type not in PAIR_TYPES:  # a key no sample carries would be ignored without a word
                close = difflib.get_close_matches(str(pair_type).replace("_", "-"), PAIR_TYPES, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise FusionInputError(
                    f"StructureFusionLoss: pair_weights key {pair_type!r} is not a pair type; "
                    f"expected any of {', '.join(PAIR_TYPES)}{hint}"
                )
            unknown = sorted(set(over) - set(base))
            if unknown:
                raise FusionInputError(
                    f"StructureFusionLoss: pair_weights[{pair_type!r}] has unknown settings "
                    f"{unknown}; expected any of {sorted(base)}"
                )
            self.pair_settings[str(pair_type)] = self._check(
                {**self.settings, **over}, f"StructureFusionLoss pair_weights[{pair_type!r}]"
            )
        self.int_margin = self.settings["int_margin"]
        self.weights = {k: self.settings[f"w_{k}"] for k in self._NAMES}
        every = [self.settings, *self.pair_settings.values()]
        #: the terms with a weight in the base or any pair type's settings (the only ones computed)
        self.used_terms = tuple(k for k in self._NAMES if any(st[f"w_{k}"] for st in every))
        self.last_terms: dict[str, float] = {}

    @staticmethod
    def _check(settings: Mapping[str, Any], what: str) -> dict[str, float]:
        out = {k: float(v) for k, v in settings.items()}
        if not 0.0 <= out["int_margin"] < 1.0:
            raise FusionInputError(f"{what}: int_margin must be in [0, 1), got {out['int_margin']}")
        if any(v < 0 or not math.isfinite(v) for k, v in out.items() if k.startswith("w_")):
            raise FusionInputError(f"{what}: weights must be finite and >= 0, got {out}")
        return out

    def terms(
        self,
        pred: torch.Tensor,
        a: torch.Tensor,
        b: torch.Tensor,
        int_margin: torch.Tensor | float | None = None,
        mi_samples: torch.Tensor | None = None,
        names: Sequence[str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Every used term (unweighted), per sample, for ``(N, 1, H, W)`` images in [0, 1].

        Args:
            pred: F.
            a: source A (the MRI).
            b: source B.
            int_margin: the max-intensity term's margin, a float or one per sample (default: the loss's).
            mi_samples: boolean ``(N,)``: the samples for which the mutual-information term is computed (it is 0
                for the others, whose weight is 0); default: all.
            names: compute only these of the used terms (default: every used term).

        Returns:
            ``{name: (N,) tensor}`` for each term with a weight (in any pair type's settings).
        """
        f, sa, sb = pred * 255.0, a * 255.0, b * 255.0
        used = self.used_terms if names is None else tuple(k for k in self.used_terms if k in names)
        out: dict[str, torch.Tensor] = {}
        if "ssim" in used:
            out["ssim"] = 1 - (ssim_per_source(sa, f) + ssim_per_source(sb, f)).to(pred.dtype) / 2
        if "qabf" in used:
            out["qabf"] = 1 - soft_qabf(f, sa, sb)
        if "vif" in used:
            out["vif"] = -(vif_per_source(f, sa) + vif_per_source(f, sb)).to(pred.dtype) / 2
        if "scd" in used:
            out["scd"] = -soft_scd(f, sa, sb) / 2
        if "mi" in used:
            rows = torch.arange(pred.shape[0], device=pred.device) if mi_samples is None else mi_samples.nonzero()[:, 0]
            vals = (
                -(
                    soft_mutual_information(pred[rows], a[rows], self.mi_bins)
                    + soft_mutual_information(pred[rows], b[rows], self.mi_bins)
                )
                / 2
            )
            out["mi"] = pred.new_zeros(pred.shape[0]).index_put((rows,), vals)
        if "grad" in used:
            mags = [torch.sqrt(gx * gx + gy * gy + 1e-8) for gx, gy in (sobel(pred), sobel(a), sobel(b))]
            out["grad"] = (mags[0] - torch.maximum(mags[1], mags[2])).abs().mean(dim=(1, 2, 3))
        if "int" in used:
            margin = torch.as_tensor(
                self.int_margin if int_margin is None else int_margin, dtype=pred.dtype, device=pred.device
            ).reshape(-1, 1, 1, 1)
            err = (pred - torch.maximum(a, b)).abs() * ((a - b).abs() > margin).to(pred.dtype)
            out["int"] = err.mean(dim=(1, 2, 3))
        return out

    def _sample_settings(self, pair_types: Sequence[str] | None, n: int) -> list[dict[str, float]]:
        if pair_types is None or not self.pair_settings:
            return [self.settings] * n
        if len(pair_types) != n:
            raise FusionInputError(f"StructureFusionLoss: {len(pair_types)} pair types for a batch of {n}")
        return [self.pair_settings.get(str(p), self.settings) for p in pair_types]

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        other: torch.Tensor | None = None,
        pair_types: Sequence[str] | None = None,
    ) -> torch.Tensor:
        """Weighted total, averaged over the batch.

        Args:
            pred: fused ``(N, 1, H, W)`` in [0, 1].
            target: the MRI ``(N, 1, H, W)``, or both sources ``cat([mri, other], 1)`` when ``other`` is None
                (with ``written``: ``cat([mri, other, cb, cr], 1)``).
            other: the other source.
            pair_types: one pair type per sample for ``pair_weights`` (default: ``target.meta["pair_type"]``
                when the target carries it).

        Returns:
            The scalar loss; the terms are kept in :attr:`last_terms`.
        """
        if pair_types is None:
            meta = getattr(target, "meta", None)
            pair_types = meta.get("pair_type") if isinstance(meta, Mapping) else None
        if isinstance(target, MetaTensor):
            target = target.as_tensor()
        if isinstance(pred, MetaTensor):
            pred = pred.as_tensor()
        chroma = None
        if self.written:
            if other is not None or target.ndim != 4 or target.shape[1] != 4:
                raise FusionInputError(
                    f"StructureFusionLoss(written=True): target must stack both sources and the other source's "
                    f"chroma, (N, 4, H, W) = cat([mri, other, cb, cr], 1), got {tuple(target.shape)}"
                )
            target, chroma = target[:, :2], target[:, 2:]
        if other is None:
            if target.ndim != 4 or target.shape[1] != 2:
                raise FusionInputError(
                    f"StructureFusionLoss: target must stack both sources, (N, 2, H, W), got {tuple(target.shape)}"
                )
            target, other = target[:, :1], target[:, 1:]
        if pred.shape != target.shape or other.shape != target.shape or pred.shape[1] != 1:
            raise FusionInputError(
                f"StructureFusionLoss: expected (N, 1, H, W) prediction and sources of one shape, "
                f"got {tuple(pred.shape)}, {tuple(target.shape)}, {tuple(other.shape)}"
            )
        if "vif" in self.used_terms and min(pred.shape[-2:]) < 41:  # as the VIF metric: 4 scales of 'valid' filtering
            raise FusionInputError(
                f"StructureFusionLoss: the VIF term (4 scales) needs images of at least 41x41 pixels, "
                f"got {tuple(pred.shape[-2:])}; use larger patches or w_vif=0"
            )
        per = self._sample_settings(pair_types, pred.shape[0])
        margins = [s["int_margin"] for s in per]
        margin = margins if len(set(margins)) > 1 else margins[0]
        mi_samples = torch.tensor([s["w_mi"] > 0 for s in per], device=pred.device) if "mi" in self.used_terms else None
        on_written = [k for k in self.used_terms if k in self.written_terms]  # non-empty only with the chroma
        plain = [k for k in self.used_terms if k not in on_written]
        terms = self.terms(pred, target, other, int_margin=margin, mi_samples=mi_samples, names=plain)
        if on_written:
            written = soft_written_luminance(pred, chroma)
            terms.update(self.terms(written, target, other, int_margin=margin, mi_samples=mi_samples, names=on_written))
        terms = {k: terms[k] for k in self.used_terms}
        raw = {k: float(v.detach().mean()) for k, v in terms.items()}
        if self.reference_rules:
            with torch.no_grad():
                refs = [
                    self.terms(rule(target, other).clamp(0, 1), target, other, int_margin=margin, mi_samples=mi_samples)
                    for rule in self.reference_rules
                ]
            tau = self.hinge_scale
            for k in terms:
                if k != "int":
                    best = torch.stack([ref[k] for ref in refs]).amin(dim=0)
                    gap = terms[k] - best
                    terms[k] = tau * torch.nn.functional.softplus(gap / tau) + self.hinge_leak * gap
        total = pred.new_zeros(())
        for k, v in terms.items():
            w = torch.tensor([s[f"w_{k}"] for s in per], dtype=v.dtype, device=v.device)
            total = total + (w * v).mean()
        self.last_terms = {**raw, "total": float(total.detach())}
        return total
