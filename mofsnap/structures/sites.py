"""Crystallographic site tables: a space group, a cubic lattice parameter and the asymmetric unit of a crystal.

The tables live in the package data as ``data/structures/<key>.json``, each naming its source. A table gives
the conventional cell through ASE's space-group expansion and holds the primitive cell vectors for
:func:`primitive_cell`.
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


@dataclass(frozen=True, eq=False)
class SiteTable:
    """The crystallographic description of a cubic framework.

    Attributes
    ----------
    name : str
        Display name, e.g. ``"ZIF-8"``.
    source : str
        Where the numbers come from.
    spacegroup : int
        International space-group number.
    a : float
        Cubic lattice parameter in Å.
    primitive_vectors : (3, 3) array
        Primitive cell vectors (rows) in units of ``a``.
    sites : tuple of Site
        The asymmetric unit.
    extra : dict
        Further entries of the table (e.g. the hydrogen placement of ZIF-8).
    """

    name: str
    source: str
    spacegroup: int
    a: float
    primitive_vectors: np.ndarray
    sites: tuple[Site, ...]
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
            return cls(name=document.pop("name"), source=document.pop("source"),
                       spacegroup=int(document.pop("spacegroup")), a=float(document.pop("a_A")),
                       primitive_vectors=np.array(document.pop("primitive_vectors")["rows_in_units_of_a"]),
                       sites=sites, extra=document)
        except KeyError as missing:
            raise StructureError(f"site table {path} has no entry {missing}; reinstall mofsnap") from None

    def conventional(self, extra_sites: tuple[Site, ...] = ()) -> Atoms:
        """The conventional cubic cell from the space-group expansion of the sites (and ``extra_sites``)."""
        sites = self.sites + tuple(extra_sites)
        return crystal([s.symbol for s in sites], [s.position for s in sites], spacegroup=self.spacegroup,
                       cellpar=[self.a, self.a, self.a, 90, 90, 90])


@cache
def site_table(key: str) -> SiteTable:
    """The site table ``data/structures/<key>.json`` (read once)."""
    return SiteTable.read(data_path("structures", f"{key}.json"))


def primitive_cell(conventional: Atoms, vectors: np.ndarray) -> Atoms:
    """The atoms of a cubic ``conventional`` cell inside the primitive cell ``vectors`` (rows, in units of a)."""
    cell = vectors * conventional.cell.lengths()[0]
    fractional = conventional.positions @ np.linalg.inv(cell)
    fractional -= np.floor(fractional + 1e-6)
    key = np.round(fractional * 1e4).astype(np.int64) % 10**4
    _, first = np.unique(key, axis=0, return_index=True)
    first = np.sort(first)
    return Atoms(conventional.numbers[first], fractional[first] @ cell, cell=cell, pbc=True)
