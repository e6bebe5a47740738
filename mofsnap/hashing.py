"""The one fingerprint of a configuration: what the label store, the descriptor cache and learn's state use."""

from __future__ import annotations

import hashlib

import numpy as np
from ase import Atoms

#: Decimals to which positions and cell are rounded: 1e-8 Å, far below any physical difference, so that a
#: configuration read back from a text file (extxyz) gets the same fingerprint as the one written.
DECIMALS = 8


def atoms_hash(atoms: Atoms, salt: str = "", types: bool = True) -> str:
    """A SHA-256 fingerprint (24 hex digits) of a configuration's geometry.

    Parameters
    ----------
    atoms : Atoms
        Numbers, positions, cell and periodicity are hashed; labels (energies, forces) are not.
    salt : str
        Mixed in first, e.g. the settings hash of a reference method, so that the same geometry labelled by
        two methods has two keys.
    types : bool
        Include ``atoms.arrays["atom_types"]`` when present.

    Returns
    -------
    str
        24 hexadecimal digits.
    """
    digest = hashlib.sha256(salt.encode())
    digest.update(np.ascontiguousarray(atoms.numbers, dtype=np.int64).tobytes())
    for array in (atoms.positions, atoms.cell.array):
        digest.update((np.round(np.asarray(array, dtype=np.float64), DECIMALS) + 0.0).tobytes())
    digest.update(np.asarray(atoms.pbc, dtype=np.bool_).tobytes())
    if types and "atom_types" in atoms.arrays:
        digest.update("\0".join(str(t) for t in atoms.arrays["atom_types"]).encode())
    return digest.hexdigest()[:24]
