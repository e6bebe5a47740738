"""The MD runs of active learning as self-contained tasks that survive crashes of their worker processes.

A task writes its trajectory under a temporary name and moves it, with a JSON summary next to it, into place
when the run is over: a run whose summary exists is complete and is never rerun; an unfinished one restarts
from its beginning, so that its result equals an uninterrupted run. A model that extrapolates badly can blow
a run up (caught by a guard or as one of :data:`EXPLOSIONS`) or crash LAMMPS and its process with it
(handled by :func:`run_tasks`).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import BrokenExecutor, Executor
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from ..calculator import D3, ZBL, SNAPCalculator
from ..exceptions import LammpsError, ModelError
from ..executors import worker_pool
from ..md import Guard, blowup_guard, reheat_momenta, run_md
from ..topology import Topology

#: Errors by which an MD run with an extrapolating model fails (they end the run like the blow-up guard).
EXPLOSIONS = (np.linalg.LinAlgError, LammpsError, ModelError, FloatingPointError, OverflowError)


@dataclass(frozen=True)
class MDTask:
    """One MD job of the loop, self-contained so that it runs on any executor worker.

    Attributes
    ----------
    model : str
        Prefix of the SNAP model files.
    start : Atoms
        The starting configuration (typed).
    temperatures : tuple of float
        One NPT segment per temperature (K), each of ``steps`` steps; each later segment starts from momenta
        drawn by :func:`mofsnap.md.reheat_momenta`, so that a ramp keeps up with its temperatures.
    steps, interval : int
        Steps per segment, steps between written frames.
    pressure_MPa : float
        NPT pressure.
    seed : int
        Seed of the first segment's velocities (segment ``k`` uses ``seed + k``).
    trajectory : str
        The extxyz file of the finished run; its summary goes next to it (:attr:`summary_path`).
    topology : dict
        :meth:`mofsnap.topology.Topology.to_dict` of the structure (for the broken-bond guard).
    d3 : bool
        Add D3 dispersion to the SNAP model.
    max_force, max_temperature_factor, bond_tolerance : float
        The blow-up guard (see :class:`mofsnap.learn.LearnSettings`).
    zbl : ZBL or None
        ZBL repulsion on chosen type pairs (the campaign's safety wall).
    """

    model: str
    start: Atoms
    temperatures: tuple[float, ...]
    steps: int
    interval: int
    pressure_MPa: float
    seed: int
    trajectory: str
    topology: dict
    d3: bool
    max_force: float
    max_temperature_factor: float
    bond_tolerance: float
    zbl: ZBL | None = None

    @property
    def summary_path(self) -> Path:
        """The JSON summary written when the run is complete."""
        return Path(self.trajectory).with_suffix(".json")


def npt_cell(atoms: Atoms) -> str:
    """NPT cell mode with the cell angles fixed: lengths free for an orthogonal cell, else the volume only."""
    cell = atoms.cell.array
    return "angles-fixed" if np.allclose(cell, np.diag(np.diag(cell))) else "isotropic"


def _blowup_guard(task: MDTask, topology: Topology, temperature: float) -> Guard:
    """Stop a run on huge forces, a temperature runaway or a broken bond."""
    forces_guard = blowup_guard(task.max_force, max(task.max_temperature_factor * temperature, temperature + 1e3))

    def guard(atoms: Atoms, step: int) -> str | None:
        reason = forces_guard(atoms, step)
        if reason is None:
            broken = topology.most_stretched_bond(atoms.positions, atoms.cell.array, task.bond_tolerance)
            reason = None if broken is None else f"bond guard: {broken} at step {step}"
        return reason

    return guard


def run_md_task(task: MDTask) -> dict:
    """Run an :class:`MDTask` (NPT segments at its temperatures) with the blow-up guard.

    Returns
    -------
    dict
        The summary also written to ``task.summary_path``: ``trajectory``, ``frames``, ``stopped`` (the
        reason, or None), ``wall_seconds`` and ``temperatures``.
    """
    calc = SNAPCalculator(task.model, d3=D3() if task.d3 else None, zbl=task.zbl)
    topology = Topology.from_dict(task.topology)
    atoms = task.start.copy()
    atoms.calc = calc
    path = Path(task.trajectory)
    part = path.with_name(path.name + ".part")
    part.unlink(missing_ok=True)
    frames: list[Atoms] = []
    stopped, wall = None, 0.0
    for k, temperature in enumerate(task.temperatures):
        guard = _blowup_guard(task, topology, temperature)
        segment = part.with_name(f"{part.name}.{k}.extxyz")
        segment.unlink(missing_ok=True)  # left by a killed attempt: the run restarts from its beginning
        if k:  # a ramp: left to the thermostat alone, each segment lags far behind its temperature
            reheat_momenta(atoms, temperature, task.seed + k)
        start = time.perf_counter()
        try:
            result = run_md(atoms, task.steps, temperature_K=temperature, ensemble="npt", cell=npt_cell(atoms),
                            pressure_MPa=task.pressure_MPa, seed=task.seed + k, thermalize=k == 0,
                            trajectory=segment, interval=task.interval, resume=False, guard=guard, progress=False)
            stopped, atoms = result.stopped, result.atoms
        except EXPLOSIONS as exc:  # an exploding model can break the barostat, LAMMPS or the cell
            stopped = f"MD failed: {type(exc).__name__}: {exc}"
        wall += time.perf_counter() - start
        written = ase.io.read(segment, ":")[0 if k == 0 else 1:] if segment.exists() else []
        frames.extend(f for f in written if "md_stop" not in f.info)  # the stopping frame is not physical
        segment.unlink(missing_ok=True)
        if stopped:
            break
        atoms.calc = calc
    if frames:
        ase.io.write(part, frames, format="extxyz")
    else:
        part.write_text("")
    os.replace(part, path)
    summary = {"trajectory": str(path), "frames": len(frames), "stopped": stopped, "wall_seconds": wall,
               "temperatures": list(task.temperatures)}
    _write_summary(task, summary)
    return summary


def read_run(path: str | Path) -> list[Atoms]:
    """The frames of a finished MD task (none if it failed before its first frame)."""
    return ase.io.read(path, ":") if Path(path).stat().st_size else []


def _write_summary(task: MDTask, summary: dict) -> None:
    tmp = task.summary_path.with_suffix(".json.part")
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, task.summary_path)


def run_tasks(tasks: list[MDTask], executor: Executor, desc: str, progress: bool = True) -> list[dict]:
    """Run the MD tasks that are not complete yet through ``executor``; return all summaries in task order.

    An exploding model can crash LAMMPS and with it the worker process, which breaks a process pool for
    every task in it. The tasks caught in a broken pool are rerun one at a time, each in a fresh process,
    and the one that kills its process again is recorded as a stopped run without frames.

    Parameters
    ----------
    tasks : list of MDTask
        The runs (complete ones are skipped).
    executor : Executor
        Where the runs go.
    desc : str
        Label of the progress bar.
    progress : bool
        Show a progress bar.
    """
    from tqdm.auto import tqdm

    todo = [t for t in tasks if not t.summary_path.exists()]
    futures = [executor.submit(run_md_task, t) for t in todo]
    broken = []
    for task, future in zip(todo, tqdm(futures, desc=desc, unit="run", disable=not (futures and progress))):
        try:
            future.result()
        except BrokenExecutor:
            broken.append(task)
    for task in broken:
        with worker_pool(1) as single:
            try:
                single.submit(run_md_task, task).result()
            except BrokenExecutor as exc:
                Path(task.trajectory).write_text("")
                _write_summary(task, {"trajectory": task.trajectory, "frames": 0, "wall_seconds": 0.0,
                                      "stopped": f"the MD process died ({type(exc).__name__})",
                                      "temperatures": list(task.temperatures)})
    return [json.loads(t.summary_path.read_text()) for t in tasks]
