"""Well-tempered metadynamics: PLUMED set-up, a particle in a known double well, free-energy algebra, MOF-5 CVs,
the command."""

from __future__ import annotations

import os

import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes

from mofsnap.analysis.metadynamics import (
    FreeEnergy,
    Hills,
    barrier_height,
    free_energy,
    metad_line,
    phenylene_rings,
    plumed_kernel,
    profile_1d,
    read_hills,
    ring_rotation_input,
    run_metadynamics,
    write_outputs,
)
from mofsnap.exceptions import HillsFileError, MetadynamicsError, RingSelectionError
from mofsnap.structures import builtin_structure

# Double well along x, harmonic across: V = A (x² - 1)² + B x + k/2 (y² + z²); F(x) = A (x² - 1)² + B x exactly.
A, B, K = 0.2, 0.02, 1.0
T = 600.0
KT = units.kB * T
GAMMA = 10.0
PACE = 50
TIMESTEP = 5.0
STEPS = 40000


class DoubleWell(Calculator):
    """One particle in the double well above (eV, Å)."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        x, y, z = self.atoms.positions[0]
        self.results = {
            "energy": A * (x * x - 1) ** 2 + B * x + 0.5 * K * (y * y + z * z),
            "forces": -np.array([[4 * A * x * (x * x - 1) + B, K * y, K * z]]),
        }


def exact_profile(x: np.ndarray) -> np.ndarray:
    return A * (x * x - 1) ** 2 + B * x


def particle_input() -> list[str]:
    return [
        "p: POSITION ATOM=1 NOPBC",
        metad_line(["p.x"], temperature_K=T, sigma=0.1, height=0.01, biasfactor=GAMMA, pace=PACE, grid_min="-3",
                   grid_max="3", grid_spacing=0.02),
        f"PRINT ARG=p.x,metad.bias STRIDE={PACE} FILE=COLVAR",
    ]


@pytest.fixture(scope="module")
def double_well_run(tmp_path_factory):
    """Half the run, then a resumed second half (the results below check the resumed run too)."""
    directory = tmp_path_factory.mktemp("wtm")
    for steps in (STEPS // 2, STEPS):
        atoms = Atoms("Ar", positions=[[-1.0, 0.0, 0.0]], masses=[10.0])
        result = run_metadynamics(atoms, DoubleWell(), particle_input(), temperature_K=T, steps=steps,
                                  directory=directory, timestep_fs=TIMESTEP, thermostat="langevin",
                                  friction_per_fs=0.02, seed=3, thermalize=False, interval=1000, guard=None,
                                  progress=False)  # one particle: its temperature swings beyond any guard
    assert result.steps == STEPS and result.new_steps == STEPS // 2
    return directory


def test_kernel_is_found_and_exported(monkeypatch):
    monkeypatch.delenv("PLUMED_KERNEL", raising=False)
    kernel = plumed_kernel()
    assert kernel.exists() and kernel.name.startswith("libplumedKernel")
    assert os.environ["PLUMED_KERNEL"] == str(kernel)


def test_resumed_run_has_every_hill_once(double_well_run):
    hills = read_hills(double_well_run / "HILLS")
    steps = np.round(hills.time / TIMESTEP).astype(int)
    np.testing.assert_array_equal(steps, np.arange(PACE, STEPS + 1, PACE))
    colvar = np.loadtxt(double_well_run / "COLVAR")
    np.testing.assert_array_equal(np.round(colvar[:, 0] / TIMESTEP).astype(int), np.arange(0, STEPS + 1, PACE))


def test_hills_hold_well_tempered_heights(double_well_run):
    """The bias PLUMED applied equals (γ-1)/γ × the HILLS Gaussians deposited before (units: eV, Å).

    1 % tolerance covers PLUMED's grid interpolation; a missing or doubled γ/(γ-1) would be off by 11 %.
    """
    hills = read_hills(double_well_run / "HILLS")
    assert hills.biasfactor == GAMMA and hills.heights[0] == pytest.approx(0.01 * GAMMA / (GAMMA - 1), rel=0.05)
    colvar = np.loadtxt(double_well_run / "COLVAR")
    for time, x, bias in colvar[::37]:
        before = hills.time < time - 1e-6
        gauss = np.exp(-0.5 * ((x - hills.centers[before, 0]) / hills.sigmas[before, 0]) ** 2)
        assert bias == pytest.approx((GAMMA - 1) / GAMMA * np.sum(hills.heights[before] * gauss), rel=0.01, abs=1e-4)


def test_free_energy_of_double_well_matches_analytic(double_well_run, tmp_path):
    """Tolerance: profile within 0.5 kT (RMS, |x| < 1.4 Å), barrier and basin difference within 0.7 kT."""
    result = free_energy(double_well_run / "HILLS", T)
    x, profile = result.axes[0], result.profiles[0]
    exact = exact_profile(x)
    inside = np.abs(x) < 1.4
    deviation = (profile - exact)[inside]
    assert np.sqrt(np.mean((deviation - deviation.mean()) ** 2)) < 0.5 * KT
    assert result.barrier == pytest.approx(barrier_height(exact - exact.min()), abs=0.7 * KT)

    def basin_difference(f):
        weight = np.exp(-(f - f.min()) / KT)
        return -KT * np.log(weight[(x > 0) & inside].sum() / weight[(x < 0) & inside].sum())

    assert basin_difference(profile) == pytest.approx(basin_difference(exact), abs=0.7 * KT)
    assert 0 < result.barrier_error < 0.7 * KT
    json_path = write_outputs(result, tmp_path)
    assert json_path == tmp_path / "metadynamics.json" and FreeEnergy.read(json_path).barrier == result.barrier
    assert (tmp_path / "fes_1d.png").exists() and (tmp_path / "barrier_convergence.png").exists()


def assert_same_free_energy(back: FreeEnergy, result: FreeEnergy) -> None:
    """Every field of two free energies equal (NaN equal to NaN)."""
    assert back.names == result.names
    assert len(back.axes) == len(result.axes) and len(back.profiles) == len(result.profiles)
    for a, b in zip(back.axes + back.profiles, result.axes + result.profiles):
        np.testing.assert_array_equal(a, b)
    for name in ("surface", "times", "barrier_history", "barriers", "barrier_errors"):
        assert getattr(back, name).shape == getattr(result, name).shape
        np.testing.assert_array_equal(getattr(back, name), getattr(result, name))
    for name in ("temperature_K", "biasfactor", "barrier", "barrier_error"):
        np.testing.assert_array_equal(getattr(back, name), getattr(result, name))


def test_free_energy_round_trips_exactly(double_well_run, tmp_path):
    result = free_energy(double_well_run / "HILLS", T)
    assert_same_free_energy(FreeEnergy.read(result.write(tmp_path / "fe.json")), result)
    # two CVs, one periodic, no crossing yet (NaN barriers)
    rng = np.random.default_rng(5)
    hills = Hills(names=["phi", "d"], time=np.arange(1.0, 41.0), centers=rng.normal(0.0, 0.2, (40, 2)),
                  sigmas=np.full((40, 2), 0.1), heights=np.full(40, 0.01), biasfactor=8.0,
                  periods=[(-np.pi, np.pi), None])
    two = free_energy(hills, 300.0, checkpoints=4)
    assert two.surface.ndim == 2 and np.isnan(two.barrier_history).any()
    assert_same_free_energy(FreeEnergy.read(two.write(tmp_path / "two.json")), two)


def test_resume_with_other_input_is_refused(double_well_run):
    atoms = Atoms("Ar", positions=[[-1.0, 0.0, 0.0]], masses=[10.0])
    other = particle_input()[:1] + [line.replace("HEIGHT=0.01", "HEIGHT=0.02") for line in particle_input()[1:]]
    with pytest.raises(MetadynamicsError, match="differs from this PLUMED input"):
        run_metadynamics(atoms, DoubleWell(), other, temperature_K=T, steps=STEPS + 100, directory=double_well_run,
                         timestep_fs=TIMESTEP, progress=False)


def test_integrating_out_a_coupled_harmonic_cv_is_exact():
    """F(x, y) = A(x²-1)² + k/2 (y - x/2)²: integrating y out leaves the double well (+ const)."""
    x, y = np.linspace(-2, 2, 201), np.linspace(-6, 6, 601)
    surface = exact_profile(x)[:, None] + 0.5 * K * (y[None, :] - 0.5 * x[:, None]) ** 2
    surface -= surface.min()
    profile = profile_1d(surface, [x, y], 0, KT)
    np.testing.assert_allclose(profile, exact_profile(x) - exact_profile(x).min(), atol=1e-6)


def test_barrier_of_periodic_and_single_well_profiles():
    phi = np.linspace(-np.pi, np.pi, 126, endpoint=False)
    two_fold = 0.23 * (1 - np.cos(2 * (phi - 0.4)))  # minima at 0.4 and 0.4 - π, tops 0.46 eV
    assert barrier_height(two_fold, periodic=True) == pytest.approx(0.46, rel=1e-3)
    assert np.isnan(barrier_height(0.3 * (1 - np.cos(phi)), periodic=True))
    noisy = 0.3 * (1 - np.cos(phi)) + 0.002 * np.sin(40 * phi)
    assert np.isnan(barrier_height(noisy, periodic=True, min_prominence=0.05))


def test_bad_hills_are_rejected(tmp_path):
    with pytest.raises(HillsFileError, match="does not exist"):
        read_hills(tmp_path / "HILLS")
    plain = tmp_path / "plain"
    plain.write_text("#! FIELDS time x sigma_x height\n#! SET multivariate false\n 1.0 0.0 0.1 0.01\n")
    with pytest.raises(HillsFileError, match="not well-tempered"):
        free_energy(plain, 300.0)
    (tmp_path / "empty").write_text("#! FIELDS time x sigma_x height biasf\n")
    with pytest.raises(HillsFileError, match="no hills"):
        read_hills(tmp_path / "empty")


def test_unknown_thermostat_is_rejected(tmp_path):
    atoms = Atoms("Ar", positions=[[0.0, 0.0, 0.0]])
    with pytest.raises(MetadynamicsError, match="unknown thermostat"):
        run_metadynamics(atoms, DoubleWell(), particle_input(), temperature_K=T, steps=10, directory=tmp_path,
                         thermostat="berendsen")


# ---------------------------------------------------------------------------------------------------- MOF-5 ring


@pytest.fixture(scope="module")
def mof5():
    return builtin_structure("mof5-primitive")


def test_ring_atoms_have_the_protocol_types(mof5):
    types = mof5.arrays["atom_types"]
    rings = phenylene_rings(mof5)
    assert len(rings) == 6  # three linkers per Zn4O cluster, two clusters per primitive cell
    for ring in rings:
        assert sorted(types[list(ring.ring_atoms)]) == ["C3b"] * 2 + ["C3c"] * 4
        for dihedral in ring.dihedrals:
            assert list(types[list(dihedral)]) == ["C3c", "C3b", "C3a", "O2a"]
        for zn, o in ring.zn_o:
            assert (types[zn], types[o]) == ("Zn4a", "O2a") and mof5.get_distance(zn, o, mic=True) < 2.4
        for dihedral in ring.o_zn_zn_o:
            assert list(types[list(dihedral)]) == ["O2a", "Zn4a", "Zn4a", "O2a"]


class Zero(Calculator):
    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "forces": np.zeros((len(self.atoms), 3))}


def test_plumed_sees_the_ring_turn_and_no_wall_at_rest(mof5, tmp_path, monkeypatch):
    """Turning the ring (and its H) by 0.5 rad about its C3b–C3b axis turns both CVs by 0.5 rad."""
    from ase.calculators.plumed import Plumed

    ring = phenylene_rings(mof5)[1]
    atoms = mof5.copy()
    b1, b2 = ring.dihedrals[0][1], ring.dihedrals[1][1]
    axis = atoms.get_distance(b1, b2, mic=True, vector=True)
    hydrogens = [h for h in range(len(atoms)) if atoms.symbols[h] == "H"
                 and min(atoms.get_distances(h, list(ring.ring_atoms), mic=True)) < 1.2]
    moving = list(ring.ring_atoms) + hydrogens
    shifted = atoms.positions[b1] + atoms.get_distances(b1, moving, mic=True, vector=True)
    turned = Atoms(positions=shifted)
    turned.rotate(np.degrees(0.5), axis, center=atoms.positions[b1])
    atoms.positions[moving] = turned.positions
    lines = ring_rotation_input(atoms, 1, colvar_stride=1)
    monkeypatch.chdir(tmp_path)
    plumed_kernel()
    for structure in (mof5, atoms):
        structure = structure.copy()
        calc = Plumed(calc=Zero(), input=lines, timestep=units.fs, atoms=structure, kT=units.kB * 300, log="log")
        structure.calc = calc
        structure.get_forces()
        calc.plumed.finalize()
        (tmp_path / f"COLVAR.{len(list(tmp_path.glob('COLVAR.*')))}").write_text((tmp_path / "COLVAR").read_text())
    rest, rotated = (np.loadtxt(tmp_path / f"COLVAR.{k}", ndmin=2)[0] for k in (0, 1))
    turn = np.abs(np.angle(np.exp(1j * (rotated[1:3] - rest[1:3]))))
    np.testing.assert_allclose(np.minimum(turn, np.pi - turn), 0.5, atol=1e-6)
    assert rest[-3:] == pytest.approx(0.0)  # all three walls are off in the relaxed structure


def test_ring_selection_errors(mof5):
    with pytest.raises(RingSelectionError, match="has 6 phenylene rings"):
        ring_rotation_input(mof5, 6)
    bare = mof5.copy()
    del bare.arrays["atom_types"]
    with pytest.raises(RingSelectionError, match="atom_types"):
        phenylene_rings(bare)


# ------------------------------------------------------------------------------------------------------- command


def test_command_analyse_writes_the_free_energy_of_the_library(double_well_run, tmp_path, cli):
    r = cli("metadynamics", "analyse", double_well_run / "HILLS", "-T", T, "-o", tmp_path / "fe")
    assert r.status == 0, r.err
    expected = free_energy(double_well_run / "HILLS", T)
    assert_same_free_energy(FreeEnergy.read(tmp_path / "fe" / "metadynamics.json"), expected)
    assert f"barrier: {expected.barrier:.3f} ± {expected.barrier_error:.3f} eV" in r.out
    assert (tmp_path / "fe" / "fes_1d.png").exists() and (tmp_path / "fe" / "barrier_convergence.png").exists()


def dimer_input(height: float = 0.02) -> str:
    metad = metad_line(["d"], temperature_K=300.0, sigma=0.05, height=height, biasfactor=5.0, pace=10,
                       grid_min="1.5", grid_max="4.0", grid_spacing=0.01)
    return f"d: DISTANCE ATOMS=1,2 NOPBC\n{metad}\n"


@pytest.fixture
def dimer(tmp_path):
    """A Cu dimer (EMT) and a PLUMED input biasing its bond length."""
    Atoms("Cu2", positions=[[0.0, 0.0, 0.0], [2.3, 0.0, 0.0]]).write(tmp_path / "cu2.extxyz")
    (tmp_path / "plumed.in").write_text(dimer_input())
    return tmp_path


def test_command_runs_resumes_and_analyses(dimer, cli):
    args = ("metadynamics", "run", dimer / "cu2.extxyz", "--plumed", dimer / "plumed.in", "--calculator", "emt",
            "-T", "300", "--timestep", "2", "--interval", "50", "-o", dimer / "run", "--no-progress")
    r = cli(*args, "--steps", "200")
    assert r.status == 0, r.err
    hills = read_hills(dimer / "run" / "HILLS")
    np.testing.assert_array_equal(np.round(hills.time / 2.0).astype(int), np.arange(10, 201, 10))
    assert (dimer / "run" / "plumed.dat").read_text().splitlines()[0] == "UNITS LENGTH=A ENERGY=eV TIME=fs"
    result = FreeEnergy.read(dimer / "run" / "metadynamics.json")
    assert result.names == ["d"] and result.biasfactor == 5.0 and result.temperature_K == 300.0
    assert "barrier: " in r.out
    r = cli(*args, "--steps", "300")  # continues the run: every hill once
    assert r.status == 0, r.err
    hills = read_hills(dimer / "run" / "HILLS")
    np.testing.assert_array_equal(np.round(hills.time / 2.0).astype(int), np.arange(10, 301, 10))


def test_command_rejects_bad_input_in_one_line(dimer, cli):
    def one_line(r, text):
        assert r.status == 1, r.out
        assert len(r.err.strip().splitlines()) == 1 and r.err.startswith("mofsnap metadynamics: error: ")
        assert text in r.err

    one_line(cli("metadynamics", "analyse", dimer / "HILLS", "-o", dimer / "x"),
             "analyse needs the temperature of the run: give -T/--temperature K")
    one_line(cli("metadynamics", "analyse", dimer / "HILLS", "-T", "300", "-o", dimer / "x"), "does not exist")
    one_line(cli("metadynamics", "run", dimer / "cu2.extxyz", "--plumed", dimer / "missing.in", "--calculator",
                 "emt", "-o", dimer / "x"), "missing.in does not exist")
    args = ("metadynamics", "run", dimer / "cu2.extxyz", "--calculator", "emt", "--steps", "20", "--interval", "10",
            "-o", dimer / "run", "--no-progress", "--plumed")
    assert cli(*args, dimer / "plumed.in").status == 0
    (dimer / "other.in").write_text(dimer_input(height=0.03))
    one_line(cli(*args, dimer / "other.in"), "differs from this PLUMED input")
