"""Run the ``python`` blocks of the project's Markdown pages and compare the values they show.

Every ```` ```python ```` block runs as it stands, in a fresh folder (also ``$HOME``) in which ``bundles`` links to
the repository's bundles, so the blocks' relative paths resolve as they do from a checkout; ``MONAI_FUSION_*``
variables are removed (the embedded demo data stands in for the atlas). A block that cannot run on its own (an
excerpt with ``...``, or code for another program) is preceded by ``<!-- not run: REASON -->``. A statement that is
a bare expression, followed by a comment line that starts with a Python literal (``# 'rigid, ...'``), claims that
value: the block prints ``repr`` of the expression and the check compares it with the comment, times and the digits
after the third decimal masked on both sides.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .doc_examples import run_captured, sandbox_env

__all__ = ["Snippet", "python_snippets", "instrument", "run_snippet", "mask"]

FENCE = re.compile(r"(?:<!-- not run: (?P<why>[^>]*?) -->\n)?```python\n(?P<code>.*?)```", re.S)
#: A comment line that claims the value of the expression above it.
CLAIM = re.compile(r"^# (?P<value>['\"\d\[\(\{-].*)$")
MARK = "@@claim "
#: More digits than a page shows (``0.82634`` -> ``0.826``), and times.
DIGITS = re.compile(r"(\d+\.\d{3})\d+")


@dataclass
class Snippet:
    """One ``python`` block of a page."""

    page: str
    line: int
    code: str
    skip: str | None = None
    claims: dict[int, str] = field(default_factory=dict)


def python_snippets(page: Path) -> list[Snippet]:
    """The ``python`` blocks of ``page`` with their claimed values (``{statement number: comment text}``)."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        snippet = Snippet(str(page), text.count("\n", 0, m.start("code")) + 1, m.group("code"), m.group("why"))
        if snippet.skip is None:
            snippet.code, snippet.claims = instrument(snippet.code)
        out.append(snippet)
    return out


def instrument(code: str) -> tuple[str, dict[int, str]]:
    """``code`` with each claimed expression printed as ``@@claim N repr``; returns it and ``{N: claimed text}``."""
    lines = code.splitlines()
    tree = ast.parse(code)
    claims: dict[int, str] = {}
    body = []
    for i, stmt in enumerate(tree.body):
        nxt = lines[stmt.end_lineno].strip() if stmt.end_lineno < len(lines) else ""
        claim = CLAIM.match(nxt)
        if isinstance(stmt, ast.Expr) and claim:
            claims[i] = claim.group("value")
            stmt = ast.parse(f"print({MARK!r} + {str(i)!r} + ' ' + repr(({ast.unparse(stmt.value)})))").body[0]
        body.append(stmt)
    return ast.unparse(ast.Module(body=body, type_ignores=[])), claims


def mask(text: str) -> str:
    """``text`` with numbers cut to three decimals (the run's last digits are not the page's business)."""
    return DIGITS.sub(r"\1", text.strip())


def run_snippet(snippet: Snippet, sandbox: Path, repo: Path, timeout: float = 300) -> tuple[int, str, dict[int, str]]:
    """Run ``snippet`` in ``sandbox``; returns the exit code, what it printed and ``{N: printed repr}``."""
    link = sandbox / "bundles"
    if not link.exists():
        link.symlink_to(repo / "bundles", target_is_directory=True)
    proc = run_captured([sys.executable, "-c", snippet.code], sandbox, sandbox_env(sandbox), timeout)
    shown = {}
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            n, _, value = line[len(MARK) :].partition(" ")
            shown[int(n)] = value
    return proc.returncode, proc.stdout, shown
