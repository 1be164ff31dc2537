"""Per-modality normalisation: fixed range for integer files, percentile window for float volumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_fusion.transforms.intensity import NormalizeModality, NormalizeModalityd
from monai_fusion.utils import FusionInputError


def test_fixed_range_from_file_meta() -> None:
    img = MetaTensor(torch.tensor([[[0.0, 51.0, 255.0]]]), meta={"value_max": 255.0})
    out = NormalizeModality()(img)
    torch.testing.assert_close(torch.as_tensor(out), torch.tensor([[[0.0, 0.2, 1.0]]]))
    assert out.meta["value_max"] == 1.0


def test_percentile_window_for_float_volume() -> None:
    rng = np.random.default_rng(0)
    vol = rng.normal(100, 30, (1, 20, 20, 20)).astype(np.float32)
    vol[0, 0, 0, 0] = 1e6  # an outlier must not squash the rest
    img = MetaTensor(torch.tensor(vol), meta={"value_max": float("nan")})
    out = torch.as_tensor(NormalizeModality(lower=1, upper=99)(img))
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    assert 0.4 < float(out.median()) < 0.6
    assert float((out == 1.0).float().mean()) == pytest.approx(0.01, abs=0.002)


def test_dictionary_and_errors() -> None:
    d = NormalizeModalityd(["a"], mode="range", value_max=10.0)({"a": torch.full((1, 2, 2), 5.0)})
    assert float(d["a"].max()) == 0.5
    with pytest.raises(FusionInputError, match="needs value_max"):
        NormalizeModality(mode="range")(MetaTensor(torch.rand(1, 3, 3)))
    with pytest.raises(FusionInputError, match="percentiles"):
        NormalizeModality(lower=50, upper=10)
    with pytest.raises(FusionInputError, match="mode"):
        NormalizeModality(mode="zscore")
