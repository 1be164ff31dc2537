"""Optional dependencies: a missing one is named with the extra that installs it, also on the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from monai_fusion.cli import main
from monai_fusion.data.demo import write_demo_files
from monai_fusion.utils.errors import FusionInputError
from monai_fusion.utils.optional import MissingExtraError, require_extra


def test_a_missing_module_names_its_extra() -> None:
    assert require_extra("json", "plots", "anything").dumps([1]) == "[1]"
    with pytest.raises(
        MissingExtraError, match=r'the montage needs no_such_module_xyz: pip install "monai-fusion\[plots\]"'
    ):
        require_extra("no_such_module_xyz", "plots", "the montage")
    assert issubclass(MissingExtraError, FusionInputError)


def test_overview_without_matplotlib_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_demo_files()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the plots extra were not installed
    args = ["fuse", str(files["mri_png"]), str(files["pet_png"]), "--method", "average", "--no-register"]
    assert main([*args, "-o", str(tmp_path / "f.png"), "--overview", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert 'error: the overview PNG needs matplotlib: pip install "monai-fusion[plots]"' in err
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "f.png").exists()  # refused before writing
