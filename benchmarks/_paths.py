"""The dataset root of the benchmark scripts: the one place their development default lives.

The library reads only an argument or ``$MONAI_FUSION_HARVARD`` (:func:`monai_fusion.utils.paths.dataset_root`);
the benchmarks, run from a development checkout, fall back to the shared pairs beside it.
"""

from __future__ import annotations

from pathlib import Path

from monai_fusion.utils.paths import dataset_root

__all__ = ["DEVELOPMENT_ROOT", "data_root"]

#: The shared Whole Brain Atlas pairs beside the development checkout (``<repo>/../shared/data/harvard``).
DEVELOPMENT_ROOT: Path = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "harvard"


def data_root() -> str:
    """``$MONAI_FUSION_HARVARD`` when set, else :data:`DEVELOPMENT_ROOT`."""
    return str(dataset_root() or DEVELOPMENT_ROOT)
