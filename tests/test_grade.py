"""The ridge posterior of a fit (against the analytic linear-Gaussian posterior), its file, and the per-atom
extrapolation grade in MD (run_md observer and the mofsnap md options)."""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read

from mofsnap.calculator import SNAPCalculator
from mofsnap.exceptions import MDError, ResultFileError
from mofsnap.fit import FitReport, NormalEquations, fit_snap
from mofsnap.fit.posterior import ModelPosterior, fit_statistics_path
from mofsnap.md.grade import write_fit_statistics
from mofsnap.md import GradeMonitor, read_trajectory, run_md
from mofsnap.model import SNAPModel


def copper(a=3.6, rattle=0.05, seed=0):
    atoms = bulk("Cu", cubic=True, a=a).repeat(3)
    atoms.new_array("atom_types", np.array(["Cu12a"] * len(atoms)))
    atoms.rattle(rattle, seed=seed)
    return atoms


def labelled(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    results = dict(energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress())
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


@pytest.fixture(scope="module")
def narrow_model(tmp_path_factory):
    """A copper SNAP trained on slightly rattled fcc only, written with its .snapfit.npz."""
    train = [labelled(copper(seed=s)) for s in range(5)]
    model, report = fit_snap(train, model=SNAPModel(["Cu12a"], twojmax=4, rcutfac=4.0, radii=[0.6], weights=[1.0]),
                             alpha=1e-6, progress=False)
    prefix = tmp_path_factory.mktemp("model") / "cu"
    model.write(prefix)
    write_fit_statistics(prefix, model, report, training=train)
    return prefix, model, report, train


def test_posterior_equals_the_analytic_linear_gaussian_posterior():
    rng = np.random.default_rng(3)
    n, alpha, sigma = 4, 0.7, 0.3
    x = rng.normal(size=(60, n))
    truth = rng.normal(size=n)
    y = x @ truth + sigma * rng.normal(size=60)
    precision = x.T @ x + alpha * np.eye(n)
    mean = np.linalg.inv(precision) @ x.T @ y
    posterior = ModelPosterior(mean, x.T @ x, alpha, sigma ** 2, 1.0, 1, n)
    np.testing.assert_allclose(posterior.covariance, sigma ** 2 * np.linalg.inv(precision), rtol=1e-10)
    probe = rng.normal(size=(3, n))
    expected = np.sqrt(np.einsum("ij,jk,ik->i", probe, sigma ** 2 * np.linalg.inv(precision), probe))
    np.testing.assert_allclose(posterior.predictive_sigma(probe), expected, rtol=1e-10)
    draws = posterior.sample_coefficients(40000, seed=1)
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=4 * np.sqrt(np.diag(posterior.covariance) / 40000).max())
    np.testing.assert_allclose(np.cov(draws.T), posterior.covariance, atol=0.03 * np.abs(posterior.covariance).max())
    assert not np.array_equal(posterior.sample_coefficients(2, seed=1), posterior.sample_coefficients(2, seed=2))


def test_atom_leverage_is_the_quadratic_form_of_the_full_descriptor_row():
    """h_i = Ew^2 x_i^T (G + alpha I)^-1 x_i with x_i the whole row: the atom's [1, B_i] in its type's block,
    zeros elsewhere (two types, a correlated Gram matrix)."""
    rng = np.random.default_rng(8)
    n_types, k, alpha, ew = 2, 4, 0.3, 5.0
    half = rng.normal(size=(30, n_types * k))
    gram = half.T @ half
    posterior = ModelPosterior(np.zeros(n_types * k), gram, alpha, 1.0, ew, n_types, k)
    bispectrum, types = rng.normal(size=(7, k - 1)), np.array([0, 1, 1, 0, 1, 0, 0])
    rows = np.zeros((7, n_types * k))
    for i, t in enumerate(types):
        rows[i, t * k:(t + 1) * k] = [1.0, *bispectrum[i]]
    expected = ew ** 2 * np.einsum("ij,jk,ik->i", rows, np.linalg.inv(gram + alpha * np.eye(n_types * k)), rows)
    np.testing.assert_allclose(posterior.atom_leverage(bispectrum, types), expected, rtol=1e-10)


def test_from_fit_estimates_the_noise_of_the_weighted_rows():
    """Rows with independent noise of σ = 0.2 after weighting: the posterior's noise variance is close to σ²."""
    rng = np.random.default_rng(5)
    ncol, ew, sw, sigma = 6, 3.0, 20.0, 0.2
    beta = rng.normal(size=ncol)
    equations = NormalEquations(ncol)
    for _ in range(150):
        natoms = 4
        rows = rng.normal(size=(1 + 3 * natoms + 6, ncol))
        noise = sigma * rng.normal(size=len(rows)) / np.r_[ew / natoms, np.ones(3 * natoms), sw * np.ones(6)]
        equations.add(rows, rows @ beta + noise, natoms)
    alpha = 1e-8
    model = SNAPModel(["Cu12a"], twojmax=2)
    model = SNAPModel(["Cu12a"], twojmax=2, coefficients=equations.solve(alpha, ew, sw)[None, :]) \
        if model.n_coefficients == ncol else pytest.fail("the test needs a model with 6 coefficients")
    report = FitReport({}, alpha, ew, sw, "given", "none", equations)
    posterior = ModelPosterior.from_fit(model, report)
    assert posterior.noise_variance == pytest.approx(sigma ** 2, rel=0.08)
    np.testing.assert_array_equal(posterior.mean, model.coefficients.ravel())
    samples = posterior.sample_models(model, 3, seed=0)
    assert len(samples) == 3 and all(s.types == model.types for s in samples)
    assert not np.array_equal(samples[0].coefficients, samples[1].coefficients)


def test_posterior_file_round_trip(narrow_model, tmp_path):
    prefix, *_ = narrow_model
    posterior = ModelPosterior.read(fit_statistics_path(prefix))
    again = ModelPosterior.read(posterior.write(tmp_path / "copy.snapfit.npz"))
    for name in ("mean", "gram", "atom_leverage_scale"):
        np.testing.assert_array_equal(getattr(again, name), getattr(posterior, name))
    for name in ("alpha", "noise_variance", "energy_weight", "n_types", "n_coefficients"):
        assert getattr(again, name) == getattr(posterior, name)
    assert fit_statistics_path(f"{prefix}.snapcoeff") == fit_statistics_path(prefix)
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(ResultFileError, match="not a readable snap-posterior file"):
        ModelPosterior.read(tmp_path / "junk.npz")


def test_grade_is_at_most_one_in_domain_and_large_far_outside(narrow_model):
    prefix, model, report, train = narrow_model
    with SNAPCalculator(str(prefix)) as calc:
        posterior = calc.posterior
        assert posterior is not None and SNAPCalculator(model).posterior is None
        for atoms in train:
            assert posterior.atom_grades(calc.bispectrum(atoms), calc.type_indices(atoms)).max() <= 1 + 1e-9
        fresh = copper(seed=77)
        assert posterior.atom_grades(calc.bispectrum(fresh), calc.type_indices(fresh)).max() <= 1.5
        far = copper(rattle=0.3, seed=78)
        assert posterior.atom_grades(calc.bispectrum(far), calc.type_indices(far)).max() > 10


def test_md_far_outside_the_domain_collects_frames_and_stops(narrow_model, tmp_path):
    prefix, *_ = narrow_model
    calc = SNAPCalculator(str(prefix))
    monitor = GradeMonitor(calc, interval=1, extrapolative=tmp_path / "extrapolative.extxyz")
    far = copper(rattle=0.3, seed=78)
    result = run_md(far, 20, temperature_K=50, calculator=calc, guard=None, observers=[monitor],
                    trajectory=tmp_path / "md.extxyz", progress=False)
    assert result.stopped.startswith("grade guard: extrapolation grade") and "at step 1" in result.stopped
    collected = read(tmp_path / "extrapolative.extxyz", ":")
    assert len(collected) == 1 and collected[0].arrays["grade"].max() > 10
    assert monitor.history[0][1] == pytest.approx(collected[0].info["max_grade"])
    calm = copper(seed=79)
    quiet = GradeMonitor(calc, interval=5, extrapolative=tmp_path / "none.extxyz")
    assert run_md(calm, 20, temperature_K=50, calculator=calc, observers=[quiet], progress=False).stopped is None
    assert [step for step, _ in quiet.history] == [5, 10, 15, 20]
    assert max(g for _, g in quiet.history) <= 2 and not (tmp_path / "none.extxyz").exists()
    with pytest.raises(MDError, match="snapfit.npz"):
        GradeMonitor(EMT())


def test_command_grade_options(narrow_model, cli, tmp_path):
    prefix, *_ = narrow_model
    copper(rattle=0.3, seed=78).write(tmp_path / "far.extxyz")
    r = cli("md", tmp_path / "far.extxyz", "--model", prefix, "--steps", "20", "--grade-interval", "1",
            "--max-force", "1000", "-o", tmp_path / "run", "-q")
    assert r.status == 1
    lines = r.err.strip().splitlines()
    assert lines[0].startswith("extrapolation grade ") and "> 2 on atom" in lines[0]  # the warning above γ1
    assert len(lines) == 2 and lines[1].startswith("mofsnap md: error: stopped by the grade guard: extrapolation "
                                                   "grade") and "at step 1" in lines[1]
    assert json.loads((tmp_path / "run" / "md.json").read_text())["status"] == "stopped"
    assert len(read(tmp_path / "run" / "extrapolative.extxyz", ":")) == 1
    assert read_trajectory(tmp_path / "run" / "md.extxyz")[-1].info["md_step"] == 0
    r = cli("md", tmp_path / "far.extxyz", "--model", prefix, "--steps", "4", "--grade-stop", "1000",
            "--grade-warn", "1000", "--max-force", "1000", "--max-temperature", "1e5", "-o", tmp_path / "lenient", "-q")
    assert r.status == 0, r.err
