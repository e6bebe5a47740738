"""The temperature-driven active-learning loop: :class:`ActiveLearning`.

The workflow of the reference work (MOF-5 route):

0. ``n_perturbed`` randomly perturbed copies of the crystal (atom displacements, small cell strains); the
   CBAD-new ones are labelled with the reference and MLP0 is fitted.
k. At ``T_k`` (100 K, 200 K, ... by default), ``runs`` independent NPT runs with MLP(k-1), each from its own
   perturbed start and velocities; from each run at most one frame is picked (CBAD-new by default), the picks
   are labelled and MLP(k) is fitted on everything labelled so far.
final. A temperature ramp with the last model gives a test pool; a random subset of it is labelled as the test
   set (optionally more random frames join the training set); the final model is fitted and every
   generation's model is scored on the test set (the learning curve).
validation. Guarded NPT runs at 300 K and at the highest temperature, test errors, lattice
   (:mod:`mofsnap.learn.validation`). When a run's guard stops it, a refinement round labels the frames just
   before the failure, refits and validates the new model (up to ``refine_rounds`` times); the last
   validation's verdict is the campaign's.

State lives in the work directory, so a killed run resumes where it stopped and ends with the same result::

    settings.json        the settings (a resume with different settings is refused)
    labels.db            every label as it arrives (ase.db; provenance: generation, temperature, run, frame)
    gen000/ ...          per generation: md/run###.extxyz (+ .json, written when the run is complete),
                         hyperparameters.json (at the generations that optimise them),
                         model.snapcoeff/.snapparam, report.json (the generation's completion mark),
                         parity.png, cbad.json
    final/               ramp trajectory, the campaign's model, validation (runs, validation.json, validation.png)
    final/refineN/       the validation of refinement round N (its fit is the generation after the last)
    summary.json, summary.png, learning_curve.png
    lock                 held by the process running the campaign (a second one is refused)

Every step is deterministic given the seed and idempotent: finished MD runs are not rerun (an unfinished one
restarts from its beginning, so the result equals an uninterrupted run), labels already in the store are not
recomputed, hyperparameters once optimised are read back, and fitted generations are read rather than
refitted. Validations once finished are read back.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from .. import plotting
from ..atomtypes import assign_atom_types
from ..calculator import ZBL, SNAPCalculator
from ..cbad import CBADFilter
from ..descriptors import SnapDescriptors
from ..exceptions import ConfigurationError, LearnError, StructureError
from ..executors import worker_pool
from ..fit import FitReport, HyperparameterSearch, extrapolation_grade, fit_snap, search_hyperparameters
from ..fit.leastsquares import REPORT_UNITS
from ..hashing import atoms_hash
from ..labelling import LabelChecks, LabelStore, check_configuration, label
from ..md.grade import write_fit_statistics
from ..model import SNAPModel
from ..reference import Reference, reference_by_name
from ..structures import (STRUCTURES, builtin_structure, describe_supercell, perpendicular_widths, prepare_structure,
                          snap_ready_cell)
from ..topology import Topology
from ..units import EV_PER_A3_IN_MPA
from .md_tasks import MDTask, read_run, run_tasks
from .package import campaign_card
from .processes import WorkdirLock
from .replay import StopReplays, replay_stops
from .scoring import QUANTITIES, change_intervals, prediction_errors, rmse, rmse_intervals, squared_errors
from .settings import LearnSettings
from .summary import RMSE, CurvePoint, FinalRecord, GenerationRecord, LearnSummary, RefinementRound, Validation
from .validation import ValidationGuard, frames_before_failure, validate

log = logging.getLogger(__name__)

#: Input checks of the loop's labels. Frames come from the typed structure and the loop keeps only those whose
#: bonds are intact against its topology (``bond_tolerance``), so their types hold by construction; a re-typing
#: of each stretched MD frame from its geometry alone would refuse the very frames the model needs.
LABEL_CHECKS = LabelChecks(check_types=False)
#: Work directory of a campaign when none is given.
DEFAULT_WORKDIR = "mofsnap-learn"
#: The reference-relaxed structure in a work directory.
RELAXED = "structure_relaxed.extxyz"
#: Convergence of the cell in the reference relaxation with ``relax_cell`` (MPa).
RELAX_STRESS_MPA = 20.0
#: Pressure (MPa) at the positions-relaxed structure beyond which the log warns that the cell is not the
#: reference's.
PRESSURE_WARNING_MPA = 100.0
#: Share of a generation's training labels held out to optimise the hyperparameters on.
VALIDATION_FRACTION = 0.2
#: Where the first optimisation's search of alpha starts.
START_ALPHA = 1e-6


def load_structure(spec: str | Atoms) -> Atoms:
    """A typed structure: Atoms as given, a built-in name, or a file (types assigned if missing).

    A CIF goes through the checks of ``mofsnap structures`` (:func:`mofsnap.structures.prepare_structure`:
    gemmi where ASE fails, occupancy, guests, missing hydrogens, overlaps); other files (e.g. the ``.extxyz``
    that command writes) are read as they are.

    Raises
    ------
    LearnError
        ``spec`` is neither a built-in name nor an existing file.
    StructureError
        A CIF that fails a check, with the fix.
    """
    if isinstance(spec, Atoms):
        atoms = spec.copy()
    elif spec in STRUCTURES:
        atoms = builtin_structure(spec)
    elif Path(spec).suffix.lower() == ".cif" and Path(spec).is_file():
        try:
            atoms, warnings = prepare_structure(spec)
        except StructureError as error:
            raise StructureError(f"structure {spec}: {error} (learn reads a CIF with the defaults of 'mofsnap "
                                 "structures'; with other options, give learn the .extxyz that command writes)"
                                 ) from None
        for warning in warnings:
            log.warning("structure %s: %s", spec, warning)
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


def _usable(pool: ProcessPoolExecutor) -> bool:
    try:
        pool.submit(int).result()
    except BrokenExecutor:
        return False
    return True


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
        Labelling reference; defaults to ``settings.reference`` with ``settings.unpaired_electrons``.
    executor : Executor, optional
        Runs labelling and MD (e.g. ``distributed.Client(...).get_executor()``); by default a local process
        pool of ``settings.max_workers``, or a Dask client of ``settings.executor``.
    progress : bool
        Show progress bars of the MD runs.
    retry_failed : bool
        Recompute configurations whose labels are stored as failed when a step labels them again (a resumed
        campaign otherwise keeps every failure, which is what makes a resume equal an uninterrupted run).

    Raises
    ------
    LearnError
        Another process works in ``workdir`` (the learner holds ``workdir/lock`` until :meth:`close`, the end
        of a ``with`` block or of the process), or ``workdir`` was made with other settings.

    Examples
    --------
    >>> from mofsnap.learn import ActiveLearning, DEMO                 # doctest: +SKIP
    >>> summary = ActiveLearning(workdir="al", settings=DEMO).run()    # doctest: +SKIP
    """

    def __init__(self, structure: Atoms | str | None = None, workdir: str | Path = DEFAULT_WORKDIR,
                 settings: LearnSettings = LearnSettings(), reference: Reference | None = None,
                 executor: Executor | None = None, progress: bool = True, retry_failed: bool = False) -> None:
        self.settings = settings
        self.retry_failed = retry_failed
        self.workdir = Path(workdir)
        self.executor = executor
        self.progress = progress
        self._own_executor = False  # a local pool made here (shut down at the end, replaced when broken)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.lock = WorkdirLock(self.workdir)
        try:
            self.structure = self._snap_ready(load_structure(structure if structure is not None
                                                             else settings.structure))
            self.reference = reference or reference_by_name(settings.reference,
                                                            unpaired_electrons=settings.unpaired_electrons)
            self.reference.check(self.structure)  # e.g. a spin choice to make: before any calculation
            self.d3 = self._md_dispersion()
            self.topology = Topology.from_atoms(self.structure)
            self._check_workdir()
            self.store = LabelStore(self.workdir / "labels.db")
            if len(self.store) == 0:  # a new campaign: first one look at the electronic structure of its start
                warning = self.reference.electronic_warning(self.structure)
                if warning:
                    log.warning("%s", warning)
            if settings.relax_fmax is not None:
                self.structure = self._relaxed()
            self.zbl = ZBL.safety_wall(self.structure) if settings.zbl else None
        except BaseException:
            self.lock.release()
            raise

    def _md_dispersion(self) -> bool:
        """Whether the loop's MD adds D3 to SNAP: the setting, or (unset) exactly when the labels lack it."""
        has = self.reference.includes_dispersion
        if self.settings.d3 and has:
            raise LearnError(f"d3 = true, but the labels of {self.reference.name} already contain dispersion: the "
                             "model would count it twice; set d3 = false or leave it unset")
        return (not has) if self.settings.d3 is None else self.settings.d3

    def _snap_ready(self, structure: Atoms) -> Atoms:
        """The smallest supercell of ``structure`` that the model's fit accepts (before any label is paid for)."""
        self.types = sorted(set(structure.arrays["atom_types"]))
        cutoff = self.model().cutoff
        supercell, matrix = snap_ready_cell(structure, cutoff)
        widths = ", ".join(f"{w:.2f}" for w in perpendicular_widths(supercell.cell.array))
        log.info("SNAP-ready cell: %s, %d atoms (perpendicular widths %s Å > 2 x the %.2f Å cutoff)",
                 describe_supercell(matrix), len(supercell), widths, cutoff)
        return supercell

    def model(self) -> SNAPModel:
        """An unfitted model of the campaign's types and SNAP settings."""
        return SNAPModel(self.types, twojmax=self.settings.twojmax, rcutfac=self.settings.rcutfac)

    def close(self) -> None:
        """Shut down a process pool made here and release the work directory."""
        self._shutdown_pool()
        self.lock.release()

    def _shutdown_pool(self) -> None:
        if self._own_executor:
            self.executor.shutdown()
            self.executor, self._own_executor = None, False

    def __enter__(self) -> ActiveLearning:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _check_workdir(self) -> None:
        saved = self.workdir / "settings.json"
        mine = {k: v for k, v in json.loads(json.dumps(asdict(self.settings))).items()
                if k not in LearnSettings.RUNTIME_KEYS}
        mine["reference_settings_hash"] = self.reference.settings_hash
        mine["structure_hash"] = atoms_hash(self.structure)
        if saved.exists():
            stored = json.loads(saved.read_text())
            old = LearnSettings.as_ran(stored)
            changed = sorted(k for k in set(old) | set(mine) if old.get(k) != mine.get(k))
            if changed:
                older = [k for k in changed if k not in stored]
                raise LearnError(f"{self.workdir} was made with other settings ({', '.join(changed)} differ"
                                 + (f"; it was made before {', '.join(older)} existed and ran as "
                                    + ", ".join(f"{k} = {old[k]!r}" for k in older) if older else "")
                                 + "); use a new work directory")
        else:
            saved.write_text(json.dumps(mine, indent=1))
            ase.io.write(self.workdir / "structure.extxyz", self.structure)

    def _relaxed(self) -> Atoms:
        """The structure relaxed by the reference (positions, and the cell with ``relax_cell``; computed once,
        then read back)."""
        from ..analysis.runs import relax_start

        s = self.settings
        calculator = self.reference.calculator(self.structure)
        what = "positions and cell" if s.relax_cell else "positions"
        if not (self.workdir / RELAXED).exists():
            log.info("relaxing the %s with %s (fmax %.2f eV/Å)", what, self.reference.name, s.relax_fmax)
        relaxed = relax_start(self.structure, calculator, self.workdir, fmax=s.relax_fmax, steps=s.relax_steps,
                              pressure_MPa=s.pressure_MPa, cell="full" if s.relax_cell else "positions",
                              stress_tolerance_MPa=RELAX_STRESS_MPA, filename=RELAXED, progress=self.progress)
        stress = calculator.results.get("stress")  # of the last step, when the reference computes it anyway
        if stress is not None:
            pressure = -float(np.mean(stress[:3])) * EV_PER_A3_IN_MPA
            log.info("the reference's pressure at the relaxed structure: %.0f MPa", pressure)
            if not s.relax_cell and abs(pressure - s.pressure_MPa) > PRESSURE_WARNING_MPA:
                log.warning("the reference's pressure at the relaxed structure is %.0f MPa: its equilibrium cell "
                            "differs from the given one, which the validation's volume guard and lattice check "
                            "compare with; set relax_cell = true to relax the cell too", pressure)
        return relaxed

    # -- building blocks ------------------------------------------------------------------------------
    def generation_dir(self, k: int) -> Path:
        """The directory of generation ``k`` (its MD runs, model, fit report and CBAD state)."""
        return self.workdir / f"gen{k:03d}"

    def training_set(self, generation: int) -> list[Atoms]:
        """Good training labels of generations ``<= generation``, in a fixed (hash) order, each with its fit
        weight in ``info["weight"]`` when it is not 1 (``perturbed_weight``, ``stop_weight``)."""
        s = self.settings
        images = sorted((a for a in self.store.select(role="train") if a.info["generation"] <= generation),
                        key=lambda a: a.info["label_hash"])
        for atoms in images:
            weight = ((s.perturbed_weight if generation > 0 and atoms.info["generation"] == 0 else 1.0)
                      * (s.stop_weight if atoms.info.get("from_stop") else 1.0))
            if weight != 1.0:
                atoms.info["weight"] = weight
        return images

    def label(self, frames: list[Atoms], metadata: list[dict]) -> list[Atoms]:
        """Label frames with the reference, skipping those already in the store.

        Parameters
        ----------
        frames : list of Atoms
            Configurations to label.
        metadata : list of dict
            Provenance stored with each label (``generation``, ``role`` = ``train``/``test``, ``source``,
            ``frame``, ...).

        Returns
        -------
        list of Atoms
            The good labels among ``frames`` (failed ones are recorded in the store and left out; frames refused
            before labelling, e.g. with overlapping atoms, are logged and left out).
        """
        accepted = []
        for atoms, meta in zip(frames, metadata):
            try:
                check_configuration(atoms, self.reference, LABEL_CHECKS, f"{meta['source']} frame {meta['frame']}")
            except ConfigurationError as error:
                log.warning("not labelled: %s", error)
                continue
            accepted.append((atoms, meta))
        if not accepted:
            return []
        frames, metadata = (list(x) for x in zip(*accepted))
        # a local pool of label's own, which it rebuilds when a worker dies (the death fails only the
        # configuration that was running); a Dask executor reschedules by itself
        executor = self._executor() if self.settings.executor else None
        summary = label(frames, self.reference, self.store, executor, metadata=metadata, checks=LABEL_CHECKS,
                        timeout=self.settings.label_timeout_s, retry_failed=self.retry_failed,
                        max_workers=self.settings.max_workers, progress=self.progress)
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
                self.executor = worker_pool(self.settings.max_workers or os.cpu_count() or 1)
        return self.executor

    def _fit(self, k: int) -> tuple[SNAPModel, FitReport]:
        """Fit generation ``k`` on all training labels so far, or read it if it was fitted already.

        At the generations of ``settings.hyperparameter_generations()`` the hyperparameters are optimised first
        (:meth:`optimise_hyperparameters`); the fit uses the latest optimised radii, weights, rfac0 and
        energy/stress weights, and chooses alpha by cross-validation.
        """
        gen = self.generation_dir(k)
        prefix = gen / "model"
        done = gen / "report.json"
        if done.exists():
            return SNAPModel.read(prefix), FitReport.read(done)
        train = self.training_set(k)
        if not train:
            raise LearnError(f"generation {k} has no training labels (all failed?); see {self.store.path}")
        s = self.settings
        if k in s.hyperparameter_generations():
            self.optimise_hyperparameters(k)
        model, (_, energy_weight, stress_weight) = self.hyperparameters(k)
        model, report = fit_snap(train, model=model, energy_weight=energy_weight, stress_weight=stress_weight,
                                 cache_dir=self.workdir / "descriptors", seed=s.seed, progress=self.progress)
        gen.mkdir(parents=True, exist_ok=True)
        model.write(prefix)
        report.plot(gen / "parity.png")
        report.write(done)  # the generation's completion mark (written atomically)
        return model, report

    def hyperparameters(self, k: int) -> tuple[SNAPModel, tuple[float, float, float]]:
        """The unfitted model and the (alpha, Ew, Sw) that generation ``k``'s fit starts from.

        They are the best of the latest optimisation at a generation ``<= k`` (its ``hyperparameters.json``),
        or the model defaults and the settings' weights before any.
        """
        for g in reversed([g for g in self.settings.hyperparameter_generations() if g <= k]):
            path = self.generation_dir(g) / "hyperparameters.json"
            if path.exists():
                best = HyperparameterSearch.read(path).best
                model = replace(self.model(), radii=np.array(best["radii"]), weights=np.array(best["weights"]),
                                rfac0=best["rfac0"])
                return model, (best["alpha"], best["energy_weight"], best["stress_weight"])
        return self.model(), (START_ALPHA, self.settings.energy_weight, self.settings.stress_weight)

    def validation_split(self, k: int) -> tuple[list[Atoms], list[Atoms]]:
        """Generation ``k``'s training labels split into (train, validation) for the hyperparameter search.

        A seeded fifth (:data:`VALIDATION_FRACTION`) of :meth:`training_set` is held out: test labels are never
        part of it. The validation part is empty when fewer than two labels allow no split.
        """
        labels = self.training_set(k)
        n_valid = min(len(labels) - 1, max(1, round(VALIDATION_FRACTION * len(labels))))
        held = set(np.random.default_rng(self.settings.seed + 65537 * k).permutation(len(labels))[:n_valid])
        return ([a for i, a in enumerate(labels) if i not in held], [a for i, a in enumerate(labels) if i in held])

    def optimise_hyperparameters(self, k: int) -> HyperparameterSearch | None:
        """Optimise the hyperparameters on generation ``k``'s labels, or read them back if done already.

        Per-type radii and weights and rfac0 (Nelder-Mead, ``settings.hyperparameter_evaluations`` descriptor
        passes), and for each of them alpha and the energy/stress weights, minimising the objective on
        :meth:`validation_split`; the search starts from the previous optimisation's best (or the defaults).
        The result is written to ``genNNN/hyperparameters.json``. None when there are too few labels to hold
        any out (the previous hyperparameters stay in use).
        """
        path = self.generation_dir(k) / "hyperparameters.json"
        if path.exists():
            return HyperparameterSearch.read(path)
        train, validation = self.validation_split(k)
        if not validation:
            log.warning("generation %d: %d training labels are too few to optimise the hyperparameters on; the "
                        "previous ones are kept", k, len(train))
            return None
        start, (alpha, energy_weight, stress_weight) = self.hyperparameters(k - 1)
        log.info("generation %d: optimising the hyperparameters on %d labels, %d held out (%d evaluations)", k,
                 len(train), len(validation), self.settings.hyperparameter_evaluations)
        search = search_hyperparameters(train, validation, start,
                                        n_evaluations=self.settings.hyperparameter_evaluations,
                                        seed=self.settings.seed + k, energy_weight=energy_weight,
                                        stress_weight=stress_weight, alpha=alpha, progress=self.progress)
        search.write(path)  # atomically: a killed search leaves no file and is rerun
        return search

    def _grades(self, model: SNAPModel, report: FitReport, frames: list[Atoms]) -> np.ndarray:
        """Extrapolation grade of each frame with respect to the training set of ``report``."""
        with SnapDescriptors(model) as snap:
            return np.array([extrapolation_grade(report.gram, report.weighted_rows(snap.rows(f), len(f)))
                             for f in frames])

    def _md_task(self, model: Path, start: Atoms, temperatures: tuple[float, ...], steps: int, seed: int,
                 trajectory: Path) -> MDTask:
        s = self.settings
        return MDTask(str(model), start, temperatures, steps, s.frame_interval, s.pressure_MPa, seed, str(trajectory),
                      self.topology.to_dict(), self.d3, s.max_force, s.max_temperature_factor, s.bond_tolerance,
                      self.zbl)

    def _intact(self, frames: list[Atoms]) -> list[Atoms]:
        """The frames without a broken bond."""
        tolerance = self.settings.bond_tolerance
        return [f for f in frames if not self.topology.broken_bonds(f.positions, f.cell.array, tolerance).any()]

    # -- the steps ------------------------------------------------------------------------------------
    def step0(self) -> GenerationRecord:
        """Perturbed copies, CBAD selection, labels, MLP0."""
        s = self.settings
        copies = perturbed_copies(self.structure, s.n_perturbed, s.displacement, s.strain, s.seed)
        cbad = CBADFilter(self.topology, s.resolutions or None, bond_tolerance=s.bond_tolerance)
        selected = cbad.select(copies, shuffle=True, seed=s.seed, progress=False)
        labelled = self.label(selected, [{"generation": 0, "role": "train", "source": "perturbed",
                                          "frame": int(a.info.get("cbad_index", i))}
                                         for i, a in enumerate(selected)])
        _, report = self._fit(0)
        cbad.write(self.generation_dir(0) / "cbad.json")
        return GenerationRecord(0, 0.0, len(selected), len(labelled), self.store.count_failures(generation=0),
                                RMSE.from_metrics(report.metrics["train"]), offered=len(copies))

    def generation(self, k: int, temperature: float) -> GenerationRecord:
        """MD at ``temperature`` with MLP(k-1), one pick per run, labels, MLP(k)."""
        s = self.settings
        model, report = self._fit(k - 1)
        md_dir = self.generation_dir(k) / "md"
        md_dir.mkdir(parents=True, exist_ok=True)
        starts = perturbed_copies(self.structure, s.runs, s.md_displacement, s.strain, s.seed + 7919 * k)
        tasks = [self._md_task(self.generation_dir(k - 1) / "model", start, (temperature,), s.md_steps,
                               s.seed + 1000 * k + r, md_dir / f"run{r:03d}.extxyz")
                 for r, start in enumerate(starts)]
        summaries = run_tasks(tasks, self._executor(), f"gen {k}: MD at {temperature:.0f} K", self.progress)
        runs = [read_run(t.trajectory)[1:] for t in tasks]  # frame 0 is the perturbed start
        cbad = CBADFilter(self.topology, s.resolutions or None, bond_tolerance=s.bond_tolerance)
        cbad.include(self.training_set(k - 1))
        picks = self._pick(runs, cbad, model, report, k)
        from_stop = [False] * len(picks)
        if s.learn_from_stops:
            for r, summary in enumerate(summaries):
                failing = self._before_stop(runs[r]) if summary["stopped"] else None
                if failing is not None:
                    picks[r], from_stop[r] = failing, True
        chosen = [(r, p) for r, p in enumerate(picks) if p is not None]
        frames = [p for _, p in chosen]
        grades = self._grades(model, report, frames) if frames else None
        labelled = self.label(frames, [{"generation": k, "role": "train", "temperature": temperature,
                                        "source": f"gen{k:03d}/md/run{r:03d}.extxyz",
                                        "frame": int(p.info["pick_index"]), "from_stop": from_stop[r]}
                                       for r, p in chosen])
        unseen = prediction_errors(model, labelled)  # MLP(k-1) on configurations it had never seen
        _, new_report = self._fit(k)
        cbad.write(self.generation_dir(k) / "cbad.json")
        return GenerationRecord(k, temperature, len(frames), len(labelled), self.store.count_failures(generation=k),
                                RMSE.from_metrics(new_report.metrics["train"]), runs=len(tasks),
                                stopped=sum(bool(x["stopped"]) for x in summaries),
                                grade_mean=None if grades is None else float(grades.mean()),
                                grade_max=None if grades is None else float(grades.max()),
                                previous_model_on_new=unseen)

    def _before_stop(self, frames: list[Atoms]) -> Atoms | None:
        """The last intact frame of a run the guard stopped: where the model began to fail (None if none)."""
        intact = self._intact(frames)
        if not intact:
            return None
        frame = intact[-1]
        frame.info["pick_index"] = next(i for i, f in enumerate(frames) if f is frame)
        return frame

    def _pick(self, runs: list[list[Atoms]], cbad: CBADFilter, model: SNAPModel, report: FitReport,
              k: int) -> list[Atoms | None]:
        """At most one frame per run, by the selection rule; ``info["pick_index"]`` is its frame index."""
        s = self.settings
        intact = [self._intact(run) for run in runs]
        if s.selection in ("cbad", "hybrid"):
            def most_informative(frames: list[Atoms]) -> int:
                return int(np.argmax(self._grades(model, report, frames)))

            picks = cbad.select_per_run(intact, pick=most_informative if s.selection == "hybrid" else s.cbad_pick,
                                        seed=s.seed + 104729 * k)
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

    def final(self, last: int) -> SNAPModel:
        """Ramp test pool, test labels, final fit (generation ``last + 1``); the final model."""
        s = self.settings
        out = self.workdir / "final"
        out.mkdir(exist_ok=True)
        temperatures = tuple(np.linspace(10.0, max(s.temperatures), s.ramp_segments))
        ramp = self._md_task(self.generation_dir(last) / "model", self.structure, temperatures,
                             max(1, s.ramp_steps // s.ramp_segments), s.seed + 31, out / "ramp.extxyz")
        run_tasks([ramp], self._executor(), "final: ramp MD", self.progress)
        pool = self._intact(read_run(ramp.trajectory)[1:])
        order = np.random.default_rng(s.seed + 17).permutation(len(pool))
        n_test = min(s.test_size, len(pool))
        test_frames = [pool[i] for i in order[:n_test]]
        extra = [pool[i] for i in order[n_test:n_test + s.extra_random]]
        self.label(test_frames, [{"generation": last + 1, "role": "test", "source": "final/ramp.extxyz",
                                  "frame": int(i)} for i in order[:n_test]])
        self.label(extra, [{"generation": last + 1, "role": "train", "source": "final/ramp.extxyz",
                            "frame": int(i)} for i in order[n_test:n_test + s.extra_random]])
        if not self.test_set():
            log.warning("the ramp MD gave no intact frame to test on: no test errors, no learning curve")
        return self._fit(last + 1)[0]

    def test_set(self) -> list[Atoms]:
        """The good held-out test labels, in a fixed (hash) order."""
        return sorted(self.store.select(role="test"), key=lambda a: a.info["label_hash"])

    def campaign_model(self, k: int) -> FinalRecord:
        """Make generation ``k``'s model the campaign's: ``final/model`` with its fit statistics, and the
        learning curve of generations ``0..k`` on the test set."""
        model, report = self._fit(k)
        prefix = self.workdir / "final" / "model"
        model.write(prefix)
        write_fit_statistics(prefix, model, report, self.training_set(k))
        test = self.test_set()
        curve, previous = [], None
        for g in range(k + 1):
            gen_model, gen_report = self._fit(g)
            squared = squared_errors(gen_model, test)
            curve.append(CurvePoint(g, gen_report.metrics["train"]["n_configurations"], rmse(squared),
                                    rmse_intervals(squared) if test else None,
                                    change_intervals(previous, squared) if test and previous is not None else None))
            previous = squared
        if test:
            plotting.learning_curve_figure([c.n_train for c in curve],
                                           {q: {"test": [getattr(c.test, q) for c in curve]} for q in QUANTITIES},
                                           {q: REPORT_UNITS[q][0] for q in QUANTITIES},
                                           self.workdir / "learning_curve.png",
                                           xlabel="labelled training configurations",
                                           intervals={q: {"test": [c.test_interval[q] for c in curve]}
                                                      for q in QUANTITIES},
                                           rises={q: {"test": [i for i, c in enumerate(curve)
                                                               if q in c.rises_beyond_noise()]} for q in QUANTITIES})
        return FinalRecord(str(prefix), RMSE.from_metrics(report.metrics["train"]), curve[-1].test, curve)

    def validation_dir(self, round_: int) -> Path:
        """Where the validation of refinement round ``round_`` goes (0: the final fit's, ``final/``)."""
        return self.workdir / "final" / (f"refine{round_}" if round_ else "")

    def validation(self, model: SNAPModel, round_: int, test: RMSE | None) -> Validation:
        """The validation of ``model``, the fit of refinement round ``round_`` whose test errors are ``test``
        (resumable; new velocities in each round). While rounds remain, it ends at its first stopped run: that is
        what the next round learns from."""
        return validate(model, self.structure, self.topology, self.settings, test, self.validation_dir(round_),
                        self.d3, self.zbl, self.progress,
                        seed=self.settings.seed + 2 * round_, stop_at_first_failure=round_ < self.settings.refine_rounds)

    def refine(self, round_: int, failed: Validation) -> RefinementRound | None:
        """Refinement round ``round_``: label the frames before the guard stops of ``failed`` (the validation of
        the previous round) and refit (None when no frame could be labelled)."""
        k = len(self.settings.temperatures) + 1 + round_
        frames, metadata = [], []
        for run in failed.runs:
            if not run.stopped:
                continue
            trajectory = self.validation_dir(round_ - 1) / Path(run.trajectory).name
            written = ase.io.read(trajectory, ":")
            for index in frames_before_failure(written, self.topology, self.settings.bond_tolerance):
                frames.append(written[index])
                metadata.append({"generation": k, "role": "train", "temperature": run.temperature_K,
                                 "source": str(trajectory.relative_to(self.workdir)), "frame": index})
        log.warning("refinement round %d of %d: labelling %d frames from before the validation's guard stops",
                    round_, self.settings.refine_rounds, len(frames))
        labelled = self.label(frames, metadata)
        if not labelled:
            log.error("refinement round %d: no frame could be labelled (see %s); refinement ends", round_,
                      self.store.path)
            return None
        unseen = prediction_errors(self._fit(k - 1)[0], labelled)
        log.info("refinement round %d: the model that failed, on the %d new labels: %.2f meV/atom %.0f meV/Å %.1f "
                 "MPa (on the test set: %s)", round_, len(labelled), unseen.energy, unseen.forces, unseen.stress,
                 "-" if failed.test is None else
                 f"{failed.test.energy:.2f} meV/atom {failed.test.forces:.0f} meV/Å {failed.test.stress:.1f} MPa")
        model, report = self._fit(k)
        return RefinementRound(round_, k, failed, len(frames), len(labelled), unseen,
                               RMSE.from_metrics(report.metrics["train"]), prediction_errors(model, self.test_set()))

    def replay_stops(self, fs_before: int = 100) -> StopReplays:
        """Whose failure: replay each stop of the finished campaign's last validation with its model and with
        the reference from ``fs_before`` fs before the stop (:mod:`mofsnap.learn.replay`; resumable), written to
        ``final/replays.json``.

        Raises
        ------
        LearnError
            The campaign has not finished (no ``summary.json``), or ``fs_before`` is not positive.
        """
        if fs_before <= 0:
            raise LearnError(f"replay from a positive time before the stop, in fs; got {fs_before}")
        path = self.workdir / "summary.json"
        if not path.exists():
            raise LearnError(f"{self.workdir} holds no finished campaign (no summary.json): run it before "
                             "replaying its validation's stops")
        summary = LearnSummary.read(path)
        model = SNAPModel.read(self.workdir / "final" / "model")
        calculators = {"model": lambda atoms: SNAPCalculator(model, d3=self.d3, zbl=self.zbl),
                       "reference": self.reference.calculator}
        volume = self.structure.get_volume()
        replays = StopReplays(fs_before, replay_stops(
            summary.validation, self.validation_dir(len(summary.refinements)), calculators,
            lambda temperature: ValidationGuard(self.topology, self.settings, temperature, volume), self.topology,
            fs_before, self.progress))
        replays.write(self.workdir / "final" / "replays.json")
        return replays

    def run(self) -> LearnSummary:
        """Run (or resume) the whole campaign and its validation; return the summary written to ``summary.json``.

        A failed validation does not raise: ``summary.validation.passed`` is False and its ``verdict`` names the
        failed checks (the ``mofsnap learn`` command then exits non-zero).
        """
        start = time.perf_counter()
        records = [self._logged(self.step0())]
        for k, temperature in enumerate(self.settings.temperatures, start=1):
            records.append(self._logged(self.generation(k, temperature)))
        last = len(self.settings.temperatures) + 1  # the final fit's generation
        model = self.final(last - 1)
        validation = self.validation(model, 0, prediction_errors(model, self.test_set()))
        refinements: list[RefinementRound] = []
        while (not validation.passed and any(run.stopped for run in validation.runs)
               and len(refinements) < self.settings.refine_rounds):
            refinement = self.refine(len(refinements) + 1, validation)
            if refinement is None:
                break
            refinements.append(refinement)
            validation = self.validation(self._fit(refinement.generation)[0], refinement.round, refinement.test)
        final = self.campaign_model(last + len(refinements))
        summary = LearnSummary(records, final, validation, len(self.store), self.store.count_failures(),
                               time.perf_counter() - start, refinements)
        summary.write(self.workdir / "summary.json")
        plotting.learn_summary_figure(summary, self.workdir / "summary.png")
        campaign_card(summary, self.settings, self.structure, self.reference, self.d3, self.zbl,
                      self.workdir.resolve().name,
                      self._fit(last + len(refinements))[1]).write(self.workdir / "final" / "model.json")
        if final.test is not None:
            log.info("final model %s: test RMSE %.2f meV/atom, %.0f meV/Å, %.1f MPa", final.model,
                     final.test.energy, final.test.forces, final.test.stress)
        self._shutdown_pool()
        return summary

    def _logged(self, record: GenerationRecord) -> GenerationRecord:
        seen = record.previous_model_on_new
        log.info("generation %d (%.0f K): %d selected, %d labelled, %d failed, %d training configurations%s; "
                 "train RMSE %.2f meV/atom %.0f meV/Å %.1f MPa%s", record.generation, record.temperature,
                 record.selected, record.labelled, record.failed, record.n_train,
                 f", {record.stopped}/{record.runs} runs stopped by the guard" if record.runs is not None else "",
                 record.train.energy, record.train.forces, record.train.stress,
                 (f"; previous model on the new labels: {seen.energy:.2f} meV/atom {seen.forces:.0f} meV/Å "
                  f"{seen.stress:.1f} MPa") if seen is not None else "")
        with (self.workdir / "progress.jsonl").open("a") as handle:
            handle.write(json.dumps(asdict(record)) + "\n")
        return record
