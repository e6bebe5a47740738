"""Reading a structure file, and describing and writing out a typed structure (extxyz, CIF, JSON and text
summary, picture)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

from .. import plotting
from ..exceptions import StructureError
from ..md import read_trajectory
from ..model import SNAPModel
from ..topology import METALS, bond_pairs
from .cells import describe_supercell, perpendicular_widths, snap_ready_matrix
from .cif import read_cif


def read_structure(path: str | Path) -> Atoms:
    """The structure in a file: a CIF (:func:`mofsnap.structures.cif.read_cif`, with gemmi where ASE fails), or
    the first frame of anything ASE reads (extxyz, POSCAR, ``.traj``, ...) with the atom types mofsnap wrote.

    Raises
    ------
    StructureError
        The file does not exist, or is a CIF that cannot be read.
    MDError
        A non-CIF file that ASE cannot read.
    """
    path = Path(path)
    if not path.is_file():
        raise StructureError(f"{path} does not exist; give a structure file (CIF, extxyz, POSCAR, ...) or a "
                             "built-in name")
    if path.suffix.lower() == ".cif":
        return read_cif(path)
    return read_trajectory(path, index=0)[0]


def summary(atoms: Atoms, warnings: list[str] | tuple[str, ...] = (), metal_bonds: bool = False) -> dict:
    """What a typed structure is: formula, cell, each type with its count and neighbours, metal coordination,
    the SNAP-ready supercell for the default model of its types, and ``warnings``."""
    labels = np.asarray(atoms.arrays["atom_types"]).astype(str)
    i, j, _, distance = bond_pairs(atoms, metal_bonds=metal_bonds)
    types, metals = {}, {}
    for label, count in sorted(Counter(labels.tolist()).items()):
        first = int(np.flatnonzero(labels == label)[0])
        around = Counter(labels[j[i == first]].tolist())
        types[label] = {"count": count, "neighbours": _in_words(around)}
        if atoms.numbers[first] in METALS:
            lengths = distance[np.isin(i, np.flatnonzero(labels == label))]
            elements = Counter(atoms.get_chemical_symbols()[b] for b in j[i == first])
            metals[label] = {"coordination": int(sum(around.values())), "ligand_atoms": _in_words(elements),
                             "bond_lengths_A": [round(float(lengths.min()), 3), round(float(lengths.max()), 3)]
                             if lengths.size else []}
    distances = atoms.get_all_distances(mic=True)
    np.fill_diagonal(distances, np.inf)
    cutoff = SNAPModel(sorted(types)).cutoff
    widths = perpendicular_widths(atoms.cell.array)
    return {
        "name": atoms.info.get("name", ""),
        "formula": atoms.get_chemical_formula(),
        "natoms": len(atoms),
        "cell_lengths_A": atoms.cell.lengths().round(6).tolist(),
        "cell_angles_deg": atoms.cell.angles().round(6).tolist(),
        "volume_A3": round(float(atoms.get_volume()), 4),
        "perpendicular_widths_A": widths.round(4).tolist(),
        "atom_types": {label: value["count"] for label, value in types.items()},
        "types": types,
        "metal_coordination": metals,
        "shortest_distance_A": round(float(distances.min()), 4),
        "snap_cutoff_A": round(cutoff, 4),
        "snap_ready_matrix": snap_ready_matrix(atoms.cell.array, cutoff).tolist(),
        "warnings": list(warnings),
    }


def summary_text(info: dict) -> str:
    """The :func:`summary` of a structure as a few lines of text."""
    a, b, c = info["cell_lengths_A"]
    alpha, beta, gamma = info["cell_angles_deg"]
    lines = [f"{info['name'] or 'structure'}: {info['formula']}, {info['natoms']} atoms",
             f"cell: {a:.4f} {b:.4f} {c:.4f} Å, {alpha:.2f} {beta:.2f} {gamma:.2f}°, volume {info['volume_A3']:.1f} Å³, "
             f"perpendicular widths {' '.join(f'{w:.2f}' for w in info['perpendicular_widths_A'])} Å",
             "types:"]
    lines += [f"  {label:6s} {value['count']:5d}  bonded to {value['neighbours'] or 'nothing'}"
              for label, value in info["types"].items()]
    if info["metal_coordination"]:
        lines.append("metal coordination:")
        for label, value in info["metal_coordination"].items():
            span = "-".join(f"{d:.3f}" for d in dict.fromkeys(value["bond_lengths_A"]))
            lines.append(f"  {label:6s} {value['coordination']}-coordinate by {value['ligand_atoms']}"
                         + (f", {span} Å" if span else ""))
    matrix = np.array(info["snap_ready_matrix"])
    ready = ("this cell is SNAP-ready" if (matrix == np.eye(3)).all()
             else f"use {describe_supercell(matrix)} (--snap-ready)")
    lines.append(f"SNAP: default cutoff {info['snap_cutoff_A']:.2f} Å needs widths above "
                 f"{2 * info['snap_cutoff_A']:.2f} Å: {ready}")
    lines += ["warnings:"] + [f"  - {w}" for w in info["warnings"]] if info["warnings"] else []
    return "\n".join(lines) + "\n"


def write_structure_files(atoms: Atoms, directory: str | Path, stem: str,
                          warnings: list[str] | tuple[str, ...] = (), metal_bonds: bool = False) -> list[Path]:
    """Write ``stem.extxyz`` (with atom types), ``stem.cif``, ``stem.json`` and ``stem.txt`` (:func:`summary`,
    :func:`summary_text`) and ``stem.png``.

    Parameters
    ----------
    atoms : Atoms
        A typed structure.
    directory : path
        Where the files go (created if missing).
    stem : str
        The file name without suffix.
    warnings : list of str
        Warnings to record in the summary.
    metal_bonds : bool
        Whether metal-metal contacts were bonds when typing.

    Returns
    -------
    list of Path
        The five files.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{stem}.{suffix}" for suffix in ("extxyz", "cif", "json", "txt")]
    info = summary(atoms, warnings, metal_bonds)
    write(paths[0], atoms)
    write(paths[1], Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True))
    paths[2].write_text(json.dumps(info, indent=2) + "\n")
    paths[3].write_text(summary_text(info))
    return paths + [plotting.structure_picture(atoms, directory / f"{stem}.png")]


def _in_words(counts: Counter) -> str:
    """``Counter({'N3a': 2, 'C4a': 1})`` -> ``"1 C4a, 2 N3a"``."""
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
