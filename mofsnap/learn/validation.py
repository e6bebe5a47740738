"""The validation that closes every campaign: is the final model fit for production MD?

Two NPT runs with the final SNAP (+ D3 when the labels lack dispersion) — at 300 K for ``final_md_steps``
(the stability protocol of MOF force-field benchmarks asks for at least 50 ps) and at the highest training temperature for ``hot_md_steps``
(at least 10 ps) — each under a guard on forces, temperature, bond lengths against the topology and the
volume change, which names the atoms and the time when it stops a run; the final model's errors on the
held-out test frames; the mean 300 K cell lengths against those of the reference-relaxed structure. The
verdict is a :class:`~mofsnap.learn.summary.Validation` (``final/validation.json`` and ``validation.png``).
:func:`frames_before_failure` gives the frames of a stopped run that a refinement round of the loop learns from;
a validation to be learned from may end at its first stopped run (``stop_at_first_failure``). :func:`next_steps`
says which settings to change after a failed one.

Each run is resumable (its trajectory is continued) and complete once its ``.json`` exists.
"""

from __future__ import annotations

import logging
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from .. import plotting
from ..calculator import ZBL, SNAPCalculator
from ..fit.leastsquares import REPORT_UNITS
from ..md import reheat_momenta, run_md
from ..model import SNAPModel
from ..topology import Topology
from .md_tasks import EXPLOSIONS, npt_cell
from .replay import StopReplays
from .settings import LearnSettings
from .summary import RMSE, LearnSummary, Validation, ValidationCheck, ValidationRun

log = logging.getLogger(__name__)

#: Temperature (K) of the long validation run.
VALIDATION_TEMPERATURE_K = 300.0
#: Time step (fs) of the validation runs (``run_md``'s default).
TIMESTEP_FS = 1.0
#: A failing test error counts as the model's own limit (not too few labels) when the error on the training
#: labels is at least this fraction of it.
UNDERFIT_RATIO = 0.5
#: Times (fs) before a stopped run's last intact frame of the frames a refinement round labels: the approach
#: to the failure, densest near it.
REFINE_OFFSETS_FS = (0.0, 100.0, 200.0, 400.0, 800.0)


class ValidationGuard:
    """The guard of a validation run: forces, temperature, finite state, bonds against the topology and volume;
    its reason names the atoms and the time.

    A bond counts as broken once it has stayed beyond ``bond_tolerance`` times its reference length for
    ``bond_break_fs``: a broken bond stays broken, while the excursion of a large-amplitude vibration comes
    back (GFN1-xTB's own Mg-MOF-74 at 500 K stretches a carboxylate Mg–O to 1.59 x its length and back within
    45 fs). The guard remembers since when each bond has been beyond (:meth:`state`, :meth:`restore`), and
    :func:`~mofsnap.md.run_md` checkpoints that memory, so a resumed run stops where an uninterrupted one would.

    Parameters
    ----------
    topology : Topology
        The structure's bonds and atom types.
    settings : LearnSettings
        ``max_force``, ``max_temperature_factor``, ``bond_tolerance``, ``bond_break_fs`` and
        ``max_volume_change``.
    temperature_K : float
        Target temperature of the run.
    start_volume : float
        Volume (Å³) the relative volume change is measured from.
    """

    def __init__(self, topology: Topology, settings: LearnSettings, temperature_K: float,
                 start_volume: float) -> None:
        self.topology, self.settings, self.start_volume = topology, settings, start_volume
        self.max_temperature = max(settings.max_temperature_factor * temperature_K, temperature_K + 1e3)
        self.persistence = round(settings.bond_break_fs / TIMESTEP_FS)
        #: Per bond, the step since which it has been beyond the tolerance (-1: within it).
        self.beyond_since = np.full(len(topology.bonds), -1, dtype=np.int64)

    def _atom(self, i: int) -> str:
        """Atom ``i`` named by its type and index, as in every reason."""
        return f"{self.topology.atom_types[i]} (atom {i})"

    def __call__(self, atoms: Atoms, step: int) -> str | None:
        s = self.settings
        when = f"at {step * TIMESTEP_FS / 1000:.3f} ps (step {step})"
        norms = np.linalg.norm(atoms.get_forces(), axis=1)
        if not np.isfinite(norms).all():
            return f"force guard: non-finite force on {self._atom(int(np.argmin(np.isfinite(norms))))} {when}"
        worst = int(np.argmax(norms))
        if norms[worst] > s.max_force:
            return f"force guard: {norms[worst]:.1f} eV/Å on {self._atom(worst)} > {s.max_force} eV/Å {when}"
        temperature = atoms.get_temperature()
        if temperature > self.max_temperature:
            return f"temperature guard: {temperature:.0f} K > {self.max_temperature:.0f} K {when}"
        if not np.isfinite(atoms.positions).all() or not np.isfinite(atoms.cell.array).all():
            return f"non-finite positions or cell {when}"
        broken = self.broken_bond(atoms, step)
        if broken is not None:
            return f"bond guard: {broken} {when}"
        change = atoms.get_volume() / self.start_volume - 1.0
        if abs(change) > s.max_volume_change:
            return f"volume guard: volume {100 * change:+.1f} % beyond ±{100 * s.max_volume_change:.0f} % {when}"
        return None

    def broken_bond(self, atoms: Atoms, step: int) -> str | None:
        """The most stretched of the bonds beyond the tolerance for ``bond_break_fs`` by ``step``, named by its
        atoms, types, length and since when; None when there is none. Updates the guard's memory."""
        topology, tolerance = self.topology, self.settings.bond_tolerance
        lengths = np.linalg.norm(topology.bond_vectors(atoms.positions, atoms.cell.array), axis=1)
        stretch = lengths / topology.reference_bond_lengths
        beyond = stretch > tolerance
        self.beyond_since = np.where(beyond, np.where(self.beyond_since < 0, step, self.beyond_since), -1)
        held = beyond & (step - self.beyond_since >= self.persistence)
        if not held.any():
            return None
        b = int(np.argmax(np.where(held, stretch, -np.inf)))
        i, j = (int(x) for x in topology.bonds[b])
        since = f" since {self.beyond_since[b] * TIMESTEP_FS / 1000:.3f} ps," if self.persistence else ""
        return (f"{self._atom(i)}–{self._atom(j)} {lengths[b]:.2f} Å, beyond {tolerance:g} x its "
                f"{topology.reference_bond_lengths[b]:.2f} Å{since}")

    def state(self) -> dict[str, np.ndarray]:
        """The guard's memory: since when each bond has been beyond the tolerance."""
        return {"bond_beyond_since": self.beyond_since.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Continue with the memory of :meth:`state` (nothing to restore: all bonds within)."""
        if "bond_beyond_since" in state:
            self.beyond_since = np.array(state["bond_beyond_since"], dtype=np.int64)


def validation_run(model: SNAPModel, structure: Atoms, topology: Topology, settings: LearnSettings,
                   temperature_K: float, steps: int, seed: int, trajectory: Path, d3: bool, zbl: ZBL | None,
                   progress: bool = True) -> ValidationRun:
    """One guarded NPT run with SNAP (+ D3 when ``d3``, + ``zbl``) from ``structure`` (resumed from
    ``trajectory``).

    Returns
    -------
    ValidationRun
        Its steps, the guard's reason if it stopped, means over its second half and its largest volume
        change; also written next to the trajectory (``.json``), which marks the run as complete.
    """
    done = trajectory.with_suffix(".json")
    if done.exists():
        return ValidationRun.read(done)
    atoms = structure.copy()
    atoms.calc = SNAPCalculator(model, d3=d3, zbl=zbl)
    reheat_momenta(atoms, temperature_K, seed)  # from the minimum: drawn at 2 T, they settle at T
    guard = ValidationGuard(topology, settings, temperature_K, structure.get_volume())
    try:
        result = run_md(atoms, steps, temperature_K=temperature_K, ensemble="npt", cell=npt_cell(structure),
                        pressure_MPa=settings.pressure_MPa, timestep_fs=TIMESTEP_FS, seed=seed, thermalize=False,
                        trajectory=trajectory, interval=10, guard=guard, progress=progress)
        stopped, ns_per_day = result.stopped, result.ns_per_day
    except EXPLOSIONS as exc:  # an exploding model can break the barostat, LAMMPS or the cell
        stopped, ns_per_day = f"MD failed: {type(exc).__name__}: {exc}", float("nan")
    written = ase.io.read(trajectory, ":") if trajectory.exists() and trajectory.stat().st_size else []
    done_steps = int(written[-1].info["md_step"]) if written else 0
    frames = [f for f in written if "md_stop" not in f.info] or [structure]  # the stopping frame is not physical
    half = frames[len(frames) // 2:]
    volumes = np.array([f.get_volume() for f in frames])
    run = ValidationRun(temperature_K, steps, done_steps, stopped, ns_per_day,
                        float(np.mean([f.info.get("temperature_K", 0.0) for f in half])),
                        float(np.mean([f.get_volume() for f in half])),
                        float(np.max(np.abs(volumes / structure.get_volume() - 1.0))),
                        [float(x) for x in np.mean([f.cell.lengths() for f in half], axis=0)], str(trajectory))
    run.write(done)
    return run


def frames_before_failure(trajectory: list[Atoms], topology: Topology, bond_tolerance: float) -> list[int]:
    """The frames a refinement round learns from in a run the guard stopped: its last intact frame and those
    :data:`REFINE_OFFSETS_FS` before it (the latest at or before each time).

    Parameters
    ----------
    trajectory : list of Atoms
        The run's frames, each with ``info["md_step"]``; the stopping frame (``info["md_stop"]``) and frames with
        a bond longer than ``bond_tolerance`` times its reference are never chosen.
    topology : Topology
        The structure's bonds.
    bond_tolerance : float
        As the guard's.

    Returns
    -------
    list of int
        Indices into ``trajectory``, latest first, without repeats (empty when no frame is intact).
    """
    intact = [i for i, f in enumerate(trajectory) if "md_stop" not in f.info
              and not topology.broken_bonds(f.positions, f.cell.array, bond_tolerance).any()]
    if not intact:
        return []
    last_step = trajectory[intact[-1]].info["md_step"]
    chosen: list[int] = []
    for offset in REFINE_OFFSETS_FS:
        earlier = [i for i in intact if trajectory[i].info["md_step"] <= last_step - offset / TIMESTEP_FS]
        if earlier and earlier[-1] not in chosen:
            chosen.append(earlier[-1])
    return chosen


def _over_limits(test: RMSE, settings: LearnSettings) -> list[str]:
    """The quantities whose test error is above its limit (``max_test_energy``, ``_forces``, ``_stress``)."""
    limits = {"energy": settings.max_test_energy, "forces": settings.max_test_forces,
              "stress": settings.max_test_stress}
    return [q for q, limit in limits.items() if not getattr(test, q) <= limit]


def _test_check(test: RMSE | None, settings: LearnSettings) -> ValidationCheck:
    if test is None:
        return ValidationCheck("test errors", False, "no held-out test frames (the ramp MD gave none intact)")
    over = [f"{q} {getattr(test, q):.3g} {REPORT_UNITS[q][0]} > {getattr(settings, f'max_test_{q}'):g}"
            for q in _over_limits(test, settings)]
    detail = "; ".join(over) if over else (f"{test.energy:.3g} meV/atom, {test.forces:.3g} meV/Å, "
                                           f"{test.stress:.3g} MPa on {test.n} frames")
    return ValidationCheck("test errors", not over, detail)


def _lattice_check(run: ValidationRun, structure: Atoms, settings: LearnSettings) -> ValidationCheck:
    reference = structure.cell.lengths()
    deviation = np.asarray(run.mean_cell_lengths) / reference - 1.0
    worst = int(np.argmax(np.abs(deviation)))
    detail = (f"mean a, b, c {', '.join(f'{x:.3f}' for x in run.mean_cell_lengths)} Å vs reference-relaxed "
              f"{', '.join(f'{x:.3f}' for x in reference)} Å (largest {100 * deviation[worst]:+.2f} % in "
              f"{'abc'[worst]}, limit ±{100 * settings.max_lattice_deviation:.0f} %)")
    return ValidationCheck(f"{run.temperature_K:.0f} K lattice",
                           bool(abs(deviation[worst]) <= settings.max_lattice_deviation), detail)


def _run_check(run: ValidationRun) -> ValidationCheck:
    name = f"{run.temperature_K:.0f} K NPT run"
    if run.stopped:
        return ValidationCheck(name, False, run.stopped)
    return ValidationCheck(name, True, f"{run.steps * TIMESTEP_FS / 1000:g} ps stable, <T> = "
                                       f"{run.mean_temperature_K:.0f} K, volume within "
                                       f"{100 * run.max_volume_change:.1f} %")


def validate(model: SNAPModel, structure: Atoms, topology: Topology, settings: LearnSettings, test: RMSE | None,
             directory: str | Path, d3: bool, zbl: ZBL | None = None, progress: bool = True,
             seed: int | None = None, stop_at_first_failure: bool = False) -> Validation:
    """Validate a final model (see the module docstring); resumable, the verdict read back once written.

    Parameters
    ----------
    model : SNAPModel
        The final model.
    structure : Atoms
        The (reference-relaxed) structure both runs start from and the lattice is compared with.
    topology : Topology
        Its bonds, for the bond guard.
    settings : LearnSettings
        Run lengths, guards and limits.
    test : RMSE or None
        The final model's errors on the held-out test frames.
    directory : path
        Where ``validation.json``, ``validation.png`` and the runs (``validation_<T>K.extxyz`` + ``.json``) go.
    d3 : bool
        Add D3 to SNAP in the runs (as the production MD with this model will: not for dispersion-laden labels).
    zbl : ZBL, optional
        ZBL repulsion in the runs (as in the production MD with this model).
    progress : bool
        Show progress bars of the runs.
    seed : int, optional
        Seed of the 300 K run's velocities (the hot run's is one more); default ``settings.seed``.
    stop_at_first_failure : bool
        Run the shorter run first and, when the guard stops it, skip the other and the lattice check (a
        validation that is going to be learned from needs no more than its first failure).

    Returns
    -------
    Validation
        The checks and the verdict (:attr:`Validation.passed`).
    """
    directory = Path(directory)
    done = directory / "validation.json"
    if done.exists():
        return Validation.read(done)
    directory.mkdir(parents=True, exist_ok=True)
    seed = settings.seed if seed is None else seed
    planned = [(VALIDATION_TEMPERATURE_K, settings.final_md_steps, seed),
               (max(settings.temperatures), settings.hot_md_steps, seed + 1)]
    finished: dict[int, ValidationRun] = {}
    for i in sorted(range(len(planned)), key=lambda i: planned[i][1]) if stop_at_first_failure else range(2):
        temperature, steps, run_seed = planned[i]
        finished[i] = validation_run(model, structure, topology, settings, temperature, steps, run_seed,
                                     directory / f"validation_{temperature:.0f}K.extxyz", d3, zbl, progress)
        if stop_at_first_failure and finished[i].stopped:
            break
    runs = [finished[i] for i in sorted(finished)]
    checks = [_run_check(run) for run in runs] + [_test_check(test, settings)]
    if 0 in finished:
        checks.append(_lattice_check(finished[0], structure, settings))
    validation = Validation(runs, test, checks)
    # the runs' files by name: the paths they recorded hold the work directory as it was named then
    trajectories = [ase.io.read(directory / Path(r.trajectory).name, ":") for r in runs]
    plotting.validation_figure(validation, trajectories,
                               directory / "validation.png", "SNAP" + " + D3" * d3 + " + ZBL" * (zbl is not None))
    validation.write(done)
    (log.info if validation.passed else log.error)("%s", validation.verdict)
    return validation


def next_steps(summary: LearnSummary, settings: LearnSettings, replays: StopReplays | None = None) -> str:
    """What to change after a failed validation, from what failed: one phrase per kind of failed check.

    - A stopped run that the refinement rounds did not mend: with ``replays`` (:mod:`mofsnap.learn.replay`)
      where the reference stops too, the structure, the reference or the guard; otherwise more rounds, or wider
      sampling while learning, and without replays how to tell.
    - Test errors: if the model misses its own training labels by at least :data:`UNDERFIT_RATIO` of the test
      error, more labels are unlikely to help and the descriptor needs more freedom; otherwise more labels should.
    - The 300 K lattice: the model's stress is off.
    """
    validation, steps = summary.validation, []
    if any(run.stopped for run in validation.runs):
        rounds = len(summary.refinements)
        reference_stops = [r for r in (replays.replays if replays else []) if r.reference.stopped]
        if reference_stops:
            steps.append(f"the reference stops too in {len(reference_stops)} of {len(replays.replays)} replay(s) "
                         f"({'; '.join(r.reference.stopped for r in reference_stops)}): no model fitted to it "
                         "passes there; check the structure (a charge or spin state, removed ligands), the "
                         f"reference, or the guard (bond_tolerance = {settings.bond_tolerance:g}, bond_break_fs = "
                         f"{settings.bond_break_fs:g}, max_force = {settings.max_force:g})")
        elif rounds >= settings.refine_rounds:
            steps.append(f"the MD still stops after {rounds} refinement round(s): allow more (refine_rounds = "
                         f"{settings.refine_rounds}) or sample more while learning (runs = {settings.runs}, "
                         f"n_perturbed = {settings.n_perturbed})"
                         + ("" if replays else ", unless the reference itself breaks there (--replay-stops 100 "
                                               "tells)"))
        else:
            steps.append(f"refinement ended after {rounds} round(s) because no frame before the stop could be "
                         "labelled: see the failed labels (--retry-failed recomputes them)")
    test, train = validation.test, summary.final.train
    over = [] if test is None else _over_limits(test, settings)
    underfit = [q for q in over if getattr(train, q) >= UNDERFIT_RATIO * getattr(test, q)]
    if underfit:
        pairs = ", ".join(f"{q} {getattr(train, q):.3g} {REPORT_UNITS[q][0]} against {getattr(test, q):.3g} on the "
                          "test frames" for q in underfit)
        limits_named = ", ".join(f"max_test_{q}" for q in underfit)
        steps.append(f"the model's error on its own training labels is at least half its test error ({pairs}): "
                     f"more labels are unlikely to help, a richer descriptor may (twojmax = {settings.twojmax}), "
                     f"or accept larger errors ({limits_named})")
    elif over:
        fits = ", ".join(f"{q} {getattr(train, q):.3g} {REPORT_UNITS[q][0]}" for q in over)
        steps.append(f"the model fits its training labels ({fits}) far better than the test frames: more labels "
                     f"should help (runs = {settings.runs}, n_perturbed = {settings.n_perturbed})")
    if any(c.name.endswith("lattice") and not c.passed for c in validation.checks):
        steps.append(f"the 300 K cell is off, so the model's stress is: weigh it more (stress_weight = "
                     f"{settings.stress_weight:g}) and check that the reference relaxation converged")
    return "; ".join(steps)
