"""Molecular dynamics biased by PLUMED, resumable from its trajectory.

The PLUMED kernel comes from the ``hillclimber`` wheel (its ``plumed`` package bundles
``libplumedKernel.so``); :func:`plumed_kernel` points ``PLUMED_KERNEL`` at it when the variable is unset.
PLUMED's bias is computed by ASE's :class:`ase.calculators.plumed.Plumed` through its public
``compute_bias`` method; :class:`PlumedBias` adds it to any ASE calculator.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.plumed import Plumed

from ...exceptions import MetadynamicsError
from ...md import Guard, MDGuard, MDResult, read_trajectory, run_md
from .plumed_input import UNITS_LINE

log = logging.getLogger(__name__)

#: Names of the files a run keeps in its directory.
INPUT_FILE, TRAJECTORY_FILE, LOG_FILE = "plumed.dat", "md.traj", "plumed.log"
#: Thermostats of a biased run: Nose-Hoover chain or Langevin (:func:`mofsnap.md.run_md` ensembles).
THERMOSTATS = ("nvt", "langevin")


def plumed_kernel() -> Path:
    """Path of the PLUMED kernel, setting ``PLUMED_KERNEL`` to the bundled one when unset.

    Returns
    -------
    Path
        ``$PLUMED_KERNEL`` if set, else ``libplumedKernel.so`` of the installed ``plumed`` package
        (from the ``hillclimber`` wheel).

    Raises
    ------
    MetadynamicsError
        If neither exists.
    """
    if os.environ.get("PLUMED_KERNEL"):
        kernel = Path(os.environ["PLUMED_KERNEL"])
    else:
        spec = importlib.util.find_spec("plumed")
        if spec is None or spec.origin is None:
            raise MetadynamicsError("PLUMED python module not found: pip install --no-deps hillclimber")
        lib = Path(spec.origin).parent / "_lib" / "lib"
        kernel = lib / ("libplumedKernel.dylib" if (lib / "libplumedKernel.dylib").exists() else "libplumedKernel.so")
        os.environ["PLUMED_KERNEL"] = str(kernel)
    if not kernel.exists():
        raise MetadynamicsError(f"PLUMED kernel {kernel} does not exist (check PLUMED_KERNEL or reinstall hillclimber)")
    return kernel


class PlumedBias(Calculator):
    """An unbiased calculator plus PLUMED's bias, energy and forces only.

    ASE's :class:`~ase.calculators.plumed.Plumed` also asks the wrapped calculator for the stress of a
    periodic cell after its energy and forces, which can cost a second evaluation (it doubled the step time
    of SNAP + D3) although NVT needs none. This calculator asks for energy and forces and adds the bias from
    ``Plumed.compute_bias``, the public entry of ASE's PLUMED interface.

    Parameters
    ----------
    calc : Calculator
        The unbiased calculator.
    plumed : Plumed
        ASE's PLUMED calculator set up with the input, time step, kT and the atoms of the run; its step
        counter ``istep`` is the PLUMED step of the next evaluation. The caller finalises it (``with plumed:``).
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, calc: Calculator, plumed: Plumed):
        super().__init__()
        self.calc = calc
        self.plumed = plumed

    def calculate(self, atoms: Atoms | None = None, properties=("energy", "forces"), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energy = self.calc.get_potential_energy(self.atoms)
        forces = self.calc.get_forces(self.atoms)
        self.plumed.atoms = self.atoms  # cell and masses of the configuration PLUMED biases
        bias, bias_forces, _ = self.plumed.compute_bias(self.atoms.get_positions(), self.plumed.istep, energy)
        self.plumed.istep += 1
        self.results = {"energy": float(energy + bias), "forces": forces + bias_forces}


def _cut_outputs(lines: Sequence[str], directory: Path, step: int, timestep_fs: float) -> None:
    """Cut PLUMED outputs (``FILE=``, first column time in fs) back to MD step ``step`` before a restart.

    PLUMED prints (COLVAR...) on the first step after a restart again, so those lines go; METAD deposits no
    hill on its first step, so a hill laid at ``step`` stays.
    """
    for line in lines:
        words = line.split()
        last_time = (step + (0.5 if "METAD" in words else -0.5)) * timestep_fs
        for word in words:
            path = directory / word[5:]
            if word.startswith("FILE=") and path.exists():
                kept = [row for row in path.read_text().splitlines(keepends=True)
                        if row.startswith("#") or not row.split() or float(row.split()[0]) < last_time]
                path.write_text("".join(kept))


def run_metadynamics(
    atoms: Atoms,
    calc: Calculator,
    plumed_input: Sequence[str],
    *,
    temperature_K: float,
    steps: int,
    directory: str | Path,
    timestep_fs: float = 1.0,
    thermostat: str = "nvt",
    tdamp_fs: float = 100.0,
    chain: int = 5,
    friction_per_fs: float = 0.01,
    seed: int = 0,
    thermalize: bool = True,
    interval: int = 100,
    resume: bool = True,
    guard: MDGuard | Guard | None = MDGuard(),
    progress: bool = True,
) -> MDResult:
    """NVT molecular dynamics of ``atoms`` under ``calc`` biased by PLUMED (e.g. well-tempered metadynamics).

    The dynamics is :func:`mofsnap.md.run_md` with ``calc`` wrapped in :class:`PlumedBias`. The run lives in
    ``directory``: ``plumed.dat`` (the input), ``md.traj``, ``plumed.log`` and PLUMED's own outputs (relative
    ``FILE=`` names are relative to ``directory``). With ``resume`` and an existing trajectory it continues
    from the last frame up to ``steps`` in total: PLUMED outputs are first cut back to that frame's time and
    PLUMED restarts from them, so the bias is the one the frame felt (the thermostat variables restart from
    rest).

    Parameters
    ----------
    atoms : Atoms
        Start structure, changed in place (final state).
    calc : Calculator
        Unbiased calculator (e.g. ``SNAPCalculator``).
    plumed_input : sequence of str
        PLUMED lines; :data:`~mofsnap.analysis.metadynamics.plumed_input.UNITS_LINE` is put first unless a
        ``UNITS`` line is given.
    temperature_K : float
        Thermostat temperature and PLUMED's kT.
    steps : int
        Total MD steps wanted.
    directory : str or Path
        Run directory (created).
    timestep_fs : float
        MD time step.
    thermostat : {"nvt", "langevin"}
        Nose-Hoover chain (``chain`` thermostats, time constant ``tdamp_fs``) or Langevin
        (``friction_per_fs``).
    tdamp_fs, chain, friction_per_fs : float, int, float
        Thermostat parameters, as in :func:`mofsnap.md.run_md`.
    seed : int
        Seed of the initial velocities and the Langevin noise.
    thermalize : bool
        Draw Maxwell-Boltzmann velocities at the start (else keep the atoms' momenta).
    interval : int
        Steps between trajectory frames (the points a run can resume from).
    resume : bool
        Continue from ``md.traj`` if present; if False an existing trajectory is an error.
    guard : MDGuard, callable or None
        Stops a run that leaves the model's domain, as in :func:`mofsnap.md.run_md` (its default); None for
        toy systems whose instantaneous temperature swings far (a single particle).
    progress : bool
        Show a progress bar.

    Returns
    -------
    MDResult
        Steps done, wall time and ns/day of this call.

    Raises
    ------
    MetadynamicsError
        Unknown thermostat, missing PLUMED, or a resume with a different PLUMED input.
    """
    plumed_kernel()
    if thermostat not in THERMOSTATS:
        raise MetadynamicsError(f"unknown thermostat {thermostat!r}; use 'nvt' (Nose-Hoover chain) or 'langevin'")
    lines = [line.strip() for line in plumed_input if line.strip()]
    if not any(line.split()[0] == "UNITS" for line in lines):
        lines.insert(0, UNITS_LINE)
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    traj_path, input_path = directory / TRAJECTORY_FILE, directory / INPUT_FILE

    start = 0
    if resume and traj_path.exists() and traj_path.stat().st_size > 0:
        if input_path.exists() and input_path.read_text().splitlines() != lines:
            raise MetadynamicsError(f"cannot resume in {directory}: its {INPUT_FILE} differs from this PLUMED "
                                    "input; give another directory or the same input")
        start = int(read_trajectory(traj_path, -1)[0].info.get("md_step", 0))
        _cut_outputs(lines, directory, start, timestep_fs)
        log.info("resuming %s at step %d", directory, start)
    input_path.write_text("\n".join(lines) + "\n")

    with contextlib.chdir(directory), Plumed(calc=calc, input=lines, timestep=timestep_fs * units.fs, atoms=atoms,
                                             kT=units.kB * temperature_K, log=LOG_FILE, restart=start > 0) as plumed:
        plumed.istep = start
        return run_md(atoms, steps, temperature_K=temperature_K, ensemble=thermostat, timestep_fs=timestep_fs,
                      tdamp_fs=tdamp_fs, chain=chain, friction_per_fs=friction_per_fs, seed=seed,
                      thermalize=thermalize, trajectory=traj_path, interval=interval, frame_results=False,
                      resume=resume, guard=guard, progress=progress, calculator=PlumedBias(calc, plumed))
