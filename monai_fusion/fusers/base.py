"""The fusion interface: the :class:`Fuser` protocol, the registry, input checks and a base class.

A fuser takes an MRI batch and the other modality's grey/luminance batch, both ``(B, 1, H, W)``
float tensors in [0, 1], and returns the fused ``(B, 1, H, W)`` tensor in [0, 1]. The other source's
modality (``CT``, ``PET`` or ``SPECT``) may be given too: methods whose settings differ per modality (the
default model's detail gain) use it, the others ignore it. Colour handling
(YCbCr split and merge) happens outside, in the transforms, so every method sees grey images.
The CLI, the bundle, the benchmark and the demo all pick methods through :func:`get_fuser`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Protocol, Sequence, runtime_checkable

import torch

from ..utils.constants import check_modality
from ..utils.errors import FusionInputError

__all__ = [
    "Fuser",
    "register_fuser",
    "get_fuser",
    "available_fusers",
    "check_fuser_inputs",
    "fuser_factory",
    "BaseFuser",
]


@runtime_checkable
class Fuser(Protocol):
    """Anything with ``fuse(mri, other, modality=None) -> fused`` on batched ``(B, 1, H, W)`` tensors in [0, 1]."""

    def fuse(self, mri: torch.Tensor, other: torch.Tensor, modality: str | Sequence[str] | None = None) -> torch.Tensor:
        """Fuse two registered grey images (``modality``: the other source's, one or one per sample);
        returns ``(B, 1, H, W)`` in [0, 1]."""
        ...


_REGISTRY: dict[str, Callable[..., Fuser]] = {}


def register_fuser(name: str) -> Callable[[Callable[..., Fuser]], Callable[..., Fuser]]:
    """Class/factory decorator that makes a method available as ``get_fuser(name)``.

    Raises:
        ValueError: when the name is taken (nothing is silently overwritten).
    """

    def deco(factory: Callable[..., Fuser]) -> Callable[..., Fuser]:
        if name in _REGISTRY:
            raise ValueError(f"a fuser named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def available_fusers() -> list[str]:
    """Names of the registered fusion methods, sorted."""
    return sorted(_REGISTRY)


def get_fuser(name: str, **kwargs: Any) -> Fuser:
    """Instantiate the fusion method registered as ``name``.

    Args:
        name: a registry name (see :func:`available_fusers`).
        kwargs: passed to the method's constructor (e.g. ``device``, ``weights``).

    Raises:
        FusionInputError: unknown name (the message lists the known ones).
    """
    if name not in _REGISTRY:
        raise FusionInputError(f"unknown fusion method {name!r}; choose one of {', '.join(available_fusers())}")
    return _REGISTRY[name](**kwargs)


def fuser_factory(name: str) -> Callable[..., Fuser]:
    """The class (or factory) registered as ``name``, not instantiated (to ask what kind of method it is).

    Raises:
        FusionInputError: unknown name (the message lists the known ones).
    """
    if name not in _REGISTRY:
        raise FusionInputError(f"unknown fusion method {name!r}; choose one of {', '.join(available_fusers())}")
    return _REGISTRY[name]


def check_fuser_inputs(mri: torch.Tensor, other: torch.Tensor) -> None:
    """Validate the shared input contract of :meth:`Fuser.fuse`.

    Raises:
        FusionInputError: wrong rank/channels, an empty tensor, mismatched shapes, or non-finite values.
    """
    for name, t in (("mri", mri), ("other", other)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4 or t.shape[1] != 1:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise FusionInputError(f"fuse: {name} must be a (B, 1, H, W) tensor, got {shape}")
        if t.numel() == 0:
            raise FusionInputError(f"fuse: {name} is empty, shape {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise FusionInputError(f"fuse: {name} contains NaN/Inf values")
    if mri.shape != other.shape:
        raise FusionInputError(f"fuse: mri {tuple(mri.shape)} and other {tuple(other.shape)} must have the same shape")


class BaseFuser(ABC):
    """Shared plumbing of the methods here: validate inputs, run :meth:`_fuse` without gradients,
    clamp to [0, 1]. Subclasses implement ``_fuse(mri, other)`` on checked ``(B, 1, H, W)`` tensors; those
    that set :attr:`uses_modality` get ``_fuse(mri, other, modality=[...])`` when a modality is given.
    """

    #: Whether the method's result depends on the other source's modality (then it receives it).
    uses_modality: ClassVar[bool] = False

    def fuse(self, mri: torch.Tensor, other: torch.Tensor, modality: str | Sequence[str] | None = None) -> torch.Tensor:
        """Fuse two registered grey images.

        Args:
            mri: ``(B, 1, H, W)`` in [0, 1].
            other: the other modality's grey/luminance image, same shape.
            modality: the other source's modality (``CT``, ``PET``, ``SPECT``): one for the batch or one per
                sample; checked always, used by the methods that set :attr:`uses_modality`.

        Returns:
            The fused ``(B, 1, H, W)`` image in [0, 1], on the inputs' device.

        Raises:
            FusionInputError: inputs break the contract (see :func:`check_fuser_inputs`,
                :func:`~monai_fusion.utils.constants.check_modality`).
        """
        check_fuser_inputs(mri, other)
        names = check_modality(modality, mri.shape[0])
        with torch.no_grad():
            if self.uses_modality and names is not None:
                return self._fuse(mri, other, modality=names).clamp(0.0, 1.0)  # type: ignore[call-arg]
            return self._fuse(mri, other).clamp(0.0, 1.0)

    @abstractmethod
    def _fuse(self, mri: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """The method itself, on validated inputs; the result is clamped by :meth:`fuse`."""
