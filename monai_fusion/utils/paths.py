"""Output paths built from untrusted names (input file names, datalist entries, DICOM tags), and the dataset root.

A name is data, never a path: :func:`safe_filename` turns it into one harmless path component and
:func:`output_path` joins such components under the chosen output folder, so nothing is ever written
outside it (no ``../``, no absolute paths, no separators smuggled in a name).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import FusionInputError

__all__ = ["safe_filename", "output_path", "DATASET_ROOT_ENV", "dataset_root"]

#: The one environment variable that names a dataset root in the Whole Brain Atlas layout.
DATASET_ROOT_ENV: str = "MONAI_FUSION_HARVARD"

#: Characters replaced in a path component: separators, NUL and other control characters.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")
#: Longest component kept (most file systems allow 255 bytes; room is left for a suffix).
MAX_NAME_CHARS: int = 200


def safe_filename(name: str) -> str:
    """One path component from an untrusted name.

    Separators (``/``, ``\\``) and control characters become ``_``; ``""``, ``"."`` and ``".."`` become
    ``"_"``; the result is cut to :data:`MAX_NAME_CHARS`. Everything else (spaces, unicode, ``$``, ``@``,
    ``%``) is kept as it is: names are never evaluated.

    Args:
        name: e.g. a file stem or a DICOM tag value.

    Returns:
        A name that stays inside the folder it is joined to.
    """
    out = _UNSAFE.sub("_", str(name))[:MAX_NAME_CHARS]
    return "_" if out in ("", ".", "..") else out


def output_path(root: str | os.PathLike, *parts: str) -> Path:
    """``root / part / ...`` with every part passed through :func:`safe_filename`.

    Args:
        root: the chosen output folder.
        parts: untrusted path components (e.g. the pair type and the file name).

    Returns:
        The path, lexically inside ``root``.

    Raises:
        FusionInputError: no parts, or (defensively) a result outside ``root``.
    """
    if not parts:
        raise FusionInputError(f"output_path: no file name given under {root}")
    base = Path(root)
    path = base.joinpath(*(safe_filename(p) for p in parts))
    inside = os.path.normpath(path)
    if os.path.commonpath([os.path.normpath(base), inside]) != os.path.normpath(base):
        raise FusionInputError(f"output {path} would lie outside the output folder {base}")
    return path


def dataset_root(path: str | os.PathLike | None = None) -> Path | None:
    """The dataset root a command uses: ``path`` when given, else ``$MONAI_FUSION_HARVARD``, else ``None``.

    The library holds no path of a development checkout; callers decide what ``None`` means (the bundle
    falls back to the embedded demo pairs, a training script refuses with a message).

    Args:
        path: an explicit root (an argument or option).

    Returns:
        The root as a ``Path`` (not checked for existence), or ``None`` when neither is set.
    """
    if path is not None and str(path).strip():
        return Path(path).expanduser()
    env = os.environ.get(DATASET_ROOT_ENV, "").strip()
    return Path(env).expanduser() if env else None
