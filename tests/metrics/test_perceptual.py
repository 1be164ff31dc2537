"""VIF and FSIM against piq (the ``poster`` protocol's FSIM: the poster's code), PSNR against known MSEs."""

from __future__ import annotations

import math
import sys

import numpy as np
import piq
import pytest

from monai_fusion.metrics import PSNR_LIMIT_DB, fsim, psnr, vif
from monai_fusion.metrics.perceptual import _uint16_scharr_magnitude, fsim_phasepack, vif_per_source
from monai_fusion.utils.optional import MissingExtraError


def test_psnr_of_a_known_mse(images):
    a = images(0).clamp(0, 250)
    f = a + 5.0  # MSE 25 against both sources
    assert psnr(f, a, a).item() == pytest.approx(10 * math.log10(255.0**2 / 25.0), abs=1e-10)
    # 'sum': the CDDFuse script's peak is max(F)
    assert psnr(f, a, a, protocol="sum").item() == pytest.approx(10 * math.log10(float(f.max()) ** 2 / 25.0), abs=1e-10)
    # 'poster': mean of per-source PSNRs on [0, 1], peak = range of the source (torchmetrics data_range=None)
    b = a.flip(-1)
    mse_a, mse_b = 25.0 / 255**2, float(((f - b) ** 2).mean()) / 255**2
    rng = float(a.max() - a.min()) / 255
    expected = (10 * math.log10(rng**2 / mse_a) + 10 * math.log10(rng**2 / mse_b)) / 2
    assert psnr(f / 255, a / 255, b / 255, protocol="poster").item() == pytest.approx(expected, abs=1e-9)


def test_psnr_of_an_exact_copy_is_the_finite_limit(images):
    a = images(1)
    assert psnr(a, a, a).item() == PSNR_LIMIT_DB


def test_vif_is_piqs_pixel_vif(images):
    a, b = images(2), images(3)
    f = (0.7 * a + 0.3 * b).clamp(0, 255)
    for src in (a, b):
        assert vif_per_source(f, src).item() == pytest.approx(float(piq.vif_p(f, src, data_range=255.0)), abs=1e-9)
    ref = float(piq.vif_p(f, a, data_range=255.0)) + float(piq.vif_p(f, b, data_range=255.0))
    assert vif(f, a, b, protocol="sum").item() == pytest.approx(ref, abs=1e-9)
    assert vif(f / 255, a / 255, b / 255, protocol="poster").item() == pytest.approx(ref / 2, abs=1e-9)
    assert vif(a, a, a).item() == pytest.approx(1.0, abs=1e-8)  # piq's EPS = 1e-8 in the ratio


def test_fsim_matches_piq(images):
    a, b = images(4), images(5)
    f = (a + b) / 2
    ref = [float(piq.fsim(f.float(), s.float(), data_range=255.0, chromatic=False)) for s in (a, b)]
    assert fsim(f, a, b).item() == pytest.approx(sum(ref) / 2, abs=1e-6)
    assert fsim(f, a, b, protocol="sum").item() == pytest.approx(sum(ref), abs=1e-6)
    assert fsim(a, a, a).item() == pytest.approx(1.0, abs=1e-6)


def test_uint16_scharr_drops_negative_responses_and_rounds() -> None:
    """A rising step gives Scharr's 3 + 10 + 3 = 16 per unit; a falling one gives -16, which uint16 stores as 0."""
    step = np.zeros((9, 9))
    step[:, 5:] = 0.5  # rising along x: +8 in the two columns beside the edge
    assert _uint16_scharr_magnitude(step)[4, 4:6].tolist() == [8.0, 8.0]
    assert float(_uint16_scharr_magnitude(step[:, ::-1].copy()).max()) == 0.0  # falling: negative, stored as 0
    ramp = np.tile(np.arange(9) * 0.1, (9, 1))  # x-response 16 * 0.1 * 2 = 3.2 inside
    mag = _uint16_scharr_magnitude(ramp)
    assert mag[4, 4] == 3.0
    assert mag[4, 0] == 0.0  # OpenCV's border repeats no edge pixel: column -1 is column 1, the response is 0
    tie = np.tile(np.arange(9) * 0.078125, (9, 1))  # 16 * 0.078125 * 2 = 2.5: rounded half to even
    assert _uint16_scharr_magnitude(tie)[4, 4] == 2.0


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_fsim_phasepack_matches_image_similarity_measures(images, scale: float) -> None:
    """Reference values of ``image_similarity_measures.quality_metrics.fsim`` 0.3.6 (with OpenCV and phasepack
    1.5) on these images as ``(H, W, 1)`` arrays; at 0..255 its squares of uint16 gradients wrap, as here."""
    expected = {1.0: (0.9471945037948083, 0.8852860272889845), 255.0: (0.6528508421655509, 0.6276180379546683)}
    a, b = images(5)[0, 0].numpy() / 255, images(6)[0, 0].numpy() / 255
    f = 0.6 * a + 0.4 * b
    for src, ref in zip((a, b), expected[scale]):
        assert fsim_phasepack(src * scale, f * scale) == pytest.approx(ref, abs=1e-7)


def test_fsim_phasepack_is_one_for_a_copy_and_for_featureless_images(images) -> None:
    a = images(4).double()[0, 0].numpy() / 255
    assert fsim_phasepack(a, a) == pytest.approx(1.0, abs=1e-12)
    assert fsim_phasepack(np.zeros((32, 32)), np.zeros((32, 32))) == 1.0
    assert fsim_phasepack(a, np.clip(a + 0.2 * np.sin(np.arange(64) / 2), 0, 1)) < 0.99


def test_poster_protocol_fsim_is_the_posters_code_and_differs_from_piq(images) -> None:
    """Under ``poster`` FSIM is the mean of :func:`fsim_phasepack` over the sources; other protocols keep piq's."""
    a, b = images(5).double() / 255, images(6).double() / 255
    f = 0.6 * a + 0.4 * b
    expected = (fsim_phasepack(a[0, 0].numpy(), f[0, 0].numpy()) + fsim_phasepack(b[0, 0].numpy(), f[0, 0].numpy())) / 2
    assert fsim(f, a, b, protocol="poster").item() == pytest.approx(expected, abs=1e-12)
    assert abs(expected - fsim(f * 255, a * 255, b * 255).item()) > 1e-3


def test_poster_fsim_without_phasepack_names_the_extra(images, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "phasepack", None)  # import phasepack now raises ImportError
    a = images(7).double() / 255
    with pytest.raises(MissingExtraError, match=r"monai-fusion\[poster\]"):
        fsim(a, a, a, protocol="poster")
