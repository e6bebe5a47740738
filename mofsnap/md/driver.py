"""The molecular-dynamics driver of mofsnap: NVE, NVT, Langevin and NPT runs with any ASE calculator.

:func:`run_md` integrates with ASE's Nose-Hoover-chain family (``NoseHooverChainNVT`` and the
Martyna-Tobias-Klein barostats ``MTKNPT`` / ``MaskedMTKNPT`` / ``IsotropicMTKNPT``), ``VelocityVerlet`` or
``Langevin``; it draws seeded Maxwell-Boltzmann velocities, writes a trajectory every ``interval`` steps
(extended XYZ with momenta, atom types, energy, forces and stress, or an ASE ``.traj``), shows a progress
bar, resumes an interrupted run from the last frame of its trajectory, and calls an optional guard after
every step that can stop the run cleanly (see :class:`MDGuard`).

Command (also ``python -m mofsnap.md``)::

    mofsnap md structure.extxyz --model zif8 --d3 --ensemble npt -T 300 --steps 10000 -o run/

With every frame the exact state (positions, momenta, cell, thermostat and barostat variables, Langevin noise) is
written to a checkpoint beside the trajectory (:mod:`mofsnap.md.checkpoint`), so a killed run resumed with the
same settings continues bit for bit as if it had never stopped. By default :class:`~mofsnap.md.guards.MDGuard`
checks every step and stops a run that blows up, keeping the last good state as the trajectory's end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.md import IsotropicMTKNPT, Langevin, MaskedMTKNPT, MTKNPT, NoseHooverChainNVT, VelocityVerlet
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from tqdm import tqdm

from ..exceptions import MDError, MofsnapError
from ..units import ATMOSPHERE_MPA
from .checkpoint import MDCheckpoint, checkpoint_path, monitor_states, restore_integrator, restore_monitors
from .guards import Guard, MDGuard
from .trajectory import FrameWriter, read_trajectory

log = logging.getLogger(__name__)

ENSEMBLES = ("nve", "nvt", "langevin", "npt")
#: NPT cell degrees of freedom: lengths only (reference protocol), volume only, or the full cell.
CELL_MODES = ("angles-fixed", "isotropic", "full")


@dataclass
class MDResult:
    """Outcome of :func:`run_md`.

    Attributes
    ----------
    atoms : Atoms
        The final state (positions, momenta, cell, atom types).
    steps : int
        Total number of steps of the run, counting steps done before a resume.
    new_steps : int
        Steps integrated by this call.
    stopped : str or None
        The guard's reason when it stopped the run, else None.
    trajectory : Path or None
        The trajectory file.
    wall_seconds : float
        Wall time of the steps integrated by this call.
    timestep_fs : float
        The time step.
    """

    atoms: Atoms
    steps: int
    new_steps: int
    stopped: str | None
    trajectory: Path | None
    wall_seconds: float
    timestep_fs: float

    @property
    def ns_per_day(self) -> float:
        """Simulated nanoseconds per day of wall time (NaN when nothing was integrated)."""
        if self.new_steps == 0 or self.wall_seconds <= 0:
            return float("nan")
        return self.new_steps * self.timestep_fs * 1e-6 / self.wall_seconds * 86400.0


def reheat_momenta(atoms: Atoms, temperature_K: float, seed: int) -> None:
    """Draw Maxwell-Boltzmann momenta that bring a solid equilibrated at its current kinetic temperature to
    ``temperature_K`` once the kinetic energy has shared itself with the potential energy.

    In a harmonic solid the two hold equal energy, so fresh momenta at ``T_draw`` relax the system to the mean
    of ``T_draw`` and the temperature it had. Drawing at ``2 T - T_now`` (never below ``T``) lands it on ``T``
    within a few vibrations instead of leaving the thermostat to make up half the step; without momenta
    (``T_now`` = 0) this is the usual doubled temperature for a start from a minimum.

    Parameters
    ----------
    atoms : Atoms
        Changed in place: new momenta, centre-of-mass motion removed.
    temperature_K : float
        Temperature to reach.
    seed : int
        Seed of the draw.
    """
    draw = max(temperature_K, 2.0 * temperature_K - atoms.get_temperature())
    thermalize_momenta(atoms, draw, rng=np.random.default_rng(seed))
    Stationary(atoms)


def _integrator(atoms: Atoms, ensemble: str, cell: str, temperature_K: float, pressure_MPa: float,
                timestep_fs: float, tdamp_fs: float, pdamp_fs: float, chain: int, friction_per_fs: float,
                rng: np.random.Generator):
    dt = timestep_fs * units.fs
    if ensemble == "nve":
        return VelocityVerlet(atoms, timestep=dt)
    if ensemble == "langevin":
        return Langevin(atoms, timestep=dt, temperature_K=temperature_K, friction=friction_per_fs / units.fs,
                        fixcm=False, rng=rng)
    if ensemble == "nvt":
        return NoseHooverChainNVT(atoms, timestep=dt, temperature_K=temperature_K, tdamp=tdamp_fs * units.fs,
                                  tchain=chain)
    npt_args = dict(timestep=dt, temperature_K=temperature_K, pressure_au=pressure_MPa * 1e6 * units.Pascal,
                    tdamp=tdamp_fs * units.fs, pdamp=pdamp_fs * units.fs, tchain=chain, pchain=chain)
    if cell == "full":
        return MTKNPT(atoms, **npt_args)
    if cell == "isotropic":
        return IsotropicMTKNPT(atoms, **npt_args)
    return MaskedMTKNPT(atoms, mask=(True, True, True), **npt_args)


def _number(name: str, value: float, minimum: float, strict: bool) -> None:
    """Raise unless ``value`` is a finite number above (``strict``) or at least ``minimum``."""
    try:
        ok = np.isfinite(value) and (value > minimum if strict else value >= minimum)
    except TypeError:
        ok = False
    if not ok:
        raise MDError(f"{name} must be a finite number {'>' if strict else '>='} {minimum:g} (got {value!r})")


def _whole(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise MDError(f"{name} must be a whole number >= {minimum} (got {value!r})")


def _check_settings(atoms: Atoms, ensemble: str, cell: str, steps: int, interval: int, timestep_fs: float,
                    temperature_K: float, pressure_MPa: float, tdamp_fs: float, pdamp_fs: float, chain: int,
                    friction_per_fs: float, seed: int) -> None:
    """Range-check every setting of :func:`run_md` before the first step."""
    if ensemble not in ENSEMBLES:
        raise MDError(f"unknown ensemble {ensemble!r}; choose one of {', '.join(ENSEMBLES)}")
    if cell not in CELL_MODES:
        raise MDError(f"unknown NPT cell mode {cell!r}; choose one of {', '.join(CELL_MODES)}")
    _whole("steps", steps, 0)
    _whole("interval", interval, 1)
    _whole("seed", seed, 0)
    _number("timestep_fs", timestep_fs, 0.0, strict=True)
    thermostat = ensemble in ("nvt", "npt")
    _number("temperature_K", temperature_K, 0.0, strict=thermostat)
    if thermostat:
        _number("tdamp_fs", tdamp_fs, 0.0, strict=True)
        _whole("chain", chain, 1)
    if ensemble == "npt":
        _number("pdamp_fs", pdamp_fs, 0.0, strict=True)
        _number("pressure_MPa", pressure_MPa, -np.inf, strict=True)
    if ensemble == "langevin":
        _number("friction_per_fs", friction_per_fs, 0.0, strict=True)
    if len(atoms) == 0:
        raise MDError("the structure has no atoms")
    if not np.isfinite(atoms.positions).all() or not np.isfinite(atoms.cell.array).all():
        raise MDError("the starting positions or cell contain NaN or inf; start from a valid structure")
    if ensemble == "npt" and not atoms.pbc.all():
        raise MDError("NPT needs a structure periodic in all three directions")
    if atoms.pbc.any() and abs(atoms.cell.volume) < 1e-6:
        raise MDError("the cell has zero volume; give three linearly independent cell vectors")
    cell_matrix = atoms.cell.array
    if ensemble == "npt" and cell == "angles-fixed" and \
            np.abs(cell_matrix - np.diag(np.diag(cell_matrix))).max() > 1e-8 * np.abs(cell_matrix).max():
        raise MDError("NPT with cell='angles-fixed' scales the x, y and z axes, which keeps the cell angles only "
                      "for a cell with vectors along x, y and z; use cell='isotropic' (or 'full') for this cell")
    if atoms.calc is None:
        raise MDError("the atoms have no calculator; pass calculator= or set atoms.calc")


def _resume_state(atoms: Atoms, path: Path) -> tuple[int, int, str | None, MDCheckpoint | None]:
    """Load the state to continue from into ``atoms``: the checkpoint if it is current, else the last frame.

    Returns the step to continue from, the step of the last frame, any stop reason, and the checkpoint whose
    integrator variables are to be restored.
    """
    last = read_trajectory(path, index=-1)[0]
    if len(last) != len(atoms) or not np.array_equal(last.numbers, atoms.numbers):
        raise MDError(f"cannot resume from {path}: its atoms ({last.get_chemical_formula()}) differ from the "
                      f"structure given ({atoms.get_chemical_formula()})")
    if "md_step" not in last.info:
        raise MDError(f"cannot resume from {path}: its last frame has no 'md_step' (not written by run_md)")
    frame_step = int(last.info["md_step"])
    saved = checkpoint_path(path)
    checkpoint = MDCheckpoint.read(saved) if saved.exists() else None
    if checkpoint is not None and checkpoint.step >= frame_step and len(checkpoint.positions) == len(atoms):
        checkpoint.apply(atoms)
        return checkpoint.step, frame_step, checkpoint.stopped or last.info.get("md_stop"), checkpoint
    log.warning("%s: no current checkpoint; resuming from the last frame with the thermostat and barostat at rest",
                path)
    atoms.set_cell(last.cell, scale_atoms=False)
    atoms.set_positions(last.positions)
    atoms.set_momenta(last.get_momenta())
    return frame_step, frame_step, last.info.get("md_stop"), None


def run_md(atoms: Atoms, steps: int, *, temperature_K: float = 300.0, ensemble: str = "nvt",
           pressure_MPa: float = ATMOSPHERE_MPA, cell: str = "angles-fixed", timestep_fs: float = 1.0,
           tdamp_fs: float = 100.0, pdamp_fs: float = 200.0, chain: int = 5, friction_per_fs: float = 0.01,
           seed: int = 0, thermalize: bool = True, trajectory: str | Path | None = None, interval: int = 10,
           frame_results: bool = True, resume: bool = True, guard: MDGuard | Guard | None = MDGuard(),
           observers: Sequence[Guard] = (), progress: bool = True,
           calculator: Calculator | None = None) -> MDResult:
    """Run molecular dynamics on ``atoms`` (changed in place) and write a trajectory.

    Parameters
    ----------
    atoms : Atoms
        Starting structure; keeps its ``atom_types`` array. Its calculator is used unless ``calculator``.
    steps : int
        Total length of the run in steps. When resuming, only the steps missing from the trajectory are run.
    temperature_K : float
        Target temperature (thermostats) and temperature of the initial Maxwell-Boltzmann velocities.
    ensemble : {"nve", "nvt", "langevin", "npt"}
        Velocity Verlet, Nose-Hoover chain NVT, Langevin NVT, or MTK Nose-Hoover chain NPT.
    pressure_MPa : float
        External pressure of NPT runs.
    cell : {"angles-fixed", "isotropic", "full"}
        NPT cell fluctuations: the three lengths independently with angles fixed (ASE ``MaskedMTKNPT``),
        the volume only (``IsotropicMTKNPT``) or all nine components (``MTKNPT``).
    timestep_fs : float
        Time step in fs.
    tdamp_fs, pdamp_fs : float
        Thermostat and barostat time constants in fs.
    chain : int
        Length of the thermostat and barostat Nose-Hoover chains.
    friction_per_fs : float
        Langevin friction in 1/fs.
    seed : int
        Seed of the initial velocities and of the Langevin noise.
    thermalize : bool
        Draw Maxwell-Boltzmann velocities at ``temperature_K`` (centre-of-mass motion removed); if False,
        start from the momenta the atoms carry. Ignored when resuming.
    trajectory : path, optional
        ``.traj`` for an ASE trajectory, anything else for extended XYZ. The first frame is the start
        (step 0); then every ``interval`` steps, plus the last step. Frames carry ``info`` entries
        ``md_step``, ``time_fs``, ``temperature_K``, ``md_ensemble``, ``md_target_temperature_K`` and for
        NPT ``md_pressure_MPa``. With every frame the exact state is written to
        ``<trajectory>.checkpoint.npz`` (:class:`~mofsnap.md.checkpoint.MDCheckpoint`).
    interval : int
        Steps between written frames.
    frame_results : bool
        Store energy, forces and stress in the frames (False: positions, momenta, cell and types only, for
        long VDOS runs).
    resume : bool
        If the trajectory exists, continue from its checkpoint (bit for bit: positions, momenta, cell,
        thermostat and barostat variables, Langevin noise), or without a current checkpoint from its last
        frame with the thermostat and barostat at rest. If False, an existing trajectory is an error.
    guard : MDGuard, callable or None
        Checked after every step: an :class:`MDGuard` (the default one unless given; bound to this run by
        :meth:`MDGuard.start`) or any ``guard(atoms, step) -> str | None``; None runs unguarded. A reason
        string stops the run: the last good state (the one before the step that tripped the guard) is
        restored into ``atoms`` and written as the last frame (unless already written) with ``md_stop``,
        the checkpoint records the reason and :attr:`MDResult.stopped` returns it; a stopped run is not
        continued on resume. With a guard, a :class:`~mofsnap.exceptions.MofsnapError` of the calculator
        during a step (e.g. LAMMPS losing atoms) stops the run the same way.
    observers : sequence of callables
        Further ``observer(atoms, step) -> str | None`` called after the guard at every step (e.g.
        :class:`mofsnap.md.grade.GradeMonitor`); a string stops the run as a guard's does. A guard or observer
        with a memory of earlier steps offers ``state()`` and ``restore(state)``, and its memory is
        checkpointed with the run (so a resumed run stops where an uninterrupted one would).
    progress : bool
        Show a tqdm progress bar.
    calculator : Calculator, optional
        Attached to ``atoms`` before the run.

    Returns
    -------
    MDResult

    Raises
    ------
    MDError
        An out-of-range setting (every one is checked before the first step), a missing calculator, an
        existing trajectory without ``resume``, or a trajectory that does not belong to these atoms.
    """
    if calculator is not None:
        atoms.calc = calculator
    _check_settings(atoms, ensemble, cell, steps, interval, timestep_fs, temperature_K, pressure_MPa, tdamp_fs,
                    pdamp_fs, chain, friction_per_fs, seed)
    path = Path(trajectory) if trajectory is not None else None
    start, frame_step, stopped, checkpoint = 0, 0, None, None
    if path is not None and path.exists() and path.stat().st_size > 0:
        if not resume:
            raise MDError(f"trajectory {path} exists; resume it (resume=True) or remove it")
        start, frame_step, stopped, checkpoint = _resume_state(atoms, path)
    else:
        if path is not None:
            checkpoint_path(path).unlink(missing_ok=True)  # left by an earlier run of an emptied trajectory
        if thermalize:
            thermalize_momenta(atoms, temperature_K, rng=np.random.default_rng(seed))
            Stationary(atoms)
    if stopped is not None or start >= steps:
        return MDResult(atoms, start, 0, stopped, path, 0.0, timestep_fs)

    rng = np.random.default_rng([seed, start])
    try:
        dynamics = _integrator(atoms, ensemble, cell, temperature_K, pressure_MPa, timestep_fs, tdamp_fs,
                               pdamp_fs, chain, friction_per_fs, rng)
    except NotImplementedError as error:
        raise MDError(f"{ensemble} dynamics cannot run on these atoms: {error}") from error
    if checkpoint is not None and checkpoint.integrator == type(dynamics).__name__:
        restore_integrator(dynamics, checkpoint.state)
    elif checkpoint is not None:
        log.warning("%s was run with %s, this run uses %s: its thermostat and barostat start at rest", path,
                    checkpoint.integrator, type(dynamics).__name__)
    checks = [guard.start(atoms, temperature_K) if isinstance(guard, MDGuard) else guard] if guard else []
    checks += list(observers)
    if checkpoint is not None:
        restore_monitors(checks, checkpoint.monitors)
    info = {"md_ensemble": ensemble, "md_target_temperature_K": temperature_K, "md_timestep_fs": timestep_fs}
    if ensemble == "npt":
        info.update(md_pressure_MPa=pressure_MPa, md_cell=cell)

    writer = FrameWriter(path) if path is not None else None

    def write_frame(step: int, reason: str | None = None) -> None:
        """Checkpoint (first: a kill in between leaves a checkpoint ahead of the frames, see resume) and frame."""
        if writer is None:
            return
        MDCheckpoint.capture(atoms, step, dynamics, reason, monitor_states(checks)).write(checkpoint_path(path))
        atoms.info.update(info, md_step=step, time_fs=step * timestep_fs, temperature_K=atoms.get_temperature())
        if reason is not None:
            atoms.info["md_stop"] = reason
        if frame_results:
            atoms.get_potential_energy()  # make sure energy and forces of this state are what gets written
            atoms.get_forces()
        writer.write(atoms, frame_results)
        for key in (*info, "md_step", "time_fs", "temperature_K", "md_stop"):
            atoms.info.pop(key, None)

    if start == 0 or frame_step < start:  # a new run, or a checkpoint written just before its frame was killed
        write_frame(start)
    step = written = start
    good = (atoms.get_positions(), atoms.get_momenta(), atoms.cell.array.copy())
    began = time.perf_counter()
    bar = tqdm(total=steps, initial=start, disable=not progress, unit="step", desc=f"MD {ensemble}")
    try:
        while step < steps:
            try:
                dynamics.step()
            except (MofsnapError, np.linalg.LinAlgError) as error:
                if not checks:
                    raise
                stopped = f"calculator guard: {type(error).__name__} at step {step + 1}: {str(error).splitlines()[0]}"
            step += 1
            bar.update()
            for monitor in checks:
                stopped = stopped or monitor(atoms, step)
            if stopped is not None:  # back to the last good state, which ends the trajectory
                atoms.set_cell(good[2], scale_atoms=False)
                atoms.set_positions(good[0])
                atoms.set_momenta(good[1])
                step -= 1
                log.info("MD stopped: %s; the last good state is step %d", stopped, step)
                if writer is not None and written != step:
                    write_frame(step, stopped)
                elif writer is not None:
                    MDCheckpoint.capture(atoms, step, dynamics, stopped).write(checkpoint_path(path))
                break
            if step % interval == 0 or step == steps:
                write_frame(step)
                written = step
                bar.set_postfix(T=f"{atoms.get_temperature():.0f} K",
                                Epot=f"{atoms.get_potential_energy():.3f} eV", refresh=False)
            if checks:
                good = (atoms.get_positions(), atoms.get_momenta(), atoms.cell.array.copy())
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    wall = time.perf_counter() - began
    return MDResult(atoms, step, step - start, stopped, path, wall, timestep_fs)
