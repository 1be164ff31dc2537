"""``docs/reliability.md`` shows every matrix row of the tests with the expectation the test states."""

from __future__ import annotations

from .conftest import ROOT
from .test_cli_matrix import ROWS as CLI_ROWS
from .test_matrix import ROWS as LIBRARY_ROWS

BUNDLE_IDS = ("bundle-code-like-names-odd-size", "bundle-truncated-input")


def test_report_lists_every_matrix_row_with_its_expectation() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("reliability_report", ROOT / "benchmarks" / "reliability_report.py")
    assert spec is not None and spec.loader is not None
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    lines = {
        ln.split("|")[1].strip(): ln
        for ln in (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8").splitlines()
        if ln.startswith("| `")
    }
    missing = [r.id for r in [*LIBRARY_ROWS, *CLI_ROWS] if f"`{r.id}`" not in lines]
    missing += [i for i in BUNDLE_IDS if f"`{i}`" not in lines]
    assert missing == [], f"rerun the tests and benchmarks/reliability_report.py: {missing}"
    for r in [*LIBRARY_ROWS, *CLI_ROWS]:
        assert report._cell(r.expect) in lines[f"`{r.id}`"], r.id
