"""`make dist`: the wheel carries every shipped weights file and the version the bundle requires."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import monai_fusion

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheel_ships_the_weights_and_the_bundle_names_its_version(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels = list(tmp_path.glob("monai_fusion-*.whl"))
    assert [w.name for w in wheels] == [f"monai_fusion-{monai_fusion.__version__}-py3-none-any.whl"]
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    shipped = {f"monai_fusion/networks/weights/{p.name}" for p in (ROOT / "monai_fusion/networks/weights").glob("*.pt")}
    assert shipped and shipped <= names
    meta = json.loads((ROOT / "bundles/multimodal_fusion/configs/metadata.json").read_text(encoding="utf-8"))
    assert meta["required_packages_version"]["monai-fusion"] == monai_fusion.__version__
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", str(wheels[0])], capture_output=True, text=True, encoding="utf-8"
    )
    assert check.returncode == 0 and "PASSED" in check.stdout, check.stdout + check.stderr
