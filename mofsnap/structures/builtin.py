"""The built-in frameworks ZIF-8 and MOF-5 (IRMOF-1), typed, and the one registry of built-in structures.

Both come as the cubic conventional cell or, with ``primitive=True``, the primitive cell (bcc for ZIF-8, fcc for
MOF-5) holding half resp. a quarter of the atoms, for cheaper reference calculations. The returned Atoms carry
``atoms.arrays["atom_types"]`` from :func:`mofsnap.atomtypes.assign_atom_types` and ``atoms.info["name"]``.

The crystallographic data (space group, lattice parameter, sites, hydrogen placement) come from the site tables
``data/structures/zif8.json`` and ``mof5.json``, which name their sources.

ZIF-8
-----
I-43m, heavy atoms from the X-ray structure. The experiment finds the hydrogens disordered; :func:`zif8` places
an ordered set geometrically with the C-H lengths of the table:

- ring H: in the imidazolate plane, on the outer bisector of the N-C-C angle of its CH carbon (Wyckoff 48h);
- methyl H: tetrahedral (H-C-H and C-C-H 109.47°), one H in the crystallographic mirror plane through the
  C-CH3 bond (24g), the other two its mirror images (48h), so the ordered crystal keeps the full I-43m symmetry.
  Of the two such orientations (in-plane H on either face of the ring) we take the one whose in-plane H has the
  larger y for the representative methyl C of the table; the two differ by < 0.02 Å in their shortest contacts.

MOF-5
-----
Fm-3m, all sites including H from the table.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from ase import Atoms

from ..atomtypes import assign_atom_types
from ..exceptions import StructureError
from ..topology import bond_pairs
from .sites import Site, SiteTable, primitive_cell, site_table


def zif8(primitive: bool = False) -> Atoms:
    """ZIF-8 with ordered hydrogens and atom types ``C3a C3b C4a H1a H1b N3a Zn4a``.

    Parameters
    ----------
    primitive : bool
        The 138-atom bcc primitive cell instead of the 276-atom cubic cell.
    """
    table = site_table("zif8")
    hydrogens = _zif8_hydrogen_sites(table.conventional(), table.extra["hydrogens"])
    return _finish(table.conventional(hydrogens), table, primitive)


def mof5(primitive: bool = False) -> Atoms:
    """MOF-5 (IRMOF-1) with atom types ``C3a C3b C3c H1a O2a O4a Zn4a``.

    Parameters
    ----------
    primitive : bool
        The 106-atom fcc primitive cell instead of the 424-atom cubic cell.
    """
    table = site_table("mof5")
    return _finish(table.conventional(), table, primitive)


#: The built-in structures by name: each entry builds a fresh, typed Atoms.
STRUCTURES: dict[str, Callable[[], Atoms]] = {
    "zif8": zif8,
    "zif8-primitive": partial(zif8, primitive=True),
    "mof5": mof5,
    "mof5-primitive": partial(mof5, primitive=True),
}


def builtin_structure(name: str) -> Atoms:
    """A fresh copy of the built-in structure ``name`` (a key of :data:`STRUCTURES`).

    Raises
    ------
    StructureError
        ``name`` is not a built-in structure.
    """
    if name not in STRUCTURES:
        raise StructureError(f"unknown built-in structure {name!r}; choose one of {', '.join(STRUCTURES)}")
    return STRUCTURES[name]()


def _zif8_hydrogen_sites(heavy: Atoms, placement: dict) -> tuple[Site, ...]:
    """One ring H and two methyl H (the in-mirror one and one of its images) as sites of the asymmetric unit."""
    kinds = heavy.arrays["spacegroup_kinds"]
    i, j, shift, _ = bond_pairs(heavy)
    positions = heavy.positions

    def neighbours(index: int) -> list[np.ndarray]:
        """Unit vectors from atom ``index`` to its bonded atoms (periodic images included)."""
        mask = i == index
        vectors = positions[j[mask]] + shift[mask] @ heavy.cell - positions[index]
        return [v / np.linalg.norm(v) for v in vectors]

    ring_c = int(np.flatnonzero(kinds == 3)[0])
    bisector = sum(neighbours(ring_c))
    ring_h = positions[ring_c] - placement["ring_CH_A"] * bisector / np.linalg.norm(bisector)

    c2, methyl = (int(np.flatnonzero(kinds == k)[0]) for k in (2, 4))
    (to_c2,) = neighbours(methyl)
    axis = -to_c2
    nitrogens = [u for u, n in zip(neighbours(c2), heavy.numbers[j[i == c2]]) if n == 7]
    normal = np.cross(*nitrogens)
    normal -= axis * (normal @ axis)
    normal *= np.sign(normal[1]) / np.linalg.norm(normal)
    off_axis = np.pi - np.arccos(-1.0 / 3.0)  # angle between the C-CH3 axis and each C-H bond
    third = np.cross(axis, normal)
    in_mirror, image = (
        positions[methyl] + placement["methyl_CH_A"]
        * (np.cos(off_axis) * axis + np.sin(off_axis) * (np.cos(phi) * normal + np.sin(phi) * third))
        for phi in np.radians([0.0, 120.0])
    )
    fractional = [tuple(heavy.cell.scaled_positions(p[None])[0]) for p in (ring_h, in_mirror, image)]
    return tuple(Site("H", position, wyckoff, role) for position, wyckoff, role in
                 zip(fractional, ["48h", "24g", "48h"], ["ring H", "methyl H in the mirror plane", "methyl H"]))


def _finish(conventional: Atoms, table: SiteTable, primitive: bool) -> Atoms:
    """Reduce to the primitive cell if asked, drop build-time arrays, name and type the atoms."""
    atoms = primitive_cell(conventional, table.primitive_vectors) if primitive else conventional
    atoms = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
    atoms.info["name"] = table.name
    assign_atom_types(atoms)
    return atoms
