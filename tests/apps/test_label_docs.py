"""docs/label.md's walk-through, run as the page shows it, and compared with what the page shows.

The page makes a work folder from the shared atlas pairs and the embedded MNI152 pair (its ``bash`` block, after
``monai-fusion demo`` has written the embedded pair to ``~/.cache/monai_fusion/demo``), starts a MONAI Label server
with the page's command, and sends it the page's ``curl`` requests. Here the same commands run in a fresh ``$HOME``
holding the page's relative paths (``.venv-label`` linked, ``apps/monailabel`` copied, as MONAI Label writes into
the app folder), with two substitutions a reader's machine would not need: the work folder
(``/tmp/label-docs/work`` on the page) is a temporary one, and the server's fixed port 8000 is a free port of
127.0.0.1. What the commands print is mapped back (folder and port) before it is compared:

- console output without ``...``: exactly, after :func:`~tests.docs.doc_examples.normalise` (times, folders) and
  with byte counts masked;
- console output with ``...`` (a log excerpt, a JSON answer shortened): :func:`~tests.docs.doc_examples.
  excerpt_missing`, with decimal numbers masked (metric values and times of a training run);
- a ``json`` block after a command that shows no output: the command's answer must hold every key the block shows,
  with the same values (strings compared as ``normalise`` shows them; ``latencies`` by key only);
- the ``json`` block that follows the training (the next ``auto`` request names the new model): the answer of that
  request for the study it names.

The command ``curl -s .../train/  # until "status": "DONE"`` is repeated (bounded) until the training is done;
its ``details`` (the training log) are compared as lines.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

from tests.docs.doc_examples import (  # noqa: E402
    FENCED_BLOCK,
    console_examples,
    excerpt_missing,
    normalise,
    run_captured,
    sandbox_env,
)

PAGE = ROOT / "docs" / "label.md"
DOC_WORK = "/tmp/label-docs/work"
DOC_PORT = 8000
BYTES = re.compile(r"\b\d+ bytes\b")
DECIMAL = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")
TRAIN_TIMEOUT_S = 600.0
APP_IGNORE = shutil.ignore_patterns("__pycache__", "logs", "model", "bin")


def _helpers() -> Any:
    """tests/apps/test_monailabel.py (the server's start and stop, the Label venv check)."""
    spec = importlib.util.spec_from_file_location("label_docs_helpers", HERE / "test_monailabel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def json_missing(got: Any, want: Any, path: str = "") -> list[str]:
    """Where ``got`` lacks what ``want`` shows: keys absent or values different (see the module's docstring)."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path or '/'}: expected an object, got {got!r}"]
        out = []
        for key, value in want.items():
            if key not in got:
                out.append(f"{path}/{key}: missing")
            elif not ("/latencies/" in f"{path}/{key}" and isinstance(value, (int, float))):
                out += json_missing(got[key], value, f"{path}/{key}")
        return out
    if isinstance(want, str) and isinstance(got, str):
        return [] if normalise(want) == normalise(got) else [f"{path}: page {want!r}, got {got!r}"]
    return [] if got == want else [f"{path}: page {want!r}, got {got!r}"]


def test_json_missing_compares_what_the_page_shows() -> None:
    got = {"a": 1, "b": {"c": "/x/y/model.pt", "d": [1, 2]}, "latencies": {"pre": 0.3}, "extra": 0}
    assert json_missing(got, {"a": 1, "b": {"c": "/tmp/model.pt", "d": [1, 2]}, "latencies": {"pre": 0.2}}) == []
    assert json_missing(got, {"a": 2, "b": {"e": 1}, "latencies": {"infer": 0.1}}) == [
        "/a: page 2, got 1",
        "/b/e: missing",
        "/latencies/infer: missing",
    ]


def _masked(text: str) -> str:
    return DECIMAL.sub("<x>", BYTES.sub("<n> bytes", normalise(text)))


def _compare(command: str, expected: str, printed: str) -> list[str]:
    if "..." in expected:
        missing = excerpt_missing(_masked(printed), _masked(expected))
        if missing:
            shown = normalise(printed)
            shown = shown if len(shown) < 4000 else "[...]\n" + shown[-4000:]
            head = f"$ {command}\n--- lines the page shows that it did not print:\n"
            return [head + "\n".join(missing) + f"\n--- it prints:\n{shown}"]
        return []
    if _masked(expected) != _masked(printed):
        return [f"$ {command}\n--- the page shows:\n{normalise(expected)}\n--- it prints:\n{normalise(printed)}"]
    return []


class Walk:
    """The page's shell: its commands run in the test's ``$HOME``, with the test's ``$WORK``."""

    def __init__(self, home: Path, work: Path, port: int) -> None:
        self.home, self.work, self.port = home, work, port
        self.env = {**sandbox_env(home), "WORK": str(work)}

    def local(self, text: str) -> str:
        """A page text with the test's folder and port."""
        text = text.replace(DOC_WORK, str(self.work)).replace("H=../shared/data/harvard", "H=$HARVARD")
        return text.replace(f"127.0.0.1:{DOC_PORT}", f"127.0.0.1:{self.port}").replace(
            f"--port {DOC_PORT}", f"--port {self.port}"
        )

    def as_page(self, printed: str) -> str:
        """What a command printed, with the page's folder and port."""
        printed = printed.replace(str(self.work), DOC_WORK).replace(str(self.home), "~")
        return printed.replace(f"127.0.0.1:{self.port}", f"127.0.0.1:{DOC_PORT}")

    def run(self, command: str, timeout: float = 300) -> str:
        """Run a page command in ``$HOME``; what it printed, as the page would show it."""
        proc = run_captured(["bash", "-c", self.local(command)], self.home, self.env, timeout)
        return self.as_page(proc.stdout)

    def until_done(self, command: str) -> str:
        """Repeat a status request until the training it reports has ended; return its ``details`` as lines."""
        deadline = time.monotonic() + TRAIN_TIMEOUT_S
        while True:
            answer = json.loads(self.run(command))
            status = answer.get("status") if isinstance(answer, dict) else None
            if status not in ("SUBMITTED", "RUNNING", None) or time.monotonic() > deadline:
                details = answer.get("details", []) if isinstance(answer, dict) else answer
                return "\n".join(map(str, details)) + f"\nstatus: {status}"
            time.sleep(2)


def test_the_label_page_walk_through_prints_what_the_page_shows(tmp_path: Path, harvard_root: Path) -> None:
    helpers = _helpers()
    helpers._label_python()  # skips (or fails under MONAI_FUSION_REQUIRE_APPS=1) without .venv-label
    home, work = tmp_path / "home", tmp_path / "work"
    # the page's relative paths: .venv-label linked, apps/monailabel copied (MONAI Label writes logs/, model/ and
    # bin/ into the app folder: they stay out of the checkout)
    (home / "apps").mkdir(parents=True)
    shutil.copytree(ROOT / "apps" / "monailabel", home / "apps" / "monailabel", ignore=APP_IGNORE)
    (home / ".venv-label").symlink_to(ROOT / ".venv-label", target_is_directory=True)
    walk = Walk(home, work, helpers._free_port())
    walk.env["HARVARD"] = str(harvard_root)
    demo = walk.run("monai-fusion demo")
    assert (home / ".cache" / "monai_fusion" / "demo" / "demo_pet.nii.gz").is_file(), demo
    wrong: list[str] = []
    pending: tuple[str, str] | None = None  # a command that showed no output, for the json block after it
    with contextlib.ExitStack() as stack:
        server = None
        for match in FENCED_BLOCK.finditer(PAGE.read_text(encoding="utf-8")):
            why, lang, body = match.group("why"), match.group("lang"), match.group("body")
            if why is not None:
                continue
            if pending is not None and lang != "json":  # a command whose output the page does not show
                wrong += _compare(pending[0], "", pending[1])
                pending = None
            if lang == "bash":
                printed = walk.run(body)
                assert not printed.strip(), f"the page's bash block printed:\n{printed}"
            elif lang == "json" and pending is not None:
                wrong += [f"$ {pending[0]}\n{m}" for m in json_missing(json.loads(pending[1]), json.loads(body))]
                pending = None
            elif lang == "json" and "weights" in body:  # the request after training, as the text says
                shown = json.loads(body)
                command = (
                    f'curl -s -X POST "http://127.0.0.1:{DOC_PORT}/infer/fusion?image={shown["study"]}_'
                    f'{shown["modality"]}&output=json"'
                )
                wrong += [f"$ {command}\n{m}" for m in json_missing(json.loads(walk.run(command)), shown)]
            elif lang == "console":
                examples = console_examples(f"```console\n{body}```")
                if examples[0].command.startswith("export MONAI_LABEL"):
                    script = "; ".join(ex.command for ex in examples[:-1]) + "; exec " + examples[-1].command
                    cmd = ["bash", "-c", walk.local(script)]
                    server = stack.enter_context(helpers.running_server(cmd, walk.env, walk.port, work, work, {}, home))
                    log = walk.as_page(server.log.read_text(encoding="utf-8", errors="replace"))
                    wrong += _compare(examples[-1].command, examples[-1].expected, log)
                    continue
                assert server is not None, "a request block before the page starts its server"
                for ex in examples:
                    if pending is not None:
                        wrong += _compare(pending[0], "", pending[1])
                    printed = walk.until_done(ex.command) if "until" in ex.command else walk.run(ex.command)
                    pending = (ex.command, printed) if not ex.expected.strip() else None
                    if pending is None:
                        wrong += _compare(ex.command, ex.expected, printed)
        if pending is not None:  # the page's last command, if it shows no output
            wrong += _compare(pending[0], "", pending[1])
    assert not wrong, "\n\n".join(wrong)
