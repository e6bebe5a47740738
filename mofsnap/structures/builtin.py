"""The built-in frameworks, typed, and the one registry of built-in structures.

Each framework is built from its site table ``data/structures/<key>.json`` (space group, cell, heavy-atom
asymmetric unit, hydrogen rules, source): the heavy atoms are expanded by the space group, the hydrogens are
placed geometrically on them by the rules below, and the whole asymmetric unit is expanded again, so that the
ordered crystal keeps the table's space group. The primitive cell (``primitive=True``) holds the atoms of the
conventional cell inside the table's primitive vectors. The returned Atoms carry ``atoms.arrays["atom_types"]``
from :func:`mofsnap.atomtypes.assign_atom_types` and ``atoms.info["name"]``.

Hydrogen rules (:class:`~mofsnap.structures.sites.HydrogenRule`), with the bond directions ``u_k`` from the
carrying atom to its heavy neighbours:

- ``riding``: one H opposite ``sum u_k`` (an aromatic CH on the outer bisector of its ring angle, a
  μ3-OH along the three-fold axis away from its three metals, a μ2-OH on the bisector away from its two);
- ``methylene``: the two H of a CH2, tetrahedral (H-C-H 109.47°) in the plane bisecting the C-C-N (or C-C-C)
  angle, opposite ``sum u_k``; one site when the two are symmetry images, two otherwise;
- ``methyl``: the three H of a CH3, tetrahedral (H-C-H and C-C-H 109.47°), one H in the plane through the C-CH3
  bond perpendicular to the ring that carries it (a mirror plane of ZIF-8), the other two its images. Of the two
  such orientations (in-plane H on either face of the ring) the one whose in-plane H has the larger y.

The lengths are the tables': C(sp2)-H 1.083 Å and C(sp3)-H 1.09 Å (typical neutron-diffraction values), O-H
0.97 Å, instead of the 0.93-0.98 Å of X-ray riding models.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from ase import Atoms

from ..atomtypes import assign_atom_types
from ..exceptions import StructureError
from ..topology import bond_pairs
from .sites import HydrogenRule, Site, primitive_cell, site_table

#: Half the tetrahedral angle, between each C-H bond of a CH2 and the bisector of the H-C-H angle.
_HALF_TETRAHEDRAL = np.arccos(-1.0 / 3.0) / 2


def framework(key: str, primitive: bool = False) -> Atoms:
    """The typed framework of the site table ``data/structures/<key>.json``.

    Parameters
    ----------
    key : str
        The table's key, e.g. ``"uio66"``.
    primitive : bool
        The primitive cell instead of the conventional one.

    Raises
    ------
    StructureError
        The table has no primitive vectors but ``primitive`` was asked for, or an unknown hydrogen rule.
    """
    table = site_table(key)
    heavy = table.conventional()
    hydrogens = tuple(site for rule in table.hydrogens for site in _hydrogen_sites(heavy, rule))
    atoms = table.conventional(hydrogens)
    if primitive:
        if table.primitive_vectors is None:
            raise StructureError(f"the conventional cell of {table.name} is primitive already; use {key!r}")
        atoms = primitive_cell(atoms, table.primitive_vectors)
    atoms = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
    atoms.info["name"] = table.name
    assign_atom_types(atoms)
    return atoms


def zif8(primitive: bool = False) -> Atoms:
    """ZIF-8 with ordered hydrogens and atom types ``C3a C3b C4a H1a H1b N3a Zn4a``.

    Parameters
    ----------
    primitive : bool
        The 138-atom bcc primitive cell instead of the 276-atom cubic cell.
    """
    return framework("zif8", primitive)


def mof5(primitive: bool = False) -> Atoms:
    """MOF-5 (IRMOF-1) with atom types ``C3a C3b C3c H1a O2a O4a Zn4a``.

    Parameters
    ----------
    primitive : bool
        The 106-atom fcc primitive cell instead of the 424-atom cubic cell.
    """
    return framework("mof5", primitive)


#: The keys of the built-in site tables, in the order of :data:`STRUCTURES`.
FRAMEWORKS = ("zif8", "mof5", "uio66", "hkust1", "mil53", "mof74", "dmof1")

#: The built-in structures by name: each entry builds a fresh, typed Atoms. Every framework with a primitive
#: cell smaller than its conventional one also comes as ``<key>-primitive``.
STRUCTURES: dict[str, Callable[[], Atoms]] = {}
for _key in FRAMEWORKS:
    STRUCTURES[_key] = partial(framework, _key)
    if site_table(_key).primitive_vectors is not None:
        STRUCTURES[f"{_key}-primitive"] = partial(framework, _key, primitive=True)


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


def _hydrogen_sites(heavy: Atoms, rule: HydrogenRule) -> tuple[Site, ...]:
    """The hydrogen sites of the asymmetric unit that ``rule`` puts on the first atom of its site."""
    i, j, shift, _ = bond_pairs(heavy)
    positions = heavy.positions

    def bonds(index: int) -> tuple[list[int], list[np.ndarray]]:
        """The atoms bonded to ``index`` and the unit vectors to them (periodic images included)."""
        mask = i == index
        vectors = positions[j[mask]] + shift[mask] @ heavy.cell - positions[index]
        return j[mask].tolist(), [v / np.linalg.norm(v) for v in vectors]

    carrier = int(np.flatnonzero(heavy.arrays["spacegroup_kinds"] == rule.on)[0])
    _, units = bonds(carrier)
    away = -sum(units) / np.linalg.norm(sum(units))
    if rule.rule == "riding":
        directions = [away]
    elif rule.rule == "methylene":
        normal = np.cross(*units) / np.linalg.norm(np.cross(*units))
        directions = [np.cos(_HALF_TETRAHEDRAL) * away + sign * np.sin(_HALF_TETRAHEDRAL) * normal
                      for sign in (1, -1)][:len(rule.wyckoff)]
    elif rule.rule == "methyl":
        (ring_atom,), _ = bonds(carrier)
        partners, ring_units = bonds(ring_atom)
        in_ring = [u for b, u in zip(partners, ring_units) if b != carrier]
        normal = np.cross(*in_ring)
        normal -= away * (normal @ away)
        normal *= np.sign(normal[1]) / np.linalg.norm(normal)
        off_axis = np.pi - np.arccos(-1.0 / 3.0)  # angle between the C-CH3 axis and each C-H bond
        third = np.cross(away, normal)
        directions = [np.cos(off_axis) * away + np.sin(off_axis) * (np.cos(phi) * normal + np.sin(phi) * third)
                      for phi in np.radians([0.0, 120.0])][:len(rule.wyckoff)]
    else:
        raise StructureError(f"unknown hydrogen rule {rule.rule!r}; use riding, methylene or methyl")
    fractional = heavy.cell.scaled_positions(positions[carrier] + rule.length * np.array(directions))
    return tuple(Site("H", tuple(p), wyckoff, rule.role) for p, wyckoff in zip(fractional, rule.wyckoff))

