"""Thermal expansion: α and K from synthetic data with known answers, window averages, an EMT Cu scan, the command."""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from mofsnap.analysis.thermal_expansion import (BulkModulus, ExpansionCoefficient, ModelSpread, StatePoint,
                                                ThermalExpansionResult, analyse, average_state, bulk_modulus,
                                                expansion_coefficient, lattice_drift, model_spread, run_npt_scan,
                                                window_means)
from mofsnap.exceptions import ThermalExpansionError
from mofsnap.md import read_trajectory


def test_alpha_exact_for_noise_free_quadratic_lattice():
    temperatures = np.array([100.0, 200.0, 300.0, 400.0, 500.0])
    a = 26.0 - 3e-4 * (temperatures - 100) + 2e-7 * (temperatures - 100) ** 2
    alpha, _ = expansion_coefficient(temperatures, a, np.full(5, 1e-3), at_K=300.0, degree=2)
    a300 = 26.0 - 3e-4 * 200 + 2e-7 * 200 ** 2
    assert alpha == pytest.approx((-3e-4 + 4e-7 * 200) / a300, rel=1e-9)


def test_alpha_error_matches_the_scatter_of_noisy_repeats():
    rng = np.random.default_rng(0)
    temperatures = np.array([100.0, 200.0, 300.0, 400.0, 500.0, 600.0])
    truth = 17.0 * (1 + 7e-6 * (temperatures - 300))
    sigma = np.full(6, 5e-4)
    estimates = [expansion_coefficient(temperatures, truth + rng.normal(0, sigma), sigma, 300.0, degree=1)
                 for _ in range(400)]
    values, errors = np.array(estimates).T
    assert np.mean(values) == pytest.approx(7e-6, abs=3 * np.std(values) / 20)
    assert np.std(values) == pytest.approx(np.mean(errors), rel=0.12)


def test_bulk_modulus_of_linear_and_murnaghan_volumes():
    pressures = np.array([0.0, 100.0, 200.0, 300.0])
    k0 = 15.0e3  # MPa
    linear = 1000.0 * (1 - pressures / k0)
    modulus, _ = bulk_modulus(pressures, linear, np.full(4, 0.1), at_MPa=0.0, degree=1)
    assert modulus == pytest.approx(15.0, rel=1e-9)
    murnaghan = 1000.0 * (1 + 4.0 * pressures / k0) ** (-1 / 4.0)
    modulus, error = bulk_modulus(pressures, murnaghan, np.full(4, 0.05), at_MPa=0.0, degree=2)
    assert modulus == pytest.approx(15.0, rel=0.01) and error > 0


def synthetic_run(lengths_per_window, points_per_window=5, window_fs=1000.0):
    """Frames whose cell length is constant within each window (time_fs set as run_md writes it)."""
    frames = []
    for k, length in enumerate(lengths_per_window):
        for j in range(points_per_window):
            atoms = bulk("Cu", "sc", a=length)
            atoms.info["time_fs"] = (k * points_per_window + j) * window_fs / points_per_window
            frames.append(atoms)
    atoms = bulk("Cu", "sc", a=lengths_per_window[-1])
    atoms.info["time_fs"] = len(lengths_per_window) * window_fs
    return frames + [atoms]


def test_window_means_discard_equilibration_and_average_runs():
    run = synthetic_run([9.0, 10.0, 10.2, 9.8])
    centres, means = window_means(run, equilibration_ps=1.0, window_ps=1.0, length_factor=0.5)
    np.testing.assert_allclose(centres, [0.5, 1.5, 2.5])
    np.testing.assert_allclose(means[:, 0], [5.0, 5.1, 4.9])
    np.testing.assert_allclose(means[:, 6], means[:, 0] ** 3)
    point = average_state([run, synthetic_run([9.0, 10.1, 9.9, 10.0])], 300, 0.1, 1.0, 1.0)
    windows = np.array([10.0, 10.2, 9.8, 10.1, 9.9, 10.0])
    assert point.windows == 6 and point.runs == 2
    assert point.a == pytest.approx(windows.mean())
    assert point.a_err == pytest.approx(windows.std(ddof=1) / np.sqrt(6))
    with pytest.raises(ThermalExpansionError, match="need at least 2"):
        average_state([run], 300, 0.1, equilibration_ps=3.0, window_ps=1.0)


def test_drift_slope_and_error_of_a_known_trend():
    # two runs with different offsets, the same slope 0.02 Å/ps and alternating ±0.01 Å noise
    times = [np.arange(6.0), np.arange(6.0)]
    noise = 0.01 * np.array([1, -1, 1, -1, 1, -1])
    slope, error = lattice_drift(times, [10.0 + 0.02 * times[0] + noise, 10.5 + 0.02 * times[1] - noise])
    assert slope == pytest.approx(0.02, rel=1e-12)  # the noise of the two runs cancels in the common slope
    t = times[0] - times[0].mean()
    residual = np.concatenate([noise - noise.mean(), -noise + noise.mean()])
    assert error == pytest.approx(np.sqrt(residual @ residual / (12 - 2 - 1) / (2 * t @ t)), rel=1e-9)
    assert lattice_drift([np.arange(2.0)], [np.array([1.0, 2.0])]) is None  # no degree of freedom left


def test_state_point_flags_a_drifting_lattice(caplog):
    noise = [0.0, 0.004, -0.004, 0.003, -0.003, 0.0, 0.002, -0.002]
    steady = [synthetic_run([9.0] + [10.0 + e for e in noise])]
    point = average_state(steady, 300, 0.1, equilibration_ps=1.0, window_ps=1.0)
    assert not point.drifting and abs(point.drift_per_ps) < 3 * point.drift_err_per_ps
    assert "drifts" not in caplog.text
    creeping = [synthetic_run([9.0] + [10.0 + 0.01 * k + e for k, e in enumerate(noise)])]
    point = average_state(creeping, 300, 0.1, equilibration_ps=1.0, window_ps=1.0)
    assert point.drifting and point.drift_per_ps == pytest.approx(0.01, abs=2e-3)
    assert "T = 300 K, P = 0.1 MPa: the lattice parameter still drifts" in caplog.text
    # a lenient threshold accepts the same trend
    assert not average_state(creeping, 300, 0.1, 1.0, 1.0, drift_sigma=1e3).drifting
    two_windows = average_state([synthetic_run([9.0, 10.0, 10.1])], 300, 0.1, 1.0, 1.0)
    assert two_windows.drift_per_ps is None and not two_windows.drifting
    result = ThermalExpansionResult([point, two_windows])
    assert result.drifting == [point]


def test_command_lists_drifting_state_points(tmp_path, cli):
    lammps_dump(tmp_path / "cold.dump", [9.0, 10.0, 10.01, 9.99, 10.0, 10.01, 9.99, 10.0])
    lammps_dump(tmp_path / "hot.dump", [9.0, 10.1, 10.2, 10.3, 10.41, 10.49, 10.6, 10.7])
    r = cli("thermal-expansion", f"{tmp_path / 'cold.dump'}:200", f"{tmp_path / 'hot.dump'}:400",
            "--frame-interval", "100", "--equilibration-ps", "0.1", "--window-ps", "0.1", "-o", tmp_path / "out")
    assert r.status == 0, r.err
    assert json.loads(r.out)["drifting"] == [[400.0, 0.101325]]
    assert "T = 400 K, P = 0.101325 MPa: the lattice parameter still drifts" in r.err
    result = ThermalExpansionResult.read(tmp_path / "out" / "thermal_expansion.json")
    assert [p.drifting for p in result.state_points] == [False, True]
    r = cli("thermal-expansion", f"{tmp_path / 'hot.dump'}:400", f"{tmp_path / 'cold.dump'}:200", "--frame-interval",
            "100", "--equilibration-ps", "0.1", "--window-ps", "0.1", "--drift-sigma", "1e6", "-o", tmp_path / "o2")
    assert r.status == 0 and json.loads(r.out)["drifting"] == []


def test_fits_need_enough_points():
    with pytest.raises(ThermalExpansionError, match="two temperatures"):
        expansion_coefficient([300.0], [10.0], [0.01])
    with pytest.raises(ThermalExpansionError, match="positive error"):
        bulk_modulus([0.0, 100.0], [10.0, 9.9], [0.0, 0.1])


def test_emt_copper_scan_expands_on_heating(tmp_path, cli):
    atoms = bulk("Cu", cubic=True, a=3.59).repeat(2)
    atoms.new_array("atom_types", np.array(["Cu12a"] * len(atoms)))
    paths = run_npt_scan(atoms, EMT(), tmp_path, [100.0, 900.0], runs=1, equilibration_ps=0.2, production_ps=0.8,
                         timestep_fs=4.0, frame_interval_fs=40.0, progress=False, pdamp_fs=200.0)
    assert read_trajectory(paths[(100.0, 0.101325)][0])[-1].info["md_step"] == 250
    r = cli("thermal-expansion", *(p[0] for p in paths.values()), "-o", tmp_path / "out", "--equilibration-ps",
            "0.2", "--window-ps", "0.2", "--length-factor", "0.5", "--at", "500", "--degree-T", "1")
    assert r.status == 0, r.err
    result = ThermalExpansionResult.read(tmp_path / "out" / "thermal_expansion.json")
    cold, hot = result.state_points
    assert (cold.temperature_K, hot.temperature_K) == (100.0, 900.0)
    assert cold.windows == 4 and cold.a == pytest.approx(3.59, rel=0.02)
    assert hot.a > cold.a + 3 * np.hypot(hot.a_err, cold.a_err)
    assert result.alpha.per_K > 0 and result.alpha.at_K == 500.0 and result.alpha.degree == 1
    assert json.loads(r.out)["alpha"]["per_K"] == result.alpha.per_K
    assert (tmp_path / "out" / "lattice_vs_T.png").exists() and (tmp_path / "out" / "state_points.csv").exists()
    assert result.bulk_modulus is None and json.loads(r.out)["bulk_modulus"] is None


def lammps_dump(path, lengths):
    """A one-atom LAMMPS text dump, one frame per cell length."""
    with open(path, "w") as handle:
        for step, length in enumerate(lengths):
            handle.write(f"ITEM: TIMESTEP\n{step * 100}\nITEM: NUMBER OF ATOMS\n1\nITEM: BOX BOUNDS pp pp pp\n"
                         + f"0 {length}\n" * 3 + "ITEM: ATOMS id type x y z\n1 1 0 0 0\n")


def test_lammps_dumps_with_temperatures_given_on_the_command_line(tmp_path, cli):
    # first frame: equilibration; the last one only closes the fourth window
    lammps_dump(tmp_path / "cold.dump", [9.0, 9.99, 10.01, 9.99, 10.01, 10.0])
    lammps_dump(tmp_path / "hot.dump", [9.0, 10.19, 10.21, 10.19, 10.21, 10.2])
    r = cli("thermal-expansion", tmp_path / "cold.dump", "--frame-interval", "100", "-o", tmp_path / "x")
    assert r.status == 1 and len(r.err.strip().splitlines()) == 1
    assert r.err.startswith("mofsnap thermal-expansion: error: ") and "no NPT temperature" in r.err
    r = cli("thermal-expansion", f"{tmp_path / 'cold.dump'}:200", f"{tmp_path / 'hot.dump'}:400:0.101325",
            "--frame-interval", "100", "--equilibration-ps", "0.1", "--window-ps", "0.1", "--at", "200", "-o",
            tmp_path / "out")
    assert r.status == 0, r.err
    result = ThermalExpansionResult.read(tmp_path / "out" / "thermal_expansion.json")
    assert [p.a for p in result.state_points] == pytest.approx([10.0, 10.2])
    assert result.alpha.per_K == pytest.approx(0.2 / 200 / 10.0, rel=1e-9)


def test_command_needs_trajectories_or_run(tmp_path, cli):
    for args in ((), (tmp_path / "a.extxyz", "--run", tmp_path / "b.extxyz")):
        r = cli("thermal-expansion", *args, "-o", tmp_path)
        assert r.status == 1 and r.err.strip() == "mofsnap thermal-expansion: error: give either NPT trajectories " \
                                                   "or --run STRUCTURE (not both)"


def point(temperature, pressure, a, volume):
    """A state point with distinct values in every field (errors from the fifth decimal)."""
    return StatePoint(temperature, pressure, 3, 12, a, a * 1.1e-5, [a, a + 0.01, a - 0.02], [1e-4, 2e-4, 3e-4],
                      [90.0, 90.1, 89.9], volume, volume * 3.3e-5)


def test_analysis_finds_both_scans_and_round_trips_exactly(tmp_path):
    points = [point(100.0, 0.101325, 26.0, 17576.0), point(300.0, 0.101325, 25.99, 17556.0),
              point(500.0, 0.101325, 25.97, 17515.0), point(300.0, 500.0, 25.9, 17374.0)]
    result = analyse(points, at_K=300.0, degree_T=1)
    assert isinstance(result.alpha, ExpansionCoefficient) and isinstance(result.bulk_modulus, BulkModulus)
    assert (result.alpha.pressure_MPa, result.alpha.degree) == (0.101325, 1)
    assert (result.bulk_modulus.temperature_K, result.bulk_modulus.at_MPa) == (300.0, 0.101325)
    assert result.bulk_modulus.GPa == pytest.approx(17556.0 * 499.898675 / (17556.0 - 17374.0) / 1000, rel=1e-9)
    points[1].drift_per_ps, points[1].drift_err_per_ps, points[1].drifting = 3.5e-4, 1.0e-4, True
    back = ThermalExpansionResult.read(result.write(tmp_path / "te.json"))
    assert back.state_points == result.state_points
    assert back.alpha == result.alpha and back.bulk_modulus == result.bulk_modulus
    only_points = ThermalExpansionResult(points[:1])
    assert ThermalExpansionResult.read(only_points.write(tmp_path / "one.json")) == only_points


def scan_arguments(structure, output, workers):
    return ("thermal-expansion", "--run", structure, "--calculator", "emt", "--temperatures", "100,900", "--runs", "2",
            "--equilibration-ps", "0.04", "--production-ps", "0.08", "--window-ps", "0.04", "--timestep", "4",
            "--save-every", "8", "--at", "500", "--degree-T", "1", "--workers", workers, "-o", output, "--no-progress")


def test_scan_relaxes_runs_in_parallel_like_serially_and_resumes(tmp_path, cli):
    from ase.io import write

    atoms = bulk("Cu", cubic=True, a=3.70).repeat(2)  # stretched by 3 %: the relaxation must shrink it
    atoms.new_array("atom_types", np.array(["Cu12a"] * len(atoms)))
    write(tmp_path / "cu.extxyz", atoms)
    serial = cli(*scan_arguments(tmp_path / "cu.extxyz", tmp_path / "serial", 1))
    assert serial.status == 0, serial.err
    parallel = cli(*scan_arguments(tmp_path / "cu.extxyz", tmp_path / "parallel", 2))
    assert parallel.status == 0, parallel.err
    relaxed = read_trajectory(tmp_path / "parallel" / "relaxed.extxyz")[0]
    relaxed.calc = EMT()
    assert np.abs(relaxed.get_forces()).max() < 0.01
    # the cell too: FrechetCellFilter's cell force is stress × volume per atom
    assert np.abs(relaxed.get_stress()[:3]).max() * relaxed.get_volume() / len(relaxed) < 0.01
    assert relaxed.cell.lengths()[0] < 0.99 * 2 * 3.70
    one = ThermalExpansionResult.read(tmp_path / "serial" / "thermal_expansion.json")
    two = ThermalExpansionResult.read(tmp_path / "parallel" / "thermal_expansion.json")
    assert one == two and [p.runs for p in two.state_points] == [2, 2]
    names = sorted(p.name for p in (tmp_path / "serial").glob("npt_*.extxyz"))
    assert len(names) == 4
    for name in names:
        first = read_trajectory(tmp_path / "serial" / name)
        second = read_trajectory(tmp_path / "parallel" / name)
        np.testing.assert_array_equal(first[0].cell.array, relaxed.cell.array)  # every run starts relaxed
        np.testing.assert_array_equal(np.array([f.positions for f in first]), np.array([f.positions for f in second]))
        assert json.loads((tmp_path / "parallel" / f"{name}.done.json").read_text())["steps"] == 30
    # resume: the finished runs are not run again
    stamps = {name: (tmp_path / "parallel" / name).stat().st_mtime_ns for name in names}
    again = cli(*scan_arguments(tmp_path / "cu.extxyz", tmp_path / "parallel", 2))
    assert again.status == 0, again.err
    assert {name: (tmp_path / "parallel" / name).stat().st_mtime_ns for name in names} == stamps
    assert ThermalExpansionResult.read(tmp_path / "parallel" / "thermal_expansion.json") == two


def test_native_engine_needs_a_snap_model(tmp_path, cli):
    from ase.io import write

    atoms = bulk("Cu", cubic=True)
    atoms.new_array("atom_types", np.array(["Cu12a"] * len(atoms)))
    write(tmp_path / "cu.extxyz", atoms)
    r = cli("thermal-expansion", "--run", tmp_path / "cu.extxyz", "--calculator", "emt", "--engine", "lammps",
            "-o", tmp_path / "out")
    assert r.status == 1 and len(r.err.strip().splitlines()) == 1
    assert "the lammps engine runs SNAP models (--model PREFIX), not EMT" in r.err
    assert not (tmp_path / "out" / "relaxed.extxyz").exists()  # refused before any work


def test_model_spread_of_samples_and_its_round_trip(tmp_path):
    model = analyse([point(100.0, 0.101325, 26.0, 17576.0), point(300.0, 0.101325, 25.99, 17556.0)], degree_T=1)
    samples = [analyse([point(300.0, 0.101325, 25.99 + d, 17556.0), point(100.0, 0.101325, 26.0 + e, 17576.0)],
                       degree_T=1) for d, e in ((0.01, 0.0), (-0.01, 0.02), (0.0, 0.01))]
    model.model_spread = model_spread(model, samples, seed=5)
    spread = model.model_spread
    assert spread.samples == 3 and spread.a[0] == [26.0, 26.0]  # sample 0 in the order of the model's points
    np.testing.assert_allclose(spread.a_spread, [0.01, 0.01], rtol=1e-9)  # std of (0, .02, .01) and (0, -.02, -.01)
    slopes = np.array([0.0, -0.04, -0.02]) / 200.0  # a(300) - a(100) over 200 K, each sample
    a300 = np.array([26.0, 25.98, 25.99])
    expected = slopes / a300  # α = (1/a) da/dT at 300 K, exact for two points and degree 1
    assert spread.alpha_spread_per_K == pytest.approx(np.std(expected, ddof=1), rel=1e-6)
    assert model.report()[0] == "a(100 K, 0.101325 MPa) = 26.00000 ± 0.00029 (MD) ± 0.01000 (model) Å"
    assert model.report()[-1].endswith("(model) × 10⁻⁶ /K") and "(model)" not in analyse(model.state_points).report()[0]
    back = ThermalExpansionResult.read(model.write(tmp_path / "te.json"))
    assert isinstance(back.model_spread, ModelSpread) and back == model
    with pytest.raises(ThermalExpansionError, match="sample 1 lacks"):
        model_spread(model, [samples[0], analyse(model.state_points[:1])], seed=5)


def test_command_samples_rerun_the_scan_with_posterior_models(copper_snap, tmp_path, cli):
    from ase.io import write

    atoms = bulk("Cu", cubic=True, a=3.6).repeat(2)
    atoms.new_array("atom_types", np.array(["Cu12a"] * len(atoms)))
    write(tmp_path / "cu.extxyz", atoms)
    arguments = ("thermal-expansion", "--run", tmp_path / "cu.extxyz", "--temperatures", "100,900", "--runs", "1",
                 "--equilibration-ps", "0.04", "--production-ps", "0.16", "--window-ps", "0.04", "--timestep", "4",
                 "--save-every", "8", "--at", "500", "--degree-T", "1", "--workers", "1", "--no-progress")
    r = cli(*arguments, "--model", copper_snap[1], "--samples", "3", "-o", tmp_path / "bare")
    assert r.status == 1 and len(r.err.strip().splitlines()) == 1
    assert "bare.snapfit.npz" in r.err and "mofsnap fit" in r.err
    assert not (tmp_path / "bare" / "relaxed.extxyz").exists()  # refused before any work
    r = cli("thermal-expansion", tmp_path / "cu.extxyz", "--samples", "3")
    assert r.status == 1 and "needs --run" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli(*arguments, "--model", copper_snap[0], "--samples", "3", "--samples-seed", "2", "-o", tmp_path / "te")
    assert r.status == 0, r.err
    result = ThermalExpansionResult.read(tmp_path / "te" / "thermal_expansion.json")
    spread = result.model_spread
    assert spread.samples == 3 and spread.seed == 2
    for k in range(3):  # each sample relaxed its own start and ran every state point
        assert len(list((tmp_path / "te" / "posterior" / f"sample{k}").glob("npt_*.extxyz"))) == 2
        assert (tmp_path / "te" / "posterior" / f"sample{k}" / "relaxed.extxyz").exists()
    assert all(0 < z < 0.05 for z in spread.a_spread) and 0 < spread.alpha_spread_per_K < np.inf
    assert len(set(row[0] for row in spread.a)) == 3 and result.state_points[0].a not in spread.a[0]
    lines = json.loads(r.out)["report"]
    assert lines == result.report() and len(lines) == 3 and all(" (model) " in line for line in lines)
