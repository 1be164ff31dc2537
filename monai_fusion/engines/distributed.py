"""Distributed setup for ``torchrun`` runs of the bundle (process group and device)."""

from __future__ import annotations

import logging
import os

import torch

from ..utils.errors import FusionInputError

__all__ = ["distributed_device", "init_distributed"]

logger = logging.getLogger(__name__)


def distributed_device() -> torch.device:
    """This process's device under ``torchrun``: ``cuda:<LOCAL_RANK>`` when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def init_distributed(backend: str | None = None) -> torch.device:
    """Join the ``torchrun`` process group (NCCL on GPUs, gloo on CPUs by default) and pick the device.

    Returns:
        :func:`distributed_device`.

    Raises:
        FusionInputError: when not started by ``torchrun`` (no ``RANK``/``WORLD_SIZE`` in the environment).
    """
    if not torch.distributed.is_initialized():
        if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
            raise FusionInputError(
                "multi_gpu_train.json must be started with torchrun, e.g. torchrun "
                "--standalone --nnodes=1 --nproc_per_node=2 -m monai.bundle run --config_file ..."
            )
        torch.distributed.init_process_group(backend=backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    device = distributed_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    logger.info(
        f"process group: backend {torch.distributed.get_backend()}, rank {torch.distributed.get_rank()} of "
        f"{torch.distributed.get_world_size()}, device {device}"
    )
    return device
