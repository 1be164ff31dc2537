"""MI, NMI and FMI against hand-derived values, scikit-learn/scikit-image and a loop port of fmi.m."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import torch
from skimage.metrics import normalized_mutual_information as sk_nmi

from monai_fusion.metrics import (
    FMI_FEATURES,
    entropy,
    feature_mutual_information,
    mutual_information,
    normalized_mutual_information,
)
from monai_fusion.metrics.information import fmi_feature_map


def test_mi_of_an_image_with_itself_is_its_entropy(images):
    a = torch.round(images(1))
    en = entropy(a).item()
    assert mutual_information(a, a, a).item() == pytest.approx(en, abs=1e-12)
    # 'sum': two sources, nats
    assert mutual_information(a, a, a, protocol="sum").item() == pytest.approx(2 * en * math.log(2), abs=1e-12)


def test_mi_of_independent_patterns_is_zero():
    i, j = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    cols = ((j % 4) * 60.0).view(1, 1, 64, 64)  # depends on the column only
    rows = ((i % 4) * 60.0).view(1, 1, 64, 64)  # depends on the row only: independent of cols
    # F = cols: I(rows; F) = 0 and I(cols; F) = H(cols) = 2 bits, mean 1
    assert mutual_information(cols, rows, cols).item() == pytest.approx(1.0, abs=1e-12)
    assert mutual_information(rows, cols, cols.flip(-1)).item() == pytest.approx(0.0, abs=1e-12)


def test_sum_protocol_mi_matches_scikit_learn(images):
    skm = pytest.importorskip("sklearn.metrics")
    a, b = torch.round(images(2)), torch.round(images(3))
    f = torch.round((a + b) / 2)
    ref = sum(skm.mutual_info_score(f.flatten().numpy(), s.flatten().numpy()) for s in (a, b))
    assert mutual_information(f, a, b, protocol="sum").item() == pytest.approx(ref, rel=1e-10)


def _poster_mi(pred: np.ndarray, true: np.ndarray) -> float:
    """The reference poster's ``eval.mutual_information`` (truncation to uint8, 256 bins, nats)."""
    p = (pred * 255).astype(np.uint8).flatten()
    t = (true * 255).astype(np.uint8).flatten()
    pa = np.histogram(p, 256, (0, 255))[0] / p.size
    pb = np.histogram(t, 256, (0, 255))[0] / t.size
    pab = np.histogram2d(p, t, 256, [[0, 255], [0, 255]])[0] / p.size
    ent = lambda q: -np.sum(q * np.log(q + 1e-20))  # noqa: E731
    return float(ent(pa) + ent(pb) - ent(pab))


def test_poster_mi_reproduces_its_code_including_truncation(images):
    a, b = (images(s).float() / 255 for s in (4, 5))
    f = (0.3 * a + 0.7 * b).clamp(0, 1)
    ref = (_poster_mi(f[0, 0].numpy(), a[0, 0].numpy()) + _poster_mi(f[0, 0].numpy(), b[0, 0].numpy())) / 2
    assert mutual_information(f, a, b, protocol="poster").item() == pytest.approx(ref, abs=1e-9)


def test_nmi_hossny_and_studholme_forms(images):
    a, b = images(6), images(7)
    f = (a + b) / 2
    assert normalized_mutual_information(a, a, a).item() == pytest.approx(1.0, abs=1e-12)
    val = normalized_mutual_information(f, a, b).item()
    assert 0.0 < val < 1.0
    assert normalized_mutual_information(f, a, b, protocol="sum").item() == pytest.approx(2 * val, abs=1e-12)
    # poster: scikit-image's (H(X) + H(F)) / H(X, F) with 100 bins, averaged over the sources
    fp, ap, bp = (t.float() / 255 for t in (f, a, b))
    ref = (
        sk_nmi(fp[0, 0].numpy(), ap[0, 0].numpy(), bins=100) + sk_nmi(fp[0, 0].numpy(), bp[0, 0].numpy(), bins=100)
    ) / 2
    assert normalized_mutual_information(fp, ap, bp, protocol="poster").item() == pytest.approx(ref, abs=1e-6)


# ---------------------------------------------------------------------------------------------- FMI
def _fmi_window_reference(a: np.ndarray, f: np.ndarray) -> float:
    """One window of Haghighat's fast-FMI (fmi.m), transliterated loop by loop (column vectors)."""
    if np.all(a == f):
        return 1.0

    def norm(s):
        return np.ones_like(s) if s.max() == s.min() else (s - s.min()) / (s.max() - s.min())

    a, f = norm(a), norm(f)
    ap, fp = a / a.sum(), f / f.sum()
    n = len(ap)
    ac, fc = np.cumsum(ap), np.cumsum(fp)
    at, ft = ap - ap.mean(), fp - fp.mean()
    c = 0.0 if np.sum(at * ft) == 0 else np.sum(at * ft) / np.sqrt(np.sum(at * at) * np.sum(ft * ft))
    idx = np.arange(1, n + 1)
    asd = np.sqrt(np.sum(idx * idx * ap) - np.sum(idx * ap) ** 2)
    fsd = np.sqrt(np.sum(idx * idx * fp) - np.sum(idx * fp) ** 2)
    if c >= 0:
        bound = lambda i, j: 0.0 if i < 0 or j < 0 else 0.5 * (fc[i] + ac[j] - abs(fc[i] - ac[j]))  # noqa: E731
    else:
        bound = lambda i, j: 0.0 if i < 0 or j < 0 else 0.5 * (fc[i] + ac[j] - 1 + abs(fc[i] + ac[j] - 1))  # noqa: E731
    if (c == 0 and c >= 0) or asd == 0 or fsd == 0:
        w = 0.0
    else:
        cov = sum(bound(i, j) - fc[i] * ac[j] for i in range(n) for j in range(n))
        w = c / (cov / (fsd * asd))
    joint = 0.0
    for i in range(n):
        for j in range(n):
            jb = bound(i, j) - bound(i - 1, j) - bound(i, j - 1) + bound(i - 1, j - 1)
            jp = w * jb + (1 - w) * fp[i] * ap[j]
            if jp != 0:
                joint += float(np.real(-jp * np.log2(complex(jp))))
    ha = -np.sum(ap[ap > 0] * np.log2(ap[ap > 0]))
    hf = -np.sum(fp[fp > 0] * np.log2(fp[fp > 0]))
    mi = ha + hf - joint
    return 0.0 if mi == 0 else 2 * mi / (ha + hf)


def _fmi_reference(a: np.ndarray, b: np.ndarray, f: np.ndarray, w: int = 3) -> float:
    vals = []
    for p in range(a.shape[0] - w + 1):
        for q in range(a.shape[1] - w + 1):
            win = lambda m: m[p : p + w, q : q + w].flatten(order="F")  # noqa: E731
            vals.append((_fmi_window_reference(win(a), win(f)) + _fmi_window_reference(win(b), win(f))) / 2)
    return float(np.mean(vals))


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_fmi_equals_the_loop_reference(seed):
    g = np.random.default_rng(seed)
    a = g.integers(0, 5, (9, 11)).astype(np.float64) * 50
    b = g.integers(0, 255, (9, 11)).astype(np.float64)
    f = 255 - a if seed else np.clip(0.5 * a + 0.5 * b + g.integers(0, 3, (9, 11)), 0, 255)  # seed 1: anti-correlated
    got = feature_mutual_information(*(torch.from_numpy(m)[None, None] for m in (f, a, b))).item()
    assert got == pytest.approx(_fmi_reference(a, b, f), abs=1e-12)


def test_fmi_is_one_for_identical_images_for_every_feature(images):
    a = images(8)
    for feat in FMI_FEATURES:
        assert feature_mutual_information(a, a, a, feature=feat).item() == pytest.approx(1.0, abs=1e-12), feat


def test_fmi_range_sum_and_ordering(images):
    a, b = images(9), images(10)
    avg = (a + b) / 2
    noise = torch.rand(a.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 255
    v_avg, v_noise = feature_mutual_information(avg, a, b).item(), feature_mutual_information(noise, a, b).item()
    assert 0.0 <= v_noise < v_avg <= 1.0
    assert feature_mutual_information(avg, a, b, protocol="sum").item() == pytest.approx(2 * v_avg, abs=1e-12)


def test_fmi_feature_maps_follow_their_matlab_definitions(images):
    v = images(12)
    x = v[0, 0].numpy()
    np.testing.assert_allclose(fmi_feature_map(v, "dct")[0, 0].numpy(), scipy.fft.dctn(x, norm="ortho"), atol=1e-9)
    np.testing.assert_allclose(fmi_feature_map(v, "gradient")[0, 0].numpy(), np.gradient(x, axis=1), atol=1e-12)
    step = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    step[..., 8:] = 100.0
    edges = fmi_feature_map(step, "edge")[0, 0]
    assert set(edges.unique().tolist()) == {0.0, 1.0}
    assert edges[:, 7:9].sum() == 16 and edges.sum() == 16  # one thinned line along the step
    wav = fmi_feature_map(v, "wavelet")
    assert wav.shape[-1] == 2 * ((64 + 62 - 1) // 2) and float(wav.min()) == 0.0 and float(wav.max()) == 1.0
