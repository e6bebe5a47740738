"""SNAP fitting: dense least-squares equality, exact recovery of a known model, learning from GFN1-xTB,
SNAPCalculator round trip, extrapolation grade, result files, bad input, command line."""

import json
import re

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from mofsnap.calculator import SNAPCalculator
from mofsnap.descriptors import SnapDescriptors
import mofsnap.fit.search
from mofsnap.exceptions import FitError, ResultFileError
from mofsnap.fit import (FitReport, HyperparameterSearch, LearningCurve, NormalEquations, extrapolation_grade,
                         fit_snap, learning_curve, objective, optimize_hyperparameters)
from mofsnap.fit.leastsquares import KINDS, REPORT_UNITS
from mofsnap.model import SNAPModel
from mofsnap.units import ENERGY_WEIGHT, STRESS_WEIGHT
from test_descriptors import random_configuration, small_model


def labelled(atoms: Atoms, calc) -> Atoms:
    """A copy carrying ``calc``'s energy, forces and stress in a SinglePointCalculator."""
    atoms = atoms.copy()
    atoms.calc = calc
    results = dict(energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress())
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def test_accumulated_solution_equals_dense_weighted_ridge_least_squares():
    rng = np.random.default_rng(0)
    ncol, ew, sw, alpha = 7, 3.0, 40.0, 0.05
    eq = NormalEquations(ncol)
    dense_a, dense_b = [], []
    for _ in range(9):
        n = int(rng.integers(2, 5))
        rows, target, w = rng.normal(size=(1 + 3 * n + 6, ncol)), rng.normal(size=1 + 3 * n + 6), rng.uniform(0.5, 2)
        eq.add(rows, target, n, w)
        scale = np.r_[ew / n, np.ones(3 * n), sw * np.ones(6)] * w
        dense_a.append(rows * scale[:, None])
        dense_b.append(target * scale)
    a, b = np.vstack(dense_a), np.concatenate(dense_b)
    augmented = np.vstack([a, np.sqrt(alpha) * np.eye(ncol)])
    expected = np.linalg.lstsq(augmented, np.r_[b, np.zeros(ncol)], rcond=None)[0]
    np.testing.assert_allclose(eq.solve(alpha, ew, sw), expected, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(eq.gram(ew, sw), a.T @ a, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(eq.rhs(ew, sw), a.T @ b, rtol=1e-11, atol=1e-11)


def test_known_snap_model_is_recovered_and_reproduced_by_snap_calculator(tmp_path):
    rng = np.random.default_rng(1)
    truth = small_model()
    truth.coefficients = rng.normal(scale=0.05, size=truth.coefficients.shape)
    prefix = tmp_path / "truth"
    truth.write(prefix)
    calc = SNAPCalculator(str(prefix))
    train = [labelled(random_configuration(s), calc) for s in range(8)]
    model, report = fit_snap(train, model=small_model(), alpha=0.0, progress=False, cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(model.coefficients, truth.coefficients, rtol=0, atol=1e-10)
    assert report.metrics["train"]["forces_rmse"] < 1e-8  # meV/Å

    # the written fit, loaded by SNAPCalculator, reproduces the fit's own predictions to round-off
    model.write(tmp_path / "fitted")
    fitted = SNAPCalculator(str(tmp_path / "fitted"))
    with SnapDescriptors(model) as snap:
        for atoms in train:
            n = len(atoms)
            predicted = snap.rows(atoms) @ model.coefficients.ravel()
            probe = atoms.copy()
            probe.calc = fitted
            assert probe.get_potential_energy() == pytest.approx(predicted[0], abs=1e-9)
            np.testing.assert_allclose(probe.get_forces(), predicted[1:1 + 3 * n].reshape(n, 3), atol=1e-9)
            np.testing.assert_allclose(probe.get_stress(), predicted[-6:], rtol=1e-9, atol=1e-13)


def test_extrapolation_grade_is_the_leverage():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(30, 5))
    gram = a.T @ a
    hat = a @ np.linalg.solve(gram, a.T)
    grades = [extrapolation_grade(gram, row) for row in a]
    np.testing.assert_allclose(grades, np.diag(hat), rtol=1e-10)
    assert sum(grades) == pytest.approx(5.0, rel=1e-10)  # trace of the hat matrix = rank
    assert extrapolation_grade(gram, 3 * a[:4]) == pytest.approx(9 * max(grades[:4]), rel=1e-10)
    # an orthonormal training basis: the grade of a row is its squared length
    assert extrapolation_grade(np.eye(3), np.array([[0.0, 2.0, 0.0], [1.0, 1.0, 0.0]])) == pytest.approx(4.0)


METHANOL_TYPES = ["C4a", "O2a", "H1a", "H1b", "H1a", "H1a"]  # ase.build.molecule("CH3OH") order; H1b on O


def methanol_model() -> SNAPModel:
    return SNAPModel(["C4a", "H1a", "H1b", "O2a"], radii=[0.5, 0.4, 0.4, 0.5], weights=[1.0, 0.5, 0.5, 0.9],
                     twojmax=4, rcutfac=3.0, rfac0=0.95)


@pytest.fixture(scope="module")
def xtb_data():
    """Randomly perturbed and strained cells of two methanol molecules labelled with GFN1-xTB (tblite)."""
    from ase.build import molecule
    from tblite.ase import TBLite

    rng = np.random.default_rng(7)
    calc = TBLite(method="GFN1-xTB", verbosity=0)
    first, second = molecule("CH3OH"), molecule("CH3OH")
    second.rotate(120, "z")
    second.translate([3.4, 3.6, 3.5])
    base = first + second
    base.set_cell([[7.0, 0.0, 0.0], [0.4, 7.2, 0.0], [0.3, -0.2, 7.4]])
    base.pbc = True
    base.arrays["atom_types"] = np.array(METHANOL_TYPES * 2)
    images = []
    for _ in range(80):
        atoms = base.copy()
        strain = np.eye(3) + rng.uniform(-0.03, 0.03, size=(3, 3))
        atoms.set_cell(base.cell.array @ (strain + strain.T) / 2, scale_atoms=True)
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        images.append(labelled(atoms, calc))
    return images


def test_fit_learns_gfn1_xtb_and_improves_with_data(xtb_data, tmp_path):
    train, valid = xtb_data[:60], xtb_data[60:]
    model, report = fit_snap(train, valid, model=methanol_model(), progress=False, cache_dir=tmp_path)
    _, small = fit_snap(train[:6], valid, model=methanol_model(), progress=False, cache_dir=tmp_path)
    v = report.metrics["validation"]
    # a constant-energy (training mean), zero-force, zero-stress model
    energies = np.array([a.get_potential_energy() / len(a) for a in xtb_data])
    forces = np.concatenate([a.get_forces().ravel() for a in valid])
    e_const = np.sqrt(np.mean((energies[60:] - energies[:60].mean()) ** 2)) * 1e3
    assert v["energy_rmse"] < 0.3 * e_const
    assert v["forces_rmse"] < 0.3 * np.sqrt(np.mean(forces ** 2)) * 1e3
    assert v["forces_rmse"] < 0.8 * small.metrics["validation"]["forces_rmse"]
    assert v["energy_rmse"] < small.metrics["validation"]["energy_rmse"]
    assert report.alpha_selection == "validation set"
    assert set(v["forces_rmse_by_type"]) == set(model.types)
    png = report.plot(tmp_path / "parity.png")
    assert png.stat().st_size > 10_000
    data = json.loads(report.write(tmp_path / "report.json").read_text())
    assert data["reference_subtracted"] == "none"
    assert data["metrics"]["validation"]["forces_rmse"] == v["forces_rmse"]


def assert_reports_equal(read: FitReport, written: FitReport) -> None:
    """Every field of two reports is equal: numbers exactly, arrays element by element."""
    for name in ("metrics", "alpha", "energy_weight", "stress_weight", "alpha_selection", "reference",
                 "alpha_scan", "timings"):
        assert getattr(read, name) == getattr(written, name), name
    assert read.equations.n_columns == written.equations.n_columns
    assert read.equations.n_configurations == written.equations.n_configurations
    for kind in KINDS:
        np.testing.assert_array_equal(read.equations.factors[kind].factor(), written.equations.factors[kind].factor())
        assert read.equations.factors[kind].rows == written.equations.factors[kind].rows
    assert read.parity.keys() == written.parity.keys()
    for name, data in written.parity.items():
        assert read.parity[name].keys() == data.keys()
        for kind, (ref, pred) in data.items():
            np.testing.assert_array_equal(read.parity[name][kind][0], ref)
            np.testing.assert_array_equal(read.parity[name][kind][1], pred)


def test_fit_report_write_read_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(5)
    truth = small_model()
    truth.coefficients = rng.normal(scale=0.05, size=truth.coefficients.shape)
    truth.write(tmp_path / "truth")
    images = [labelled(random_configuration(s), SNAPCalculator(str(tmp_path / "truth"))) for s in range(5)]
    for atoms in images:  # labels that no model reproduces exactly: errors and scores are not zero
        atoms.calc.results["forces"] = atoms.calc.results["forces"] + rng.normal(scale=0.01, size=(len(atoms), 3))
    _, report = fit_snap(images[:3], images[3:], model=small_model(), progress=False)
    assert report.alpha_scan and report.parity["validation"]["forces"][0].size == 3 * 12 * 2
    read = FitReport.read(report.write(tmp_path / "report.json"))
    assert_reports_equal(read, report)
    np.testing.assert_array_equal(read.gram, report.gram)
    beta = rng.normal(size=report.equations.n_columns)
    assert read.equations.rmse(beta) == report.equations.rmse(beta)
    np.testing.assert_array_equal(read.equations.solve(1e-3, 10.0, 100.0), report.equations.solve(1e-3, 10.0, 100.0))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"mofsnap_result": "learning-curve", "version": 1}))
    with pytest.raises(ResultFileError, match="not a fit-report"):
        FitReport.read(other)
    with pytest.raises(ResultFileError, match="no such result file"):
        FitReport.read(tmp_path / "missing.json")


@pytest.mark.parametrize("spoil, message", [
    (lambda a: setattr(a, "calc", None), r"configuration 2 .*lacks a reference energy"),
    (lambda a: a.calc.results["forces"].__setitem__((0, 0), np.nan), r"configuration 2 .*NaN"),
    (lambda a: a.calc.results.__setitem__("forces", a.calc.results["forces"][:-1]), r"configuration 2 .*atoms"),
    (lambda a: a.calc.results.pop("stress"), r"configuration 2 .*stress"),
])
def test_bad_training_data_is_named(spoil, message):
    calc = SinglePointCalculator
    images = []
    for s in range(3):
        atoms = random_configuration(s)
        atoms.calc = calc(atoms, energy=1.0, forces=np.zeros((len(atoms), 3)), stress=np.zeros(6))
        images.append(atoms)
    spoil(images[2])
    with pytest.raises(FitError, match=message):
        fit_snap(images, model=small_model(), alpha=1e-6, progress=False)


def test_cross_validation_and_reference_subtraction(xtb_data):
    train = xtb_data[:30]
    base = SNAPModel(["C4a", "H1a", "H1b", "O2a"], twojmax=2, rcutfac=3.0, radii=[0.5, 0.4, 0.4, 0.5])
    base.coefficients[:, 1:] = 0.01  # any potential will do as the reference
    reference = SNAPCalculator(base)
    model, report = fit_snap(train, model=methanol_model(), cv=3, reference=reference, progress=False)
    assert report.alpha_selection == "3-fold cross-validation"
    assert report.reference.startswith("SNAPCalculator")
    # the reported errors are those of SNAP + reference against the labels
    atoms = train[0].copy()
    with SnapDescriptors(model) as snap:
        snap_part = snap.rows(atoms) @ model.coefficients.ravel()
    atoms.calc = reference
    total = snap_part[1:-6].reshape(-1, 3) + atoms.get_forces()
    ref, pred = report.parity["train"]["forces"]
    np.testing.assert_allclose(pred[:total.size], total.ravel(), atol=1e-10)
    np.testing.assert_allclose(ref[:total.size], train[0].get_forces().ravel(), atol=1e-12)


def test_hyperparameter_search_improves_is_seeded_and_resumes(xtb_data, tmp_path, monkeypatch):
    train, valid = xtb_data[:30], xtb_data[30:45]
    start = methanol_model()
    _, plain = fit_snap(train, valid, model=start, alpha=1e-6, progress=False)
    calls = []  # descriptor passes of the search itself (the final fit_snap is not counted)
    original = mofsnap.fit.search.accumulate_equations
    monkeypatch.setattr(mofsnap.fit.search, "accumulate_equations",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    kwargs = dict(tune=("rfac0", "weights"), n_evaluations=6, seed=3, progress=False)
    model, report, search = optimize_hyperparameters(train, valid, start, log_file=tmp_path / "log.jsonl", **kwargs)
    assert len(search.history) == 6
    assert search.objective <= min(h["objective"] for h in search.history)
    assert search.objective <= objective({k: plain.metrics["validation"][f"{k}_rmse"] / f
                                          for k, (_, f) in REPORT_UNITS.items()}) + 1e-9
    assert 0.7 <= search.best["rfac0"] <= 0.99
    n_distinct = len({json.dumps(h["params"], sort_keys=True) for h in search.history})
    assert len(calls) == 2 * n_distinct  # one pass over train and one over validation per new evaluation
    again = optimize_hyperparameters(train, valid, start, log_file=tmp_path / "log.jsonl", **kwargs)[2]
    assert len(calls) == 2 * n_distinct  # the rerun replayed every evaluation from the log
    assert again.history == search.history
    read = HyperparameterSearch.read(search.write(tmp_path / "search.json"))
    assert (read.best, read.objective, read.history) == (search.best, search.objective, search.history)


def test_learning_curve_decreases(xtb_data, tmp_path):
    curve = learning_curve(xtb_data[:60], xtb_data[60:], sizes=[4, 15, 60], model=methanol_model(), progress=False)
    forces = [m["validation"]["forces_rmse"] for m in curve.metrics]
    assert curve.sizes == [4, 15, 60] and forces[2] < forces[0]
    assert curve.plot(tmp_path / "lc.png").stat().st_size > 10_000
    read = LearningCurve.read(curve.write(tmp_path / "lc.json"))
    assert (read.sizes, read.labels, read.metrics) == (curve.sizes, curve.labels, curve.metrics)


def test_command_line_writes_model_report_and_plot(xtb_data, tmp_path, cli):
    write(tmp_path / "train.extxyz", xtb_data[:20])
    write(tmp_path / "valid.extxyz", xtb_data[60:])
    out = tmp_path / "model"
    result = cli("fit", tmp_path / "train.extxyz", "--valid", tmp_path / "valid.extxyz", "-o", out, "--twojmax", "2",
                 "--rcutfac", "3.0", "--radius", "C4a=0.5", "--radius", "O2a=0.5", "--quiet")
    assert result.status == 0, result.err
    model = SNAPModel.read(out / "snap")
    assert model.types == ["C4a", "H1a", "H1b", "O2a"] and model.radii[0] == 0.5 and model.twojmax == 2
    report = FitReport.read(out / "report.json")
    assert report.metrics["validation"]["n_configurations"] == 20
    assert report.energy_weight == ENERGY_WEIGHT and report.stress_weight == STRESS_WEIGHT
    assert f"validation: energy {report.metrics['validation']['energy_rmse']:.3f} meV/atom" in result.out
    assert (out / "parity.png").stat().st_size > 10_000
    assert "forces,rmse,H1b" in (out / "report.csv").read_text().replace("validation,", "")


@pytest.mark.parametrize("arguments, message", [
    (("--radius", "Zn4a=0.5"), r"--radius: type Zn4a does not occur in the training data; choose from C4a, "),
    (("--learning-curve", "5,10"), r"--optimize and --learning-curve need a validation set"),
    (("--valid", "missing.extxyz"), r"missing.extxyz: no such file"),
])
def test_command_line_bad_input_is_one_line_and_status_1(xtb_data, tmp_path, monkeypatch, cli, arguments, message):
    monkeypatch.chdir(tmp_path)
    write("train.extxyz", xtb_data[:3])
    result = cli("fit", "train.extxyz", "-o", "model", "--twojmax", "2", *arguments)
    assert result.status == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mofsnap fit: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "model" / "snap.snapcoeff").exists()
