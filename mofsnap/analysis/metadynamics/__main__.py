"""``python -m mofsnap.analysis.metadynamics``: the ``mofsnap metadynamics`` command."""

from ...cli import run_as_module

run_as_module("metadynamics")
