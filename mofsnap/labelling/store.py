"""The label store: labelled configurations in an ``ase.db`` SQLite file, one row per request key.

Uniqueness is the database's job: a UNIQUE index on the ``label_hash`` key-value pair refuses a second row
of the same request, and every write (delete of an older row + insert) is one transaction.  Writers hold an
exclusive :func:`fcntl.flock` on ``<store>.lock`` beside the file; the kernel releases it when the holder
exits or is killed (even by SIGKILL), so a stale lock never blocks anyone.  A second writer either waits
(``wait`` seconds) or gets a one-line :class:`~mofsnap.exceptions.LabelStoreError` naming the holder.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ase.db
import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ..exceptions import LabellingError, LabelStoreError
from ..hashing import atoms_hash
from ..reference import Reference

PROVENANCE_KEYS = ("generation", "step", "temperature", "source", "frame")
"""Provenance taken from ``atoms.info`` (and overridable with ``metadata``) for every labelled row."""
STATUSES = ("ok", "pending", "failed")
"""Row states: a validated label, a label stored but not yet checked against its batch, a failure."""
_SQLITE_HEADER = b"SQLite format 3\x00"
_UNIQUE_KEY_INDEX = ("CREATE UNIQUE INDEX IF NOT EXISTS mofsnap_unique_label_hash "
                     "ON text_key_values(value) WHERE key = 'label_hash'")
_LOCK_POLL_SECONDS = 0.1


def label_key(atoms: Atoms, reference: Reference) -> str:
    """Store key of a labelling request: the geometry's :func:`~mofsnap.hashing.atoms_hash` salted with the
    reference's settings hash (atom types do not change a label, so they are not part of the key)."""
    return atoms_hash(atoms, salt=reference.settings_hash, types=False)


class LabelStore:
    """Labelled configurations in an ``ase.db`` SQLite file (one row per request key, enforced by the database).

    Rows carry ``label_hash``, ``status`` (see :data:`STATUSES`), ``reference``, ``settings_hash``,
    ``wall_time`` (s), ``host``, the :data:`PROVENANCE_KEYS` present, and for failures ``error``; atom types
    are kept in the row's data.  Iteration and :meth:`select` return only good labels (``status="ok"``), as
    Atoms carrying a :class:`~ase.calculators.singlepoint.SinglePointCalculator` (energy, forces, stress)
    and ``arrays["atom_types"]`` when known.

    Parameters
    ----------
    path
        SQLite file ending in ``.db`` (created if missing, its directory too).  An existing file must be a
        sound SQLite database: an empty, foreign or damaged file is refused with the fix.

    Raises
    ------
    LabelStoreError
        The file is empty, not SQLite, damaged, or holds duplicated keys.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.suffix != ".db":
            raise LabellingError(f"label store {self.path} must be an SQLite file ending in .db")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_handle: Any = None
        self._lock_depth = 0
        if not self.path.exists():
            with self.writing(wait=30.0):  # only another creator can hold it now, and only for a moment
                if not self.path.exists():
                    _create(self.path)
        _check_file(self.path)
        # ASE's own lock file would outlive a killed process and block all others; the flock does not
        self._db = ase.db.connect(str(self.path), type="db", append=True, use_lock_file=False)
        if not self._has_unique_index():  # a store of an older mofsnap
            with self.writing(), self._sql_errors(), self._db.managed_connection() as con:
                try:
                    con.execute(_UNIQUE_KEY_INDEX)
                except sqlite3.IntegrityError as exc:
                    raise LabelStoreError(
                        f"label store {self.path} holds duplicated label keys (written by an older mofsnap); "
                        "export its labels with LabelStore.export_extxyz and import them into a new store") from exc

    def __repr__(self) -> str:
        return f"LabelStore({str(self.path)!r})"

    # ------------------------------------------------------------------------------------------ locking

    @property
    def lock_path(self) -> Path:
        """The lock file beside the store (``labels.db.lock``)."""
        return self.path.with_name(self.path.name + ".lock")

    @contextmanager
    def writing(self, wait: float = 0.0) -> Iterator[None]:
        """Hold the store's exclusive write lock for the block (re-entrant within this object).

        Parameters
        ----------
        wait
            Seconds to wait for another process holding the lock; 0 refuses at once.

        Raises
        ------
        LabelStoreError
            Another process still holds the lock after ``wait`` seconds (the message names it).
        """
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        handle = open(self.lock_path, "a+")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    handle.close()
                    raise LabelStoreError(
                        f"label store {self.path} is being written by {holder}; wait for it to finish, or let this "
                        f"run wait for it (lock_timeout= / --lock-timeout SECONDS)") from None
                time.sleep(_LOCK_POLL_SECONDS)
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        self._lock_handle, self._lock_depth = handle, 1
        try:
            yield
        finally:
            self._lock_handle, self._lock_depth = None, 0
            handle.close()  # closing the descriptor releases the flock

    # ------------------------------------------------------------------------------------------ reading

    def statuses(self) -> dict[str, str]:
        """``{label_hash: status}`` of every row."""
        with self._sql_errors():
            return {row.label_hash: row.status for row in self._db.select(include_data=False)}

    def select(self, **filters: Any) -> Iterator[Atoms]:
        """Good labels matching ``filters`` on the stored key-value pairs, e.g. ``select(generation=2)``."""
        with self._sql_errors():
            for row in self._db.select(status="ok", **filters):
                yield _row_atoms(row)

    def __iter__(self) -> Iterator[Atoms]:
        return self.select()

    def __len__(self) -> int:
        with self._sql_errors():
            return self._db.count(status="ok")

    def get(self, key: str, status: str = "ok") -> Atoms:
        """The row of request ``key`` with ``status`` (a good label by default); :class:`KeyError` if none."""
        with self._sql_errors():
            rows = list(self._db.select(label_hash=key, status=status))
        if not rows:
            raise KeyError(f"no label {key!r} with status {status!r} in {self.path}")
        return _row_atoms(rows[0])

    def failures(self, **filters: Any) -> list[dict[str, Any]]:
        """Failed requests matching ``filters``: their key-value pairs, including ``error`` text."""
        with self._sql_errors():
            return [dict(row.key_value_pairs)
                    for row in self._db.select(status="failed", include_data=False, **filters)]

    def count_failures(self, **filters: Any) -> int:
        """Number of failed requests matching ``filters``."""
        with self._sql_errors():
            return self._db.count(status="failed", **filters)

    def energies_per_atom(self, statuses: tuple[str, ...] = ("ok",), **filters: Any) -> dict[str, tuple[str, float]]:
        """``{label_hash: (empirical formula, energy per atom in eV)}`` of the rows with one of ``statuses``."""
        out = {}
        with self._sql_errors():
            for status in statuses:
                for row in self._db.select(status=status, include_data=False, **filters):
                    if row.get("energy") is not None:
                        out[row.label_hash] = (_composition(row.toatoms()), row.energy / row.natoms)
        return out

    # ------------------------------------------------------------------------------------------ writing

    def write_label(self, key: str, atoms: Atoms, energy: float, forces: np.ndarray, stress: np.ndarray | None,
                    provenance: dict[str, Any], status: str = "ok") -> None:
        """Store a label (replacing a failure of the same key, if any).

        ``status="pending"`` stores it for a later check against its batch (:meth:`settle`); it is not
        returned by :meth:`select` until then.
        """
        if status not in ("ok", "pending"):
            raise LabellingError(f"a label's status is 'ok' or 'pending', not {status!r}")
        labelled = _bare(atoms)
        results = {"energy": energy, "free_energy": energy, "forces": np.asarray(forces)}
        if stress is not None:
            results["stress"] = np.asarray(stress)
        labelled.calc = SinglePointCalculator(labelled, **results)
        with self.writing(), self._sql_errors(), self._db:
            self._replace(key, labelled, {"status": status, **provenance}, _type_data(atoms))

    def write_failure(self, key: str, atoms: Atoms, error: str, provenance: dict[str, Any]) -> None:
        """Store a failed calculation with its error text (no energy, forces or stress)."""
        with self.writing(), self._sql_errors(), self._db:
            self._replace(key, _bare(atoms), {"status": "failed", "error": error, **provenance}, _type_data(atoms))

    def settle(self, accepted: list[str], rejected: dict[str, str]) -> None:
        """Turn pending labels into good labels (``accepted``) or failures (``rejected``: key -> reason), in one
        transaction."""
        with self.writing(), self._sql_errors(), self._db:
            for key in accepted:
                self._db.update(self._row_id(key), status="ok")
            for key, reason in rejected.items():
                row = self._db.get(self._row_id(key))
                provenance = {k: v for k, v in row.key_value_pairs.items() if k not in ("label_hash", "status")}
                atoms = _row_atoms(row)
                self._replace(key, _bare(atoms), {"status": "failed", "error": reason, **provenance},
                              _type_data(atoms))

    def import_extxyz(self, path: str | os.PathLike, reference: Reference, **metadata: Any) -> int:
        """Add labelled frames of an extxyz file as good labels of ``reference`` (skipping keys already stored).

        Every frame must carry energy and forces (and stress if the reference is periodic).  ``metadata``
        (e.g. ``generation=0, source="old.xyz"``) is recorded as provenance.  Returns the number of new rows.
        """
        added = 0
        with self.writing():
            stored = self.statuses()
            for frame_index, atoms in enumerate(ase.io.read(str(path), index=":", format="extxyz")):
                calc = atoms.calc
                needed = ("energy", "forces", "stress") if reference.periodic else ("energy", "forces")
                missing = [p for p in needed if calc is None or p not in calc.results]
                if missing:
                    raise LabellingError(f"frame {frame_index} of {path} has no {', '.join(missing)}; "
                                         "only labelled frames can be imported")
                key = label_key(atoms, reference)
                if stored.get(key) == "ok":
                    continue
                provenance = {**provenance_of(atoms, {"source": str(path), "frame": frame_index, **metadata}),
                              "reference": reference.name, "settings_hash": reference.settings_hash}
                self.write_label(key, atoms, calc.results["energy"], calc.results["forces"],
                                 calc.results.get("stress"), provenance)
                stored[key] = "ok"
                added += 1
        return added

    def export_extxyz(self, path: str | os.PathLike, **filters: Any) -> int:
        """Write the good labels matching ``filters`` to extxyz (energy, forces, stress, atom types, provenance).

        Returns the number of frames written.
        """
        frames = list(self.select(**filters))
        ase.io.write(str(path), frames, format="extxyz")
        return len(frames)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` answer (``"ok"`` for a sound file)."""
        with self._sql_errors(), sqlite3.connect(self.path) as con:
            return con.execute("PRAGMA integrity_check").fetchone()[0]

    # ------------------------------------------------------------------------------------------ internals

    def _has_unique_index(self) -> bool:
        with sqlite3.connect(self.path) as con:
            found = con.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'mofsnap_unique_label_hash'")
            return found.fetchone()[0] == 1

    def _row_id(self, key: str) -> int | None:
        found = self._db.connection.execute(
            "SELECT id FROM text_key_values WHERE key = 'label_hash' AND value = ?", (key,)).fetchone()
        return None if found is None else found[0]

    def _replace(self, key: str, atoms: Atoms, key_value_pairs: dict[str, Any], data: dict[str, Any]) -> None:
        """Insert the row of ``key``, deleting an older one, inside the caller's transaction."""
        old = self._row_id(key)
        if old is not None:
            self._db.delete([old])
        self._db.write(atoms, key_value_pairs={"label_hash": key, **key_value_pairs}, data=data)

    @contextmanager
    def _sql_errors(self) -> Iterator[None]:
        """Turn SQLite's errors about a damaged file into one line naming the file and the fix."""
        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as exc:
            raise LabelStoreError(_damaged(self.path, str(exc))) from exc


def _damaged(path: Path, detail: str) -> str:
    return (f"label store {path} is damaged ({detail}); restore it from a backup, or rescue its rows with "
            f"`sqlite3 {path} .recover | sqlite3 rescued.db` and use rescued.db")


def _create(path: Path) -> None:
    """Make an empty store with its unique index in a temporary file, then move it in place in one step (so
    that nobody ever sees a half-made file)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    db = ase.db.connect(str(temporary), type="db", use_lock_file=False)
    with db.managed_connection() as con:
        con.execute(_UNIQUE_KEY_INDEX)
    os.replace(temporary, path)


def _check_file(path: Path) -> None:
    """Refuse a store file that is empty, not SQLite, or fails SQLite's quick check."""
    if path.stat().st_size == 0:
        raise LabelStoreError(f"label store {path} is an empty file, not a database; delete it to start a new "
                              "store, or give the path of the store you meant")
    with open(path, "rb") as handle:
        if handle.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
            raise LabelStoreError(f"label store {path} is not an SQLite database (damaged, or another kind of "
                                  "file); restore it from a backup, or move it away to start a new store")
    try:
        with sqlite3.connect(path) as con:
            answer = con.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise LabelStoreError(_damaged(path, str(exc))) from exc
    if answer != "ok":
        raise LabelStoreError(_damaged(path, answer))


def _composition(atoms: Atoms) -> str:
    return atoms.get_chemical_formula(mode="hill", empirical=True)


def _bare(atoms: Atoms) -> Atoms:
    return Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)


def _type_data(atoms: Atoms) -> dict[str, Any]:
    types = atoms.arrays.get("atom_types")
    return {} if types is None else {"atom_types": [str(t) for t in types]}


def _row_atoms(row: Any) -> Atoms:
    atoms = row.toatoms()
    types = row.data.get("atom_types")
    if types is not None:
        atoms.arrays["atom_types"] = np.array(types, dtype=str)
    atoms.info.update({k: v for k, v in row.key_value_pairs.items() if k != "status"})
    return atoms


def provenance_of(atoms: Atoms, metadata: dict[str, Any]) -> dict[str, Any]:
    """The :data:`PROVENANCE_KEYS` of ``atoms.info`` updated by ``metadata``, as plain scalars (None dropped).

    Raises
    ------
    LabellingError
        A value that is not a bool, int, float or str.
    """
    merged = {k: atoms.info[k] for k in PROVENANCE_KEYS if k in atoms.info}
    merged.update(metadata)
    out = {}
    for key, value in merged.items():
        if value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, (bool, int, float, str)):
            raise LabellingError(f"metadata {key}={value!r} must be a bool, int, float or str")
        out[key] = value
    return out
