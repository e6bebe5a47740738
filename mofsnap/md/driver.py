"""The molecular-dynamics driver of mofsnap: NVE, NVT, Langevin and NPT runs with any ASE calculator.

:func:`run_md` integrates with ASE's Nose-Hoover-chain family (``NoseHooverChainNVT`` and the
Martyna-Tobias-Klein barostats ``MTKNPT`` / ``MaskedMTKNPT`` / ``IsotropicMTKNPT``), ``VelocityVerlet`` or
``Langevin``; it draws seeded Maxwell-Boltzmann velocities, writes a trajectory every ``interval`` steps
(extended XYZ with momenta, atom types, energy, forces and stress, or an ASE ``.traj``), shows a progress
bar, resumes an interrupted run from the last frame of its trajectory, and calls an optional guard after
every step that can stop the run cleanly (see :func:`blowup_guard`).

Command (also ``python -m mofsnap.md``)::

    mofsnap md structure.extxyz --model zif8 --d3 --ensemble npt -T 300 --steps 10000 -o run/

Resuming restarts the thermostat and barostat variables from rest (they are not stored in the trajectory);
positions, velocities, cell and the step counter continue from the last frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.md import IsotropicMTKNPT, Langevin, MaskedMTKNPT, MTKNPT, NoseHooverChainNVT, VelocityVerlet
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from tqdm import tqdm

from ..exceptions import MDError
from ..units import ATMOSPHERE_MPA
from .guards import Guard
from .trajectory import FrameWriter, read_trajectory

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


def _check_settings(ensemble: str, cell: str, steps: int, interval: int, timestep_fs: float, temperature_K: float,
                    atoms: Atoms) -> None:
    if ensemble not in ENSEMBLES:
        raise MDError(f"unknown ensemble {ensemble!r}; choose one of {', '.join(ENSEMBLES)}")
    if cell not in CELL_MODES:
        raise MDError(f"unknown NPT cell mode {cell!r}; choose one of {', '.join(CELL_MODES)}")
    if steps < 0 or interval < 1 or timestep_fs <= 0 or temperature_K < 0:
        raise MDError(f"need steps >= 0, interval >= 1, timestep > 0 and T >= 0 "
                      f"(got {steps}, {interval}, {timestep_fs} fs, {temperature_K} K)")
    if ensemble == "npt" and not atoms.pbc.all():
        raise MDError("NPT needs a structure periodic in all three directions")
    cell_matrix = atoms.cell.array
    if ensemble == "npt" and cell == "angles-fixed" and \
            np.abs(cell_matrix - np.diag(np.diag(cell_matrix))).max() > 1e-8 * np.abs(cell_matrix).max():
        raise MDError("NPT with cell='angles-fixed' scales the x, y and z axes, which keeps the cell angles only "
                      "for a cell with vectors along x, y and z; use cell='isotropic' (or 'full') for this cell")
    if atoms.calc is None:
        raise MDError("the atoms have no calculator; pass calculator= or set atoms.calc")


def _resume_state(atoms: Atoms, path: Path) -> tuple[int, str | None]:
    """Load the last frame of ``path`` into ``atoms``; return its step and any stop reason."""
    last = read_trajectory(path, index=-1)[0]
    if len(last) != len(atoms) or not np.array_equal(last.numbers, atoms.numbers):
        raise MDError(f"cannot resume from {path}: its atoms ({last.get_chemical_formula()}) differ from the "
                      f"structure given ({atoms.get_chemical_formula()})")
    if "md_step" not in last.info:
        raise MDError(f"cannot resume from {path}: its last frame has no 'md_step' (not written by run_md)")
    atoms.set_cell(last.cell, scale_atoms=False)
    atoms.set_positions(last.positions)
    atoms.set_momenta(last.get_momenta())
    return int(last.info["md_step"]), last.info.get("md_stop")


def run_md(atoms: Atoms, steps: int, *, temperature_K: float = 300.0, ensemble: str = "nvt",
           pressure_MPa: float = ATMOSPHERE_MPA, cell: str = "angles-fixed", timestep_fs: float = 1.0,
           tdamp_fs: float = 100.0, pdamp_fs: float = 200.0, chain: int = 5, friction_per_fs: float = 0.01,
           seed: int = 0, thermalize: bool = True, trajectory: str | Path | None = None, interval: int = 10,
           frame_results: bool = True, resume: bool = True, guard: Guard | None = None, progress: bool = True,
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
        NPT ``md_pressure_MPa``.
    interval : int
        Steps between written frames.
    frame_results : bool
        Store energy, forces and stress in the frames (False: positions, momenta, cell and types only, for
        long VDOS runs).
    resume : bool
        If the trajectory exists, continue from its last frame (positions, momenta, cell, step counter).
        If False, an existing trajectory is an error.
    guard : callable, optional
        ``guard(atoms, step) -> str | None`` called after every step; a string stops the run, is written
        as ``md_stop`` into a final frame and returned as :attr:`MDResult.stopped`. A run whose trajectory
        ends with ``md_stop`` is not continued on resume.
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
        Invalid settings, a missing calculator, an existing trajectory without ``resume``, or a
        trajectory that does not belong to these atoms.
    """
    if calculator is not None:
        atoms.calc = calculator
    _check_settings(ensemble, cell, steps, interval, timestep_fs, temperature_K, atoms)
    path = Path(trajectory) if trajectory is not None else None
    start, stopped = 0, None
    if path is not None and path.exists() and path.stat().st_size > 0:
        if not resume:
            raise MDError(f"trajectory {path} exists; resume it (resume=True) or remove it")
        start, stopped = _resume_state(atoms, path)
    elif thermalize:
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
    info = {"md_ensemble": ensemble, "md_target_temperature_K": temperature_K, "md_timestep_fs": timestep_fs}
    if ensemble == "npt":
        info.update(md_pressure_MPa=pressure_MPa, md_cell=cell)

    writer = FrameWriter(path) if path is not None else None

    def save(step: int, reason: str | None = None) -> None:
        if writer is None:
            return
        atoms.info.update(info, md_step=step, time_fs=step * timestep_fs, temperature_K=atoms.get_temperature())
        if reason is not None:
            atoms.info["md_stop"] = reason
        if frame_results:
            atoms.get_potential_energy()  # make sure energy and forces of this state are what gets written
            atoms.get_forces()
        writer.write(atoms, frame_results)
        for key in (*info, "md_step", "time_fs", "temperature_K", "md_stop"):
            atoms.info.pop(key, None)

    if start == 0:
        save(0)
    step = start
    began = time.perf_counter()
    bar = tqdm(total=steps, initial=start, disable=not progress, unit="step", desc=f"MD {ensemble}")
    try:
        while step < steps:
            dynamics.step()
            step += 1
            bar.update()
            stopped = guard(atoms, step) if guard is not None else None
            if stopped is not None:
                save(step, stopped)
                break
            if step % interval == 0 or step == steps:
                save(step)
                bar.set_postfix(T=f"{atoms.get_temperature():.0f} K",
                                Epot=f"{atoms.get_potential_energy():.3f} eV", refresh=False)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    wall = time.perf_counter() - began
    return MDResult(atoms, step, step - start, stopped, path, wall, timestep_fs)
