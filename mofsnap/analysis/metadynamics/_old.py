"""Well-tempered metadynamics through PLUMED, and free energies from its bias.

The PLUMED kernel comes from the ``hillclimber`` wheel (its ``plumed`` package bundles
``libplumedKernel.so``); :func:`plumed_kernel` points ``PLUMED_KERNEL`` at it when the variable is unset.
PLUMED biases any ASE calculator through :class:`ase.calculators.plumed.Plumed`.

Units: every PLUMED input made or run here starts with ``UNITS LENGTH=A ENERGY=eV TIME=fs``, so Gaussian
heights, walls, HILLS and COLVAR files are in eV, Å, rad and fs (ASE's own units except time).

Free energies: PLUMED writes well-tempered hills already scaled by γ/(γ−1), so the free-energy surface is
``F(s) = -Σ_hills w_i G_i(s)`` (up to a constant), which equals ``-γ/(γ−1) V(s)`` with ``V`` the bias that
acted on the system. One-dimensional profiles integrate out the other CVs with Boltzmann weights,
``F(s_k) = -kT ln ∫ exp(-F(s)/kT) ds_{j≠k}``. The barrier error comes from the bias-time convergence: the
barrier is recomputed from the hills deposited up to a series of times and its spread over the last part of
the run is the uncertainty.

Command::

    python -m mofsnap.analysis.metadynamics run STRUCTURE --model PREFIX [--ring N] -o DIR
    python -m mofsnap.analysis.metadynamics analyse HILLS --temperature 300 -o DIR
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.calculators.plumed import Plumed
from scipy.signal import find_peaks
from scipy.special import logsumexp

from ..exceptions import HillsFileError, MetadynamicsError, RingSelectionError
from ..md import MDResult, read_trajectory, run_md
from ..topology import bond_pairs

log = logging.getLogger(__name__)

#: First line of every PLUMED input run here: PLUMED reads and writes eV, Å and fs.
UNITS_LINE = "UNITS LENGTH=A ENERGY=eV TIME=fs"

#: Names of the files a run keeps in its directory.
INPUT_FILE, TRAJECTORY_FILE, LOG_FILE = "plumed.dat", "md.traj", "plumed.log"


# ---------------------------------------------------------------------------------------------------------------
# PLUMED kernel
# ---------------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------------
# PLUMED input for the MOF-5 phenylene rotation
# ---------------------------------------------------------------------------------------------------------------


def metad_line(
    args: Sequence[str],
    *,
    temperature: float,
    sigma: float = 0.1,
    height: float = 0.05,
    biasfactor: float = 12.0,
    pace: int = 100,
    grid_min: str = "-pi",
    grid_max: str = "pi",
    grid_spacing: float = 0.05,
    hills_file: str = "HILLS",
    label: str = "metad",
) -> str:
    """A well-tempered ``METAD`` line with the same settings for every CV.

    Parameters
    ----------
    args : sequence of str
        CV labels.
    temperature : float
        K.
    sigma, height : float
        Gaussian width (CV units) and initial height (eV).
    biasfactor : float
        Well-tempered bias factor γ > 1.
    pace : int
        MD steps between hills.
    grid_min, grid_max : str
        Grid bounds (PLUMED numbers such as ``-pi``).
    grid_spacing : float
        Grid spacing (CV units).
    hills_file : str
        HILLS file name.
    label : str
        Action label (its bias is ``<label>.bias``).
    """
    if biasfactor <= 1:
        raise MetadynamicsError(f"well-tempered bias factor must exceed 1, got {biasfactor}")
    n = len(args)
    rep = lambda value: ",".join([str(value)] * n)  # noqa: E731
    return (
        f"{label}: METAD ARG={','.join(args)} SIGMA={rep(sigma)} HEIGHT={height} BIASFACTOR={biasfactor} "
        f"TEMP={temperature} PACE={pace} GRID_MIN={rep(grid_min)} GRID_MAX={rep(grid_max)} "
        f"GRID_SPACING={rep(grid_spacing)} FILE={hills_file}"
    )


@dataclass(frozen=True)
class PhenyleneRing:
    """Atoms (0-based indices) of one phenylene linker and its two carboxylate ends.

    Attributes
    ----------
    index : int
        Position of the ring in the order of :func:`phenylene_rings`.
    ring_atoms : tuple of int
        The six ring carbons.
    dihedrals : two (C3c, C3b, C3a, O2a) tuples
        Ring plane against carboxylate plane, one per end.
    zn_o : four (Zn4a, O2a) pairs
        Carboxylate O and the Zn it binds, two per end.
    o_zn_zn_o : two (O2a, Zn4a, Zn4a, O2a) tuples
        Carboxylate against its two Zn, one per end.
    """

    index: int
    ring_atoms: tuple[int, ...]
    dihedrals: tuple[tuple[int, int, int, int], ...]
    zn_o: tuple[tuple[int, int], ...]
    o_zn_zn_o: tuple[tuple[int, int, int, int], ...]


def phenylene_rings(atoms: Atoms) -> list[PhenyleneRing]:
    """All phenylene-dicarboxylate rings bound to Zn, found from atom types and bonds.

    Types used: C3a carboxylate C, C3b ring C bonded to it, C3c ring CH, O2a carboxylate O, Zn4a.
    Rings are ordered by their lowest atom index; within each end the lowest-index C3c and O2a are taken.

    Raises
    ------
    RingSelectionError
        If ``atoms.arrays["atom_types"]`` is missing or a ring is not bonded as a phenylene dicarboxylate.
    """
    if "atom_types" not in atoms.arrays:
        raise RingSelectionError('atoms.arrays["atom_types"] is missing; assign atom types first')
    types = np.asarray(atoms.arrays["atom_types"]).astype(str)
    i, j, _, _ = bond_pairs(atoms)
    neighbours: list[set[int]] = [set() for _ in range(len(atoms))]
    for a, b in zip(i.tolist(), j.tolist()):
        neighbours[a].add(b)

    def of_type(atom: int, label: str) -> list[int]:
        return sorted(n for n in neighbours[atom] if types[n] == label)

    def single(atom: int, label: str) -> int:
        found = of_type(atom, label)
        if len(found) != 1:
            raise RingSelectionError(f"atom {atom} ({types[atom]}) has {len(found)} {label} neighbours, expected 1")
        return found[0]

    ring_carbons = set(np.flatnonzero(np.isin(types, ["C3b", "C3c"])).tolist())
    rings, seen = [], set()
    for start in sorted(ring_carbons):
        if start in seen:
            continue
        component, stack = set(), [start]
        while stack:
            atom = stack.pop()
            if atom not in component:
                component.add(atom)
                stack.extend(n for n in neighbours[atom] if n in ring_carbons)
        seen |= component
        ends = sorted(a for a in component if types[a] == "C3b")
        if len(component) != 6 or len(ends) != 2:
            raise RingSelectionError(
                f"ring carbons {sorted(component)} form no phenylene (6 C with 2 C3b): check types and bonds")
        dihedrals, zn_o, o_zn_zn_o = [], [], []
        for b in ends:
            c = of_type(b, "C3c")
            a = single(b, "C3a")
            oxygens = of_type(a, "O2a")
            if not c or len(oxygens) != 2:
                raise RingSelectionError(f"ring end C3b {b} lacks C3c neighbours or its C3a {a} lacks two O2a")
            zincs = [single(o, "Zn4a") for o in oxygens]
            dihedrals.append((c[0], b, a, oxygens[0]))
            zn_o.extend(zip(zincs, oxygens))
            o_zn_zn_o.append((oxygens[0], zincs[0], zincs[1], oxygens[1]))
        rings.append(PhenyleneRing(len(rings), tuple(sorted(component)), tuple(dihedrals), tuple(zn_o),
                                   tuple(o_zn_zn_o)))
    return rings


def ring_rotation_input(
    atoms: Atoms,
    ring: int = 0,
    *,
    temperature: float = 300.0,
    sigma: float = 0.1,
    height: float = 0.05,
    biasfactor: float = 12.0,
    pace: int = 100,
    grid_spacing: float = 0.05,
    wall_distance: float = 2.4,
    wall_distance_kappa: float = 25.0,
    wall_dihedral: float = 0.85,
    wall_dihedral_kappa: float = 25.0,
    colvar_stride: int | None = None,
) -> list[str]:
    """PLUMED input of the reference well-tempered metadynamics of one MOF-5 phenylene rotation.

    CVs ``phi1``, ``phi2``: the C3c–C3b–C3a–O2a dihedrals at the two ends of the ring. Upper walls keep the
    four Zn–O distances below ``wall_distance``; upper and lower walls keep the two O2a–Zn–Zn–O2a dihedrals
    within ±``wall_dihedral`` so the carboxylates stay on their Zn while the ring turns. Walls are
    ``kappa (x - at)^2``. Writes ``HILLS`` and ``COLVAR`` (every ``colvar_stride`` steps, default ``pace``).

    Parameters
    ----------
    atoms : Atoms
        Structure with ``atoms.arrays["atom_types"]``.
    ring : int
        Which ring of :func:`phenylene_rings` (0 = first).
    temperature, sigma, height, biasfactor, pace, grid_spacing
        As in :func:`metad_line` (rad, eV, K).
    wall_distance, wall_distance_kappa : float
        Zn–O wall in Å and eV/Å².
    wall_dihedral, wall_dihedral_kappa : float
        O2a–Zn–Zn–O2a walls in rad and eV/rad².
    colvar_stride : int, optional
        Steps between COLVAR lines.
    """
    rings = phenylene_rings(atoms)
    if not 0 <= ring < len(rings):
        raise RingSelectionError(f"ring {ring} requested but the structure has {len(rings)} phenylene rings")
    chosen = rings[ring]
    one = lambda atom_ids: ",".join(str(a + 1) for a in atom_ids)  # noqa: E731  (PLUMED counts from 1)
    lines = [UNITS_LINE]
    lines += [f"phi{k + 1}: TORSION ATOMS={one(d)}" for k, d in enumerate(chosen.dihedrals)]
    lines += [f"d{k + 1}: DISTANCE ATOMS={one(pair)}" for k, pair in enumerate(chosen.zn_o)]
    lines += [f"t{k + 1}: TORSION ATOMS={one(d)}" for k, d in enumerate(chosen.o_zn_zn_o)]
    dist = ",".join(f"d{k + 1}" for k in range(len(chosen.zn_o)))
    tors = ",".join(f"t{k + 1}" for k in range(len(chosen.o_zn_zn_o)))
    nd, nt = len(chosen.zn_o), len(chosen.o_zn_zn_o)
    rep = lambda value, n: ",".join([str(value)] * n)  # noqa: E731
    lines += [
        f"wall_zno: UPPER_WALLS ARG={dist} AT={rep(wall_distance, nd)} KAPPA={rep(wall_distance_kappa, nd)}",
        f"wall_up: UPPER_WALLS ARG={tors} AT={rep(wall_dihedral, nt)} KAPPA={rep(wall_dihedral_kappa, nt)}",
        f"wall_lo: LOWER_WALLS ARG={tors} AT={rep(-wall_dihedral, nt)} KAPPA={rep(wall_dihedral_kappa, nt)}",
        metad_line(["phi1", "phi2"], temperature=temperature, sigma=sigma, height=height, biasfactor=biasfactor,
                   pace=pace, grid_spacing=grid_spacing),
        f"PRINT ARG=phi1,phi2,{dist},{tors},metad.bias,wall_zno.bias,wall_up.bias,wall_lo.bias "
        f"STRIDE={colvar_stride or pace} FILE=COLVAR",
    ]
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------------------------


def _cut_outputs(lines: Sequence[str], directory: Path, step: int, timestep: float) -> None:
    """Cut PLUMED outputs (``FILE=``, first column time in fs) back to MD step ``step`` before a restart.

    PLUMED prints (COLVAR...) on the first step after a restart again, so those lines go; METAD deposits no
    hill on its first step, so a hill laid at ``step`` stays.
    """
    for line in lines:
        words = line.split()
        last_time = (step + (0.5 if "METAD" in words else -0.5)) * timestep
        for word in words:
            path = directory / word[5:]
            if word.startswith("FILE=") and path.exists():
                kept = [row for row in path.read_text().splitlines(keepends=True)
                        if row.startswith("#") or not row.split() or float(row.split()[0]) < last_time]
                path.write_text("".join(kept))


class _NVTPlumed(Plumed):
    """ASE's PLUMED calculator without stress: NVT needs none, and asking the wrapped calculator for it after
    energy and forces can cost a second evaluation (it doubled the step time of SNAP + D3)."""

    implemented_properties = ["energy", "forces"]

    def _compute_properties(self, pos, istep):
        energy = self.calc.get_potential_energy(self.atoms)
        forces = self.calc.get_forces(self.atoms)
        bias, bias_forces, _ = self.compute_bias(pos, istep, energy)
        return energy + bias, forces + bias_forces, None


def run_metadynamics(
    atoms: Atoms,
    calc: Calculator,
    plumed_input: Sequence[str],
    *,
    temperature: float,
    steps: int,
    directory: str | Path,
    timestep: float = 1.0,
    thermostat: str = "nvt",
    tdamp: float = 100.0,
    chain: int = 5,
    friction: float = 0.01,
    seed: int = 0,
    thermalize: bool = True,
    interval: int = 100,
    resume: bool = True,
    progress: bool = True,
) -> MDResult:
    """NVT molecular dynamics of ``atoms`` under ``calc`` biased by PLUMED (e.g. well-tempered metadynamics).

    The dynamics is :func:`mofsnap.md.run_md` with ``calc`` wrapped in :class:`ase.calculators.plumed.Plumed`.
    The run lives in ``directory``: ``plumed.dat`` (the input), ``md.traj``, ``plumed.log`` and PLUMED's own
    outputs (relative ``FILE=`` names are relative to ``directory``). With ``resume`` and an existing
    trajectory it continues from the last frame up to ``steps`` in total: PLUMED outputs are first cut back
    to that frame's time and PLUMED restarts from them, so the bias is the one the frame felt (the
    thermostat variables restart from rest).

    Parameters
    ----------
    atoms : Atoms
        Start structure, changed in place (final state).
    calc : Calculator
        Unbiased calculator (e.g. ``SNAPCalculator``).
    plumed_input : sequence of str
        PLUMED lines; :data:`UNITS_LINE` is put first unless a ``UNITS`` line is given.
    temperature : float
        K (thermostat and PLUMED's kT).
    steps : int
        Total MD steps wanted.
    directory : str or Path
        Run directory (created).
    timestep : float
        fs.
    thermostat : {"nvt", "langevin"}
        Nose-Hoover chain (``chain`` thermostats, time constant ``tdamp`` fs) or Langevin (``friction`` 1/fs).
    tdamp, chain, friction : float, int, float
        Thermostat parameters.
    seed : int
        Seed of the initial velocities and the Langevin noise.
    thermalize : bool
        Draw Maxwell-Boltzmann velocities at the start (else keep the atoms' momenta).
    interval : int
        Steps between trajectory frames (the points a run can resume from).
    resume : bool
        Continue from ``md.traj`` if present; if False an existing trajectory is an error.
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
    if thermostat not in ("nvt", "langevin"):
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
            raise MetadynamicsError(f"cannot resume in {directory}: its {INPUT_FILE} differs from this PLUMED input")
        start = int(read_trajectory(traj_path, -1)[0].info.get("md_step", 0))
        _cut_outputs(lines, directory, start, timestep)
        log.info("resuming %s at step %d", directory, start)
    input_path.write_text("\n".join(lines) + "\n")

    with contextlib.chdir(directory):
        biased = _NVTPlumed(calc=calc, input=lines, timestep=timestep * units.fs, atoms=atoms,
                        kT=units.kB * temperature, log=LOG_FILE, restart=start > 0)
        biased.istep = start
        try:
            return run_md(atoms, steps, temperature_K=temperature, ensemble=thermostat, timestep_fs=timestep,
                          tdamp_fs=tdamp, chain=chain, friction_per_fs=friction, seed=seed, thermalize=thermalize,
                          trajectory=traj_path, interval=interval, frame_results=False, resume=resume,
                          progress=progress, calculator=biased)
        finally:
            biased.plumed.finalize()


# ---------------------------------------------------------------------------------------------------------------
# HILLS -> free energy
# ---------------------------------------------------------------------------------------------------------------


def _plumed_number(text: str) -> float:
    """A PLUMED number such as ``-pi``, ``2*pi`` or ``1.5``."""
    text = text.strip().lower()
    if "pi" not in text:
        return float(text)
    factor = text.replace("pi", "").rstrip("*").strip()
    signs = {"": 1.0, "+": 1.0, "-": -1.0}
    return (signs[factor] if factor in signs else float(factor)) * np.pi


@dataclass
class Hills:
    """Gaussians deposited by a PLUMED ``METAD`` (diagonal kernels).

    Attributes
    ----------
    names : list of str
        CV names.
    time : (n,) array
        Deposition times (PLUMED time units; fs for runs made here).
    centers, sigmas : (n, d) arrays
        Centres and widths.
    heights : (n,) array
        Heights as written (for well-tempered runs already scaled by γ/(γ−1)).
    biasfactor : float
        γ (inf for plain metadynamics).
    periods : list of (min, max) or None
        Domain of each periodic CV.
    """

    names: list[str]
    time: np.ndarray
    centers: np.ndarray
    sigmas: np.ndarray
    heights: np.ndarray
    biasfactor: float
    periods: list[tuple[float, float] | None] = field(default_factory=list)


def read_hills(path: str | Path) -> Hills:
    """Read a PLUMED HILLS file (also one appended to by restarts).

    Raises
    ------
    HillsFileError
        Missing or empty file, no ``#! FIELDS`` header, or multivariate kernels.
    """
    path = Path(path)
    if not path.exists():
        raise HillsFileError(f"HILLS file {path} does not exist")
    fields: list[str] = []
    settings: dict[str, str] = {}
    rows = []
    for line in path.read_text().splitlines():
        words = line.split()
        if not words:
            continue
        if line.startswith("#! FIELDS"):
            fields = words[2:]
        elif line.startswith("#! SET"):
            settings[words[2]] = words[3]
        elif not line.startswith("#"):
            rows.append([float(w) for w in words])
    if not fields or "time" not in fields:
        raise HillsFileError(f"{path} has no '#! FIELDS time ...' header: not a PLUMED HILLS file")
    if settings.get("multivariate", "false") != "false":
        raise HillsFileError(f"{path} has multivariate hills, which are not supported")
    if not rows:
        raise HillsFileError(f"{path} holds no hills yet")
    data = np.array(rows)
    names = [f for f in fields[1:] if not f.startswith("sigma_") and f not in ("height", "biasf")]
    col = {f: k for k, f in enumerate(fields)}
    periods = [(_plumed_number(settings[f"min_{n}"]), _plumed_number(settings[f"max_{n}"]))
               if f"min_{n}" in settings else None for n in names]
    biasf = data[:, col["biasf"]] if "biasf" in col else np.full(len(data), np.inf)
    return Hills(names=names, time=data[:, 0], centers=data[:, [col[n] for n in names]],
                 sigmas=data[:, [col[f"sigma_{n}"] for n in names]], heights=data[:, col["height"]],
                 biasfactor=float(biasf[-1]), periods=periods)


def grid_axes(hills: Hills, spacing: Sequence[float] | None = None) -> list[np.ndarray]:
    """Grid points per CV: the periodic domain, or the visited range ± 3σ; spacing defaults to σ/2."""
    axes = []
    for k, period in enumerate(hills.periods):
        step = spacing[k] if spacing is not None else 0.5 * float(hills.sigmas[:, k].min())
        if period is not None:
            n = max(int(round((period[1] - period[0]) / step)), 2)
            axes.append(period[0] + (period[1] - period[0]) * np.arange(n) / n)
        else:
            margin = 3 * float(hills.sigmas[:, k].max())
            low, high = hills.centers[:, k].min() - margin, hills.centers[:, k].max() + margin
            axes.append(np.linspace(low, high, max(int(round((high - low) / step)) + 1, 2)))
    return axes


def _sum_hills(hills: Hills, axes: list[np.ndarray], select: slice) -> np.ndarray:
    """Σ height × Gaussian over the hills ``select`` on the grid (minimum image for periodic CVs)."""
    factors = []
    for k, axis in enumerate(axes):
        delta = axis[None, :] - hills.centers[select, k][:, None]
        if hills.periods[k] is not None:
            width = hills.periods[k][1] - hills.periods[k][0]
            delta -= width * np.round(delta / width)
        factors.append(np.exp(-0.5 * (delta / hills.sigmas[select, k][:, None]) ** 2))
    letters = "abcdefgh"[: len(axes)]
    spec = "h," + ",".join(f"h{c}" for c in letters) + "->" + letters
    return np.einsum(spec, hills.heights[select], *factors, optimize=True)


def profile_1d(surface: np.ndarray, axes: list[np.ndarray], keep: int, kT: float) -> np.ndarray:
    """``F(s_keep) = -kT ln ∫ exp(-F/kT) ds_other``, shifted to minimum 0 (eV)."""
    other = tuple(k for k in range(surface.ndim) if k != keep)
    weights = np.zeros(surface.shape)
    for k in other:
        shape = [1] * surface.ndim
        shape[k] = len(axes[k])
        weights = weights + np.log(np.gradient(axes[k])).reshape(shape)
    profile = -kT * logsumexp(-surface / kT + weights, axis=other) if other else surface.copy()
    return profile - profile.min()


def barrier_height(profile: np.ndarray, periodic: bool = False, min_prominence: float = 0.0) -> float:
    """Lowest free-energy barrier out of the global minimum of a 1-D profile.

    The barrier to another minimum is the highest point on the path to it (either way round for periodic
    CVs) minus the global minimum; only minima of ``min_prominence`` (eV) or more count, so noise is ignored.

    Returns
    -------
    float
        Barrier in eV, ``nan`` if the profile has no second minimum (the run has not crossed yet).
    """
    F = np.asarray(profile, float)
    start = int(np.argmin(F))
    if periodic:
        path = np.append(np.roll(F, -start), F[start])
        minima, _ = find_peaks(-path, prominence=min_prominence)
        tops = [min(path[: m + 1].max(), path[m:].max()) for m in minima]
    else:
        minima, _ = find_peaks(-F, prominence=min_prominence)
        tops = [F[min(m, start): max(m, start) + 1].max() for m in minima if m != start]
    return float(min(tops) - F[start]) if tops else float("nan")


@dataclass
class FreeEnergy:
    """Free energy from well-tempered metadynamics hills, with the bias-time convergence of the barriers.

    Attributes
    ----------
    names : list of str
        CV names.
    axes : list of arrays
        Grid of each CV.
    surface : ndarray
        F on the grid (eV, minimum 0), one dimension per CV.
    profiles : list of arrays
        1-D F of each CV with the others integrated out (eV, minimum 0).
    temperature, biasfactor : float
        K and γ.
    times : (m,) array
        Bias times of the convergence checkpoints (time of the last hill used).
    barrier_history : (m, d) array
        Barrier of each CV's profile from the hills up to each checkpoint (eV; nan before crossing).
    barriers, barrier_errors : (d,) arrays
        Final barrier of each CV and its spread (standard deviation) over the last ``tail`` of checkpoints.
    barrier, barrier_error : float
        Mean over CVs of the final barriers, and the spread of that mean over the tail checkpoints.
    """

    names: list[str]
    axes: list[np.ndarray]
    surface: np.ndarray
    profiles: list[np.ndarray]
    temperature: float
    biasfactor: float
    times: np.ndarray
    barrier_history: np.ndarray
    barriers: np.ndarray
    barrier_errors: np.ndarray
    barrier: float
    barrier_error: float

    def to_json(self) -> dict:
        """Machine-readable summary (energies in eV, plus the barrier in kJ/mol)."""
        return {
            "cvs": self.names, "temperature_K": self.temperature, "biasfactor": self.biasfactor,
            "barrier_eV": self.barrier, "barrier_error_eV": self.barrier_error,
            "barrier_kJ_per_mol": self.barrier * units.mol / units.kJ,
            "barriers_per_cv_eV": dict(zip(self.names, self.barriers.tolist())),
            "barrier_errors_per_cv_eV": dict(zip(self.names, self.barrier_errors.tolist())),
            "convergence": {"time": self.times.tolist(),
                            "barrier_eV": {n: self.barrier_history[:, k].tolist() for k, n in enumerate(self.names)}},
            "profiles_eV": {n: {"s": self.axes[k].tolist(), "F": self.profiles[k].tolist()}
                            for k, n in enumerate(self.names)},
            "surface_eV": np.round(self.surface, 6).tolist(),
        }

    def plot(self, directory: str | Path) -> list[Path]:
        """Write ``fes_2d.png`` (two CVs), ``fes_1d.png`` and ``barrier_convergence.png``; return their paths."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        directory = Path(directory)
        written = []
        if self.surface.ndim == 2:
            fig, ax = plt.subplots(figsize=(5.5, 4.5))
            image = ax.contourf(self.axes[0], self.axes[1], self.surface.T, levels=30, cmap="viridis")
            fig.colorbar(image, ax=ax, label="F (eV)")
            ax.set(xlabel=self.names[0], ylabel=self.names[1], title=f"F at {self.temperature:g} K")
            written.append(directory / "fes_2d.png")
            fig.savefig(written[-1], dpi=150, bbox_inches="tight")
            plt.close(fig)
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for name, axis, profile in zip(self.names, self.axes, self.profiles):
            ax.plot(axis, profile, label=name)
        ax.set(xlabel="CV", ylabel="F (eV)", title=f"barrier {self.barrier:.3f} ± {self.barrier_error:.3f} eV")
        ax.legend()
        written.append(directory / "fes_1d.png")
        fig.savefig(written[-1], dpi=150, bbox_inches="tight")
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for k, name in enumerate(self.names):
            ax.plot(self.times, self.barrier_history[:, k], "o-", label=name)
        ax.set(xlabel="bias time (PLUMED time units)", ylabel="barrier (eV)", title="bias-time convergence")
        ax.legend()
        written.append(directory / "barrier_convergence.png")
        fig.savefig(written[-1], dpi=150, bbox_inches="tight")
        plt.close(fig)
        return written


def free_energy(
    hills: Hills | str | Path,
    temperature: float,
    *,
    spacing: Sequence[float] | None = None,
    checkpoints: int = 20,
    tail: float = 0.25,
    min_prominence: float | None = None,
) -> FreeEnergy:
    """Free-energy surface, 1-D profiles and barriers (with error) from well-tempered hills.

    Parameters
    ----------
    hills : Hills or path
        Hills, or a HILLS file to read.
    temperature : float
        K of the run (for integrating out CVs).
    spacing : sequence of float, optional
        Grid spacing per CV (default σ/2).
    checkpoints : int
        Number of bias times at which the barriers are recomputed.
    tail : float
        Fraction of the run (the last checkpoints) over which the barrier spread is the error.
    min_prominence : float, optional
        Smallest depth (eV) of a minimum that counts for the barrier; default 2 kT.

    Raises
    ------
    HillsFileError
        For hills of plain (not well-tempered) metadynamics.
    """
    hills = hills if isinstance(hills, Hills) else read_hills(hills)
    if not np.isfinite(hills.biasfactor):
        raise HillsFileError("hills are not well-tempered (no biasf column); F = -V needs a converged plain run")
    if not 0 < tail <= 1:
        raise HillsFileError(f"tail must be a fraction in (0, 1], got {tail}")
    kT = units.kB * temperature
    prominence = 2 * kT if min_prominence is None else min_prominence
    axes = grid_axes(hills, spacing)
    n = len(hills.heights)
    ends = np.unique(np.linspace(0, n, checkpoints + 1).round().astype(int)[1:])
    total = np.zeros([len(a) for a in axes])
    history, begin = [], 0
    for end in ends:
        total += _sum_hills(hills, axes, slice(begin, end))
        begin = end
        surface = -total - (-total).min()
        history.append([barrier_height(profile_1d(surface, axes, k, kT), hills.periods[k] is not None,
                                       prominence) for k in range(len(axes))])
    history = np.array(history)
    in_tail = slice(max(len(ends) - max(int(round(tail * len(ends))), 1), 0), None)
    with warnings.catch_warnings():  # all-nan columns (no crossing yet) give nan, as they should
        warnings.simplefilter("ignore", RuntimeWarning)
        errors = np.nanstd(history[in_tail], axis=0)
        mean_error = float(np.nanstd(np.nanmean(history[in_tail], axis=1)))
    return FreeEnergy(
        names=hills.names, axes=axes, surface=surface,
        profiles=[profile_1d(surface, axes, k, kT) for k in range(len(axes))], temperature=temperature,
        biasfactor=hills.biasfactor, times=hills.time[ends - 1], barrier_history=history, barriers=history[-1],
        barrier_errors=errors, barrier=float(np.mean(history[-1])), barrier_error=mean_error)


def write_results(result: FreeEnergy, directory: str | Path) -> Path:
    """Write ``metadynamics.json`` and the PNG plots of ``result`` into ``directory``; return the JSON path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    result.plot(directory)
    path = directory / "metadynamics.json"
    path.write_text(json.dumps(result.to_json(), indent=1) + "\n")
    return path


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------


def _add_analysis_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("free-energy analysis")
    group.add_argument("--spacing", type=float, nargs="+", metavar="DS",
                       help="grid spacing per CV in CV units (default: half the Gaussian width)")
    group.add_argument("--checkpoints", type=int, default=20,
                       help="bias times at which the barrier is recomputed for the convergence error (default 20)")
    group.add_argument("--tail", type=float, default=0.25,
                       help="fraction of the run whose barrier spread is the error (default 0.25)")
    group.add_argument("--min-prominence", type=float, metavar="EV",
                       help="smallest depth of a free-energy minimum that counts for the barrier, eV (default 2 kT)")


def _analyse(hills: Path, temperature: float, args: argparse.Namespace, out: Path) -> FreeEnergy:
    result = free_energy(hills, temperature, spacing=args.spacing, checkpoints=args.checkpoints, tail=args.tail,
                         min_prominence=args.min_prominence)
    path = write_results(result, out)
    for name, value, error in zip(result.names, result.barriers, result.barrier_errors):
        print(f"barrier along {name}: {value:.3f} ± {error:.3f} eV")
    print(f"barrier: {result.barrier:.3f} ± {result.barrier_error:.3f} eV  ({path})")
    return result


def main(argv: list[str] | None = None) -> None:
    """Command ``python -m mofsnap.analysis.metadynamics {run,analyse} ...``."""
    from ..md import add_calculator_arguments, calculator_from_args, read_structure

    parser = argparse.ArgumentParser(prog="python -m mofsnap.analysis.metadynamics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run well-tempered metadynamics, then analyse it (resumable)",
                              description="Run well-tempered metadynamics (MOF-5 ring rotation by default, or any "
                                          "PLUMED input) and analyse its HILLS. Re-running the same command "
                                          "continues an interrupted run.")
    run.add_argument("structure", help="start structure (extxyz/CIF/...); atom types are assigned if missing")
    run.add_argument("-o", "--output", default="metadynamics", help="run and results directory (default "
                                                                    "./metadynamics)")
    run.add_argument("--plumed", metavar="FILE",
                     help="PLUMED input to use instead of the ring-rotation protocol (any CVs; its METAD must "
                          "write FILE=HILLS; UNITS LENGTH=A ENERGY=eV TIME=fs is added if it has no UNITS)")
    run.add_argument("--ring", type=int, default=0, help="index of the phenylene ring to rotate (default 0, the first)")
    run.add_argument("-T", "--temperature", type=float, default=300.0, help="temperature in K (default 300)")
    run.add_argument("--steps", type=int, default=100000, help="total MD steps (default 100000)")
    wtm = run.add_argument_group("well-tempered metadynamics (ring protocol)")
    wtm.add_argument("--sigma", type=float, default=0.1, help="Gaussian width in rad (default 0.1)")
    wtm.add_argument("--height", type=float, default=0.05, help="initial Gaussian height in eV (default 0.05)")
    wtm.add_argument("--biasfactor", type=float, default=12.0, help="bias factor γ (default 12)")
    wtm.add_argument("--pace", type=int, default=100, help="MD steps between Gaussians (default 100)")
    wtm.add_argument("--grid-spacing", type=float, default=0.05, help="PLUMED bias grid spacing in rad (default 0.05)")
    md = run.add_argument_group("molecular dynamics (NVT)")
    md.add_argument("--thermostat", choices=("nvt", "langevin"), default="nvt",
                    help="nvt: Nose-Hoover chain (default); langevin: Langevin with --friction")
    md.add_argument("--timestep", type=float, default=1.0, metavar="FS", help="time step in fs (default 1)")
    md.add_argument("--tdamp", type=float, default=100.0, metavar="FS",
                    help="Nose-Hoover time constant in fs (default 100)")
    md.add_argument("--chain", type=int, default=5, help="Nose-Hoover chain length (default 5)")
    md.add_argument("--friction", type=float, default=0.01, metavar="PER_FS",
                    help="Langevin friction in 1/fs (default 0.01)")
    md.add_argument("--interval", type=int, default=100, help="steps between trajectory frames (default 100)")
    md.add_argument("--seed", type=int, default=0, help="seed of velocities and Langevin noise (default 0)")
    md.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    add_calculator_arguments(run)
    _add_analysis_arguments(run)

    analyse = commands.add_parser("analyse", help="free energy and barrier from an existing HILLS file",
                                  description="Free-energy surface, 1-D profiles and barrier with its bias-time "
                                              "convergence error from a well-tempered PLUMED HILLS file.")
    analyse.add_argument("hills", help="PLUMED HILLS file of a well-tempered run")
    analyse.add_argument("-T", "--temperature", type=float, required=True, help="temperature of the run in K")
    analyse.add_argument("-o", "--output", default=None, help="results directory (default: next to HILLS)")
    _add_analysis_arguments(analyse)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "analyse":
        hills = Path(args.hills)
        _analyse(hills, args.temperature, args, Path(args.output) if args.output else hills.parent)
        return
    atoms = read_structure(args.structure)
    if args.plumed:
        lines = Path(args.plumed).read_text().splitlines()
    else:
        if "atom_types" not in atoms.arrays:
            from ..atomtypes import assign_atom_types

            assign_atom_types(atoms)
        lines = ring_rotation_input(atoms, args.ring, temperature=args.temperature, sigma=args.sigma,
                                    height=args.height, biasfactor=args.biasfactor, pace=args.pace,
                                    grid_spacing=args.grid_spacing)
    result = run_metadynamics(atoms, calculator_from_args(args), lines, temperature=args.temperature,
                              steps=args.steps, directory=args.output, timestep=args.timestep,
                              thermostat=args.thermostat, tdamp=args.tdamp, chain=args.chain, friction=args.friction,
                              seed=args.seed, interval=args.interval, progress=not args.no_progress)
    print(f"{result.steps} steps, {result.ns_per_day:.3f} ns/day")
    _analyse(Path(args.output) / "HILLS", args.temperature, args, Path(args.output))


if __name__ == "__main__":
    main()
