"""Crystallographic site tables: a space group, a cell, the asymmetric unit of a crystal and its hydrogen rules.

The tables live in the package data as ``data/structures/<key>.json``, each naming its source. A table gives
the conventional cell through ASE's space-group expansion (standard setting; rhombohedral groups on hexagonal
axes) and holds the primitive cell vectors for :func:`primitive_cell`. Hydrogens are not listed as sites but as
rules (:class:`HydrogenRule`) that :mod:`mofsnap.structures.builtin` applies to the heavy-atom crystal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.spacegroup import crystal
from matscipy.neighbours import neighbour_list

from ..exceptions import StructureError
from ..resources import data_path


@dataclass(frozen=True)
class Site:
    """One crystallographic site of an asymmetric unit.

    Attributes
    ----------
    symbol : str
        Chemical symbol.
    position : tuple of float
        Fractional coordinates.
    wyckoff : str
        Wyckoff position, e.g. ``"48h"``.
    role : str
        What the atom is, e.g. ``"ring CH carbon"``.
    """

    symbol: str
    position: tuple[float, float, float]
    wyckoff: str
    role: str


@dataclass(frozen=True)
class HydrogenRule:
    """How the hydrogens on one heavy-atom site are placed (see :mod:`mofsnap.structures.builtin`).

    Attributes
    ----------
    rule : str
        ``"riding"`` (one H opposite the sum of the bond directions of its atom), ``"methylene"`` (two H of a
        CH2, tetrahedral) or ``"methyl"`` (three H of a CH3 keeping a mirror plane through the C-CH3 bond).
    on : int
        Index of the carrying site in :attr:`SiteTable.sites`.
    length : float
        X-H bond length in Å.
    wyckoff : tuple of str
        Wyckoff position of each hydrogen site the rule adds to the asymmetric unit.
    role : str
        What the hydrogens are, e.g. ``"ring H"``.
    """

    rule: str
    on: int
    length: float
    wyckoff: tuple[str, ...]
    role: str


@dataclass(frozen=True, eq=False)
class SiteTable:
    """The crystallographic description of a framework.

    Attributes
    ----------
    name : str
        Display name, e.g. ``"ZIF-8"``.
    source : str
        Where the numbers come from.
    spacegroup : int
        International space-group number.
    cellpar : tuple of float
        Conventional cell ``a, b, c`` in Å and ``alpha, beta, gamma`` in degrees.
    primitive_vectors : (3, 3) array or None
        Primitive cell vectors (rows) in units of the conventional cell vectors; None when the conventional
        cell is primitive.
    sites : tuple of Site
        The heavy atoms of the asymmetric unit.
    hydrogens : tuple of HydrogenRule
        The hydrogen placement.
    extra : dict
        Further entries of the table (formula, geometry notes).
    """

    name: str
    source: str
    spacegroup: int
    cellpar: tuple[float, ...]
    primitive_vectors: np.ndarray | None
    sites: tuple[Site, ...]
    hydrogens: tuple[HydrogenRule, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str | Path) -> SiteTable:
        """Read a table from its JSON file.

        Raises
        ------
        StructureError
            The file lacks a required entry.
        """
        document = json.loads(Path(path).read_text())
        try:
            sites = tuple(Site(s["symbol"], tuple(s["position"]), s["wyckoff"], s["role"])
                          for s in document.pop("sites"))
            hydrogens = tuple(HydrogenRule(h["rule"], int(h["on"]), float(h["length_A"]), tuple(h["wyckoff"]),
                                           h["role"]) for h in document.pop("hydrogens", []))
            primitive = document.pop("primitive_vectors", None)
            return cls(name=document.pop("name"), source=document.pop("source"),
                       spacegroup=int(document.pop("spacegroup")), cellpar=tuple(document.pop("cellpar")),
                       primitive_vectors=None if primitive is None else np.array(primitive["rows"]),
                       sites=sites, hydrogens=hydrogens, extra=document)
        except KeyError as missing:
            raise StructureError(f"site table {path} has no entry {missing}; reinstall mofsnap") from None

    def conventional(self, extra_sites: tuple[Site, ...] = ()) -> Atoms:
        """The conventional cell from the space-group expansion of the sites (and ``extra_sites``).

        ``atoms.arrays["spacegroup_kinds"]`` holds the index of each atom's site.
        """
        sites = self.sites + tuple(extra_sites)
        return crystal([s.symbol for s in sites], [s.position for s in sites], spacegroup=self.spacegroup,
                       cellpar=list(self.cellpar), onduplicates="error")


@cache
def site_table(key: str) -> SiteTable:
    """The site table ``data/structures/<key>.json`` (read once)."""
    return SiteTable.read(data_path("structures", f"{key}.json"))


def primitive_cell(conventional: Atoms, vectors: np.ndarray) -> Atoms:
    """The atoms of a ``conventional`` cell inside the primitive cell ``vectors`` (rows, in conventional vectors).

    Lattice images (atoms closer than 0.1 Å once wrapped into the primitive cell) are kept once, the first of
    them in the order of ``conventional``.

    Raises
    ------
    StructureError
        ``vectors`` do not span a primitive cell of the crystal (the atom count is not the conventional one
        times the volume ratio).
    """
    cell = np.asarray(vectors) @ conventional.cell.array
    wrapped = Atoms(conventional.numbers, conventional.positions, cell=cell, pbc=True)
    wrapped.wrap()
    i, j = neighbour_list("ij", wrapped, 0.1)
    kept = np.setdiff1d(np.arange(len(wrapped)), j[i < j])
    expected = len(conventional) * abs(np.linalg.det(vectors))
    if not np.isclose(len(kept), expected):
        raise StructureError(f"{len(kept)} atoms in the primitive cell, {expected:g} expected: the primitive "
                             "vectors of the site table are not lattice vectors of the crystal")
    return wrapped[kept]
