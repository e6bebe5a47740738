"""Checks that a structure read from a file is a framework SNAP and its reference can work with, run before any
reference call; each failure is one :class:`~mofsnap.exceptions.StructureError` naming the atoms (or CIF sites)
and the fix.

In the order :func:`check_structure` runs them:

1. **elements**: every element needs a covalent radius (H to Cm) for the bonds and D3 parameters (H to Pu)
   for the dispersion;
2. **partial occupancy / alternate positions** (CIF sites with occupancy < 1): refused, or with
   ``keep_major=True`` reduced to the major component: the disorder group of largest total occupancy (ties:
   the lowest group number) where the CIF gives groups, else the sites of occupancy above 0.5;
3. **overlapping atoms** (closer than :data:`mofsnap.atomtypes.MIN_DISTANCE`);
4. **handedness**: a left-handed cell is re-oriented (:func:`mofsnap.structures.cells.right_handed`);
5. **guests and solvent**: molecules not bonded to the periodic framework (finite pieces of the bond graph,
   single atoms and ions included), refused or, with ``remove_guests=True``, removed. A hydrogen bonded to
   nothing is no guest but a misplaced H (an X-H stretched beyond the bond rule, common in computed
   structures): it is refused with its nearest atom and distance, with or without ``remove_guests``;
6. **missing hydrogens**, by valence rules on C, N and O: a C with fewer than two bonds, with two bonds at an
   angle below 160° (an aromatic CH that lost its H) or with three bonds that are not planar (a CH3/CH2 that lost
   one); an N with one bond that is not a nitrile; an O bonded to one metal only (farther than 1.70 Å, so no
   oxo group: water or hydroxide without H) or to one carbon only at more than 1.32 Å (a hydroxyl without H).
   A μ3-OH without its H looks like a μ3-O and is not caught;
7. **the reference**: its own :meth:`mofsnap.reference.Reference.check` of the cleaned structure (elements it
   has parameters for, electron count).

:func:`prepare_structure` is the one way in: a built-in name or a file, read, checked and typed.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from matscipy.neighbours import neighbour_list

from ..atomtypes import LAST_KNOWN_ELEMENT, MIN_DISTANCE, assign_atom_types
from ..exceptions import StructureError
from ..topology import BOND_SCALE, METALS, bond_pairs, neighbour_frame
from .builtin import STRUCTURES, builtin_structure
from .cells import right_handed
from .io import read_structure

log = logging.getLogger(__name__)

#: Highest atomic number with Grimme D3 parameters (H to Pu).
LAST_D3_ELEMENT = 94

#: A metal-O bond shorter than this (Å) is an oxo group, not a water or hydroxide that lost its H.
OXO_BOND_A = 1.70

#: A lone C-O bond longer than this (Å) is a single bond: the O of a hydroxyl or alkoxide that needs its H.
SINGLE_CO_BOND_A = 1.32

#: Below this angle (degrees) a two-bonded C is bent, i.e. not an sp carbon: it has lost a hydrogen.
LINEAR_ANGLE = 160.0

#: Below this sum of its three bond angles (degrees) a three-bonded C is pyramidal: it has lost a hydrogen.
PLANAR_ANGLE_SUM = 345.0

#: CIF occupancies below this count as partial.
FULL_OCCUPANCY = 0.999


def prepare_structure(source: str | Path, *, keep_major: bool = False, remove_guests: bool = False,
                      metal_bonds: bool = False, reference=None) -> tuple[Atoms, list[str]]:
    """A typed framework from a built-in name (:data:`STRUCTURES`) or a structure file, checked for SNAP.

    Parameters
    ----------
    source : str or path
        A built-in name such as ``"zif8"``, or a CIF, extxyz, POSCAR, ... file (:func:`read_structure`).
    keep_major, remove_guests, metal_bonds, reference
        As in :func:`check_structure`.

    Returns
    -------
    atoms : Atoms
        The structure with ``arrays["atom_types"]``.
    warnings : list of str
        What was changed on the way (re-oriented cell, minor component or guests removed).

    Raises
    ------
    StructureError
        A check of :func:`check_structure` failed, or the file cannot be read.
    """
    if str(source) in STRUCTURES:
        return builtin_structure(str(source)), []
    if not Path(source).is_file():
        raise StructureError(f"{source} is neither a structure file nor a built-in structure "
                             f"({', '.join(STRUCTURES)}); give a CIF, extxyz, POSCAR, ... file or one of these names")
    atoms, warnings = check_structure(read_structure(source), keep_major=keep_major, remove_guests=remove_guests,
                                      metal_bonds=metal_bonds, reference=reference)
    atoms.info.setdefault("name", Path(source).stem)
    assign_atom_types(atoms, metal_bonds=metal_bonds)
    return atoms, warnings


def check_structure(atoms: Atoms, *, keep_major: bool = False, remove_guests: bool = False,
                    metal_bonds: bool = False, reference=None) -> tuple[Atoms, list[str]]:
    """Run the checks of this module on ``atoms``; return the checked structure and the warnings.

    Parameters
    ----------
    atoms : Atoms
        A structure as read (CIF site labels and occupancies in its arrays, if from a CIF).
    keep_major : bool
        Keep the major component of partially occupied sites instead of refusing them.
    remove_guests : bool
        Remove molecules not bonded to the framework instead of refusing them.
    metal_bonds : bool
        Bond metal atoms to each other (see :mod:`mofsnap.topology`).
    reference : mofsnap.reference.Reference, optional
        The reference that will label the structure; its :meth:`check` must accept the elements.

    Returns
    -------
    atoms : Atoms
        A copy, possibly reduced (minor component, guests) and re-oriented, without the occupancy arrays.
    warnings : list of str
        One sentence per change made.

    Raises
    ------
    StructureError
        One line naming the atoms or CIF sites at fault and the fix.
    """
    if len(atoms) == 0:
        raise StructureError("the structure has no atoms")
    check_elements(atoms)
    atoms, warnings = resolve_occupancy(atoms, keep_major)
    check_overlaps(atoms)
    if atoms.pbc.all() and atoms.cell.rank == 3:
        atoms, flipped = right_handed(atoms)
        if flipped:
            warnings.append("the cell was left-handed; its three vectors were negated (same lattice and positions)")
        guests = find_guests(atoms, metal_bonds)
        stray = [int(piece[0]) for piece in guests if len(piece) == 1 and atoms.numbers[piece[0]] == 1]
        if stray:
            raise StructureError(f"hydrogen atoms bonded to nothing: {_stray_hydrogens(atoms, stray)}; a lone H is "
                                 "no guest but a misplaced one: fix its position in the file (or add the "
                                 "hydrogens anew) and read it again")
        if guests:
            if not remove_guests:
                raise StructureError(f"guest or solvent molecules not bonded to the framework: "
                                     f"{_molecules(atoms, guests)}; remove them with --remove-guests "
                                     "(remove_guests=True), or check the bonds to the framework")
            warnings.append(f"removed guest or solvent molecules: {_molecules(atoms, guests)}")
            del atoms[np.concatenate(guests)]
    missing = missing_hydrogens(atoms, metal_bonds)
    if missing:
        raise StructureError(f"missing hydrogens: {'; '.join(missing)}; add the hydrogens (e.g. with Mercury, "
                             "Avogadro or the CSD's 'add missing H') and read the file again")
    if reference is not None:
        reference.check(atoms)
    return atoms, warnings


def check_elements(atoms: Atoms) -> None:
    """Refuse elements without a covalent radius or D3 parameters."""
    numbers = atoms.numbers
    for limit, what in ((LAST_KNOWN_ELEMENT, "covalent radius (H to Cm)"), (LAST_D3_ELEMENT, "D3 parameters (H to Pu)")):
        bad = np.flatnonzero((numbers < 1) | (numbers > limit))
        if bad.size:
            raise StructureError(f"no {what} for {_describe(atoms, bad)}; replace or remove these atoms")


def resolve_occupancy(atoms: Atoms, keep_major: bool) -> tuple[Atoms, list[str]]:
    """Refuse partially occupied CIF sites, or keep their major component (see the module notes).

    Returns a copy without the ``occupancy`` and ``disorder_group`` arrays, and the warnings.
    """
    atoms = atoms.copy()
    occupancy = atoms.arrays.pop("occupancy", np.ones(len(atoms)))
    groups = atoms.arrays.pop("disorder_group", np.zeros(len(atoms), dtype=int))
    partial = occupancy < FULL_OCCUPANCY
    if not partial.any():
        return atoms, []
    sites = _site_occupancies(atoms, np.flatnonzero(partial), occupancy)
    if not keep_major:
        raise StructureError(f"partial occupancy or alternate positions at CIF sites {sites}; keep the major "
                             "component with --keep-major (keep_major=True), or give an ordered structure")
    drop = partial.copy()
    grouped = partial & (groups != 0)
    if grouped.any():
        totals = defaultdict(float)
        for a in np.flatnonzero(grouped):
            totals[int(groups[a])] += occupancy[a]
        major = min(totals, key=lambda g: (-round(totals[g], 6), g))
        drop[grouped & (groups == major)] = False
    ungrouped = partial & (groups == 0)
    tied = ungrouped & np.isclose(occupancy, 0.5)
    if tied.any():
        raise StructureError(f"no major component at CIF sites {_site_occupancies(atoms, np.flatnonzero(tied), occupancy)}"
                             " (occupancy 0.5 and no disorder groups); give the alternatives "
                             "_atom_site_disorder_group 1 and 2 in the CIF, or delete one of them")
    drop[ungrouped & (occupancy > 0.5)] = False
    kept = partial & ~drop
    warnings = [f"kept the major component of the disordered sites {sites}: "
                f"{_site_names(atoms, np.flatnonzero(kept)) or 'none'} kept, "
                f"{_site_names(atoms, np.flatnonzero(drop))} removed"]
    del atoms[np.flatnonzero(drop)]
    return atoms, warnings


def check_overlaps(atoms: Atoms, min_distance: float = MIN_DISTANCE) -> None:
    """Refuse atoms closer than ``min_distance`` (Å), naming them (and their CIF sites)."""
    i, j, d = neighbour_list("ijd", neighbour_frame(atoms), min_distance)
    keep = i < j
    if keep.any():
        pairs = [f"{_atom(atoms, a)} and {_atom(atoms, b)} at {dist:.3f} Å"
                 for a, b, dist in zip(i[keep][:5], j[keep][:5], d[keep][:5])]
        more = f" and {keep.sum() - 5} more pair(s)" if keep.sum() > 5 else ""
        raise StructureError(f"overlapping atoms (closer than {min_distance} Å): {', '.join(pairs)}{more}; remove "
                             "duplicate atoms or alternate positions from the file")


def find_guests(atoms: Atoms, metal_bonds: bool = False, bond_scale: float = BOND_SCALE) -> list[np.ndarray]:
    """Atom indices of each molecule (finite piece of the bond graph) of a periodic structure.

    A piece is periodic (part of the framework) when some bond path returns to one of its atoms in another
    cell; every other piece is a guest.

    Raises
    ------
    StructureError
        Nothing is periodic: no framework at all.
    """
    i, j, shift, _ = bond_pairs(atoms, bond_scale, metal_bonds)
    order = np.argsort(i, kind="stable")
    starts = np.searchsorted(i[order], np.arange(len(atoms) + 1))
    component = np.full(len(atoms), -1)
    offset = np.zeros((len(atoms), 3), dtype=int)
    periodic: list[bool] = []
    for seed in range(len(atoms)):
        if component[seed] >= 0:
            continue
        label = len(periodic)
        component[seed] = label
        periodic.append(False)
        stack = [seed]
        while stack:
            a = stack.pop()
            for edge in order[starts[a]:starts[a + 1]]:
                b, image = j[edge], offset[a] + shift[edge]
                if component[b] < 0:
                    component[b], offset[b] = label, image
                    stack.append(b)
                elif not periodic[label] and np.any(offset[b] != image):
                    periodic[label] = True
    if not any(periodic):
        raise StructureError(f"no periodic framework: the structure {atoms.get_chemical_formula()} falls apart into "
                             f"{len(periodic)} finite molecule(s) under the bond rule; check the cell and the bonds")
    return [np.flatnonzero(component == label) for label, infinite in enumerate(periodic) if not infinite]


def missing_hydrogens(atoms: Atoms, metal_bonds: bool = False, bond_scale: float = BOND_SCALE) -> list[str]:
    """Under-coordinated C, N and O by the valence rules of the module notes, one phrase per kind of atom."""
    boxed = neighbour_frame(atoms)
    i, j, shift, distance = bond_pairs(boxed, bond_scale, metal_bonds)
    vectors = boxed.positions[j] + shift @ boxed.cell.array - boxed.positions[i]
    numbers = atoms.numbers
    metal = np.isin(numbers, list(METALS))
    problems: dict[str, list[int]] = defaultdict(list)
    for a in np.flatnonzero(np.isin(numbers, (6, 7, 8))):
        mine = i == a
        partners, lengths = j[mine], distance[mine]
        units = vectors[mine] / lengths[:, None]
        n = len(partners)
        angles = [np.degrees(np.arccos(np.clip(units[p] @ units[q], -1, 1)))
                  for p in range(n) for q in range(p + 1, n)]
        if numbers[a] == 6:
            if n < 2 or (n == 2 and angles[0] < LINEAR_ANGLE):
                problems["C with too few bonds (aromatic CH or CH3 without its H)"].append(a)
            elif n == 3 and sum(angles) < PLANAR_ANGLE_SUM:
                problems["pyramidal C with three bonds (CH/CH2/CH3 without an H)"].append(a)
        elif numbers[a] == 7:
            nitrile = n == 1 and numbers[partners[0]] == 6 and np.count_nonzero(i == partners[0]) == 2
            if n == 1 and not nitrile:
                problems["N with one bond (NH2 without its H)"].append(a)
        elif n == 1 and metal[partners[0]] and lengths[0] > OXO_BOND_A:
            problems[f"O bonded to one metal only, farther than {OXO_BOND_A} Å (water or OH without H)"].append(a)
        elif n == 1 and numbers[partners[0]] == 6 and lengths[0] > SINGLE_CO_BOND_A:
            problems[f"O with a single C-O bond only, longer than {SINGLE_CO_BOND_A} Å (OH without H)"].append(a)
    return [f"{what}: {_describe(atoms, np.array(indices))}" for what, indices in problems.items()]


def _stray_hydrogens(atoms: Atoms, hydrogens: list[int], shown: int = 2) -> str:
    """``atom 68 (H, CIF site H) 1.25 Å from atom 12 (N), beyond the N-H bond length of 1.22 Å, ...``."""
    items = []
    for h in hydrogens[:shown]:
        others = np.delete(np.arange(len(atoms)), h)
        distances = atoms.get_distances(h, others, mic=True)
        nearest = int(others[np.argmin(distances)])
        limit = BOND_SCALE * (covalent_radii[1] + covalent_radii[atoms.numbers[nearest]])
        items.append(f"{_atom(atoms, h)} {distances.min():.2f} Å from {_atom(atoms, nearest)}, beyond the "
                     f"{atoms[nearest].symbol}-H bond length of {limit:.2f} Å")
    more = f" and {len(hydrogens) - shown} more" if len(hydrogens) > shown else ""
    return ", ".join(items) + more


def _atom(atoms: Atoms, a: int) -> str:
    """``atom 12 (C, CIF site C3)`` or ``atom 12 (C)``."""
    site = f", CIF site {atoms.arrays['cif_site'][a]}" if "cif_site" in atoms.arrays else ""
    return f"atom {a} ({atoms[a].symbol}{site})"


def _describe(atoms: Atoms, indices: np.ndarray, shown: int = 8) -> str:
    """Atoms by CIF site (``CIF sites C3 (24 atoms), ...``) or by index and element."""
    if "cif_site" in atoms.arrays:
        counts = Counter(atoms.arrays["cif_site"][indices].tolist())
        return "CIF sites " + ", ".join(f"{site} ({count} atoms)" for site, count in counts.items())
    symbols = atoms.get_chemical_symbols()
    items = [f"{a} ({symbols[a]})" for a in indices[:shown]]
    more = f" and {len(indices) - shown} more" if len(indices) > shown else ""
    return f"{len(indices)} atom(s) " + ", ".join(items) + more


def _site_names(atoms: Atoms, indices: np.ndarray) -> str:
    sites = atoms.arrays.get("cif_site", np.array([f"atom {a}" for a in range(len(atoms))]))
    return ", ".join(dict.fromkeys(sites[indices].tolist()))


def _site_occupancies(atoms: Atoms, indices: np.ndarray, occupancy: np.ndarray) -> str:
    sites = atoms.arrays.get("cif_site", np.array([f"atom {a}" for a in range(len(atoms))]))
    first: dict[str, float] = {}
    for site, value in zip(sites[indices].tolist(), occupancy[indices].tolist()):
        first.setdefault(site, value)
    return ", ".join(f"{site} ({value:g})" for site, value in first.items())


def _molecules(atoms: Atoms, pieces: list[np.ndarray]) -> str:
    """``2 x H2O (atoms 106-108, 109-111)``-style description of guest molecules."""
    by_formula: dict[str, list[str]] = defaultdict(list)
    for piece in pieces:
        where = (f"sites {_site_names(atoms, piece)}" if "cif_site" in atoms.arrays
                 else "atoms " + ",".join(str(a) for a in piece[:6]) + ("..." if len(piece) > 6 else ""))
        by_formula[atoms[piece].get_chemical_formula()].append(where)
    return "; ".join(f"{len(places)} x {formula} ({'; '.join(places[:4])}{'; ...' if len(places) > 4 else ''})"
                     for formula, places in by_formula.items())
