"""PrepareFusionBatch hands the network the other source's modality, and the evaluator fuses with it."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from monai.data import MetaTensor

from monai_fusion.engines import create_fusion_evaluator
from monai_fusion.engines.batch import PrepareFusionBatch
from monai_fusion.networks import WeightMapFusionNet
from monai_fusion.utils import FusionInputError


def _batch(n: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "mri": MetaTensor(torch.rand(n, 1, 24, 24, generator=g)),
        "other": MetaTensor(torch.rand(n, 1, 24, 24, generator=g)),
        "pair_type": ["CT-MRI", "PET-MRI"][:n],
        "modality": ["ct", "PET"][:n],
    }


def test_modality_rides_to_the_network_as_a_keyword() -> None:
    batch = _batch()
    assert len(PrepareFusionBatch()(batch)) == 2  # without modality_key: MONAI's (inputs, targets)
    x, target, args, kwargs = PrepareFusionBatch(modality_key="modality")(batch)
    assert args == () and kwargs == {"modality": ["CT", "PET"]}
    assert target.meta["pair_type"] == ["CT-MRI", "PET-MRI"] and torch.equal(
        x, torch.cat([batch["mri"], batch["other"]], 1)
    )
    with pytest.raises(FusionInputError, match=r"batch\['modality'\] 'PT' is not one of CT, PET, SPECT"):
        PrepareFusionBatch(modality_key="modality")({**batch, "modality": ["CT", "PT"]})
    with pytest.raises(FusionInputError, match="lists 1 names for a batch of 2"):
        PrepareFusionBatch(modality_key="modality")({**batch, "modality": ["CT"]})
    del batch["modality"]
    with pytest.raises(FusionInputError, match="batch has no 'modality' key .*got keys mri, other, pair_type"):
        PrepareFusionBatch(modality_key="modality")(batch)


def test_evaluator_fuses_each_sample_with_its_modalitys_gain() -> None:
    torch.manual_seed(0)
    net = WeightMapFusionNet(channels=4, full_channels=4, detail_gain={"CT": 0.0, "PET": 1.0}).eval()
    batch = _batch()
    seen = []
    evaluator = create_fusion_evaluator("cpu", [batch], net, metrics=None, modality_key="modality")
    evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append(e.state.output))
    evaluator.run()
    pred = torch.stack([torch.as_tensor(item["pred"]) for item in seen[0]])
    x = torch.cat([batch["mri"], batch["other"]], 1).as_tensor()
    with torch.no_grad():
        assert torch.allclose(pred, net(x, modality=["CT", "PET"]), atol=1e-6)
        assert not torch.allclose(pred, net(x, modality=["PET", "CT"]), atol=1e-4)
    with pytest.raises(ValueError, match="pass modality"):  # without modality_key the network is not told
        create_fusion_evaluator("cpu", [batch], net, metrics=None).run()


def test_chroma_rides_in_the_target_only() -> None:
    from monai_fusion.engines import create_fusion_trainer
    from monai_fusion.losses import StructureFusionLoss

    batch = {**_batch(), "other_cb": torch.full((2, 1, 24, 24), 0.4), "other_cr": torch.full((2, 1, 24, 24), 0.6)}
    x, target = PrepareFusionBatch(chroma_keys=("other_cb", "other_cr"))(batch)
    assert x.shape == (2, 2, 24, 24) and target.shape == (2, 4, 24, 24)
    assert torch.equal(target[:, 2:].as_tensor(), torch.cat([batch["other_cb"], batch["other_cr"]], 1))
    assert target.meta["pair_type"] == ["CT-MRI", "PET-MRI"]
    with pytest.raises(FusionInputError, match="batch has no 'other_cb' key"):
        PrepareFusionBatch(chroma_keys=("other_cb", "other_cr"))(_batch())
    with pytest.raises(FusionInputError, match="chroma_keys must name Cb and Cr"):
        PrepareFusionBatch(chroma_keys=("other_cb",))
    net = WeightMapFusionNet(channels=4, full_channels=4)
    with pytest.raises(ValueError, match="chroma_keys or prepare_batch"):
        create_fusion_trainer(
            "cpu", 1, [batch], net, torch.optim.Adam(net.parameters()), StructureFusionLoss(written=True),
            prepare_batch=PrepareFusionBatch(), chroma_keys=("other_cb", "other_cr"),
        )  # fmt: skip
