"""A paired fusion loss that rewards keeping the stronger structure of each source.

``loss(pred, mri, other)`` (or ``loss(pred, cat([mri, other], 1))`` from a MONAI trainer) is a weighted
sum of five terms, each a differentiable form of what the evaluation measures:

- ``ssim``: ``1 - mean(SSIM(F, A), SSIM(F, B))``, the metrics' own SSIM (Gaussian 11x11, 8-bit scale);
- ``qabf``: ``1 - Qabf``, Xydeas-Petrovic edge preservation with the metric's sigmoid constants, made
  differentiable: gradient magnitudes get a small epsilon and the edge-orientation difference is the
  angle between the two edge lines, ``atan2(|g_s x g_f|, |g_s . g_f|)``, instead of a difference of
  ``atan`` values (the same quantity where both are defined, with a gradient everywhere);
- ``vif``: ``-mean(VIF(F, A), VIF(F, B))``, the metrics' own pixel-domain VIF;
- ``scd``: ``-SCD / 2``, ``corr(F - B, A) + corr(F - A, B)`` with an epsilon under the square root;
- ``int``: ``mean |F - max(A, B)|``, which keeps the brighter source's intensities.

Written here because neither MONAI nor piq has a fusion loss against two sources; the SSIM and VIF terms
reuse :mod:`monai_fusion.metrics` (one implementation of each quantity, so the loss optimises what the
metrics report; this is the one place where the ``losses`` package imports from ``metrics``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..metrics.perceptual import vif_per_source
from ..metrics.structural import ssim_per_source
from ..metrics.utils import sobel
from ..utils.errors import FusionInputError

__all__ = ["StructureFusionLoss", "soft_qabf"]

_HALF_PI = math.pi / 2


def _soft_sigmoid(v: torch.Tensor, gamma: float, kappa: float, sigma: float) -> torch.Tensor:
    return gamma / (1 + torch.exp(kappa * (v - sigma)))


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
        q = _soft_sigmoid(ratio, 0.9994, -15.0, 0.5) * _soft_sigmoid(1 - theta / _HALF_PI, 0.9879, -22.0, 0.8)
        weight = torch.sqrt(gx * gx + gy * gy + 1e-12)
        num = num + (q * weight).sum(dim=(1, 2, 3))
        den = den + weight.sum(dim=(1, 2, 3))
    return num / (den + 1e-6)


def _corr(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    x = x - x.mean(dim=(1, 2, 3), keepdim=True)
    y = y - y.mean(dim=(1, 2, 3), keepdim=True)
    return (x * y).sum(dim=(1, 2, 3)) / torch.sqrt((x * x).sum(dim=(1, 2, 3)) * (y * y).sum(dim=(1, 2, 3)) + eps)


class StructureFusionLoss(nn.Module):
    """``w_ssim (1 - SSIM) + w_qabf (1 - Qabf) - w_vif VIF - w_scd SCD / 2 + w_int |F - max(A, B)|``.

    Args:
        w_ssim: weight of the SSIM term.
        w_qabf: weight of the edge-preservation term.
        w_vif: weight of the VIF term.
        w_scd: weight of the SCD term.
        w_int: weight of the max-intensity term.

    Attributes:
        last_terms: the unweighted terms of the last call (``ssim``, ``qabf``, ``vif``, ``scd``, ``int``) and the
            weighted ``total``, as floats.

    Example:
        >>> loss = StructureFusionLoss()
        >>> value = loss(net(x), x)          # x = cat([mri, other], 1) in [0, 1]
    """

    def __init__(self, w_ssim: float = 1.0, w_qabf: float = 2.0, w_vif: float = 1.0, w_scd: float = 1.0,
                 w_int: float = 1.0) -> None:
        super().__init__()
        self.weights = {"ssim": float(w_ssim), "qabf": float(w_qabf), "vif": float(w_vif), "scd": float(w_scd),
                        "int": float(w_int)}
        if any(v < 0 or not math.isfinite(v) for v in self.weights.values()):
            raise FusionInputError(f"StructureFusionLoss: weights must be finite and >= 0, got {self.weights}")
        self.last_terms: dict[str, float] = {}

    def terms(self, pred: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every term (unweighted) for ``(N, 1, H, W)`` images in [0, 1]."""
        f, sa, sb = pred * 255.0, a * 255.0, b * 255.0
        out: dict[str, torch.Tensor] = {}
        if self.weights["ssim"]:
            out["ssim"] = 1 - (ssim_per_source(sa, f) + ssim_per_source(sb, f)).mean().to(pred.dtype) / 2
        if self.weights["qabf"]:
            out["qabf"] = 1 - soft_qabf(f, sa, sb).mean()
        if self.weights["vif"]:
            out["vif"] = -(vif_per_source(f, sa) + vif_per_source(f, sb)).mean().to(pred.dtype) / 2
        if self.weights["scd"]:
            out["scd"] = -(_corr(f - sb, sa) + _corr(f - sa, sb)).mean() / 2
        if self.weights["int"]:
            out["int"] = (pred - torch.maximum(a, b)).abs().mean()
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted total.

        Args:
            pred: fused ``(N, 1, H, W)`` in [0, 1].
            target: the MRI ``(N, 1, H, W)``, or both sources ``cat([mri, other], 1)`` when ``other`` is None.
            other: the other source.

        Returns:
            The scalar loss; the terms are kept in :attr:`last_terms`.
        """
        if other is None:
            if target.ndim != 4 or target.shape[1] != 2:
                raise FusionInputError(f"StructureFusionLoss: target must stack both sources, (N, 2, H, W), "
                                       f"got {tuple(target.shape)}")
            target, other = target[:, :1], target[:, 1:]
        if pred.shape != target.shape or other.shape != target.shape or pred.shape[1] != 1:
            raise FusionInputError(f"StructureFusionLoss: expected (N, 1, H, W) prediction and sources of one shape, "
                                   f"got {tuple(pred.shape)}, {tuple(target.shape)}, {tuple(other.shape)}")
        if self.weights["vif"] and min(pred.shape[-2:]) < 41:  # as the VIF metric: four scales of 'valid' filtering
            raise FusionInputError(f"StructureFusionLoss: the VIF term (4 scales) needs images of at least 41x41 pixels, "
                                   f"got {tuple(pred.shape[-2:])}; use larger patches or w_vif=0")
        terms = self.terms(pred, target, other)
        total = sum(self.weights[k] * v for k, v in terms.items())
        self.last_terms = {**{k: float(v.detach()) for k, v in terms.items()}, "total": float(total.detach())}
        return total  # type: ignore[return-value]
