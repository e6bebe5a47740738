"""The ``mofsnap`` command line: every command registered, the module shims, one error handler."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mofsnap.cli import COMMANDS, build_parser

#: ``python -m`` forms promised by the docs, with the command each one runs.
SHIMS = {
    "mofsnap": None, "mofsnap.structures": "structures", "mofsnap.learn": "learn", "mofsnap.labelling": "label",
    "mofsnap.cbad": "cbad", "mofsnap.fit": "fit", "mofsnap.md": "md",
    "mofsnap.analysis.thermal_expansion": "thermal-expansion", "mofsnap.analysis.vdos": "vdos",
    "mofsnap.analysis.phonons": "phonons", "mofsnap.analysis.metadynamics": "metadynamics",
}


def test_help_lists_every_command(cli, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--help"])
    assert exit_.value.code == 0
    listing = capsys.readouterr().out
    for name in ("learn", "label", "fit", "cbad", "md", "structures", "vdos", "thermal-expansion", "phonons",
                 "metadynamics"):
        assert name in COMMANDS and f"    {name}" in listing


@pytest.mark.parametrize("module", SHIMS)
def test_python_m_forms_run_their_command(module):
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = "mofsnap" if SHIMS[module] is None else f"mofsnap {SHIMS[module]}"
    assert done.stdout.startswith(f"usage: {expected} ")


def test_console_script_is_installed():
    script = shutil.which("mofsnap", path=str(Path(sys.executable).parent))
    assert script, "the mofsnap console script is missing from the environment: pip install -e ."
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("mofsnap ")


def test_failure_is_one_line_and_exit_1(cli, tmp_path):
    result = cli("md", tmp_path / "missing.extxyz", "-o", tmp_path / "md", "--calculator", "emt")
    assert result.status == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mofsnap md: error: ") and "missing.extxyz" in lines[0]


def test_traceback_option_shows_the_exception(cli, tmp_path):
    with pytest.raises(Exception, match="missing.extxyz"):
        cli("md", tmp_path / "missing.extxyz", "-o", tmp_path / "md", "--calculator", "emt", "--traceback")


def test_unknown_command_is_a_usage_error(cli, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli("frobnicate")
    assert exit_.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err
