"""Reading and appending MD trajectories (extended XYZ with momenta and atom types, or ASE ``.traj``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read, write
from ase.io.trajectory import Trajectory

from ..exceptions import MDError


def read_trajectory(path: str | Path, index: str | int | slice = ":") -> list[Atoms]:
    """Frames of an extended-XYZ, ASE ``.traj`` or any ``ase.io``-readable trajectory.

    Atom types stored by :func:`run_md` in a ``.traj`` (``info["atom_types"]``) are restored to
    ``atoms.arrays["atom_types"]``; an extended-XYZ ``velocities`` column becomes the momenta.

    Raises
    ------
    MDError
        If the file does not exist, cannot be read by ``ase.io`` or holds no frame.
    """
    path = Path(path)
    if not path.is_file():
        raise MDError(f"{path} does not exist; give a structure or trajectory file (extxyz, CIF, .traj, ...)")
    try:
        frames = read(path, index=index)
    except Exception as error:  # ase.io raises many kinds of errors for files it cannot parse
        raise MDError(f"{path}: ase.io cannot read it ({type(error).__name__}: {error})") from error
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise MDError(f"{path} holds no frame")
    for atoms in frames:
        if "atom_types" not in atoms.arrays and "atom_types" in atoms.info:
            atoms.new_array("atom_types", np.array(atoms.info.pop("atom_types"), dtype=str))
        if "velocities" in atoms.arrays:
            atoms.set_velocities(atoms.arrays.pop("velocities"))
    return frames


class FrameWriter:
    """Appends frames to an extended-XYZ file (one open per frame, so a killed run leaves a valid file)
    or to an ASE ``.traj``."""

    def __init__(self, path: Path):
        self.path = path
        self._traj = Trajectory(str(path), "a") if path.suffix == ".traj" else None

    def write(self, atoms: Atoms, results: bool) -> None:
        if self._traj is not None:
            frame = atoms.copy()
            frame.calc = atoms.calc if results else None
            if "atom_types" in frame.arrays:
                frame.info["atom_types"] = frame.arrays["atom_types"].tolist()
            self._traj.write(frame)
        else:
            write(self.path, atoms, format="extxyz", append=True, write_results=results)

    def close(self) -> None:
        if self._traj is not None:
            self._traj.close()
