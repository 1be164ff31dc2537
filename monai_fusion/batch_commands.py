"""``monai-fusion fuse --pairs`` (every pair of a Whole Brain Atlas style folder, all or nothing) and the demo.

Apart from :mod:`monai_fusion.commands` (the two-file path) so each surface module stays one concern.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .commands import build_fuser, fuse_files
from .utils import constants
from .utils.errors import FusionInputError

__all__ = ["fuse_folder", "run_demo"]


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


def run_demo(
    output_dir: str = "demo_output", method: str = constants.DEFAULT_METHOD, overwrite: bool = False
) -> dict[str, Path]:
    """Fuse the embedded MNI152 MRI/PET pair (registered first) and write the fused PNG and an overview.

    Returns:
        ``{"fused": path, "overview": path, "mri": path, "pet": path}``.
    """
    from .data.demo import demo_slice_pair, write_demo_files

    files = write_demo_files()
    out = Path(output_dir)
    fused_p, overview_p = out / "demo_fused.png", out / "demo_overview.png"
    for p in (fused_p, overview_p):
        if p.exists() and not overwrite:
            raise FusionInputError(f"{p} exists; pass --overwrite to replace it")
    mis = demo_slice_pair()["misalignment"]
    print(  # before the fusion, whose registration line (on stderr) says what moved
        f"embedded pair: {files['mri_png']} + {files['pet_png']} (PET misaligned on purpose: rotated "
        f"{mis['rotation_deg'][0]:g} deg, shifted {mis['translation_mm']} px; registered first)",
        flush=True,
    )
    res = fuse_files(
        str(files["mri_png"]),
        str(files["pet_png"]),
        str(fused_p),
        method=method,
        modality="pet",
        register=True,
        overwrite=overwrite,
        overview=str(overview_p),
    )
    t = res["timings"]
    print(f"fused with '{method}' in {t['fuse_s'] * 1000:.0f} ms (preprocess {t['preprocess_s']:.2f} s)")
    print(f"fused image: {fused_p.resolve()}")
    print(f"overview:    {overview_p.resolve()}")
    return {"fused": fused_p, "overview": overview_p, "mri": files["mri_png"], "pet": files["pet_png"]}
