"""Perceptual loss: feature MSE at several depths of a frozen backbone.

Backbones: ``"medical"`` (this project's small extractor, shipped, the default: no download),
``"vgg19"`` / ``"vgg16_bn"`` (ImageNet weights read offline from the torch cache or a path), or
any module returning a list of feature maps. MONAI's ``PerceptualLoss`` downloads its networks
at construction, which this project must not do, hence this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..networks.nets.feature_extractor import load_medical_feature_extractor
from ..networks.nets.vgg import VGG_ARCHS, VGGFeatures, torchvision_weights_file
from ..utils.errors import FusionInputError

__all__ = ["PERCEPTUAL_BACKBONES", "resolve_backbone", "build_feature_backbone", "PerceptualFeatureLoss"]

#: Named backbones of :class:`PerceptualFeatureLoss`.
PERCEPTUAL_BACKBONES: tuple[str, ...] = ("medical", *VGG_ARCHS)


def resolve_backbone(backbone: str, path: str | os.PathLike | None = None) -> str:
    """The backbone name ``auto`` stands for: ``vgg16_bn`` when its ImageNet file is there, else ``medical``.

    The poster's authors use VGG16-BN; a fresh machine has no ImageNet file and nothing may be downloaded,
    so ``auto`` falls back to the shipped medical extractor. Other names are returned unchanged.

    Args:
        backbone: ``auto`` or one of :data:`PERCEPTUAL_BACKBONES`.
        path: an explicit VGG16-BN file that ``auto`` checks instead of the torch cache.
    """
    if backbone != "auto":
        return backbone
    file = Path(path) if path is not None else torchvision_weights_file("vgg16_bn")
    return "vgg16_bn" if file.is_file() else "medical"


def _resolve_auto(backbone: str, path: str | os.PathLike | None) -> tuple[str, str | os.PathLike | None]:
    """``(name, path)`` with ``auto`` resolved; ``path`` named the VGG16-BN file, so the medical fallback drops it."""
    name = resolve_backbone(backbone, path)
    return name, (None if backbone == "auto" and name == "medical" else path)


class _Select(nn.Module):
    """Keep some entries of a backbone's list of feature maps."""

    def __init__(self, backbone: nn.Module, layers: Sequence[int]) -> None:
        super().__init__()
        self.backbone = backbone
        self.layers = [int(i) for i in layers]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.backbone(x)
        return [feats[i] for i in self.layers]


def build_feature_backbone(
    backbone: str = "medical", layers: Sequence[int] | None = None, path: str | os.PathLike | None = None
) -> nn.Module:
    """A frozen module mapping ``(B, 1, H, W)`` in [0, 1] to a list of feature maps.

    Args:
        backbone: one of :data:`PERCEPTUAL_BACKBONES`, or ``auto`` (see :func:`resolve_backbone`).
        layers: for ``medical``, which stages (default all three); for VGG, ``features`` indices
            (default relu1_2, relu2_2, relu3_3/relu3_4).
        path: weights file (default: the shipped file for ``medical``, the torch cache for VGG).

    Returns:
        The backbone in eval mode with gradients off.

    Raises:
        MissingWeightsError: the weights file is absent (the message says how to obtain it).
        FusionInputError: unknown backbone name.
    """
    backbone, path = _resolve_auto(backbone, path)
    if backbone == "medical":
        net: nn.Module = load_medical_feature_extractor(path)
        if layers is not None:
            net = _Select(net, layers)
    elif backbone in VGG_ARCHS:
        net = VGGFeatures(backbone, layers, path)
    else:
        raise FusionInputError(f"perceptual backbone {backbone!r} is not one of {', '.join(PERCEPTUAL_BACKBONES)}")
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class PerceptualFeatureLoss(nn.Module):
    """Weighted mean over depths of ``MSE(phi_l(pred), phi_l(target))`` with a frozen backbone.

    Args:
        backbone: a name (see :func:`build_feature_backbone`) or a module returning a list of maps.
        layers: which depths (see :func:`build_feature_backbone`).
        path: weights file of a named backbone.
        layer_weights: one weight per depth (default equal); normalised to sum to one.
    """

    def __init__(
        self,
        backbone: str | nn.Module = "medical",
        layers: Sequence[int] | None = None,
        path: str | os.PathLike | None = None,
        layer_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(backbone, str):
            backbone, path = _resolve_auto(backbone, path)
        #: the backbone's name (``auto`` resolved) or ``"custom"`` for a module
        self.backbone_name = backbone if isinstance(backbone, str) else "custom"
        self.backbone = build_feature_backbone(backbone, layers, path) if isinstance(backbone, str) else backbone
        self.backbone.eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.layer_weights = [float(w) for w in layer_weights] if layer_weights is not None else None

    def train(self, mode: bool = True) -> "PerceptualFeatureLoss":
        """Switch mode but keep the frozen backbone in eval mode (its batch norms stay fixed)."""
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Args: pred, target: ``(B, 1, H, W)`` in [0, 1]. Returns: the scalar loss."""
        fp = self.backbone(pred)
        with torch.no_grad():
            ft = self.backbone(target)
        weights = self.layer_weights or [1.0] * len(fp)
        if len(weights) != len(fp):
            raise FusionInputError(f"layer_weights has {len(weights)} entries but the backbone gives {len(fp)} maps")
        total = sum(weights)
        return sum(w / total * F.mse_loss(a, b) for w, a, b in zip(weights, fp, ft))  # type: ignore[return-value]
