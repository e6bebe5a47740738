"""Phonons: analytic diatomic chain, EMT Cu against ASE's finite-difference Hessian, DOS integrals, the command."""

import json

import numpy as np
import pytest
from scipy.signal import find_peaks
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.morse import MorsePotential
from ase.vibrations import Vibrations


from mofsnap.analysis.phonons import PhononResult, compute_phonons
from mofsnap.analysis.vdos import compute_vdos, write_outputs
from mofsnap.calculator import SNAPCalculator
from mofsnap.exceptions import FitError, PhononError
from mofsnap.md import read_trajectory, run_md
from mofsnap.units import THZ_TO_CM1

EPSILON, RHO0, R0 = 1.0, 5.0, 1.5


def to_cm1(omega_ase):
    """Angular frequency in ASE units -> cm⁻¹."""
    return omega_ase * units.fs * 1000 / (2 * np.pi) * THZ_TO_CM1


def diatomic_chain():
    """Alternating H and O along x, nearest neighbours only (Morse cut off between 1.2 and 1.3 r0)."""
    atoms = Atoms("HO", positions=[[0, 0, 0], [R0, 0, 0]], cell=[2 * R0, 15, 15], pbc=True)
    atoms.new_array("atom_types", np.array(["H1a", "O2a"]))
    return atoms, MorsePotential(epsilon=EPSILON, rho0=RHO0, r0=R0, rcut1=1.2, rcut2=1.3)


def test_diatomic_chain_frequencies_match_analytic_dispersion():
    atoms, calc = diatomic_chain()
    m1, m2 = atoms.get_masses()
    k = 2 * EPSILON * RHO0 ** 2 / R0 ** 2
    result = compute_phonons(atoms, calc, supercell=(4, 1, 1), progress=False)
    optical = to_cm1(np.sqrt(2 * k * (1 / m1 + 1 / m2)))
    gamma = np.sort(result.gamma_cm1)
    assert gamma[-1] == pytest.approx(optical, rel=1e-3)
    # acoustic and transverse modes vanish without tension (up to the δ² artefact of finite displacements)
    np.testing.assert_allclose(gamma[:5], 0.0, atol=20.0)
    # the 4x supercell mesh holds q = 1/2, where the longitudinal modes are sqrt(2k/m) of each sublattice
    peaks, _ = find_peaks(result.total)
    for mass in (m1, m2):
        expected = to_cm1(np.sqrt(2 * k / mass))  # within the 1 cm⁻¹ grid and the pull of the next branch
        assert np.min(np.abs(result.frequency_cm1[peaks] - expected)) < 1e-3 * expected
    assert result.counts == {"H1a": 1, "O2a": 1}


def test_emt_copper_gamma_matches_ase_finite_differences(tmp_path):
    atoms = bulk("Cu", cubic=True, a=3.59)
    atoms.new_array("atom_types", np.array(["Cu12a", "Cu12b", "Cu12a", "Cu12b"]))
    atoms.calc = EMT()
    vibrations = Vibrations(atoms, name=str(tmp_path / "vib"), delta=0.005)
    vibrations.run()
    frequencies = vibrations.get_vibrations().get_frequencies()  # cm⁻¹, imaginary ones as imaginary numbers
    expected = np.sort(np.where(np.abs(frequencies.imag) > 0, -np.abs(frequencies), frequencies.real))
    result = compute_phonons(atoms, EMT(), supercell=1, progress=False)
    np.testing.assert_allclose(np.sort(result.gamma_cm1), expected, atol=0.5)
    assert result.settings["symmetry"] is False  # the labels split equivalent sites


def test_dos_integrals_and_partials_sum_to_total():
    atoms = bulk("Cu", cubic=True, a=3.59)
    atoms.new_array("atom_types", np.array(["Cu12a", "Cu12a", "Cu12a", "Cu12a"]))
    result = compute_phonons(atoms, EMT(), supercell=2, mesh=6, sigma_cm1=8.0, progress=False)
    assert result.settings["symmetry"] is True and result.settings["force_evaluations"] < 10
    assert np.trapezoid(result.total, result.frequency_cm1) == pytest.approx(3 * len(atoms), rel=1e-3)
    np.testing.assert_allclose(sum(result.partial.values()), result.total, rtol=1e-10)
    assert result.imaginary_modes() == 0


def test_result_round_trips_exactly(tmp_path):
    atoms, calc = diatomic_chain()
    result = compute_phonons(atoms, calc, supercell=(2, 1, 1), progress=False)
    back = PhononResult.read(result.write(tmp_path / "phonons.json"))
    for name in ("gamma_cm1", "frequency_cm1", "total"):
        np.testing.assert_array_equal(getattr(back, name), getattr(result, name))
    assert list(back.partial) == list(result.partial) == ["H1a", "O2a"]
    for label in result.partial:
        np.testing.assert_array_equal(back.partial[label], result.partial[label])
    assert (back.counts, back.settings) == (result.counts, result.settings)


def test_command_and_vdos_comparison(tmp_path, cli):
    atoms = bulk("Cu", "fcc", a=3.59)
    atoms.new_array("atom_types", np.array(["Cu12a"]))
    atoms.write(tmp_path / "cu.extxyz")
    r = cli("phonons", tmp_path / "cu.extxyz", "--calculator", "emt", "--supercell", "3", "--mesh", "8", "-o",
            tmp_path / "ph", "--no-progress")
    assert r.status == 0, r.err
    assert json.loads(r.out)["dos_integral"] == pytest.approx(3.0, rel=1e-3)
    result = PhononResult.read(tmp_path / "ph" / "phonons.json")
    assert result.settings["supercell"] == [3, 3, 3] and result.settings["mesh"] == [8, 8, 8]
    assert np.trapezoid(result.total, result.frequency_cm1) == pytest.approx(3.0, rel=1e-3)
    assert (tmp_path / "ph" / "phonon_dos.png").exists() and (tmp_path / "ph" / "phonon_dos.csv").exists()

    md = bulk("Cu", cubic=True, a=3.59).repeat(2)
    md.new_array("atom_types", np.array(["Cu12a"] * len(md)))
    run_md(md, 240, ensemble="nve", temperature_K=100, timestep_fs=5.0, trajectory=tmp_path / "md.extxyz",
           interval=2, calculator=EMT(), progress=False, frame_results=False)
    write_outputs(compute_vdos(read_trajectory(tmp_path / "md.extxyz"), max_lag_fs=1000), tmp_path / "vdos")
    r = cli("phonons", tmp_path / "cu.extxyz", "--calculator", "emt", "--supercell", "2", "-o", tmp_path / "ph2",
            "--compare-vdos", tmp_path / "vdos", "--no-progress")
    assert r.status == 0, r.err
    assert (tmp_path / "ph2" / "vdos_vs_phonons.png").exists()


def test_command_rejects_bad_input_in_one_line(tmp_path, cli):
    atoms = bulk("Cu", "fcc", a=3.59)
    atoms.write(tmp_path / "cu.extxyz")
    (tmp_path / "ph").mkdir()
    (tmp_path / "ph" / "phonons.json").write_text(json.dumps({"mofsnap_result": "phonons", "version": 1}))
    r = cli("phonons", tmp_path / "cu.extxyz", "--calculator", "emt", "--compare-vdos",
            tmp_path / "ph" / "phonons.json")
    assert r.status == 1 and len(r.err.strip().splitlines()) == 1
    assert r.err.startswith("mofsnap phonons: error: ") and "not a vdos" in r.err
    r = cli("phonons", tmp_path / "cu.extxyz", "-o", tmp_path / "out")  # SNAP without --model
    assert r.status == 1 and len(r.err.strip().splitlines()) == 1 and "--model" in r.err


def test_non_periodic_structure_is_rejected():
    with pytest.raises(PhononError, match="periodic"):
        compute_phonons(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), EMT(), progress=False)
    atoms, calc = diatomic_chain()
    with pytest.raises(PhononError, match="supercell >= 1"):
        compute_phonons(atoms, calc, supercell=0, progress=False)


def fcc_copper(a=3.6, rattle=0.0, seed=0):
    """32 typed Cu atoms (2x2x2 cubic cells), rattled by ``rattle`` Å."""
    atoms = bulk("Cu", cubic=True, a=a).repeat(2)
    atoms.new_array("atom_types", np.array(["Cu12a"] * len(atoms)))
    atoms.rattle(rattle, seed=seed)
    return atoms


def test_posterior_spread_of_snap_copper_phonons(copper_snap, tmp_path):
    samples = 6
    with SNAPCalculator(copper_snap[0]) as calc:
        result = compute_phonons(fcc_copper(), calc, samples=samples, seed=3, progress=False)
        alone = compute_phonons(fcc_copper(), calc, progress=False)
    spread = result.spread
    assert (spread.samples, spread.seed) == (samples, 3) and alone.spread is None
    np.testing.assert_allclose(result.gamma_cm1, alone.gamma_cm1, atol=1e-4)  # the result stays the model's
    optical = np.sort(result.gamma_cm1) > 50.0
    assert optical.sum() == 3 * 32 - 3
    assert np.all(np.isfinite(spread.gamma_std_cm1)) and np.all(spread.gamma_std_cm1[optical] > 0)
    # the sampled models scatter around the model: their mean is within a few standard errors of it
    error = spread.gamma_std_cm1[optical] / np.sqrt(samples)
    assert np.all(np.abs(spread.gamma_mean_cm1[optical] - np.sort(result.gamma_cm1)[optical]) < 4 * error + 0.5)
    assert np.all(spread.gamma_std_cm1[optical] < 0.05 * np.sort(result.gamma_cm1)[optical])  # a good fit
    assert spread.total_std.max() > 0 and np.all(np.isfinite(spread.total_std))
    assert np.trapezoid(spread.total_mean, result.frequency_cm1) == pytest.approx(3 * 32, rel=1e-3)
    back = PhononResult.read(result.write(tmp_path / "phonons.json"))
    for name in ("samples", "seed", "gamma_mean_cm1", "gamma_std_cm1", "total_mean", "total_std"):
        np.testing.assert_array_equal(getattr(back.spread, name), getattr(spread, name))
    np.testing.assert_array_equal(back.gamma_cm1, result.gamma_cm1)
    with SNAPCalculator(copper_snap[0]) as calc:
        other = compute_phonons(fcc_copper(), calc, samples=samples, seed=4, progress=False)
    assert not np.array_equal(other.spread.gamma_std_cm1, spread.gamma_std_cm1)
    with pytest.raises(FitError, match="at least 2"):
        compute_phonons(fcc_copper(), SNAPCalculator(copper_snap[0]), samples=1, progress=False)
    with pytest.raises(FitError, match="SNAP model"):
        compute_phonons(fcc_copper(), EMT(), samples=2, progress=False)


def test_command_samples_need_the_fit_statistics(copper_snap, tmp_path, cli):
    fcc_copper().write(tmp_path / "cu.extxyz")
    r = cli("phonons", tmp_path / "cu.extxyz", "--model", copper_snap[1], "--samples", "3", "-o", tmp_path / "bare")
    assert r.status == 1 and len(r.err.strip().splitlines()) == 1
    assert "bare.snapfit.npz" in r.err and "does not exist" in r.err and "mofsnap fit" in r.err
    assert not (tmp_path / "bare" / "relaxed.extxyz").exists()  # refused before any work
    r = cli("phonons", tmp_path / "cu.extxyz", "--model", copper_snap[0], "--samples", "3", "--samples-seed", "7",
            "-o", tmp_path / "ph", "--no-progress")
    assert r.status == 0, r.err
    spread = json.loads(r.out)["model_spread"]
    assert (spread["samples"], spread["seed"]) == (3, 7) and 0 < spread["gamma_std_cm1_median"] < np.inf
    result = PhononResult.read(tmp_path / "ph" / "phonons.json")
    modes = np.loadtxt(tmp_path / "ph" / "gamma_modes.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(modes[:, 1], np.sort(result.gamma_cm1), atol=1e-6)
    np.testing.assert_allclose(modes[:, 3], result.spread.gamma_std_cm1, atol=1e-6)
    assert (tmp_path / "ph" / "phonon_dos.png").exists()
