"""Active learning: a whole (tiny) campaign, restarts after SIGKILL, the pool route, settings handling."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from mofsnap.atomtypes import assign_atom_types
from mofsnap.learn import LearnError, LearnSettings, load_structure, perturbed_copies
from mofsnap.labelling import LabelStore
from mofsnap.model import SNAPModel

#: A campaign small enough for a test: ethanol in a periodic box.
TINY = LearnSettings(n_perturbed=6, temperatures=(100.0, 200.0), runs=3, md_steps=30, frame_interval=5,
                     ramp_steps=20, ramp_segments=2, test_size=3, extra_random=1, final_md_steps=0, twojmax=2,
                     max_workers=1)


@pytest.fixture(scope="module")
def ethanol_file(tmp_path_factory) -> Path:
    atoms = molecule("CH3CH2OH")
    atoms.set_cell([9.0, 9.0, 9.0])
    atoms.center()
    atoms.pbc = True
    assign_atom_types(atoms)
    path = tmp_path_factory.mktemp("structure") / "ethanol.extxyz"
    ase.io.write(path, atoms)
    return path


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
from springs import BondSprings
from mofsnap.learn import ActiveLearning, LearnSettings
from mofsnap.reference import ASEReference

if __name__ == "__main__":
    settings = LearnSettings.from_toml(sys.argv[1])
    reference = ASEReference(partial(BondSprings, ase.io.read(settings.structure)), "springs", {{"k": 20.0}})
    ActiveLearning(workdir=sys.argv[2], settings=settings, reference=reference).run()
"""


def _learn(config: Path, workdir: Path) -> subprocess.Popen:
    script = config.with_name("learn_emt.py")
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(config), str(workdir)], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)


def _finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    return out


def _kill_when(process: subprocess.Popen, condition, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before the kill point"
        assert time.time() < deadline, "kill point never reached"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the run and its worker processes, as a batch system would
    process.wait()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, ethanol_file) -> Path:
    tmp = tmp_path_factory.mktemp("uninterrupted")
    _finish(_learn(_config(tmp, ethanol_file), tmp / "work"))
    return tmp / "work"


def _final_coefficients(workdir: Path) -> np.ndarray:
    return SNAPModel.read(workdir / "final" / "model").coefficients


def test_campaign_writes_models_reports_and_learns(uninterrupted):
    import json

    summary = json.loads((uninterrupted / "summary.json").read_text())
    generations = summary["generations"]
    assert [g["generation"] for g in generations] == [0, 1, 2]
    assert all(g["selected"] <= TINY.runs for g in generations[1:])  # at most one frame per MD run
    n_train = [g["n_train"] for g in generations]
    assert n_train == sorted(n_train) and n_train[0] >= 1
    for k in range(3):
        assert (uninterrupted / f"gen{k:03d}" / "model.snapcoeff").exists()
    for png in ("summary.png", "learning_curve.png", "gen000/parity.png"):
        assert (uninterrupted / png).stat().st_size > 1000
    store = LabelStore(uninterrupted / "labels.db")
    roles = [a.info["role"] for a in store]
    assert roles.count("test") == summary["final"]["n_test"] > 0
    extra = summary["final"]["n_train"] - generations[-1]["n_train"]  # random ramp frames added to training
    assert 0 <= extra <= TINY.extra_random
    assert len(store) == sum(g["labelled"] for g in generations) + summary["final"]["n_test"] + extra
    test = summary["final"]["test"]
    assert np.isfinite([test["energy_rmse"], test["forces_rmse"], test["stress_rmse"]]).all()
    # the final model reproduces its own training labels better than a zero-force model would
    train_set = [a for a in store if a.info["role"] == "train"]
    forces = np.concatenate([a.get_forces().ravel() for a in train_set])
    assert summary["final"]["train"]["forces_rmse"] < 1e3 * np.sqrt(np.mean(forces**2))
    assert [c["generation"] for c in summary["final"]["learning_curve"]] == [0, 1, 2, 3]


@pytest.mark.parametrize("kill_point", ["labelling", "md"])
def test_sigkill_and_resume_gives_the_uninterrupted_result(tmp_path, ethanol_file, uninterrupted, kill_point):
    work = tmp_path / "work"
    config = _config(tmp_path, ethanol_file)
    process = _learn(config, work)
    if kill_point == "labelling":
        _kill_when(process, lambda: (work / "labels.db").exists() and len(LabelStore(work / "labels.db")) >= 2)
        labelled_before = {a.info["label_hash"] for a in LabelStore(work / "labels.db")}
    else:
        first_run = work / "gen001" / "md" / "run000.json"
        _kill_when(process, first_run.exists)
        stamp = first_run.stat().st_mtime_ns, (work / "gen001" / "md" / "run000.extxyz").stat().st_mtime_ns
    _finish(_learn(config, work))
    store = LabelStore(work / "labels.db")
    hashes = [a.info["label_hash"] for a in store]
    assert len(hashes) == len(set(hashes)) == len(LabelStore(uninterrupted / "labels.db"))
    assert store.integrity_check() == "ok"
    if kill_point == "labelling":
        rows = {a.info["label_hash"]: a.info["wall_time"] for a in store}
        assert labelled_before <= set(rows)  # kept, not recomputed (ids unchanged is implied by no duplicates)
    else:
        assert stamp == (first_run.stat().st_mtime_ns,
                         (work / "gen001" / "md" / "run000.extxyz").stat().st_mtime_ns)  # not rerun
    assert np.allclose(_final_coefficients(work), _final_coefficients(uninterrupted), rtol=0, atol=1e-9)


def test_resume_with_other_settings_is_refused(tmp_path, ethanol_file, uninterrupted):
    from functools import partial

    from springs import BondSprings

    from mofsnap.learn import ActiveLearning
    from mofsnap.reference import ASEReference

    reference = ASEReference(partial(BondSprings, ase.io.read(ethanol_file)), "springs", {"k": 20.0})
    with pytest.raises(LearnError, match="runs differ"):
        ActiveLearning(str(ethanol_file), uninterrupted, replace(TINY, runs=4, structure=str(ethanol_file)),
                       reference)


def test_pool_route_selects_labels_and_fits_with_gfn1_xtb(tmp_path, ethanol_file, uninterrupted):
    """The select-label-fit route on the embedded default reference (GFN1-xTB via tblite)."""
    from mofsnap.learn import learn_from_pool

    pool = sorted((uninterrupted / "gen001" / "md").glob("run*.extxyz"))
    result = learn_from_pool(pool, str(ethanol_file), tmp_path / "pool", settings=replace(TINY, max_workers=1),
                             validation_fraction=0.3)
    assert 0 < result["selected"] <= result["offered"]
    assert result["labelled"] == result["selected"]
    assert SNAPModel.read(result["model"]).coefficients.any()


def test_md_tasks_lost_to_a_broken_pool_are_rerun(tmp_path, ethanol_file):
    """A crashed MD process breaks a process pool for all its tasks; they are rerun one by one and complete."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from mofsnap.learn import MDTask, run_tasks
    from mofsnap.topology import Topology

    class BrokenPool:
        def submit(self, fn, *args):
            future = Future()
            future.set_exception(BrokenProcessPool("a worker died"))
            return future

    structure = ase.io.read(ethanol_file)
    model = SNAPModel(sorted(set(structure.arrays["atom_types"])), twojmax=2)
    model.write(tmp_path / "model")
    tasks = [MDTask(str(tmp_path / "model"), structure, (50.0,), 5, 5, 0.1, seed, str(tmp_path / f"run{seed}.extxyz"),
                    Topology.from_atoms(structure).to_dict()) for seed in range(2)]
    summaries = run_tasks(tasks, BrokenPool(), "test")
    assert [s["frames"] for s in summaries] == [2, 2]  # start and step 5 of each run
    assert all(s["stopped"] is None for s in summaries)


def test_settings_toml_round_trip(tmp_path):
    settings = replace(TINY, resolutions={"bond": 0.02}, executor="tcp://127.0.0.1:8786")
    path = tmp_path / "s.toml"
    path.write_text(settings.to_toml())
    assert LearnSettings.from_toml(path) == settings


@pytest.mark.parametrize("text, message", [
    ("runz = 3\n", "unknown settings"),
    ("selection = 'best'\n", "selection must be one of"),
    ("runs = 0\n", "runs must be at least 1"),
    ("temperatures = [100, -5]\n", "temperatures must be positive"),
    ("cbad_pick = 'best'\n", "cbad_pick must be one of"),
])
def test_bad_settings_are_rejected(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(LearnError, match=message):
        LearnSettings.from_toml(path)


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
