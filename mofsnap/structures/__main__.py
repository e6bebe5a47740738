"""``python -m mofsnap.structures``: the ``mofsnap structures`` command."""

from ..cli import run_as_module

run_as_module("structures")
