"""The registry and the shared Fuser contract, for every registered method."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import monai_fusion.fusers as fusers
from monai_fusion.fusers import (
    AverageFuser,
    BaseFuser,
    Fuser,
    MaxFuser,
    available_fusers,
    check_fuser_inputs,
    get_fuser,
    register_fuser,
)
from monai_fusion.networks.utils import MissingWeightsError
from monai_fusion.utils.errors import FusionInputError

#: Methods that run on a fresh machine: the rules, and the networks with their shipped weights.
NO_WEIGHTS_NEEDED = [
    "average",
    "max",
    "laplacian",
    "dwt",
    "guided_filter",
    "poster",
    "msrpan",
    "msdra",
    "zero_learning_medical",
]


def test_every_method_is_registered() -> None:
    assert available_fusers() == sorted(NO_WEIGHTS_NEEDED + ["zero_learning", "default"])
    assert set(fusers.__all__) >= {
        "Fuser",
        "register_fuser",
        "get_fuser",
        "available_fusers",
        "check_fuser_inputs",
        "AverageFuser",
        "MaxFuser",
    }


def test_unknown_and_duplicate_names() -> None:
    with pytest.raises(FusionInputError, match="average, default, dwt"):
        get_fuser("wavelet")
    with pytest.raises(ValueError, match="already registered"):
        register_fuser("average")(AverageFuser)


@pytest.mark.parametrize("name", NO_WEIGHTS_NEEDED)
def test_contract_on_random_odd_inputs(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # shipped weights: no warning
        fuser = get_fuser(name)
    assert isinstance(fuser, Fuser) and isinstance(fuser, BaseFuser)
    gen = torch.Generator().manual_seed(0)
    mri, other = torch.rand(2, 1, 23, 17, generator=gen), torch.rand(2, 1, 23, 17, generator=gen)
    fused = fuser.fuse(mri, other)
    assert fused.shape == (2, 1, 23, 17) and fused.dtype == torch.float32
    assert float(fused.min()) >= 0.0 and float(fused.max()) <= 1.0
    with pytest.raises(FusionInputError, match="same shape"):
        fuser.fuse(mri, other[..., :-1])


def test_random_initialisation_only_on_request() -> None:
    fuser = get_fuser("msrpan", random_init=True, channels=8)
    assert not fuser.trained and fuser.net.config["channels"] == 8
    with pytest.raises(FusionInputError, match="not both"):
        get_fuser("msrpan", random_init=True, weights="x.pt")
    with pytest.raises(FusionInputError, match="bad network arguments"):
        get_fuser("msrpan", random_init=True, channel=8)
    with pytest.raises(FusionInputError, match="not one of"):
        get_fuser("poster", random_init=True, strategy="median")


def test_missing_shipped_weights_name_the_file_and_the_ways_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import monai_fusion.fusers.learned as learned

    monkeypatch.setattr(learned, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(MissingWeightsError, match="random_init=True") as info:
        get_fuser("poster")
    assert str(tmp_path / "poster.pt") in str(info.value) and "weights=" in str(info.value)


def test_input_checks() -> None:
    ok = torch.rand(1, 1, 4, 4)
    with pytest.raises(FusionInputError, match=r"\(B, 1, H, W\)"):
        check_fuser_inputs(torch.rand(1, 3, 4, 4), ok)
    with pytest.raises(FusionInputError, match="NaN"):
        check_fuser_inputs(ok, torch.full((1, 1, 4, 4), float("nan")))
    assert torch.equal(MaxFuser().fuse(ok, 1 - ok), torch.maximum(ok, 1 - ok))
