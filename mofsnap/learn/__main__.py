"""``python -m mofsnap.learn``: the ``mofsnap learn`` command."""

from ..cli import run_as_module

run_as_module("learn")
