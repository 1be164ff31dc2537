"""The autoencoder recipe's engines: every source image a sample, the lowest validation loss the best."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events

from monai_fusion.engines import (
    PrepareReconstructionBatch,
    create_reconstruction_evaluator,
    create_reconstruction_trainer,
    lower_is_better,
)
from monai_fusion.losses import FusionLoss
from monai_fusion.networks.nets.msrpan import MSRPAN
from monai_fusion.utils.errors import FusionInputError


def test_every_source_image_is_a_sample_of_its_own() -> None:
    mri = torch.arange(2 * 16, dtype=torch.float32).reshape(2, 1, 4, 4)
    other = -mri
    x, y = PrepareReconstructionBatch()({"mri": mri, "other": other})
    assert x.shape == (4, 1, 4, 4) and y is x
    assert torch.equal(x[:2], mri) and torch.equal(x[2:], other)  # MRIs first, then the other sources


def test_a_missing_source_is_named() -> None:
    with pytest.raises(FusionInputError, match="'other'"):
        PrepareReconstructionBatch()({"mri": torch.zeros(1, 1, 4, 4)})


def test_lower_is_better_treats_the_start_value_as_none_yet() -> None:
    assert lower_is_better(0.5, -1.0)  # MONAI starts best_metric at -1
    assert lower_is_better(0.1, 0.2) and not lower_is_better(0.3, 0.2)


def _loader(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        {"mri": torch.rand(2, 1, 16, 16, generator=g), "other": torch.rand(2, 1, 16, 16, generator=g)} for _ in range(n)
    ]


def test_training_changes_the_weights_and_the_best_validation_loss_is_the_minimum() -> None:
    torch.manual_seed(0)
    net = MSRPAN(channels=4, decoder_channels=(4,))
    loss = FusionLoss(lambda_grad=0.2, lambda_perc=0.0, lambda_ssim=0.5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    evaluator = create_reconstruction_evaluator("cpu", _loader(2, 1), net, loss)
    seen: list[float] = []
    evaluator.add_event_handler(Events.COMPLETED, lambda e: seen.append(float(e.state.metrics["val_loss"])))
    trainer = create_reconstruction_trainer(
        "cpu", 4, _loader(3, 0), net, torch.optim.Adam(net.parameters(), 1e-2), loss
    )
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run(e.state.epoch))  # as ValidationHandler
    trainer.run()
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert len(seen) == 4 and {"train_loss", "train_mse", "train_ssim"} <= set(trainer.state.metrics)
    assert evaluator.state.best_metric == pytest.approx(min(seen))
    assert evaluator.state.best_metric_epoch == 1 + seen.index(min(seen))
    assert "val_mse" in evaluator.state.metrics
