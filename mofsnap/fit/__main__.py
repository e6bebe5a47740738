"""``python -m mofsnap.fit``: the ``mofsnap fit`` command."""

from ..cli import run_as_module

run_as_module("fit")
