"""The MD runs of the analyses: a relaxed start, either engine, any Executor, resumable.

- :func:`relax_start` relaxes positions and cell with the analysis's calculator (FIRE on ASE's
  ``FrechetCellFilter``, to :data:`RELAX_FMAX`) before any MD, so that a structure with experimental
  bond lengths (X-ray C–H) does not release stored energy into some modes; the relaxed structure is
  written once as ``DIR/relaxed.extxyz`` and read back on a resume, and a killed relaxation continues from
  its last FIRE step exactly.
- :class:`MDRun` is one independent run (start, length, protocol, trajectory); :func:`run_all` sends a list
  of them through a :class:`concurrent.futures.Executor` (a local process pool, a Dask client's executor)
  or runs them in this process, on the ASE engine (:func:`mofsnap.md.run_md`) or natively in LAMMPS
  (:func:`mofsnap.md.native.run_native`). A run that finished writes ``<trajectory>.done.json`` (its
  :class:`~mofsnap.md.MDResult` figures) and is not run again; an unfinished one resumes from its
  trajectory (ASE) or newest restart file (LAMMPS).

Workers rebuild the calculator as ``type(calc)(**calc.todict())`` (ASE's ``parameters``), so any calculator
whose parameters describe it (``SNAPCalculator``, ``EMT``, ...) runs in other processes.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.filters import FrechetCellFilter
from ase.io import read, write
from ase.optimize import FIRE
from tqdm import tqdm

from ..calculator import SNAPCalculator
from ..exceptions import MDError
from ..md import run_md
from ..md.checkpoint import checkpoint_path
from ..md.native import ENGINES, run_native
from ..results import read_arrays, write_arrays
from ..units import ATMOSPHERE_MPA, mpa_to_ev_per_a3

log = logging.getLogger(__name__)

#: Convergence of the relaxation before MD: largest force (eV/Å) and cell "force" (stress × volume per atom).
RELAX_FMAX = 0.01
#: Most FIRE steps of the relaxation before MD.
RELAX_STEPS = 3000
#: Name of the relaxed start in an analysis directory.
RELAXED = "relaxed.extxyz"
#: Kind and format version of a relaxation's checkpoint, ``<relaxed start>.checkpoint.npz``.
RELAX_CHECKPOINT_KIND, RELAX_CHECKPOINT_VERSION = "relax-checkpoint", 1
#: ASE 3.29 FIRE's variables that a resumed relaxation needs to continue exactly: velocities, time step,
#: mixing parameter, steps since the last uphill move, and steps done.
FIRE_STATE = ("vel", "dt", "a", "Nsteps", "nsteps")


def relax_start(atoms: Atoms, calculator: Calculator, directory: str | Path, *, fmax: float = RELAX_FMAX,
                steps: int = RELAX_STEPS, pressure_MPa: float = ATMOSPHERE_MPA, cell: str = "angles-fixed",
                stress_tolerance_MPa: float | None = None, filename: str = RELAXED, progress: bool = False) -> Atoms:
    """Relax positions and cell of ``atoms`` with ``calculator`` (FIRE + ``FrechetCellFilter``) before MD.

    Parameters
    ----------
    atoms : Atoms
        The start (with ``atom_types``); not changed.
    calculator : Calculator
        The calculator of the MD, with stress.
    directory : path
        ``directory/filename`` receives the relaxed structure; if it exists, it is returned instead of
        relaxing again (resume).
    fmax : float
        Convergence: largest atomic force in eV/Å, and largest cell force of ``FrechetCellFilter``
        (stress × volume / number of atoms, eV, unless ``stress_tolerance_MPa`` is given).
    steps : int
        Most FIRE steps; a relaxation that has not converged by then is used with a logged warning.
    pressure_MPa : float
        External pressure of the cell relaxation.
    cell : {"angles-fixed", "isotropic", "full", "positions"}
        Cell degrees of freedom, as in :func:`mofsnap.md.run_md`: lengths only, volume only, or all; or none
        (the positions only).
    stress_tolerance_MPa : float, optional
        Convergence of the cell in MPa: the cell forces are scaled so that ``fmax`` on them means every row
        of ``stress - pressure`` below this (the default scaling by the number of atoms lets a soft
        framework of 100 atoms stop with several hundred MPa left).
    filename : str
        Name of the relaxed structure's file in ``directory``. Until it is written, every FIRE step is
        checkpointed beside it (``<filename>.checkpoint.npz``: positions, cell and FIRE's variables), so a
        killed relaxation resumes where it stopped and ends exactly as an uninterrupted one.
    progress : bool
        Show a progress bar (steps, largest force).

    Returns
    -------
    Atoms
        The relaxed copy (types kept, no calculator), as read back from its file, so that a resumed run
        continues from bit-identical positions.
    """
    path = Path(directory) / filename
    if path.is_file() and path.stat().st_size > 0:
        relaxed = read(path)
        if len(relaxed) != len(atoms) or (relaxed.numbers != atoms.numbers).any():
            raise MDError(f"{path} holds another structure ({relaxed.get_chemical_formula()}, not "
                          f"{atoms.get_chemical_formula()}); remove it or use another output directory")
        log.info("relaxed start read from %s", path)
        return relaxed
    relaxed = atoms.copy()
    relaxed.calc = calculator
    if cell == "positions":
        target = relaxed
    else:
        options = {"angles-fixed": {"mask": [True, True, True, False, False, False]},
                   "isotropic": {"hydrostatic_strain": True}, "full": {}}[cell]
        if stress_tolerance_MPa is not None:
            options["exp_cell_factor"] = mpa_to_ev_per_a3(stress_tolerance_MPa) * relaxed.get_volume() / fmax
        target = FrechetCellFilter(relaxed, scalar_pressure=mpa_to_ev_per_a3(pressure_MPa), **options)
    optimizer = FIRE(target, logfile=None)
    saved = checkpoint_path(path)
    if saved.exists():
        _resume_relaxation(relaxed, optimizer, saved)
    bar = tqdm(total=steps, initial=optimizer.nsteps, disable=not progress, unit="step", desc="relax")

    def after_step() -> None:
        """Checkpoint the relaxation after every FIRE step and show its progress."""
        if optimizer.nsteps == 0:  # the start: nothing to keep
            return
        write_arrays(saved, RELAX_CHECKPOINT_KIND, RELAX_CHECKPOINT_VERSION, dict(
            numbers=relaxed.numbers, positions=relaxed.positions, cell=relaxed.cell.array,
            **{name: getattr(optimizer, name) for name in FIRE_STATE}))
        if progress:
            bar.update(optimizer.nsteps - bar.n)
            bar.set_postfix(fmax=f"{_largest_force(target):.3g} eV/Å", refresh=False)

    optimizer.attach(after_step)
    try:
        converged = optimizer.run(fmax=fmax, steps=steps - optimizer.nsteps)
    finally:
        bar.close()
    largest = _largest_force(target)
    what = "positions" if cell == "positions" else "positions and cell"
    if converged:
        log.info("relaxed %s in %d FIRE steps (largest force %.3g eV/Å)", what, optimizer.nsteps, largest)
    else:
        log.warning("the relaxation of the %s did not reach fmax %g eV/Å in %d FIRE steps (largest force %.3g); "
                    "it is used anyway", what, fmax, steps, largest)
    relaxed.calc = None
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path.with_suffix(".part.extxyz"), relaxed, format="extxyz")
    path.with_suffix(".part.extxyz").replace(path)
    saved.unlink(missing_ok=True)
    return read(path)


def _largest_force(target) -> float:
    """The largest force (atoms, and the cell's under a filter) in eV/Å."""
    return float(max((f ** 2).sum() for f in target.get_forces()) ** 0.5)


def _resume_relaxation(atoms: Atoms, optimizer: FIRE, saved: Path) -> None:
    """Continue a killed relaxation exactly: the positions and cell of ``saved`` into ``atoms`` (already under
    its cell filter, whose reference cell stays the start's) and FIRE's variables into ``optimizer``."""
    arrays = read_arrays(saved, RELAX_CHECKPOINT_KIND, RELAX_CHECKPOINT_VERSION, "remove it to relax from the start")
    if not np.array_equal(arrays["numbers"], atoms.numbers):
        raise MDError(f"{saved} is the relaxation of another structure; remove it to relax from the start")
    missing = [name for name in FIRE_STATE if name not in vars(optimizer)]
    if missing:
        raise MDError(f"cannot resume the relaxation: ASE's FIRE has no {', '.join(missing)} (another ASE "
                      f"version?); remove {saved} to relax from the start")
    atoms.set_cell(arrays["cell"], scale_atoms=False)
    atoms.set_positions(arrays["positions"])
    for name in FIRE_STATE:
        value = arrays[name]
        setattr(optimizer, name, value.copy() if value.ndim else value.item())
    log.info("resuming the relaxation after FIRE step %d", optimizer.nsteps)


@dataclass(frozen=True)
class MDRun:
    """One independent MD run of an analysis.

    Attributes
    ----------
    atoms : Atoms
        The start (typed; with momenta when ``protocol["thermalize"]`` is False).
    steps : int
        Length of the run.
    trajectory : Path
        Its trajectory (extended XYZ); the native engine works in ``<trajectory>.lammps/`` beside it.
    protocol : dict
        Settings shared by both engines: ``ensemble``, ``temperature_K``, ``pressure_MPa``, ``cell``,
        ``timestep_fs``, ``tdamp_fs``, ``pdamp_fs``, ``chain``, ``seed``, ``thermalize``, ``interval``.
    frame_results : bool
        Store energy, forces and stress in the frames (ASE engine; the native one always does).
    """

    atoms: Atoms
    steps: int
    trajectory: Path
    protocol: dict = field(default_factory=dict)
    frame_results: bool = True

    @property
    def done_path(self) -> Path:
        """``<trajectory>.done.json``: written when the run has finished."""
        return self.trajectory.with_name(self.trajectory.name + ".done.json")


def check_engine(engine: str, calculator: Calculator) -> None:
    """Raise :class:`~mofsnap.exceptions.MDError` unless ``engine`` can run ``calculator``."""
    if engine not in ENGINES:
        raise MDError(f"unknown MD engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "lammps" and not isinstance(calculator, SNAPCalculator):
        raise MDError(f"the lammps engine runs SNAP models (--model PREFIX), not {type(calculator).__name__}; "
                      "use the ase engine for other calculators")


def run_one(run: MDRun, calculator: Calculator, engine: str = "ase", ranks: int = 1, progress: bool = False) -> dict:
    """Run (or resume) one :class:`MDRun` and write its ``done`` file; return what it holds.

    Returns
    -------
    dict
        ``trajectory``, ``engine``, ``steps``, ``new_steps``, ``stopped``, ``wall_seconds``, ``ns_per_day``.
    """
    if run.done_path.is_file():
        return json.loads(run.done_path.read_text())
    check_engine(engine, calculator)
    atoms = run.atoms.copy()
    if engine == "lammps":
        result = run_native(atoms, run.steps, calculator, run.trajectory.with_name(run.trajectory.name + ".lammps"),
                            ranks=ranks, trajectory=run.trajectory, progress=progress, **run.protocol)
    else:
        result = run_md(atoms, run.steps, trajectory=run.trajectory, frame_results=run.frame_results,
                        calculator=calculator, progress=progress, **run.protocol)
    if result.stopped is not None:
        log.warning("%s stopped at step %d: %s", run.trajectory, result.steps, result.stopped)
    done = {"trajectory": str(run.trajectory), "engine": engine, "steps": result.steps,
            "new_steps": result.new_steps, "stopped": result.stopped, "wall_seconds": result.wall_seconds,
            "ns_per_day": result.ns_per_day}
    run.done_path.write_text(json.dumps(done, indent=1))
    return done


def _run_in_worker(run: MDRun, calculator_class: type, parameters: dict, engine: str, ranks: int) -> dict:
    return run_one(run, calculator_class(**parameters), engine, ranks)


def run_all(runs: list[MDRun], calculator: Calculator | list[Calculator], *, engine: str = "ase", ranks: int = 1,
            executor: Executor | None = None, progress: bool = True) -> list[dict]:
    """Run independent MD runs, skipping finished ones; return their ``done`` records in order.

    Parameters
    ----------
    runs : list of MDRun
        The runs; each must have its own trajectory.
    calculator : Calculator or list of Calculator
        The potential of all runs, or one per run (e.g. models drawn from a posterior); with ``executor``,
        every task rebuilds its calculator as ``type(calc)(**calc.todict())``.
    engine : {"ase", "lammps"}
        :func:`mofsnap.md.run_md` with the calculator, or native LAMMPS (a ``SNAPCalculator`` only).
    ranks : int
        MPI ranks of each native run.
    executor : Executor, optional
        Where the runs go (one task per run); None runs them one after another in this process.
    progress : bool
        Progress bars (of each run in this process, of the finished runs with an executor).
    """
    calculators = calculator if isinstance(calculator, list) else [calculator] * len(runs)
    if len(calculators) != len(runs):
        raise MDError(f"give one calculator for all runs or one per run ({len(runs)}), not {len(calculators)}")
    for each in calculators:
        check_engine(engine, each)
    if len({r.trajectory for r in runs}) != len(runs):
        raise MDError("every MD run needs its own trajectory")
    for run in runs:
        run.trajectory.parent.mkdir(parents=True, exist_ok=True)
    if executor is None:
        return [run_one(run, each, engine, ranks, progress) for run, each in zip(runs, calculators)]
    from tqdm import tqdm

    futures = [executor.submit(_run_in_worker, run, type(each), each.todict(), engine, ranks)
               for run, each in zip(runs, calculators)]
    return [future.result() for future in tqdm(futures, desc=f"MD runs ({engine})", unit="run",
                                               disable=not progress)]
