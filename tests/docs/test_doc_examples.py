"""The console-block reader and rewriter of the docs checks: commands that go on over lines ending in ``\\``."""

from __future__ import annotations

from tests.docs.doc_examples import console_examples, rewritten_block

BODY = "$ curl -s URL \\\n     -F 'a=1'\nold output\n$ echo hi\nhi\n"


def test_a_command_goes_on_over_lines_ending_in_a_backslash() -> None:
    examples = console_examples(f"```console\n{BODY}```")
    assert [(e.command, e.expected) for e in examples] == [
        ("curl -s URL \\\n     -F 'a=1'", "old output\n"),
        ("echo hi", "hi\n"),
    ]


def test_the_rewriter_keeps_continuation_lines_and_puts_new_output_after_the_whole_command() -> None:
    assert rewritten_block(BODY, iter(["new output\n", "hi\n"])) == [
        "$ curl -s URL \\",
        "     -F 'a=1'",
        "new output",
        "$ echo hi",
        "hi",
    ]
