"""docs/cli.md is checked: every ``$ command`` of its console blocks runs, in page order, on the embedded data
(the page itself shows how each input is made), and prints what the page shows (times, progress rates and the
folders of absolute paths masked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .doc_examples import console_examples, normalise, run_examples, screen_lines

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "cli.md"


def test_the_checker_sees_a_difference_and_masks_only_volatile_parts(tmp_path: Path) -> None:
    page = "```console\n$ echo 'wrote /tmp/a/b.png in 1.5 s'\nwrote /x/b.png in 9 s\n$ echo two\nthree\n```\n"
    examples = console_examples(page)
    assert [e.command for e in examples] == ["echo 'wrote /tmp/a/b.png in 1.5 s'", "echo two"]
    printed = run_examples(examples, tmp_path)
    assert normalise(printed[0]) == normalise(examples[0].expected) == "wrote <dir>/b.png in <t>"
    assert normalise(printed[1]) != normalise(examples[1].expected)
    bars = "run:  50%|#  | 1/2 [00:00<00:01, 2.0it/s]\nrun: 100%|## | 2/2 [00:01<00:00, 2.1it/s]\ndone\n"
    assert screen_lines(bars) == ["run: 100%|## | 2/2 [00:01<00:00, 2.1it/s]", "done"]


@pytest.mark.console_pages  # run by make test-apps (see the Makefile)
def test_every_console_example_of_the_cli_page_prints_what_the_page_shows(tmp_path: Path) -> None:
    examples = console_examples(PAGE.read_text(encoding="utf-8"))
    assert len(examples) >= 15
    printed = run_examples(examples, tmp_path)
    wrong = [
        f"$ {ex.command}\n--- the page shows:\n{normalise(ex.expected)}\n--- it prints:\n{normalise(got)}"
        for ex, got in zip(examples, printed)
        if normalise(ex.expected) != normalise(got)
    ]
    assert not wrong, "\n\n".join(wrong) + "\n\n(rewrite with: python tests/docs/doc_examples.py docs/cli.md)"
