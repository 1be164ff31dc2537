"""Fusion methods built on networks: the default model, the poster's network, MSRPAN, MSDRA and zero-learning.

Network fusers take ``weights=`` (a checkpoint: a state dict or ``{"state_dict", "config"}``
written by :func:`monai_fusion.networks.save_checkpoint`, read with ``weights_only=True``). Without it
they load the weights the package ships (``networks/weights/<name>.pt``, trained by the bundle's configs);
a randomly initialised network is built only on request (``random_init=True``, for tests and timing: it is
no meaningful fusion). ``zero_learning`` needs torchvision's ImageNet VGG19 file (never downloaded);
``zero_learning_medical`` runs the same rule on the shipped medical feature extractor.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..networks.nets.base import FeatureFusionNet
from ..networks.nets.feature_extractor import load_medical_feature_extractor
from ..networks.nets.msdra import MSDRA
from ..networks.nets.msrpan import MSRPAN
from ..networks.nets.poster import PosterFusionNet
from ..networks.nets.vgg import load_vgg_features
from ..networks.nets.weight_map import WeightMapFusionNet
from ..networks.utils import MissingWeightsError, load_weights_file, split_checkpoint
from ..utils.errors import FusionInputError
from .base import BaseFuser, register_fuser

__all__ = [
    "DEFAULT_WEIGHTS",
    "WEIGHTS_DIR",
    "shipped_weights_file",
    "DefaultFuser",
    "NetworkFuser",
    "PosterFuser",
    "MSRPANFuser",
    "MSDRAFuser",
    "ZeroLearningFuser",
    "MedicalZeroLearningFuser",
]

#: Where the package's trained weights live.
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "networks" / "weights"


def shipped_weights_file(name: str) -> Path:
    """The shipped checkpoint of network method ``name``: ``networks/weights/<name>.pt`` (``default``:
    ``default_fusion.pt``)."""
    return DEFAULT_WEIGHTS if name == "default" else WEIGHTS_DIR / f"{name}.pt"


def _move(module: torch.nn.Module, device: torch.device) -> None:
    first = next(module.parameters(), None)
    if first is not None and first.device != device:
        module.to(device)


class NetworkFuser(BaseFuser):
    """Fuse with an encoder / fusion / decoder network: ``clamp(net(mri, other), 0, 1)``, 0 where both sources are 0.

    Args:
        weights: checkpoint path; ``None``: the shipped weights of the method (:func:`shipped_weights_file`).
        random_init: build a randomly initialised network instead (tests and timing only; not with ``weights``).
        strategy: feature-fusion rule overriding the network's (see ``FUSION_STRATEGIES``).
        device: where the network lives (it also follows the inputs' device).
        net_kwargs: constructor arguments of the network (override the checkpoint's config).

    Attributes:
        net: the network, in eval mode.
        trained: whether weights were loaded.
        meta: the checkpoint's provenance (``meta`` of an exported checkpoint; empty otherwise).

    Raises:
        MissingWeightsError: no ``weights``, no ``random_init`` and the shipped file is absent.
    """

    #: The network class; set by subclasses.
    network: ClassVar[type[FeatureFusionNet]]
    #: Registry name, used in messages.
    name: ClassVar[str] = "network"
    #: The memory guard: most bytes of feature maps one call may hold (larger batches are split; a single
    #: slice above it is refused with a clear error instead of exhausting the machine's memory).
    max_batch_bytes: ClassVar[int] = 16 * 2**30
    #: Measured peak bytes per pixel and feature channel of one slice pair (about 17 float32 maps per channel).
    BYTES_PER_PIXEL_CHANNEL: ClassVar[int] = 4 * 20
    #: Hold the output at 0 where both sources are exactly 0 (the air around the head). An autoencoder's decoder
    #: leaves a faint offset there (the trained poster network about 0.009 on average, invisible in the picture),
    #: which SSIM against a black background punishes hard (CT-MRI SSIM 0.54 instead of 0.71). The default
    #: model's network does this itself.
    zero_background: ClassVar[bool] = True
    #: Run the network and its inputs in the channels-last memory layout. oneDNN's convolutions on few channels
    #: are about twice as fast in it on a CPU (WeightMapFusionNet, MSRPAN, MSDRA) with the same output; the
    #: poster network's wide layers are twice as slow in it, so each fuser says which layout its network prefers.
    channels_last: ClassVar[bool] = False

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        strategy: str | None = None,
        device: str | torch.device | None = None,
        random_init: bool = False,
        **net_kwargs: Any,
    ) -> None:
        state: dict[str, torch.Tensor] | None = None
        config: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        if random_init and weights is not None:
            raise FusionInputError(f"{self.name}: give weights or random_init=True, not both")
        if weights is None and not random_init:
            weights = shipped_weights_file(self.name)
            if not weights.is_file():
                raise MissingWeightsError(
                    f"{self.name}: the shipped weights {weights} are missing; reinstall monai-fusion, train them "
                    "with the bundle's configs (docs/reproduction.md) and pass weights=<the exported .pt>, or pass "
                    "random_init=True for a randomly initialised network (timing only)"
                )
        if weights is not None:
            what = f"{self.name} weights {weights}"
            loaded = load_weights_file(weights, what)
            state, config = split_checkpoint(loaded, what)
            if isinstance(loaded, dict) and isinstance(loaded.get("meta"), dict):
                self.meta = dict(loaded["meta"])
        config.update(net_kwargs)
        try:
            self.net = self.network(**config)
        except TypeError as err:
            raise FusionInputError(f"{self.name}: bad network arguments {sorted(config)}: {err}") from err
        if state is not None:
            try:
                self.net.load_state_dict(state)
            except RuntimeError as err:
                raise FusionInputError(f"{self.name}: weights {weights} do not fit the network: {err}") from err
        self.trained = state is not None
        if strategy is not None:
            try:
                self.net.set_strategy(strategy)
            except ValueError as err:
                raise FusionInputError(f"{self.name}: {err}") from err
        self.net.eval()
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        if device is not None:
            self.net.to(device)

    def _fuse(self, mri: torch.Tensor, other: torch.Tensor, modality: list[str] | None = None) -> torch.Tensor:
        _move(self.net, mri.device)
        dtype = next(self.net.parameters()).dtype
        h, w = mri.shape[-2:]
        per_item = self.BYTES_PER_PIXEL_CHANNEL * int(self.net.config.get("channels", 64)) * int(h) * int(w)
        if per_item > self.max_batch_bytes:  # the memory guard: refuse before allocating
            raise FusionInputError(
                f"{self.name}: one {h}x{w} slice needs about {per_item / 2**30:.1f} GiB of feature maps, more than "
                f"the memory guard's {self.max_batch_bytes / 2**30:.1f} GiB (NetworkFuser.max_batch_bytes); "
                "downsample or crop the images"
            )
        step = max(1, self.max_batch_bytes // per_item)  # batches that would not fit are fused in parts
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        m_in, o_in = (t.to(dtype).contiguous(memory_format=layout) for t in (mri, other))
        if modality is None:
            parts = [self.net(m, o) for m, o in zip(m_in.split(step), o_in.split(step))]
        else:  # only networks that take it (uses_modality) get the modality, in the same parts as the images
            parts = [
                self.net(m, o, modality=modality[i : i + step])
                for i, m, o in zip(range(0, len(modality), step), m_in.split(step), o_in.split(step))
            ]
        fused = torch.cat(parts).to(mri.dtype).contiguous()
        if self.zero_background:
            fused = torch.where((mri == 0) & (other == 0), torch.zeros_like(fused), fused)
        return fused


#: The default model's shipped weights (package data; the same state dict as the bundle's models/model.pt).
DEFAULT_WEIGHTS = WEIGHTS_DIR / "default_fusion.pt"


@register_fuser("default")
class DefaultFuser(NetworkFuser):
    """The project's default model: :class:`~monai_fusion.networks.WeightMapFusionNet` with the shipped weights.

    ``weights=None`` loads :data:`DEFAULT_WEIGHTS` (trained by the bundle's ``train.json`` on the Whole
    Brain Atlas training split); pass another checkpoint (e.g. the bundle's ``models/model.pt`` after
    your own training) to use that instead. The shipped model's detail gain is set per modality, so
    :meth:`fuse` needs ``modality`` (``CT``, ``PET`` or ``SPECT``); ``detail_gain=<number>`` sets one gain for all.

    Raises:
        MissingWeightsError: the shipped file is missing (a broken install) and no ``weights`` was given.
    """

    network = WeightMapFusionNet  # type: ignore[assignment]
    channels_last = True
    name = "default"
    uses_modality = True
    zero_background = False  # WeightMapFusionNet holds its background at 0 itself

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        random_init: bool = False,
        **net_kwargs: Any,
    ) -> None:
        try:
            super().__init__(weights=weights, device=device, random_init=random_init, **net_kwargs)
        except FusionInputError as err:
            if "do not fit" in str(err) and "context." in str(err) and "global_context" not in net_kwargs:
                raise FusionInputError(
                    f"{err}. A checkpoint without the context layer comes from a bundle before 0.3.0 (or a run with "
                    "global_context false): pass select_prior=0, global_context=False, detail_gain=1 "
                    "(the settings it was trained with)"
                ) from err
            raise

    def _fuse(self, mri: torch.Tensor, other: torch.Tensor, modality: list[str] | None = None) -> torch.Tensor:
        gains = getattr(self.net, "modality_gains", None)
        if modality is None and gains:  # the library always knows the modality: no silent fallback to a default
            raise FusionInputError(
                "default: this model's detail gain is set per modality "
                f"({', '.join(f'{k} {v:g}' for k, v in gains.items())}); "
                "pass the other source's modality, fuse(mri, other, modality='CT'|'PET'|'SPECT')"
            )
        if modality is not None and gains and math.isnan(self.net.detail_gain):
            missing = sorted(set(modality) - set(gains))
            if missing:
                raise FusionInputError(
                    f"default: this model has no detail gain for {', '.join(missing)} (it has "
                    f"{', '.join(gains)}); pass detail_gain=<number> to use one gain for every input"
                )
        return super()._fuse(mri, other, modality=modality)


@register_fuser("poster")
class PosterFuser(NetworkFuser):
    """The reference poster's network (:class:`~monai_fusion.networks.PosterFusionNet`), nuclear-norm rule.

    Shipped weights: ``networks/weights/poster.pt``, trained by the bundle's ``configs/train_poster.json``
    (autoencoder, L2 + 0.2 gradient + 0.2 perceptual; its ``meta`` names the perceptual backbone).
    """

    network = PosterFusionNet
    name = "poster"


@register_fuser("msrpan")
class MSRPANFuser(NetworkFuser):
    """MSRPAN (Fu et al. 2021, :class:`~monai_fusion.networks.MSRPAN`), feature-energy-ratio rule.

    Shipped weights: ``networks/weights/msrpan.pt``, trained by ``configs/train_poster.json`` +
    ``configs/train_msrpan.json``.
    """

    network = MSRPAN
    channels_last = True
    name = "msrpan"


@register_fuser("msdra")
class MSDRAFuser(NetworkFuser):
    """MSDRA (Li et al. 2022, :class:`~monai_fusion.networks.MSDRA`), L1-norm rule.

    Shipped weights: ``networks/weights/msdra.pt``, trained by ``configs/train_poster.json`` +
    ``configs/train_msdra.json``.
    """

    network = MSDRA
    channels_last = True
    name = "msdra"


@register_fuser("zero_learning")
class ZeroLearningFuser(BaseFuser):
    """Zero-learning fusion (Lahoud and Süsstrunk 2019) with ImageNet VGG19's first layer.

    Each source (grey, repeated to RGB, in [0, 1] without ImageNet normalisation, as the
    authors do) goes through conv1_1 + ReLU; the channel sum is its activity map; the maps are
    normalised to per-pixel weights (``softmax=True``: softmax of the activities) and the output is
    the weighted average of the source pixels.

    Args:
        weights: torchvision's ``vgg19-dcbb9e9d.pth`` (default: ``torch.hub.get_dir()/checkpoints``).
        softmax: weights by softmax instead of plain normalisation.
        device: where the layer lives (it also follows the inputs' device).

    Raises:
        MissingWeightsError: the VGG19 file is absent (the message says how to obtain it).
    """

    def __init__(
        self, weights: str | os.PathLike | None = None, softmax: bool = False, device: str | torch.device | None = None
    ) -> None:
        self.net = load_vgg_features("vgg19", weights, last_layer=1)
        self.softmax = bool(softmax)
        if device is not None:
            self.net.to(device)

    #: channels the first layer takes (VGG19: grey repeated to RGB)
    input_channels: ClassVar[int] = 3

    def activity(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` activity map: channel sum of the first conv + ReLU (VGG19: ReLU(conv1_1(x)))."""
        _move(self.net, x.device)
        return self.net(x.expand(-1, self.input_channels, -1, -1)).sum(dim=1, keepdim=True)

    def pixel_weights(self, mri: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """``(B, 2, H, W)`` per-pixel weights of the two sources (sum to one)."""
        act = torch.cat([self.activity(mri), self.activity(other)], dim=1)
        if self.softmax:
            return torch.softmax(act, dim=1)
        act = act + 1e-6
        return act / act.sum(dim=1, keepdim=True)

    def _fuse(self, mri: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        w = self.pixel_weights(mri, other)
        return w[:, :1] * mri + w[:, 1:] * other


@register_fuser("zero_learning_medical")
class MedicalZeroLearningFuser(ZeroLearningFuser):
    """The zero-learning rule on the shipped medical feature extractor instead of ImageNet VGG19.

    The activity map is the channel sum of the extractor's first conv + ReLU (its counterpart of VGG19's
    conv1_1), so the baseline runs on a fresh machine with no ImageNet file; tables name it apart from
    ``zero_learning``.

    Args:
        weights: the extractor's checkpoint (default: the shipped ``networks/weights/medical_features.pt``).
        softmax: weights by softmax instead of plain normalisation.
        device: where the layer lives.
    """

    input_channels = 1

    def __init__(
        self, weights: str | os.PathLike | None = None, softmax: bool = False, device: str | torch.device | None = None
    ) -> None:
        extractor = load_medical_feature_extractor(weights)
        self.net = extractor.stages[0][:2]  # conv + ReLU at full resolution
        self.softmax = bool(softmax)
        if device is not None:
            self.net.to(device)
