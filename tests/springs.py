"""A deterministic, MD-stable stand-in for a reference method in workflow tests: harmonic bonds.

Energy ``sum_b k/2 (|r_b| - r0_b)^2`` over the bonds of a fixed reference structure (periodic images
included), with analytic forces and stress, so that every run gives the same numbers to the last bit
(an SCF reference converges to slightly different numbers from run to run, and MD amplifies that).
"""

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from mofsnap.topology import bond_pairs


class BondSprings(Calculator):
    """Harmonic springs of force constant ``k`` (eV/Å²) on the bonds of ``reference``."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, reference: Atoms, k: float = 20.0, **kwargs) -> None:
        super().__init__(**kwargs)
        i, j, shift, distance = bond_pairs(reference)
        keep = i < j
        self.pairs = (i[keep], j[keep], shift[keep])
        self.r0 = distance[keep]
        self.k = k

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        i, j, shift = self.pairs
        cell = self.atoms.cell.array
        vectors = self.atoms.positions[j] + shift @ cell - self.atoms.positions[i]
        lengths = np.linalg.norm(vectors, axis=1)
        stretch = lengths - self.r0
        pair_forces = (self.k * stretch / lengths)[:, None] * vectors  # force on i, towards j when stretched
        forces = np.zeros((len(self.atoms), 3))
        np.add.at(forces, i, pair_forces)
        np.add.at(forces, j, -pair_forces)
        virial = -np.einsum("ba,bc->ac", pair_forces, vectors)
        stress = -virial / self.atoms.get_volume()
        self.results["energy"] = self.results["free_energy"] = float(0.5 * self.k * np.sum(stretch**2))
        self.results["forces"] = forces
        self.results["stress"] = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]


class FlakySprings(BondSprings):
    """:class:`BondSprings` that fail (raise) while the file ``marker`` exists: a transient reference failure."""

    def __init__(self, reference: Atoms, marker: str, k: float = 20.0, **kwargs) -> None:
        super().__init__(reference, k, **kwargs)
        self.marker = marker

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        import os

        if os.path.exists(self.marker):
            raise RuntimeError("the reference is down (marker file present)")
        super().calculate(atoms, properties, system_changes)


class FaultySprings(BondSprings):
    """:class:`BondSprings` that fail, in the way ``fault`` says, on about one configuration in ``every``
    (chosen by a checksum of the positions, so the same configurations whatever the order or the worker):
    ``raise`` an error, ``hang`` (until the time limit), ``die`` (the worker process ends) or return ``nan``."""

    def __init__(self, reference: Atoms, fault: str, every: int = 4, k: float = 20.0, **kwargs) -> None:
        super().__init__(reference, k, **kwargs)
        self.fault, self.every = fault, every

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        import os
        import time
        import zlib

        super().calculate(atoms, properties, system_changes)
        if zlib.crc32(self.atoms.positions.tobytes()) % self.every:
            return
        if self.fault == "raise":
            raise RuntimeError("SCF not converged")
        if self.fault == "hang":
            time.sleep(3600)
        if self.fault == "die":
            os._exit(1)
        self.results["energy"] = self.results["free_energy"] = float("nan")
