"""Molecular dynamics with any ASE calculator: the driver, its guards and its trajectories.

``run_md`` runs NVE, NVT (Nose-Hoover chain or Langevin) and NPT (MTK) with seeded velocities, a resumable
trajectory and an optional guard; ``read_trajectory`` reads what it writes (and any ``ase.io`` trajectory).
The command is ``mofsnap md`` (also ``python -m mofsnap.md``).
"""

from .driver import CELL_MODES, ENSEMBLES, MDResult, run_md
from .guards import Guard, blowup_guard
from .trajectory import FrameWriter, read_trajectory

__all__ = ["CELL_MODES", "ENSEMBLES", "FrameWriter", "Guard", "MDResult", "blowup_guard", "read_trajectory",
           "run_md"]
