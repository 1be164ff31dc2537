"""Every ``python`` block of README.md, docs/ and the bundle docs runs on the embedded data and shows what it prints
(see :mod:`tests.docs.python_snippets`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .python_snippets import instrument, mask, python_snippets, run_snippet

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bundles/multimodal_fusion/docs/README.md"]
SNIPPETS = [s for page in PAGES for s in python_snippets(page)]


def test_the_checker_runs_claims_and_sees_a_wrong_one(tmp_path: Path) -> None:
    code, claims = instrument("x = 2\nx * 0.5\n# 1.0\nprint('hi')\nx + 1\n# 4\n")
    assert claims == {1: "1.0", 3: "4"}
    from .python_snippets import Snippet

    rc, out, shown = run_snippet(Snippet("page", 1, code, claims=claims), tmp_path, ROOT)
    assert rc == 0 and "hi" in out and shown == {1: "1.0", 3: "3"}
    assert mask("'rigid, rotation 4.96123 deg'") == "'rigid, rotation 4.961 deg'"


def test_every_page_block_is_run_or_says_why_not() -> None:
    assert len(SNIPPETS) >= 6
    assert all(s.skip is None or len(s.skip) > 10 for s in SNIPPETS)  # a reason, not a bare marker
    assert sum(s.skip is None for s in SNIPPETS) >= 4


@pytest.mark.parametrize(
    "snippet",
    [s for s in SNIPPETS if s.skip is None],
    ids=[f"{Path(s.page).relative_to(ROOT)}:{s.line}" for s in SNIPPETS if s.skip is None],
)
def test_python_block_runs_and_shows_what_it_prints(snippet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rc, out, shown = run_snippet(snippet, tmp_path, ROOT)
    assert rc == 0, f"{snippet.page}:{snippet.line} failed:\n{out[-3000:]}"
    for n, claimed in snippet.claims.items():
        assert mask(shown.get(n, "<not printed>")) == mask(claimed), f"{snippet.page}:{snippet.line} statement {n}"
