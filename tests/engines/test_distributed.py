"""Joining and leaving the process group of a ``torchrun`` run (one gloo process here; two in tests/bundle)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from monai_fusion.engines import distributed_device, finish_distributed, init_distributed
from monai_fusion.utils.errors import FusionInputError


@pytest.fixture
def single_process_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.setenv(name, "1" if name == "WORLD_SIZE" else "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "0")
    yield
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def test_init_outside_torchrun_names_the_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(FusionInputError, match="torchrun"):
        init_distributed()


def test_finish_leaves_the_group_it_joined(single_process_env: None, tmp_path: Path) -> None:
    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    assert init_distributed() == distributed_device()  # an existing group is joined, not created twice
    finish_distributed(exit_process=False)
    assert not torch.distributed.is_initialized()
    finish_distributed(exit_process=False)  # nothing to leave: no error
