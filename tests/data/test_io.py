"""Readers and writers: shapes, conventions and a clear error for every bad input."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from monai_fusion.data.io import read_image, read_volume, write_nifti, write_png
from monai_fusion.data.quantise import rgb_to_uint8, to_uint8
from monai_fusion.utils import FusionInputError
from monai_fusion.utils.locale_guard import preserved_locale


def _gradient(h: int = 16, w: int = 20) -> np.ndarray:
    return (np.arange(h * w).reshape(h, w) % 251).astype(np.uint8)


def test_read_grey_png_keeps_row_major(tmp_path: Path) -> None:
    a = _gradient()
    Image.fromarray(a).save(tmp_path / "m.png")
    img = read_image(tmp_path / "m.png", "MRI")
    assert img.array.shape == (1, 16, 20) and img.array.dtype == np.float32
    np.testing.assert_array_equal(img.array[0], a)
    assert img.meta["value_max"] == 255.0


def test_read_rgb_for_pet_and_grey_rgb_for_mri(tmp_path: Path) -> None:
    a = _gradient()
    rgb = np.stack([a, a[::-1], 255 - a], -1)
    Image.fromarray(rgb).save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png", "PET").array.shape == (3, 16, 20)
    with pytest.raises(FusionInputError, match="expected a grey-level image for MRI"):
        read_image(tmp_path / "p.png", "MRI")
    Image.fromarray(np.stack([a, a, a], -1)).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png", "MRI").array.shape == (1, 16, 20)


def test_palette_rgba_and_16bit(tmp_path: Path) -> None:
    a = _gradient()
    Image.fromarray(a).convert("P").save(tmp_path / "pal.png")
    assert read_image(tmp_path / "pal.png", "CT").array.shape == (1, 16, 20)
    rgba = np.dstack([a, a, a, np.full_like(a, 255)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "opaque.png")
    assert read_image(tmp_path / "opaque.png", "MRI").array.shape == (1, 16, 20)
    rgba[0, 0, 3] = 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "transparent.png")
    with pytest.raises(FusionInputError, match="transparent"):
        read_image(tmp_path / "transparent.png", "MRI")
    Image.fromarray(a.astype(np.uint16) * 200).save(tmp_path / "deep.png")
    img16 = read_image(tmp_path / "deep.png", "MRI")
    assert img16.meta["value_max"] == 65535.0 and img16.array.max() == 250 * 200


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "could not be read"),
        (b"not an image", "could not be read"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "bad file é.png"
    p.write_bytes(content)
    with pytest.raises(FusionInputError, match=match) as info:
        read_image(p, "MRI")
    assert str(p) in str(info.value)


def test_truncated_png_and_missing_and_extension(tmp_path: Path) -> None:
    Image.fromarray(_gradient(64, 64)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(FusionInputError, match="cut.png"):
        read_image(tmp_path / "cut.png", "MRI")
    with pytest.raises(FusionInputError, match="file not found"):
        read_image(tmp_path / "missing.png", "MRI")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(FusionInputError, match="not a 2D image file"):
        read_image(tmp_path / "x.txt", "MRI")
    with pytest.raises(FusionInputError, match="modality"):
        read_image(tmp_path / "ok.png", "XRAY")


def test_constant_and_nonfinite(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path / "c.png")
    with pytest.raises(FusionInputError, match="constant"):
        read_image(tmp_path / "c.png", "CT")
    vol = np.random.default_rng(0).random((6, 7, 8)).astype(np.float32)
    vol[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(FusionInputError, match="NaN/Inf"):
        read_volume(tmp_path / "nan.nii.gz", "PET")


def test_nifti_roundtrip_and_4d(tmp_path: Path) -> None:
    vol = np.random.default_rng(0).random((6, 7, 8)).astype(np.float32)
    aff = np.diag([2.0, 2.0, 3.0, 1.0])
    write_nifti(vol[None], aff, tmp_path / "v.nii.gz")
    img = read_volume(tmp_path / "v.nii.gz", "MRI")
    assert img.array.shape == (1, 6, 7, 8)
    np.testing.assert_allclose(img.array[0], vol, rtol=1e-6)
    np.testing.assert_allclose(img.affine, aff)
    with pytest.raises(FusionInputError, match="exists"):
        write_nifti(vol[None], aff, tmp_path / "v.nii.gz")
    nib.save(nib.Nifti1Image(np.stack([vol, vol], -1), aff), tmp_path / "4d.nii.gz")
    with pytest.raises(FusionInputError, match="expected a 3D volume"):
        read_volume(tmp_path / "4d.nii.gz", "PET")


def _dicom_series(folder: Path, vol_zyx: np.ndarray, uid: str, spacing=(0.9, 0.8, 2.5)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(vol_zyx.astype(np.int16))
    img.SetSpacing(spacing)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(img.GetDepth()):
        sl = img[:, :, z]
        pos = img.TransformIndexToPhysicalPoint((0, 0, z))
        for tag, value in {
            "0020|000e": uid,
            "0020|000d": "1.2.3.4",
            "0008|0060": "MR",
            "0020|0013": str(z + 1),
            "0020|0032": "\\".join(f"{p:.4f}" for p in pos),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0028|0030": f"{spacing[1]}\\{spacing[0]}",
            "0018|0050": str(spacing[2]),
        }.items():
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{uid[-3:]}_{z:03d}.dcm"))
        with preserved_locale():  # GDCM leaves the process in the C locale otherwise
            writer.Execute(sl)


def test_dicom_series_reader(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vol = rng.integers(0, 1000, (5, 12, 10))
    _dicom_series(tmp_path / "mr", vol, "1.2.3.4.5.100")
    img = read_volume(tmp_path / "mr", "MRI")
    assert img.array.shape == (1, 10, 12, 5)  # (X, Y, Z)
    np.testing.assert_array_equal(img.array[0], np.transpose(vol, (2, 1, 0)))
    np.testing.assert_allclose(np.abs(np.diag(img.affine))[:3], [0.9, 0.8, 2.5], rtol=1e-4)
    assert img.meta["series_uid"] == "1.2.3.4.5.100"
    _dicom_series(tmp_path / "mr", vol, "1.2.3.4.5.200")
    with pytest.raises(FusionInputError, match="2 DICOM series"):
        read_volume(tmp_path / "mr", "MRI")
    assert read_volume(tmp_path / "mr", "MRI", series_uid="1.2.3.4.5.200").meta["series_uid"] == "1.2.3.4.5.200"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FusionInputError, match="no DICOM series"):
        read_volume(tmp_path / "empty", "MRI")


def test_write_png_atomic_and_refuses(tmp_path: Path) -> None:
    img = np.linspace(0, 1, 3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    p = write_png(img, tmp_path / "out.png")
    back = np.asarray(Image.open(p))
    assert back.shape == (4, 5, 3)
    np.testing.assert_array_equal(back, rgb_to_uint8(img, axis=0).transpose(1, 2, 0))
    grey = write_png(img[:1], tmp_path / "grey.png")
    np.testing.assert_array_equal(np.asarray(Image.open(grey)), np.rint(img[0] * 255).astype(np.uint8))
    grey.unlink()
    # random colours: a reader's grey conversion of the file gives the colours' own luminance, rounded once
    colours = np.random.default_rng(1).random((3, 32, 32))
    luminance = np.asarray(Image.open(write_png(colours, tmp_path / "colours.png")).convert("L"))
    np.testing.assert_array_equal(luminance, np.rint(np.moveaxis(colours, 0, -1) * 255 @ Y601))
    (tmp_path / "colours.png").unlink()
    with pytest.raises(FusionInputError, match="exists"):
        write_png(img, p)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.png"]  # no temporary left behind


Y601 = np.array([0.299, 0.587, 0.114])


def test_rgb_to_uint8_keeps_the_luminance() -> None:
    """The written RGB's luminance rounds to the colour's rounded luminance on every pixel; per-channel rounding
    misses it on about one pixel in six, and the new rule moves no channel by more than one level."""
    rgb = np.random.default_rng(0).random((3, 64, 64)) * 1.2 - 0.1  # some values outside [0, 1]
    target = np.rint(np.moveaxis(np.clip(rgb, 0, 1) * 255, 0, -1) @ Y601)
    new, old = rgb_to_uint8(rgb), to_uint8(rgb)
    assert new.dtype == np.uint8 and new.shape == rgb.shape
    kept_new = np.rint(np.moveaxis(new.astype(float), 0, -1) @ Y601) == target
    kept_old = np.rint(np.moveaxis(old.astype(float), 0, -1) @ Y601) == target
    assert kept_new.all() and kept_old.mean() < 0.9
    assert np.abs(new.astype(int) - old.astype(int)).max() == 1
    clearly = np.abs(np.moveaxis(old.astype(float), 0, -1) @ Y601 - target) < 0.49  # kept, not near a half
    np.testing.assert_array_equal(new[:, clearly], old[:, clearly])  # unchanged where rounding kept it
    np.testing.assert_array_equal(rgb_to_uint8(np.moveaxis(rgb, 0, -1), axis=-1), np.moveaxis(new, 0, -1))
    # blocks: a volume larger than one block converts as its slices do
    volume = np.random.default_rng(2).random((3, 300, 300, 2))
    np.testing.assert_array_equal(rgb_to_uint8(volume)[..., 1], rgb_to_uint8(volume[..., 1]))


def test_rgb_to_uint8_refuses_other_channel_counts() -> None:
    with pytest.raises(FusionInputError, match="3 channels along axis 0"):
        rgb_to_uint8(np.zeros((4, 8, 8)))
    with pytest.raises(FusionInputError, match="axis 3"):
        rgb_to_uint8(np.zeros((3, 8, 8)), axis=3)


#: The output digest of each named writers' rule on :func:`_pin_colours` (grey and RGB). A change to the rule that
#: keeps its name fails here: rows scored on the written image are told apart by that name only.
WRITER_DIGESTS = {"luminance-kept-0.005": "5809df220c960b1cd40ce998a736615976c3b7238a688614fd44bc85792268df"}


def _pin_colours() -> np.ndarray:
    """``(3, N)`` colours: random, channels on and beside exact halves, on the grid, and out of [0, 1]."""
    g = np.random.default_rng(20261208)
    rand = g.random((3, 4096))
    halves = (np.arange(0, 255)[None, :] + 0.5 + np.array([[0.0], [0.25], [-0.25]])) / 255
    grid = np.stack(np.meshgrid(*[np.arange(0, 256, 17)] * 3, indexing="ij")).reshape(3, -1) / 255
    return np.concatenate([rand, np.clip(halves, 0, 1), grid, -rand[:, :16], 1 + rand[:, :16]], axis=1)


def test_the_writers_rule_keeps_its_name() -> None:
    import hashlib

    from monai_fusion.data.quantise import WRITER_RULE, channels_to_uint8

    c = _pin_colours()
    digest = hashlib.sha256(channels_to_uint8(c).tobytes() + channels_to_uint8(c[:1]).tobytes()).hexdigest()
    assert WRITER_RULE in WRITER_DIGESTS, f"pin the new rule {WRITER_RULE!r}: its digest is {digest}"
    assert digest == WRITER_DIGESTS[WRITER_RULE], (
        f"channels_to_uint8 changed under the name {WRITER_RULE!r}: give data.quantise.WRITER_RULE a new name (so "
        f"benchmark rows of the old rule are refused) and pin digest {digest} to it here"
    )
    assert not np.array_equal(channels_to_uint8(c), to_uint8(c))  # per-channel rounding is another rule
