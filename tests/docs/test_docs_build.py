"""The documentation site builds with MkDocs in strict mode (warnings are errors), API pages included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mkdocs_strict_build(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="docs extra not installed (pip install -e .[test])")
    pytest.importorskip("mkdocstrings", reason="docs extra not installed (pip install -e .[test])")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("find_pairs", "RegisterToReferenced", "RGBToYCbCrd", "FusionMetrics", "fuse_sample"):
        assert name in api, name
    for page in ("data", "registration", "metrics", "bundle", "cli"):
        assert (tmp_path / "site" / page / "index.html").is_file()
