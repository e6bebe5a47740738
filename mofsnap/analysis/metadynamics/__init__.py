"""Well-tempered metadynamics through PLUMED, and free energies from its bias.

- :mod:`.plumed_input`: the PLUMED input (``METAD`` line, the MOF-5 phenylene rings and the reference
  ring-rotation input with its walls);
- :mod:`.biased_md`: the PLUMED kernel and the biased, resumable MD (:func:`run_metadynamics`);
- :mod:`.free_energy_surface`: HILLS files, free-energy surface, profiles and barrier with its error
  (:class:`FreeEnergy`, which round-trips through ``write``/``read``).

Units: every PLUMED input made or run here starts with ``UNITS LENGTH=A ENERGY=eV TIME=fs``, so Gaussian
heights, walls, HILLS and COLVAR files are in eV, Å, rad and fs (ASE's own units except time).

Command: ``mofsnap metadynamics run STRUCTURE --model PREFIX [--ring N] -o DIR`` and
``mofsnap metadynamics analyse HILLS -T 300 -o DIR`` (also ``python -m mofsnap.analysis.metadynamics``).
"""

from .biased_md import PlumedBias, plumed_kernel, run_metadynamics
from .free_energy_surface import (FreeEnergy, Hills, barrier_height, free_energy, grid_axes, profile_1d, read_hills,
                                  write_outputs)
from .plumed_input import UNITS_LINE, PhenyleneRing, metad_line, phenylene_rings, ring_rotation_input

__all__ = ["FreeEnergy", "Hills", "PhenyleneRing", "PlumedBias", "UNITS_LINE", "barrier_height", "free_energy",
           "grid_axes", "metad_line", "phenylene_rings", "plumed_kernel", "profile_1d", "read_hills",
           "ring_rotation_input", "run_metadynamics", "write_outputs"]
