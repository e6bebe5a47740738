"""Molecular dynamics with any ASE calculator: the driver, its guards, checkpoints and trajectories.

``run_md`` runs NVE, NVT (Nose-Hoover chain or Langevin) and NPT (MTK) with seeded velocities, a guard on by
default (``MDGuard``), a trajectory and beside it a checkpoint (``MDCheckpoint``) from which a killed run
resumes bit for bit; ``read_trajectory`` reads what it writes (and any ``ase.io`` trajectory). The command is
``mofsnap md`` (also ``python -m mofsnap.md``).
"""

from .checkpoint import MDCheckpoint, checkpoint_path
from .driver import CELL_MODES, ENSEMBLES, MDResult, reheat_momenta, run_md
from .grade import GradeMonitor
from .guards import Guard, MDGuard, blowup_guard
from .summary import MDSummary
from .trajectory import FrameWriter, read_trajectory

__all__ = ["CELL_MODES", "ENSEMBLES", "FrameWriter", "GradeMonitor", "Guard", "MDCheckpoint", "MDGuard", "MDResult",
           "MDSummary", "blowup_guard", "checkpoint_path", "read_trajectory", "reheat_momenta", "run_md"]
