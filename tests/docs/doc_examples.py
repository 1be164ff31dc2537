"""Run the ``console`` examples of a Markdown page and compare what they print with what the page shows.

A ``console`` block holds ``$ command`` lines, each followed by the output the page claims. The commands run in
order, in one fresh folder that is also ``$HOME`` (so ``~/.cache/monai_fusion`` is the run's own), through bash,
with stdout and stderr in one stream. Volatile parts are masked on both sides before comparing: times, progress
bar rates, and the folders of absolute paths (the file names stay). ``python tests/docs/doc_examples.py PAGE``
rewrites the page's outputs with what the commands print now (then read the diff before committing it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

__all__ = [
    "Example",
    "console_examples",
    "console_blocks",
    "MARKED_BLOCK",
    "FENCED_BLOCK",
    "screen_lines",
    "normalise",
    "run_examples",
    "run_captured",
    "sandbox_env",
    "excerpt_missing",
    "rewritten_block",
    "update_page",
]

BLOCK = re.compile(r"```console\n(.*?)```", re.S)
#: The ``<!-- not run: REASON -->`` marker (the python-snippet checker's) on the line before a fenced block.
_NOT_RUN = r"(?:<!-- not run: (?P<why>[^>]*?) -->\n)?"
#: A console block, with the marker if it has one.
MARKED_BLOCK = re.compile(_NOT_RUN + r"```console\n(?P<body>.*?)```", re.S)
#: A fenced block of any language (``lang``), with the marker if it has one.
FENCED_BLOCK = re.compile(_NOT_RUN + r"```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)
#: tqdm's bar, counts and rate: ``|█████| 94/94 [00:00<00:00, 1340.37slice/s]``.
PROGRESS = re.compile(r"\|[^|\n]*\| *(\d+)/(\d+) \[[^\]\n]*\]")
TIME = re.compile(r"(?<![\w.])\d+(?:\.\d+)? ?(?:ms|s)\b")
#: The folder part of an absolute path (not after a word character, so ``3/3`` and ``x/y`` stay).
FOLDER = re.compile(r"(?<![\w.~])/(?:[\w.+-]+/)+")


@dataclass
class Example:
    """One ``$ command`` of a page and the output the page shows for it."""

    command: str
    expected: str


def console_examples(text: str) -> list[Example]:
    """The examples of every ``console`` block of ``text``, in page order (a command ending in ``\\`` goes on in
    the next line, as in a shell)."""
    out: list[Example] = []
    for block in BLOCK.findall(text):
        for line in block.splitlines():
            if line.startswith("$ "):
                out.append(Example(line[2:], ""))
            elif out and not out[-1].expected and out[-1].command.endswith("\\"):  # a command's next line
                out[-1].command += "\n" + line
            elif out:
                out[-1].expected += line + "\n"
            else:
                raise ValueError(f"console block output before any '$ ' command: {line!r}")
    return out


def console_blocks(text: str) -> list[tuple[str | None, list[Example]]]:
    """Each ``console`` block of ``text`` in page order: the reason of its ``<!-- not run: REASON -->`` marker
    (``None`` when it has none: a block to run) and its examples."""
    return [
        (m.group("why"), console_examples(f"```console\n{m.group('body')}```")) for m in MARKED_BLOCK.finditer(text)
    ]


def screen_lines(text: str) -> list[str]:
    """The lines a terminal would show: carriage-return redraws resolved, blank lines dropped, and each run of
    one progress bar's updates (tqdm writes them as separate lines into a pipe) reduced to its last state."""
    out: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        for line in (seg.rstrip() for seg in raw.split("\r")):
            if not line:
                continue
            bar = PROGRESS.search(line)
            if bar and out and PROGRESS.search(out[-1]) and out[-1][: bar.start()].split(":")[0] == line.split(":")[0]:
                out[-1] = line
            else:
                out.append(line)
    return out


def normalise(text: str) -> str:
    """``text`` as :func:`screen_lines` shows it, with progress rates, times and absolute folders masked."""
    text = "\n".join(screen_lines(text))
    text = PROGRESS.sub(r"| \1/\2 [...]", text)
    return FOLDER.sub("<dir>/", TIME.sub("<t>", text))


def excerpt_missing(printed: str, expected: str) -> list[str]:
    """The lines of ``expected`` (an excerpt of a log) that ``printed`` lacks, in order.

    Each expected line stands for one printed line, the lines in the same order with others between them; ``...``
    in an expected line stands for any text (a log's time stamp and logger, a folder, columns left out), so the
    line matches when its other fragments appear in that order within one printed line.
    """
    lines = printed.splitlines()
    missing, at = [], 0
    for want in (w for w in expected.splitlines() if w.strip()):
        pattern = re.compile(".*?".join(re.escape(p.strip(" ")) for p in want.split("...")))
        for k in range(at, len(lines)):
            if pattern.search(lines[k]):
                at = k + 1
                break
        else:
            missing.append(want)
    return missing


def run_examples(examples: list[Example], sandbox: Path, timeout: float = 300) -> list[str]:
    """Run each example's command in ``sandbox`` (also ``$HOME``); returns what each printed, ``sandbox`` as ``~``."""
    env = sandbox_env(sandbox)
    outputs = []
    for ex in examples:
        proc = run_captured(["bash", "-c", ex.command], sandbox, env, timeout)
        outputs.append(proc.stdout.replace(str(sandbox), "~"))
    return outputs


def sandbox_env(home: Path) -> dict[str, str]:
    """The environment of a documented command: this Python's tools first on ``PATH``, ``home`` as ``$HOME``,
    unbuffered output, and no ``MONAI_FUSION_*`` variable (a page's example names the data it reads)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONAI_FUSION_")}
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}", PYTHONUNBUFFERED="1")
    return env


def run_captured(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` with stdout and stderr in one stream, decoded as UTF-8 whatever the test process's locale."""
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
    )


def rewritten_block(body: str, printed: Iterator[str]) -> list[str]:
    """The lines of a console block ``body`` with each command (its continuation lines kept) followed by the next
    output of ``printed`` instead of what the page showed."""
    lines: list[str] = []
    going_on = False
    for line in body.splitlines():
        if line.startswith("$ ") or going_on:
            lines.append(line)
            going_on = line.endswith("\\")
            if not going_on:
                lines += screen_lines(next(printed))
    return lines


def update_page(page: Path, sandbox: Path) -> None:
    """Rewrite the outputs of ``page``'s console blocks with what the commands print in ``sandbox``."""
    text = page.read_text(encoding="utf-8")
    examples = console_examples(text)
    printed = iter(run_examples(examples, sandbox))

    def block(match: re.Match[str]) -> str:
        return "```console\n" + "\n".join(rewritten_block(match.group(1), printed)) + "\n```"

    page.write_text(BLOCK.sub(block, text), encoding="utf-8")


if __name__ == "__main__":
    import tempfile

    if len(sys.argv) != 2:
        raise SystemExit("usage: python tests/docs/doc_examples.py PAGE.md")
    with tempfile.TemporaryDirectory(prefix="docs-") as tmp:
        update_page(Path(sys.argv[1]), Path(tmp))
