"""The console examples of the app pages are checked: docs/deploy.md's run and print what the page shows.

Every ``console`` block of docs/deploy.md and docs/label.md either runs here or is preceded by a
``<!-- not run: REASON -->`` marker (the convention of the python-snippet checker) saying why it cannot run from
documented inputs (a PACS on fixed ports, Docker, 3D Slicer).
docs/label.md's walk-through (a server and requests to it) runs in tests/apps/test_label_docs.py. The blocks
of docs/deploy.md that run do so in page order in one fresh folder (also ``$HOME``), with the repository's
``.venv-deploy`` and ``apps/`` linked into it so the page's relative paths resolve, and the inputs made by the
commands the page shows (``python -m monai_fusion.data.demo_study``: the embedded pair's study and, with
``--atlas``, an atlas case's from ``../shared/data/harvard``; the test skips without the atlas pairs).

The Deploy app's console is mostly the SDK's and Holoscan's log. The page shows the app's own lines (logger
``monai_fusion.deploy`` without its time stamp, ``error:`` lines) and what other commands print;
:func:`app_screen` drops the SDK's lines (other loggers, Holoscan's ``[info]``/``[warning]``/``[error]`` lines,
Python warnings, and their continuation lines) and the time stamps, then :func:`~tests.docs.doc_examples.normalise`
masks times and folders as for docs/cli.md. Everything else must be exactly what the page shows.

``python tests/apps/test_app_docs.py`` rewrites the outputs of docs/deploy.md's run blocks with what they print now
(read the diff before committing it).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from tests.docs.doc_examples import (  # noqa: E402
    MARKED_BLOCK,
    Example,
    console_blocks,
    normalise,
    rewritten_block,
    run_captured,
    sandbox_env,
)

DEPLOY_PAGE = ROOT / "docs" / "deploy.md"
LABEL_PAGE = ROOT / "docs" / "label.md"
DEPLOY_VENV = ROOT / ".venv-deploy"
#: The atlas folder as the page names it (relative to the checkout).
DOC_HARVARD = "../shared/data/harvard"
#: ``[2026-12-05 18:56:58,768] [INFO] (logger) - message``: a Python log line of the app or the SDK.
STAMPED = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\] (?P<line>\[\w+\] \((?P<logger>[\w.]+)\) - .*)$")
#: Holoscan's C++ log (``[info] [fragment.cpp:1135] ...``) and Python warnings (``/x/y.py:99: RuntimeWarning: ...``).
SDK_LINE = re.compile(r"^\[(?:trace|debug|info|warning|error|critical)\] \[|^\S+\.py:\d+: \w*Warning: ")
#: Lines that continue a dropped SDK line: indented lines (``  # of series: 2``, a traceback's frames), ``At:``.
CONTINUATION = re.compile(r"^(?:\s|At:$|$)")


def app_screen(printed: str) -> str:
    """What the page shows of a console: the app's own log lines without their time stamp and every line that is
    not the SDK's (see the module's docstring); the SDK's lines and their continuation lines are dropped."""
    kept: list[str] = []
    dropping = False
    for line in printed.replace("\r\n", "\n").split("\n"):
        stamped = STAMPED.match(line)
        if stamped:
            dropping = not stamped["logger"].startswith("monai_fusion")
            if not dropping:
                kept.append(stamped["line"])
        elif SDK_LINE.match(line):
            dropping = True
        elif not (dropping and CONTINUATION.match(line)):
            dropping = False
            kept.append(line)
    return "\n".join(kept)


def deploy_sandbox(folder: Path) -> Path:
    """``folder`` with the checkout's ``.venv-deploy`` and ``apps`` linked in (the page's relative paths)."""
    for name in (".venv-deploy", "apps"):
        (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    return folder


def run_blocks(examples: list[Example], sandbox: Path, harvard: Path | None, timeout: float = 300) -> list[str]:
    """Run ``examples`` in ``sandbox`` (also ``$HOME``) as doc_examples.run_examples does; returns what each printed
    as :func:`app_screen` shows it, ``sandbox`` as ``~``. The page's atlas folder (``../shared/data/harvard``, beside
    the checkout) is ``harvard`` here (``None``: no example uses it)."""
    env = sandbox_env(sandbox)
    printed = []
    for ex in examples:
        command = ex.command if harvard is None else ex.command.replace(DOC_HARVARD, str(harvard))
        out = run_captured(["bash", "-c", command], sandbox, env, timeout).stdout
        out = out if harvard is None else out.replace(str(harvard), DOC_HARVARD)
        printed.append(app_screen(out.replace(str(sandbox), "~")))
    return printed


def _require_deploy_env() -> None:
    """Skip (or, under MONAI_FUSION_REQUIRE_APPS=1, fail) without the Deploy app's environment."""
    if not ((DEPLOY_VENV / "bin" / "python").is_file() and (DEPLOY_VENV / ".installed").is_file()):
        msg = f"MONAI Deploy environment {DEPLOY_VENV} is missing: run make deploy-env"
        if os.environ.get("MONAI_FUSION_REQUIRE_APPS") == "1":
            pytest.fail(msg + " (MONAI_FUSION_REQUIRE_APPS=1)")
        pytest.skip(msg)


def test_the_app_screen_drops_only_the_sdk_lines_and_time_stamps() -> None:
    log = (
        "/x/holoscan/core/__init__.py:99: RuntimeWarning: Current stack size (8.0 MB) is below ...\n"
        "  warnings.warn(\n"
        "[info] [fragment.cpp:1135] Loading extensions from configs...\n"
        "[2026-12-05 18:56:54,996] [INFO] (monai_fusion.deploy) - fusion method: laplacian (x)\n"
        "[2026-12-05 18:56:55,061] [INFO] (root) - Searching study, : 1.2.3\n"
        "  # of series: 2\n"
        "[error] [gxf_wrapper.cpp:146] Exception occurred for operator: 'mri_selector_op' - FusionInputError: no MRI\n"
        "\n"
        "At:\n"
        "  /work/main/apps/deploy/fusion_operators.py(106): filter\n"
        "\n"
        "error: no MRI series found in /tmp/a/study/PET\n"
        "  an indented line of the app's\n"
        "exit code 2\n"
    )
    assert app_screen(log).splitlines() == [
        "[INFO] (monai_fusion.deploy) - fusion method: laplacian (x)",
        "error: no MRI series found in /tmp/a/study/PET",
        "  an indented line of the app's",
        "exit code 2",
    ]
    page = "x\n<!-- not run: needs a PACS -->\n```console\n$ a\nb\n```\n```console\n$ c\n```\n"
    assert [(why, [e.command for e in ex]) for why, ex in console_blocks(page)] == [
        ("needs a PACS", ["a"]),
        (None, ["c"]),
    ]


@pytest.mark.parametrize("page", [DEPLOY_PAGE, LABEL_PAGE], ids=lambda p: p.name)
def test_every_console_block_of_the_app_pages_runs_or_says_why_not(page: Path) -> None:
    blocks = console_blocks(page.read_text(encoding="utf-8"))
    assert len(blocks) == page.read_text(encoding="utf-8").count("```console")
    assert all(examples for _, examples in blocks), "a console block without a '$ ' command"
    assert all(why is None or why.strip() for why, _ in blocks), "a 'not run' marker without a reason"
    run = [ex for why, examples in blocks if why is None for ex in examples]
    # docs/deploy.md: the atlas study and its fusion, the embedded 3D pair's, and the bad input; docs/label.md: the
    # server and the requests of its walk-through (tests/apps/test_label_docs.py runs them).
    assert len(run) == {"deploy.md": 6, "label.md": 12}[page.name], [ex.command for ex in run]


def test_the_deploy_page_console_examples_print_what_the_page_shows(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _require_deploy_env()
    try:
        harvard: Path | None = request.getfixturevalue("harvard_root")
    except pytest.skip.Exception:  # without the atlas pairs, the blocks that use them are left out, not the page
        harvard = None
    examples = [
        ex
        for why, block in console_blocks(DEPLOY_PAGE.read_text(encoding="utf-8"))
        if why is None and (harvard is not None or not any(DOC_HARVARD in e.command for e in block))
        for ex in block
    ]
    printed = run_blocks(examples, deploy_sandbox(tmp_path), harvard)
    wrong = [
        f"$ {ex.command}\n--- the page shows:\n{normalise(ex.expected)}\n--- it prints:\n{normalise(got)}"
        for ex, got in zip(examples, printed)
        if normalise(ex.expected) != normalise(got)
    ]
    assert not wrong, "\n\n".join(wrong) + "\n\n(rewrite with: python tests/apps/test_app_docs.py)"


def update_deploy_page(sandbox: Path, harvard: Path) -> None:
    """Rewrite the outputs of docs/deploy.md's run blocks (those without a 'not run' marker) with what they print."""
    text = DEPLOY_PAGE.read_text(encoding="utf-8")
    examples = [ex for why, block in console_blocks(text) if why is None for ex in block]
    printed = iter(run_blocks(examples, deploy_sandbox(sandbox), harvard))

    def block(match: re.Match[str]) -> str:
        if match.group("why") is not None:
            return match.group(0)
        return "```console\n" + "\n".join(rewritten_block(match.group("body"), printed)) + "\n```"

    DEPLOY_PAGE.write_text(MARKED_BLOCK.sub(block, text), encoding="utf-8")


if __name__ == "__main__":
    import tempfile

    harvard = Path(os.environ.get("MONAI_FUSION_HARVARD", ROOT.parent / "shared" / "data" / "harvard"))
    with tempfile.TemporaryDirectory(prefix="deploy-docs-") as tmp:
        update_deploy_page(Path(tmp), harvard.resolve())
