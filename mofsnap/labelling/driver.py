"""The labelling driver: configurations to an :class:`~concurrent.futures.Executor`, results into a label store.

:func:`label` checks every configuration (:func:`~mofsnap.labelling.checks.check_configuration`), sends
those not yet labelled with a picklable :class:`~mofsnap.reference.Reference` to an executor (a local
process pool by default; Dask's ``Client(...).get_executor()``, Parsl or any other implementation of the
interface for clusters) and writes every result into a :class:`~mofsnap.labelling.store.LabelStore` from the
calling process the moment it arrives, holding the store's write lock for the whole call.  A result whose
numbers are not finite or whose largest force is out of bounds is stored as a failure with its reason; the
others are stored ``pending`` and, once the batch is complete, become good labels or failures by their
energy per atom relative to the batch (:func:`~mofsnap.labelling.checks.energy_outliers`).
"""

from __future__ import annotations

import faulthandler
import json
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from ..exceptions import ExecutorUnavailableError, LabelTimeout, LabellingError, MofsnapError
from ..executors import describe_executor, worker_pool
from ..reference import Reference
from ..results import write_result
from .checks import LabelChecks, check_configuration, energy_outliers, label_problem
from .store import LabelStore, label_key, provenance_of

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
MAX_POOL_RESTARTS = 3
#: Seconds past ``timeout`` after which a worker process whose reference does not return (hung in compiled
#: code, where the time limit's SIGALRM cannot interrupt it) ends itself, so that its pool is rebuilt.
HARD_DEADLINE_GRACE = 5.0


# ---------------------------------------------------------------------------------------------- worker side

_local = threading.local()


def _worker_calculator(reference: Reference, atoms: Atoms) -> Any:
    """The calculator for ``atoms``: kept per reference, spin state and worker thread when the reference is
    :attr:`~mofsnap.reference.Reference.reusable` (a CP2K shell is started once), else a fresh one."""
    if not reference.reusable:
        return reference.calculator(atoms)
    cache = _local.__dict__.setdefault("calculators", {})
    key = (repr(reference), reference.unpaired_electrons_for(atoms))
    if key not in cache:
        cache[key] = reference.calculator(atoms)
    return cache[key]


def _drop_calculator(reference: Reference, calc: Any) -> None:
    """Forget a calculator after a failure (and stop what it runs)."""
    cache = _local.__dict__.get("calculators", {})
    for key in [k for k, c in cache.items() if c is calc]:
        del cache[key]
    if calc is not None:
        reference.abort(calc)


@contextmanager
def _deadline(seconds: float | None, reference: Reference, calc: Any) -> Iterator[None]:
    """Interrupt the block after ``seconds``: SIGALRM in a main thread, else ``reference.abort(calc)``.

    In a worker process, a watchdog that needs neither signals nor the interpreter (``faulthandler``) also
    ends the process :data:`HARD_DEADLINE_GRACE` seconds later (printing where it hung), in case the
    reference hangs where neither reaches it; the labelling side then stores the configuration as timed out.
    """
    if seconds is None:
        yield
        return
    if multiprocessing.parent_process() is not None:
        faulthandler.dump_traceback_later(seconds + HARD_DEADLINE_GRACE, exit=True)
        try:
            with _soft_deadline(seconds, reference, calc):
                yield
        finally:
            faulthandler.cancel_dump_traceback_later()
    else:
        with _soft_deadline(seconds, reference, calc):
            yield


@contextmanager
def _soft_deadline(seconds: float, reference: Reference, calc: Any) -> Iterator[None]:
    """Raise :class:`LabelTimeout` in the block after ``seconds`` (main thread), else abort the calculator."""
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
    calc = None
    try:
        calc = _worker_calculator(reference, atoms)
        work = atoms.copy()
        work.calc = calc
        with _deadline(timeout, reference, calc):
            energy = work.get_potential_energy()
            forces = work.get_forces()
            stress = work.get_stress() if reference.periodic else None
        elapsed = time.perf_counter() - start
        if timeout is not None and elapsed > timeout:
            raise LabelTimeout(f"calculation took {elapsed:.1f} s, over the {timeout:g} s time limit")
        return {"ok": True, "energy": energy, "forces": np.array(forces),
                "stress": None if stress is None else np.array(stress), "wall_time": elapsed, "host": host}
    except Exception as exc:  # any failure of the reference is data to be stored, not a crash of the run
        _drop_calculator(reference, calc)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip(),
                "wall_time": time.perf_counter() - start, "host": host}


def _probe(reference: Reference) -> str:
    """Worker task run first: checks the reference program is usable there; returns the host name."""
    reference.check_environment()
    return socket.gethostname()


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
          *, checks: LabelChecks = LabelChecks(), timeout: float | None = None, retry_failed: bool = False,
          max_workers: int | None = None, probe_timeout: float = 60.0, lock_timeout: float = 0.0,
          progress: bool = True) -> LabelSummary:
    """Label ``configs`` with ``reference``, storing each result as soon as it arrives.

    Every configuration is checked first (:func:`~mofsnap.labelling.checks.check_configuration`); one that
    fails stops the call before any reference call.  Results are checked as they arrive
    (:func:`~mofsnap.labelling.checks.label_problem`) and, once all are in, against the batch
    (:func:`~mofsnap.labelling.checks.energy_outliers`); rejected ones are stored as failures with the reason.

    Parameters
    ----------
    configs
        Configurations (periodic, for periodic references); ``atoms.arrays["atom_types"]`` is kept, and
        ``atoms.info`` entries named in :data:`~mofsnap.labelling.store.PROVENANCE_KEYS` become provenance.
    reference
        Picklable reference specification (:class:`~mofsnap.reference.XTB`, :class:`~mofsnap.reference.CP2K`,
        :class:`~mofsnap.reference.ASEReference`).
    store
        :class:`~mofsnap.labelling.store.LabelStore` or path of its ``.db`` file.
    executor
        Any :class:`concurrent.futures.Executor` (e.g. ``distributed.Client(...).get_executor()``), a Dask
        scheduler address such as ``"tcp://10.0.0.5:8786"``, or ``None`` for a local process pool of
        ``max_workers`` (default: one per CPU).  Executors passed in are not shut down.
    metadata
        Provenance for all configurations (one dict) or for each (a list as long as ``configs``), e.g.
        ``{"generation": 3, "temperature": 400.0, "source": "md_400K.traj"}``; overrides ``atoms.info``.
    checks
        Bounds on inputs and labels (:class:`~mofsnap.labelling.checks.LabelChecks`).
    timeout
        Seconds allowed per calculation; a slower one is stored as a failure.
    retry_failed
        Also recompute requests whose stored row is a failure (good labels are never recomputed).
    max_workers
        Size of the local process pool when ``executor`` is ``None``.
    probe_timeout
        Seconds to wait for a first worker to answer before declaring the executor unreachable.
    lock_timeout
        Seconds to wait while another process writes the store; 0 refuses at once.
    progress
        Show a tqdm bar (done / failed / remaining / rate); each item is also logged at INFO level.

    Returns
    -------
    LabelSummary

    Raises
    ------
    ConfigurationError
        A configuration is impossible (overlapping atoms, Z = 0, non-finite positions, wrong types).
    ReferenceMethodError
        A configuration cannot be treated by the reference (no cell, element without parameters...).
    LabelStoreError
        Another process writes the store (after ``lock_timeout``), or the store file is unusable.
    ExecutorUnavailableError
        The executor refuses work, or no worker answered within ``probe_timeout``.
    """
    start = time.perf_counter()
    store = store if isinstance(store, LabelStore) else LabelStore(store)
    reference.check_picklable()
    configs = list(configs)
    per_config = _metadata_list(metadata, len(configs))
    for index, (atoms, meta) in enumerate(zip(configs, per_config)):
        check_configuration(atoms, reference, checks, _describe(index, {**atoms.info, **meta}))
    summary = LabelSummary()
    with store.writing(lock_timeout):
        stored = store.statuses()
        todo: dict[str, _Item] = {}
        for atoms, meta in zip(configs, per_config):
            key = label_key(atoms, reference)
            summary.keys.append(key)
            status = stored.get(key)
            if key in todo or status in ("ok", "pending") or (status == "failed" and not retry_failed):
                summary.skipped += status is not None
                continue
            provenance = {**provenance_of(atoms, meta), "reference": reference.name,
                          "settings_hash": reference.settings_hash}
            todo[key] = _Item(key, atoms, provenance)
        if todo:
            with _executor(executor, max_workers, probe_timeout, reference) as (pool, restart):
                _run(list(todo.values()), reference, store, pool, restart, timeout, checks, summary, progress)
        _settle(store, summary, reference, checks, set(todo))
    summary.wall_time = time.perf_counter() - start
    return summary


def _describe(index: int, info: dict[str, Any]) -> str:
    """How messages name configuration ``index``: with its frame and source file when known."""
    if "source" in info and "frame" in info:
        return f"configuration {index} (frame {info['frame']} of {info['source']})"
    return f"configuration {index}"


def _settle(store: LabelStore, summary: LabelSummary, reference: Reference, checks: LabelChecks,
            labelled_now: set[str]) -> None:
    """Judge the pending labels of this batch (``labelled_now`` and any left by a killed earlier run) against
    the batch and the reference's good labels, and correct the counts of ``summary``."""
    requested = set(summary.keys)
    pending = {k: v for k, v in store.energies_per_atom(("pending",)).items() if k in requested}
    if not pending:
        return
    accepted = store.energies_per_atom(("ok",), settings_hash=reference.settings_hash)
    rejected = energy_outliers(pending, accepted, checks)
    store.settle([k for k in pending if k not in rejected], rejected)
    for key, reason in rejected.items():
        log.warning("rejected %s: %s", key, reason)
    fresh = len(labelled_now.intersection(rejected))
    summary.done -= fresh
    summary.failed += fresh


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
        pool = worker_pool(max_workers or os.cpu_count() or 1)
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
        raise ExecutorUnavailableError(f"{describe_executor(pool)} refuses work: {exc}") from exc
    done, _ = wait([future], timeout=probe_timeout)
    if not done:
        future.cancel()
        raise ExecutorUnavailableError(f"no worker of {describe_executor(pool)} answered within {probe_timeout:g} s "
                                       "(no workers, or workers unreachable)")
    exc = future.exception()
    if exc is not None:
        if isinstance(exc, MofsnapError):
            raise exc
        if isinstance(exc, BrokenProcessPool) and getattr(sys.modules["__main__"], "__file__", None):
            raise ExecutorUnavailableError(
                "the worker processes died while starting; they import your script "
                f"{sys.modules['__main__'].__file__} again, so keep its work under 'if __name__ == \"__main__\":' "
                "(see mofsnap.executors)") from None
        raise ExecutorUnavailableError(f"{describe_executor(pool)} failed to run a probe task: "
                                       f"{type(exc).__name__}: {exc}") from exc
    log.info("%s answers from host %s", describe_executor(pool), future.result())


def _run(items: list[_Item], reference: Reference, store: LabelStore, pool: Executor,
         restart: Callable[[], Executor] | None, timeout: float | None, checks: LabelChecks,
         summary: LabelSummary, progress: bool) -> None:
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
            started = time.perf_counter()
            lost = _submit_and_store(batch, reference, store, pool, restart is not None, timeout, checks, summary,
                                     bar)
            if lost is None:
                deaths_in_a_row = 0
                continue
            unfinished, running = lost
            if alone:
                _store_result(store, reference, checks, batch[0], _death(timeout, time.perf_counter() - started),
                              summary, bar)
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


def _death(timeout: float | None, seconds: float) -> dict[str, Any]:
    """The failure stored for a configuration whose worker died while it ran alone for ``seconds``: the watchdog's
    doing if that is past ``timeout + HARD_DEADLINE_GRACE`` (the watchdog never fires earlier; a slow worker
    start on a loaded machine may take a crash past ``timeout`` alone), else a crash."""
    if timeout is not None and seconds >= timeout + HARD_DEADLINE_GRACE:
        error = (f"LabelTimeout: the reference did not return within the {timeout:g} s time limit and its worker "
                 f"was stopped after {seconds:.0f} s (hung where the time limit could not interrupt it)")
    else:
        error = "worker process died (killed, out of memory or crashed) while labelling this configuration alone"
    return {"ok": False, "error": error, "wall_time": seconds, "host": ""}


def _submit_and_store(items: list[_Item], reference: Reference, store: LabelStore, pool: Executor,
                      restartable: bool, timeout: float | None, checks: LabelChecks, summary: LabelSummary,
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
            raise ExecutorUnavailableError(f"{describe_executor(pool)} refuses work: {exc}") from exc
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
            _store_result(store, reference, checks, item, result, summary, bar)
        if unfinished:
            unfinished += pending.values()
            return unfinished, [item for item in running if any(item is u for u in unfinished)]
        running = [item for future, item in pending.items() if future.running()]
    return None


def _store_result(store: LabelStore, reference: Reference, checks: LabelChecks, item: _Item, result: dict[str, Any],
                  summary: LabelSummary, bar: tqdm) -> None:
    """Store one result: a pending label if its numbers pass :func:`label_problem`, else a failure."""
    provenance = {**item.provenance, "wall_time": result["wall_time"], "host": result["host"]}
    start = time.perf_counter()
    error = result["error"] if not result["ok"] else label_problem(result, len(item.atoms), reference.periodic,
                                                                   checks)
    if error is None:
        store.write_label(item.key, item.atoms, result["energy"], result["forces"], result["stress"], provenance,
                          status="pending")
        summary.done += 1
        log.info("labelled %s (%s) in %.2f s", item.key, item.atoms.get_chemical_formula(), result["wall_time"])
    else:
        store.write_failure(item.key, item.atoms, error, provenance)
        summary.failed += 1
        log.warning("failed %s (%s): %s", item.key, item.atoms.get_chemical_formula(), error)
    summary.store_time += time.perf_counter() - start
    summary.work_time += result["wall_time"]
    bar.update()
    bar.set_postfix(done=summary.done, failed=summary.failed, refresh=False)


def write_report(summary: LabelSummary, store: LabelStore, reference: Reference, out: str | os.PathLike) -> Path:
    """Write ``labelling.json`` (counts, timings, failures) and ``labelling.png`` of one :func:`label` call.

    The figure shows the wall time per calculation and the energy per atom of the requested configurations
    now labelled in ``store``. Returns the JSON file.
    """
    from .. import plotting

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

