"""Bad input to ``python -m monai.bundle run``: one ``error:`` line naming the problem, no traceback.

One case runs the real command; the others run ``monai.bundle``'s ``run`` in this process with the same
command line in ``sys.argv`` (what ``python -m monai.bundle`` sees) and check the message that the
configs' error hook prints: the first ``FusionInputError`` of the exception chain.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Iterator

import pytest
from fire.parser import DefaultParseValue
from monai.bundle.scripts import run

from monai_fusion.bundle import install_input_error_hook, parse_bundle_argv
from monai_fusion.utils import find_input_error
from monai_fusion.utils.errors import FusionInputError

from .conftest import BUNDLE, NET, TINY, run_bundle

TRAIN = BUNDLE / "configs" / "train.json"
MAIN = str(Path(sys.modules["monai.bundle"].__file__).parent / "__main__.py")


@pytest.fixture
def keep_excepthook() -> Iterator[None]:
    """The configs install the error hook in the process that runs them: restore pytest's afterwards."""
    before = sys.excepthook
    yield
    sys.excepthook = before


def _message(args: list, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run ``python -m monai.bundle run <args>`` in-process; return the error the hook would print."""
    argv = [MAIN, "run", *map(str, args)]
    monkeypatch.setattr(sys, "argv", argv)
    cmd = parse_bundle_argv(argv)
    assert cmd is not None
    kwargs = {k: DefaultParseValue(v) for k, v in cmd["overrides"].items()}
    with pytest.raises(Exception) as info:
        run(**cmd["params"], logging_file=False, **kwargs)
    found = find_input_error(info.value)
    assert found is not None, info.value
    return str(found)


def test_wrong_dataset_dir_prints_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder"
    proc = run_bundle(["run", "training", "--config_file", TRAIN, "--bundle_root", tmp_path, "--dataset_dir", missing])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: dataset_dir: dataset root {missing} does not exist or is not a folder; "
        "expected <root>/<PAIR>/<MODALITY>/*.png"
    )
    assert not (tmp_path / "models").exists()


def test_patches_too_small_for_the_loss(
    tmp_path: Path, demo_root: Path, monkeypatch: pytest.MonkeyPatch, keep_excepthook: None
) -> None:
    """The VIF term of StructureFusionLoss needs 41x41 pixels: smaller patches end in one line, not a traceback."""
    msg = _message(
        [
            "training",
            "--config_file",
            TRAIN,
            "--bundle_root",
            tmp_path,
            "--dataset_dir",
            demo_root,
            *TINY,
            "--patch_size",
            "[32, 32]",
            "--epochs",
            "1",
        ],
        monkeypatch,
    )
    assert msg == (
        "StructureFusionLoss: the VIF term (4 scales) needs images of at least 41x41 pixels, got (32, 32); "
        "use larger patches or w_vif=0"
    )


def test_empty_pair_folder(
    tmp_path: Path, demo_root: Path, monkeypatch: pytest.MonkeyPatch, keep_excepthook: None
) -> None:
    root = tmp_path / "data"
    (root / "CT-MRI" / "MRI").mkdir(parents=True)
    (root / "CT-MRI" / "CT").mkdir()
    (root / "PET-MRI").symlink_to(demo_root / "PET-MRI")
    msg = _message(
        ["training", "--config_file", TRAIN, "--bundle_root", tmp_path, "--dataset_dir", root, *TINY], monkeypatch
    )
    assert msg.startswith(f"dataset_dir: {root / 'CT-MRI'} hold no MRI/other pairs")
    assert msg.endswith("choose --pair_types among PET-MRI")
    assert "no MRI/other pairs found under" in _message(
        [
            "training",
            "--config_file",
            TRAIN,
            "--bundle_root",
            tmp_path,
            "--dataset_dir",
            root,
            "--pair_types",
            "CT-MRI",
            *TINY,
        ],
        monkeypatch,
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (["--epocs", "1"], "unknown override --epocs: no id 'epocs' in {train}; did you mean --epochs?"),
        (
            ["--validate#dataloader#batchsize", "1"],
            "unknown override --validate#dataloader#batchsize: no id 'validate#dataloader#batchsize' in {train}; "
            "did you mean --validate#dataloader#batch_size?",
        ),
        (
            ["--network_def#chanels", "8"],
            "unknown override --network_def#chanels: no id 'network_def#chanels' in "
            "{train}; did you mean --network_def#channels or --network_def#full_channels?",
        ),
        # fire turns '-' in an option name into '_': the CT-MRI settings cannot be set one by one from the command line
        (
            ["--loss#pair_weights#CT-MRI", "{'w_mi': 3.0}"],
            "override --loss#pair_weights#CT-MRI: python -m monai.bundle (fire) reads '-' in an option name as '_', "
            "so this would set 'loss#pair_weights#CT_MRI', which is not in {train}; set the whole "
            "--loss#pair_weights instead (its value may hold '-')",
        ),
        (["--epochs", "one"], "--epochs 'one': expected a positive integer"),
        (["--resume", "false"], "--resume 'false': expected True or False (capitalised)"),
        (
            ["--pair_types", "PET-MIR"],
            "pair_types ['PET-MIR']: choose 'all' or any of CT-MRI, PET-MRI, SPECT-MRI (comma-separated)",
        ),
    ],
)
def test_override_with_a_typo(
    override: list[str],
    expected: str,
    tmp_path: Path,
    demo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    keep_excepthook: None,
) -> None:
    args = ["training", "--config_file", TRAIN, "--bundle_root", tmp_path, "--dataset_dir", demo_root, *override]
    assert _message(args, monkeypatch) == expected.format(train=TRAIN)


def test_misspelt_run_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_excepthook: None) -> None:
    msg = _message(["trainig", "--config_file", TRAIN, "--bundle_root", tmp_path], monkeypatch)
    assert msg == f"run id 'trainig' is not in {TRAIN}; choose one of run, training"


def test_error_hook_prints_only_the_input_error(capsys: pytest.CaptureFixture[str], keep_excepthook: None) -> None:
    seen = []
    sys.excepthook = lambda *exc: seen.append(exc[1])
    install_input_error_hook()
    install_input_error_hook()  # idempotent: one hook, one line
    try:
        try:
            raise FusionInputError("dataset_dir: no pairs")
        except FusionInputError as err:
            raise RuntimeError("Failed to instantiate component") from err
    except RuntimeError as wrapped:
        sys.excepthook(RuntimeError, wrapped, wrapped.__traceback__)
    assert capsys.readouterr().err == "error: dataset_dir: no pairs\n"
    other = KeyError("a bug keeps its traceback")
    sys.excepthook(KeyError, other, None)
    assert seen == [other]


def test_bad_file_met_during_a_run_prints_one_line(
    trained_demo_bundle: tuple[Path, str], demo_root: Path, tmp_path: Path
) -> None:
    """A corrupt image loaded inside the engine's run (no caching) is not logged with a traceback either."""
    from monai_fusion.data import bundle_datalist

    data = tmp_path / "data"
    shutil.copytree(demo_root, data)
    bad = Path(bundle_datalist(data, split="val")[1]["other"])
    bad.write_bytes(bad.read_bytes()[:200])  # truncated PNG
    bundle, _ = trained_demo_bundle
    proc = run_bundle(
        [
            "run",
            "evaluating",
            "--config_file",
            "['configs/train.json','configs/evaluate.json']",
            "--dataset_dir",
            data,
            "--cache_rate",
            "0",
            "--val_metrics",
            "SSIM",
            "--num_workers",
            "0",
            *NET,
        ],
        cwd=bundle,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(bad) in last, out[-3000:]
