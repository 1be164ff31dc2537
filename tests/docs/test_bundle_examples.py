"""The bundle docs' console examples (evaluate, inference) run as written and print what the page shows.

The page shows excerpts of the logs (``...`` for time stamps, folders and left-out columns); the commands run from a
copy of the repository's layout (``bundles/multimodal_fusion`` with its shipped model, ``../shared`` beside it), so
the relative paths on the page resolve as they do from a checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .doc_examples import console_examples, excerpt_missing, run_captured, sandbox_env

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "bundles" / "multimodal_fusion" / "docs" / "README.md"
HARVARD = ROOT.parent / "shared" / "data" / "harvard"


def test_the_excerpt_checker_sees_order_gaps_and_wrong_values() -> None:
    log = "2026-01-01 10:00 - x - INFO - Restored all variables from /tmp/a/models/model.pt\nx SSIM: 0.74 VIF: 0.46\n"
    assert excerpt_missing(log, "... INFO - Restored all variables from .../models/model.pt\n... SSIM: 0.74 ...") == []
    assert excerpt_missing(log, "... SSIM: 0.75 ...") == ["... SSIM: 0.75 ..."]
    assert excerpt_missing(log, "... SSIM: 0.74\n... Restored all variables ...") == ["... Restored all variables ..."]


@pytest.mark.console_pages  # run by make test-apps (see the Makefile)
@pytest.mark.skipif(not HARVARD.is_dir(), reason=f"the evaluate example reads the atlas pairs at {HARVARD}")
def test_bundle_console_examples_print_what_the_page_shows(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "bundles" / "multimodal_fusion", repo / "bundles" / "multimodal_fusion",
                    ignore=shutil.ignore_patterns("eval", "runs", "__pycache__"))  # fmt: skip
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared", target_is_directory=True)
    env = sandbox_env(tmp_path)
    examples = console_examples(PAGE.read_text(encoding="utf-8"))
    assert len(examples) >= 3
    wrong = []
    for ex in examples:
        proc = run_captured(["bash", "-c", ex.command], repo, env, 600)
        missing = excerpt_missing(proc.stdout, ex.expected)
        if proc.returncode != 0 or missing:
            wrong.append(f"$ {ex.command}\n(exit {proc.returncode}) not printed:\n" + "\n".join(missing))
    assert wrong == [], "\n\n".join(wrong)
