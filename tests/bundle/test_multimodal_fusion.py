"""The bundle's unit test in the MONAI model zoo's form (``ci/unit_tests/test_<bundle>.py``): ``ConfigWorkflow``
trains, evaluates and infers with overrides, and ``check_properties`` finds every train/infer property; plus
the zoo's layout rules for the bundle's JSON files and its key metric."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from fire.parser import DefaultParseValue

from .conftest import BUNDLE, TINY

CONFIGS = BUNDLE / "configs"
#: The train config's tiny overrides (``--key value`` pairs of :data:`TINY`) as ConfigWorkflow keyword arguments.
OVERRIDE: dict[str, Any] = {TINY[i][2:]: DefaultParseValue(TINY[i + 1]) for i in range(0, len(TINY), 2)}


@pytest.fixture
def bundle_root(tmp_path: Path) -> Iterator[Path]:
    """A copy of the bundle's configs (so no run touches the shipped ``models/``); restores ``sys.excepthook``,
    which the configs' ``initialize`` replaces."""
    import shutil

    root = tmp_path / "multimodal_fusion"
    shutil.copytree(CONFIGS, root / "configs")
    hook = sys.excepthook
    yield root
    sys.excepthook = hook


def _workflow(bundle_root: Path, workflow: str, config_file: Any, **override: Any) -> Any:
    from monai.bundle import ConfigWorkflow

    return ConfigWorkflow(
        workflow_type=workflow,
        config_file=config_file,
        logging_file=str(bundle_root / "configs" / "logging.conf"),
        meta_file=str(bundle_root / "configs" / "metadata.json"),
        bundle_root=str(bundle_root),
        **override,
    )


def test_train_eval_config(bundle_root: Path, demo_root: Path) -> None:
    train_file = str(bundle_root / "configs" / "train.json")
    # written_loss: the chroma rides from the preprocessing through the batch into the loss (False elsewhere)
    trainer = _workflow(
        bundle_root, "train", train_file, dataset_dir=str(demo_root), epochs=1, written_loss=True, **OVERRIDE
    )
    trainer.initialize()
    assert trainer.check_properties() == []
    assert trainer.parser.get_parsed_content("loss").written
    trainer.run()
    trainer.finalize()
    assert trainer.trainer.state.epoch == 1 and (bundle_root / "models" / "model.pt").is_file()

    eval_file = str(bundle_root / "configs" / "evaluate.json")
    net = {k: v for k, v in OVERRIDE.items() if k.startswith("network_def")}
    validator = _workflow(
        bundle_root, "eval", [train_file, eval_file], dataset_dir=str(demo_root), max_val_pairs=2, num_workers=0, **net
    )
    validator.initialize()
    validator.run()
    validator.finalize()
    assert validator.parser.get_parsed_content("validate#evaluator").state.key_metric_name == "SSIM"
    assert (bundle_root / "eval" / "metrics.csv").is_file()


def test_infer_config(bundle_root: Path, demo_root: Path) -> None:
    net = {k: v for k, v in OVERRIDE.items() if k.startswith("network_def")}
    inferrer = _workflow(
        bundle_root,
        "infer",
        str(bundle_root / "configs" / "inference.json"),
        input_dir=str(demo_root),
        max_pairs=1,
        register=False,
        **{"handlers#0#_disabled_": True},  # the zoo's form: no weights loaded
        **net,
    )
    inferrer.initialize()
    assert inferrer.check_properties() == []
    inferrer.run()
    inferrer.finalize()
    assert len(list((bundle_root / "eval" / "fused" / "PET-MRI").glob("*.png"))) == 1


def test_the_key_metric_is_validate_key_metric_used_as_key_val_metric() -> None:
    """The zoo's convention (MONAI's ``val_key_metric`` property): ``validate#key_metric`` is the metric object
    and the evaluator's ``key_val_metric`` refers to it; the root ``key_metric`` is only its name."""
    train = json.loads((CONFIGS / "train.json").read_text(encoding="utf-8"))
    assert train["validate"]["evaluator"]["key_val_metric"] == "@validate#key_metric"
    assert "@key_metric" in train["validate"]["key_metric"]
    assert "key_metric" not in train["validate"]["evaluator"]


@pytest.mark.parametrize("path", sorted(p.name for p in CONFIGS.glob("*.json")))
def test_configs_are_in_the_layout_the_zoo_formatter_leaves_unchanged(path: str) -> None:
    """The zoo's ``pretty-format-json --autofix --no-sort-keys --indent=4`` hook would rewrite any other layout."""
    text = (CONFIGS / path).read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=4, ensure_ascii=True) + "\n", (
        f"{path}: reformat with json.dumps(..., indent=4) and a final newline"
    )
