"""RGB <-> YCbCr: agreement with PIL/JPEG, round trips, the invertible dictionary split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from monai.data import MetaTensor
from monai.transforms import Compose
from PIL import Image

from monai_fusion.transforms.colour import RGBToYCbCr, RGBToYCbCrd, YCbCrToRGB, YCbCrToRGBd, rgb_to_luminance
from monai_fusion.utils import FusionInputError


def _rgb(seed: int = 0, shape=(3, 32, 48)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)


def test_matches_pil_full_range_bt601() -> None:
    a = _rgb()
    ours = RGBToYCbCr(255.0)(a)
    pil = np.asarray(Image.fromarray(np.moveaxis(a.astype(np.uint8), 0, -1)).convert("YCbCr"), dtype=np.float32)
    np.testing.assert_allclose(ours, np.moveaxis(pil, -1, 0), atol=1.0)  # PIL rounds to integers
    np.testing.assert_allclose(rgb_to_luminance(a)[0], ours[0], atol=1e-4)


def test_known_colours() -> None:
    white = np.ones((3, 1, 1), np.float32)
    red = np.zeros((3, 1, 1), np.float32)
    red[0] = 1
    np.testing.assert_allclose(RGBToYCbCr()(white)[:, 0, 0], [1.0, 0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(RGBToYCbCr()(red)[:, 0, 0], [0.299, 0.5 - 0.168736, 1.0], atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, st.tuples(st.just(3), st.integers(1, 9), st.integers(1, 9))))
def test_uint8_round_trip_within_one_grey_level(a: np.ndarray) -> None:
    back = YCbCrToRGB(255.0)(RGBToYCbCr(255.0)(a.astype(np.float32)))
    assert np.abs(np.rint(back) - a).max() <= 1


def test_tensor_in_tensor_out_and_channel_errors() -> None:
    t = torch.rand(3, 5, 6, dtype=torch.float64)
    out = YCbCrToRGB()(RGBToYCbCr()(t))
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, t)
    with pytest.raises(FusionInputError, match="3 channels"):
        RGBToYCbCr()(torch.rand(1, 4, 4))
    with pytest.raises(FusionInputError):
        RGBToYCbCr(value_max=0)


def test_dictionary_split_is_invertible_through_compose() -> None:
    a = torch.tensor(_rgb(1))
    pipe = Compose([RGBToYCbCrd("other", value_max=255.0)])
    d = pipe({"other": MetaTensor(a, meta={"filename_or_obj": "pet.png"})})
    assert d["other"].shape == (1, 32, 48) and d["other_cb"].shape == (1, 32, 48)
    torch.testing.assert_close(d["other"][0], torch.as_tensor(rgb_to_luminance(a.numpy())[0]), atol=1e-3, rtol=0)
    back = pipe.inverse(d)
    assert set(back) == {"other"}
    assert float((back["other"] - a).abs().max()) < 1e-3


def test_grey_passes_through_and_merge() -> None:
    grey = MetaTensor(torch.rand(1, 4, 4))
    d = RGBToYCbCrd("other")({"other": grey})
    assert set(d) == {"other"}
    merged = YCbCrToRGBd("fused")({"fused": torch.rand(1, 4, 4)})
    assert merged["fused"].shape == (1, 4, 4)  # no chroma: stays grey
    with pytest.raises(FusionInputError, match="missing"):
        YCbCrToRGBd("fused", allow_missing_chroma=False)({"fused": torch.rand(1, 4, 4)})


def test_merge_puts_original_chroma_back() -> None:
    a = torch.rand(3, 8, 8)
    d = RGBToYCbCrd("other")({"other": MetaTensor(a)})
    d["fused"] = d["other"].clone()  # fusing nothing in: the RGB image must come back
    out = YCbCrToRGBd("fused")(d)["fused"]
    assert out.shape == (3, 8, 8)
    torch.testing.assert_close(torch.as_tensor(out), a, atol=1e-5, rtol=0)


def test_split_refuses_to_overwrite_keys() -> None:
    with pytest.raises(FusionInputError, match="overwritten"):
        RGBToYCbCrd("other")({"other": MetaTensor(torch.rand(3, 4, 4)), "other_cb": torch.zeros(1, 4, 4)})


def test_neutral_chroma_fills_grey_pairs_only() -> None:
    from monai_fusion.transforms import NeutralChromad

    grey = {"other": torch.rand(1, 8, 8)}
    out = NeutralChromad(keys="other")(grey)
    assert torch.equal(out["other_cb"], torch.full((1, 8, 8), 0.5)) and torch.equal(out["other_cr"], out["other_cb"])
    colour = {"other": torch.rand(1, 8, 8), "other_cb": torch.zeros(1, 8, 8), "other_cr": torch.ones(1, 8, 8)}
    kept = NeutralChromad(keys="other")(colour)
    assert torch.equal(kept["other_cb"], colour["other_cb"]) and torch.equal(kept["other_cr"], colour["other_cr"])
    with pytest.raises(FusionInputError, match="only one of its chroma keys"):
        NeutralChromad(keys="other")({"other": torch.rand(1, 8, 8), "other_cb": torch.zeros(1, 8, 8)})
