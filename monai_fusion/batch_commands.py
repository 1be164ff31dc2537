"""``monai-fusion fuse --pairs``: every pair of a Whole Brain Atlas style folder, all or nothing.

Apart from :mod:`monai_fusion.commands` (the two-file path) so each surface module stays one concern.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .commands import build_fuser
from .utils import constants
from .utils.errors import FusionInputError

__all__ = ["fuse_folder"]


def fuse_folder(
    pairs: str,
    out: str,
    method: str = constants.DEFAULT_METHOD,
    pair_types: Sequence[str] | None = None,
    register: bool = False,
    overwrite: bool = False,
    device: str = "cpu",
    limit: int | None = None,
    progress: bool = True,
    weights: str | None = None,
    random_weights: bool = False,
) -> list[Path]:
    """Fuse every matched pair of a Whole Brain Atlas style folder into ``<out>/<PAIR>/<name>.png``.

    Args:
        pairs: dataset root (``<root>/<PAIR>/<MODALITY>/<name>.png``).
        out: output folder; must not be inside ``pairs``.
        method: a registered fusion method name.
        pair_types: pair types to fuse (default: all present).
        register: register each pair first (off by default: atlas pairs are co-registered).
        overwrite: replace existing outputs.
        device: ``cpu`` or ``cuda``.
        limit: fuse at most this many pairs (in datalist order), for quick looks.
        progress: show a progress bar over the pairs (on stderr).
        weights: the method's weights file (see :func:`build_fuser`).
        random_weights: run a network method without weights (timing only).

    Returns:
        The written paths. All or nothing: the images are fused into a hidden staging folder beside ``out``
        and moved into place when every pair is done, so a bad pair or a killed run leaves no output file.
    """
    import os
    import shutil
    import tempfile

    from tqdm import tqdm

    from .data.datalist import find_pairs
    from .data.io import write_png
    from .engines.inference import fuse_sample
    from .transforms.presets import fusion_preprocess
    from .utils.paths import output_path, safe_filename

    root, outp = Path(pairs).resolve(), Path(out).resolve()
    if outp == root or root in outp.parents:
        raise FusionInputError(f"output folder {outp} is inside the input folder {root}; choose another")
    items = find_pairs(root, pair_types).items[:limit]
    targets = [output_path(outp, it["pair_type"], safe_filename(it["name"]) + ".png") for it in items]
    clashes = [t for t in targets if t.exists()]
    if clashes and not overwrite:
        raise FusionInputError(
            f"{len(clashes)} outputs exist already (e.g. {clashes[0]}); pass --overwrite to replace them"
        )
    fuser = build_fuser(method, weights, random_weights)
    pre = fusion_preprocess(register=register)
    # all or nothing: fuse into a hidden staging folder beside the output, move the files into place only when
    # every pair is done; a bad pair or a killed run leaves no output file (only the hidden .part folder if killed)
    outp.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{outp.name}.part", dir=outp.parent))
    try:
        staged = []
        for it, target in tqdm(list(zip(items, targets)), desc=f"fusing ({method})", unit="pair", disable=not progress):
            result = fuse_sample(pre(it), fuser, device=device)
            staged.append(write_png(np.asarray(result["fused"]), stage / target.relative_to(outp)))
        written = []
        for src, target in zip(staged, targets):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, target)
            written.append(target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return written
