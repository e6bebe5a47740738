"""Cells made ready for SNAP: right-handed orientation, the primitive cell, and the SNAP-ready supercell.

A SNAP model with pair cutoff ``r_c`` sees every neighbour of an atom only once when each perpendicular width of
the cell (the distance between opposite faces, ``V / |a_j x a_k|``) exceeds ``2 r_c``; the fit refuses cells
that do not (:func:`mofsnap.descriptors.check_configuration`). :func:`snap_ready_cell` builds the smallest diagonal
supercell that passes, so that no reference label is ever paid for a configuration the fit would refuse.
Rod MOFs (MIL-53, MIL-47, MOF-74) with 6.5-6.8 Å along the rods need three or more repeats along them.
"""

from __future__ import annotations

import numpy as np
import spglib
from ase import Atoms

from ..exceptions import StructureError


def perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """Distances (Å) between opposite faces of a cell, ``V / |a_j x a_k|`` for each cell vector ``a_i``.

    Raises
    ------
    StructureError
        The cell is degenerate (zero volume).
    """
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    if volume < 1e-9:
        raise StructureError("the cell has no volume; give a 3D-periodic structure with three cell vectors")
    return volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)


def snap_ready_cell(atoms: Atoms, cutoff: float) -> tuple[Atoms, tuple[int, int, int]]:
    """The smallest diagonal supercell of ``atoms`` whose perpendicular widths all exceed ``2 * cutoff``.

    Parameters
    ----------
    atoms : Atoms
        A 3D-periodic structure; per-atom arrays (atom types) are repeated with the atoms.
    cutoff : float
        The model's largest pair cutoff in Å (:attr:`mofsnap.model.SNAPModel.cutoff`).

    Returns
    -------
    supercell : Atoms
        ``atoms.repeat(repeats)`` (``atoms`` itself, copied, when it is wide enough already).
    repeats : tuple of int
        The repeats along the three cell vectors.

    Raises
    ------
    StructureError
        Non-positive cutoff, or a structure that is not periodic in 3D.
    """
    if not cutoff > 0:
        raise StructureError(f"the cutoff must be > 0 Å, got {cutoff}")
    if not atoms.pbc.all():
        raise StructureError("a SNAP-ready cell needs a structure periodic in all three directions")
    widths = perpendicular_widths(atoms.cell.array)
    repeats = tuple(int(n) for n in np.floor(2 * cutoff / widths) + 1)
    return atoms.repeat(repeats), repeats


def right_handed(atoms: Atoms) -> tuple[Atoms, bool]:
    """``atoms`` with a right-handed cell: a left-handed one (negative determinant) has its three vectors
    negated, which keeps the lattice, the lengths, the angles and every Cartesian position.

    Returns
    -------
    atoms : Atoms
        A copy, re-oriented if needed.
    changed : bool
        Whether the cell was left-handed.
    """
    atoms = atoms.copy()
    if np.linalg.det(atoms.cell.array) >= 0:
        return atoms, False
    atoms.set_cell(-atoms.cell.array, scale_atoms=False)
    atoms.wrap()
    return atoms, True


def find_primitive_cell(atoms: Atoms, symprec: float = 1e-3) -> Atoms:
    """The primitive cell of a (typed) crystal, found by spglib with the atom types as distinct species.

    Positions are kept as they are (no symmetrisation); the atom types, if present, come with the atoms.

    Parameters
    ----------
    atoms : Atoms
        A 3D-periodic structure.
    symprec : float
        Distance tolerance of the symmetry search in Å.

    Raises
    ------
    StructureError
        spglib finds no symmetry at this tolerance.
    """
    labels = atoms.arrays.get("atom_types", atoms.numbers.astype(str))
    species = sorted(set(zip(atoms.numbers.tolist(), [str(t) for t in labels])))
    index = {s: k for k, s in enumerate(species)}
    kinds = [index[s] for s in zip(atoms.numbers.tolist(), [str(t) for t in labels])]
    found = spglib.standardize_cell((atoms.cell.array, atoms.get_scaled_positions(), kinds), to_primitive=True,
                                    no_idealize=True, symprec=symprec)
    if found is None:
        raise StructureError(f"spglib found no symmetry at symprec {symprec} Å; try a larger symprec")
    cell, fractional, found_kinds = found
    primitive = Atoms([species[k][0] for k in found_kinds], scaled_positions=fractional, cell=cell, pbc=True)
    if "atom_types" in atoms.arrays:
        primitive.arrays["atom_types"] = np.array([species[k][1] for k in found_kinds])
    primitive.info.update({k: v for k, v in atoms.info.items() if k == "name"})
    return primitive
