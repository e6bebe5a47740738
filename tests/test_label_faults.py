"""Labelling under bad data, faults and concurrency: bad references, impossible inputs, concurrent writers,
damaged stores, history-independent xTB labels."""

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from mofsnap.atomtypes import assign_atom_types
from mofsnap.exceptions import ConfigurationError, LabelStoreError
from mofsnap.labelling import LabelChecks, LabelStore, label
from mofsnap.labelling.driver import _label_one
from mofsnap.reference import XTB, ASEReference

CALLS = []


class CountingEMT(EMT):
    """EMT that records every calculation (thread executors share CALLS)."""

    def calculate(self, atoms=None, properties=None, system_changes=None):
        CALLS.append(len(atoms))
        super().calculate(atoms, ["energy", "forces", "stress"], system_changes or [])


class NaNOnSeven(CountingEMT):
    """EMT whose energy is NaN for configurations of 7 atoms (a reference that silently breaks)."""

    def calculate(self, atoms=None, properties=None, system_changes=None):
        super().calculate(atoms, properties, system_changes)
        if len(atoms) == 7:
            self.results["energy"] = float("nan")


class AbsurdOnFirst(CountingEMT):
    """EMT that adds 1000 eV to configurations whose first atom sits left of x = 0.01 Å (one per batch)."""

    def calculate(self, atoms=None, properties=None, system_changes=None):
        super().calculate(atoms, properties, system_changes)
        if atoms.positions[0, 0] < 0.01:
            self.results["energy"] += 1000.0


class HugeForce(CountingEMT):
    """EMT with a 1e6 eV/Å force on atom 2."""

    def calculate(self, atoms=None, properties=None, system_changes=None):
        super().calculate(atoms, properties, system_changes)
        self.results["forces"][2] = [1e6, 0.0, 0.0]


def copper(n, shift_first=True):
    frames = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
        atoms.rattle(0.03, seed=i)
        atoms.positions[0, 0] = 0.05 + 0.001 * i  # only `absurd` frames go below 0.01
        frames.append(atoms)
    return frames


def label_with(frames, factory, store, **kwargs):
    CALLS.clear()
    with ThreadPoolExecutor(2) as pool:
        return label(frames, ASEReference(factory, "EMT", {"variant": factory.__name__}), store, executor=pool,
                     progress=False, **kwargs)


def test_nan_energy_is_stored_as_a_failure_never_as_a_label(tmp_path):
    frames = copper(3)
    broken = frames[0][:7]
    store = LabelStore(tmp_path / "labels.db")
    summary = label_with(frames + [broken], NaNOnSeven, store)
    assert (summary.done, summary.failed) == (3, 1)
    assert store.statuses()[summary.keys[3]] == "failed" and len(store) == 3
    assert "non-finite energy" in store.failures()[0]["error"]
    with pytest.raises(KeyError):
        store.get(summary.keys[3])


def test_absurd_energy_is_rejected_against_its_batch(tmp_path):
    frames = copper(5)
    frames[2].positions[0, 0] = 0.0  # AbsurdOnFirst adds 1000 eV to this one
    store = LabelStore(tmp_path / "labels.db")
    summary = label_with(frames, AbsurdOnFirst, store, checks=LabelChecks(max_energy_deviation=0.5))
    assert (summary.done, summary.failed) == (4, 1)
    statuses = store.statuses()
    assert [statuses[k] for k in summary.keys] == ["ok", "ok", "failed", "ok", "ok"]
    (failure,) = store.failures()
    assert failure["label_hash"] == summary.keys[2]
    assert "eV/atom from the median" in failure["error"] and "max_energy_deviation = 0.5" in failure["error"]
    # the next batch of the same composition is judged with the good labels already stored
    newcomer = copper(6)[5]
    newcomer.positions[0, 0] = 0.0
    again = label_with([newcomer], AbsurdOnFirst, store, checks=LabelChecks(max_energy_deviation=0.5))
    assert (again.done, again.failed) == (0, 1) and store.count_failures() == 2


def test_a_huge_force_is_a_failure_with_the_atom_named(tmp_path):
    store = LabelStore(tmp_path / "labels.db")
    summary = label_with(copper(2), HugeForce, store)
    assert (summary.done, summary.failed) == (0, 2) and len(store) == 0
    assert "largest force 1e+06 eV/Å on atom 2 exceeds max_force = 50 eV/Å" in store.failures()[0]["error"]


def typed_water():
    atoms = molecule("H2O", cell=[6.0, 6.2, 6.4], pbc=True)
    atoms.center()
    assign_atom_types(atoms)
    return atoms


def _overlap(atoms):
    atoms.positions[1] = atoms.positions[0] + [0.1, 0.0, 0.0]


def _dummy(atoms):
    atoms.numbers[2] = 0


def _nan_position(atoms):
    atoms.positions[1, 2] = np.nan


def _nan_cell(atoms):
    atoms.cell[0, 0] = np.inf


def _swapped_types(atoms):
    atoms.arrays["atom_types"] = atoms.arrays["atom_types"][[1, 0, 2]].copy()


@pytest.mark.parametrize("spoil, message", [
    (_overlap, r"configuration 1 \(H2O\): overlapping atoms closer than 0.5 Å: 0-1 at 0.10 Å; remove"),
    (_dummy, r"configuration 1 \(.*\): atom\(s\) 2 have atomic number\(s\) \[0\], not an element"),
    (_nan_position, r"configuration 1 \(H2O\): positions of atom\(s\) 1 are not finite \(NaN or inf\); drop"),
    (_nan_cell, r"configuration 1 \(H2O\): the cell is not finite"),
    (_swapped_types, r"atom types disagree with the geometry at 2 atom\(s\): 0 \(H1a, geometry gives O2a\), "
                     r"1 \(O2a, geometry gives H1a\); .* retype it with assign_atom_types"),
])
def test_impossible_inputs_are_refused_before_any_reference_call(tmp_path, spoil, message):
    good, bad = typed_water(), typed_water()
    spoil(bad)
    store = LabelStore(tmp_path / "labels.db")
    with pytest.raises(ConfigurationError, match=message):
        label_with([good, bad], CountingEMT, store)
    assert CALLS == [] and store.statuses() == {}


def test_types_check_can_be_switched_off_and_overlap_bound_is_configurable(tmp_path):
    bad = typed_water()
    _swapped_types(bad)
    store = LabelStore(tmp_path / "labels.db")
    assert label_with([bad], CountingEMT, store, checks=LabelChecks(check_types=False)).done == 1
    close = typed_water()
    with pytest.raises(ConfigurationError, match="closer than 1.5 Å"):
        label_with([close], CountingEMT, store, checks=LabelChecks(min_distance=1.5))


def test_the_database_refuses_a_second_row_of_the_same_key(tmp_path):
    frames = copper(2)
    store = LabelStore(tmp_path / "labels.db")
    summary = label_with(frames, CountingEMT, store)
    with sqlite3.connect(store.path) as con:
        row_id = con.execute("SELECT id FROM text_key_values WHERE key='label_hash' AND value=?",
                             (summary.keys[0],)).fetchone()[0]
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            con.execute("INSERT INTO text_key_values VALUES ('label_hash', ?, ?)", (summary.keys[0], row_id + 100))
    assert sorted(store.statuses()) == sorted(summary.keys)


def test_a_second_writer_gets_one_line_naming_the_holder_or_waits(tmp_path):
    first, second = LabelStore(tmp_path / "labels.db"), LabelStore(tmp_path / "labels.db")
    with first.writing():
        with pytest.raises(LabelStoreError, match=rf"is being written by process {os.getpid()} on .*; wait for it"):
            label(copper(1), ASEReference(EMT, "EMT"), second, progress=False)
        start = time.monotonic()
        with pytest.raises(LabelStoreError, match="lock_timeout"):
            with second.writing(wait=0.5):
                pass
        assert time.monotonic() - start >= 0.5
    assert label_with(copper(1), CountingEMT, second).done == 1  # released


HOLDER = """
import sys, time
from mofsnap.labelling import LabelStore
store = LabelStore(sys.argv[1])
with store.writing():
    print("holding", flush=True)
    time.sleep(600)
"""


def test_a_sigkilled_holder_releases_the_lock(tmp_path):
    db = tmp_path / "labels.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(LabelStoreError, match=f"process {holder.pid} on"):
            with LabelStore(db).writing():
                pass
    finally:
        holder.kill()
        holder.wait()
    with LabelStore(db).writing():  # no stale lock
        pass


WRITER = """
import sys, time
from ase.build import bulk
from ase.calculators.emt import EMT
from mofsnap.labelling import label
from mofsnap.reference import ASEReference

class SlowEMT(EMT):
    def calculate(self, *args, **kwargs):
        time.sleep(0.01)
        super().calculate(*args, **kwargs)

def frames():
    out = []
    for i in range(40):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.rattle(0.05, seed=i)
        out.append(atoms)
    return out

if __name__ == "__main__":
    summary = label(frames(), ASEReference(SlowEMT, "EMT"), sys.argv[1], max_workers=1, lock_timeout=120,
                    progress=False)
    print(summary.done, summary.skipped)
"""


def test_two_processes_labelling_the_same_frames_store_each_once(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER))
    db = tmp_path / "labels.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    writers = [subprocess.Popen([sys.executable, str(script), str(db)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], [err for _, err in outputs]
    counts = sorted(tuple(map(int, out.split())) for out, _ in outputs)
    assert counts == [(0, 40), (40, 0)]  # one labelled all, the other waited and found them stored
    with sqlite3.connect(db) as con:
        keys = [k for (k,) in con.execute("SELECT value FROM text_key_values WHERE key='label_hash'")]
    assert len(keys) == len(set(keys)) == 40
    assert len(LabelStore(db)) == 40


def test_empty_foreign_and_damaged_store_files_are_refused_with_the_fix(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(LabelStoreError, match=rf"{empty} is an empty file, not a database; delete it"):
        LabelStore(empty)
    foreign = tmp_path / "foreign.db"
    foreign.write_text("energy,forces\n1,2\n")
    with pytest.raises(LabelStoreError, match=rf"{foreign} is not an SQLite database .* restore it from a backup"):
        LabelStore(foreign)
    damaged = tmp_path / "damaged.db"
    store = LabelStore(damaged)
    label_with(copper(3), CountingEMT, store)
    data = bytearray(damaged.read_bytes())
    page = 4096 if len(data) > 8192 else 1024
    data[page:page + 2048] = os.urandom(2048)  # overwrite a page after the header
    damaged.write_bytes(bytes(data))
    with pytest.raises(LabelStoreError, match=rf"{damaged} is damaged .*sqlite3 {damaged} .recover"):
        LabelStore(damaged)


def test_label_command_on_a_damaged_store_is_one_line(tmp_path, cli):
    out = tmp_path / "labels"
    out.mkdir()
    (out / "labels.db").write_bytes(b"SQLite format 3\x00" + os.urandom(3000))
    frames = tmp_path / "frames.extxyz"
    typed_water().write(frames)
    result = cli("label", frames, "-o", out, "--workers", "1", "--no-progress")
    assert result.status == 1
    (line,) = result.err.strip().splitlines()
    assert line.startswith("mofsnap label: error: label store ") and "labels.db is damaged" in line
    assert "restore it from a backup" in line


def test_xtb_label_does_not_depend_on_the_previous_configuration_of_the_worker():
    first = bulk("Si", "diamond", a=5.43)
    first.rattle(0.05, seed=1)
    other = bulk("Si", "diamond", a=5.43)
    other.rattle(0.2, seed=2)
    reference = XTB()
    fresh = _label_one(reference, first, None)
    _label_one(reference, other, None)
    after = _label_one(reference, first, None)
    assert fresh["ok"] and after["ok"]
    assert fresh["energy"] == after["energy"]
    np.testing.assert_array_equal(fresh["forces"], after["forces"])
    np.testing.assert_array_equal(fresh["stress"], after["stress"])


def test_label_command_spin_choice_and_force_bound(tmp_path, cli):
    pair = bulk("Cu", "fcc", a=3.61, cubic=True)[:2]
    pair.positions[1] = [2.0, 2.0, 0.0]  # two Cu atoms 2.8 Å apart in a periodic cell
    pair.write(tmp_path / "cu2.extxyz")
    refused = cli("label", tmp_path / "cu2.extxyz", "-o", tmp_path / "cu", "--workers", "1", "--no-progress")
    assert refused.status == 1
    (line,) = refused.err.strip().splitlines()
    assert "2 open-shell metal atoms" in line and "--unpaired-electrons N" in line
    assert len(LabelStore(tmp_path / "cu" / "labels.db").statuses()) == 0
    typed_water().write(tmp_path / "water.extxyz")
    bounded = cli("label", tmp_path / "water.extxyz", "-o", tmp_path / "w", "--workers", "1", "--max-force", "1e-6",
                  "--no-progress")
    assert bounded.status == 0 and bounded.out.startswith("0 labelled, 1 failed")
    (failure,) = LabelStore(tmp_path / "w" / "labels.db").failures()
    assert "exceeds max_force = 1e-06 eV/Å" in failure["error"]


# ------------------------------------------------------------------ faults at every stage of a campaign

#: A small ethanol campaign labelled by bond springs (deterministic to the last bit, see tests/springs.py).
CAMPAIGN = dict(n_perturbed=8, temperatures=(100.0, 200.0), runs=3, md_steps=30, frame_interval=5, ramp_steps=20,
                ramp_segments=2, test_size=4, final_md_steps=20, hot_md_steps=10, twojmax=2, max_workers=1,
                label_timeout_s=1.0)
FAULT_REASONS = {"raise": "RuntimeError: SCF not converged",
                 "hang": "LabelTimeout: calculation exceeded the 1 s time limit",
                 "die": "worker process died (killed, out of memory or crashed) while labelling this configuration "
                        "alone",
                 "nan": "the reference returned a non-finite energy (nan)"}


@pytest.fixture(scope="module")
def faulty_campaigns(tmp_path_factory, ethanol_file):
    """The same campaign with a reference failing on the same configurations in each of the four ways."""
    from functools import partial

    import ase.io
    from springs import FaultySprings

    from mofsnap.learn import ActiveLearning, LearnSettings

    tmp = tmp_path_factory.mktemp("faults")
    ethanol = ase.io.read(ethanol_file)
    settings = LearnSettings(structure=str(ethanol_file), **CAMPAIGN)
    out = {}
    for fault in FAULT_REASONS:
        reference = ASEReference(partial(FaultySprings, ethanol, fault, every=2), "springs", {"k": 20.0})
        with ActiveLearning(workdir=tmp / fault, settings=settings, reference=reference, progress=False) as learner:
            out[fault] = (learner.run(), LabelStore(tmp / fault / "labels.db"))
    return out


@pytest.mark.parametrize("fault", list(FAULT_REASONS))
def test_a_reference_failing_at_every_stage_fails_only_its_configurations(faulty_campaigns, fault):
    """Raised, hung, dying or NaN: the configuration hit is stored as failed with its reason, at every stage
    (step 0, the generations, the test set), and the campaign ends exactly as with any other kind of fault."""
    summary, store = faulty_campaigns[fault]
    failures = store.failures()
    assert all(f["error"].startswith(FAULT_REASONS[fault]) for f in failures), [f["error"] for f in failures]
    assert {(f["generation"], f["role"]) for f in failures} >= {(0, "train"), (3, "test")}
    assert {f["generation"] for f in failures} & {1, 2}
    _, baseline = faulty_campaigns["raise"]
    assert sorted(f["label_hash"] for f in failures) == sorted(f["label_hash"] for f in baseline.failures())
    assert sorted(a.info["label_hash"] for a in store) == sorted(a.info["label_hash"] for a in baseline)
    np.testing.assert_array_equal(_coefficients(store.path.parent), _coefficients(baseline.path.parent))
    assert summary.labels == faulty_campaigns["raise"][0].labels


def _coefficients(workdir):
    from mofsnap.model import SNAPModel

    return SNAPModel.read(workdir / "final" / "model").coefficients


def test_a_script_without_main_guard_is_told_to_add_one(tmp_path):
    """Worker processes re-import the main script: unguarded work kills them while they start."""
    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent("""
        from ase.build import bulk
        from ase.calculators.emt import EMT
        from mofsnap import label
        from mofsnap.reference import ASEReference

        frames = [bulk("Cu", cubic=True).repeat(2) for _ in range(2)]
        frames[1].rattle(0.05, seed=1)
        label(frames, ASEReference(EMT, "EMT"), "labels.db", max_workers=2, progress=False)
    """))
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"mofsnap.exceptions.ExecutorUnavailableError: the worker processes died while starting; they import your "
        f"script {script} again, so keep its work under 'if __name__ == \"__main__\":' (see mofsnap.executors)")
