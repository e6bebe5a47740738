"""Covalent bonds with periodic images (and, built on them, angles and dihedrals with their types)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from matscipy.neighbours import neighbour_list

#: Two atoms are bonded when closer than this factor times the sum of their covalent radii.
BOND_SCALE = 1.2


def bond_pairs(atoms: Atoms, scale: float = BOND_SCALE) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Directed bonded pairs of a periodic structure.

    Parameters
    ----------
    atoms : Atoms
        The structure (periodic or not).
    scale : float
        Bond if distance < ``scale * (r_cov,i + r_cov,j)`` (ASE covalent radii).

    Returns
    -------
    i, j : int arrays
        Every bond appears twice, as (i, j) and (j, i).
    shift : (nbond, 3) int array
        Cell shift of ``j`` (``r_j + shift @ cell - r_i`` is the bond vector).
    distance : float array
        Bond lengths in Å.
    """
    numbers = np.unique(atoms.numbers)
    cutoffs = {(int(a), int(b)): scale * (covalent_radii[a] + covalent_radii[b]) for a in numbers for b in numbers}
    i, j, shift, distance = neighbour_list("ijSd", atoms, cutoffs)
    return i, j, shift, distance
