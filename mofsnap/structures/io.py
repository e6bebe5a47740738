"""Reading a structure file, and describing and writing out a structure (extxyz, CIF, JSON summary, picture)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

from .. import plotting
from ..md import read_trajectory


def read_structure(path: str | Path) -> Atoms:
    """The first frame of a structure file (CIF, extxyz, ASE ``.traj``, ...), with atom types restored as by
    :func:`mofsnap.md.read_trajectory`.

    Raises
    ------
    MDError
        The file does not exist, holds no frame or cannot be read.
    """
    return read_trajectory(path, index=0)[0]


def summary(atoms: Atoms) -> dict:
    """Composition, cell, atom-type counts and shortest interatomic distance of a (typed) structure."""
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


def write_structure_files(atoms: Atoms, directory: str | Path, stem: str) -> list[Path]:
    """Write ``stem.extxyz`` (with atom types), ``stem.cif``, ``stem.json`` (:func:`summary`) and ``stem.png``.

    Parameters
    ----------
    atoms : Atoms
        A typed structure.
    directory : path
        Where the files go (created if missing).
    stem : str
        The file name without suffix.

    Returns
    -------
    list of Path
        The four files.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{stem}.{suffix}" for suffix in ("extxyz", "cif", "json")]
    write(paths[0], atoms)
    write(paths[1], atoms)
    paths[2].write_text(json.dumps(summary(atoms), indent=2) + "\n")
    return paths + [plotting.structure_picture(atoms, directory / f"{stem}.png")]
