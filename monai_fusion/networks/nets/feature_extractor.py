"""A small medical-image feature extractor that this project trains itself and ships.

It replaces the ImageNet VGG in the perceptual loss when no VGG file is at hand, so the default
training recipe works without any download. The shipped file ``networks/weights/medical_features.pt``
is produced by ``python -m monai_fusion.networks.train_feature_extractor`` (see that module for
the recipe: denoising reconstruction + modality classification on the training split).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..utils import MissingWeightsError, load_weights_file, split_checkpoint

__all__ = ["MEDICAL_FEATURES_FILE", "MedicalFeatureExtractor", "load_medical_feature_extractor"]

#: The shipped weights of :class:`MedicalFeatureExtractor`.
MEDICAL_FEATURES_FILE: Path = Path(__file__).resolve().parents[1] / "weights" / "medical_features.pt"


class MedicalFeatureExtractor(nn.Module):
    """A VGG-like encoder for grey slices returning its feature maps at every stage.

    Stage ``i`` (max-pooled by 2 for ``i > 0``): two 3x3 conv + ReLU layers to ``channels[i]``.

    Args:
        in_channels: image channels (1).
        channels: widths of the stages.
    """

    __jit_ignored_attributes__ = ["config"]

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        self.config = dict(in_channels=in_channels, channels=tuple(channels))
        stages: list[nn.Module] = []
        cin = in_channels
        for i, c in enumerate(channels):
            layers: list[nn.Module] = [nn.MaxPool2d(2)] if i > 0 else []
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU()]
            stages.append(nn.Sequential(*layers))
            cin = c
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Args: x: ``(B, 1, H, W)`` in [0, 1]. Returns: one feature map per stage, shallow first."""
        outs: list[torch.Tensor] = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


def load_medical_feature_extractor(
    path: str | os.PathLike | None = None, frozen: bool = True
) -> MedicalFeatureExtractor:
    """Load the project's medical feature extractor (default: the shipped file).

    Args:
        path: a checkpoint written by the training script (``{"state_dict", "config"}``).
        frozen: eval mode and no gradients (for use inside a loss).

    Returns:
        The network.

    Raises:
        MissingWeightsError: the file is absent (rebuild it with the training script).
    """
    file = Path(path) if path is not None else MEDICAL_FEATURES_FILE
    if not file.is_file():
        raise MissingWeightsError(
            f"medical feature extractor weights not found at {file}; train them with "
            f"`python -m monai_fusion.networks.train_feature_extractor --out {file}` or pass another path"
        )
    state, config = split_checkpoint(load_weights_file(file, "medical feature extractor"), str(file))
    net = MedicalFeatureExtractor(**config)
    net.load_state_dict({k: v.float() for k, v in state.items()})
    if frozen:
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
    return net
