"""Label configurations with a reference method through a :class:`concurrent.futures.Executor` into ``ase.db``.

:func:`label` sends each configuration with a picklable :class:`~mofsnap.reference.Reference` to an executor
(a local process pool by default; Dask's ``Client(...).get_executor()``, Parsl or any other implementation of
the interface for clusters) and writes every result into a :class:`LabelStore` - an ``ase.db`` SQLite file -
from the calling process the moment it arrives.  Each row is keyed by a hash of positions, cell, numbers, pbc
and the reference settings, so re-running the same request after a crash or a kill skips finished work.
Failed calculations (SCF not converged, crashed worker, timeout) are stored as failures with their error text
and are never returned as labels.

Command line: ``mofsnap label frames.extxyz -o labels/ --reference gfn1-xtb --workers 2`` (or
``python -m mofsnap.labelling``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import ase.db
import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from tqdm.auto import tqdm

from .exceptions import ExecutorUnavailableError, LabelTimeout, LabellingError, MofsnapError
from .hashing import atoms_hash
from .reference import Reference
from .results import write_result

log = logging.getLogger(__name__)

PROVENANCE_KEYS = ("generation", "step", "temperature", "source", "frame")
"""Provenance taken from ``atoms.info`` (and overridable with ``metadata``) for every labelled row."""
POLL_SECONDS = 0.2
MAX_POOL_RESTARTS = 3


def label_key(atoms: Atoms, reference: Reference) -> str:
    """Store key of a labelling request: the geometry's :func:`~mofsnap.hashing.atoms_hash` salted with the
    reference's settings hash (atom types do not change a label, so they are not part of the key)."""
    return atoms_hash(atoms, salt=reference.settings_hash, types=False)


# ----------------------------------------------------------------------------------------------- store


class LabelStore:
    """Labelled configurations in an ``ase.db`` SQLite file (one row per request key).

    Rows carry ``label_hash``, ``status`` (``"ok"`` or ``"failed"``), ``reference``, ``settings_hash``,
    ``wall_time`` (s), ``host``, the :data:`PROVENANCE_KEYS` present, and for failures ``error``; atom types
    are kept in the row's data.  Iteration and :meth:`select` return only good labels, as Atoms carrying a
    :class:`~ase.calculators.singlepoint.SinglePointCalculator` (energy, forces, stress) and
    ``arrays["atom_types"]`` when known.

    Parameters
    ----------
    path
        SQLite file (created if missing; its directory too).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.suffix != ".db":
            raise LabellingError(f"label store {self.path} must be an SQLite file ending in .db")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite does its own locking; ASE's extra lock file would outlive a killed process and block all others
        self._db = ase.db.connect(str(self.path), type="db", append=True, use_lock_file=False)

    def __repr__(self) -> str:
        return f"LabelStore({str(self.path)!r})"

    def statuses(self) -> dict[str, str]:
        """``{label_hash: status}`` of every row."""
        return {row.label_hash: row.status for row in self._db.select(include_data=False)}

    def _row_id(self, key: str) -> int | None:
        ids = [row.id for row in self._db.select(label_hash=key, include_data=False)]
        return ids[0] if ids else None

    def _replace(self, key: str, atoms: Atoms, key_value_pairs: dict[str, Any], data: dict[str, Any]) -> None:
        """Insert the row of ``key``, replacing an older one, in a single transaction."""
        old = self._row_id(key)
        with self._db:
            if old is not None:
                self._db.delete([old])
            self._db.write(atoms, key_value_pairs={"label_hash": key, **key_value_pairs}, data=data)

    def write_label(self, key: str, atoms: Atoms, energy: float, forces: np.ndarray, stress: np.ndarray | None,
                    provenance: dict[str, Any]) -> None:
        """Store a good label (replacing a failure of the same key, if any)."""
        labelled = _bare(atoms)
        results = {"energy": energy, "free_energy": energy, "forces": np.asarray(forces)}
        if stress is not None:
            results["stress"] = np.asarray(stress)
        labelled.calc = SinglePointCalculator(labelled, **results)
        self._replace(key, labelled, {"status": "ok", **provenance}, _type_data(atoms))

    def write_failure(self, key: str, atoms: Atoms, error: str, provenance: dict[str, Any]) -> None:
        """Store a failed calculation with its error text (no energy, forces or stress)."""
        self._replace(key, _bare(atoms), {"status": "failed", "error": error, **provenance}, _type_data(atoms))

    def select(self, **filters: Any) -> Iterator[Atoms]:
        """Good labels matching ``filters`` on the stored key-value pairs, e.g. ``select(generation=2)``."""
        for row in self._db.select(status="ok", **filters):
            yield _row_atoms(row)

    def __iter__(self) -> Iterator[Atoms]:
        return self.select()

    def __len__(self) -> int:
        return self._db.count(status="ok")

    def get(self, key: str) -> Atoms:
        """The good label of request ``key``; :class:`KeyError` if it is missing or a failure."""
        rows = list(self._db.select(label_hash=key, status="ok"))
        if not rows:
            raise KeyError(f"no label {key!r} in {self.path} (missing or failed)")
        return _row_atoms(rows[0])

    def failures(self, **filters: Any) -> list[dict[str, Any]]:
        """Failed requests matching ``filters``: their key-value pairs, including ``error`` text."""
        return [dict(row.key_value_pairs) for row in self._db.select(status="failed", include_data=False,
                                                                     **filters)]

    def count_failures(self, **filters: Any) -> int:
        """Number of failed requests matching ``filters``."""
        return self._db.count(status="failed", **filters)

    def export_extxyz(self, path: str | os.PathLike, **filters: Any) -> int:
        """Write the good labels matching ``filters`` to extxyz (energy, forces, stress, atom types, provenance).

        Returns the number of frames written.
        """
        frames = list(self.select(**filters))
        ase.io.write(str(path), frames, format="extxyz")
        return len(frames)

    def import_extxyz(self, path: str | os.PathLike, reference: Reference, **metadata: Any) -> int:
        """Add labelled frames of an extxyz file as good labels of ``reference`` (skipping keys already stored).

        Every frame must carry energy and forces (and stress if the reference is periodic).  ``metadata``
        (e.g. ``generation=0, source="old.xyz"``) is recorded as provenance.  Returns the number of new rows.
        """
        stored = self.statuses()
        added = 0
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
            provenance = {**_provenance(atoms, {"source": str(path), "frame": frame_index, **metadata}),
                          "reference": reference.name, "settings_hash": reference.settings_hash}
            self.write_label(key, atoms, calc.results["energy"], calc.results["forces"],
                             calc.results.get("stress"), provenance)
            stored[key] = "ok"
            added += 1
        return added

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` answer (``"ok"`` for a sound file)."""
        with sqlite3.connect(self.path) as con:
            return con.execute("PRAGMA integrity_check").fetchone()[0]


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


def _provenance(atoms: Atoms, metadata: dict[str, Any]) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------------------------- worker side

_local = threading.local()


def _worker_calculator(reference: Reference) -> Any:
    """One calculator per reference and worker thread, reused (a CP2K shell is started once)."""
    cache = _local.__dict__.setdefault("calculators", {})
    key = repr(reference)
    if key not in cache:
        cache[key] = reference.calculator()
    return cache[key]


def _drop_calculator(reference: Reference) -> None:
    calc = _local.__dict__.get("calculators", {}).pop(repr(reference), None)
    if calc is not None:
        reference.abort(calc)


@contextmanager
def _deadline(seconds: float | None, reference: Reference, calc: Any) -> Iterator[None]:
    """Interrupt the block after ``seconds``: SIGALRM in a main thread, else ``reference.abort(calc)``."""
    if seconds is None:
        yield
        return
    if threading.current_thread() is threading.main_thread():
        def _alarm(signum: int, frame: Any) -> None:
            raise LabelTimeout(f"calculation exceeded the {seconds:g} s time limit")

        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    else:
        timer = threading.Timer(seconds, reference.abort, args=(calc,))
        timer.start()
        try:
            yield
        finally:
            timer.cancel()


def _label_one(reference: Reference, atoms: Atoms, timeout: float | None) -> dict[str, Any]:
    """Worker task: energy, forces (and stress) of one configuration, or the error text of its failure."""
    start = time.perf_counter()
    host = socket.gethostname()
    try:
        calc = _worker_calculator(reference)
        work = atoms.copy()
        work.calc = calc
        with _deadline(timeout, reference, calc):
            energy = work.get_potential_energy()
            forces = work.get_forces()
            stress = work.get_stress() if reference.periodic else None
        elapsed = time.perf_counter() - start
        if timeout is not None and elapsed > timeout:
            raise LabelTimeout(f"calculation took {elapsed:.1f} s, over the {timeout:g} s time limit")
        return {"ok": True, "energy": float(energy), "forces": np.array(forces),
                "stress": None if stress is None else np.array(stress), "wall_time": elapsed, "host": host}
    except Exception as exc:  # any failure of the reference is data to be stored, not a crash of the run
        _drop_calculator(reference)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip(),
                "wall_time": time.perf_counter() - start, "host": host}


def _probe(reference: Reference) -> str:
    """Worker task run first: checks the reference program is usable there; returns the host name."""
    reference.check_environment()
    return socket.gethostname()


def _init_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


# --------------------------------------------------------------------------------------------- main side


@dataclass
class LabelSummary:
    """Outcome of one :func:`label` call.

    Attributes
    ----------
    keys
        Store key of every input configuration, in input order.
    done, failed, skipped
        Configurations labelled now, failed now, and found already in the store (good, or failed and not
        retried).
    wall_time
        Elapsed seconds of the whole call.
    work_time
        Sum over calculations of their wall time inside the workers.
    store_time
        Seconds spent writing rows into the store.
    """

    keys: list[str] = field(default_factory=list)
    done: int = 0
    failed: int = 0
    skipped: int = 0
    wall_time: float = 0.0
    work_time: float = 0.0
    store_time: float = 0.0


@dataclass
class _Item:
    key: str
    atoms: Atoms
    provenance: dict[str, Any]


def label(configs: Sequence[Atoms], reference: Reference, store: LabelStore | str | os.PathLike,
          executor: Executor | str | None = None, metadata: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
          *, timeout: float | None = None, retry_failed: bool = False, max_workers: int | None = None,
          probe_timeout: float = 60.0, progress: bool = True) -> LabelSummary:
    """Label ``configs`` with ``reference`` and store each result as soon as it arrives.

    Parameters
    ----------
    configs
        Configurations (periodic, for periodic references); ``atoms.arrays["atom_types"]`` is kept, and
        ``atoms.info`` entries named in :data:`PROVENANCE_KEYS` become provenance.
    reference
        Picklable reference specification (:class:`~mofsnap.reference.XTB`, :class:`~mofsnap.reference.CP2K`,
        :class:`~mofsnap.reference.ASEReference`).
    store
        :class:`LabelStore` or path of its ``.db`` file.
    executor
        Any :class:`concurrent.futures.Executor` (e.g. ``distributed.Client(...).get_executor()``), a Dask
        scheduler address such as ``"tcp://10.0.0.5:8786"``, or ``None`` for a local process pool of
        ``max_workers`` (default: one per CPU).  Executors passed in are not shut down.
    metadata
        Provenance for all configurations (one dict) or for each (a list as long as ``configs``), e.g.
        ``{"generation": 3, "temperature": 400.0, "source": "md_400K.traj"}``; overrides ``atoms.info``.
    timeout
        Seconds allowed per calculation; a slower one is stored as a failure.
    retry_failed
        Also recompute requests whose stored row is a failure (good labels are never recomputed).
    max_workers
        Size of the local process pool when ``executor`` is ``None``.
    probe_timeout
        Seconds to wait for a first worker to answer before declaring the executor unreachable.
    progress
        Show a tqdm bar (done / failed / remaining / rate); each item is also logged at INFO level.

    Returns
    -------
    LabelSummary

    Raises
    ------
    ReferenceMethodError
        A configuration cannot be treated by the reference (no cell, element without basis...).
    ExecutorUnavailableError
        The executor refuses work, or no worker answered within ``probe_timeout``.
    """
    start = time.perf_counter()
    store = store if isinstance(store, LabelStore) else LabelStore(store)
    reference.check_picklable()
    configs = list(configs)
    per_config = _metadata_list(metadata, len(configs))
    summary = LabelSummary()
    stored = store.statuses()
    todo: dict[str, _Item] = {}
    for atoms, meta in zip(configs, per_config):
        reference.check(atoms)
        key = label_key(atoms, reference)
        summary.keys.append(key)
        status = stored.get(key)
        if key in todo or status == "ok" or (status == "failed" and not retry_failed):
            summary.skipped += status is not None
            continue
        provenance = {**_provenance(atoms, meta), "reference": reference.name,
                      "settings_hash": reference.settings_hash}
        todo[key] = _Item(key, atoms, provenance)
    if todo:
        with _executor(executor, max_workers, probe_timeout, reference) as (pool, restart):
            _run(list(todo.values()), reference, store, pool, restart, timeout, summary, progress)
    summary.wall_time = time.perf_counter() - start
    return summary


def _metadata_list(metadata: dict[str, Any] | Sequence[dict[str, Any]] | None, n: int) -> list[dict[str, Any]]:
    if metadata is None:
        return [{}] * n
    if isinstance(metadata, dict):
        return [metadata] * n
    if len(metadata) != n:
        raise LabellingError(f"metadata has {len(metadata)} entries for {n} configurations")
    return list(metadata)


@contextmanager
def _executor(executor: Executor | str | None, max_workers: int | None, probe_timeout: float,
              reference: Reference) -> Iterator[tuple[Executor, Callable[[], Executor] | None]]:
    """The executor to use (probed), and for an owned local pool a factory to rebuild it after a crash."""
    owned: list[Any] = []

    def local_pool() -> Executor:
        pool = ProcessPoolExecutor(max_workers=max_workers or os.cpu_count() or 1,
                                   mp_context=get_context("forkserver"), initializer=_init_worker)
        owned.append(pool)
        return pool

    try:
        if executor is None:
            pool, restart = local_pool(), local_pool
        elif isinstance(executor, str):
            pool, restart = _dask_executor(executor, probe_timeout, owned), None
        else:
            pool, restart = executor, None
        _probe_executor(pool, reference, probe_timeout)
        yield pool, restart
    finally:
        for resource in owned:
            (resource.close if hasattr(resource, "close") else resource.shutdown)()


def _dask_executor(address: str, probe_timeout: float, owned: list[Any]) -> Executor:
    try:
        from distributed import Client
    except ImportError as exc:
        raise ExecutorUnavailableError(f"executor address {address!r} needs Dask: pip install "
                                       "'dask[distributed]'") from exc
    try:
        client = Client(address, timeout=probe_timeout)
    except OSError as exc:
        raise ExecutorUnavailableError(f"cannot reach the Dask scheduler at {address!r} within "
                                       f"{probe_timeout:g} s: {exc}") from exc
    owned.append(client)
    return client.get_executor()


def _probe_executor(pool: Executor, reference: Reference, probe_timeout: float) -> None:
    try:
        future = pool.submit(_probe, reference)
    except RuntimeError as exc:  # shut down or otherwise closed executors raise RuntimeError
        raise ExecutorUnavailableError(f"executor {pool!r} refuses work: {exc}") from exc
    done, _ = wait([future], timeout=probe_timeout)
    if not done:
        future.cancel()
        raise ExecutorUnavailableError(f"no worker of executor {pool!r} answered within {probe_timeout:g} s "
                                       "(no workers, or workers unreachable)")
    exc = future.exception()
    if exc is not None:
        if isinstance(exc, MofsnapError):
            raise exc
        raise ExecutorUnavailableError(f"executor {pool!r} failed to run a probe task: "
                                       f"{type(exc).__name__}: {exc}") from exc
    log.info("executor %r answers from host %s", pool, future.result())


def _run(items: list[_Item], reference: Reference, store: LabelStore, pool: Executor,
         restart: Callable[[], Executor] | None, timeout: float | None, summary: LabelSummary,
         progress: bool) -> None:
    """Submit ``items`` and store results as they complete, rebuilding an owned local pool whose worker died.

    The configurations that were running when a worker died are suspects: they are rerun one at a time after
    the others, so that a configuration that kills its worker again is stored as a failure while every
    other configuration is labelled.
    """
    bar = tqdm(total=len(items), unit="cfg", desc=f"labelling ({reference.name})", disable=not progress)
    suspects: list[_Item] = []
    deaths_in_a_row = 0
    try:
        while items or suspects:
            alone = not items
            batch, items = (suspects[:1], items) if alone else (items, [])
            suspects = suspects[1:] if alone else suspects
            lost = _submit_and_store(batch, reference, store, pool, restart is not None, timeout, summary, bar)
            if lost is None:
                deaths_in_a_row = 0
                continue
            unfinished, running = lost
            if alone:
                _store_result(store, batch[0], {
                    "ok": False, "error": "worker process died (killed, out of memory or crashed) while labelling "
                    "this configuration alone", "wall_time": 0.0, "host": ""}, summary, bar)
            else:
                suspected = running or unfinished
                suspects += suspected
                items = [item for item in unfinished if all(item is not s for s in suspected)]
            deaths_in_a_row += 1
            if deaths_in_a_row > MAX_POOL_RESTARTS:
                raise LabellingError(f"the local worker pool died {deaths_in_a_row} times in a row; stopping "
                                     "(finished labels are stored)")
            log.warning("worker pool died; restarting it (%d configurations to go, %d of them rerun one by one)",
                        len(items) + len(suspects), len(suspects))
            pool = restart()
    finally:
        bar.close()


def _submit_and_store(items: list[_Item], reference: Reference, store: LabelStore, pool: Executor,
                      restartable: bool, timeout: float | None, summary: LabelSummary,
                      bar: tqdm) -> tuple[list[_Item], list[_Item]] | None:
    """Label ``items`` on ``pool``, storing each result as it arrives.

    Returns None when all are stored, or, when a restartable pool broke, the items left unfinished and those
    of them that were running at the last look.
    """
    pending: dict[Future, _Item] = {}
    for item in items:
        try:
            pending[pool.submit(_label_one, reference, item.atoms, timeout)] = item
        except RuntimeError as exc:
            raise ExecutorUnavailableError(f"executor {pool!r} refuses work: {exc}") from exc
    running: list[_Item] = []
    while pending:
        done, _ = wait(list(pending), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
        unfinished: list[_Item] = []
        for future in done:
            item = pending.pop(future)
            exc = future.exception()
            if isinstance(exc, BrokenProcessPool) and restartable:
                unfinished.append(item)
                continue
            result = future.result() if exc is None else {
                "ok": False, "error": f"worker failed: {type(exc).__name__}: {exc}", "wall_time": 0.0, "host": ""}
            _store_result(store, item, result, summary, bar)
        if unfinished:
            unfinished += pending.values()
            return unfinished, [item for item in running if any(item is u for u in unfinished)]
        running = [item for future, item in pending.items() if future.running()]
    return None


def _store_result(store: LabelStore, item: _Item, result: dict[str, Any], summary: LabelSummary, bar: tqdm) -> None:
    provenance = {**item.provenance, "wall_time": result["wall_time"], "host": result["host"]}
    start = time.perf_counter()
    if result["ok"]:
        store.write_label(item.key, item.atoms, result["energy"], result["forces"], result["stress"], provenance)
        summary.done += 1
        log.info("labelled %s (%s) in %.2f s", item.key, item.atoms.get_chemical_formula(), result["wall_time"])
    else:
        store.write_failure(item.key, item.atoms, result["error"], provenance)
        summary.failed += 1
        log.warning("failed %s (%s): %s", item.key, item.atoms.get_chemical_formula(), result["error"])
    summary.store_time += time.perf_counter() - start
    summary.work_time += result["wall_time"]
    bar.update()
    bar.set_postfix(done=summary.done, failed=summary.failed, refresh=False)


def write_report(summary: LabelSummary, store: LabelStore, reference: Reference, out: str | os.PathLike) -> Path:
    """Write ``labelling.json`` (counts, timings, failures) and ``labelling.png`` of one :func:`label` call.

    The figure shows the wall time per calculation and the energy per atom of the requested configurations
    now labelled in ``store``. Returns the JSON file.
    """
    from . import plotting

    out = Path(out)
    requested = set(summary.keys)
    labelled = [a for a in store.select(settings_hash=reference.settings_hash) if a.info["label_hash"] in requested]
    plotting.labelling_figure(np.array([a.info["wall_time"] for a in labelled]),
                              np.array([a.get_potential_energy() / len(a) for a in labelled]),
                              f"{reference.name}: {len(labelled)} labelled, {store.count_failures()} failed in store",
                              out / "labelling.png")
    return write_result(out / "labelling.json", "labelling-report", 1, {
        "reference": reference.name, "settings_hash": reference.settings_hash,
        "settings": json.loads(json.dumps(reference.settings, default=str)), "requested": len(summary.keys),
        "done": summary.done, "failed": summary.failed, "skipped": summary.skipped,
        "wall_time_s": summary.wall_time, "work_time_s": summary.work_time, "store_time_s": summary.store_time,
        "labelled_total": len(labelled), "failures": store.failures(settings_hash=reference.settings_hash)})


if __name__ == "__main__":
    from mofsnap.cli import run_as_module

    run_as_module("label")
