"""The project's default fusion network: a per-pixel weight map between the sources plus a bounded detail term.

Written here because no MONAI network has this shape: the output is not a free image but
``F = w * mri + (1 - w) * other + g * s * tanh(r)``, with ``w = sigmoid(.)`` and ``r`` predicted from
multi-scale dilated features of both sources. The weight map keeps the fused intensities on the
sources' own values (what MI, FMI and VIF reward), the bounded residual ``r`` restores the weaker
source's edges where the stronger one covers them (what Qabf, SSIM and SCD reward). The features are
computed at full resolution by one 3x3 layer and at half resolution by a strided layer and two dilated
layers (receptive field 33 px at full scale), so a 256x256 pair costs about 0.1 GFLOPs. Two additions keep
the weight map from settling on one source everywhere (a copy of the MRI scores well on most fusion
metrics, and a saturated sigmoid cannot learn its way back): the weight's logit starts from a soft
pixel-wise maximum rule (``select_prior``), and a per-image bias from the image-wide mean of the
half-resolution features (``global_context``) lets one network treat CT differently from PET/SPECT.
Where both sources are exactly 0 (the air around the head) the detail term is held at 0: without that a
trained detail term can leave faint positive values over the background (a third of the pixels of a
trained model), invisible in an 8-bit image but enough to halve FMI on float output.

Trained with :class:`~monai_fusion.losses.StructureFusionLoss` by the bundle's ``train.json``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...utils.constants import OTHER_MODALITIES
from ...utils.errors import FusionInputError

__all__ = ["WeightMapFusionNet", "SHIPPED_DETAIL_GAIN"]

#: The shipped model's detail gains, chosen on the clear wins of the 4-fold cross-validated means
#: (``benchmarks/calibrate_detail_gain.py --cv 4``; at 0 the fusion is the learned weighted mean): one per modality
#: of the other source, and ``"default"`` for calls that give none.
SHIPPED_DETAIL_GAIN: dict[str, float] = {"CT": 0.0, "PET": 0.4, "SPECT": 0.8, "default": 0.8}


class WeightMapFusionNet(nn.Module):
    """Fuse ``cat([mri, other], 1)`` (or ``(mri, other)``) into ``(B, 1, H, W)``.

    Args:
        channels: feature channels of the half-resolution branch.
        full_channels: feature channels of the full-resolution layer.
        dilations: dilations of the half-resolution 3x3 layers after the strided one.
        residual_scale: bound ``s`` of the detail term ``s * tanh(r)`` (images in [0, 1]).
        select_prior: slope ``k`` of the maximum-rule prior in the weight map's logit,
            ``w = sigmoid(z + k (mri - other))``: with ``k > 0`` an untrained network starts as a soft
            pixel-wise maximum and learns where to depart from it; 0: no prior.
        global_context: add a per-image bias to the weight map and the detail term, from the mean of the
            half-resolution features over the image, so that one network can behave differently for images
            that differ as a whole (e.g. CT against PET luminance). The output then depends on the whole
            slice: fuse whole slices, not tiles (a tile's fusion is not the tile of the slice's fusion).
        detail_gain: factor on the detail term at use, ``F = w * mri + (1 - w) * other + g * s * tanh(r)``,
            chosen after training on the cross-validated means (``benchmarks/calibrate_detail_gain.py --cv``): the
            losses that shape ``r`` (Qabf, SSIM, SCD) keep more of it than the information metrics (MI, FMI)
            reward. Either one number for every input, or one per modality of the other source, the form the
            shipped model uses (``{"CT": 0.0, "PET": 0.4, "SPECT": 0.8, "default": 0.8}``: on the cross-validated
            means CT-MRI fusions score best without the detail term, PET/SPECT-MRI ones with some). A
            per-modality gain is picked by ``modality`` in :meth:`forward`; the optional ``"default"`` entry serves
            the calls that give no modality (MONAI's generic bundle tools, e.g. ``verify_net_in_out``), which are
            refused without it. ``None``: the shipped model's gains (:data:`SHIPPED_DETAIL_GAIN`), so that its
            weights alone (the bundle's ``models/model.pt``) fuse as shipped. Training configs set 1.0 (the network
            learns ``r`` at full gain).
        logit_bound: bound ``L`` of the learned part of the weight map's logit, ``w = sigmoid(L tanh(z / L) +
            k (mri - other))``; ``None``: unbounded. Unbounded, training can drive ``z`` so far that ``w`` is 1 on
            every pixel (a copy of the MRI's luminance, which most fusion metrics reward) and the sigmoid's
            gradient is then 0, so no loss term can bring the other source back: which of the two outcomes a run
            reaches depends on its data and seed. Bounded, the network can only shift the maximum-rule prior by
            ``L`` logits, so where the sources differ by more than ``L / k`` the brighter one always shows.
            Saved in :attr:`config` (so with every checkpoint that carries it); a bare state dict does not carry it.

    Attributes:
        config: the constructor arguments, saved with checkpoints.

    Example:
        >>> net = WeightMapFusionNet()
        >>> fused = net(torch.cat([mri, ct], dim=1))   # (B, 1, H, W); any H, W
    """

    __jit_ignored_attributes__ = ["config"]
    #: Per-modality detail gains (empty: the single ``detail_gain`` applies to every input).
    modality_gains: Dict[str, float]
    #: Key of a per-modality ``detail_gain`` mapping that holds the gain for calls without a modality.
    DEFAULT_KEY = "default"

    def __init__(
        self,
        channels: int = 16,
        full_channels: int = 8,
        dilations: Sequence[int] = (2, 4),
        residual_scale: float = 0.25,
        select_prior: float = 20.0,
        global_context: bool = True,
        detail_gain: Union[float, Mapping[str, float], None] = None,
        logit_bound: Optional[float] = None,
    ) -> None:
        super().__init__()
        if logit_bound is not None and not 0 < float(logit_bound) < math.inf:
            raise FusionInputError(
                f"WeightMapFusionNet: logit_bound={logit_bound!r} must be a finite number > 0 or None"
            )
        if channels < 1 or full_channels < 1 or not dilations or min(int(d) for d in dilations) < 1:
            raise FusionInputError(
                f"WeightMapFusionNet: channels={channels}, full_channels={full_channels} and "
                f"dilations={tuple(dilations)} must be positive (at least one dilation)"
            )
        gains = _check_gains(SHIPPED_DETAIL_GAIN if detail_gain is None else detail_gain)
        self.config = {
            "channels": int(channels),
            "full_channels": int(full_channels),
            "dilations": [int(d) for d in dilations],
            "residual_scale": float(residual_scale),
            "select_prior": float(select_prior),
            "global_context": bool(global_context),
            "detail_gain": gains if isinstance(gains, dict) else float(gains),
        }
        if logit_bound is not None:  # left out when unbounded, so the configs of earlier checkpoints stay equal
            self.config["logit_bound"] = float(logit_bound)
        #: ``L`` of the bounded learned logit (0: unbounded; TorchScript keeps a float attribute simpler than None)
        self.logit_bound = 0.0 if logit_bound is None else float(logit_bound)
        self.residual_scale = float(residual_scale)
        self.select_prior = float(select_prior)
        #: the gain of inputs without a listed modality (``nan``: none; with :attr:`modality_gains` empty, of all)
        self.detail_gain = float(gains.get(self.DEFAULT_KEY, float("nan"))) if isinstance(gains, dict) else gains
        self.modality_gains = (
            {k: v for k, v in gains.items() if k != self.DEFAULT_KEY} if isinstance(gains, dict) else {}
        )
        #: the modalities a per-sample ``modality`` may name (the other source's; the default gain serves only these)
        self.modalities: List[str] = list(OTHER_MODALITIES)
        # inputs: mri, other, max(mri, other), mri - other
        self.full = nn.Sequential(nn.Conv2d(4, full_channels, 3, padding=1), nn.LeakyReLU(0.1))
        layers: list[nn.Module] = [nn.Conv2d(full_channels, channels, 3, stride=2, padding=1), nn.LeakyReLU(0.1)]
        for d in dilations:
            layers += [nn.Conv2d(channels, channels, 3, padding=int(d), dilation=int(d)), nn.LeakyReLU(0.1)]
        self.coarse = nn.Sequential(*layers)
        self.head = nn.Conv2d(full_channels + channels, 2, 3, padding=1)
        self.context = nn.Linear(channels, 2) if global_context else None

    def gain(self, modality: Optional[List[str]], batch: int) -> List[float]:
        """The detail gain of each of ``batch`` samples.

        Args:
            modality: the other source's modality per sample (``CT``, ``PET``, ``SPECT``; any case), or ``None``.
            batch: the number of samples.

        Raises:
            ValueError: the gains are per modality without a ``"default"`` one and ``modality`` is missing or
                names a modality without a gain, ``modality`` names something other than ``CT``, ``PET`` or
                ``SPECT`` (e.g. DICOM's ``PT``), or it is of another length than the batch.
        """
        fallback = not math.isnan(self.detail_gain)
        if modality is None or len(self.modality_gains) == 0:
            if not fallback:
                raise ValueError(
                    "WeightMapFusionNet: detail_gain is set per modality ("
                    + ", ".join(sorted(self.modality_gains.keys()))
                    + ", no default); pass modality=[...]"
                    " with the other source's modality of each sample"
                )
            return [self.detail_gain] * batch
        if len(modality) != batch:
            raise ValueError(
                "WeightMapFusionNet: modality lists "
                + str(len(modality))
                + " values for a batch of "
                + str(batch)
                + " samples; expected one per sample"
            )
        out: List[float] = []
        for m in modality:
            key = m.upper()
            if key not in self.modalities:  # never a silent default for a misspelt or foreign name
                raise ValueError("WeightMapFusionNet: modality " + m + " is not one of " + ", ".join(self.modalities))
            if key in self.modality_gains:
                out.append(self.modality_gains[key])
            elif fallback:
                out.append(self.detail_gain)
            else:
                raise ValueError(
                    "WeightMapFusionNet: modality "
                    + m
                    + " has no detail gain; expected one of "
                    + ", ".join(sorted(self.modality_gains.keys()))
                )
        return out

    def forward(
        self, x: torch.Tensor, y: Optional[torch.Tensor] = None, modality: Optional[List[str]] = None
    ) -> torch.Tensor:
        """Fuse the two sources.

        Args:
            x: ``(B, 2, H, W)``: channel 0 the MRI, channel 1 the other modality's grey/luminance image
                (both in [0, 1]); or, with ``y``, the MRI ``(B, 1, H, W)``.
            y: the other source ``(B, 1, H, W)`` when ``x`` holds only the MRI.
            modality: the other source's modality per sample (``CT``, ``PET`` or ``SPECT``); picks the detail
                gain when it is set per modality, ignored otherwise.

        Returns:
            The fused image ``(B, 1, H, W)`` (not clamped; the fusers clamp to [0, 1]).
        """
        if y is None:
            if x.dim() != 4 or x.shape[1] != 2:
                raise ValueError("WeightMapFusionNet expects x of shape (B, 2, H, W): cat([mri, other], dim=1)")
            a, b = x[:, :1], x[:, 1:]
        else:
            if x.dim() != 4 or x.shape[1] != 1 or y.shape != x.shape:
                raise ValueError("WeightMapFusionNet expects two sources of one shape (B, 1, H, W)")
            a, b = x, y
        brighter = torch.maximum(a, b)
        f0 = self.full(torch.cat([a, b, brighter, a - b], 1))
        c = self.coarse(f0)
        h = F.interpolate(c, size=a.shape[-2:], mode="bilinear", align_corners=False)
        # the head's convolution of cat([f0, h], 1) as the sum of its two halves: the same values (to float rounding)
        # without copying the channels into one tensor; in the default memory format (the bundle's inferer) the copy
        # took about 30% of the forward on a 2-core CPU (15.5 against 11.1 ms a 256x256 pair); channels-last (the
        # fusers) runs as fast either way
        fc = f0.shape[1]
        out = F.conv2d(f0, self.head.weight[:, :fc], self.head.bias, padding=1)
        out = out + F.conv2d(h, self.head.weight[:, fc:], None, padding=1)
        if self.context is not None:
            out = out + self.context(c.mean(dim=(2, 3)))[:, :, None, None]
        z = out[:, :1]
        if self.logit_bound > 0:
            z = self.logit_bound * torch.tanh(z / self.logit_bound)
        w = torch.sigmoid(z + self.select_prior * (a - b))
        # where neither source has any signal (both exactly 0: the air around the head) there is nothing to fuse:
        # the detail term is held at 0 there, so the background stays black instead of carrying faint noise
        signal = (brighter > 0).to(a.dtype)
        detail = torch.tanh(out[:, 1:2]) * signal
        if len(self.modality_gains) == 0:
            return w * a + (1 - w) * b + (self.detail_gain * self.residual_scale) * detail
        g = torch.tensor(self.gain(modality, a.shape[0]), dtype=a.dtype, device=a.device).view(-1, 1, 1, 1)
        return w * a + (1 - w) * b + (g * self.residual_scale) * detail


# TorchScript reads attribute types from the class annotations, which ``from __future__ import annotations`` leaves
# as strings it cannot resolve; an empty dict (a single gain) has no type to infer otherwise
WeightMapFusionNet.__annotations__["modality_gains"] = Dict[str, float]


def _check_gains(detail_gain: Any) -> Union[float, Dict[str, float]]:
    """``detail_gain`` as a float or a ``{modality: gain}`` dict (modalities upper-case, optionally ``"default"``),
    each gain a number >= 0.

    Raises:
        FusionInputError: a gain is not a number >= 0, or a key is not a modality other than MRI.
    """
    if isinstance(detail_gain, Mapping):
        gains: Dict[str, float] = {}
        for k, v in detail_gain.items():
            key = str(k).lower() if str(k).lower() == WeightMapFusionNet.DEFAULT_KEY else str(k).upper()
            if key not in OTHER_MODALITIES and key != WeightMapFusionNet.DEFAULT_KEY:
                raise FusionInputError(
                    f"WeightMapFusionNet: detail_gain key {k!r} is not a modality of the other "
                    f"source; expected some of {', '.join(OTHER_MODALITIES)} and optionally "
                    f"{WeightMapFusionNet.DEFAULT_KEY!r}"
                )
            if key in gains:
                raise FusionInputError(
                    f"WeightMapFusionNet: detail_gain names {key} twice ({k!r}); keys are read without regard to case"
                )
            gains[key] = _gain_number(v, f"detail_gain[{k!r}]")
        if not set(gains) - {WeightMapFusionNet.DEFAULT_KEY}:
            raise FusionInputError(
                f"WeightMapFusionNet: detail_gain={dict(detail_gain)!r} names no modality; give a "
                f"number or a gain for some of {', '.join(OTHER_MODALITIES)}"
            )
        return gains
    return _gain_number(detail_gain, "detail_gain")


def _gain_number(value: Any, what: str) -> float:
    try:
        g = float(value)
    except (TypeError, ValueError):
        g = float("nan")
    if not g >= 0:  # also refuses NaN
        raise FusionInputError(
            f"WeightMapFusionNet: {what}={value!r} must be a number >= 0 (detail_gain: a number "
            "or a {modality: number} mapping)"
        )
    return g
