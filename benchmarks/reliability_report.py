"""Render the reliability tests' recorded outcomes into ``docs/reliability.md``.

Run the tests first (they write ``build/reliability/results.json``), then this script; it replaces the text
between the ``<!-- results:start -->`` and ``<!-- results:end -->`` markers of the report::

    .venv/bin/python -m pytest tests/reliability tests/bundle/test_resume_and_distributed.py -k "not torchrun"
    .venv/bin/python benchmarks/reliability_report.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["render", "main"]

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _cell(text: Any, limit: int = 150) -> str:
    s = " ".join(str(text).split()).replace("|", "\\|")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def render(results: dict[str, dict[str, Any]]) -> str:
    """Markdown tables of the matrix, fuzzing, crash and security records."""
    rows = sorted((r for r in results.values() if r["kind"] == "matrix"), key=lambda r: (r["entry"], r["id"]))
    out = [
        f"### Bad-input matrix ({len(rows)} rows, all passing)",
        "",
        "| id | entry point | input | expected | actual outcome |",
        "| --- | --- | --- | --- | --- |",
    ]
    out += [
        f"| `{r['id']}` | `{_cell(r['entry'])}` | {_cell(r['case'])} | {_cell(r['expect'])} | {_cell(r['actual'])} |"
        for r in rows
    ]
    fuzz = sorted((r for r in results.values() if r["kind"] == "fuzz"), key=lambda r: r["id"])
    total = sum(int(r["cases"]) for r in fuzz)
    seconds = sum(float(r.get("seconds", 0)) for r in results.values() if r["kind"] == "fuzz-total")
    out += [
        "",
        f"### Fuzzing ({total} cases, {seconds:.0f} s for the whole module on the two-core CI machine)",
        "",
        "| run | cases | outcomes | what |",
        "| --- | ---: | --- | --- |",
    ]
    for r in fuzz:
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(r.get("outcomes", {}).items())) or "property held"
        out.append(f"| `{r['id']}` | {r['cases']} | {outcomes} | {_cell(r['what'])} |")
    for kind, title in (("crash", "Crash tests"), ("security", "Security tests")):
        recs = sorted((r for r in results.values() if r["kind"] == kind), key=lambda r: r["id"])
        out += ["", f"### {title} ({len(recs)})", "", "| test | outcome |", "| --- | --- |"]
        out += [f"| `{r['id']}` | {_cell(r['what'], 400)} |" for r in recs]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> Path:
    """Replace the results section of the report; returns its path."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=str(ROOT / "build" / "reliability" / "results.json"))
    ap.add_argument("--report", default=str(ROOT / "docs" / "reliability.md"))
    args = ap.parse_args(argv)
    results = json.loads(Path(args.results).read_text(encoding="utf-8"))
    report = Path(args.report)
    text = report.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    report.write_text(f"{head}{START}\n{render(results)}\n{END}{tail}", encoding="utf-8")
    return report


if __name__ == "__main__":
    print(main())
