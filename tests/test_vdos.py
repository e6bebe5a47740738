"""VDOS: known oscillator frequencies, normalisation, time-origin independence, the MD pipeline, the command."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms, units
from ase.units import kB
from ase.calculators.emt import EMT
from ase.calculators.morse import MorsePotential
from ase.build import bulk
from ase.io import write

from mofsnap.analysis.vdos import (VDOSResult, compute_vdos, run_posterior_vdos, run_vdos_protocol,
                                   vdos_from_velocities, vdos_peak_spread)
from mofsnap.calculator import SNAPCalculator
from mofsnap.cli.vdos import parse_bands
from mofsnap.exceptions import ResultFileError, VDOSError
from mofsnap.fit.posterior import ModelPosterior, fit_statistics_path
from mofsnap.md import read_trajectory, run_md
from mofsnap.model import SNAPModel
from mofsnap.units import THZ_TO_CM1

DT_FS = 1.0


def oscillators(freqs_cm1, masses, nframes, seed=0, start=0):
    """Velocities of independent 3-D harmonic oscillators, equal mean kinetic energy per component."""
    rng = np.random.default_rng(seed)
    t = (start + np.arange(nframes)) * DT_FS
    omega = 2 * np.pi * np.asarray(freqs_cm1) / THZ_TO_CM1 / 1000.0  # rad/fs
    phase = rng.uniform(0, 2 * np.pi, (len(freqs_cm1), 3))
    amplitude = np.sqrt(2.0 / np.asarray(masses))[:, None]  # m <v^2> = 1 per component
    return amplitude[None] * np.cos(omega[None, :, None] * t[:, None, None] + phase[None])


def peak_cm1(result, spectrum, lo, hi):
    mask = (result.frequency_cm1 > lo) & (result.frequency_cm1 < hi)
    return result.frequency_cm1[mask][np.argmax(spectrum[mask])]


def test_oscillator_peaks_at_their_frequency_per_type():
    freqs = [500.0, 500.0, 1500.0, 3000.0]
    masses = np.array([12.0, 12.0, 1.0, 1.0])
    labels = np.array(["C3a", "C3a", "H1a", "H1b"])
    result = vdos_from_velocities(oscillators(freqs, masses, 4000), masses, labels, DT_FS, max_lag_fs=1000,
                                  removed_dof=0)
    resolution = result.settings["resolution_cm1"]
    for label, freq in [("C3a", 500.0), ("H1a", 1500.0), ("H1b", 3000.0)]:
        assert abs(peak_cm1(result, result.partial[label], 0, 4000) - freq) < resolution / 2
    # a type has (almost) no weight at another type's frequency
    assert result.integral(result.partial["C3a"], (1300, 1700)) < 0.02 * result.integral(result.partial["C3a"])
    peaks = {(p["type"], tuple(p["band_cm1"])): p for p in result.peaks([(0, 1000), (1000, 2000)])}
    assert abs(peaks[("H1a", (1000, 2000))]["peaks"][0]["cm1"] - 1500) < resolution / 2
    assert peaks[("H1b", (1000, 2000))]["states"] < 0.05


def test_normalisation_partials_sum_and_equipartition():
    rng = np.random.default_rng(3)
    n = 12
    freqs = rng.uniform(300, 3000, n)
    masses = rng.choice([1.008, 12.011, 65.38], n)
    labels = np.where(masses < 2, "H", np.where(masses < 20, "C", "Zn"))
    result = vdos_from_velocities(oscillators(freqs, masses, 6000, seed=1), masses, labels, DT_FS, max_lag_fs=800,
                                  removed_dof=3)
    assert result.dof == 3 * n - 3
    assert result.integral(result.total) == pytest.approx(3 * n - 3, rel=1e-9)
    np.testing.assert_allclose(sum(result.partial.values()), result.total, rtol=1e-12, atol=1e-12)
    # every type gets its equipartition share of the states (equal kinetic energy per component)
    for label, count in result.counts.items():
        assert result.integral(result.partial[label]) == pytest.approx(3 * count * (3 * n - 3) / (3 * n), rel=0.03)


def test_equipartition_check_finds_a_hot_type_with_its_states(caplog):
    # two C and two H oscillators; each C component carries m<v²> = 1 eV, each H component 3 eV
    freqs = [500.0, 700.0, 2900.0, 3100.0]
    masses = np.array([12.0, 12.0, 1.0, 1.0])
    labels = np.array(["C3a", "C3a", "H1a", "H1a"])
    velocities = oscillators(freqs, masses, 8000)
    velocities[:, 2:] *= np.sqrt(3.0)
    result = vdos_from_velocities(velocities, masses, labels, DT_FS, max_lag_fs=1000, removed_dof=0)
    # system: (6 + 18) eV over 12 degrees of freedom; C: 6 eV over 6; H: 18 eV over 6
    assert result.temperature_K == pytest.approx(2.0 / kB, rel=0.01)
    assert result.type_temperatures_K["C3a"] == pytest.approx(1.0 / kB, rel=0.01)
    assert result.type_temperatures_K["H1a"] == pytest.approx(3.0 / kB, rel=0.01)
    assert result.out_of_equipartition == ["C3a", "H1a"]
    assert "out of equipartition: C3a" in caplog.text and "H1a" in caplog.text
    check = result.equipartition()
    assert check["out_of_equipartition"] == ["C3a", "H1a"]
    assert check["types"]["H1a"]["expected_states"] == 6.0
    assert check["types"]["H1a"]["states"] == pytest.approx(9.0, rel=0.03)  # 12 states × 18 / 24 eV
    assert check["types"]["C3a"]["states"] == pytest.approx(3.0, rel=0.03)


def test_equipartition_tolerance_is_relative_and_absolute(caplog):
    freqs = [500.0, 700.0, 2900.0, 3100.0]
    masses = np.array([12.0, 12.0, 1.0, 1.0])
    labels = np.array(["C3a", "C3a", "H1a", "H1a"])
    velocities = oscillators(freqs, masses, 8000)
    velocities[:, 2:] *= np.sqrt(1.1)  # H 10 % hotter than C: each 4.8 % from the system's temperature
    result = vdos_from_velocities(velocities, masses, labels, DT_FS, max_lag_fs=1000, removed_dof=0)
    assert result.out_of_equipartition == [] and "equipartition" not in caplog.text
    assert result.settings["equipartition_tolerance"] == {"fraction": 0.1, "kelvin": 10.0}
    strict = vdos_from_velocities(velocities, masses, labels, DT_FS, max_lag_fs=1000, removed_dof=0,
                                  tolerance_fraction=0.02, tolerance_K=0.0)
    assert strict.out_of_equipartition == ["C3a", "H1a"]
    # a cold run (about 1.2 K): 5 % is far below the 10 K floor of the tolerance
    cold = vdos_from_velocities(velocities * 0.01, masses, labels, DT_FS, max_lag_fs=1000, removed_dof=0,
                                tolerance_fraction=0.02)
    assert cold.temperature_K == pytest.approx(1.05e-4 / kB, rel=0.01) and cold.out_of_equipartition == []
    with pytest.raises(VDOSError, match="tolerances must be >= 0"):
        vdos_from_velocities(velocities, masses, labels, DT_FS, tolerance_K=-1.0)


def test_command_reports_a_run_out_of_equipartition(tmp_path, cli):
    masses = np.array([12.011, 12.011, 1.008, 1.008])
    velocities = oscillators([500.0, 700.0, 2900.0, 3100.0], masses, 400)
    velocities[:, 2:] *= 2.0  # hydrogens four times as hot
    frames = []
    for k, v in enumerate(velocities):
        atoms = Atoms("C2H2", positions=np.eye(4, 3) * 5.0, cell=[20, 20, 20], pbc=True)
        atoms.new_array("atom_types", np.array(["C3a", "C3a", "H1a", "H1a"]))
        atoms.set_velocities(v)
        atoms.info["time_fs"] = k * DT_FS
        frames.append(atoms)
    write(tmp_path / "hot.extxyz", frames)
    r = cli("vdos", tmp_path / "hot.extxyz", "-o", tmp_path / "out", "--max-lag", "100")
    assert r.status == 0, r.err
    assert "out of equipartition" in r.err
    printed = json.loads(r.out)["equipartition"]
    assert printed["out_of_equipartition"] == ["C3a", "H1a"]
    assert printed["types"]["H1a"]["temperature_K"] == pytest.approx(4 * printed["types"]["C3a"]["temperature_K"],
                                                                     rel=0.05)
    summary = json.loads((tmp_path / "out" / "vdos_summary.json").read_text())
    assert summary["equipartition"] == printed
    assert VDOSResult.read(tmp_path / "out" / "vdos.json").out_of_equipartition == ["C3a", "H1a"]
    r = cli("vdos", tmp_path / "hot.extxyz", "-o", tmp_path / "loose", "--max-lag", "100",
            "--equipartition-fraction", "0.8")
    assert r.status == 0 and json.loads(r.out)["equipartition"]["out_of_equipartition"] == []


def test_independent_of_time_origin():
    freqs = [400.0, 900.0, 1700.0, 2900.0]
    masses = np.array([12.0, 14.0, 1.0, 16.0])
    labels = np.array(["a", "b", "c", "d"])
    first = vdos_from_velocities(oscillators(freqs, masses, 3000), masses, labels, DT_FS, max_lag_fs=600)
    later = vdos_from_velocities(oscillators(freqs, masses, 3000, start=777), masses, labels, DT_FS, max_lag_fs=600)
    assert np.max(np.abs(first.total - later.total)) < 0.03 * first.total.max()


def test_diatomic_md_peak_at_harmonic_frequency(tmp_path):
    epsilon, rho0, r0 = 2.0, 4.0, 1.1
    atoms = Atoms("N2", positions=[[0, 0, 0], [0, 0, r0]], cell=[12, 12, 12], pbc=False)
    atoms.new_array("atom_types", np.array(["N1a", "N1a"]))
    calc = MorsePotential(epsilon=epsilon, rho0=rho0, r0=r0, rcut1=2.0, rcut2=2.5)
    run_md(atoms, 2000, ensemble="nve", temperature_K=30, timestep_fs=0.5, trajectory=tmp_path / "n2.extxyz",
           interval=4, calculator=calc, progress=False, seed=4)
    result = compute_vdos(read_trajectory(tmp_path / "n2.extxyz"), max_lag_fs=1000)
    k = 2 * epsilon * rho0 ** 2 / r0 ** 2  # eV/Å^2
    mu = atoms.get_masses()[0] / 2
    expected = np.sqrt(k / mu) * units.fs / (2 * np.pi) * 1000 * THZ_TO_CM1
    assert result.dof == 3  # six coordinates minus the fixed centre of mass
    assert abs(peak_cm1(result, result.partial["N1a"], 200, 6000) - expected) < result.settings["resolution_cm1"] / 2


def test_reference_protocol_helper_runs_npt_then_nve(tmp_path, cli):
    atoms = bulk("Cu", cubic=True).repeat(2)
    atoms.new_array("atom_types", np.array(["Cu12a"] * len(atoms)))
    atoms.set_cell(atoms.cell * 1.03, scale_atoms=True)  # stretched: the protocol relaxes it first
    frames = run_vdos_protocol(atoms, EMT(), tmp_path, temperature_K=200, npt_ps=0.02, nve_ps=0.1,
                               timestep_fs=2.0, frame_interval_fs=4.0, progress=False)
    assert [f.info["md_step"] for f in frames] == list(range(0, 51, 2))
    assert frames[0].info["md_ensemble"] == "nve"
    equilibration = read_trajectory(tmp_path / "equilibration.extxyz")
    relaxed = read_trajectory(tmp_path / "relaxed.extxyz")[0]
    relaxed.calc = EMT()
    assert np.abs(relaxed.get_forces()).max() < 0.01 and relaxed.get_volume() < 0.95 * atoms.get_volume()
    np.testing.assert_array_equal(equilibration[0].positions, relaxed.positions)
    assert json.loads((tmp_path / "nve.extxyz.done.json").read_text())["steps"] == 50
    np.testing.assert_allclose(frames[0].get_velocities(), equilibration[-1].get_velocities(), atol=1e-6)
    result = compute_vdos(frames)
    assert result.settings["frame_interval_fs"] == pytest.approx(4.0)
    assert result.integral(result.total) == pytest.approx(3 * len(atoms) - 3)
    # the command on the same trajectory, with the types stripped: a metal without ligands cannot be typed
    # (metal-metal contacts are no bonds), so the partial VDOS are per element
    for frame in frames:
        del frame.arrays["atom_types"]
    write(tmp_path / "untyped.extxyz", frames)
    r = cli("vdos", tmp_path / "untyped.extxyz", "-o", tmp_path / "out", "--bands", "0-400")
    assert r.status == 0, r.err
    assert json.loads(r.out)["dof"] == 3 * len(atoms) - 3
    summary = json.loads((tmp_path / "out" / "vdos_summary.json").read_text())
    assert "per element" in r.err
    assert list(summary["counts"]) == ["Cu"] and summary["dof"] == 3 * len(atoms) - 3
    assert [(p["type"], p["band_cm1"]) for p in summary["peaks"]] == [("total", [0, 400]), ("Cu", [0, 400])]
    written = VDOSResult.read(tmp_path / "out" / "vdos.json")
    np.testing.assert_array_equal(written.total, compute_vdos(read_trajectory(tmp_path / "untyped.extxyz")).total)
    assert (tmp_path / "out" / "vdos.png").exists() and (tmp_path / "out" / "vdos.csv").exists()


def gas_trajectory(path, nframes=64):
    """Four Ar atoms too far apart to bond (no atom types can be assigned), with oscillator velocities."""
    masses = np.full(4, 39.948)
    velocities = oscillators([300.0, 500.0, 700.0, 900.0], masses, nframes)
    frames = []
    for k in range(nframes):
        atoms = Atoms("Ar4", positions=np.eye(4, 3) * 6.0, cell=[20, 20, 20], pbc=True)
        atoms.set_velocities(velocities[k])
        atoms.info["time_fs"] = k * DT_FS
        frames.append(atoms)
    write(path, frames)
    return path


def test_command_falls_back_to_elements_when_typing_fails(tmp_path, cli):
    r = cli("vdos", gas_trajectory(tmp_path / "gas.extxyz"), "-o", tmp_path / "out", "--max-lag", "20")
    assert r.status == 0, r.err
    assert "per element" in r.err and "isolated atom" in r.err
    result = VDOSResult.read(tmp_path / "out" / "vdos.json")
    assert result.counts == {"Ar": 4} and list(result.partial) == ["Ar"]


def test_python_m_form_analyses_a_trajectory(tmp_path):
    """The form the design promises: ``python -m mofsnap.analysis.vdos traj.xyz``."""
    gas_trajectory(tmp_path / "traj.xyz")
    done = subprocess.run([sys.executable, "-m", "mofsnap.analysis.vdos", "traj.xyz", "--max-lag", "20"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["dof"] == 4 * 3  # the oscillators move the centre of mass: nothing removed
    assert VDOSResult.read(tmp_path / "vdos" / "vdos.json").counts == {"Ar": 4}


def test_result_round_trips_exactly(tmp_path):
    masses = np.array([12.0, 1.0, 1.0])
    velocities = oscillators([500.0, 1500.0, 3000.0], masses, 200)
    velocities[:, 2] *= 2.0  # H1b hot, the others cold: all three out of equipartition
    result = vdos_from_velocities(velocities, masses, np.array(["C3a", "H1a", "H1b"]), DT_FS, max_lag_fs=50,
                                  removed_dof=1.5)
    path = result.write(tmp_path / "sub" / "vdos.json")
    back = VDOSResult.read(path)
    np.testing.assert_array_equal(back.frequency_cm1, result.frequency_cm1)
    np.testing.assert_array_equal(back.total, result.total)
    assert list(back.partial) == list(result.partial)
    for label in result.partial:
        np.testing.assert_array_equal(back.partial[label], result.partial[label])
    assert (back.dof, back.counts, back.settings) == (result.dof, result.counts, result.settings)
    assert back.temperature_K == result.temperature_K and back.type_temperatures_K == result.type_temperatures_K
    assert back.out_of_equipartition == result.out_of_equipartition == ["C3a", "H1a", "H1b"]
    (tmp_path / "other.json").write_text(json.dumps({"mofsnap_result": "phonons", "version": 1}))
    with pytest.raises(ResultFileError, match="not a vdos"):
        VDOSResult.read(tmp_path / "other.json")


def test_command_rejects_bad_input_in_one_line(tmp_path, cli):
    r = cli("vdos", "-o", tmp_path)
    assert r.status == 1 and r.err.strip() == "mofsnap vdos: error: give either a trajectory or --run STRUCTURE " \
                                               "(not both)"
    r = cli("vdos", gas_trajectory(tmp_path / "gas.extxyz"), "--bands", "600-100", "-o", tmp_path)
    assert r.status == 1 and len(r.err.strip().splitlines()) == 1 and "LO < HI" in r.err
    r = cli("vdos", tmp_path / "missing.extxyz", "-o", tmp_path)
    assert r.status == 1 and len(r.err.strip().splitlines()) == 1 and "missing.extxyz" in r.err


def test_bad_input_is_rejected():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    with pytest.raises(VDOSError, match="no velocities"):
        compute_vdos([atoms.copy() for _ in range(10)], frame_interval_fs=1.0)
    with pytest.raises(VDOSError, match="at least 8 frames"):
        vdos_from_velocities(np.zeros((4, 2, 3)), np.ones(2), np.array(["H", "H"]), 1.0)
    with pytest.raises(VDOSError, match="LO < HI"):
        parse_bands("600-100")
    with pytest.raises(VDOSError, match="unknown window"):
        vdos_from_velocities(np.ones((20, 2, 3)), np.ones(2), np.array(["H", "H"]), 1.0, window="tukey")


# -- model spread of the peak positions (--samples) -------------------------------------------------------------

def oscillator_vdos(freqs_cm1, labels, moving=None):
    """VDOS of oscillators with the types ``labels``; those not ``moving`` (default: all move) stand still."""
    masses = np.full(len(freqs_cm1), 12.0)
    velocities = oscillators(freqs_cm1, masses, 4000)
    velocities[:, ~np.asarray(moving if moving is not None else [True] * len(freqs_cm1))] = 0.0
    return vdos_from_velocities(velocities, masses, np.array(labels), DT_FS, max_lag_fs=1000, padding=16,
                                removed_dof=0)


def test_peak_spread_matches_each_peak_to_the_nearest_peak_of_every_sample():
    model = oscillator_vdos([500.0, 1500.0, 1700.0], ["a", "b", "b"])
    shifts = [(10.0, -20.0), (-10.0, 0.0), (30.0, 40.0)]
    samples = [oscillator_vdos([500.0 + s, 1500.0 + t, 1700.0 + t], ["a", "b", "b"]) for s, t in shifts]
    # the fourth sample has no peak of type b: its atoms stand still
    samples.append(oscillator_vdos([490.0, 1500.0, 1700.0], ["a", "b", "b"], moving=[True, False, False]))
    bands = [(0, 1000), (1000, 2000)]
    entries = {(e["type"], tuple(e["band_cm1"])): e for e in vdos_peak_spread(model, samples, bands)}
    step = model.frequency_cm1[1]
    low = entries[("a", (0, 1000))]["peaks"]
    assert len(low) == 1 and low[0]["cm1"] == pytest.approx(500.0, abs=step)
    expected = [510.0, 490.0, 530.0, 490.0]
    np.testing.assert_allclose(low[0]["samples_cm1"], expected, atol=step)
    assert low[0]["posterior_mean_cm1"] == pytest.approx(np.mean(expected), abs=step)
    assert low[0]["model_spread_cm1"] == pytest.approx(np.std(expected, ddof=1), abs=step)
    high = sorted(entries[("b", (1000, 2000))]["peaks"], key=lambda p: p["cm1"])
    assert [round(p["cm1"] / 100) for p in high] == [15, 17]
    for peak, centre in zip(high, (1500.0, 1700.0)):  # each peak to its own neighbour in every sample
        assert peak["samples_cm1"][3] is None
        np.testing.assert_allclose(peak["samples_cm1"][:3], [centre + t for _, t in shifts], atol=step)
        assert peak["model_spread_cm1"] == pytest.approx(np.std([t for _, t in shifts], ddof=1), abs=step)
    with pytest.raises(VDOSError, match="at least 2"):
        vdos_peak_spread(model, samples[:1], bands)
    with pytest.raises(VDOSError, match="posterior sample 1 has other spectra"):
        vdos_peak_spread(model, [samples[0], oscillator_vdos([500.0, 1500.0, 1700.0], ["a", "c", "c"])], bands)


PROTOCOL = dict(temperature_K=300, npt_ps=0.1, timestep_fs=4.0, frame_interval_fs=8.0, progress=False)
PRODUCTION = dict(nve_ps=1.0, timestep_fs=4.0, frame_interval_fs=8.0, progress=False)
#: Dense zero padding: peak positions on a grid fine enough to follow the models' small shifts.
PADDING = 64


def copper_crystal():
    atoms = bulk("Cu", cubic=True, a=3.6).repeat(2)
    atoms.new_array("atom_types", np.array(["Cu12a"] * len(atoms)))
    return atoms


def mean_model_posterior(prefix, directory):
    """The model at ``prefix`` copied to ``directory/mean`` with its posterior of zero noise variance centred on
    the model's coefficients: every sample drawn from it is the model itself."""
    model = SNAPModel.read(prefix)
    posterior = ModelPosterior.read(fit_statistics_path(prefix))
    copy = directory / "mean"
    model.write(copy)
    ModelPosterior(model.coefficients.ravel(), posterior.gram, posterior.alpha, 0.0, posterior.energy_weight,
                   posterior.n_types, posterior.n_coefficients, posterior.atom_leverage_scale).write(
        fit_statistics_path(copy))
    return copy


def test_posterior_productions_share_the_start_and_give_the_model_spread(copper_snap, tmp_path):
    with SNAPCalculator(copper_snap[0]) as calc:
        frames = run_vdos_protocol(copper_crystal(), calc, tmp_path / "zero", nve_ps=PRODUCTION["nve_ps"], **PROTOCOL)
    shutil.copytree(tmp_path / "zero", tmp_path / "real")
    bands = [(0, 400)]
    model = compute_vdos(frames, padding=PADDING)
    start = read_trajectory(tmp_path / "zero" / "equilibration.extxyz", index=-1)[0]

    # samples of a posterior without noise are the model: the same trajectory, no spread
    with SNAPCalculator(mean_model_posterior(copper_snap[0], tmp_path)) as calc:
        paths = run_posterior_vdos(calc, tmp_path / "zero", 2, **PRODUCTION)
    assert paths == [tmp_path / "zero" / "posterior" / f"sample{k}" / "nve.extxyz" for k in range(2)]
    for path in paths:
        sample = read_trajectory(path)
        assert len(sample) == len(frames)
        np.testing.assert_allclose(sample[0].get_velocities(), start.get_velocities(), atol=1e-12)
        np.testing.assert_allclose(sample[-1].positions, frames[-1].positions, atol=1e-9)
    entries = vdos_peak_spread(model, [compute_vdos(read_trajectory(p), padding=PADDING) for p in paths], bands)
    peaks = [peak for entry in entries for peak in entry["peaks"]]
    assert peaks and all(p["model_spread_cm1"] == 0 and p["posterior_mean_cm1"] == p["cm1"] for p in peaks)

    # samples of the fit's posterior: same start, other trajectories, their own peaks
    with SNAPCalculator(copper_snap[0]) as calc:
        paths = run_posterior_vdos(calc, tmp_path / "real", 3, samples_seed=1, **PRODUCTION)
    samples = [compute_vdos(read_trajectory(p), padding=PADDING) for p in paths]
    for path in paths:
        sample = read_trajectory(path)
        np.testing.assert_allclose(sample[0].positions, start.positions, atol=1e-9)
        assert np.abs(sample[-1].positions - frames[-1].positions).max() > 1e-6
    total = vdos_peak_spread(model, samples, bands)[0]
    assert total["type"] == "total" and len(total["peaks"]) == 1
    peak = total["peaks"][0]
    own = [sample.peaks(bands)[0]["peaks"] for sample in samples]  # one peak of the total in each sample
    assert all(len(found) == 1 for found in own)
    assert peak["samples_cm1"] == [found[0]["cm1"] for found in own]
    assert 0 < peak["model_spread_cm1"] < 0.05 * peak["cm1"]  # a good fit moves the peak a little
    assert len(set(peak["samples_cm1"])) > 1

    # resume: finished sample runs are not run again; a removed one is, to the same trajectory
    written = {path: path.stat().st_mtime_ns for path in paths}
    shutil.copy(paths[1], tmp_path / "first_sample1.extxyz")
    with SNAPCalculator(copper_snap[0]) as calc:
        run_posterior_vdos(calc, tmp_path / "real", 3, samples_seed=1, **PRODUCTION)
        assert {path: path.stat().st_mtime_ns for path in paths} == written
        for leftover in paths[1].parent.iterdir():
            leftover.unlink()
        run_posterior_vdos(calc, tmp_path / "real", 3, samples_seed=1, **PRODUCTION)
    assert [path.stat().st_mtime_ns == written[path] for path in paths] == [True, False, True]
    np.testing.assert_allclose(read_trajectory(paths[1])[-1].positions,
                               read_trajectory(tmp_path / "first_sample1.extxyz")[-1].positions, atol=1e-9)


def test_posterior_productions_need_the_protocol_first(copper_snap, tmp_path):
    with SNAPCalculator(copper_snap[0]) as calc, pytest.raises(VDOSError, match="run the VDOS protocol"):
        run_posterior_vdos(calc, tmp_path, 2, **PRODUCTION)
    assert not (tmp_path / "posterior").exists()


def test_command_samples_report_the_model_spread_of_the_peaks(copper_snap, tmp_path, cli):
    copper_crystal().write(tmp_path / "cu.extxyz")
    arguments = ("vdos", "--run", tmp_path / "cu.extxyz", "--npt-ps", "0.1", "--nve-ps", "1", "--timestep", "4",
                 "--save-every", "8", "--padding", str(PADDING), "--bands", "0-400", "--workers", "1", "--no-progress")
    r = cli(*arguments, "--model", copper_snap[1], "--samples", "2", "-o", tmp_path / "bare")
    assert r.status == 1 and len(r.err.strip().splitlines()) == 1
    assert "bare.snapfit.npz" in r.err and "mofsnap fit" in r.err
    assert not (tmp_path / "bare" / "relaxed.extxyz").exists()  # refused before any MD
    r = cli(*arguments, "--model", copper_snap[0], "--samples", "1", "-o", tmp_path / "one")
    assert r.status == 1 and len(r.err.strip().splitlines()) == 1 and "at least 2" in r.err
    assert not (tmp_path / "one" / "relaxed.extxyz").exists()
    r = cli("vdos", gas_trajectory(tmp_path / "gas.extxyz"), "--samples", "2", "-o", tmp_path / "gas")
    assert r.status == 1 and r.err.strip() == "mofsnap vdos: error: --samples reruns the NVE production with " \
                                               "posterior models: it needs --run STRUCTURE"

    r = cli(*arguments, "--model", copper_snap[0], "--samples", "2", "--samples-seed", "5", "-o", tmp_path / "out")
    assert r.status == 0, r.err
    summary = json.loads((tmp_path / "out" / "vdos_summary.json").read_text())
    assert (summary["model_spread"]["samples"], summary["model_spread"]["seed"]) == (2, 5)
    total = next(e for e in summary["peaks"] if e["type"] == "total")
    samples = [compute_vdos(read_trajectory(tmp_path / "out" / "posterior" / f"sample{k}" / "nve.extxyz"),
                            padding=PADDING) for k in range(2)]
    for peak in total["peaks"]:
        assert peak["samples_cm1"] == [s.peaks([(0, 400)])[0]["peaks"][0]["cm1"] for s in samples]
        assert peak["model_spread_cm1"] == pytest.approx(abs(np.diff(peak["samples_cm1"])[0]) / np.sqrt(2))
    report = json.loads(r.out)["report"]
    assert report == summary["model_spread"]["report"] and len(report) == len(total["peaks"]) >= 1
    resolution = summary["settings"]["resolution_cm1"]
    first = total["peaks"][0]
    assert report[0] == (f"peak at {first['cm1']:.1f} cm⁻¹ (band 0-400): {first['posterior_mean_cm1']:.1f} ± "
                         f"{first['model_spread_cm1']:.1f} (model) cm⁻¹ over 2 of 2 samples, resolution "
                         f"{resolution:.1f} cm⁻¹ (no MD error)")
    assert (tmp_path / "out" / "vdos.png").stat().st_size > 0
    # the model's own result is that of the run without samples
    r = cli(*arguments, "--model", copper_snap[0], "-o", tmp_path / "out")
    assert r.status == 0 and "report" not in json.loads(r.out)
    assert json.loads((tmp_path / "out" / "vdos_summary.json").read_text())["model_spread"] is None
