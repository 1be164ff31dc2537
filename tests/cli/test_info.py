"""`monai-fusion info` lists which weight files are present, by path only."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_fusion.cli import main, weights_present


def test_info_lists_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    rows = {what: (path, present) for what, path, present in weights_present(bundle)}
    assert rows["bundle model"] == (bundle / "models" / "model.pt", False)
    assert rows["torchvision vgg19 (ImageNet)"] == (
        tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth",
        False,
    )
    (bundle / "models" / "model.pt").write_bytes(b"\0" * 2**20)
    vgg = rows["torchvision vgg19 (ImageNet)"][0]
    vgg.parent.mkdir(parents=True)
    vgg.write_bytes(b"x")
    present = {what: ok for what, _, ok in weights_present(bundle)}
    assert present == {
        "bundle model": True,
        "default model (shipped)": True,
        "poster (shipped)": True,
        "poster_only_mse (shipped)": True,
        "msrpan (shipped)": True,
        "msdra (shipped)": True,
        "medical feature extractor": present["medical feature extractor"],
        "torchvision vgg16_bn (ImageNet)": False,
        "torchvision vgg19 (ImageNet)": True,
    }
    assert main(["info", "--bundle", str(bundle)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "bundle model" in ln)
    assert "present" in next(ln for ln in out.splitlines() if "default model (shipped)" in ln)
    assert "present (1.0 MiB)" in line and str(bundle / "models" / "model.pt") in line
    assert "missing" in next(ln for ln in out.splitlines() if "vgg16_bn" in ln)
