"""Seed a new virtual environment with hard links to large distributions installed in another one.

The app environments (`make deploy-env label-env share-env`) each need the same torch build as the main
`.venv`. On x86_64 that build pulls about 5.3 GB of CUDA libraries (torch, triton, nvidia-*, cuda-*), so four
venvs held over 25 GB and CI ran out of disk while building the third. Before pip runs in an app venv, this
script links those distributions' files (listed in each `*.dist-info/RECORD`) from `.venv` into it: pip then
sees them installed, at the version `constraints.txt` pins, and a link costs no space. pip never writes into an
installed file (it unlinks before it writes and moves files away when it uninstalls), so the two venvs cannot
change each other's copy. Neither pip nor uv (which can link, but downloads torch instead of taking the local
wheel) does this, hence the script.

Console scripts (e.g. `torchrun`) are copied with their `#!` line pointing at the new venv's python;
`__pycache__` files are not linked (the new venv compiles its own, with its own paths in them). A distribution
already present in the target, by any version, is left alone. The dist-info folder is put in place last, whole,
so an interrupted run leaves nothing that pip takes as installed, and running the script again completes it.

Usage: python .ci/seed_venv.py SOURCE_VENV TARGET_VENV [PATTERN ...]
(patterns are fnmatch patterns of normalised distribution names; default: DEFAULT_PATTERNS).
"""

from __future__ import annotations

import argparse
import csv
import errno
import fnmatch
import os
import re
import shutil
import sys
from pathlib import Path

__all__ = ["DEFAULT_PATTERNS", "seed", "site_packages"]

#: the torch stack (about 5.3 GB of it CUDA libraries) and the largest of monai-fusion's own requirements, which
#: every app venv installs at the version .venv has (pip replaces a seeded one whose version a pin excludes).
DEFAULT_PATTERNS = ("torch", "torchvision", "triton", "nvidia-*", "cuda-*", "simpleitk", "scipy")


def site_packages(venv: Path) -> Path:
    """Return the one `lib/python*/site-packages` folder of `venv`.

    Raises:
        SystemExit: when the folder is missing or ambiguous (not a venv, or one of several Pythons).
    """
    found = sorted(venv.glob("lib/python*/site-packages"))
    if len(found) != 1:
        raise SystemExit(f"seed_venv: expected one lib/python*/site-packages in {venv}, found {len(found)}")
    return found[0]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_name(dist_info: Path) -> str:
    for line in (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("Name:"):
            return _normalise(line.split(":", 1)[1].strip())
    return _normalise(dist_info.name.split("-")[0])


#: errno values for which a hard link is impossible (another file system, or links not allowed there): copy then.
NO_LINK = {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK}


def _link(src: Path, dst: Path) -> int:
    """Hard-link `src` to `dst`, replacing what `dst` holds (a copy where no link is possible); return the bytes a
    copy would take.

    The link is made under a temporary name and moved into place with `os.replace`, so an existing `dst` (left by an
    interrupted run, or a link shared with another venv) is replaced as a name, never written through.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.seed-{os.getpid()}")
    try:
        os.link(src, tmp)
    except OSError as err:
        if err.errno not in NO_LINK:
            raise
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)
    return src.stat().st_size


def _copy_script(src: Path, dst: Path, python: Path) -> None:
    """Copy a console script, pointing its `#!` line at the target venv's python."""
    data = src.read_bytes()
    if data.startswith(b"#!"):
        data = b"#!" + str(python).encode() + b"\n" + data.split(b"\n", 1)[1]
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(src.stat().st_mode)
    os.replace(tmp, dst)


def seed(source: Path, target: Path, patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> list[str]:
    """Link the distributions of `source` whose names match `patterns` into `target`.

    Args:
        source: the venv that has them installed (`.venv`).
        target: a venv created with the same Python (`python -m venv`), before pip installs into it.
        patterns: fnmatch patterns of normalised distribution names.

    Returns:
        The `name==version` of each distribution linked.
    """
    src_sp, dst_sp = site_packages(source), site_packages(target)
    if src_sp.relative_to(source) != dst_sp.relative_to(target):
        raise SystemExit(
            f"seed_venv: {source} and {target} hold different Pythons ({src_sp.parent.name} vs {dst_sp.parent.name})"
        )
    present = {_dist_name(d) for d in dst_sp.glob("*.dist-info") if (d / "RECORD").exists()}
    python = (target / "bin" / "python").absolute()
    bin_dir = (source / "bin").resolve()
    linked = []
    for dist_info in sorted(src_sp.glob("*.dist-info")):
        name = _dist_name(dist_info)
        if name in present or not any(fnmatch.fnmatch(name, p) for p in patterns):
            continue
        with open(dist_info / "RECORD", newline="", encoding="utf-8") as f:
            paths = [row[0] for row in csv.reader(f) if row]
        meta, files, scripts = [], [], []
        info_dir = dist_info.resolve()
        for rel in paths:
            src = (src_sp / rel).resolve()
            if "__pycache__" in Path(rel).parts:
                continue
            if src.is_relative_to(info_dir):
                meta.append(rel)
            elif src.parent == bin_dir:
                scripts.append(src)
            else:
                files.append((src, rel))
        odd = [rel for src, rel in files if rel.startswith("..") or not src.is_file()]
        if odd or not all(p.is_file() for p in scripts):
            print(f"seed_venv: not linking {name} (pip installs it): {odd[:3]} outside site-packages or missing")
            continue
        size = sum(_link(src, dst_sp / rel) for src, rel in files)
        for src in scripts:
            _copy_script(src, target / "bin" / src.name, python)
        # the dist-info last, whole: linked in a temporary folder and renamed into place, so that an interrupted run
        # leaves no dist-info that pip (or a rerun) would take as installed
        staging = dst_sp / f".{dist_info.name}.seed-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        for rel in meta:
            _link(src_sp / rel, staging / Path(rel).relative_to(dist_info.name))
        shutil.rmtree(dst_sp / dist_info.name, ignore_errors=True)  # a partial one from an interrupted older run
        os.replace(staging, dst_sp / dist_info.name)
        version = dist_info.name[: -len(".dist-info")].split("-", 1)[-1]
        linked.append(f"{name}=={version}")
        print(f"seed_venv: linked {name} {version} ({size / 2**20:.0f} MiB) into {target}", flush=True)
    return linked


def main(argv: list[str] | None = None) -> int:
    """Command line: seed TARGET from SOURCE."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("patterns", nargs="*", default=list(DEFAULT_PATTERNS))
    args = parser.parse_args(argv)
    seed(args.source, args.target, tuple(args.patterns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
