"""The training loss of the fusion networks: MSE + lambda_grad * gradient + lambda_perc * perceptual (+ SSIM).

Two modes, one class: ``loss(pred, target)`` for autoencoder reconstruction (the poster's recipe)
and ``loss(pred, mri, other)`` for paired unsupervised fusion, where each term is taken against
both sources (weighted by ``source_weights``). :meth:`FusionLoss.terms` returns every term so an
engine can report them; ``forward`` returns the total and keeps the last terms in ``last_terms``.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn.functional as F
from monai.losses import SSIMLoss
from torch import nn

from .gradient import SobelGradientLoss
from .perceptual import PerceptualFeatureLoss

__all__ = ["FusionLoss"]


class FusionLoss(nn.Module):
    """``lambda_mse * MSE + lambda_grad * Sobel gradient loss + lambda_perc * perceptual loss``.

    Args:
        lambda_mse: weight of the pixel MSE.
        lambda_grad: weight of :class:`SobelGradientLoss`.
        lambda_perc: weight of :class:`PerceptualFeatureLoss` (0: no backbone is loaded).
        backbone: perceptual backbone: ``"medical"`` (shipped, default), ``"vgg19"``, ``"vgg16_bn"``,
            ``"auto"`` (VGG16-BN when its file is there, else medical) or a module returning a list of maps.
        backbone_path: weights file of a named backbone (default: shipped file / torch cache).
        perceptual_layers: depths used by the perceptual loss (see ``build_feature_backbone``).
        source_weights: weights of the two sources in paired mode.
        gradient_rule: paired gradient target, ``"mean"`` of both losses or ``"max"`` gradients.
        lambda_ssim: weight of ``1 - SSIM`` (MONAI's ``SSIMLoss``, 11x11 Gaussian window, data range 1), the
            structural term of the DenseFuse-style recipes of MSRPAN and MSDRA; 0: not computed.

    Attributes:
        backbone_name: the perceptual backbone actually used (``auto`` resolved; ``None`` without one).
    """

    def __init__(
        self,
        lambda_mse: float = 1.0,
        lambda_grad: float = 1.0,
        lambda_perc: float = 0.1,
        backbone: str | nn.Module = "medical",
        backbone_path: str | os.PathLike | None = None,
        perceptual_layers: Sequence[int] | None = None,
        source_weights: Sequence[float] = (0.5, 0.5),
        gradient_rule: str = "mean",
        lambda_ssim: float = 0.0,
    ) -> None:
        super().__init__()
        if len(source_weights) != 2:
            raise ValueError(f"source_weights={tuple(source_weights)} must hold two weights")
        self.lambda_mse = float(lambda_mse)
        self.lambda_grad = float(lambda_grad)
        self.lambda_perc = float(lambda_perc)
        self.lambda_ssim = float(lambda_ssim)
        self.source_weights = (float(source_weights[0]), float(source_weights[1]))
        self.gradient = SobelGradientLoss(gradient_rule)
        self.perceptual = (
            PerceptualFeatureLoss(backbone, perceptual_layers, backbone_path) if self.lambda_perc > 0 else None
        )
        self.backbone_name = self.perceptual.backbone_name if self.perceptual is not None else None
        self.ssim = SSIMLoss(spatial_dims=2, data_range=1.0, kernel_type="gaussian") if self.lambda_ssim > 0 else None
        self.last_terms: dict[str, float] = {}

    def terms(
        self, pred: torch.Tensor, target: torch.Tensor, other: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Every term, unweighted, and the weighted ``total``.

        Args:
            pred: network output ``(B, 1, H, W)``.
            target: the reconstruction target, or the MRI in paired mode.
            other: the second source in paired mode.

        Returns:
            ``{"mse", "grad", "perc", "ssim", "total"}`` scalar tensors (``perc`` / ``ssim`` are 0 when disabled).
        """
        w0, w1 = self.source_weights if other is not None else (1.0, 0.0)

        def both(fn, *args) -> torch.Tensor:  # one term against one or both sources
            value = w0 * fn(pred, target, *args)
            return value + w1 * fn(pred, other, *args) if other is not None else value

        mse = both(F.mse_loss)
        grad = self.gradient(pred, target, other)
        perc = both(self.perceptual) if self.perceptual is not None else pred.new_zeros(())
        ssim = both(self.ssim) if self.ssim is not None else pred.new_zeros(())
        total = self.lambda_mse * mse + self.lambda_grad * grad + self.lambda_perc * perc + self.lambda_ssim * ssim
        return {"mse": mse, "grad": grad, "perc": perc, "ssim": ssim, "total": total}

    def forward(self, pred: torch.Tensor, target: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        """The weighted total (see :meth:`terms`); the terms are kept as floats in ``last_terms``."""
        terms = self.terms(pred, target, other)
        self.last_terms = {k: float(v.detach()) for k, v in terms.items()}
        return terms["total"]
