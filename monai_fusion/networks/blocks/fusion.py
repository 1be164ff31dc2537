"""Feature-level fusion strategies: how an encoder's two feature maps become one before decoding.

Rules (each a function on two ``(B, C, H, W)`` maps, and selectable by name in
:class:`FeatureFusion`): ``average``, ``max``, ``add``, ``energy`` (feature-energy ratio,
``w_i = F_i^2 / sum_j F_j^2`` element-wise, as MSRPAN), ``l1`` (DenseFuse-style L1-norm activity
over channels, box-averaged, normalised), ``nuclear`` (the poster authors' global rule: per-image
sum over channels of the nuclear norms, softmax over the two sources) and ``attention`` (a learned
head predicting per-pixel softmax weights). MONAI has no fusion rules, hence this module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FUSION_STRATEGIES",
    "fuse_energy",
    "fuse_l1",
    "nuclear_activities",
    "nuclear_weights",
    "fuse_nuclear",
    "AttentionFusionHead",
    "FeatureFusion",
]

#: Names accepted by :class:`FeatureFusion`.
FUSION_STRATEGIES: tuple[str, ...] = ("average", "max", "add", "energy", "l1", "nuclear", "attention")


def fuse_energy(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Feature-energy-ratio fusion: ``w_a = (a^2 + eps) / (a^2 + b^2 + 2 eps)`` element-wise.

    Args:
        a: first source's features.
        b: second source's features, same shape.
        eps: keeps weights at 1/2 where both features are zero.

    Returns:
        ``w_a * a + (1 - w_a) * b``.
    """
    ea, eb = a * a + eps, b * b + eps
    wa = ea / (ea + eb)
    return wa * a + (1.0 - wa) * b


def fuse_l1(a: torch.Tensor, b: torch.Tensor, window: int = 3, eps: float = 1e-8) -> torch.Tensor:
    """L1-norm fusion (DenseFuse; MSDRA's 'Feature L1-Norm'): activity ``|F|_1`` over channels,
    averaged over a ``window x window`` neighbourhood, normalised to per-pixel weights.

    Args:
        a: first source's features ``(B, C, H, W)``.
        b: second source's features, same shape.
        window: odd box size of the activity averaging (1: none).
        eps: keeps weights at 1/2 where both activities are zero.

    Returns:
        ``w_a * a + (1 - w_a) * b`` with ``(B, 1, H, W)`` weights.
    """
    act_a = a.abs().sum(dim=1, keepdim=True)
    act_b = b.abs().sum(dim=1, keepdim=True)
    if window > 1:
        act_a = F.avg_pool2d(act_a, window, stride=1, padding=window // 2, count_include_pad=False)
        act_b = F.avg_pool2d(act_b, window, stride=1, padding=window // 2, count_include_pad=False)
    wa = (act_a + eps) / (act_a + act_b + 2 * eps)
    return wa * a + (1.0 - wa) * b


def nuclear_activities(a: torch.Tensor, b: torch.Tensor, pool: int = 1) -> torch.Tensor:
    """Each source's activity: the sum over channels of the nuclear norms of its ``H x W`` feature maps.

    Args:
        a: first source's features ``(B, C, H, W)``.
        b: second source's features, same shape.
        pool: average-pool the maps by this factor before the SVDs (1: exact norms; see :func:`nuclear_weights`).

    Returns:
        ``(B, 2)`` activities of ``a`` and ``b``.
    """
    if pool > 1:
        a = F.avg_pool2d(a, kernel_size=pool, stride=pool, ceil_mode=True)
        b = F.avg_pool2d(b, kernel_size=pool, stride=pool, ceil_mode=True)
    na = torch.linalg.matrix_norm(a.float(), ord="nuc").sum(dim=1)
    nb = torch.linalg.matrix_norm(b.float(), ord="nuc").sum(dim=1)
    return torch.stack([na, nb], dim=1)


def nuclear_weights(
    a: torch.Tensor, b: torch.Tensor, temperature: float = 1.0, pool: int = 1, eps: float = 1e-8
) -> torch.Tensor:
    """Global softmax weights from nuclear norms (the poster authors' rule).

    Each source's activity is the sum over channels of the nuclear norm (sum of singular values)
    of each ``H x W`` feature map. The softmax is taken over the activities divided by
    ``temperature`` times their mean, so that it does not saturate on raw magnitudes (which grow
    with image size); this normalisation is our choice, the authors' paper leaves it open.

    Args:
        a: first source's features ``(B, C, H, W)``.
        b: second source's features, same shape.
        temperature: softmax temperature relative to the mean activity.
        pool: average-pool the maps by this factor before the SVDs (1: exact norms). The SVDs of
            64 maps of 256 x 256 take seconds on a CPU; pooling by 4 makes them ~50x cheaper and
            only the ratio of the two activities matters.
        eps: guards the division.

    Returns:
        ``(B, 2)`` weights summing to one per image.
    """
    act = nuclear_activities(a, b, pool)
    scale = temperature * act.mean(dim=1, keepdim=True) + eps
    return torch.softmax(act / scale, dim=1).to(a.dtype)


def fuse_nuclear(
    a: torch.Tensor, b: torch.Tensor, temperature: float = 1.0, pool: int = 1, eps: float = 1e-8
) -> torch.Tensor:
    """Softmax + nuclear-norm global weighting: ``w_a * a + w_b * b`` with :func:`nuclear_weights`.

    Needs an SVD, which ONNX lacks: export networks with another strategy.
    """
    w = nuclear_weights(a, b, temperature, pool, eps)
    return w[:, 0].view(-1, 1, 1, 1) * a + w[:, 1].view(-1, 1, 1, 1) * b


class AttentionFusionHead(nn.Module):
    """Learned fusion: a small conv head on ``[a, b]`` predicts per-pixel softmax weights.

    The last conv starts at zero, so an untrained head fuses by averaging.

    Args:
        channels: feature channels of each source.
        hidden: channels of the hidden conv.
    """

    def __init__(self, channels: int, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2 * channels, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, 2, 3, padding=1)
        )
        last = self.net[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def weights(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``(B, 2, H, W)`` softmax weights of the two sources."""
        return torch.softmax(self.net(torch.cat([a, b], dim=1)), dim=1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Args: a, b: ``(B, C, H, W)`` features. Returns: the weighted sum, same shape."""
        w = self.weights(a, b)
        return w[:, :1] * a + w[:, 1:] * b


class FeatureFusion(nn.Module):
    """Fuse two feature maps by a named rule (see :data:`FUSION_STRATEGIES`).

    The rule can be changed after construction with :meth:`set_strategy` (e.g. train with
    ``attention`` or as an autoencoder, fuse with ``nuclear``); TorchScript captures the rule in
    force when the module is scripted.

    Args:
        strategy: the rule's name.
        channels: feature channels (needed for the ``attention`` head).
        attention_head: build the learned head (always built when ``strategy == "attention"``).
        hidden: hidden channels of the head.
        l1_window: box size of the ``l1`` rule.
        temperature: softmax temperature of the ``nuclear`` rule.
        nuclear_pool: pooling factor of the ``nuclear`` rule's SVDs (1: exact, see :func:`nuclear_weights`).
    """

    def __init__(
        self,
        strategy: str = "average",
        channels: int = 64,
        attention_head: bool = False,
        hidden: int = 32,
        l1_window: int = 3,
        temperature: float = 1.0,
        nuclear_pool: int = 4,
    ) -> None:
        super().__init__()
        self.head: AttentionFusionHead | None = (
            AttentionFusionHead(channels, hidden) if attention_head or strategy == "attention" else None
        )
        if not float(temperature) > 0:  # also refuses NaN
            raise ValueError(f"FeatureFusion: temperature={temperature!r} must be > 0")
        self.l1_window = int(l1_window)
        self.temperature = float(temperature)
        self.nuclear_pool = int(nuclear_pool)
        self.strategy = "average"
        self.set_strategy(strategy)

    def set_strategy(self, strategy: str) -> None:
        """Choose the rule.

        Raises:
            ValueError: unknown name, or ``attention`` on a module built without the head.
        """
        if strategy not in FUSION_STRATEGIES:
            raise ValueError(f"fusion strategy {strategy!r} is not one of {', '.join(FUSION_STRATEGIES)}")
        if strategy == "attention" and self.head is None:
            raise ValueError("fusion strategy 'attention' needs the learned head: build with attention_head=True")
        self.strategy = strategy

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Args: a, b: ``(B, C, H, W)`` features. Returns: the fused ``(B, C, H, W)`` features."""
        s = self.strategy
        if s == "average":
            return (a + b) * 0.5
        if s == "max":
            return torch.maximum(a, b)
        if s == "add":
            return a + b
        if s == "energy":
            return fuse_energy(a, b)
        if s == "l1":
            return fuse_l1(a, b, self.l1_window)
        if s == "nuclear":
            return fuse_nuclear(a, b, self.temperature, self.nuclear_pool)
        head = self.head
        if head is None:
            raise RuntimeError("fusion strategy 'attention' needs the learned head")
        return head(a, b)
