"""Every code block of README.md and docs/*.md runs verbatim, as a user would paste it.

The blocks of one page run in order in one fresh folder: ``python`` blocks as a script file run with this
interpreter, ``bash`` blocks with bash, the venv's commands (``mofsnap``, ``python``) first on ``PATH``. A
block right after ``<!-- file: NAME -->`` is not run but written to ``NAME`` for the blocks after it (a TOML
config, say). A block right after ``<!-- not run: REASON -->`` is skipped; the reason must say why (the
suite cannot run the set-up that runs the suite).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"python": "py", "bash": "sh"}
BLOCK = re.compile(r"(?:<!--\s*(?P<directive>file|not run):\s*(?P<argument>.*?)\s*-->\s*\n)?"
                   r"^```(?P<language>[\w+-]*)[^\n]*\n(?P<body>.*?)^```\s*$", re.M | re.S)
#: Seconds all the blocks of one page may take.
PAGE_TIME_LIMIT = 900


@dataclass
class Block:
    """A fenced code block of a page."""

    language: str
    body: str
    line: int
    directive: str | None
    argument: str | None


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page`` with the directive comment right before each."""
    text = page.read_text()
    return [Block(m["language"], m["body"], text.count("\n", 0, m.start("body")), m["directive"], m["argument"])
            for m in BLOCK.finditer(text)]


def test_every_code_block_is_run_written_or_skipped_for_a_reason():
    for page in PAGES:
        for block in blocks(page):
            where = f"{page.name}:{block.line}"
            if block.directive == "not run":
                assert len(block.argument.split()) >= 3, f"{where}: say why the block is not run"
            elif block.directive != "file":
                assert block.language in RUNNABLE, f"{where}: a ```{block.language} block is neither runnable " \
                                                   "nor marked <!-- file: NAME --> or <!-- not run: REASON -->"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_code_blocks_run_verbatim(page, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    ran = 0
    for number, block in enumerate(blocks(page)):
        if block.directive == "not run":
            continue
        if block.directive == "file":
            (tmp_path / block.argument).write_text(block.body)
            continue
        script = tmp_path / f"block{number:02d}.{RUNNABLE[block.language]}"
        script.write_text(block.body)
        command = [sys.executable, script.name] if block.language == "python" else ["bash", "-e", script.name]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=PAGE_TIME_LIMIT)
        assert done.returncode == 0, (f"{page.name}:{block.line} failed with status {done.returncode}:\n"
                                      f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        ran += 1
    assert ran or not blocks(page), f"{page.name}: every block is skipped"
