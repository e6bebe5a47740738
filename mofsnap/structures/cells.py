"""Cells made ready for SNAP: right-handed orientation, the primitive cell, and the SNAP-ready supercell.

A SNAP model with pair cutoff ``r_c`` sees every neighbour of an atom only once when each perpendicular width of
the cell (the distance between opposite faces, ``V / |a_j x a_k|``) exceeds ``2 r_c``; the fit refuses cells
that do not (:func:`mofsnap.descriptors.check_configuration`). :func:`snap_ready_cell` builds the supercell with
the fewest atoms that passes, so that no reference label is ever paid for a configuration the fit would refuse,
nor for more atoms than it needs. The supercell need not be a diagonal repeat: Mg-MOF-74's rhombohedral cell
(54 atoms, 6.6 Å wide in all three directions) needs 2 x 2 x 2 repeats (432 atoms) but only two cells (108
atoms, at least 12.9 Å wide) in a skewed supercell, and a label's cost grows faster than its number of atoms.
"""

from __future__ import annotations

import numpy as np
import spglib
from ase import Atoms
from ase.build import make_supercell
from ase.geometry import minkowski_reduce

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


def _sublattices(n: int) -> list[np.ndarray]:
    """The lower-triangular Hermite normal forms of determinant ``n``: each sublattice of index ``n`` once,
    the diagonal ones first."""
    forms = []
    for a in range(1, n + 1):
        for b in range(1, n // a + 1):
            if n % (a * b):
                continue
            c = n // (a * b)
            forms += [np.array([[a, 0, 0], [d, b, 0], [e, f, c]]) for d in range(a) for e in range(a) for f in range(b)]
    return sorted(forms, key=lambda form: np.count_nonzero(np.tril(form, -1)))


def _widest_basis(cell: np.ndarray, form: np.ndarray) -> tuple[np.ndarray, float]:
    """The basis of the sublattice ``form @ cell`` with the largest smallest perpendicular width, as the
    integer matrix ``P`` (rows in units of ``cell``, ``det P > 0``) and that width.

    The width along ``a_i`` is ``1 / |b_i|`` for the reciprocal basis ``b`` (without the 2 pi), so the widest
    basis is the dual of the Minkowski-reduced reciprocal basis, whose vectors are the shortest possible.
    """
    reciprocal = np.linalg.inv(form @ cell).T
    reduced, op = minkowski_reduce(reciprocal)
    widest = float(1.0 / np.linalg.norm(reduced, axis=1).max())
    if perpendicular_widths(form @ cell).min() >= widest * (1 - 1e-9):
        return form, widest  # the form itself (a diagonal repeat, say) is as wide: keep its familiar basis
    matrix = (form.T @ np.rint(np.linalg.inv(op)).astype(int)).T
    return (matrix if np.linalg.det(matrix) > 0 else -matrix), widest


def snap_ready_matrix(cell: np.ndarray, cutoff: float) -> np.ndarray:
    """The integer supercell matrix ``P`` (supercell vectors ``P @ cell``) of the fewest cells whose
    perpendicular widths all exceed ``2 * cutoff``; of those, the widest, and a diagonal one where it is as wide.
    A cell wide enough already is kept as it is (``P`` the identity), even where a wider basis of its lattice
    exists.

    Parameters
    ----------
    cell : (3, 3) array
        Cell vectors as rows, in Å.
    cutoff : float
        The model's largest pair cutoff in Å (:attr:`mofsnap.model.SNAPModel.cutoff`).

    Raises
    ------
    StructureError
        Non-positive cutoff or a degenerate cell.
    """
    if not cutoff > 0:
        raise StructureError(f"the cutoff must be > 0 Å, got {cutoff}")
    cell = np.asarray(cell, dtype=float)
    diagonal = np.floor(2 * cutoff / perpendicular_widths(cell)).astype(int) + 1
    if (diagonal == 1).all():
        return np.eye(3, dtype=int)
    for n in range(1, int(np.prod(diagonal)) + 1):
        best, widest = None, 2 * cutoff
        for form in _sublattices(n):
            matrix, width = _widest_basis(cell, form)
            if width > widest * (1 + 1e-9):
                best, widest = matrix, width
        if best is not None:
            return best
    return np.diag(diagonal)  # not reached: the diagonal repeat is among the forms of its determinant


def describe_supercell(matrix: np.ndarray) -> str:
    """The cell that the supercell matrix ``P`` makes, in words: ``"the cell as it is"`` (the identity),
    ``"the same lattice on the wider basis [[1, 1, 0], [0, 1, 0], [0, 0, 1]]"`` (``det P = 1``),
    ``"the 2 x 1 x 1 supercell (2 cells)"`` (diagonal) or ``"the [[...]] supercell (4 cells)"``."""
    matrix = np.asarray(matrix, dtype=int)
    cells = round(abs(np.linalg.det(matrix)))
    if (matrix == np.eye(3, dtype=int)).all():
        return "the cell as it is"
    if cells == 1:
        return f"the same lattice on the wider basis {matrix.tolist()}"
    diagonal = np.count_nonzero(matrix - np.diag(np.diag(matrix))) == 0
    shape = " x ".join(str(n) for n in np.diag(matrix)) if diagonal else str(matrix.tolist())
    return f"the {shape} supercell ({cells} cells)"


def snap_ready_cell(atoms: Atoms, cutoff: float) -> tuple[Atoms, np.ndarray]:
    """The supercell of ``atoms`` with the fewest atoms whose perpendicular widths all exceed ``2 * cutoff``
    (:func:`snap_ready_matrix`).

    Parameters
    ----------
    atoms : Atoms
        A 3D-periodic structure; per-atom arrays (atom types) come with the atoms, ``info["name"]`` is kept.
    cutoff : float
        The model's largest pair cutoff in Å (:attr:`mofsnap.model.SNAPModel.cutoff`).

    Returns
    -------
    supercell : Atoms
        ``atoms`` itself, copied, when it is wide enough already; otherwise the supercell, atoms wrapped into it.
    matrix : (3, 3) int array
        The supercell matrix ``P``: supercell vectors ``P @ atoms.cell``, ``det P`` copies of the atoms.

    Raises
    ------
    StructureError
        Non-positive cutoff, or a structure that is not periodic in 3D.
    """
    if not atoms.pbc.all():
        raise StructureError("a SNAP-ready cell needs a structure periodic in all three directions")
    matrix = snap_ready_matrix(atoms.cell.array, cutoff)
    if (matrix == np.eye(3, dtype=int)).all():
        return atoms.copy(), matrix
    supercell = make_supercell(atoms, matrix)
    supercell.info.update(atoms.info)
    return supercell, matrix


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
