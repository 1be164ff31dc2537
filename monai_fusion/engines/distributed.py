"""Distributed setup for ``torchrun`` runs of the bundle (process group and device)."""

from __future__ import annotations

import logging
import os
import sys

import torch

from ..utils.errors import FusionInputError

__all__ = ["distributed_device", "finish_distributed", "init_distributed"]

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


def finish_distributed(exit_process: bool = True) -> None:
    """Leave the ``torchrun`` process group after a finished run and, by default, end this worker process at once.

    Every rank waits for the others (``barrier``) and destroys the process group. The process then ends with
    ``os._exit(0)`` after logging and the standard streams are flushed, instead of the interpreter's normal
    shutdown: DDP's reducer keeps the gloo/NCCL process group (and its C++ threads) alive until Python tears its
    objects down, and a thread still joinable at that point makes the C++ runtime abort the finished worker
    (SIGABRT, "terminate called without an active exception"), which ``torchrun`` reports as a failed run after the
    checkpoints were written. Nothing of the run is lost: the bundle's savers write atomically during the run, and
    this step is the last one of the workflow's ``finalize``.

    Args:
        exit_process: end the process after leaving the group (the bundle's ``multi_gpu_train.json``); ``False``
            only leaves the group, for callers that go on in the same process.
    """
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if not exit_process:
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
