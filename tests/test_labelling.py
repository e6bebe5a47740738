"""Labelling engine: store contents, idempotence, failures, timeouts, executors, crash safety, extxyz I/O."""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from mofsnap.atomtypes import assign_atom_types
from mofsnap.exceptions import ExecutorUnavailableError, LabellingError, ReferenceMethodError
from mofsnap.executors import describe_executor, worker_pool
from mofsnap.labelling import LabelStore, label, label_key
from mofsnap.reference import XTB, ASEReference

CALLS = []


class SlowEMT(EMT):
    """EMT that sleeps before computing and records each calculation (thread executors share CALLS)."""

    def __init__(self, delay=0.0):
        super().__init__()
        self.delay = delay

    def calculate(self, atoms=None, properties=None, system_changes=None):
        time.sleep(self.delay)
        CALLS.append(1)
        super().calculate(atoms, ["energy", "forces", "stress"], system_changes or [])


class FailsOnSeven(EMT):
    """EMT that refuses configurations with 7 atoms (a stand-in for an SCF that does not converge)."""

    def calculate(self, atoms=None, properties=None, system_changes=None):
        if len(atoms) == 7:
            raise RuntimeError("SCF not converged in 50 cycles")
        super().calculate(atoms, ["energy", "forces", "stress"], system_changes or [])


class DiesOnSeven(EMT):
    """EMT whose worker process dies (as if killed) on configurations with 7 atoms; the others take 0.3 s."""

    def calculate(self, atoms=None, properties=None, system_changes=None):
        time.sleep(0.3)
        if len(atoms) == 7:
            os._exit(1)
        super().calculate(atoms, ["energy", "forces", "stress"], system_changes or [])


class HangsOnSeven(EMT):
    """EMT that hangs on configurations with 7 atoms where no Python signal handler runs (SIGALRM blocked, as
    in compiled code that holds its thread); the others take 0.3 s."""

    def calculate(self, atoms=None, properties=None, system_changes=None):
        time.sleep(0.3)
        if len(atoms) == 7:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(3600)
        super().calculate(atoms, ["energy", "forces", "stress"], system_changes or [])


def slow_emt():
    """Module-level (picklable) factory of an EMT that takes 0.3 s."""
    return SlowEMT(0.3)


def copper(n, seed=0):
    """Rattled copper cells (untyped: metal contacts are no bonds for atom typing)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        atoms.info["frame"] = i
        frames.append(atoms)
    return frames


def waters(n):
    """Rattled water molecules in a periodic box, typed by assign_atom_types."""
    frames = []
    for i in range(n):
        atoms = molecule("H2O", cell=[6.0, 6.2, 6.4], pbc=True)
        atoms.center()
        atoms.rattle(0.02, seed=i)
        assign_atom_types(atoms)
        atoms.info["frame"] = i
        frames.append(atoms)
    return frames


def emt_results(atoms):
    ref = atoms.copy()
    ref.calc = EMT()
    return ref.get_potential_energy(), ref.get_forces(), ref.get_stress()


def test_labels_equal_direct_calculation_with_types_and_provenance(tmp_path):
    frames = waters(4)
    store = LabelStore(tmp_path / "labels.db")
    summary = label(frames, ASEReference(EMT, "EMT"), store, max_workers=2,
                    metadata={"generation": 2, "temperature": 300.0, "source": "md.traj"}, progress=False)
    assert (summary.done, summary.failed, summary.skipped) == (4, 0, 0)
    for key, atoms in zip(summary.keys, frames):
        got = store.get(key)
        energy, forces, stress = emt_results(atoms)
        assert got.get_potential_energy() == pytest.approx(energy, abs=1e-12)
        np.testing.assert_allclose(got.get_forces(), forces, atol=1e-12)
        np.testing.assert_allclose(got.get_stress(), stress, atol=1e-12)
        np.testing.assert_array_equal(got.arrays["atom_types"], atoms.arrays["atom_types"])
        np.testing.assert_allclose(got.positions, atoms.positions)
        assert got.info["generation"] == 2 and got.info["frame"] == atoms.info["frame"]
        assert got.info["reference"] == "EMT" and got.info["wall_time"] > 0
    assert len(list(store.select(generation=2))) == 4 and not list(store.select(generation=3))


def test_rerun_is_idempotent_and_keyed_by_reference_settings(tmp_path):
    frames = copper(3)
    store = LabelStore(tmp_path / "labels.db")
    ref = ASEReference(SlowEMT, "EMT", {"variant": "slow"})
    CALLS.clear()
    with ThreadPoolExecutor(2) as pool:
        label(frames, ref, store, executor=pool, progress=False)
        again = label(frames + frames[:1], ref, store, executor=pool, progress=False)
        assert (again.done, again.skipped, len(CALLS)) == (0, 4, 3)
        other = label(frames, ASEReference(SlowEMT, "EMT", {"variant": "other"}), store, executor=pool,
                      progress=False)
    assert other.done == 3 and len(store) == 6
    moved = frames[0].copy()
    moved.positions[0, 0] += 1e-4
    assert label_key(moved, ref) != label_key(frames[0], ref)
    typed, untyped = waters(1)[0], waters(1)[0]
    del untyped.arrays["atom_types"]
    assert label_key(typed, ref) == label_key(untyped, ref)  # atom types do not change a label
    assert store.integrity_check() == "ok"


def test_failures_are_stored_apart_and_retried_on_request(tmp_path):
    frames = copper(2)
    odd = frames[0][:7]
    store = LabelStore(tmp_path / "labels.db")
    failing = ASEReference(FailsOnSeven, "EMT")
    with ThreadPoolExecutor(2) as pool:
        summary = label(frames + [odd], failing, store, executor=pool, progress=False)
        assert (summary.done, summary.failed) == (2, 1)
        assert len(store) == 2 and store.count_failures() == 1
        assert "SCF not converged" in store.failures()[0]["error"]
        assert all(len(a) == 8 for a in store)  # the failure never appears among labels
        assert label([odd], failing, store, executor=pool, progress=False).skipped == 1
        fixed = ASEReference(EMT, "EMT")  # same name and settings: same keys, the failure can be retried
        retried = label([odd], fixed, store, executor=pool, retry_failed=True, progress=False)
    assert retried.done == 1 and store.count_failures() == 0 and len(store) == 3


def test_real_xtb_scf_failure_is_stored_with_its_message(tmp_path):
    atoms = bulk("Si", "diamond", a=5.43)
    store = LabelStore(tmp_path / "labels.db")
    with ThreadPoolExecutor(1) as pool:
        summary = label([atoms], XTB(max_iterations=1), store, executor=pool, progress=False)
    assert summary.failed == 1 and "SCF not converged" in store.failures()[0]["error"]


@pytest.mark.parametrize("where", ["thread", "process"])
def test_timeouts_become_failures(tmp_path, where):
    ref = ASEReference(slow_emt, "EMT", {"variant": "slow"})
    store = LabelStore(tmp_path / "labels.db")
    if where == "thread":
        with ThreadPoolExecutor(1) as pool:
            summary = label(copper(1), ref, store, executor=pool, timeout=0.1, progress=False)
    else:  # SIGALRM interrupts the calculation in a pool process
        summary = label(copper(1), ref, store, max_workers=1, timeout=0.1, progress=False)
    assert summary.failed == 1 and "time limit" in store.failures()[0]["error"]


def test_extxyz_round_trip_keeps_labels_and_types(tmp_path):
    frames = waters(3)
    ref = ASEReference(EMT, "EMT")
    store = LabelStore(tmp_path / "a.db")
    with ThreadPoolExecutor(2) as pool:
        label(frames, ref, store, executor=pool, metadata={"generation": 1}, progress=False)
    assert store.export_extxyz(tmp_path / "a.extxyz") == 3
    other = LabelStore(tmp_path / "b.db")
    assert other.import_extxyz(tmp_path / "a.extxyz", ref, generation=0) == 3
    assert other.import_extxyz(tmp_path / "a.extxyz", ref) == 0  # already there
    for atoms in frames:
        key = label_key(atoms, ref)
        a, b = store.get(key), other.get(key)
        assert b.get_potential_energy() == pytest.approx(a.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(b.get_forces(), a.get_forces(), atol=1e-7)
        np.testing.assert_allclose(b.get_stress(), a.get_stress(), atol=1e-9)
        np.testing.assert_array_equal(b.arrays["atom_types"], atoms.arrays["atom_types"])
    with ThreadPoolExecutor(1) as pool:  # imported labels count as done for the same reference
        assert label(frames, ref, other, executor=pool, progress=False).skipped == 3
    unlabelled = tmp_path / "raw.extxyz"
    copper(1)[0].write(unlabelled)
    with pytest.raises(LabellingError, match="has no energy"):
        other.import_extxyz(unlabelled, ref)


def test_bad_input_is_rejected_clearly(tmp_path):
    store = LabelStore(tmp_path / "labels.db")
    molecule = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]])
    with pytest.raises(ReferenceMethodError, match="periodic method"):
        label([molecule], ASEReference(EMT, "EMT"), store, progress=False)
    pool = ThreadPoolExecutor(1)
    pool.shutdown()
    with pytest.raises(ExecutorUnavailableError, match="^the ThreadPoolExecutor refuses work"):
        label(copper(1), ASEReference(EMT, "EMT"), store, executor=pool, progress=False)
    with pytest.raises(ExecutorUnavailableError, match="cannot reach the Dask scheduler"):
        label(copper(1), ASEReference(EMT, "EMT"), store, executor="tcp://127.0.0.1:9", probe_timeout=1,
              progress=False)
    with pytest.raises(LabellingError, match="2 entries for 1"):
        label(copper(1), ASEReference(EMT, "EMT"), store, metadata=[{}, {}], progress=False)
    with pytest.raises(LabellingError, match="must be an SQLite file"):
        LabelStore(tmp_path / "labels.json")
    assert len(store) == 0 and store.count_failures() == 0


def test_a_local_pool_is_named_with_its_size():
    with worker_pool(3) as processes:
        assert describe_executor(processes) == "the local pool of 3 worker processes"


def test_dask_local_cluster_executor(tmp_path, caplog):
    distributed = pytest.importorskip("distributed")
    frames = copper(4)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with caplog.at_level(logging.INFO, logger="mofsnap.labelling.driver"):
            summary = label(frames, ASEReference(EMT, "EMT"), tmp_path / "labels.db",
                            executor=client.get_executor(), progress=False)
        assert f"the Dask executor of the scheduler at {cluster.scheduler_address} answers" in caplog.text
    store = LabelStore(tmp_path / "labels.db")
    assert summary.done == 4 and len(store) == 4
    for key, atoms in zip(summary.keys, frames):
        assert store.get(key).get_potential_energy() == pytest.approx(emt_results(atoms)[0], abs=1e-12)


CRASH_SCRIPT = """
import sys, time
import numpy as np
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from mofsnap.labelling import label
from mofsnap.reference import ASEReference

class Slow(EMT):
    def calculate(self, *args, **kwargs):
        time.sleep(0.25)
        super().calculate(*args, **kwargs)

def frames():
    out = []
    for i in range(16):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.rattle(0.05, seed=i)
        out.append(atoms)
    return out

if __name__ == "__main__":
    label(frames(), ASEReference(Slow, "EMT", {"variant": "crash"}), sys.argv[1], max_workers=2, progress=False)
"""


def test_sigkill_mid_batch_then_resume_loses_and_repeats_nothing(tmp_path):
    (tmp_path / "crashjob.py").write_text(textwrap.dedent(CRASH_SCRIPT))
    db = tmp_path / "labels.db"
    # temporary files in the test's directory: the killed job cannot remove its own (multiprocessing's)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "crashjob.py"), str(db)], env=env,
                            start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and (not db.exists() or len(LabelStore(db).statuses()) < 4):
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the job and its pool workers, mid-batch
        proc.wait()
    store = LabelStore(db)
    assert store.integrity_check() == "ok"
    # labels wait as "pending" until their batch is complete, then are checked against it
    assert set(store.statuses().values()) == {"pending"} and len(store) == 0
    before = {key: store.get(key, status="pending").get_potential_energy() for key in store.statuses()}
    assert 4 <= len(before) < 16
    sys.path.insert(0, str(tmp_path))
    try:
        import crashjob
    finally:
        sys.path.remove(str(tmp_path))
    CALLS.clear()
    with ThreadPoolExecutor(2) as pool:  # same name + settings: same keys; SlowEMT counts the real work
        summary = label(crashjob.frames(), ASEReference(SlowEMT, "EMT", {"variant": "crash"}), store,
                        executor=pool, progress=False)
    assert (summary.skipped, summary.done, len(CALLS)) == (len(before), 16 - len(before), 16 - len(before))
    after = {a.info["label_hash"]: a.get_potential_energy() for a in store}
    assert len(after) == 16 == len(set(summary.keys)) and store.count_failures() == 0
    assert all(after[k] == e for k, e in before.items())
    for key, atoms in zip(summary.keys, crashjob.frames()):
        assert after[key] == pytest.approx(emt_results(atoms)[0], abs=1e-12)


def test_a_worker_that_dies_loses_no_other_configuration(tmp_path):
    frames = copper(6)
    killer = frames[0][:7]
    configs = frames[:3] + [killer] + frames[3:]
    store = LabelStore(tmp_path / "labels.db")
    ref = ASEReference(DiesOnSeven, "EMT", {"variant": "dies"})
    summary = label(configs, ref, store, max_workers=2, progress=False)
    assert (summary.done, summary.failed, summary.skipped) == (6, 1, 0)
    labels = {a.info["label_hash"]: a for a in store}
    assert set(labels) == {label_key(a, ref) for a in frames}
    for atoms in frames:
        energy, forces, stress = emt_results(atoms)
        got = labels[label_key(atoms, ref)]
        assert got.get_potential_energy() == pytest.approx(energy, abs=1e-12)
        np.testing.assert_allclose(got.get_forces(), forces, atol=1e-12)
        np.testing.assert_allclose(got.get_stress(), stress, atol=1e-12)
    (failure,) = store.failures()
    assert failure["label_hash"] == label_key(killer, ref) and "worker process died" in failure["error"]


def test_a_reference_hung_beyond_the_time_limit_fails_alone_and_the_rest_are_labelled(tmp_path):
    frames = copper(4)
    hung = frames[0][:7]
    store = LabelStore(tmp_path / "labels.db")
    ref = ASEReference(HangsOnSeven, "EMT", {"variant": "hangs"})
    start = time.perf_counter()
    summary = label(frames[:2] + [hung] + frames[2:], ref, store, max_workers=2, timeout=2.0, progress=False)
    assert time.perf_counter() - start < 60
    assert (summary.done, summary.failed) == (4, 1)
    assert {a.info["label_hash"] for a in store} == {label_key(a, ref) for a in frames}
    (failure,) = store.failures()
    assert failure["label_hash"] == label_key(hung, ref)
    assert failure["error"].startswith("LabelTimeout: the reference did not return within the 2 s time limit")


def water_in_a_box(tmp_path):
    from ase.build import molecule

    water = molecule("H2O", cell=[5.0, 5.2, 5.4], pbc=True)
    water.center()
    path = tmp_path / "water.extxyz"
    water.write(path)
    return water, path


def test_label_command_writes_store_report_and_plot(tmp_path, cli):
    water, path = water_in_a_box(tmp_path)
    out = tmp_path / "labels"
    result = cli("label", path, "-o", out, "--reference", "gfn1-xtb", "--workers", "1", "--generation", "4",
                 "--export", tmp_path / "labelled.extxyz", "--no-progress")
    assert result.status == 0, result.err
    assert result.out.startswith("1 labelled, 0 failed, 0 already stored")
    store = LabelStore(out / "labels.db")
    (atoms,) = list(store)
    direct = water.copy()
    direct.calc = XTB("GFN1-xTB").calculator()
    assert atoms.get_potential_energy() == pytest.approx(direct.get_potential_energy(), abs=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), direct.get_forces(), atol=1e-9)
    assert (atoms.info["generation"], atoms.info["frame"], atoms.info["source"]) == (4, 0, str(path))
    report = json.loads((out / "labelling.json").read_text())
    assert (report["reference"], report["done"], report["labelled_total"]) == ("GFN1-xTB", 1, 1)
    assert (out / "labelling.png").stat().st_size > 0
    assert len(ase.io.read(tmp_path / "labelled.extxyz", ":")) == 1
    again = cli("label", path, "-o", out, "--workers", "1", "--no-progress")  # default reference: gfn1-xtb
    assert again.status == 0 and again.out.startswith("0 labelled, 0 failed, 1 already stored")


@pytest.mark.parametrize("make_input, message", [
    (lambda tmp_path: tmp_path / "missing.extxyz", r"missing.extxyz: no such file"),
    (lambda tmp_path: (Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]]).write(tmp_path / "gas.extxyz"),
                       tmp_path / "gas.extxyz")[1], r"GFN1-xTB is a periodic method .* set a cell"),
])
def test_label_command_bad_input_is_one_line_and_status_1(tmp_path, cli, make_input, message):
    result = cli("label", make_input(tmp_path), "-o", tmp_path / "labels", "--workers", "1")
    assert result.status == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mofsnap label: error: ") and re.search(message, lines[0])
    assert not (tmp_path / "labels" / "labels.db").exists() or len(LabelStore(tmp_path / "labels" / "labels.db")) == 0
