"""Frozen ImageNet VGG feature extractors (torchvision VGG16-BN / VGG19), loaded offline.

The weights are read from the standard torch cache, ``torch.hub.get_dir()/checkpoints/<file>``
with torchvision's own file name (``vgg19-dcbb9e9d.pth``, ``vgg16_bn-6c64b313.pth``), or from an
explicit path. Nothing is downloaded: a missing file raises :class:`MissingWeightsError` saying
where to put it and how to obtain it. Only the ``features.*`` tensors up to the last layer needed
are read (the file is memory-mapped), so a partial checkpoint in the torchvision format works too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torchvision.models import VGG16_BN_Weights, VGG19_Weights
from torchvision.models.vgg import cfgs, make_layers

from ...utils.errors import FusionInputError
from ..utils import MissingWeightsError, load_weights_file, split_checkpoint

__all__ = ["VGG_ARCHS", "VGG_DEFAULT_LAYERS", "torchvision_weights_file", "load_vgg_features", "VGGFeatures"]

#: arch -> (torchvision weights enum, torchvision config letter, batch norm)
VGG_ARCHS: dict[str, tuple[object, str, bool]] = {
    "vgg16_bn": (VGG16_BN_Weights.IMAGENET1K_V1, "D", True),
    "vgg19": (VGG19_Weights.IMAGENET1K_V1, "E", False),
}
#: ``features`` indices of relu1_2, relu2_2, relu3_3 (relu3_4 for VGG19) used by the perceptual loss.
VGG_DEFAULT_LAYERS: dict[str, tuple[int, ...]] = {"vgg16_bn": (5, 12, 22), "vgg19": (3, 8, 17)}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _arch(arch: str) -> tuple[object, str, bool]:
    if arch not in VGG_ARCHS:
        raise FusionInputError(f"VGG arch {arch!r} is not one of {', '.join(VGG_ARCHS)}")
    return VGG_ARCHS[arch]


def torchvision_weights_file(arch: str) -> Path:
    """Where torchvision caches the ImageNet weights of ``arch``: ``<hub dir>/checkpoints/<file>``.

    ``torch.hub.get_dir()`` follows ``TORCH_HOME`` (default ``~/.cache/torch``).
    """
    weights, _, _ = _arch(arch)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)  # type: ignore[attr-defined]


def _missing_message(arch: str, file: Path) -> str:
    weights, _, _ = _arch(arch)
    enum = type(weights).__name__
    return (
        f"ImageNet {arch} weights not found at {file}. monai-fusion never downloads weights. On a machine with "
        f"internet run `python -c \"import torchvision; torchvision.models.{arch}(weights='IMAGENET1K_V1')\"` "
        f"(torchvision's {enum}.IMAGENET1K_V1, {weights.url}) and copy the file to {file} "  # type: ignore[attr-defined]
        f"(or set TORCH_HOME), or pass its path explicitly."
    )


def load_vgg_features(
    arch: str = "vgg19", path: str | os.PathLike | None = None, last_layer: int | None = None
) -> nn.Sequential:
    """Build torchvision's VGG ``features`` up to ``last_layer`` and load the ImageNet weights.

    Args:
        arch: ``vgg19`` or ``vgg16_bn``.
        path: checkpoint file in the torchvision format; default :func:`torchvision_weights_file`.
        last_layer: index of the last ``features`` layer kept (default: all).

    Returns:
        The frozen ``nn.Sequential`` in eval mode.

    Raises:
        MissingWeightsError: the file is absent (the message says how to obtain it).
        FusionInputError: the file lacks a needed tensor or has a wrong shape.
    """
    _, cfg, bn = _arch(arch)
    layers = make_layers(cfgs[cfg], batch_norm=bn)
    n = len(layers) if last_layer is None else last_layer + 1
    if not 1 <= n <= len(layers):
        raise FusionInputError(f"last_layer={last_layer} is outside the {len(layers)} layers of {arch}.features")
    features = nn.Sequential(*list(layers)[:n])
    file = Path(path) if path is not None else torchvision_weights_file(arch)
    if not file.is_file():
        raise MissingWeightsError(_missing_message(arch, file))
    state, _ = split_checkpoint(load_weights_file(file, f"{arch} weights"), f"{arch} weights {file}")
    wanted = {}
    for key, ref in features.state_dict().items():
        full = f"features.{key}"
        if key.endswith("num_batches_tracked"):
            continue  # absent from torchvision's older checkpoints; irrelevant in eval mode
        if full not in state:
            raise FusionInputError(f"{arch} weights {file}: tensor {full!r} is missing; expected torchvision's format")
        if tuple(state[full].shape) != tuple(ref.shape):
            raise FusionInputError(
                f"{arch} weights {file}: {full!r} has shape {tuple(state[full].shape)}, expected {tuple(ref.shape)}"
            )
        wanted[key] = state[full].float()
    features.load_state_dict(wanted, strict=False)
    features.eval()
    for p in features.parameters():
        p.requires_grad_(False)
    return features


class VGGFeatures(nn.Module):
    """Frozen ImageNet VGG returning feature maps at several depths (for perceptual losses).

    Grey inputs in [0, 1] are repeated to RGB and normalised with the ImageNet mean/std.

    Args:
        arch: ``vgg19`` or ``vgg16_bn``.
        layers: ``features`` indices whose outputs are returned (default :data:`VGG_DEFAULT_LAYERS`).
        path: checkpoint file (default: the torch cache, see :func:`torchvision_weights_file`).
    """

    def __init__(
        self, arch: str = "vgg19", layers: Sequence[int] | None = None, path: str | os.PathLike | None = None
    ) -> None:
        super().__init__()
        self.layers = [int(i) for i in (layers if layers is not None else VGG_DEFAULT_LAYERS.get(arch, ()))]
        if not self.layers:
            raise FusionInputError("VGGFeatures: give at least one layer index")
        self.features = load_vgg_features(arch, path, last_layer=max(self.layers))
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Args: x: ``(B, 1|3, H, W)`` in [0, 1]. Returns: the feature maps at ``layers``, shallow first."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h = (x - self.mean) / self.std
        outs: list[torch.Tensor] = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.layers:
                outs.append(h)
        return outs
