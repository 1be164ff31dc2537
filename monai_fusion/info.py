"""What ``monai-fusion info`` reports: versions, the device, the methods and which weight files are present."""

from __future__ import annotations

import sys
from pathlib import Path

from . import __version__

__all__ = ["DEFAULT_BUNDLE", "weights_present", "info"]


#: The bundle beside the package in a source checkout (``bundles/multimodal_fusion``).
DEFAULT_BUNDLE: Path = Path(__file__).resolve().parents[1] / "bundles" / "multimodal_fusion"


def weights_present(bundle: str | Path | None = None) -> list[tuple[str, Path, bool]]:
    """Which network weight files are on this machine, looked up by path only (nothing is imported
    from the bundle, nothing is loaded or downloaded).

    Args:
        bundle: the MONAI bundle folder whose ``models/model.pt`` is checked (default: the checkout's).

    Returns:
        ``(what, path, present)`` for the shipped default model, the shipped poster / MSRPAN / MSDRA networks
        (and the poster's "Only MSE" ablation), the bundle model, the shipped medical feature extractor and
        torchvision's ImageNet VGG files in the torch cache.
    """
    from .fusers.learned import DEFAULT_WEIGHTS, shipped_weights_file
    from .networks.nets.feature_extractor import MEDICAL_FEATURES_FILE
    from .networks.nets.vgg import VGG_ARCHS, torchvision_weights_file

    bundle_dir = Path(bundle) if bundle is not None else DEFAULT_BUNDLE
    rows = [
        ("default model (shipped)", DEFAULT_WEIGHTS),
        *[
            (f"{name} (shipped)", shipped_weights_file(name))
            for name in ("poster", "poster_only_mse", "msrpan", "msdra")
        ],
        ("bundle model", bundle_dir / "models" / "model.pt"),
        ("medical feature extractor", MEDICAL_FEATURES_FILE),
    ]
    rows += [(f"torchvision {arch} (ImageNet)", torchvision_weights_file(arch)) for arch in VGG_ARCHS]
    return [(what, path, path.is_file() and path.stat().st_size > 0) for what, path in rows]


def info(bundle: str | None = None) -> None:
    """Print versions, the device, the registered methods and which weight files are present."""
    import monai
    import torch

    from .fusers import available_fusers

    print(f"monai-fusion {__version__}")
    print(f"monai {monai.__version__}, torch {torch.__version__}, python {sys.version.split()[0]}")
    print(f"device: {'cuda (' + torch.cuda.get_device_name(0) + ')' if torch.cuda.is_available() else 'cpu'}")
    print(f"methods: {', '.join(available_fusers())}")
    print("weights:")
    for what, path, present in weights_present(bundle):
        size = path.stat().st_size if present else 0
        shown = f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB"
        state = f"present ({shown})" if present else "missing"
        print(f"  {what:<32} {state:<22} {path}")
