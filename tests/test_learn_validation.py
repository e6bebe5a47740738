"""Checks before and after an active-learning campaign: every setting validated at load (TOML and command line),
the commented ``--write-config`` file, the work-directory lock, and the closing validation's guards."""

import re
import tomllib
from dataclasses import fields, replace

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from mofsnap.atomtypes import assign_atom_types
from mofsnap.exceptions import LearnError
from mofsnap.learn import (DEMO, RMSE, ActiveLearning, FinalRecord, LearnSettings, LearnSummary, RefinementRound,
                           Validation, ValidationCheck, ValidationGuard, ValidationRun, WorkdirLock, validate)
from mofsnap.learn.replay import ReplayOutcome, StopReplay, StopReplays
from mofsnap.learn.validation import next_steps
from mofsnap.md import MDCheckpoint, checkpoint_path, run_md
from mofsnap.model import SNAPModel
from mofsnap.reference import CP2K, XTB
from mofsnap.structures import perpendicular_widths
from mofsnap.topology import Topology
from molecules import boxed
from springs import BondSprings


@pytest.mark.parametrize("text, message", [
    ('d3 = "false"\n', "setting 'd3' must be true or false, got 'false'"),
    ("max_force = -1\n", "setting 'max_force' must be greater than 0, got -1"),
    ("test_size = -2\n", "setting 'test_size' must be at least 1, got -2"),
    ("final_md_steps = -20\n", "setting 'final_md_steps' must be at least 1, got -20"),
    ('pressure_MPa = "1 atm"\n', "setting 'pressure_MPa' must be a number, got '1 atm'"),
    ("runs = 2.5\n", "setting 'runs' must be an integer, got 2.5"),
    ("runs = true\n", "setting 'runs' must be an integer, got True"),
    ("temperatures = [100, -5]\n", "setting 'temperatures' must be greater than 0, got -5"),
    ("temperatures = []\n", "setting 'temperatures' must be a list of numbers"),
    ("resolutions = {bond = -0.1}\n", "setting 'resolutions.bond' must be greater than 0"),
    ("relax_fmax = 0\n", "setting 'relax_fmax' must be greater than 0"),
    ("bond_tolerance = 0.9\n", "setting 'bond_tolerance' must be greater than 1"),
    ("max_workers = 0\n", "setting 'max_workers' must be at least 1"),
    ("unpaired_electrons = -2\n", "setting 'unpaired_electrons' must be at least 0, got -2"),
    ("displacement = nan\n", "setting 'displacement' must be finite"),
    ("structure = 5\n", "setting 'structure' must be a string"),
    ("selection = 'best'\n", "setting 'selection' must be one of"),
    ("runz = 3\n", "unknown settings"),
    ("runs = \n", "not a TOML file"),
    ("", "no settings in the file"),
    ("# only a comment\n", "no settings in the file"),
])
def test_bad_settings_files_are_refused_naming_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(LearnError) as error:
        LearnSettings.from_toml(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_binary_file_is_not_a_toml_file(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(LearnError, match="not a TOML file"):
        LearnSettings.from_toml(path)


def test_settings_made_in_python_are_checked_too():
    with pytest.raises(LearnError, match="setting 'runs' must be an integer"):
        LearnSettings(runs=2.5)
    with pytest.raises(LearnError, match="setting 'd3' must be true or false"):
        replace(DEMO, d3="false")
    settings = LearnSettings(temperatures=[100, 200], pressure_MPa=1, resolutions={"bond": 1})
    assert settings.temperatures == (100.0, 200.0) and type(settings.pressure_MPa) is float
    assert settings.resolutions == {"bond": 1.0} and type(settings.resolutions["bond"]) is float


def test_validation_lengths_default_to_the_stability_protocol():
    assert LearnSettings().final_md_steps >= 50000 and LearnSettings().hot_md_steps >= 10000  # 1 fs steps


@pytest.mark.parametrize("option", ["--workers", "--replay-stops"])
@pytest.mark.parametrize("value", ["0", "2.5", "-1"])
def test_bad_command_line_values_are_refused(cli, capsys, tmp_path, option, value):
    with pytest.raises(SystemExit) as done:
        cli("learn", "--write-config", tmp_path / "out.toml", option, value)
    assert done.value.code == 2 and f"argument {option}:" in capsys.readouterr().err
    assert not (tmp_path / "out.toml").exists()


def test_bad_config_is_refused_by_the_command_before_any_work(cli, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('d3 = "false"\n')
    r = cli("learn", config, "-o", tmp_path / "work")
    assert r.status == 1
    assert r.err == f"mofsnap learn: error: {config}: setting 'd3' must be true or false, got 'false'\n"
    assert not (tmp_path / "work").exists()


def test_a_cell_whose_spin_state_is_a_choice_is_refused_before_the_relaxation(cli, tmp_path):
    """Two Cu(II) in the cell and no unpaired_electrons: the command stops at once, naming the setting, with no
    relaxation, label or structure file written; with the setting the reference accepts the cell."""
    atoms = molecule("H2O")  # in the yz plane, O at the origin; a Cu on each side along x
    atoms += Atoms("Cu2", positions=[[1.95, 0.0, 0.0], [-1.95, 0.0, 0.0]])
    atoms.set_cell([10.0, 10.0, 10.0])
    atoms.center()
    atoms.pbc = True
    assign_atom_types(atoms)
    structure = tmp_path / "cu2.extxyz"
    ase.io.write(structure, atoms)
    config = tmp_path / "c.toml"
    config.write_text(replace(LearnSettings(), structure=str(structure), relax_fmax=0.1).to_toml())
    r = cli("learn", config, "-o", tmp_path / "work")
    assert r.status == 1
    error = r.err.splitlines()[-1]
    assert error.startswith("mofsnap learn: error: the cell has 2 open-shell metal atoms (2 Cu (1 unpaired each))")
    assert "set unpaired_electrons=N" in error and "e.g. 2 for high-spin ferromagnetic or 0" in error
    assert not (tmp_path / "work" / "structure_relaxed.extxyz").exists()
    assert not (tmp_path / "work" / "labels.db").exists()
    chosen = replace(LearnSettings(), structure=str(structure), unpaired_electrons=0)
    with ActiveLearning(workdir=tmp_path / "chosen", settings=chosen) as campaign:
        assert campaign.reference.unpaired_electrons_for(campaign.structure) == 0


def test_write_config_is_commented_with_every_key_and_its_meaning(cli, tmp_path):
    path = tmp_path / "my.toml"
    assert cli("learn", "--write-config", path).status == 0
    text = path.read_text()
    assert LearnSettings.from_toml(path) == LearnSettings()
    for f in fields(LearnSettings):
        assert f"\n{f.name} = " in text or f"\n# {f.name} =   (unset)" in text, f.name
    lines = text.splitlines()
    comment_of = {}
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            j = i
            while j > 0 and lines[j - 1] and not lines[j - 1].startswith("#"):
                j -= 1  # keys described together share the comment above the first
            comment_of[line.split(" =")[0]] = lines[j - 1]
    assert comment_of["relax_fmax" if "relax_fmax" in comment_of else "relax_steps"].startswith("#")
    assert "# Relax the atom positions of the structure with the reference" in text
    assert comment_of["strain"] == comment_of["n_perturbed"]
    assert "# Add Grimme D3(BJ) to SNAP in the active-learning and validation MD" in text and "# d3 =   (unset)" in text
    # the demo's relaxation is written as a live key
    assert cli("learn", "--demo", "--write-config", tmp_path / "demo.toml").status == 0
    assert tomllib.loads((tmp_path / "demo.toml").read_text())["relax_fmax"] == DEMO.relax_fmax


# ------------------------------------------------------------------------------------------------ lock


def test_a_second_learner_on_a_work_directory_is_refused_until_the_first_releases(tmp_path):
    first = WorkdirLock(tmp_path)
    assert (tmp_path / "lock").read_text().strip().isdigit()
    with pytest.raises(LearnError, match=r"is in use by another mofsnap learn process \(pid \d+\)"):
        WorkdirLock(tmp_path)
    first.release()
    second = WorkdirLock(tmp_path)
    assert second.held and not first.held
    second.release()


# ---------------------------------------------------------------------------------------- the validation


@pytest.fixture()
def ethanol():
    return boxed("CH3CH2OH")


def test_validation_guard_names_the_bond_the_atoms_and_the_time(ethanol):
    topology = Topology.from_atoms(ethanol)
    settings = LearnSettings(bond_tolerance=1.5, bond_break_fs=0)
    guard = ValidationGuard(topology, settings, 300.0, ethanol.get_volume())
    stretched = _stretched(ethanol, topology, 3.0)
    reason = guard(stretched, 250)
    types = ethanol.arrays["atom_types"]
    i, j = (int(x) for x in topology.bonds[0])
    assert reason.startswith("bond guard: ")
    assert f"{types[i]} (atom {i})" in reason and f"{types[j]} (atom {j})" in reason
    assert "at 0.250 ps (step 250)" in reason
    ethanol.calc = _zero_forces(ethanol)
    assert guard(ethanol, 1) is None
    squeezed = ethanol.copy()
    squeezed.set_cell(ethanol.cell * 1.2, scale_atoms=False)
    squeezed.calc = _zero_forces(squeezed)
    assert guard(squeezed, 3).startswith("volume guard: volume +72.8 %")


def test_a_bond_is_broken_only_once_it_has_stayed_beyond_the_tolerance_for_bond_break_fs(ethanol):
    """A 60 fs excursion to 1.6 x (a vibration) passes; the same stretch held for 100 fs stops the run, at the
    100th fs, naming when it began."""
    topology = Topology.from_atoms(ethanol)
    guard = ValidationGuard(topology, LearnSettings(bond_tolerance=1.5, bond_break_fs=100), 500.0,
                            ethanol.get_volume())
    intact, stretched = _stretched(ethanol, topology, 1.0), _stretched(ethanol, topology, 1.6)
    assert all(guard(stretched, step) is None for step in range(1, 61))
    assert guard(intact, 61) is None
    reasons = [guard(stretched, step) for step in range(62, 200)]
    first = next(k for k, reason in enumerate(reasons) if reason is not None)
    assert first + 62 == 162
    assert "since 0.062 ps, at 0.162 ps (step 162)" in reasons[first]


def test_the_bond_memory_of_a_validation_guard_resumes_with_its_run(tmp_path, ethanol):
    """Killed in the middle of the excursion that stops it and resumed, the run stops at the step and with the
    reason of the uninterrupted run: the guard's memory is in the MD checkpoint. Springs 5 % longer than the
    structure's bonds hold them beyond the 1.02 x tolerance after a few vibrations."""
    topology = Topology.from_atoms(ethanol)
    settings = LearnSettings(bond_tolerance=1.02, bond_break_fs=30)
    longer = ethanol.copy()
    longer.positions = longer.positions.mean(axis=0) + 1.05 * (ethanol.positions - ethanol.positions.mean(axis=0))

    def run(name, steps):
        atoms = ethanol.copy()
        atoms.calc = BondSprings(longer)
        return run_md(atoms, steps, ensemble="nve", temperature_K=300, seed=1, interval=5, progress=False,
                      trajectory=tmp_path / f"{name}.extxyz",
                      guard=ValidationGuard(topology, settings, 300.0, ethanol.get_volume()))

    straight = run("straight", 2000)
    assert straight.stopped is not None and straight.stopped.startswith("bond guard: ")
    since = round(1000 * float(re.search(r"since ([0-9.]+) ps", straight.stopped)[1]))
    killed_at = (since + straight.steps) // 2
    assert since < killed_at < straight.steps
    run("killed", killed_at)
    resumed = run("killed", 2000)
    assert (resumed.steps, resumed.stopped) == (straight.steps, straight.stopped)


def _zero_forces(atoms):
    """A calculator result of zero forces (the guard reads forces; the temperature comes from the momenta)."""
    return SinglePointCalculator(atoms, forces=np.zeros((len(atoms), 3)))


def _stretched(atoms, topology, factor):
    """``atoms`` with the first bond of ``topology`` at ``factor`` times its length (zero forces)."""
    stretched = atoms.copy()
    i, j = (int(x) for x in topology.bonds[0])
    stretched.positions[j] += (factor - 1.0) * (stretched.positions[j] - stretched.positions[i])
    stretched.calc = _zero_forces(stretched)
    return stretched


def test_a_model_that_knows_nothing_fails_validation_loudly(tmp_path, ethanol):
    """Zero SNAP coefficients: only D3 holds the molecule, its bonds break, the test errors are huge."""
    from mofsnap.learn import RMSE

    model = SNAPModel(sorted(set(ethanol.arrays["atom_types"])), twojmax=2)
    settings = LearnSettings(temperatures=(400.0,), final_md_steps=400, hot_md_steps=10)
    test = RMSE(50.0, 2000.0, 10.0, 3)
    validation = validate(model, ethanol, Topology.from_atoms(ethanol), settings, test, tmp_path, d3=True, progress=False)
    assert not validation.passed
    assert Validation.read(tmp_path / "validation.json") == validation
    assert (tmp_path / "validation.png").stat().st_size > 1000
    checks = {c.name: c for c in validation.checks}
    assert not checks["test errors"].passed
    assert checks["test errors"].detail == "energy 50 meV/atom > 5; forces 2e+03 meV/Å > 300"
    run = validation.runs[0]
    assert run.stopped.startswith(("bond guard", "volume guard")) and run.steps < settings.final_md_steps
    assert not checks["300 K NPT run"].passed and checks["300 K NPT run"].detail == run.stopped
    assert validation.verdict.startswith("validation failed: 300 K NPT run: " + run.stopped)
    # the trajectory ends at the last good state; the checkpoint beside it keeps why the run ended there
    assert ase.io.read(run.trajectory, -1).info["md_step"] == run.steps
    assert MDCheckpoint.read(checkpoint_path(run.trajectory)).stopped == run.stopped
    # read back, not rerun
    assert validate(model, ethanol, Topology.from_atoms(ethanol), settings, test, tmp_path, d3=True) == validation


def test_a_validation_to_learn_from_ends_at_its_first_failure(tmp_path, ethanol):
    """The shorter (hot) run goes first; the guard stops it, and the 300 K run and the lattice check are skipped."""
    model = SNAPModel(sorted(set(ethanol.arrays["atom_types"])), twojmax=2)
    settings = LearnSettings(temperatures=(400.0,), final_md_steps=4000, hot_md_steps=400)
    validation = validate(model, ethanol, Topology.from_atoms(ethanol), settings, None, tmp_path, d3=True,
                          progress=False, stop_at_first_failure=True)
    (run,) = validation.runs
    assert run.temperature_K == 400.0 and run.stopped is not None and run.steps < 400
    assert [c.name for c in validation.checks] == ["400 K NPT run", "test errors"] and not validation.passed
    assert not (tmp_path / "validation_300K.extxyz").exists()


def test_a_validation_continues_in_a_renamed_work_directory(tmp_path, ethanol):
    """A validation that ended at its first stopped run, continued in full after its directory was renamed,
    reads that run back (its recorded path names the old directory) and runs the other."""
    model = SNAPModel(sorted(set(ethanol.arrays["atom_types"])), twojmax=2)
    settings = LearnSettings(temperatures=(400.0,), final_md_steps=4000, hot_md_steps=400)
    topology = Topology.from_atoms(ethanol)
    first = validate(model, ethanol, topology, settings, None, tmp_path / "old", d3=True, progress=False,
                     stop_at_first_failure=True)
    (tmp_path / "old").rename(tmp_path / "new")
    (tmp_path / "new" / "validation.json").unlink()
    full = validate(model, ethanol, topology, settings, None, tmp_path / "new", d3=True, progress=False)
    assert [r.temperature_K for r in full.runs] == [300.0, 400.0]
    assert full.runs[1] == first.runs[0]


def test_a_campaign_that_fails_validation_exits_non_zero_after_writing_everything(cli, tmp_path, ethanol):
    """A whole tiny campaign with GFN1-xTB through the command; a test-error limit no model meets fails it."""
    from mofsnap.learn import LearnSummary

    structure = tmp_path / "ethanol.extxyz"
    ase.io.write(structure, ethanol)
    settings = LearnSettings(structure=str(structure), n_perturbed=3, temperatures=(100.0,), runs=1, md_steps=10,
                             frame_interval=5, ramp_steps=10, ramp_segments=1, test_size=2, final_md_steps=20,
                             hot_md_steps=10, twojmax=2, max_workers=1, max_test_forces=1e-6, refine_rounds=0)
    config = tmp_path / "learn.toml"
    config.write_text(settings.to_toml())
    work = tmp_path / "work"
    r = cli("learn", config, "-o", work, "-q")
    error = r.err.splitlines()[-1]
    assert r.status == 1 and error.startswith("mofsnap learn: error: validation failed: ")
    assert "; test errors: " in error and "meV/Å > 1e-06" in error and f"everything is written in {work}" in error
    next_line = error.split("; next: ")[1]  # forces 1e-6 meV/Å: no fit is within twice its own error of that
    assert "the model's error on its own training labels is at least half its test error (forces " in next_line
    summary = LearnSummary.read(work / "summary.json")
    assert not summary.validation.passed and summary.validation == Validation.read(work / "final" / "validation.json")
    assert summary.refinements == []  # refine_rounds = 0
    assert "FAIL  test errors: " in r.out and (work / "final" / "validation.png").exists()
    # the model of 3 perturbed copies (2J = 2) runs away in its 300 K run; the line says how to tell whose failure
    (stopped,) = [run for run in summary.validation.runs if run.stopped]
    hint = ", unless the reference itself breaks there (--replay-stops 100 tells)"
    assert stopped.temperature_K == 300.0 and hint in next_line
    # resumed: nothing is redone, the same verdict and exit status; the stop replayed: GFN1-xTB keeps ethanol
    # intact at 300 K, so the failure is the model's and the hint has done its work
    again = cli("learn", config, "-o", work, "-q", "--replay-stops", "10")
    assert again.status == 1 and again.err.splitlines()[-1] == error.replace(hint, "")
    (replay,) = StopReplays.read(work / "final" / "replays.json").replays
    assert replay.stopped == stopped.stopped and replay.reference.stopped is None
    assert f"replay: {replay.line()}" in again.out.splitlines()
    assert replay.line().endswith("the failure is the model's")


def _failed(train: RMSE, test: RMSE, stopped: bool = False, lattice_ok: bool = True, rounds: int = 0
            ) -> LearnSummary:
    """A summary whose validation failed as told (a stopped 300 K run, the test errors, the lattice)."""
    run = ValidationRun(300.0, 100, 40 if stopped else 100, "force guard: 25 eV/Å on H1a" if stopped else None, 1.0,
                        300.0, 1000.0, 0.01, [10.0, 10.0, 10.0], "v300.extxyz")
    checks = [ValidationCheck("300 K NPT run", not stopped, run.stopped or "stable"),
              ValidationCheck("test errors", True, "-"), ValidationCheck("300 K lattice", lattice_ok, "-")]
    validation = Validation([run], test, checks)
    rounds_done = [RefinementRound(k, 2 + k, validation, 3, 3, test, train, test) for k in range(1, rounds + 1)]
    return LearnSummary([], FinalRecord("final/model", train, test), validation, 10, 0, 1.0, rounds_done)


def test_next_steps_after_a_failed_validation_follow_what_failed():
    settings = LearnSettings(max_test_energy=5.0, max_test_forces=300.0, max_test_stress=200.0, refine_rounds=2,
                             runs=7, twojmax=6, stress_weight=0.5)
    test = RMSE(6.0, 250.0, 150.0, 30)  # only the energy is over its limit
    # the training error at half the test error or more: the model's own limit (at exactly half, too)
    for train_energy in (3.0, 6.5):
        line = next_steps(_failed(RMSE(train_energy, 400.0, 50.0, 90), test), settings)
        assert line.startswith("the model's error on its own training labels is at least half its test error "
                               f"(energy {train_energy:.3g} meV/atom against 6 on the test frames)")
        assert "twojmax = 6" in line and "(max_test_energy)" in line and "forces" not in line
    # well below: too few labels
    line = next_steps(_failed(RMSE(2.9, 400.0, 50.0, 90), test), settings)
    assert line == ("the model fits its training labels (energy 2.9 meV/atom) far better than the test frames: "
                    "more labels should help (runs = 7, n_perturbed = 300)")
    fine = RMSE(1.0, 100.0, 50.0, 30)
    assert next_steps(_failed(fine, fine, stopped=True, rounds=2), settings).startswith(
        "the MD still stops after 2 refinement round(s): allow more (refine_rounds = 2)")
    assert next_steps(_failed(fine, fine, stopped=True, rounds=1), settings).startswith(
        "refinement ended after 1 round(s) because no frame before the stop could be labelled")
    assert next_steps(_failed(fine, fine, lattice_ok=False), settings) == (
        "the 300 K cell is off, so the model's stress is: weigh it more (stress_weight = 0.5) and check that the "
        "reference relaxation converged")
    both = next_steps(_failed(fine, test, stopped=True, lattice_ok=False, rounds=2), settings)
    assert both.count("; ") == 2 and "refine_rounds" in both and "more labels should help" in both


def _replayed(reference_stops: bool) -> StopReplays:
    """A replay of a force-guard stop after which the reference stops too, or stays intact."""
    model = ReplayOutcome("force guard: 25 eV/Å on H1a (atom 7) > 20 eV/Å at 0.040 ps (step 40)", 40, 1.3)
    reference = ReplayOutcome(model.stopped if reference_stops else None, 40 if reference_stops else 200, 1.2)
    return StopReplays(100, [StopReplay(300.0, "force guard: 25 eV/Å on H1a", 0.9, 200, model, reference)])


def test_next_steps_after_stops_follow_whose_failure_the_replays_found():
    settings = LearnSettings(refine_rounds=2)
    fine = RMSE(1.0, 100.0, 50.0, 30)
    summary = _failed(fine, fine, stopped=True, rounds=2)
    assert next_steps(summary, settings).endswith(", unless the reference itself breaks there (--replay-stops 100 "
                                                  "tells)")
    model_fails = next_steps(summary, settings, _replayed(reference_stops=False))
    assert model_fails.startswith("the MD still stops after 2 refinement round(s)")
    assert "--replay-stops" not in model_fails
    reference_fails = next_steps(summary, settings, _replayed(reference_stops=True))
    assert reference_fails.startswith("the reference stops too in 1 of 1 replay(s) (force guard: 25 eV/Å on H1a")
    assert "(bond_tolerance = 1.5, bond_break_fs = 100, max_force = 20)" in reference_fails
    assert "refine_rounds" not in reference_fails


def test_a_new_campaign_warns_before_any_work_when_the_reference_sees_no_gap(tmp_path, caplog):
    """O2 counted closed-shell has no gap (tests/test_reference.py): the campaign says so before it labels."""
    oxygen = boxed("O2", 8.0)
    with caplog.at_level("WARNING", logger="mofsnap"), ActiveLearning(oxygen, tmp_path, LearnSettings(twojmax=2)):
        pass
    assert [r.getMessage()[:49] for r in caplog.records] == ["GFN1-xTB finds almost no gap between the occupied"]


# -------------------------------------------------------------------------------------- the SNAP-ready cell


def test_a_cell_too_narrow_for_the_cutoff_becomes_the_smallest_snap_ready_supercell_before_any_label(
        tmp_path, ethanol, caplog):
    from mofsnap.learn import ActiveLearning

    narrow = ethanol.copy()
    narrow.set_cell([9.0, 9.0, 7.0])  # the twojmax=2 model's cutoff is 3.6 Å: 7.0 < 2 x 3.6 along c
    narrow.center()
    settings = LearnSettings(twojmax=2)
    with caplog.at_level("INFO", logger="mofsnap"), ActiveLearning(narrow, tmp_path, settings) as learner:
        cutoff = learner.model().cutoff
        assert 7.0 < 2 * cutoff < 9.0
        matrix = np.linalg.solve(narrow.cell.array.T, learner.structure.cell.array.T).T
        np.testing.assert_allclose(matrix, np.rint(matrix), atol=1e-9)  # a supercell of the narrow cell
        assert round(np.linalg.det(matrix)) == 2 and len(learner.structure) == 2 * len(narrow)
        assert (perpendicular_widths(learner.structure.cell.array) > 2 * cutoff).all()
        assert sorted(learner.structure.arrays["atom_types"]) == sorted(2 * list(narrow.arrays["atom_types"]))
        assert len(learner.store) == 0
        assert len(ase.io.read(tmp_path / "structure.extxyz")) == 2 * len(narrow)  # what the campaign labels
    assert "supercell (2 cells), 18 atoms (perpendicular widths" in caplog.text


def test_d3_follows_the_dispersion_of_the_labels(tmp_path, ethanol):
    assert XTB().includes_dispersion  # GFN1-xTB carries D3(BJ): its models must not get D3 again
    assert not CP2K(preset="training").includes_dispersion and CP2K(preset="optimisation").includes_dispersion
    with ActiveLearning(ethanol, tmp_path / "auto", LearnSettings(), reference=XTB()) as learner:
        assert learner.d3 is False
    with ActiveLearning(ethanol, tmp_path / "pbe", LearnSettings(), reference=CP2K(preset="training")) as learner:
        assert learner.d3 is True
    with pytest.raises(LearnError, match="already contain dispersion: the model would count it twice"):
        ActiveLearning(ethanol, tmp_path / "twice", LearnSettings(d3=True), reference=XTB())
