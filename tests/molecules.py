"""Small molecules in periodic boxes: the smallest structures the workflow's tests run on."""

from ase import Atoms
from ase.build import molecule

from mofsnap.atomtypes import assign_atom_types


def boxed(name: str, edge: float = 9.0) -> Atoms:
    """The molecule ``name`` of :func:`ase.build.molecule`, centred in a periodic cubic box of ``edge`` Å and
    typed (:func:`mofsnap.atomtypes.assign_atom_types`)."""
    atoms = molecule(name, cell=[edge, edge, edge], pbc=True)
    atoms.center()
    assign_atom_types(atoms)
    return atoms
