"""``python -m mofsnap.labelling``: the ``mofsnap label`` command."""

from ..cli import run_as_module

run_as_module("label")
