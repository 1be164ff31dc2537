"""EN, SD, SF and AG against values derived by hand and against scikit-image / NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.measure import shannon_entropy

from monai_fusion.metrics import average_gradient, entropy, spatial_frequency, standard_deviation


def test_entropy_of_uniform_256_level_image_is_8_bits():
    img = torch.arange(256, dtype=torch.float32).repeat(256).view(1, 1, 256, 256)
    assert entropy(img).item() == pytest.approx(8.0, abs=1e-12)


def test_entropy_of_two_equal_halves_is_1_bit_and_constant_is_0():
    img = torch.zeros(2, 1, 16, 16)
    img[0, ..., 8:] = 200.0
    img[1] = 37.0
    assert entropy(img).tolist() == pytest.approx([1.0, 0.0], abs=1e-12)


def test_standard_entropy_rounds_to_grey_levels():
    # 10.4 and 10.6 fall on grey levels 10 and 11 (round): two levels, 1 bit; floor would merge them
    img = torch.tensor([10.4, 10.6]).repeat(32).view(1, 1, 8, 8)
    assert entropy(img).item() == pytest.approx(1.0)


def test_poster_float_entropy_counts_distinct_floats_like_skimage():
    img = torch.arange(65536, dtype=torch.float64).view(1, 1, 256, 256) / 65535.0
    # every pixel its own bin: log2(65536) = 16 bits, impossible for 8-bit data
    assert entropy(img, protocol="poster").item() == pytest.approx(16.0)
    assert entropy(img * 255.0).item() <= 8.0
    rnd = torch.rand(1, 1, 40, 40, generator=torch.Generator().manual_seed(3)).float()
    rnd = torch.round(rnd * 50) / 50  # 51 distinct values
    assert entropy(rnd, protocol="poster").item() == pytest.approx(shannon_entropy(rnd[0, 0].numpy()), abs=1e-12)


def test_float_entropy_closed_form_for_a_clamped_background():
    # a fraction m of pixels clamped to one value, every other pixel a distinct float:
    # H = -m log2 m + (1 - m) log2 N; m = 0.415 of a 256x256 image gives the poster's 9.887
    n, m = 65536, 27197  # 27197 / 65536 = 0.415
    img = torch.zeros(n, dtype=torch.float64)
    img[m:] = torch.linspace(0.01, 1.0, n - m, dtype=torch.float64)
    p = m / n
    expected = -p * math.log2(p) + (1 - p) * 16
    assert entropy(img.view(1, 1, 256, 256), protocol="poster").item() == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(9.887, abs=1e-3)


def test_sd_sf_ag_closed_forms():
    i, j = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checker = (((i + j) % 2) * 40.0 + 100.0).view(1, 1, 32, 32)
    assert standard_deviation(checker).item() == pytest.approx(20.0)
    # every horizontal and vertical neighbour differs by 40: SF = sqrt(40^2 + 40^2)
    assert spatial_frequency(checker).item() == pytest.approx(40.0 * math.sqrt(2.0))
    ramp = (j * 3.0).double().view(1, 1, 32, 32)
    # d/dx = 3 everywhere (central and one-sided), d/dy = 0: AG = sqrt(9 / 2)
    assert average_gradient(ramp).item() == pytest.approx(math.sqrt(4.5))


def test_sd_sf_ag_against_numpy_and_scale_with_the_protocol_range(images):
    img = images(11)
    a = img[0, 0].numpy()
    gy, gx = np.gradient(a)
    ref = {
        "SD": np.std(a),
        "SF": np.sqrt(np.mean(np.diff(a, axis=1) ** 2) + np.mean(np.diff(a, axis=0) ** 2)),
        "AG": np.mean(np.sqrt((gx**2 + gy**2) / 2)),
    }
    for fn, key in ((standard_deviation, "SD"), (spatial_frequency, "SF"), (average_gradient, "AG")):
        assert fn(img).item() == pytest.approx(ref[key], rel=1e-12)
        # the poster works on [0, 1]: the same image gives 1/255 of the 8-bit value
        assert fn(img / 255.0, protocol="poster").item() == pytest.approx(ref[key] / 255.0, rel=1e-12)
