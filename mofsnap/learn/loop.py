"""Temperature-driven active learning of a SNAP model, as one call and one command.

The workflow of the reference work (MOF-5 route):

0. ``n_perturbed`` randomly perturbed copies of the crystal (atom displacements, small cell strains); the
   CBAD-new ones are labelled with the reference and MLP0 is fitted.
k. At ``T_k`` (100 K, 200 K, ... by default), ``runs`` independent NPT runs with MLP(k-1), each from its own
   perturbed start and velocities; from each run at most one frame is picked (CBAD-new by default), the picks
   are labelled and MLP(k) is fitted on everything labelled so far.
final. A temperature ramp with the last model gives a test pool; a random subset of it is labelled as the test
   set (optionally more random frames join the training set); the final model is fitted and every
   generation's model is scored on the test set (the learning curve).

State lives in the work directory, so a killed run resumes where it stopped and ends with the same result::

    settings.json        the settings (a resume with different settings is refused)
    labels.db            every label as it arrives (ase.db; provenance: generation, temperature, run, frame)
    gen000/ ...          per generation: md/run###.extxyz (+ .json, written when the run is complete),
                         model.snapcoeff/.snapparam, report.json, report.pkl, parity.png, cbad.json
    final/               ramp trajectory, final model, test report, parity plot
    summary.json, summary.png, learning_curve.png

Every step is deterministic given the seed and idempotent: finished MD runs are not rerun (an unfinished one
restarts from its beginning, so the result equals an uninterrupted run), labels already in the store are not
recomputed, and fitted generations are loaded rather than refitted.

The ZIF-8 route ("select from these trajectories, label, fit") is :func:`learn_from_pool`.

Command line::

    python -m mofsnap.learn config.toml -o WORKDIR       # settings from a TOML file (see LearnSettings)
    python -m mofsnap.learn --demo -o results/demo       # the embedded demo: MOF-5 cell, GFN1-xTB reference
    python -m mofsnap.learn --write-config my.toml       # a commented TOML file with every default
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import sys
import time
import tomllib
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
from ase import Atoms

from .atomtypes import assign_atom_types
from .calculator import D3, SNAPCalculator
from .cbad import CBADFilter
from .descriptors import SnapDescriptors
from .exceptions import LammpsError, LearnError, ModelError
from .units import ATMOSPHERE_MPA, ENERGY_WEIGHT, STRESS_WEIGHT
from .fit import EV_PER_A3_IN_MPA, FitReport, extrapolation_grade, fit_snap
from .labelling import LabelStore, label
from .md import blowup_guard, run_md
from .model import SNAPModel
from .plotting import learning_curve_figure, save_figure
from .reference import Reference, reference_by_name
from .structures import mof5, zif8
from .topology import Topology

log = logging.getLogger(__name__)

#: Built-in structures a settings file can name.
STRUCTURES = {"mof5": lambda: mof5(), "mof5-primitive": lambda: mof5(primitive=True),
              "zif8": lambda: zif8(), "zif8-primitive": lambda: zif8(primitive=True)}
SELECTIONS = ("cbad", "grade", "random")
CBAD_PICKS = ("first", "last", "random")


@dataclass(frozen=True)
class LearnSettings:
    """Everything that defines an active-learning campaign (the TOML config file holds these keys).

    Attributes
    ----------
    structure : str
        A built-in name (``mof5``, ``mof5-primitive``, ``zif8``, ``zif8-primitive``) or a structure file.
    reference : str
        A name of :data:`mofsnap.reference.NAMES`: ``gfn1``/``gfn2`` (GFN-xTB by tblite) or ``cp2k-training``,
        ``cp2k-optimisation``, ``cp2k-cheap`` (CP2K presets; pass a ``CP2K`` object for MPI ranks).
    seed : int
        Seed of every random choice (perturbations, velocities, shuffles, picks).
    n_perturbed, displacement, strain : int, float, float
        Step 0: number of perturbed copies, uniform atom displacement amplitude (Å) per component, and
        uniform amplitude of the symmetric cell strain components.
    relax_fmax : float or None
        Relax the atom positions of the structure with the reference (FIRE, to this largest force in eV/Å)
        before step 0, so that MD starts near the reference's minimum; ``None`` uses the structure as given
        (e.g. one already relaxed with the reference, as for CP2K).
    relax_steps : int
        Step limit of that relaxation.
    md_displacement : float
        Displacement amplitude (Å) of the MD starts (the same strain amplitude); smaller than the step-0 one,
        since a strongly perturbed start turns its excess potential energy into a temperature spike.
    temperatures : tuple of float
        ``T_k`` of the generations (K).
    runs, md_steps, frame_interval : int
        MD runs per generation, steps per run (1 fs), steps between the frames offered for selection.
    pressure_MPa : float
        NPT pressure.
    d3 : bool
        Run the active-learning MD with SNAP + D3 (dispersion is never part of the labels' fit target).
    selection : str
        How each run's frame is picked: ``cbad`` (a CBAD-new frame, see ``cbad_pick``), ``grade`` (the frame
        of highest extrapolation grade, if above ``grade_threshold``) or ``random``.
    cbad_pick : str
        Which CBAD-new frame of a run: ``first`` (the reference work), ``last`` or ``random``.
    grade_threshold : float
        Lowest extrapolation grade worth labelling with ``selection = "grade"``.
    resolutions : dict
        CBAD bin widths overriding the defaults (keys of :class:`mofsnap.cbad.Resolutions`).
    ramp_steps, ramp_segments : int
        Final test pool: NPT ramp from 10 K to ``max(temperatures)`` in this many steps and segments.
    test_size, extra_random : int
        Random ramp frames labelled as test set, and further random ones added to the training set.
    final_md_steps : int
        Length of the closing 300 K NPT run with the final SNAP + D3 (0 skips it).
    twojmax, rcutfac, energy_weight, stress_weight : int, float, float, float
        SNAP and fit settings (per-type radii and weights: the model defaults).
    max_force, max_temperature_factor, bond_tolerance : float
        Blow-up guard of the MD: force (eV/Å), temperature as a multiple of the target (at least the target
        + 1000 K), and bond length as a multiple of the reference bond.
    max_workers : int or None
        Local process-pool size (default: one per CPU); ignored when an executor is given.
    executor : str or None
        Address of a Dask scheduler to run labelling and MD on (e.g. one started by dask-jobqueue).
    """

    structure: str = "mof5-primitive"
    reference: str = "gfn1"
    seed: int = 0
    n_perturbed: int = 300
    displacement: float = 0.12
    strain: float = 0.005
    relax_fmax: float | None = None
    relax_steps: int = 200
    md_displacement: float = 0.03
    temperatures: tuple[float, ...] = tuple(float(t) for t in range(100, 1001, 100))
    runs: int = 50
    md_steps: int = 2000
    frame_interval: int = 20
    pressure_MPa: float = ATMOSPHERE_MPA
    d3: bool = False
    selection: str = "cbad"
    cbad_pick: str = "first"
    grade_threshold: float = 1.0
    resolutions: dict = field(default_factory=dict)
    ramp_steps: int = 20000
    ramp_segments: int = 20
    test_size: int = 100
    extra_random: int = 0
    final_md_steps: int = 2000
    twojmax: int = 8
    rcutfac: float = 4.0
    energy_weight: float = ENERGY_WEIGHT
    stress_weight: float = STRESS_WEIGHT
    max_force: float = 20.0
    max_temperature_factor: float = 3.0
    bond_tolerance: float = 1.5
    max_workers: int | None = None
    executor: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperatures", tuple(float(t) for t in self.temperatures))
        if self.selection not in SELECTIONS:
            raise LearnError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.cbad_pick not in CBAD_PICKS:
            raise LearnError(f"cbad_pick must be one of {CBAD_PICKS}, got {self.cbad_pick!r}")
        for name in ("n_perturbed", "runs", "md_steps", "frame_interval", "ramp_segments"):
            if getattr(self, name) < 1:
                raise LearnError(f"{name} must be at least 1, got {getattr(self, name)}")
        if any(t <= 0 for t in self.temperatures):
            raise LearnError(f"temperatures must be positive, got {self.temperatures}")

    #: Keys that may change between a run and its resume (they do not change results).
    RUNTIME_KEYS = ("max_workers", "executor")

    @classmethod
    def from_toml(cls, path: str | Path) -> "LearnSettings":
        """Read settings from a TOML file; unknown keys are an error."""
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LearnError(f"{path}: unknown settings {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_toml(self) -> str:
        """The settings as a TOML document (``None`` values are left out)."""
        lines = []
        for key, value in asdict(self).items():
            if value is None:
                continue
            if isinstance(value, dict):
                body = ", ".join(f"{k} = {v!r}" for k, v in value.items())
                lines.append(f"{key} = {{{body}}}")
            elif isinstance(value, tuple):
                lines.append(f"{key} = [{', '.join(repr(v) for v in value)}]")
            else:
                lines.append(f"{key} = {json.dumps(value)}")
        return "\n".join(lines) + "\n"


#: The README's main job: a reduced schedule on the 106-atom MOF-5 cell that takes about 15 minutes on 2 cores.
#: Its cell strains are ±2 % (reference: ±0.5 % of the 424-atom cell): the small cell's volume fluctuates
#: more in NPT, and the model must know the compressed and expanded cell to keep the barostat out of holes.
#: Its MD runs with D3, as the production MD does: D3 shrinks the cell by ~2 %, a region the model must see.
DEMO = LearnSettings(relax_fmax=0.1, n_perturbed=80, strain=0.02, d3=True,
                     temperatures=tuple(float(t) for t in range(100, 801, 100)),
                     runs=10, md_steps=500, frame_interval=10, ramp_steps=2000, ramp_segments=10, test_size=30,
                     final_md_steps=2000)


def load_structure(spec: str | Atoms) -> Atoms:
    """A typed structure: Atoms as given, a built-in name, or a file (types assigned if missing)."""
    if isinstance(spec, Atoms):
        atoms = spec.copy()
    elif spec in STRUCTURES:
        atoms = STRUCTURES[spec]()
    elif Path(spec).exists():
        atoms = ase.io.read(spec)
    else:
        raise LearnError(f"structure {spec!r} is neither a built-in ({', '.join(STRUCTURES)}) nor a file")
    if "atom_types" not in atoms.arrays:
        assign_atom_types(atoms)
    atoms.calc = None
    return atoms


def perturbed_copies(atoms: Atoms, n: int, displacement: float, strain: float, seed: int) -> list[Atoms]:
    """``n`` copies with uniform random displacements (±``displacement`` Å) and symmetric cell strains."""
    rng = np.random.default_rng(seed)
    copies = []
    for _ in range(n):
        eps = rng.uniform(-strain, strain, (3, 3))
        copy = atoms.copy()
        copy.set_cell(atoms.cell.array @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
        copy.positions += rng.uniform(-displacement, displacement, (len(atoms), 3))
        copies.append(copy)
    return copies


def prediction_errors(model: SNAPModel, images: list[Atoms]) -> dict[str, float]:
    """RMSE of a model against labelled configurations: energy meV/atom, forces meV/Å, stress MPa."""
    if not images:
        return {"energy_rmse": float("nan"), "forces_rmse": float("nan"), "stress_rmse": float("nan"), "n": 0}
    calc = SNAPCalculator(model)
    de, df, ds = [], [], []
    for atoms in images:
        probe = atoms.copy()
        probe.calc = calc
        de.append((probe.get_potential_energy() - atoms.get_potential_energy()) / len(atoms))
        df.append((probe.get_forces() - atoms.get_forces()).ravel())
        ds.append(probe.get_stress() - atoms.get_stress())
    return {"energy_rmse": 1e3 * _rms(de), "forces_rmse": 1e3 * _rms(df), "stress_rmse": EV_PER_A3_IN_MPA * _rms(ds),
            "n": len(images)}


def _rms(values: list) -> float:
    return float(np.sqrt(np.mean(np.square(np.concatenate([np.ravel(v) for v in values])))))


# ------------------------------------------------------------------------------------------- MD tasks


@dataclass(frozen=True)
class MDTask:
    """One MD job of the loop, self-contained so that it runs on any executor worker.

    The trajectory is written to a temporary name and moved to ``trajectory`` with a JSON summary next to it
    when the run is over; a run whose summary exists is complete.
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
    d3: bool = False
    max_force: float = 20.0
    max_temperature_factor: float = 3.0
    bond_tolerance: float = 1.5

    @property
    def summary_path(self) -> Path:
        return Path(self.trajectory).with_suffix(".json")


#: Errors by which an MD run with an extrapolating model fails (they end the run like the blow-up guard).
EXPLOSIONS = (np.linalg.LinAlgError, LammpsError, ModelError, FloatingPointError, OverflowError)


def npt_cell(atoms: Atoms) -> str:
    """NPT cell mode with the cell angles fixed: lengths free for an orthogonal cell, else the volume only."""
    cell = atoms.cell.array
    return "angles-fixed" if np.allclose(cell, np.diag(np.diag(cell))) else "isotropic"


def _blowup_guard(task: MDTask, topology: Topology, temperature: float):
    """Stop a run on huge forces, a temperature runaway or a broken bond."""
    forces_guard = blowup_guard(task.max_force, max(task.max_temperature_factor * temperature, temperature + 1e3))

    def guard(atoms: Atoms, step: int) -> str | None:
        reason = forces_guard(atoms, step)
        if reason is None and topology.broken_bonds(atoms.positions, atoms.cell.array, task.bond_tolerance).any():
            reason = f"bond longer than {task.bond_tolerance} x its reference at step {step}"
        return reason

    return guard


def run_md_task(task: MDTask) -> dict:
    """Run an :class:`MDTask` (NPT segments at its temperatures) with the blow-up guard; return its summary."""
    calc = SNAPCalculator(task.model, d3=D3() if task.d3 else None)
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


def run_tasks(tasks: list[MDTask], executor: Executor, desc: str) -> list[dict]:
    """Run the MD tasks that are not complete yet through ``executor``; return all summaries in task order.

    An exploding model can crash LAMMPS and with it the worker process, which breaks a process pool for
    every task in it. The tasks caught in a broken pool are rerun one at a time, each in a fresh process,
    and the one that kills its process again is recorded as a stopped run without frames.
    """
    from tqdm.auto import tqdm

    todo = [t for t in tasks if not t.summary_path.exists()]
    futures = [executor.submit(run_md_task, t) for t in todo]
    broken = []
    for task, future in zip(todo, tqdm(futures, desc=desc, unit="run", disable=not futures)):
        try:
            future.result()
        except BrokenExecutor:
            broken.append(task)
    for task in broken:
        with ProcessPoolExecutor(1, mp_context=get_context("forkserver")) as single:
            try:
                single.submit(run_md_task, task).result()
            except BrokenExecutor as exc:
                Path(task.trajectory).write_text("")
                _write_summary(task, {"trajectory": task.trajectory, "frames": 0, "wall_seconds": 0.0,
                                      "stopped": f"the MD process died ({type(exc).__name__})",
                                      "temperatures": list(task.temperatures)})
    return [json.loads(t.summary_path.read_text()) for t in tasks]


# -------------------------------------------------------------------------------------- the workflow


class ActiveLearning:
    """Temperature-driven active learning (see the module docstring).

    Parameters
    ----------
    structure : Atoms or str
        The crystal (typed Atoms, a built-in name or a file); defaults to ``settings.structure``.
    workdir : path
        Where all state and results go; an existing one is resumed.
    settings : LearnSettings
        The campaign.
    reference : Reference, optional
        Labelling reference; defaults to ``settings.reference``.
    executor : Executor, optional
        Runs labelling and MD (e.g. ``distributed.Client(...).get_executor()``); by default a local process
        pool of ``settings.max_workers``, or a Dask client of ``settings.executor``.

    Examples
    --------
    >>> from mofsnap.learn import ActiveLearning, DEMO                 # doctest: +SKIP
    >>> result = ActiveLearning(workdir="al", settings=DEMO).run()     # doctest: +SKIP
    """

    def __init__(self, structure: Atoms | str | None = None, workdir: str | Path = "mofsnap-learn",
                 settings: LearnSettings = LearnSettings(), reference: Reference | None = None,
                 executor: Executor | None = None) -> None:
        self.settings = settings
        self.workdir = Path(workdir)
        self.structure = load_structure(structure if structure is not None else settings.structure)
        self.reference = reference or reference_by_name(settings.reference)
        self.executor = executor
        self._own_executor = False  # a local pool made here (shut down at the end, replaced when broken)
        self.topology = Topology.from_atoms(self.structure)
        self.types = sorted(set(self.structure.arrays["atom_types"]))
        self._check_workdir()
        self.store = LabelStore(self.workdir / "labels.db")
        if settings.relax_fmax is not None:
            self.structure = self._relaxed()

    def _check_workdir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        saved = self.workdir / "settings.json"
        mine = {k: v for k, v in json.loads(json.dumps(asdict(self.settings))).items()
                if k not in LearnSettings.RUNTIME_KEYS}
        mine["reference_settings_hash"] = self.reference.settings_hash
        mine["structure_hash"] = _structure_hash(self.structure)
        if saved.exists():
            old = json.loads(saved.read_text())
            changed = sorted(k for k in set(old) | set(mine) if old.get(k) != mine.get(k))
            if changed:
                raise LearnError(f"{self.workdir} was made with other settings ({', '.join(changed)} differ); "
                                 "use a new work directory")
        else:
            saved.write_text(json.dumps(mine, indent=1))
            ase.io.write(self.workdir / "structure.extxyz", self.structure)

    def _relaxed(self) -> Atoms:
        """The structure with its positions relaxed by the reference (computed once, then read back)."""
        from ase.optimize import FIRE

        path = self.workdir / "structure_relaxed.extxyz"
        if path.exists():
            return ase.io.read(path)
        atoms = self.structure.copy()
        atoms.calc = self.reference.calculator()
        log.info("relaxing the positions with %s (fmax %.2f eV/Å)", self.reference.name, self.settings.relax_fmax)
        FIRE(atoms, logfile=None).run(fmax=self.settings.relax_fmax, steps=self.settings.relax_steps)
        log.info("relaxed: largest force %.3f eV/Å", np.linalg.norm(atoms.get_forces(), axis=1).max())
        atoms.calc = None
        ase.io.write(path.with_suffix(".part.extxyz"), atoms)
        os.replace(path.with_suffix(".part.extxyz"), path)
        return ase.io.read(path)  # as a resumed run will read it (the file rounds the positions)

    # -- helpers --------------------------------------------------------------------------------------
    def _gen_dir(self, k: int) -> Path:
        return self.workdir / f"gen{k:03d}"

    def _training(self, up_to: int) -> list[Atoms]:
        """Good training labels of generations ``<= up_to``, in a fixed (hash) order."""
        images = [a for a in self.store.select(role="train") if a.info["generation"] <= up_to]
        return sorted(images, key=lambda a: a.info["label_hash"])

    def _label(self, frames: list[Atoms], metadata: list[dict]) -> list[Atoms]:
        """Label frames (skipping those already stored); return the good labels among them."""
        if not frames:
            return []
        summary = label(frames, self.reference, self.store, self._executor(), metadata=metadata)
        statuses = self.store.statuses()
        return [self.store.get(key) for key in summary.keys if statuses.get(key) == "ok"]

    def _executor(self) -> Executor:
        if self._own_executor and not _usable(self.executor):
            self.executor.shutdown(wait=False)  # our pool, broken by a crashed MD process: take a fresh one
            self.executor = None
        if self.executor is None:
            self._own_executor = not self.settings.executor
            if self.settings.executor:
                from distributed import Client

                self.executor = Client(self.settings.executor).get_executor()
            else:
                self.executor = ProcessPoolExecutor(self.settings.max_workers or os.cpu_count(),
                                                    mp_context=get_context("forkserver"))
        return self.executor

    def _fit(self, k: int) -> tuple[SNAPModel, FitReport]:
        """Fit generation ``k`` on all training labels so far, or load it if it was fitted already."""
        gen = self._gen_dir(k)
        prefix = gen / "model"
        if (gen / "report.pkl").exists():
            with open(gen / "report.pkl", "rb") as handle:
                return SNAPModel.read(prefix), pickle.load(handle)
        train = self._training(k)
        if not train:
            raise LearnError(f"generation {k} has no training labels (all failed?); see {self.store.path}")
        s = self.settings
        model, report = fit_snap(train, model=SNAPModel(self.types, twojmax=s.twojmax, rcutfac=s.rcutfac),
                                 energy_weight=s.energy_weight, stress_weight=s.stress_weight,
                                 cache_dir=self.workdir / "descriptors", seed=s.seed)
        gen.mkdir(parents=True, exist_ok=True)
        model.write(prefix)
        report.to_json(gen / "report.json")
        report.plot(gen / "parity.png")
        with open(gen / "report.pkl.part", "wb") as handle:
            pickle.dump(report, handle)
        os.replace(gen / "report.pkl.part", gen / "report.pkl")  # the generation's completion mark
        return model, report

    def _grades(self, model: SNAPModel, report: FitReport, frames: list[Atoms]) -> np.ndarray:
        """Extrapolation grade of each frame with respect to the training set of ``report``."""
        with SnapDescriptors(model) as snap:
            return np.array([extrapolation_grade(report, report.weighted_rows(snap.rows(f), len(f)))
                             for f in frames])

    # -- the steps ------------------------------------------------------------------------------------
    def step0(self) -> dict:
        """Perturbed copies, CBAD selection, labels, MLP0."""
        s = self.settings
        copies = perturbed_copies(self.structure, s.n_perturbed, s.displacement, s.strain, s.seed)
        cbad = CBADFilter(self.topology, s.resolutions or None, bond_tolerance=s.bond_tolerance)
        selected = cbad.select(copies, shuffle=True, seed=s.seed, progress=False)
        labelled = self._label(selected, [{"generation": 0, "role": "train", "source": "perturbed",
                                           "frame": int(a.info.get("cbad_index", i))}
                                          for i, a in enumerate(selected)])
        model, report = self._fit(0)
        cbad.save(self._gen_dir(0) / "cbad.json")
        return {"generation": 0, "temperature": 0.0, "offered": len(copies), "selected": len(selected),
                "labelled": len(labelled), "failed": self.store.count_failures(generation=0),
                "n_train": report.metrics["train"]["n_configurations"],
                "train": _rmse(report.metrics["train"])}

    def generation(self, k: int, temperature: float) -> dict:
        """MD at ``temperature`` with MLP(k-1), one pick per run, labels, MLP(k)."""
        s = self.settings
        previous = self._gen_dir(k - 1)
        model, report = self._fit(k - 1)
        md_dir = self._gen_dir(k) / "md"
        md_dir.mkdir(parents=True, exist_ok=True)
        starts = perturbed_copies(self.structure, s.runs, s.md_displacement, s.strain, s.seed + 7919 * k)
        tasks = [MDTask(str(previous / "model"), start, (temperature,), s.md_steps, s.frame_interval,
                        s.pressure_MPa, s.seed + 1000 * k + r, str(md_dir / f"run{r:03d}.extxyz"),
                        self.topology.to_dict(), s.d3, s.max_force, s.max_temperature_factor, s.bond_tolerance)
                 for r, start in enumerate(starts)]
        summaries = run_tasks(tasks, self._executor(), f"gen {k}: MD at {temperature:.0f} K")
        runs = [read_run(t.trajectory)[1:] for t in tasks]  # frame 0 is the perturbed start
        cbad = CBADFilter(self.topology, s.resolutions or None, bond_tolerance=s.bond_tolerance)
        cbad.include(self._training(k - 1))
        picks = self._pick(runs, cbad, model, report, k)
        chosen = [(r, p) for r, p in enumerate(picks) if p is not None]
        frames = [p for _, p in chosen]
        grades = self._grades(model, report, frames) if frames else np.zeros(0)
        labelled = self._label(frames, [{"generation": k, "role": "train", "temperature": temperature,
                                         "source": f"gen{k:03d}/md/run{r:03d}.extxyz",
                                         "frame": int(p.info["pick_index"])} for r, p in chosen])
        unseen = prediction_errors(model, labelled)  # MLP(k-1) on configurations it had never seen
        _, new_report = self._fit(k)
        cbad.save(self._gen_dir(k) / "cbad.json")
        return {"generation": k, "temperature": temperature, "runs": len(tasks),
                "stopped": sum(bool(x["stopped"]) for x in summaries), "selected": len(frames),
                "labelled": len(labelled), "failed": self.store.count_failures(generation=k),
                "n_train": new_report.metrics["train"]["n_configurations"],
                "grade_mean": float(grades.mean()) if len(grades) else float("nan"),
                "grade_max": float(grades.max()) if len(grades) else float("nan"),
                "previous_model_on_new": unseen, "train": _rmse(new_report.metrics["train"])}

    def _pick(self, runs: list[list[Atoms]], cbad: CBADFilter, model: SNAPModel, report: FitReport,
              k: int) -> list[Atoms | None]:
        """At most one frame per run, by the selection rule; ``info["pick_index"]`` is its frame index."""
        s = self.settings
        intact = [[f for f in run if not cbad.topology.broken_bonds(f.positions, f.cell.array,
                                                                    s.bond_tolerance).any()] for run in runs]
        if s.selection == "cbad":
            picks = cbad.select_per_run(intact, pick=s.cbad_pick, seed=s.seed + 104729 * k)
            for p in picks:
                if p is not None:
                    p.info["pick_index"] = p.info["cbad_index"]
            return picks
        rng = np.random.default_rng(s.seed + 104729 * k)
        picks: list[Atoms | None] = []
        for frames in intact:
            if not frames:
                picks.append(None)
                continue
            if s.selection == "random":
                index = int(rng.integers(len(frames)))
            else:
                grades = self._grades(model, report, frames)
                index = int(np.argmax(grades))
                if grades[index] < s.grade_threshold:
                    picks.append(None)
                    continue
            frames[index].info["pick_index"] = index
            picks.append(frames[index])
        return picks

    def final(self, last: int) -> dict:
        """Ramp test pool, test labels, final fit, learning curve, closing MD."""
        s = self.settings
        out = self.workdir / "final"
        out.mkdir(exist_ok=True)
        temps = tuple(np.linspace(10.0, max(s.temperatures), s.ramp_segments))
        ramp = MDTask(str(self._gen_dir(last) / "model"), self.structure, temps,
                      max(1, s.ramp_steps // s.ramp_segments), s.frame_interval, s.pressure_MPa, s.seed + 31,
                      str(out / "ramp.extxyz"), self.topology.to_dict(), s.d3, s.max_force,
                      s.max_temperature_factor, s.bond_tolerance)
        run_tasks([ramp], self._executor(), "final: ramp MD")
        pool = [f for f in read_run(ramp.trajectory)[1:]
                if not self.topology.broken_bonds(f.positions, f.cell.array, s.bond_tolerance).any()]
        order = np.random.default_rng(s.seed + 17).permutation(len(pool))
        n_test = min(s.test_size, len(pool))
        test_frames = [pool[i] for i in order[:n_test]]
        extra = [pool[i] for i in order[n_test:n_test + s.extra_random]]
        test = self._label(test_frames, [{"generation": last + 1, "role": "test", "source": "final/ramp.extxyz",
                                          "frame": int(i)} for i in order[:n_test]])
        self._label(extra, [{"generation": last + 1, "role": "train", "source": "final/ramp.extxyz",
                             "frame": int(i)} for i in order[n_test:n_test + s.extra_random]])
        model, report = self._fit(last + 1)
        model.write(out / "model")
        test_errors = prediction_errors(model, test)
        curve = []
        for k in range(last + 2):
            gen_model, gen_report = self._fit(k)
            curve.append({"generation": k, "n_train": gen_report.metrics["train"]["n_configurations"],
                          "test": prediction_errors(gen_model, test)})
        if test:
            learning_curve_figure([c["n_train"] for c in curve],
                                  {q: {"test": [c["test"][f"{q}_rmse"] for c in curve]}
                                   for q in ("energy", "forces", "stress")},
                                  {"energy": "meV/atom", "forces": "meV/Å", "stress": "MPa"},
                                  self.workdir / "learning_curve.png", xlabel="labelled training configurations")
        else:
            log.warning("the ramp MD gave no intact frame to test on: no test errors, no learning curve")
        result = {"model": str(out / "model"), "n_train": report.metrics["train"]["n_configurations"],
                  "n_test": len(test), "train": _rmse(report.metrics["train"]), "test": test_errors,
                  "learning_curve": curve}
        if s.final_md_steps:
            result["md_300K"] = self._closing_md(model, out)
        return result

    def _closing_md(self, model: SNAPModel, out: Path) -> dict:
        """A 300 K NPT run with the final SNAP + D3 (the production setting)."""
        atoms = self.structure.copy()
        atoms.calc = SNAPCalculator(model, d3=True)
        path = out / "md_300K_snap_d3.extxyz"
        done = out / "md_300K_snap_d3.json"
        if done.exists():
            return json.loads(done.read_text())
        result = run_md(atoms, self.settings.final_md_steps, temperature_K=300.0, ensemble="npt",
                        cell=npt_cell(atoms), pressure_MPa=self.settings.pressure_MPa, seed=self.settings.seed,
                        trajectory=path, interval=10, guard=blowup_guard())
        frames = ase.io.read(path, ":")
        half = frames[len(frames) // 2:]
        summary = {"steps": result.steps, "stopped": result.stopped, "ns_per_day": result.ns_per_day,
                   "mean_temperature_K": float(np.mean([f.info["temperature_K"] for f in half])),
                   "mean_volume_A3": float(np.mean([f.get_volume() for f in half])),
                   "trajectory": str(path)}
        done.write_text(json.dumps(summary, indent=1))
        return summary

    def run(self) -> dict:
        """Run (or resume) the whole campaign; return the summary also written to ``summary.json``."""
        start = time.perf_counter()
        records = [self._logged(self.step0())]
        for k, temperature in enumerate(self.settings.temperatures, start=1):
            records.append(self._logged(self.generation(k, temperature)))
        final = self.final(len(self.settings.temperatures))
        summary = {"generations": records, "final": final, "labels": len(self.store),
                   "failed_labels": self.store.count_failures(), "wall_seconds_this_call": time.perf_counter() - start}
        (self.workdir / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
        plot_summary(summary, self.workdir / "summary.png")
        log.info("final model %s: test RMSE %.2f meV/atom, %.0f meV/Å, %.1f MPa", final["model"],
                 final["test"]["energy_rmse"], final["test"]["forces_rmse"], final["test"]["stress_rmse"])
        if self._own_executor:
            self.executor.shutdown()
            self.executor, self._own_executor = None, False
        return summary

    def _logged(self, record: dict) -> dict:
        seen = record.get("previous_model_on_new", {})
        log.info("generation %d (%.0f K): %s selected, %s labelled, %s failed, %d training configurations%s; "
                 "train RMSE %.2f meV/atom %.0f meV/Å %.1f MPa%s", record["generation"], record["temperature"],
                 record["selected"], record["labelled"], record["failed"], record["n_train"],
                 f", {record['stopped']}/{record['runs']} runs stopped by the guard" if "runs" in record else "",
                 *record["train"].values(),
                 (f"; previous model on the new labels: {seen['energy_rmse']:.2f} meV/atom "
                  f"{seen['forces_rmse']:.0f} meV/Å {seen['stress_rmse']:.1f} MPa") if seen.get("n") else "")
        progress = self.workdir / "progress.jsonl"
        with progress.open("a") as handle:
            handle.write(json.dumps(record, default=float) + "\n")
        return record


def _usable(pool: ProcessPoolExecutor) -> bool:
    try:
        pool.submit(int).result()
    except BrokenExecutor:
        return False
    return True


def _rmse(metrics: dict) -> dict[str, float]:
    return {"energy_rmse": metrics["energy_rmse"], "forces_rmse": metrics["forces_rmse"],
            "stress_rmse": metrics["stress_rmse"]}


def _structure_hash(atoms: Atoms) -> str:
    import hashlib

    digest = hashlib.sha256()
    for array in (atoms.numbers, np.round(atoms.positions, 8), np.round(atoms.cell.array, 8)):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(" ".join(atoms.arrays["atom_types"]).encode())
    return digest.hexdigest()[:16]


def plot_summary(summary: dict, path: str | Path) -> Path:
    """Errors per generation: training RMSE and the previous model's error on each generation's new labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = summary["generations"]
    n_train = [r["n_train"] for r in records]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (quantity, unit) in zip(axes, (("energy", "meV/atom"), ("forces", "meV/Å"), ("stress", "MPa"))):
        ax.plot(n_train, [r["train"][f"{quantity}_rmse"] for r in records], "o-", label="training RMSE")
        unseen = [(r["n_train"], r["previous_model_on_new"][f"{quantity}_rmse"]) for r in records
                  if r.get("previous_model_on_new", {}).get("n")]
        if unseen:
            ax.plot(*zip(*unseen), "s--", label="previous model on new labels")
        for r in records:
            ax.annotate(f"{r['temperature']:.0f} K", (r["n_train"], r["train"][f"{quantity}_rmse"]), fontsize=7)
        ax.set_xlabel("labelled training configurations")
        ax.set_ylabel(f"{quantity} RMSE ({unit})")
        if all(r["train"][f"{quantity}_rmse"] > 0 for r in records):
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle("Temperature-driven active learning")
    fig.tight_layout()
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------ the ZIF-8 route


def learn_from_pool(pool: list[str | Path], structure: Atoms | str, workdir: str | Path,
                    reference: Reference | None = None, settings: LearnSettings = LearnSettings(),
                    executor: Executor | None = None, validation_fraction: float = 0.1) -> dict:
    """Select with CBAD from existing trajectories (e.g. AIMD), label the selection, fit: one call.

    The frames of all trajectories are offered in a seeded shuffle; a random ``validation_fraction`` of the
    selection is held out for the reported validation errors. Resumable like :class:`ActiveLearning`.

    Returns
    -------
    dict
        Numbers selected and labelled, the model prefix and the fit report's metrics.
    """
    learner = ActiveLearning(structure, workdir, settings, reference, executor)
    frames = [f for path in pool for f in ase.io.iread(str(path))]
    for f in frames:
        f.arrays["atom_types"] = learner.structure.arrays["atom_types"]
        f.calc = None
    cbad = CBADFilter(learner.topology, settings.resolutions or None, bond_tolerance=settings.bond_tolerance)
    selected = cbad.select(frames, shuffle=True, seed=settings.seed, progress=True)
    held_out = np.random.default_rng(settings.seed).random(len(selected)) < validation_fraction
    labelled = learner._label(selected, [{"generation": 0, "role": "test" if h else "train", "source": "pool",
                                          "frame": int(a.info.get("cbad_index", i))}
                                         for i, (a, h) in enumerate(zip(selected, held_out))])
    validation = sorted(learner.store.select(role="test"), key=lambda a: a.info["label_hash"])
    model, report = fit_snap(learner._training(0), validation or None,
                             model=SNAPModel(learner.types, twojmax=settings.twojmax, rcutfac=settings.rcutfac),
                             energy_weight=settings.energy_weight, stress_weight=settings.stress_weight,
                             cache_dir=learner.workdir / "descriptors", seed=settings.seed)
    out = learner.workdir / "model"
    model.write(out)
    report.to_json(learner.workdir / "report.json")
    report.plot(learner.workdir / "parity.png")
    cbad.save(learner.workdir / "cbad.json")
    return {"offered": len(frames), "selected": len(selected), "labelled": len(labelled), "model": str(out),
            "metrics": report.metrics}


# ------------------------------------------------------------------------------------------- command


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(prog="python -m mofsnap.learn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="TOML settings file (keys of mofsnap.learn.LearnSettings)")
    parser.add_argument("-o", "--workdir", default="mofsnap-learn", help="work directory (resumed if it exists)")
    parser.add_argument("--demo", action="store_true", help="the embedded demo schedule (MOF-5 cell, GFN1-xTB)")
    parser.add_argument("--pool", nargs="+", metavar="TRAJ",
                        help="ZIF-8 route: select with CBAD from these trajectories, label and fit (no MD loop)")
    parser.add_argument("--write-config", metavar="FILE", help="write the settings (demo or defaults) and exit")
    parser.add_argument("--workers", type=int, help="local worker processes (default: one per CPU)")
    parser.add_argument("--executor", help="Dask scheduler address for labelling and MD")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    if args.config and args.demo:
        parser.error("give either a config file or --demo")
    settings = LearnSettings.from_toml(args.config) if args.config else (DEMO if args.demo else LearnSettings())
    overrides: dict[str, Any] = {k: v for k, v in (("max_workers", args.workers), ("executor", args.executor))
                                 if v is not None}
    settings = replace(settings, **overrides)
    if args.write_config:
        Path(args.write_config).write_text(settings.to_toml())
        print(f"wrote {args.write_config}")
        return None
    if args.pool:
        result = learn_from_pool(args.pool, settings.structure, args.workdir, settings=settings)
        print(json.dumps({k: v for k, v in result.items() if k != "metrics"}, indent=1))
        return result
    summary = ActiveLearning(workdir=args.workdir, settings=settings).run()
    final = summary["final"]
    print(f"\nfinal model: {final['model']}.snapcoeff/.snapparam ({final['n_train']} training configurations)")
    print(f"test RMSE ({final['n_test']} configurations): {final['test']['energy_rmse']:.2f} meV/atom, "
          f"{final['test']['forces_rmse']:.0f} meV/Å, {final['test']['stress_rmse']:.1f} MPa")
    if "md_300K" in final:
        md = final["md_300K"]
        print(f"300 K NPT with SNAP + D3: {md['steps']} steps, {md['ns_per_day']:.2f} ns/day, "
              f"<T> = {md['mean_temperature_K']:.0f} K, <V> = {md['mean_volume_A3']:.0f} Å³"
              + (f", stopped: {md['stopped']}" if md["stopped"] else ""))
    print(f"results in {args.workdir}: summary.json, summary.png, learning_curve.png, final/")
    return summary


if __name__ == "__main__":
    main()
