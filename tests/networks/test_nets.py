"""The three fusion networks: any H/W, both modes, checkpoints, TorchScript and ONNX export."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from monai_fusion.networks import (
    MSDRA,
    MSRPAN,
    TWO_SOURCE_NETWORKS,
    PosterFusionNet,
    count_parameters,
    load_weights_file,
    save_checkpoint,
    split_checkpoint,
)
from monai_fusion.networks.utils import MissingWeightsError, pad_to_multiple
from monai_fusion.utils.errors import FusionInputError

#: Default-size parameter counts (poster includes its learned attention fusion head).
EXPECTED_PARAMS = {"poster": 253_603, "msrpan": 45_442, "msdra": 247_305}


def test_default_parameter_counts() -> None:
    for name, cls in TWO_SOURCE_NETWORKS.items():
        assert count_parameters(cls()) == EXPECTED_PARAMS[name], name


def test_poster_layout_follows_the_poster() -> None:
    net = PosterFusionNet()
    shallow, gated_extractor = net.encoder
    assert isinstance(shallow.body, torch.nn.Conv2d) and shallow.body.kernel_size == (1, 1)
    assert shallow.body.out_channels == 64
    branches = gated_extractor.body[0][0].branches
    assert [b.dilation for b in branches] == [(1, 1), (3, 3), (5, 5)]
    convs = [m for m in net.decoder if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (64, 64, (3, 3)),
        (64, 32, (3, 3)),
        (32, 1, (3, 3)),
    ]
    deeper = PosterFusionNet(channels=32, dilations=(1, 2), depth=2, decoder_channels=(16,))
    assert count_parameters(deeper) < count_parameters(net)
    assert deeper.config["depth"] == 2 and deeper.config["dilations"] == (1, 2)


@pytest.mark.parametrize("name", sorted(TWO_SOURCE_NETWORKS))
@pytest.mark.parametrize("size", [(37, 53), (9, 15)])
def test_any_size_in_both_modes(name: str, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = TWO_SOURCE_NETWORKS[name](channels=8).eval()
    x, y = torch.rand(2, 1, *size), torch.rand(2, 1, *size)
    with torch.no_grad():
        recon, fused = net(x), net(x, y)
    assert recon.shape == fused.shape == (2, 1, *size)
    assert torch.isfinite(fused).all()


def test_padding_is_cropped_back_exactly() -> None:
    """The output at odd size equals the output of the padded input cropped: no shift."""
    torch.manual_seed(0)
    net = MSRPAN(channels=8).eval()
    x = torch.rand(1, 1, 30, 27)
    with torch.no_grad():
        out = net(x)
        ref = net(pad_to_multiple(x, 4))[..., :30, :27]
    assert torch.allclose(out, ref)


def test_fusion_of_identical_inputs_is_reconstruction() -> None:
    torch.manual_seed(0)
    for strategy in ("average", "max", "energy", "l1", "nuclear", "attention"):
        net = PosterFusionNet(channels=8, fusion=strategy).eval()
        x = torch.rand(1, 1, 20, 20)
        with torch.no_grad():
            assert torch.allclose(net(x, x), net(x), atol=1e-5), strategy


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = MSDRA(channels=8, depth=1, residual_convs=2).eval()
    path = save_checkpoint(net, tmp_path / "msdra.pt")
    state, config = split_checkpoint(load_weights_file(path))
    assert config == net.config
    clone = MSDRA(**config).eval()
    clone.load_state_dict(state)
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(clone(x, x * 0.5), net(x, x * 0.5))
    half = save_checkpoint(net, tmp_path / "half.pt", half=True)
    assert half.stat().st_size < path.stat().st_size * 0.75
    clone.load_state_dict(split_checkpoint(load_weights_file(half))[0])  # float16 values cast back to float32
    assert clone.encoder[0].weight.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(clone(x), net(x), atol=1e-2)


def test_weights_loading_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="not found"):
        load_weights_file(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(FusionInputError, match="weights-only"):
        load_weights_file(bad)
    with pytest.raises(FusionInputError, match="state dict"):
        split_checkpoint({"state_dict": {"w": "text"}})


@pytest.mark.parametrize("name", sorted(TWO_SOURCE_NETWORKS))
def test_torchscript_matches_eager(name: str, small_configs: dict) -> None:
    torch.manual_seed(0)
    net = TWO_SOURCE_NETWORKS[name](**small_configs[name]).eval()
    x, y = torch.rand(1, 1, 36, 44), torch.rand(1, 1, 36, 44)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated in favour of export
        scripted = torch.jit.script(net)
    with torch.no_grad():
        assert torch.allclose(scripted(x, y), net(x, y), atol=1e-5)
        assert torch.allclose(scripted(x), net(x), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TWO_SOURCE_NETWORKS))
def test_onnx_export_matches_eager(name: str, small_configs: dict, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    net = TWO_SOURCE_NETWORKS[name](**small_configs[name]).eval()
    if name == "poster":
        net.set_strategy("attention")  # the nuclear-norm rule needs an SVD, which ONNX lacks
    x, y = torch.rand(1, 1, 36, 44), torch.rand(1, 1, 36, 44)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x, y), dynamo=True).save(str(tmp_path / f"{name}.onnx"))
    session = ort.InferenceSession(str(tmp_path / f"{name}.onnx"))
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), (x, y))}
    out = session.run(None, feeds)[0]
    with torch.no_grad():
        ref = net(x, y).numpy()
    assert out.shape == (1, 1, 36, 44)
    assert abs(out - ref).max() < 1e-4
