"""The registry and the shared Fuser contract, for every registered method."""

from __future__ import annotations

import warnings

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
from monai_fusion.utils.errors import FusionInputError

NO_WEIGHTS_NEEDED = ["average", "max", "laplacian", "dwt", "guided_filter", "poster", "msrpan", "msdra"]


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
        warnings.simplefilter("ignore", UserWarning)  # random-init network warning
        fuser = get_fuser(name)
    assert isinstance(fuser, Fuser) and isinstance(fuser, BaseFuser)
    gen = torch.Generator().manual_seed(0)
    mri, other = torch.rand(2, 1, 23, 17, generator=gen), torch.rand(2, 1, 23, 17, generator=gen)
    fused = fuser.fuse(mri, other)
    assert fused.shape == (2, 1, 23, 17) and fused.dtype == torch.float32
    assert float(fused.min()) >= 0.0 and float(fused.max()) <= 1.0
    with pytest.raises(FusionInputError, match="same shape"):
        fuser.fuse(mri, other[..., :-1])


def test_network_fusers_warn_without_weights() -> None:
    with pytest.warns(UserWarning, match="randomly initialised"):
        fuser = get_fuser("msrpan", channels=8)
    assert not fuser.trained and fuser.net.config["channels"] == 8
    with pytest.raises(FusionInputError, match="bad network arguments"):
        get_fuser("msrpan", channel=8)
    with pytest.raises(FusionInputError, match="not one of"), pytest.warns(UserWarning):
        get_fuser("poster", strategy="median")


def test_input_checks() -> None:
    ok = torch.rand(1, 1, 4, 4)
    with pytest.raises(FusionInputError, match=r"\(B, 1, H, W\)"):
        check_fuser_inputs(torch.rand(1, 3, 4, 4), ok)
    with pytest.raises(FusionInputError, match="NaN"):
        check_fuser_inputs(ok, torch.full((1, 1, 4, 4), float("nan")))
    assert torch.equal(MaxFuser().fuse(ok, 1 - ok), torch.maximum(ok, 1 - ok))
