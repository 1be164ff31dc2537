"""Cross-validated benchmark: per-fold checkpoints, means over folds, standard errors, clear wins."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest
import torch

from monai_fusion.cli import main
from monai_fusion.data import bundle_datalist, write_demo_dataset
from monai_fusion.engines.cross_validation import (
    CrossValidation,
    clear_wins,
    fold_means,
    head_to_head,
    margin_verdict,
    standing_lines,
    summarise_folds,
)
from monai_fusion.networks import WeightMapFusionNet, save_checkpoint
from monai_fusion.utils import FusionInputError


def _rows(values: dict[str, list[float]], pair_type: str = "CT-MRI", per_fold: int = 2) -> list[dict]:
    """Rows of a per-image table: ``method -> one value per fold``, each repeated ``per_fold`` times."""
    rows = []
    for method, vals in values.items():
        for fold, v in enumerate(vals):
            for i in range(per_fold):
                rows.append({"pair_type": pair_type, "method": method, "fold": fold, "SSIM": v + 0.01 * (i - 0.5)})
    return rows


def test_summary_is_the_mean_of_fold_means_with_its_standard_error() -> None:
    rows = _rows({"a": [0.5, 0.6, 0.7, 0.8]})
    rows += [{"pair_type": "CT-MRI", "method": "a", "fold": 0, "SSIM": 0.5}] * 10  # a big fold counts once
    assert fold_means(rows, "CT-MRI", "a", "SSIM")[0] == pytest.approx(0.5)
    mean, se = summarise_folds(rows, ["a"], ["SSIM"])["CT-MRI"]["a"]["SSIM"]
    assert mean == pytest.approx(0.65)
    assert se == pytest.approx(torch.tensor([0.5, 0.6, 0.7, 0.8]).std().item() / 2)


def test_a_win_is_clear_only_when_the_paired_margin_exceeds_its_error() -> None:
    # "a" leads "b" by 0.01 in every fold: a small but consistent, hence clear, margin
    rows = _rows({"a": [0.51, 0.61, 0.71, 0.81], "b": [0.5, 0.6, 0.7, 0.8], "c": [0.1, 0.1, 0.1, 0.1]})
    summary = summarise_folds(rows, ["a", "b", "c"], ["SSIM"])["CT-MRI"]
    won = clear_wins(rows, summary, "CT-MRI", "a", ["SSIM"])["SSIM"]
    assert won["runner_up"] == "b" and won["lead"] and won["clear"]
    assert won["margin"] == pytest.approx(0.01) and won["se"] == pytest.approx(0.0, abs=1e-9)
    # a mean lead that swings sign from fold to fold is a lead but not a clear win
    rows = _rows({"a": [0.9, 0.5, 0.9, 0.5], "b": [0.6, 0.7, 0.6, 0.7]})
    summary = summarise_folds(rows, ["a", "b"], ["SSIM"])["CT-MRI"]
    won = clear_wins(rows, summary, "CT-MRI", "a", ["SSIM"])["SSIM"]
    assert won["lead"] and won["margin"] == pytest.approx(0.05) and won["se"] > 0.05 and not won["clear"]
    lost = clear_wins(rows, summary, "CT-MRI", "b", ["SSIM"])["SSIM"]
    assert not lost["lead"] and not lost["clear"]
    # one fold: no standard error, no clear win
    rows = _rows({"a": [0.9], "b": [0.1]})
    won = clear_wins(rows, summarise_folds(rows, ["a", "b"], ["SSIM"])["CT-MRI"], "CT-MRI", "a", ["SSIM"])["SSIM"]
    assert math.isnan(won["se"]) and not won["clear"]


def test_margin_verdict_compares_a_margin_with_its_error() -> None:
    assert [margin_verdict(m, se) for m, se in ((0.2, 0.1), (-0.2, 0.1), (0.05, 0.1), (-0.1, 0.1))] == [
        "won",
        "lost",
        "within",
        "within",
    ]
    assert margin_verdict(0.3, float("nan")) == "undecided" and margin_verdict(0.1, 0.0) == "won"


def test_head_to_head_counts_clear_wins_and_losses_against_each_method_alone() -> None:
    metrics = ["SSIM", "MI", "SCD"]
    values = {  # method -> metric -> one value per fold
        "default": {"SSIM": [0.70, 0.72, 0.74, 0.76], "MI": [2.0, 2.1, 2.2, 2.3], "SCD": [1.0, 1.4, 1.0, 1.4]},
        "max": {"SSIM": [0.71, 0.73, 0.75, 0.77], "MI": [1.9, 2.0, 2.1, 2.2], "SCD": [1.2, 1.2, 1.2, 1.2]},
        "average": {"SSIM": [0.60, 0.62, 0.64, 0.66], "MI": [1.5, 1.6, 1.7, 1.8], "SCD": [0.8, 0.8, 0.8, 0.8]},
    }
    rows = [
        {"pair_type": "PET-MRI", "method": m, "fold": f, **{k: v[k][f] for k in metrics}}
        for m, v in values.items()
        for f in range(4)
    ]
    rows.append({"pair_type": "CT-MRI", "method": "msdra", "fold": 0, **dict.fromkeys(metrics, 9.0)})
    h = head_to_head(rows, "PET-MRI", "default", ["default", "max", "average", "msdra"], metrics)
    # SSIM lost to max by 0.01 in every fold, MI won by 0.1, SCD swings +-0.2 around max's: within its error
    assert h == {
        "max": {"won": ["MI"], "lost": ["SSIM"], "undecided": []},
        "average": {"won": metrics, "lost": [], "undecided": []},
    }
    one_fold = head_to_head(rows, "CT-MRI", "msdra", ["default", "msdra"], metrics)
    assert one_fold == {}  # "default" has no CT-MRI rows: nothing to compare
    rows.append({"pair_type": "CT-MRI", "method": "default", "fold": 0, **dict.fromkeys(metrics, 1.0)})
    assert head_to_head(rows, "CT-MRI", "default", ["msdra"], metrics) == {
        "msdra": {"won": [], "lost": [], "undecided": metrics}  # one fold: no error, neither won nor lost
    }
    summary = summarise_folds(rows, list(values), metrics)
    standing = {"PET-MRI": clear_wins(rows, summary["PET-MRI"], "PET-MRI", "default", metrics)}
    lines = standing_lines(rows, standing, metrics)
    assert "| max | won 1, lost 1 (SSIM) |" in lines and "| average | won 3, lost 0 |" in lines
    assert not any(line.startswith("| msdra |") for line in lines)  # no PET-MRI rows: not a row of the table
    summary = summarise_folds(rows, [*values, "msdra"], metrics)
    standing = {pt: clear_wins(rows, summary[pt], pt, "default", metrics) for pt in ("CT-MRI", "PET-MRI")}
    lines = standing_lines(rows, standing, metrics)
    assert "| msdra | - (no standard error: SSIM, MI, SCD) | - |" in lines  # one CT-MRI fold; no PET-MRI rows


def test_fold_weights_need_the_fold_field_and_existing_files(tmp_path: Path) -> None:
    with pytest.raises(FusionInputError, match="at least 2"):
        CrossValidation(1)
    with pytest.raises(FusionInputError, match=r"must contain \{fold\}"):
        CrossValidation(4, fold_weights={"default": "runs/model.pt"})
    cv = CrossValidation(4, seed=3, fold_weights={"default": str(tmp_path / "fold{fold}" / "model.pt")})
    with pytest.raises(FusionInputError, match=r"fold2.*--fold 2 --num_folds 4 --seed 3"):
        cv.weights_of("default", 2)
    (tmp_path / "fold2").mkdir()
    (tmp_path / "fold2" / "model.pt").write_bytes(b"x")
    assert cv.weights_of("default", 2) == str(tmp_path / "fold2" / "model.pt")


def test_cli_cross_validates_with_one_checkpoint_per_fold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    data = write_demo_dataset(tmp_path / "pairs", cases=4, slices_per_case=1)
    for k in range(2):  # two different networks: each fold's pairs must be fused by that fold's checkpoint
        torch.manual_seed(k)
        net = WeightMapFusionNet(channels=4, full_channels=4)
        (tmp_path / f"fold{k}").mkdir()
        save_checkpoint(net, tmp_path / f"fold{k}" / "model.pt", config=net.config)
    out = tmp_path / "cv"
    argv = ["benchmark", "--data", str(data), "--cv", "2", "--methods", "default", "average", "max",
            "--metrics", "SSIM", "SCD", "-o", str(out),
            "--fold-weights", f"default={tmp_path}/fold{{fold}}/model.pt"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    rows = list(csv.DictReader(open(out / "per_image.csv", encoding="utf-8")))
    assert len(rows) == 4 * 3 and sorted({r["fold"] for r in rows}) == ["0", "1"]  # every pair, once
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "2-fold" in report and "standard error" in report and "cross-validated" in report
    assert "| SCD - max | SSIM - average |" in report
    # the report's mean is the mean of the fold means of the CSV
    ssim = [[float(r["SSIM"]) for r in rows if r["method"] == "max" and r["fold"] == f] for f in ("0", "1")]
    assert f"{(sum(ssim[0]) / len(ssim[0]) + sum(ssim[1]) / len(ssim[1])) / 2:.4f}" in report
    # the two folds' default rows come from two different networks
    fused_with = {}
    for k in range(2):
        ref = main(["benchmark", "--data", str(data), "--split", "all", "--methods", "default", "--metrics", "SSIM",
                    "-o", str(tmp_path / f"one{k}"),
                    "--weights", f"default={tmp_path}/fold{k}/model.pt"])  # fmt: skip
        assert ref == 0
        fused_with[k] = {r["name"]: r["SSIM"] for r in csv.DictReader(open(tmp_path / f"one{k}" / "per_image.csv"))}
    for r in rows:
        if r["method"] == "default":
            assert r["SSIM"] == fused_with[int(r["fold"])][r["name"]]
    alone = ["benchmark", "--data", str(data), "--cv", "2", "--methods", "default", "--metrics", "SSIM",
             "-o", str(tmp_path / "alone"), "--fold-weights", f"default={tmp_path}/fold{{fold}}/model.pt"]  # fmt: skip
    assert main(alone) == 0, capsys.readouterr().err  # nothing to stand against: no standing table, no crash
    alone_report = (tmp_path / "alone" / "report.md").read_text(encoding="utf-8")
    assert "against the best other method" not in alone_report and "against every other method" not in alone_report
    assert "mean over folds ± fold-to-fold standard error" in alone_report  # what the table holds, said
    capsys.readouterr()
    assert (
        main(["benchmark", "--data", str(data), "--fold-weights", "default=a{fold}.pt", "-o", str(tmp_path / "x")]) == 2
    )
    assert "needs --cv" in capsys.readouterr().err
    assert main(argv[:-2] + ["--fold-weights", "default=nowhere/{fold}.pt", "-o", str(tmp_path / "y")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_reused_rows_give_the_same_report_and_partial_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.set_num_threads(1)
    data = write_demo_dataset(tmp_path / "pairs", cases=4, slices_per_case=1)
    base = ["benchmark", "--data", str(data), "--cv", "2", "--metrics", "SSIM", "SCD"]
    assert main([*base, "--methods", "average", "max", "default", "-o", str(tmp_path / "a")]) == 0
    first = list(csv.DictReader(open(tmp_path / "a" / "per_image.csv", encoding="utf-8")))
    again = [*base, "--methods", "average", "max", "default", "-o", str(tmp_path / "b")]
    assert main([*again, "--reuse-rows", str(tmp_path / "a" / "per_image.csv")]) == 0
    assert "rows reused" in capsys.readouterr().out
    second = list(csv.DictReader(open(tmp_path / "b" / "per_image.csv", encoding="utf-8")))
    assert first == second  # the reused rows and the fused ones are the same numbers
    report = (tmp_path / "b" / "report.md").read_text(encoding="utf-8")
    assert "per-image rows reused from" in report
    # a file that covers a method in part is refused, never mixed in silently
    with open(tmp_path / "part.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(first[0]))
        w.writeheader()
        w.writerows(first[:-1])
    assert main([*again[:-1], str(tmp_path / "c"), "--reuse-rows", str(tmp_path / "part.csv")]) == 2
    assert "lacks pair" in capsys.readouterr().err


def test_gains_are_calibrated_on_fold_means_with_one_checkpoint_per_fold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], benchmark_script: Callable[[str], ModuleType]
) -> None:
    torch.set_num_threads(1)
    script = benchmark_script("calibrate_detail_gain")
    data = write_demo_dataset(tmp_path / "pairs", cases=4, slices_per_case=1)
    for k in range(2):
        torch.manual_seed(k)
        net = WeightMapFusionNet(channels=4, full_channels=4)
        save_checkpoint(net, tmp_path / f"fold{k}" / "model.pt", config=net.config)
    base = tmp_path / "base"
    assert main(["benchmark", "--data", str(data), "--cv", "2", "--methods", "average", "max", "-o", str(base)]) == 0
    capsys.readouterr()
    argv = ["--data", str(data), "--cv", "2", "--weights", f"{tmp_path}/fold{{fold}}/model.pt",
            "--baselines", str(base / "per_image.csv"), "--gains", "0,1"]  # fmt: skip
    assert script.main(argv) == 0
    printed = capsys.readouterr().out
    assert "gain 0.00: PET-MRI" in printed and "/7 clear (" in printed and "fold-to-fold SE" in printed
    assert "cross-validated pairs" in printed
    (tmp_path / "fold1" / "model.pt").unlink()
    with pytest.raises(FusionInputError, match="fold 1"):
        script.main(argv)


def test_runs_are_selected_by_their_loss_on_the_training_folds(
    tmp_path: Path, benchmark_script: Callable[[str], ModuleType]
) -> None:
    torch.set_num_threads(1)
    script = benchmark_script("cross_validate")
    data = write_demo_dataset(tmp_path / "pairs", cases=4, slices_per_case=1)
    torch.manual_seed(0)
    good = WeightMapFusionNet(**script._network_args())
    bad = WeightMapFusionNet(**script._network_args())
    bad.load_state_dict(good.state_dict())
    with torch.no_grad():  # a copy of the PET: the weight map held at 0, no detail term (within [0, 1])
        for p in [*bad.head.parameters(), *(bad.context.parameters() if bad.context is not None else [])]:
            p.zero_()
        bad.head.bias[0] = -50.0
    for run, net in (("seed1", good), ("seed2", bad)):
        for k in range(2):
            save_checkpoint(net, tmp_path / run / f"fold{k}" / "model.pt", config=net.config)
    with pytest.raises(SystemExit, match="train_loss.json does not exist"):
        script.main(["select", "--workdir", str(tmp_path / "sel"), "--num-folds", "2",
                     "--workdirs", str(tmp_path / "seed1"), str(tmp_path / "seed2")])  # fmt: skip
    losses = {}
    for run in ("seed1", "seed2"):
        assert (
            script.main(["loss", "--workdir", str(tmp_path / run), "--num-folds", "2", "--dataset-dir", str(data)]) == 0
        )
        losses[run] = [json.loads((tmp_path / run / f"fold{k}" / "train_loss.json").read_text()) for k in range(2)]
    for k in range(2):
        assert set(losses["seed1"][k]) == {"PET-MRI", "all", "pairs"}  # the demo pairs are PET-MRI only
        train = bundle_datalist(str(data), "all", "train", fold=k, num_folds=2)
        held_out = bundle_datalist(str(data), "all", "val", fold=k, num_folds=2)
        assert losses["seed1"][k]["pairs"] == len(train) != len(train) + len(held_out)
        assert losses["seed1"][k]["all"] < losses["seed2"][k]["all"]
    assert losses["seed1"][0] != losses["seed1"][1]  # each fold is scored on its own training pairs
    argv = ["select", "--workdir", str(tmp_path / "sel"), "--num-folds", "2",
            "--workdirs", str(tmp_path / "seed2"), str(tmp_path / "seed1")]  # fmt: skip
    assert script.main(argv) == 0
    for k in range(2):
        chosen = tmp_path / "sel" / f"fold{k}"
        assert (chosen / "chosen_from").read_text() == str(tmp_path / "seed1" / f"fold{k}")
        assert (chosen / "model.pt").read_bytes() == (tmp_path / "seed1" / f"fold{k}" / "model.pt").read_bytes()
    with pytest.raises(SystemExit, match="holds an earlier selection"):  # never overwritten
        script.main(argv)
