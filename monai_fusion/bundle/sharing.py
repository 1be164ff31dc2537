"""Sharing the bundle: the packages a user installs for it, and the single zip file a user downloads.

MONAI's bundle tools read and verify a bundle (``verify_metadata``, ``download --url``, ``ckpt_export``) but do
not write the zip that ``python -m monai.bundle download`` unpacks, nor turn ``metadata.json`` into a pip
requirement list (the model zoo's CI has its own script for that). These two helpers do only that:

- :func:`bundle_requirements`: ``monai``, ``torch``, ``numpy`` and every ``required_packages_version`` entry
  of the metadata as ``name==version`` lines, the list the zoo's CI (and ``make share-env``) installs;
- :func:`pack_bundle`: the bundle folder as ``<name>.zip`` holding ``<name>/...``, the layout ``download``
  extracts: configs, docs, licence and the shipped weights, never what runs wrote (``eval/``, ``runs/``,
  checkpoints); it refuses a bundle whose shipped weights no longer match their checksums in the metadata;
- :func:`write_large_files`: the zoo's ``large_files.yml`` for a copy that keeps the weights out of git (each
  shipped file's path, its download URL under a base the user hosts, and its sha256 from the metadata), which
  ``python -m monai.bundle download_large_files`` reads to fetch and check them.

Run ``python -m monai_fusion.bundle.sharing requirements META``, ``... pack BUNDLE_DIR OUT.zip`` or
``... large-files BUNDLE_DIR URL_BASE``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

from .weights import sha256_file, shipped_weights

__all__ = ["bundle_requirements", "bundle_files", "pack_bundle", "write_large_files", "main"]

#: Top-level folders a run writes into the bundle; never shared.
RUN_OUTPUTS = ("eval", "runs")
#: Files of ``models/`` that are shared besides the metadata's ``shipped_weights``.
MODEL_DOCS = ("README.md",)


def bundle_requirements(meta_file: str | os.PathLike) -> list[str]:
    """``name==version`` for ``monai``, ``torch``, ``numpy`` and each ``required_packages_version`` entry.

    Args:
        meta_file: the bundle's ``configs/metadata.json``.

    Returns:
        pip requirement lines, in the metadata's order after the three framework pins.
    """
    path = Path(meta_file)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the bundle metadata ({err})") from err
    pins = {"monai": "monai_version", "torch": "pytorch_version", "numpy": "numpy_version"}
    missing = [key for key in pins.values() if not meta.get(key)]
    if missing or not isinstance(meta.get("required_packages_version", {}), dict):
        raise ValueError(f"{path}: expected {', '.join(pins.values())} and a required_packages_version object")
    out = [f"{name}=={meta[key]}" for name, key in pins.items()]
    return out + [f"{name}=={version}" for name, version in meta.get("required_packages_version", {}).items()]


def bundle_files(bundle_dir: str | os.PathLike) -> list[str]:
    """The files a shared copy of the bundle holds, relative to ``bundle_dir`` (POSIX separators, sorted).

    Everything under the bundle folder except run outputs (``eval/``, ``runs/``), caches and the ``models/``
    files that are neither shipped weights (the metadata's ``shipped_weights``) nor ``models/README.md``.
    """
    root = Path(bundle_dir)
    shipped = set(shipped_weights(root))
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        top = rel.split("/", 1)[0]
        if not path.is_file() or top in RUN_OUTPUTS or "__pycache__" in rel or path.name.startswith("."):
            continue
        if top == "models" and rel not in shipped and path.name not in MODEL_DOCS:
            continue
        out.append(rel)
    return out


def pack_bundle(
    bundle_dir: str | os.PathLike, zip_path: str | os.PathLike, overwrite: bool = False, name: str | None = None
) -> Path:
    """Write the bundle as the zip that ``python -m monai.bundle download --url ...`` unpacks.

    Args:
        bundle_dir: the bundle folder (holding ``configs/metadata.json``).
        zip_path: the zip to write (written to a temporary file first, then moved into place).
        overwrite: replace an existing ``zip_path``.
        name: the bundle's name in the zip (its top folder, the ``--name`` of ``download``); default the
            folder's name. A copy for the model zoo can take the zoo's ``<target>_<modality>_<task>`` form
            (``brain_mri_ct_pet_spect_fusion``) while the repository keeps ``multimodal_fusion``: the configs
            find everything relative to ``bundle_root``, so the name is only the folder's.

    Returns:
        ``zip_path``.

    Raises:
        ValueError: no metadata, a shipped weights file missing or changed (its sha256 differs from the
            metadata's), ``name`` not of letters, digits and underscores, or ``zip_path`` exists and
            ``overwrite`` is false.
    """
    root = Path(bundle_dir).resolve()
    top = root.name if name is None else name
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", top):
        raise ValueError(f"bundle name {top!r}: expected letters, digits and underscores, starting with a letter")
    if not (root / "configs" / "metadata.json").is_file():
        raise ValueError(f"{root}: not a bundle folder (no configs/metadata.json)")
    for rel, digest in shipped_weights(root).items():
        path = root / rel
        if not path.is_file():
            raise ValueError(f"{path}: listed in shipped_weights of configs/metadata.json but missing")
        if sha256_file(path) != digest:
            raise ValueError(
                f"{path}: sha256 differs from shipped_weights in configs/metadata.json ({digest[:12]}...); "
                "restore the shipped file (git checkout -- " + rel + ") or update the metadata for new weights"
            )
    out = Path(zip_path)
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name, suffix=".part", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for rel in bundle_files(root):
                zf.write(root / rel, f"{top}/{rel}")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def write_large_files(bundle_dir: str | os.PathLike, url_base: str) -> Path:
    """Write ``<bundle_dir>/large_files.yml`` listing the shipped weights under ``url_base``.

    Args:
        bundle_dir: the bundle folder; its metadata's ``shipped_weights`` are the files listed.
        url_base: where the files are hosted; ``<url_base>/<file name>`` is each file's URL.

    Returns:
        The path written (atomically; an existing file is replaced, it is derived from the metadata).
    """
    root = Path(bundle_dir)
    listed = shipped_weights(root)
    if not listed:
        raise ValueError(f"{root / 'configs' / 'metadata.json'}: lists no shipped_weights to write large files for")
    lines = ["large_files:"]
    for rel, digest in listed.items():
        url = f"{url_base.rstrip('/')}/{Path(rel).name}"
        lines += [f'  - path: "{rel}"', f'    url: "{url}"', f'    hash_val: "{digest}"', '    hash_type: "sha256"']
    out = root / "large_files.yml"
    tmp = out.with_name(out.name + ".part")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``requirements META`` prints the pip lines; ``pack BUNDLE_DIR OUT.zip [--overwrite]`` writes the zip."""
    parser = argparse.ArgumentParser(prog="python -m monai_fusion.bundle.sharing", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    req = sub.add_parser("requirements", help="print the bundle's pip requirements, one a line")
    req.add_argument("meta_file")
    pack = sub.add_parser("pack", help="write the bundle as the zip that monai.bundle download unpacks")
    pack.add_argument("bundle_dir")
    pack.add_argument("zip_path")
    pack.add_argument("--overwrite", action="store_true")
    pack.add_argument("--name", help="the bundle's name in the zip (default: the folder's)")
    large = sub.add_parser("large-files", help="write large_files.yml for the shipped weights hosted at URL_BASE")
    large.add_argument("bundle_dir")
    large.add_argument("url_base")
    args = parser.parse_args(argv)
    try:
        if args.command == "requirements":
            print("\n".join(bundle_requirements(args.meta_file)))
        elif args.command == "large-files":
            print(write_large_files(args.bundle_dir, args.url_base))
        else:
            out = pack_bundle(args.bundle_dir, args.zip_path, overwrite=args.overwrite, name=args.name)
            name = args.name or Path(args.bundle_dir).resolve().name
            print(f"{out}: {len(bundle_files(args.bundle_dir))} files of {name}, sha256 {sha256_file(out)}")
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
