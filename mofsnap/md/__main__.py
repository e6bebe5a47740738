"""``python -m mofsnap.md``: the ``mofsnap md`` command."""

from ..cli import run_as_module

run_as_module("md")
