"""Active learning: a whole (tiny) campaign, restarts after SIGKILL, the selection rules, the pool route, the
``mofsnap learn`` command, settings and result files."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import ase.io
import numpy as np
import pytest

from springs import BondSprings, FlakySprings

from mofsnap.exceptions import LearnError, ResultFileError
from mofsnap.fit import FitReport, extrapolation_grade
from mofsnap.labelling import LabelStore
from mofsnap.learn import (DEMO, RMSE, ActiveLearning, CurvePoint, FinalRecord, GenerationRecord, LearnSettings,
                           LearnSummary, MDTask, PoolResult, RefinementRound, StopReplays, Validation, ValidationCheck,
                           ValidationRun, learn_from_pool, load_structure, perturbed_copies, read_run, run_tasks)
from mofsnap.descriptors import SnapDescriptors
from mofsnap.model import SNAPModel
from mofsnap.reference import ASEReference
from mofsnap.topology import Topology

#: A campaign small enough for a test: ethanol in a periodic box, with a short closing SNAP + D3 run (no
#: refinement rounds: their tests ask for them).
TINY = LearnSettings(n_perturbed=6, temperatures=(100.0, 200.0), runs=3, md_steps=30, frame_interval=5,
                     ramp_steps=20, ramp_segments=2, test_size=3, extra_random=1, final_md_steps=20, hot_md_steps=10,
                     twojmax=2, max_workers=1, refine_rounds=0)


def _springs(structure: Path) -> ASEReference:
    """The deterministic reference of these tests: bond springs of the (unperturbed) structure."""
    from functools import partial

    return ASEReference(partial(BondSprings, ase.io.read(structure)), "springs", {"k": 20.0})


def _config(tmp: Path, structure: Path, settings: LearnSettings = TINY) -> Path:
    path = tmp / "learn.toml"
    path.write_text(replace(settings, structure=str(structure)).to_toml())
    return path


#: The campaign labelled by harmonic bond springs (tests/springs.py): deterministic to the last bit, unlike an
#: SCF method whose converged numbers vary in the last digits from run to run (and MD is chaotic), so that a
#: resumed run can equal an uninterrupted one exactly.
SCRIPT = """
import sys
from functools import partial

import ase.io

sys.path.insert(0, {tests!r})
from springs import BondSprings, FlakySprings
from mofsnap.learn import ActiveLearning, LearnSettings
from mofsnap.reference import ASEReference

if __name__ == "__main__":
    settings = LearnSettings.from_toml(sys.argv[1])
    reference = ASEReference(partial(BondSprings, ase.io.read(settings.structure)), "springs", {{"k": 20.0}})
    summary = ActiveLearning(workdir=sys.argv[2], settings=settings, reference=reference).run()
    summary.write(sys.argv[2] + "/returned_summary.json")
"""


def _learn(config: Path, workdir: Path) -> subprocess.Popen:
    script = config.with_name("learn_springs.py")
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    # temporary files in the test's directory: a killed campaign cannot remove its own (multiprocessing's)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(config.parent)}
    return subprocess.Popen([sys.executable, str(script), str(config), str(workdir)], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)


def _finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    return out


def _descendants(pid: int) -> set[int]:
    """The processes started (directly or not) by ``pid``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kill_when(process: subprocess.Popen, condition, timeout: float = 120.0, group: bool = True,
               before_kill=None) -> None:
    """SIGKILL the run when ``condition()`` holds (after calling ``before_kill()``): with its workers
    (``group``, as a batch system would), or the main process alone, after which every process it started must
    end within seconds (no orphans)."""
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before the kill point"
        assert time.time() < deadline, "kill point never reached"
        time.sleep(0.02)
    if group:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return
    children = _descendants(process.pid)
    assert children, "the run had started no worker process"
    if before_kill is not None:
        before_kill()
    process.kill()
    process.wait()
    deadline = time.time() + 10.0
    while any(_alive(pid) for pid in children) and time.time() < deadline:
        time.sleep(0.1)
    orphans = [pid for pid in children if _alive(pid)]
    if orphans:
        os.killpg(process.pid, signal.SIGKILL)
    assert not orphans, f"processes {orphans} outlived the killed campaign"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, ethanol_file) -> Path:
    tmp = tmp_path_factory.mktemp("uninterrupted")
    _finish(_learn(_config(tmp, ethanol_file), tmp / "work"))
    return tmp / "work"


def _final_coefficients(workdir: Path) -> np.ndarray:
    return SNAPModel.read(workdir / "final" / "model").coefficients


def test_campaign_writes_models_reports_and_learns(uninterrupted):
    summary = LearnSummary.read(uninterrupted / "summary.json")
    generations = summary.generations
    assert [g.generation for g in generations] == [0, 1, 2]
    assert [g.temperature for g in generations] == [0.0, *TINY.temperatures]
    assert generations[0].offered == TINY.n_perturbed and generations[0].runs is None
    assert all(g.runs == TINY.runs and g.selected <= TINY.runs for g in generations[1:])  # one frame per run
    n_train = [g.n_train for g in generations]
    assert n_train == sorted(n_train) and n_train[0] >= 1
    for k in range(3):
        assert SNAPModel.read(uninterrupted / f"gen{k:03d}" / "model").coefficients.any()
        report = FitReport.read(uninterrupted / f"gen{k:03d}" / "report.json")
        assert report.metrics["train"]["n_configurations"] == n_train[k]
    for png in ("summary.png", "learning_curve.png", "gen000/parity.png"):
        assert (uninterrupted / png).stat().st_size > 1000
    store = LabelStore(uninterrupted / "labels.db")
    roles = [a.info["role"] for a in store]
    assert roles.count("test") == summary.final.test.n > 0
    extra = summary.final.train.n - generations[-1].n_train  # random ramp frames added to training
    assert 0 <= extra <= TINY.extra_random
    assert summary.labels == len(store) == sum(g.labelled for g in generations) + summary.final.test.n + extra
    test = summary.final.test
    assert np.isfinite([test.energy, test.forces, test.stress]).all()
    # the final model reproduces its own training labels better than a zero-force model would
    train_set = [a for a in store if a.info["role"] == "train"]
    forces = np.concatenate([a.get_forces().ravel() for a in train_set])
    assert summary.final.train.forces < 1e3 * np.sqrt(np.mean(forces**2))
    curve = summary.final.learning_curve
    assert [c.generation for c in curve] == [0, 1, 2, 3]
    assert [c.n_train for c in curve] == [*n_train, summary.final.train.n]
    assert curve[-1].test == summary.final.test  # the last point is the final model
    for before, now in zip(curve, curve[1:]):  # the bootstrap intervals bracket the errors and their changes
        for q in ("energy", "forces", "stress"):
            low, high = now.test_interval[q]
            assert low <= getattr(now.test, q) <= high
            low, high = now.change_interval[q]
            assert low <= getattr(now.test, q) - getattr(before.test, q) <= high
    assert curve[0].change_interval is None
    # what run() returned is what it wrote
    assert LearnSummary.read(uninterrupted / "returned_summary.json") == summary


def test_campaign_ends_with_a_written_validation(uninterrupted):
    """The closing SNAP + D3 runs at 300 K and at the top temperature, the checks and their verdict."""
    validation = LearnSummary.read(uninterrupted / "summary.json").validation
    assert validation == Validation.read(uninterrupted / "final" / "validation.json")
    assert (uninterrupted / "final" / "validation.png").stat().st_size > 1000
    assert [r.temperature_K for r in validation.runs] == [300.0, max(TINY.temperatures)]
    assert [r.planned_steps for r in validation.runs] == [TINY.final_md_steps, TINY.hot_md_steps]
    assert [c.name for c in validation.checks] == ["300 K NPT run", "200 K NPT run", "test errors", "300 K lattice"]
    assert validation.passed == all(c.passed for c in validation.checks)
    assert validation.verdict.startswith("validation passed" if validation.passed else "validation failed")
    for run in validation.runs:
        assert run == ValidationRun.read(Path(run.trajectory).with_suffix(".json"))
        frames = ase.io.read(run.trajectory, ":")
        assert frames[0].calc.results["energy"] != 0.0  # SNAP + D3 energies stored
        if run.stopped is None:
            assert run.steps == run.planned_steps
            assert len(frames) == run.planned_steps // 10 + 1  # a frame every 10 steps, the start included
            half = frames[len(frames) // 2:]
            assert run.mean_volume_A3 == pytest.approx(np.mean([f.get_volume() for f in half]), rel=1e-12)
            assert run.mean_temperature_K == pytest.approx(np.mean([f.get_temperature() for f in half]), rel=1e-6)
            np.testing.assert_allclose(run.mean_cell_lengths, np.mean([f.cell.lengths() for f in half], axis=0))
    assert validation.test == LearnSummary.read(uninterrupted / "summary.json").final.test


def test_the_safety_wall_of_the_campaign_is_the_card_s_production_setting(uninterrupted):
    """zbl = true (the default): the MD of the campaign and of its validation used ZBL on the structure's
    non-bonded H pairs (ethanol has no metal), and the card tells production MD to do the same."""
    from mofsnap.calculator import ZBL
    from mofsnap.model_card import ModelCard

    structure = ase.io.read(uninterrupted / "structure.extxyz")
    wall = ModelCard.read(uninterrupted / "final" / "model.json").use_with["zbl"]
    assert wall is not None and ZBL(**wall) == ZBL.safety_wall(structure)
    hydrogens = set(structure.arrays["atom_types"][structure.numbers == 1])
    assert all(hydrogens & set(pair) for pair in wall["pairs"])


@pytest.mark.parametrize("kill_point", ["labelling", "md"])
def test_sigkill_and_resume_gives_the_uninterrupted_result(cli, tmp_path, ethanol_file, uninterrupted, kill_point):
    work = tmp_path / "work"
    config = _config(tmp_path, ethanol_file)
    process = _learn(config, work)
    if kill_point == "labelling":
        _kill_when(process, lambda: (work / "labels.db").exists() and len(LabelStore(work / "labels.db")) >= 2)
        before = {a.info["label_hash"]: a.info["wall_time"] for a in LabelStore(work / "labels.db")}
    else:
        first_run = work / "gen001" / "md" / "run000.json"

        def second_learner_is_refused():
            r = cli("learn", config, "-o", work)
            assert r.status == 1
            assert r.err.startswith(f"mofsnap learn: error: {work} is in use by another mofsnap learn process "
                                    f"(pid {process.pid}); wait for it") and r.err.count("\n") == 1

        _kill_when(process, first_run.exists, group=False, before_kill=second_learner_is_refused)
        stamp = first_run.stat().st_mtime_ns, (work / "gen001" / "md" / "run000.extxyz").stat().st_mtime_ns
    assert (work / "lock").exists()  # a stale lock: the kernel released it with its process
    _finish(_learn(config, work))
    store = LabelStore(work / "labels.db")
    hashes = [a.info["label_hash"] for a in store]
    assert len(hashes) == len(set(hashes)) == len(LabelStore(uninterrupted / "labels.db"))
    assert store.integrity_check() == "ok"
    if kill_point == "labelling":
        after = {a.info["label_hash"]: a.info["wall_time"] for a in store}
        assert {key: after[key] for key in before} == before  # kept as they were, not recomputed
    else:
        assert stamp == (first_run.stat().st_mtime_ns,
                         (work / "gen001" / "md" / "run000.extxyz").stat().st_mtime_ns)  # not rerun
    np.testing.assert_array_equal(_final_coefficients(work), _final_coefficients(uninterrupted))
    resumed, straight = (Validation.read(w / "final" / "validation.json") for w in (work, uninterrupted))
    assert resumed.checks == straight.checks
    assert [replace(r, ns_per_day=0.0, trajectory="") for r in resumed.runs] == [
        replace(r, ns_per_day=0.0, trajectory="") for r in straight.runs]  # all but speed and path, bit for bit


def test_resume_with_other_settings_is_refused(ethanol_file, uninterrupted):
    with pytest.raises(LearnError, match="runs differ"):
        ActiveLearning(str(ethanol_file), uninterrupted, replace(TINY, runs=4, structure=str(ethanol_file)),
                       _springs(ethanol_file))


def test_a_work_directory_made_before_a_setting_resumes_with_the_value_it_ran_with(tmp_path, ethanol_file,
                                                                                   uninterrupted):
    work = tmp_path / "old"
    shutil.copytree(uninterrupted, work)
    saved = json.loads((work / "settings.json").read_text())
    del saved["bond_break_fs"]  # as written before the setting existed
    (work / "settings.json").write_text(json.dumps(saved))
    settings = replace(TINY, structure=str(ethanol_file))
    with pytest.raises(LearnError, match=r"\(bond_break_fs differ; it was made before bond_break_fs existed and ran "
                                         r"as bond_break_fs = 0\.0\); use a new work directory"):
        ActiveLearning(str(ethanol_file), work, settings, _springs(ethanol_file))
    ActiveLearning(str(ethanol_file), work, replace(settings, bond_break_fs=0.0), _springs(ethanol_file)).close()


def test_fit_weights_fall_on_perturbed_copies_after_mlp0_and_on_labels_from_stops(uninterrupted):
    learner = ActiveLearning.__new__(ActiveLearning)  # the label store and settings are all training_set reads
    learner.store = LabelStore(uninterrupted / "labels.db")
    learner.settings = replace(TINY, perturbed_weight=0.3, stop_weight=0.1)
    assert all("weight" not in a.info for a in learner.training_set(0))  # MLP0: the copies are all there is
    later = learner.training_set(len(TINY.temperatures))
    from_stop = [a for a in later if a.info["generation"] > 0 and a.info["from_stop"]]
    assert from_stop, "no learning run of the tiny campaign was stopped: the stop weight is not tested"
    for atoms in later:
        generation = atoms.info["generation"]
        if generation > 0:  # the flag says whether the label's run was stopped by the guard
            run = json.loads((uninterrupted / atoms.info["source"]).with_suffix(".json").read_text())
            assert atoms.info["from_stop"] == bool(run["stopped"])
        expected = (0.3 if generation == 0 else 1.0) * (0.1 if generation > 0 and atoms.info["from_stop"] else 1.0)
        assert atoms.info.get("weight", 1.0) == expected


# ------------------------------------------------------------------------------------- selection rules


@pytest.fixture(scope="module")
def after_step0(tmp_path_factory, ethanol_file) -> Path:
    """A work directory after step 0 (labels, MLP0) and the MD of generation 1 (not yet picked from)."""
    work = tmp_path_factory.mktemp("selection") / "base"
    settings = replace(TINY, structure=str(ethanol_file), selection="random")
    learner = ActiveLearning(workdir=work, settings=settings, reference=_springs(ethanol_file), progress=False)
    learner.step0()
    with sqlite3.connect(learner.store.path) as src, sqlite3.connect(work / "labels_step0.db") as dst:
        src.backup(dst)
    learner.generation(1, TINY.temperatures[0])
    return work


def _learner_from(base: Path, workdir: Path, structure: Path, **changes) -> ActiveLearning:
    """A learner of other settings that starts from the step-0 state and generation-1 MD of ``base``."""
    workdir.mkdir()
    shutil.copy(base / "labels_step0.db", workdir / "labels.db")
    for name in ("gen000", "descriptors", "gen001/md"):
        shutil.copytree(base / name, workdir / name)
    settings = replace(TINY, structure=str(structure), **changes)
    return ActiveLearning(workdir=workdir, settings=settings, reference=_springs(structure), progress=False)


def _intact_runs(learner: ActiveLearning) -> list[list]:
    runs = [read_run(path)[1:] for path in sorted((learner.generation_dir(1) / "md").glob("run*.extxyz"))]
    return [[f for f in run if not learner.topology.broken_bonds(f.positions, f.cell.array,
                                                                 TINY.bond_tolerance).any()] for run in runs]


def _labels_of_generation(learner: ActiveLearning, k: int) -> dict[str, object]:
    return {a.info["source"]: a for a in learner.store.select(generation=k)}


def test_random_selection_labels_one_frame_of_every_run(tmp_path, after_step0, ethanol_file):
    learner = _learner_from(after_step0, tmp_path / "random", ethanol_file, selection="random")
    record = learner.generation(1, TINY.temperatures[0])
    runs = _intact_runs(learner)
    assert len(runs) == TINY.runs
    assert record.selected == record.labelled == sum(bool(run) for run in runs)
    labels = _labels_of_generation(learner, 1)
    assert len(labels) == record.labelled
    for r, run in enumerate(runs):
        if run:
            picked = labels[f"gen001/md/run{r:03d}.extxyz"]
            np.testing.assert_allclose(picked.positions, run[picked.info["frame"]].positions, atol=1e-6)


def test_a_run_the_guard_stopped_gives_its_last_intact_frame(tmp_path, after_step0, ethanol_file):
    learner = _learner_from(after_step0, tmp_path / "stops", ethanol_file, selection="random")
    learner.generation(1, TINY.temperatures[0])
    md = learner.generation_dir(1) / "md"
    stopped = [r for r in range(TINY.runs) if json.loads((md / f"run{r:03d}.json").read_text())["stopped"]]
    runs = _intact_runs(learner)
    labels = _labels_of_generation(learner, 1)
    assert stopped, "the tiny campaign's first generation is expected to stop some runs"
    for r in stopped:
        if runs[r]:
            picked = labels[f"gen001/md/run{r:03d}.extxyz"]
            np.testing.assert_allclose(picked.positions, runs[r][-1].positions, atol=1e-6)


def test_grade_selection_picks_the_most_extrapolating_frame_above_the_threshold(tmp_path, after_step0,
                                                                                ethanol_file):
    learner = _learner_from(after_step0, tmp_path / "grade", ethanol_file, selection="grade", grade_threshold=0.0,
                            learn_from_stops=False)
    record = learner.generation(1, TINY.temperatures[0])
    model = SNAPModel.read(after_step0 / "gen000" / "model")
    report = FitReport.read(after_step0 / "gen000" / "report.json")
    runs = _intact_runs(learner)
    labels = _labels_of_generation(learner, 1)
    assert record.selected == len(labels) == sum(bool(run) for run in runs) > 0
    best = []
    with SnapDescriptors(model) as snap:
        for r, run in enumerate(runs):
            if run:
                grades = [extrapolation_grade(report.gram, report.weighted_rows(snap.rows(f), len(f))) for f in run]
                assert labels[f"gen001/md/run{r:03d}.extxyz"].info["frame"] == int(np.argmax(grades))
                best.append(max(grades))
    assert record.grade_max == pytest.approx(max(best)) and record.grade_mean == pytest.approx(np.mean(best))
    picky = _learner_from(after_step0, tmp_path / "picky", ethanol_file, selection="grade",
                          grade_threshold=max(best) * 1.01, learn_from_stops=False)
    record = picky.generation(1, TINY.temperatures[0])
    assert record.selected == record.labelled == 0 and record.grade_mean is None
    assert record.previous_model_on_new is None
    assert record.n_train == report.metrics["train"]["n_configurations"]  # nothing new to train on


def test_relax_fmax_relaxes_the_structure_with_the_reference_once(tmp_path, ethanol_file):
    distorted = ase.io.read(ethanol_file)
    distorted.positions += np.random.default_rng(3).uniform(-0.1, 0.1, distorted.positions.shape)
    path = tmp_path / "distorted.extxyz"
    ase.io.write(path, distorted)
    settings = replace(TINY, structure=str(path), relax_fmax=0.02, relax_steps=500)
    learner = ActiveLearning(workdir=tmp_path / "work", settings=settings, reference=_springs(ethanol_file))
    learner.close()
    relaxed = learner.structure.copy()
    relaxed.calc = BondSprings(ase.io.read(ethanol_file))
    assert np.linalg.norm(relaxed.get_forces(), axis=1).max() <= 0.02
    assert np.abs(learner.structure.positions - distorted.positions).max() > 0.01  # it moved
    again = ActiveLearning(workdir=tmp_path / "work", settings=settings, reference=_springs(ethanol_file))
    np.testing.assert_array_equal(again.structure.positions, learner.structure.positions)  # read back, not redone


@pytest.fixture
def squeezed_crystal(tmp_path):
    """A simple-cubic Si crystal (its bond springs are the reference, equilibrium at a = 2.3 Å) squeezed by 3 %
    and rattled: the file of the unstrained crystal and of the squeezed one."""
    from ase.build import bulk

    crystal = bulk("Si", "sc", a=2.3).repeat(4)  # 64 atoms, 9.2 Å wide: SNAP-ready as it is
    squeezed = crystal.copy()
    squeezed.set_cell(crystal.cell * 0.97, scale_atoms=True)
    squeezed.positions += np.random.default_rng(0).uniform(-0.03, 0.03, squeezed.positions.shape)
    ase.io.write(tmp_path / "crystal.extxyz", crystal)
    ase.io.write(tmp_path / "squeezed.extxyz", squeezed)
    return tmp_path / "crystal.extxyz", tmp_path / "squeezed.extxyz"


def test_relax_cell_relaxes_the_cell_to_the_references_equilibrium(tmp_path, squeezed_crystal, caplog):
    from ase.units import GPa

    crystal_file, squeezed_file = squeezed_crystal
    crystal = ase.io.read(crystal_file)
    settings = replace(TINY, structure=str(squeezed_file), relax_fmax=0.01, relax_steps=2000, relax_cell=True)
    with ActiveLearning(workdir=tmp_path / "cell", settings=settings, reference=_springs(crystal_file)) as learner:
        relaxed = learner.structure.copy()
    relaxed.calc = BondSprings(crystal)
    assert np.abs(relaxed.get_stress()).max() / GPa * 1e3 < 20.0  # MPa: the cell's convergence
    assert relaxed.get_volume() == pytest.approx(crystal.get_volume(), rel=1e-3)  # back from 0.97**3 = 0.913

    with caplog.at_level("WARNING", logger="mofsnap"):
        fixed = replace(settings, relax_cell=False)
        with ActiveLearning(workdir=tmp_path / "positions", settings=fixed,
                            reference=_springs(crystal_file)) as learner:
            np.testing.assert_allclose(learner.structure.cell.array, ase.io.read(squeezed_file).cell.array)
    assert "its equilibrium cell differs from the given one" in caplog.text
    assert "set relax_cell = true" in caplog.text
    with pytest.raises(LearnError, match="'relax_cell' = true needs a relaxation: set relax_fmax"):
        replace(settings, relax_fmax=None)


# ------------------------------------------------------------------------------ learning from the validation


def test_the_frames_before_a_failure_are_the_last_intact_one_and_those_100_to_800_fs_earlier(ethanol_file):
    """A run with a frame every 10 fs whose bond breaks at 990 fs and whose guard stops it at 1000 fs."""
    from mofsnap.learn import frames_before_failure

    structure = ase.io.read(ethanol_file)
    topology = Topology.from_atoms(structure)
    trajectory = []
    for step in range(0, 1001, 10):
        frame = structure.copy()
        frame.info["md_step"] = step
        trajectory.append(frame)
    i, j = (int(x) for x in topology.bonds[0])
    for frame in trajectory[-2:]:
        frame.positions[j] += 2.0 * (frame.positions[j] - frame.positions[i])  # 3 x the bond
    trajectory[-1].info["md_stop"] = "bond guard: ..."
    chosen = frames_before_failure(trajectory, topology, 1.5)
    assert [trajectory[k].info["md_step"] for k in chosen] == [980, 880, 780, 580, 180]
    assert frames_before_failure(trajectory[:30], topology, 1.5) == [29, 19, 9]  # none before the start
    assert frames_before_failure(trajectory[-2:], topology, 1.5) == []  # nothing intact


@pytest.fixture(scope="module")
def refined(tmp_path_factory, ethanol_file) -> Path:
    """A tiny campaign whose validation runs the volume guard stops (a 1 % limit the small box always breaks),
    with one round of refinement."""
    work = tmp_path_factory.mktemp("refined") / "work"
    settings = replace(TINY, structure=str(ethanol_file), final_md_steps=2000, hot_md_steps=1000,
                       max_volume_change=0.01, refine_rounds=1)
    with ActiveLearning(workdir=work, settings=settings, reference=_springs(ethanol_file), progress=False) as learner:
        learner.run()
    return work


def test_a_validation_run_the_guard_stopped_is_learned_from_and_the_new_model_validated(refined):
    from mofsnap.learn import frames_before_failure
    from mofsnap.model_card import ModelCard

    summary = LearnSummary.read(refined / "summary.json")
    (round_,) = summary.refinements  # refine_rounds = 1, and the new model fails the 1 % volume limit again
    first = Validation.read(refined / "final" / "validation.json")
    assert round_.learned_from == first == summary.first_validation and not first.passed
    # a round remained, so the first validation ended with its shorter (hot) run, which the volume guard stopped
    assert [r.temperature_K for r in first.runs] == [max(TINY.temperatures)]
    assert [c.name for c in first.checks] == ["200 K NPT run", "test errors"]
    assert summary.validation == Validation.read(refined / "final" / "refine1" / "validation.json")
    assert not summary.validation.passed and "volume guard" in summary.validation.verdict
    # the labels: the frames before each stop, as the refinement's own generation
    final_fit = len(TINY.temperatures) + 1
    assert round_.generation == final_fit + 1
    store = LabelStore(refined / "labels.db")
    labels = {(a.info["source"], a.info["frame"]): a for a in store.select(generation=round_.generation)}
    topology = Topology.from_atoms(ase.io.read(refined / "structure.extxyz"))
    expected = {}
    for run in first.runs:
        assert run.stopped is not None
        path = refined / "final" / Path(run.trajectory).name
        written = ase.io.read(path, ":")
        for index in frames_before_failure(written, topology, TINY.bond_tolerance):
            expected[(str(path.relative_to(refined)), index)] = written[index]
    assert set(labels) == set(expected) and round_.frames == len(expected) == round_.labelled
    for key, label in labels.items():
        assert label.info["role"] == "train"
        np.testing.assert_allclose(label.positions, expected[key].positions, atol=1e-6)
    # the failing model's errors on them, before it learned them
    from mofsnap.learn import prediction_errors
    before = prediction_errors(SNAPModel.read(refined / f"gen{final_fit:03d}" / "model"), list(labels.values()))
    assert asdict(round_.previous_model_on_new) == pytest.approx(asdict(before), rel=1e-12)
    # the campaign's model is the refit on everything before plus these labels
    before = FitReport.read(refined / f"gen{final_fit:03d}" / "report.json").metrics["train"]["n_configurations"]
    assert summary.final.train.n == before + round_.labelled == round_.train.n
    np.testing.assert_array_equal(SNAPModel.read(refined / "final" / "model").coefficients,
                                  SNAPModel.read(refined / f"gen{round_.generation:03d}" / "model").coefficients)
    assert [c.generation for c in summary.final.learning_curve] == [*range(final_fit + 1), round_.generation]
    assert summary.final.test == round_.test == summary.validation.test
    # validated again, completely (no round left), with new velocities: the runs part at once
    assert [r.temperature_K for r in summary.validation.runs] == [300.0, max(TINY.temperatures)]
    assert [c.name for c in summary.validation.checks][-1] == "300 K lattice"
    for old, new in zip(first.runs, summary.validation.runs[1:]):
        frames_old, frames_new = ase.io.read(old.trajectory, ":2"), ase.io.read(new.trajectory, ":2")
        np.testing.assert_array_equal(frames_old[0].positions, frames_new[0].positions)  # the same start
        assert not np.allclose(frames_old[0].get_velocities(), frames_new[0].get_velocities())
    (note,) = [n for n in ModelCard.read(refined / "final" / "model.json").notes if n.startswith("Refined")]
    assert f"Refined in 1 round(s) after failed validations, with {round_.labelled} labels" in note


def test_a_refined_campaign_resumes_to_the_same_summary_without_new_work(refined, ethanol_file):
    settings = LearnSettings.from_toml(_config(refined.parent, ethanol_file, replace(
        TINY, final_md_steps=2000, hot_md_steps=1000, max_volume_change=0.01, refine_rounds=1)))
    labels = len(LabelStore(refined / "labels.db"))
    with ActiveLearning(workdir=refined, settings=settings, reference=_springs(ethanol_file),
                        progress=False) as learner:
        again = learner.run()
    assert replace(again, wall_seconds=0.0) == replace(LearnSummary.read(refined / "summary.json"), wall_seconds=0.0)
    assert len(LabelStore(refined / "labels.db")) == labels


def test_a_campaign_replays_the_stops_of_its_last_validation(refined, ethanol_file):
    """The volume guard stopped the refined campaign's last validation runs. Replayed in NVE, which keeps the
    cell, the springs of the reference can trip no guard; the verdict follows from what the model did."""
    settings = replace(TINY, structure=str(ethanol_file), final_md_steps=2000, hot_md_steps=1000,
                       max_volume_change=0.01, refine_rounds=1)
    with ActiveLearning(workdir=refined, settings=settings, reference=_springs(ethanol_file),
                        progress=False) as learner:
        replays = learner.replay_stops(50)
    stopped = [r for r in LearnSummary.read(refined / "summary.json").validation.runs if r.stopped]
    assert stopped and [r.stopped for r in replays.replays] == [r.stopped for r in stopped]
    for replay in replays.replays:
        assert replay.reference.stopped is None and replay.reference.fs == replay.fs == 50 + 100
        assert replay.verdict.endswith("the failure is the model's") == (replay.model.stopped is not None)
    assert StopReplays.read(refined / "final" / "replays.json") == replays
    assert all((refined / "final" / "refine1" / f"replay_{r.temperature_K:.0f}K_50fs_{who}.extxyz").exists()
               for r in stopped for who in ("model", "reference"))


# --------------------------------------------------------------------------------------- the pool route


def test_pool_route_selects_labels_and_fits_with_gfn1_xtb(tmp_path, ethanol_file, uninterrupted):
    """The select-label-fit route on the embedded default reference (GFN1-xTB via tblite)."""
    pool = sorted((uninterrupted / "gen001" / "md").glob("run*.extxyz"))
    result = learn_from_pool(pool, str(ethanol_file), tmp_path / "pool", settings=TINY, validation_fraction=0.3,
                             progress=False)
    assert result.offered == sum(len(read_run(p)) for p in pool)
    assert 0 < result.selected <= result.offered
    assert result.labelled == result.selected
    assert result.train.n + (result.validation.n if result.validation else 0) == result.labelled
    assert SNAPModel.read(result.model).coefficients.any()
    assert PoolResult.read(tmp_path / "pool" / "result.json") == result


# ------------------------------------------------------------------------------------------ MD tasks


def test_md_tasks_lost_to_a_broken_pool_are_rerun(tmp_path, ethanol_file):
    """A crashed MD process breaks a process pool for all its tasks; they are rerun one by one and complete."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    class BrokenPool:
        def submit(self, fn, *args):
            future = Future()
            future.set_exception(BrokenProcessPool("a worker died"))
            return future

    structure = ase.io.read(ethanol_file)
    model = SNAPModel(sorted(set(structure.arrays["atom_types"])), twojmax=2)
    model.write(tmp_path / "model")
    tasks = [MDTask(str(tmp_path / "model"), structure, (50.0,), 5, 5, 0.1, seed, str(tmp_path / f"run{seed}.extxyz"),
                    Topology.from_atoms(structure).to_dict(), False, 20.0, 3.0, 1.5) for seed in range(2)]
    summaries = run_tasks(tasks, BrokenPool(), "test", progress=False)
    assert [s["frames"] for s in summaries] == [2, 2]  # start and step 5 of each run
    assert all(s["stopped"] is None for s in summaries)


# ---------------------------------------------------------------------------------- results round trip


def _summary() -> LearnSummary:
    train = RMSE(1.25, 130.5, 21.0, 7)
    generations = [GenerationRecord(0, 0.0, 5, 5, 0, train, offered=6),
                   GenerationRecord(1, 100.0, 3, 2, 1, RMSE(1.5, 140.25, 22.0, 9), runs=3, stopped=1,
                                    grade_mean=1.7, grade_max=2.9, previous_model_on_new=RMSE(3.0, 300.0, 40.0, 2)),
                   GenerationRecord(2, 200.0, 0, 0, 0, RMSE(1.5, 140.25, 22.0, 9), runs=3, stopped=3)]
    test = RMSE(2.0, 0.1 + 0.2, 1e-17, 3)
    final = FinalRecord("w/final/model", RMSE(1.4, 141.0, 20.5, 10), test,
                        [CurvePoint(0, 7, RMSE(9.0, 900.0, 90.0, 3), {"energy": [8.5, 9.5], "forces": [850.0, 1e3],
                                                                      "stress": [80.0, 100.0]}),
                         CurvePoint(1, 10, test, {"energy": [1.5, 2.5], "forces": [0.1, 0.5], "stress": [0.0, 1e-16]},
                                    {"energy": [-7.5, -6.5], "forces": [-1e3, -850.0], "stress": [-100.0, -80.0]})])
    runs = [ValidationRun(300.0, 20, 20, None, 0.37, 301.2, 736.0, 0.0125, [9.0, 9.1, 8.95], "w/final/v300.extxyz"),
            ValidationRun(200.0, 10, 4, "bond guard: C1a (atom 0)-O1a (atom 2) at 2.20 Å > 1.5 x its 1.43 Å at "
                          "0.004 ps (step 4)", float("nan"), 210.0, 730.5, 0.25, [9.0, 9.0, 9.0], "w/final/v200.extxyz")]
    checks = [ValidationCheck("300 K NPT run", True, "stable"), ValidationCheck("200 K NPT run", False, runs[1].stopped)]
    return LearnSummary(generations, final, Validation(runs, test, checks), 13, 1, 12.5)


def test_learn_summary_round_trips_exactly(tmp_path):
    summary = _summary()
    back = LearnSummary.read(summary.write(tmp_path / "summary.json"))
    assert back.generations == summary.generations and back.final == summary.final
    assert (back.labels, back.failed_labels, back.wall_seconds) == (13, 1, 12.5)
    for old, new in zip(summary.generations, back.generations):
        assert new == old and type(new.train) is RMSE
    assert back.final.test.stress == 1e-17
    assert back.generations[2].previous_model_on_new is None and back.generations[2].grade_mean is None
    for old, new in zip(summary.validation.runs, back.validation.runs):
        assert type(new) is ValidationRun and new.mean_cell_lengths == old.mean_cell_lengths
    assert np.isnan(back.validation.runs[1].ns_per_day)  # NaN survives (and compares unequal, hence field by field)
    assert back.validation.checks == summary.validation.checks and back.validation.test == summary.validation.test
    assert not back.validation.passed
    assert back.validation.verdict == "validation failed: 200 K NPT run: " + summary.validation.runs[1].stopped
    no_test = replace(summary, final=replace(summary.final, test=None),
                      validation=replace(summary.validation, runs=summary.validation.runs[:1], test=None))
    assert LearnSummary.read(no_test.write(tmp_path / "no_test.json")) == no_test
    refined = replace(no_test, refinements=[RefinementRound(1, 3, no_test.validation, 5, 4, RMSE(8.0, 900.0, 70.0, 4),
                                                            RMSE(1.0, 2.0, 3.0, 14), None)])
    back = LearnSummary.read(refined.write(tmp_path / "refined.json"))
    assert back == refined and type(back.refinements[0].learned_from) is Validation
    assert back.first_validation == no_test.validation and no_test.first_validation is no_test.validation
    written = json.loads((tmp_path / "summary.json").read_text())
    for point in written["final"]["learning_curve"]:  # a summary written before the intervals existed
        del point["test_interval"], point["change_interval"]
    (tmp_path / "before.json").write_text(json.dumps(written))
    before = LearnSummary.read(tmp_path / "before.json").final.learning_curve
    assert [p.test for p in before] == [p.test for p in summary.final.learning_curve]
    assert all(p.test_interval is None and p.change_interval is None for p in before)


def test_pool_result_round_trips_and_other_files_are_refused(tmp_path):
    result = PoolResult(40, 12, 11, "pool/model", RMSE(1.0, 2.0, 3.0, 8), None)
    assert PoolResult.read(result.write(tmp_path / "result.json")) == result
    with pytest.raises(ResultFileError, match="not a learn-summary"):
        LearnSummary.read(tmp_path / "result.json")


# --------------------------------------------------------------------------------------------- command


def test_write_config_writes_settings_that_read_back_equal(cli, tmp_path):
    r = cli("learn", "--write-config", tmp_path / "defaults.toml")
    assert r.status == 0 and "wrote" in r.out
    assert LearnSettings.from_toml(tmp_path / "defaults.toml") == LearnSettings()
    r = cli("learn", "--demo", "--workers", "3", "--write-config", tmp_path / "demo.toml")
    assert r.status == 0
    assert LearnSettings.from_toml(tmp_path / "demo.toml") == replace(DEMO, max_workers=3)
    r = cli("learn", "--demo", "--structure", "my_mof.cif", "--unpaired-electrons", "6", "--write-config",
            tmp_path / "mine.toml")
    assert r.status == 0
    assert LearnSettings.from_toml(tmp_path / "mine.toml") == replace(DEMO, structure="my_mof.cif", unpaired_electrons=6)


def test_the_command_names_the_rises_beyond_the_test_noise():
    from mofsnap.cli.learn import learning_curve_line

    flat = {"energy": [-0.1, 0.1], "forces": [-1.0, 1.0], "stress": [-1.0, 1.0]}
    curve = [CurvePoint(0, 10, RMSE(2.0, 100.0, 30.0, 20)),
             CurvePoint(1, 20, RMSE(1.5, 112.0, 29.0, 20), None, {**flat, "forces": [4.0, 20.0]})]
    assert learning_curve_line(curve) == ("learning curve: rises beyond the noise of its 20 test frames (paired "
                                          "bootstrap): forces at generation 1 (+12 meV/Å, 95 % interval +4 to +20)")
    curve[1] = CurvePoint(1, 20, RMSE(1.5, 112.0, 29.0, 20), None, {**flat, "forces": [-2.0, 20.0]})
    assert learning_curve_line(curve) == "learning curve: no rise beyond the noise of its 20 test frames (paired bootstrap)"


def test_config_and_demo_together_fail_in_one_line(cli, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(TINY.to_toml())
    r = cli("learn", config, "--demo", "--write-config", tmp_path / "out.toml")
    assert r.status == 1
    assert r.err.strip() == "mofsnap learn: error: give either a config file or --demo, not both"
    assert not (tmp_path / "out.toml").exists()


def test_missing_config_file_fails_in_one_line(cli, tmp_path):
    r = cli("learn", tmp_path / "absent.toml", "-o", tmp_path / "work")
    assert r.status == 1
    assert r.err.count("\n") == 1 and "absent.toml: no such settings file" in r.err
    assert not (tmp_path / "work").exists()


def test_learn_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "mofsnap.learn", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "--write-config" in done.stdout and "--output" in done.stdout


# -------------------------------------------------------------------------------------------- settings


def test_settings_toml_round_trip(tmp_path):
    settings = replace(TINY, resolutions={"bond": 0.02}, executor="tcp://127.0.0.1:8786")
    path = tmp_path / "s.toml"
    path.write_text(settings.to_toml())
    assert LearnSettings.from_toml(path) == settings


def test_unknown_structure_is_rejected():
    with pytest.raises(LearnError, match="neither a built-in"):
        load_structure("no-such-mof")


def test_perturbed_copies_are_seeded_and_bounded(ethanol_file):
    atoms = ase.io.read(ethanol_file)
    a, b = (perturbed_copies(atoms, 3, 0.1, 0.01, seed=5) for _ in range(2))
    c = perturbed_copies(atoms, 3, 0.1, 0.01, seed=6)
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
    assert not np.array_equal(a[0].positions, c[0].positions)
    for copy in a:
        deformation = np.linalg.solve(atoms.cell.array, copy.cell.array)
        strain = deformation - np.eye(3)
        assert np.allclose(strain, strain.T) and np.abs(strain).max() <= 0.01
        assert np.abs(copy.positions - atoms.positions @ deformation).max() <= 0.1 + 1e-12


def test_failed_labels_are_kept_on_resume_and_recomputed_with_retry_failed(tmp_path, ethanol_file):
    from functools import partial

    marker = tmp_path / "reference-down"
    marker.touch()
    flaky = ASEReference(partial(FlakySprings, ase.io.read(ethanol_file), str(marker)), "springs", {"k": 20.0})
    frames = perturbed_copies(ase.io.read(ethanol_file), 3, 0.05, 0.0, seed=5)
    meta = [{"generation": 0, "role": "train", "source": "test", "frame": i} for i in range(3)]
    settings = replace(TINY, structure=str(ethanol_file))
    with ActiveLearning(workdir=tmp_path / "w", settings=settings, reference=flaky, progress=False) as learner:
        assert learner.label(frames, meta) == [] and learner.store.count_failures() == 3
    marker.unlink()  # the reference is back
    with ActiveLearning(workdir=tmp_path / "w", settings=settings, reference=flaky, progress=False) as learner:
        assert learner.label(frames, meta) == [] and learner.store.count_failures() == 3  # a resume keeps them
    with ActiveLearning(workdir=tmp_path / "w", settings=settings, reference=flaky, progress=False,
                        retry_failed=True) as learner:
        assert len(learner.label(frames, meta)) == 3 and learner.store.count_failures() == 0


def test_two_workers_give_the_campaign_of_one_bit_for_bit(tmp_path, ethanol_file, uninterrupted):
    config = _config(tmp_path, ethanol_file, replace(TINY, max_workers=2))
    _finish(_learn(config, tmp_path / "two"))
    np.testing.assert_array_equal(_final_coefficients(tmp_path / "two"), _final_coefficients(uninterrupted))
