"""Train the small medical feature extractor used by the default perceptual loss, on the CPU.

Recipe: the training split of the shared pairs (``split_by_case``, seed 0, ``val_fraction`` 0.2),
every MRI and every CT / PET-luminance / SPECT-luminance slice (BT.601 ``Y``), random crops. The
:class:`MedicalFeatureExtractor` is the encoder of a denoising autoencoder without skip
connections (input: the crop with Gaussian noise and masked-out patches; target: the clean crop)
and also feeds a linear modality classifier (MRI / CT / PET / SPECT) on its deepest features, so
its maps keep both structure and modality-specific contrast. Only the encoder is saved.

Run: ``python -m monai_fusion.networks.train_feature_extractor [--root DATA] [--out FILE]``
(defaults: ``$MONAI_FUSION_HARVARD`` for the data, and the shipped ``networks/weights/medical_features.pt``).
A few CPU minutes with the defaults; the run's figures (steps, time, validation modality accuracy) are stored
under the checkpoint's ``meta`` key.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.datalist import find_pairs, split_by_case
from ..data.io import read_image
from ..utils.constants import MODALITIES
from ..utils.errors import FusionInputError
from ..utils.kernels import BT601_Y
from ..utils.paths import DATASET_ROOT_ENV, dataset_root
from .nets.feature_extractor import MEDICAL_FEATURES_FILE, MedicalFeatureExtractor
from .utils import save_checkpoint

__all__ = ["default_data_root", "load_grey", "load_grey_pairs", "random_crops", "train_feature_extractor", "main"]

logger = logging.getLogger(__name__)


def default_data_root() -> Path:
    """The shared pairs' root: ``$MONAI_FUSION_HARVARD`` (:func:`~monai_fusion.utils.paths.dataset_root`).

    Raises:
        FusionInputError: when it is not set (pass ``--root`` instead).
    """
    root = dataset_root()
    if root is None:
        raise FusionInputError(
            f"no dataset root: pass --root <folder with CT-MRI/, PET-MRI/, SPECT-MRI/> or set {DATASET_ROOT_ENV}"
        )
    return root


def load_grey(path: str | os.PathLike, modality: str) -> np.ndarray:
    """Read a slice as a ``(1, H, W)`` float32 grey image in [0, 1] (RGB -> BT.601 luminance).

    Args:
        path: the image file.
        modality: ``MRI``, ``CT``, ``PET`` or ``SPECT``.

    Returns:
        The grey image scaled by the file's value range.
    """
    img = read_image(path, modality)
    arr = img.array
    if arr.shape[0] == 3:  # the same full-range BT.601 Y as transforms.colour (not imported: layer-peer)
        arr = np.tensordot(np.asarray(BT601_Y, dtype=np.float32), arr, axes=1)[None]
    vmax = img.meta.get("value_max", 255.0)
    scale = float(vmax) if np.isfinite(vmax) and vmax > 0 else float(max(arr.max(), 1e-6))
    return np.clip(arr / scale, 0.0, 1.0).astype(np.float32)


def load_grey_pairs(items: Sequence[dict[str, str]]) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Load datalist items (from ``find_pairs``) as ``(mri, other, modality)`` grey images in [0, 1]."""
    return [(load_grey(it["mri"], "MRI"), load_grey(it["other"], it["modality"]), it["modality"]) for it in items]


def random_crops(images: Sequence[np.ndarray], size: int, generator: torch.Generator) -> torch.Tensor:
    """One random ``size x size`` crop of each ``(C, H, W)`` image, in order.

    Stack a pair as two channels to crop both at the same place.

    Args:
        images: source images of one channel count (all at least ``size`` on each side).
        size: crop side.
        generator: seeded torch generator (reproducible crops).

    Returns:
        ``(len(images), C, size, size)`` float tensor.
    """
    out = torch.empty(len(images), images[0].shape[0], size, size)
    for i, img in enumerate(images):
        h, w = img.shape[-2:]
        y = int(torch.randint(h - size + 1, (1,), generator=generator))
        x = int(torch.randint(w - size + 1, (1,), generator=generator))
        out[i] = torch.from_numpy(img[:, y : y + size, x : x + size])
    return out


class _Trainer(nn.Module):
    """Extractor + decoder (no skips) + modality classifier; only the extractor is kept."""

    def __init__(self, channels: Sequence[int], n_classes: int) -> None:
        super().__init__()
        self.encoder = MedicalFeatureExtractor(1, channels)
        layers: list[nn.Module] = []
        widths = list(channels)[::-1]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(widths[-1], 1, 3, padding=1))
        self.decoder = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels[-1], n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        deep = self.encoder(x)[-1]
        return self.decoder(deep), self.classifier(deep.mean(dim=(2, 3)))


def _corrupt(
    x: torch.Tensor, generator: torch.Generator, noise: float = 0.05, patch: int = 8, drop: float = 0.25
) -> torch.Tensor:
    b, _, h, w = x.shape
    keep = (torch.rand(b, 1, h // patch, w // patch, generator=generator) > drop).float()
    keep = F.interpolate(keep, size=(h, w), mode="nearest")
    return (x * keep + noise * torch.randn(x.shape, generator=generator)).clamp(0, 1)


def _pool(pairs: Sequence[tuple[np.ndarray, np.ndarray, str]]) -> tuple[list[np.ndarray], list[int]]:
    images, labels = [], []
    for mri, other, modality in pairs:
        images += [mri, other]
        labels += [MODALITIES.index("MRI"), MODALITIES.index(modality)]
    return images, labels


def _evaluate(
    model: _Trainer, images: Sequence[np.ndarray], labels: Sequence[int], size: int, generator: torch.Generator
) -> dict[str, float]:
    model.eval()
    mse, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(images), 32):
            batch = torch.stack([torch.from_numpy(img) for img in images[start : start + 32]])
            top = (batch.shape[-1] - size) // 2
            batch = batch[..., top : top + size, top : top + size]
            recon, logits = model(_corrupt(batch, generator))
            mse += float(F.mse_loss(recon, batch, reduction="sum")) / batch[0].numel()
            correct += int((logits.argmax(1) == torch.tensor(labels[start : start + 32])).sum())
    model.train()
    return {"val_mse": mse / len(images), "val_accuracy": correct / len(images)}


def train_feature_extractor(
    root: str | os.PathLike,
    out: str | os.PathLike | None = None,
    steps: int = 500,
    batch_size: int = 16,
    crop: int = 64,
    channels: Sequence[int] = (16, 32, 64),
    lr: float = 2e-3,
    seed: int = 0,
    val_fraction: float = 0.2,
    class_weight: float = 0.5,
    log_every: int = 100,
) -> dict[str, Any]:
    """Train the extractor (see the module docstring) and save it with its training figures.

    Args:
        root: the shared pairs (``<root>/<PAIR>/<MODALITY>/*.png``).
        out: output checkpoint (default: the shipped file); ``None`` keeps the default.
        steps: optimisation steps.
        batch_size: crops per step.
        crop: crop side (divisible by ``2 ** (len(channels) - 1)``).
        channels: stage widths of the extractor.
        lr: Adam learning rate (cosine-decayed to zero).
        seed: seeds crops, noise and initialisation.
        val_fraction: held-out fraction of cases per pair type.
        class_weight: weight of the modality cross-entropy next to the reconstruction MSE.
        log_every: log the running losses every this many steps.

    Returns:
        The training figures saved in the file's ``meta`` (losses, validation, time, sizes).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    train_items, val_items = split_by_case(find_pairs(root).items, val_fraction=val_fraction, seed=seed)
    t0 = time.perf_counter()
    train_images, train_labels = _pool(load_grey_pairs(train_items))
    val_images, val_labels = _pool(load_grey_pairs(val_items))
    load_s = time.perf_counter() - t0
    model = _Trainer(channels, len(MODALITIES))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    labels_t = torch.tensor(train_labels)
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    running = {"mse": 0.0, "ce": 0.0}
    t1 = time.perf_counter()
    for step in range(1, steps + 1):
        idx = torch.randint(len(train_images), (batch_size,), generator=gen)
        clean = random_crops([train_images[int(i)] for i in idx], crop, gen)
        recon, logits = model(_corrupt(clean, gen))
        mse = F.mse_loss(recon, clean)
        ce = F.cross_entropy(logits, labels_t[idx])
        loss = mse + class_weight * ce
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running["mse"] += mse.item()
        running["ce"] += ce.item()
        if step == 1:
            first = {"mse": mse.item(), "ce": ce.item()}
        if step % log_every == 0 or step == steps:
            n = log_every if step % log_every == 0 else step % log_every
            logger.info("step %d/%d  mse %.5f  ce %.4f", step, steps, running["mse"] / n, running["ce"] / n)
            last = {k: v / n for k, v in running.items()}
            running = {"mse": 0.0, "ce": 0.0}
    train_s = time.perf_counter() - t1
    meta: dict[str, Any] = {
        "recipe": "denoising AE (noise 0.05, 25% 8x8 patches masked) + modality classifier",
        "train_pairs": len(train_items),
        "val_pairs": len(val_items),
        "train_images": len(train_images),
        "steps": steps,
        "batch_size": batch_size,
        "class_weight": class_weight,
        "crop": crop,
        "lr": lr,
        "seed": seed,
        "first_mse": first["mse"],
        "first_ce": first["ce"],
        "last_mse": last["mse"],
        "last_ce": last["ce"],
        "load_seconds": round(load_s, 1),
        "train_seconds": round(train_s, 1),
        "torch": str(torch.__version__),
    }
    meta.update(_evaluate(model, val_images, val_labels, crop * 2, gen))
    target = Path(out) if out is not None else MEDICAL_FEATURES_FILE
    save_checkpoint(model.encoder, target, half=False)
    payload = torch.load(target, map_location="cpu", weights_only=True)
    payload["meta"] = meta
    tmp = target.with_name(f".{target.name}.meta{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, target)  # atomic: a killed run keeps the checkpoint save_checkpoint wrote
    logger.info("saved %s: %s", target, meta)
    return meta


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=None, help="pairs root (default: $MONAI_FUSION_HARVARD)")
    ap.add_argument("--out", default=str(MEDICAL_FEATURES_FILE), help="output checkpoint")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--class-weight", type=float, default=0.5, help="weight of the modality cross-entropy")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = train_feature_extractor(
        args.root or default_data_root(),
        args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        crop=args.crop,
        lr=args.lr,
        seed=args.seed,
        class_weight=args.class_weight,
    )
    print(meta)
    return meta


if __name__ == "__main__":
    main()
