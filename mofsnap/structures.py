"""ZIF-8 and MOF-5 (IRMOF-1) crystal structures, built from their space groups, with atom types.

Both come as the cubic conventional cell or, with ``primitive=True``, the primitive cell (bcc for ZIF-8, fcc for
MOF-5) holding half resp. a quarter of the atoms, for cheaper reference calculations. The returned Atoms carry
``atoms.arrays["atom_types"]`` from :func:`mofsnap.atomtypes.assign_atom_types`.

ZIF-8
-----
I-43m, a = 16.991 Å, heavy atoms of Park et al., PNAS 103, 10186 (2006). The experiment finds the hydrogens
disordered; we place an ordered set geometrically, with the riding-model C-H lengths of X-ray refinement
(0.93 Å aromatic, 0.96 Å methyl; DFT relaxation lengthens them to about 1.08 Å):

- ring H: in the imidazolate plane, on the outer bisector of the N-C-C angle of its CH carbon (Wyckoff 48h);
- methyl H: tetrahedral (H-C-H and C-C-H 109.47°), one H in the crystallographic mirror plane through the
  C-CH3 bond (24g), the other two its mirror images (48h), so the ordered crystal keeps the full I-43m symmetry.
  Of the two such orientations (in-plane H on either face of the ring) we take the one whose in-plane H has the
  larger y for the representative methyl C at (0.4061, 0.0855, 0.5939); the two differ by < 0.02 Å in their
  shortest contacts.

MOF-5
-----
Fm-3m, a = 25.832 Å (PBE-D3-relaxed; experiment 25.89 Å), all sites including H from the fractional coordinates
in :data:`MOF5_SITES`.

Command: ``python -m mofsnap.structures --help`` writes a structure as extxyz (with types), CIF, JSON and PNG.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.spacegroup import crystal

from .atomtypes import assign_atom_types
from .topology import bond_pairs

ZIF8_A = 16.991
ZIF8_SPACEGROUP = 217  # I-43m
#: Heavy-atom sites of ZIF-8: (symbol, fractional position, Wyckoff site, role).
ZIF8_SITES = [
    ("Zn", (0.5, 0.0, 0.75), "12d", "zinc"),
    ("N", (0.4097, 0.9683, 0.6828), "48h", "imidazolate N"),
    ("C", (0.3770, 0.0079, 0.6230), "24g", "ring C between the two N"),
    ("C", (0.3685, 0.8991, 0.6875), "48h", "ring CH carbon"),
    ("C", (0.4061, 0.0855, 0.5939), "24g", "methyl C"),
]
RING_CH = 0.93
METHYL_CH = 0.96

MOF5_A = 25.832
MOF5_SPACEGROUP = 225  # Fm-3m
MOF5_SITES = [
    ("Zn", (0.2934, 0.7066, 0.7066), "32f", "zinc"),
    ("O", (0.25, 0.75, 0.75), "8c", "central O of Zn4O"),
    ("O", (0.2819, 0.7181, 0.6340), "96k", "carboxylate O"),
    ("C", (0.25, 0.75, 0.6113), "48g", "carboxylate C"),
    ("C", (0.25, 0.75, 0.5538), "48g", "ring C bonded to the carboxylate"),
    ("C", (0.2829, 0.2171, 0.0269), "96k", "ring CH carbon"),
    ("H", (0.3049, 0.1951, 0.0448), "96k", "ring H"),
]

#: Primitive cell vectors in units of the cubic lattice parameter (rows).
BCC_PRIMITIVE = 0.5 * np.array([[-1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, -1.0]])
FCC_PRIMITIVE = 0.5 * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])

STRUCTURES = {"zif8": "ZIF-8", "mof5": "MOF-5"}


def zif8(primitive: bool = False) -> Atoms:
    """ZIF-8 with ordered hydrogens and atom types ``C3a C3b C4a H1a H1b N3a Zn4a``.

    Parameters
    ----------
    primitive : bool
        The 138-atom bcc primitive cell instead of the 276-atom cubic cell.
    """
    heavy = _crystal(ZIF8_SITES, ZIF8_SPACEGROUP, ZIF8_A)
    sites = ZIF8_SITES + [
        ("H", position, wyckoff, role) for position, wyckoff, role in _zif8_hydrogen_sites(heavy)
    ]
    return _finish(_crystal(sites, ZIF8_SPACEGROUP, ZIF8_A), "ZIF-8", BCC_PRIMITIVE if primitive else None)


def mof5(primitive: bool = False) -> Atoms:
    """MOF-5 (IRMOF-1) with atom types ``C3a C3b C3c H1a O2a O4a Zn4a``.

    Parameters
    ----------
    primitive : bool
        The 106-atom fcc primitive cell instead of the 424-atom cubic cell.
    """
    return _finish(_crystal(MOF5_SITES, MOF5_SPACEGROUP, MOF5_A), "MOF-5", FCC_PRIMITIVE if primitive else None)


def _crystal(sites: list[tuple], spacegroup: int, a: float) -> Atoms:
    symbols = [site[0] for site in sites]
    basis = [site[1] for site in sites]
    return crystal(symbols, basis, spacegroup=spacegroup, cellpar=[a, a, a, 90, 90, 90])


def _zif8_hydrogen_sites(heavy: Atoms) -> list[tuple[tuple[float, float, float], str, str]]:
    """Fractional positions of one ring H and two methyl H (the in-mirror one and one of its images)."""
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
    ring_h = positions[ring_c] - RING_CH * bisector / np.linalg.norm(bisector)

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
        positions[methyl]
        + METHYL_CH * (np.cos(off_axis) * axis + np.sin(off_axis) * (np.cos(phi) * normal + np.sin(phi) * third))
        for phi in np.radians([0.0, 120.0])
    )
    fractional = [tuple(heavy.cell.scaled_positions(p[None])[0]) for p in (ring_h, in_mirror, image)]
    return list(zip(fractional, ["48h", "24g", "48h"], ["ring H", "methyl H in the mirror plane", "methyl H"]))


def _finish(conventional: Atoms, name: str, primitive_vectors: np.ndarray | None) -> Atoms:
    """Reduce to the primitive cell if asked, drop build-time arrays, type the atoms."""
    atoms = conventional if primitive_vectors is None else _primitive(conventional, primitive_vectors)
    atoms = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
    atoms.info["name"] = name
    assign_atom_types(atoms)
    return atoms


def _primitive(conventional: Atoms, vectors: np.ndarray) -> Atoms:
    """The atoms of ``conventional`` inside the primitive cell ``vectors`` (rows, in units of the cubic a)."""
    cell = vectors * conventional.cell.lengths()[0]
    fractional = conventional.positions @ np.linalg.inv(cell)
    fractional -= np.floor(fractional + 1e-6)
    key = np.round(fractional * 1e4).astype(np.int64) % 10**4
    _, first = np.unique(key, axis=0, return_index=True)
    first = np.sort(first)
    return Atoms(conventional.numbers[first], fractional[first] @ cell, cell=cell, pbc=True)


def summary(atoms: Atoms) -> dict:
    """Composition, cell, atom-type counts and shortest interatomic distance of a structure."""
    distances = atoms.get_all_distances(mic=True)
    np.fill_diagonal(distances, np.inf)
    return {
        "name": atoms.info.get("name", ""),
        "formula": atoms.get_chemical_formula(),
        "natoms": len(atoms),
        "cell_lengths_A": atoms.cell.lengths().round(6).tolist(),
        "cell_angles_deg": atoms.cell.angles().round(6).tolist(),
        "volume_A3": round(float(atoms.get_volume()), 4),
        "atom_types": dict(sorted(Counter(atoms.arrays["atom_types"].tolist()).items())),
        "shortest_distance_A": round(float(distances.min()), 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mofsnap.structures",
        description="Write a built-in MOF structure (with atom types) as extxyz, CIF, JSON summary and PNG picture.",
    )
    parser.add_argument("structure", choices=sorted(STRUCTURES), help="which framework: zif8 (ZIF-8) or mof5 (MOF-5)")
    parser.add_argument(
        "--primitive", action="store_true", help="primitive cell (ZIF-8: 138 atoms, MOF-5: 106), not the cubic one"
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("."), help="output directory (created if missing)")
    args = parser.parse_args(argv)

    from ase.io import write

    atoms = {"zif8": zif8, "mof5": mof5}[args.structure](primitive=args.primitive)
    stem = args.structure + ("_primitive" if args.primitive else "")
    args.output.mkdir(parents=True, exist_ok=True)
    write(args.output / f"{stem}.extxyz", atoms)
    write(args.output / f"{stem}.cif", atoms)
    write(args.output / f"{stem}.png", atoms, rotation="10x,-10y", show_unit_cell=2, radii=0.6)
    info = summary(atoms)
    (args.output / f"{stem}.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
