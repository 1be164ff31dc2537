"""`.ci/seed_venv.py`: app venvs share .venv's torch stack by hard links, and Python sees it installed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("seed_venv", ROOT / ".ci" / "seed_venv.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_dist(venv_dir: Path, name: str, version: str, package: str) -> None:
    """Install a distribution by hand the way pip lays it out: package files, a console script, a dist-info."""
    sp = next(venv_dir.glob("lib/python*/site-packages"))
    (sp / package / "__pycache__").mkdir(parents=True)
    (sp / package / "__init__.py").write_text(f"VERSION = {version!r}\n")
    (sp / package / "lib.so").write_bytes(b"\0" * 4096)
    (sp / package / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"stale")
    script = venv_dir / "bin" / f"{package}run"
    script.write_text(f"#!{venv_dir / 'bin' / 'python'}\nimport {package}\nprint({package}.VERSION)\n")
    script.chmod(0o755)
    info = sp / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    rows = [
        f"{package}/__init__.py,,",
        f"{package}/lib.so,,",
        f"{package}/__pycache__/__init__.cpython-311.pyc,,",
        f"../../../bin/{package}run,,",
        f"{info.name}/METADATA,,",
        f"{info.name}/RECORD,,",
    ]
    (info / "RECORD").write_text("\n".join(rows) + "\n")


@pytest.fixture()
def venvs(tmp_path):
    source, target = tmp_path / "src", tmp_path / "dst"
    for path in (source, target):
        venv.EnvBuilder(with_pip=False).create(path)
    _fake_dist(source, "torch", "9.9.9", "torch")
    _fake_dist(source, "nvidia-fake-cu13", "1.0", "nvidia_fake")
    _fake_dist(source, "numpy", "3.0", "numpy")
    return source, target


def test_links_matching_distributions_and_skips_the_rest(venvs):
    source, target = venvs
    linked = _load().seed(source, target)
    assert linked == ["nvidia-fake-cu13==1.0", "torch==9.9.9"]
    src_sp, dst_sp = (next(v.glob("lib/python*/site-packages")) for v in venvs)
    assert (dst_sp / "torch" / "lib.so").stat().st_ino == (src_sp / "torch" / "lib.so").stat().st_ino
    assert not (dst_sp / "torch" / "__pycache__").exists()
    assert not (dst_sp / "numpy").exists()
    # the target's own python sees the version and runs the console script through itself
    out = subprocess.run(
        [str(target / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('torch'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "9.9.9"
    script = target / "bin" / "torchrun"
    assert script.read_text().splitlines()[0] == f"#!{(target / 'bin' / 'python').absolute()}"
    assert subprocess.run([str(script)], capture_output=True, text=True, check=True).stdout.strip() == "9.9.9"


def test_a_distribution_already_in_the_target_is_left_alone(venvs):
    source, target = venvs
    _fake_dist(target, "torch", "1.0", "torch")
    linked = _load().seed(source, target, ("torch",))
    assert linked == []
    dst_sp = next(target.glob("lib/python*/site-packages"))
    assert (dst_sp / "torch" / "__init__.py").read_text() == "VERSION = '1.0'\n"


def test_a_folder_that_is_not_a_venv_is_refused(tmp_path, venvs):
    with pytest.raises(SystemExit, match="site-packages"):
        _load().seed(venvs[0], tmp_path / "missing")


def test_command_line(venvs):
    source, target = venvs
    out = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "seed_venv.py"), str(source), str(target), "numpy"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "linked numpy 3.0" in out.stdout


def test_a_rerun_completes_an_interrupted_seed_without_writing_through_links(venvs, tmp_path):
    source, target = venvs
    src_sp, dst_sp = (next(v.glob("lib/python*/site-packages")) for v in venvs)
    # an interrupted run: the package file is there, as a link to a third venv's file; no dist-info yet
    other = tmp_path / "other_lib.so"
    other.write_bytes(b"another venv's library")
    (dst_sp / "torch").mkdir()
    os.link(other, dst_sp / "torch" / "lib.so")
    (dst_sp / "torch-9.9.9.dist-info").mkdir()  # a partial dist-info: no RECORD
    (dst_sp / "torch-9.9.9.dist-info" / "METADATA").write_text("Name: torch\n")
    assert _load().seed(source, target, ("torch",)) == ["torch==9.9.9"]
    assert other.read_bytes() == b"another venv's library"  # replaced as a name, not written through
    assert (dst_sp / "torch" / "lib.so").stat().st_ino == (src_sp / "torch" / "lib.so").stat().st_ino
    assert sorted(p.name for p in (dst_sp / "torch-9.9.9.dist-info").iterdir()) == ["METADATA", "RECORD"]
    assert not list(dst_sp.glob(".*seed-*"))
