"""Protocols: the conventions table in the docs is the one the code prints; custom protocols validate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from monai_fusion.metrics import PROTOCOLS, MetricProtocol, available_protocols, get_protocol, protocol_table
from monai_fusion.utils import FusionInputError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_builtin_protocols_and_their_key_conventions():
    assert available_protocols() == ["standard", "sum", "poster"]
    std, summ, poster = (get_protocol(n) for n in ("standard", "sum", "poster"))
    assert (std.value_range, std.combine, std.mi_unit, std.en_estimator) == ((0.0, 255.0), "mean", "bits", "histogram")
    assert (summ.combine, summ.mi_unit, summ.ssim_size, summ.ssim_data_range) == ("sum", "nats", 7, 2.0)
    assert (poster.value_range, poster.en_estimator, poster.quantisation, poster.mi_unit) == (
        (0.0, 1.0),
        "unique",
        "floor",
        "nats",
    )
    assert get_protocol(std) is std


def test_docs_table_matches_the_code():
    table = protocol_table()
    assert table.count("\n") == 1 + len(PROTOCOLS["standard"].conventions())
    assert table in DOCS.read_text(encoding="utf-8"), "docs/metrics.md must contain protocol_table() verbatim"


def test_unknown_and_invalid_protocols_raise():
    with pytest.raises(FusionInputError, match="unknown metric protocol 'nope'.*standard, sum, poster"):
        get_protocol("nope")
    with pytest.raises(FusionInputError, match="combine='median'"):
        dataclasses.replace(PROTOCOLS["standard"], name="x", combine="median")
    with pytest.raises(FusionInputError, match="high > low"):
        MetricProtocol(name="x", summary="", value_range=(1.0, 1.0))
    with pytest.raises(FusionInputError, match="odd ssim_size"):
        dataclasses.replace(PROTOCOLS["standard"], ssim_size=10)
