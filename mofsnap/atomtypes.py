"""Atom types: element + coordination number + letter (``C3a``, ``H1b``, ``Zn4a``).

The rule
--------
Bonds come from covalent radii with periodic images (:func:`mofsnap.topology.bond_pairs`); two metal atoms are
not bonded unless ``metal_bonds=True``, so a metal's coordination number counts its ligand atoms (the Cu of a
paddlewheel is ``Cu4a``, not ``Cu5a``; the Zr of a Zr6 cluster ``Zr8a``, not ``Zr12a``). An atom's
*environment* is the tree of bonded atoms seen from it, ``shells`` bonds deep: element and coordination number of
the atom, then of its neighbours, then of theirs, each level sorted (colour refinement, or Weisfeiler-Lehman, on
the bond graph). Atoms of one element and coordination number whose environments differ get different letters.
Nothing in the rule refers to atom indices or positions, so a permutation of the atoms permutes the labels with
them, and a primitive cell gets the labels of the conventional cell.

Letters ``a, b, c, ...`` (``z`` is followed by ``aa, ab, ...``) go to the environments of one element and
coordination in order of

1. decreasing sum of the neighbours' atomic numbers, ``S1(i) = sum_j Z_j`` over the atoms ``j`` bonded to ``i``;
2. ties broken by the next shell: decreasing ``S2(i) = sum_j S1(j)``, then ``S3``, ... up to ``shells``
   (the extended-connectivity sums of Morgan, 1965);
3. remaining ties (environments with equal sums) by the sorted environment tree itself, compared element by
   element (atomic number, coordination number, then the neighbours' trees).

This reproduces the published labels. ZIF-8: C3a = ring C between the two N (S1 = 7 + 7 + 6 = 20), C3b = ring CH
carbon (S1 = 7 + 6 + 1 = 14), C4a = methyl C, H1a = ring H and H1b = methyl H (both S1 = 6; S2 = 14 for the ring
H, 9 for the methyl H), N3a, Zn4a. MOF-5: C3a = carboxylate C (O, O, C: 22), C3b = ring C bonded to it (18),
C3c = ring CH carbon (13), H1a, O2a = carboxylate O (Zn + C: 36), O4a = central O (4 Zn: 120), Zn4a.

``shells`` (default 2) keeps types local: a defect changes the types of atoms at most ``shells`` bonds away.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from matscipy.neighbours import neighbour_list

from .exceptions import AtomTypingError
from .topology import BOND_SCALE, bond_pairs, neighbour_frame

TYPE_LABEL = re.compile(r"^([A-Z][a-z]?)(\d+)([a-z]+)$")

#: Highest atomic number with a covalent radius (Cordero et al. 2008, as in ASE); higher ones are unknown.
LAST_KNOWN_ELEMENT = 96

#: Largest chemically sensible number of covalent bonds of non-metals (e.g. mu4-O in MOF-5, SiF6 in SIFSIX,
#: mu3-F in rare-earth clusters, mu4-I in copper iodide clusters and chains).
#: Elements not listed (metals) may have up to :data:`MAX_METAL_COORDINATION` bonds.
MAX_COORDINATION: dict[str, int] = {
    "H": 1, "He": 0, "B": 4, "C": 4, "N": 4, "O": 4, "F": 4, "Ne": 0, "Si": 6, "P": 6, "S": 6, "Cl": 6, "Ar": 0,
    "Ge": 6, "As": 6, "Se": 6, "Br": 6, "Kr": 0, "Te": 6, "I": 6, "Xe": 0, "Rn": 0,
}  # fmt: skip
MAX_METAL_COORDINATION = 12

#: Atoms closer than this (Å) are taken as overlapping.
MIN_DISTANCE = 0.5


def element_of(label: str) -> str:
    """Chemical symbol of an atom-type label, e.g. ``"Zn4a" -> "Zn"``.

    Raises
    ------
    AtomTypingError
        If ``label`` is not element + coordination number + letters.
    """
    match = TYPE_LABEL.match(label)
    if match is None:
        raise AtomTypingError(f"{label!r} is not an atom-type label (element + coordination + letter, e.g. 'C3a')")
    return match.group(1)


def assign_atom_types(
    atoms: Atoms,
    *,
    shells: int = 2,
    bond_scale: float = BOND_SCALE,
    min_distance: float = MIN_DISTANCE,
    max_coordination: Mapping[str, int] | None = None,
    metal_bonds: bool = False,
) -> np.ndarray:
    """Give every atom a type label (element + coordination number + letter) by the rule of this module.

    Parameters
    ----------
    atoms : Atoms
        Periodic or molecular structure. The labels are also stored in ``atoms.arrays["atom_types"]``.
    shells : int
        How many bonds deep environments are compared (0: element and coordination only).
    bond_scale : float
        Two atoms are bonded when closer than ``bond_scale`` times the sum of their covalent radii.
    min_distance : float
        Atoms closer than this (Å) are rejected as overlapping.
    max_coordination : mapping of str to int, optional
        Per-element upper bounds on the number of bonds, overriding :data:`MAX_COORDINATION`.
    metal_bonds : bool
        Bond metal atoms to each other by the distance rule too (the rule before metal-metal contacts stopped
        counting; see :mod:`mofsnap.topology`).

    Returns
    -------
    numpy.ndarray of str
        One label per atom, e.g. ``"C3a"``.

    Raises
    ------
    AtomTypingError
        Unknown elements, overlapping atoms, atoms without bonds, or more bonds than the element can form.
    """
    if shells < 0:
        raise AtomTypingError(f"shells must be >= 0, got {shells}")
    if len(atoms) == 0:
        raise AtomTypingError("cannot type an empty structure")
    numbers = atoms.numbers
    unknown = np.flatnonzero((numbers < 1) | (numbers > LAST_KNOWN_ELEMENT))
    if unknown.size:
        raise AtomTypingError(
            f"unknown element(s) at atom(s) {_list(unknown)}: atomic numbers {sorted(set(numbers[unknown].tolist()))}"
        )
    boxed = neighbour_frame(atoms)
    _check_overlaps(boxed, min_distance)
    i, j, _, _ = bond_pairs(boxed, bond_scale, metal_bonds)
    coordination = np.bincount(i, minlength=len(atoms))
    _check_coordination(atoms, coordination, bond_scale, {**MAX_COORDINATION, **(max_coordination or {})})

    order = np.argsort(i, kind="stable")
    neighbours = np.split(j[order], np.cumsum(coordination)[:-1])
    roots = list(zip(numbers.tolist(), coordination.tolist()))
    trees: list[tuple] = [root + ((),) for root in roots]
    sums = [numbers.astype(np.int64)]
    for _ in range(shells):
        trees = [roots[a] + (tuple(sorted(trees[b] for b in neighbours[a])),) for a in range(len(atoms))]
        sums.append(np.bincount(i, weights=sums[-1][j], minlength=len(atoms)).astype(np.int64))

    keys = {tree: (tuple(-s[a] for s in sums[1:]), tree) for a, tree in enumerate(trees)}
    letter = {}
    for root in set(roots):
        environments = sorted((t for t in keys if t[:2] == root), key=keys.__getitem__)
        letter.update({tree: _letters(rank) for rank, tree in enumerate(environments)})
    labels = np.array([f"{chemical_symbols[z]}{cn}{letter[tree]}" for (z, cn), tree in zip(roots, trees)])
    atoms.arrays["atom_types"] = labels
    return labels


def _check_overlaps(atoms: Atoms, min_distance: float) -> None:
    i, j, d = neighbour_list("ijd", atoms, min_distance)
    if i.size:
        k = int(np.argmin(d))
        raise AtomTypingError(
            f"overlapping atoms: {i.size // 2} pair(s) closer than {min_distance} Å, e.g. atoms {i[k]} "
            f"({atoms[i[k]].symbol}) and {j[k]} ({atoms[j[k]].symbol}) at {d[k]:.3f} Å"
        )


def _check_coordination(
    atoms: Atoms, coordination: np.ndarray, bond_scale: float, limits: Mapping[str, int]
) -> None:
    symbols = np.array(atoms.get_chemical_symbols())
    isolated = np.flatnonzero(coordination == 0)
    if isolated.size:
        raise AtomTypingError(
            f"isolated atom(s) without any bond (bond_scale {bond_scale}): {_list(isolated, symbols)}"
        )
    limit = np.array([limits.get(s, MAX_METAL_COORDINATION) for s in symbols])
    over = np.flatnonzero(coordination > limit)
    if over.size:
        a = over[0]
        raise AtomTypingError(
            f"impossible coordination: {over.size} atom(s) have more bonds than their element can form, e.g. atom "
            f"{a} ({symbols[a]}) with {coordination[a]} bonds (at most {limit[a]}); check the geometry: atoms closer "
            f"than {bond_scale} times the sum of their covalent radii count as bonded"
        )


def _list(indices: np.ndarray, symbols: np.ndarray | None = None, shown: int = 10) -> str:
    items = [f"{k} ({symbols[k]})" if symbols is not None else str(k) for k in indices[:shown]]
    return ", ".join(items) + (f" and {indices.size - shown} more" if indices.size > shown else "")


def _letters(rank: int) -> str:
    """``0 -> 'a'``, ..., ``25 -> 'z'``, ``26 -> 'aa'``, ``27 -> 'ab'``, ..."""
    letters = ""
    rank += 1
    while rank:
        rank, rest = divmod(rank - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters
