"""A fusion network called with one two-channel tensor: ``net(torch.cat([mri, other], 1))``.

MONAI's engines, ``verify_net_in_out`` and TorchScript export pass a network one input tensor;
the fusion networks take the two sources as two tensors (``net(mri, other)``).
:class:`TwoSourceFusionNet` is that network with a forward that splits channel 0 (MRI) and
channel 1 (the other modality's luminance). It *is* the wrapped network (same sub-modules, same
state-dict keys, same ``config``), so its checkpoints load into ``get_fuser(name, weights=...)``
and its weights load into it, with no key renaming.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ...utils.errors import FusionInputError
from .base import FeatureFusionNet
from .msdra import MSDRA
from .msrpan import MSRPAN
from .poster import PosterFusionNet

__all__ = ["TwoSourceFusionNet", "TWO_SOURCE_NETWORKS"]

#: Networks :class:`TwoSourceFusionNet` builds by name (the fuser registry's names).
TWO_SOURCE_NETWORKS: dict[str, type[FeatureFusionNet]] = {"poster": PosterFusionNet, "msrpan": MSRPAN, "msdra": MSDRA}


class TwoSourceFusionNet(FeatureFusionNet):
    """Fuse ``x = cat([mri, other], dim=1)`` of shape ``(B, 2, H, W)`` into ``(B, 1, H, W)``.

    Args:
        network: a network name (``poster``, ``msrpan``, ``msdra``) or a built :class:`FeatureFusionNet`
            whose modules are taken over.
        strategy: feature-fusion rule to use (e.g. ``"attention"`` for paired training); ``None``
            keeps the network's own.
        net_kwargs: constructor arguments of the named network (e.g. ``channels=64``).

    Raises:
        FusionInputError: unknown network name, arguments it does not take, or a strategy it cannot use
            (``attention`` needs ``attention_head=True``).

    Example:
        >>> net = TwoSourceFusionNet("poster", strategy="attention")
        >>> fused = net(torch.cat([mri, ct], dim=1))   # same as PosterFusionNet(mri, ct)
    """

    def __init__(
        self, network: str | FeatureFusionNet = "poster", strategy: str | None = None, **net_kwargs: Any
    ) -> None:
        if isinstance(network, str):
            if network not in TWO_SOURCE_NETWORKS:
                raise FusionInputError(f"network={network!r} is not one of {', '.join(TWO_SOURCE_NETWORKS)}")
            try:
                inner = TWO_SOURCE_NETWORKS[network](**net_kwargs)
            except TypeError as err:
                raise FusionInputError(f"{network}: bad network arguments {sorted(net_kwargs)}: {err}") from err
        elif isinstance(network, FeatureFusionNet):
            if net_kwargs:
                raise ValueError(f"constructor arguments {sorted(net_kwargs)} need a network name, not a built network")
            inner = network
        else:
            raise TypeError(f"network must be a name or a FeatureFusionNet, got {type(network).__name__}")
        super().__init__(
            encoder=inner.encoder,
            decoder=inner.decoder,
            fusion=inner.fusion,
            size_multiple=inner.size_multiple,
            config=inner.config,
        )
        self.in_channels = int(self.config.get("in_channels", 1))
        if strategy is not None:
            try:
                self.set_strategy(strategy)
            except ValueError as err:
                name = network if isinstance(network, str) else type(network).__name__
                raise FusionInputError(f"{name}: {err}") from err

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Fuse the two sources.

        Args:
            x: ``(B, 2, H, W)``: channel 0 the MRI, channel 1 the other modality's grey/luminance image;
                or, with ``y``, the MRI ``(B, 1, H, W)``.
            y: the other source ``(B, 1, H, W)`` when ``x`` holds only the MRI.

        Returns:
            ``(B, 1, H, W)`` output of the (linear) decoder, not clamped.
        """
        c = self.in_channels
        if y is None:
            if x.dim() != 4 or x.shape[1] != 2 * c:
                raise ValueError("TwoSourceFusionNet expects x of shape (B, 2, H, W): cat([mri, other], dim=1)")
            a, b = x[:, :c], x[:, c:]
        else:
            a, b = x, y
        h, w = a.shape[-2], a.shape[-1]
        n = a.shape[0]
        both = self.encode(torch.cat([a, b], dim=0))
        return self.decoder(self.fusion(both[:n], both[n:]))[:, :, :h, :w]
