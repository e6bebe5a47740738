"""SNAPCalculator: finite differences, agreement with plain LAMMPS and dftd3, invariances, settings round trip,
closing, bad input; the reference ZIF-8 settings read from data/."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.filters import FrechetCellFilter
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import MTKNPT, NoseHooverChainNVT
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.optimize import FIRE
from scipy.spatial.transform import Rotation

from mofsnap._lammps import Box, Lammps
from mofsnap.calculator import D3, ZBL, ZIF8_ZBL, SNAPCalculator
from mofsnap.exceptions import LammpsError, ModelError
from mofsnap.model import ZIF8_HYPERPARAMETERS, SNAPModel, default_hyperparameters

from conftest import SNAP_TEST_TYPES as TYPES


@pytest.fixture
def model(snap_model) -> SNAPModel:
    return snap_model


@pytest.fixture
def atoms(triclinic_atoms) -> Atoms:
    return triclinic_atoms


TERMS = {
    "snap": dict(),
    "d3": dict(snap=False, d3=D3(cutoff=12.0, cn_cutoff=8.0)),
    "zbl": dict(snap=False, zbl=ZBL([("C3a", "H1a"), ("H1a", "Zn4a"), ("N3a", "N3a")], inner=1.0, outer=3.5)),
    "all": dict(d3=D3(cutoff=12.0, cn_cutoff=8.0), zbl=ZBL([("H1a", "N3a"), ("C3a", "Zn4a")], 1.5, 3.0)),
}


@pytest.mark.parametrize("terms", TERMS)
def test_forces_and_stress_are_energy_derivatives(model, atoms, terms):
    atoms.calc = SNAPCalculator(model, **TERMS[terms])
    energy = atoms.get_potential_energy()
    assert abs(energy) > 0
    assert np.abs(atoms.get_forces() - calculate_numerical_forces(atoms, eps=1e-4)).max() < 1e-5
    assert np.abs(atoms.get_stress() - calculate_numerical_stress(atoms, eps=1e-5)).max() < 1e-7
    assert atoms.get_potential_energies().sum() == pytest.approx(energy, abs=1e-8)


def test_equals_plain_lammps_run(model, atoms, tmp_path):
    """The same input through a LAMMPS data file and a hand-written input script."""
    atoms.calc = SNAPCalculator(model)
    coeff, param = model.write(tmp_path / "m")
    box = Box(atoms.cell.array)
    x = box.wrap(box.to_lammps(atoms.positions))
    xhi, yhi, zhi, xy, xz, yz = box.prism.split()
    lines = ["data", "", f"{len(atoms)} atoms", f"{len(TYPES)} atom types", f"0 {xhi} xlo xhi", f"0 {yhi} ylo yhi",
             f"0 {zhi} zlo zhi", f"{xy} {xz} {yz} xy xz yz", "", "Masses", ""]
    lines += [f"{k + 1} {m}" for k, m in enumerate([12.011, 1.008, 14.007, 65.38])] + ["", "Atoms # atomic", ""]
    lines += [f"{i + 1} {TYPES.index(t) + 1} {p[0]:.16f} {p[1]:.16f} {p[2]:.16f}"
              for i, (t, p) in enumerate(zip(atoms.arrays["atom_types"], x))]
    (tmp_path / "data").write_text("\n".join(lines) + "\n")
    with Lammps() as lmp:
        lmp.commands(["units metal", "atom_style atomic", "boundary p p p", f"read_data {tmp_path / 'data'}",
                      "pair_style snap", f"pair_coeff * * {coeff} {param} {' '.join(TYPES)}", "run 0"])
        energy = lmp.lmp.get_thermo("pe")
        forces = np.array(lmp.lmp.numpy.extract_atom("f")[: len(atoms)])
        ids = np.array(lmp.lmp.numpy.extract_atom("id")[: len(atoms)])
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-10)
    assert np.allclose(box.to_lammps(atoms.get_forces())[ids - 1], forces, atol=1e-10)


def test_d3_matches_dftd3_package(model, atoms):
    from dftd3.interface import DispersionModel, RationalDampingParam

    d3 = D3(cutoff=15.0, cn_cutoff=10.0)
    atoms.calc = SNAPCalculator(model, snap=False, d3=d3)
    disp = DispersionModel(atoms.numbers, atoms.positions / units.Bohr, atoms.cell.array / units.Bohr,
                           np.array([True, True, True]))
    disp.set_realspace_cutoff(d3.cutoff / units.Bohr, d3.cutoff / units.Bohr, d3.cn_cutoff / units.Bohr)
    ref = disp.get_dispersion(RationalDampingParam(method="pbe", atm=False), grad=True)
    assert atoms.get_potential_energy() == pytest.approx(ref["energy"] * units.Hartree, abs=1e-5)
    ref_forces = -ref["gradient"] * units.Hartree / units.Bohr
    assert np.abs(atoms.get_forces() - ref_forces).max() < 1e-5


def test_rotation_and_permutation_invariance(model, atoms):
    atoms.calc = SNAPCalculator(model, d3=D3(cutoff=10.0, cn_cutoff=8.0))
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)

    rot = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell.array @ rot.T)
    rotated.positions = atoms.positions @ rot.T
    rotated.calc = SNAPCalculator(model, d3=D3(cutoff=10.0, cn_cutoff=8.0))
    assert rotated.get_potential_energy() == pytest.approx(energy, abs=1e-9)
    assert np.allclose(rotated.get_forces(), forces @ rot.T, atol=1e-9)
    assert np.allclose(rotated.get_stress(voigt=False), rot @ stress @ rot.T, atol=1e-10)

    order = np.random.default_rng(3).permutation(len(atoms))
    shuffled = atoms[order]
    shuffled.calc = SNAPCalculator(model, d3=D3(cutoff=10.0, cn_cutoff=8.0))
    assert shuffled.get_potential_energy() == pytest.approx(energy, abs=1e-9)
    assert np.allclose(shuffled.get_forces(), forces[order], atol=1e-9)


def _fresh(model, atoms, **terms):
    copy = atoms.copy()
    copy.calc = SNAPCalculator(model, **terms)
    return copy.get_potential_energy(), copy.get_forces(), copy.get_stress()


@pytest.mark.parametrize("dynamics", ["nvt", "npt", "langevin"])
def test_reused_lammps_state_stays_exact_in_dynamics(model, atoms, dynamics):
    """After MD steps (atoms crossing the cell boundary, cell changes in NPT) the results are bit-equal to a new
    calculator's: they depend on the atoms alone, not on what was computed before (a resumed run relies on it)."""
    terms = dict(d3=D3(cutoff=10.0, cn_cutoff=8.0))
    atoms.calc = SNAPCalculator(model, **terms)
    thermalize_momenta(atoms, 300, rng=np.random.default_rng(5))
    dt = 0.5 * units.fs
    md = {"nvt": lambda: NoseHooverChainNVT(atoms, dt, temperature_K=300, tdamp=100 * dt),
          "npt": lambda: MTKNPT(atoms, dt, temperature_K=300, pressure_au=0.0, tdamp=100 * dt, pdamp=200 * dt),
          "langevin": lambda: Langevin(atoms, dt, temperature_K=300, friction=0.01, fixcm=False,
                                          rng=np.random.default_rng(1)),
          }[dynamics]()
    start = atoms.get_scaled_positions(wrap=False)
    md.run(30)
    assert np.abs(atoms.get_scaled_positions(wrap=False) - start).max() > 0
    energy, forces, stress = _fresh(model, atoms, **terms)
    np.testing.assert_array_equal(atoms.get_forces(), forces)  # those of the last MD step
    assert atoms.get_potential_energy() == energy
    np.testing.assert_array_equal(atoms.get_stress(), stress)


def test_position_updates_across_the_boundary_are_exact(model, atoms):
    atoms.calc = SNAPCalculator(model)
    atoms.get_potential_energy()
    for shift in (0.05, 3.0, -7.5):  # the last two move atoms across the cell faces
        atoms.positions[:4] += shift
        assert atoms.get_potential_energy() == pytest.approx(_fresh(model, atoms)[0], abs=1e-10)


def test_any_order_of_property_requests_gives_fresh_results(model, atoms):
    """Energy, stress and per-atom energies switch on and off inside LAMMPS as ASE asks; values never go stale."""
    terms = dict(d3=D3(cutoff=10.0, cn_cutoff=8.0))
    atoms.calc = SNAPCalculator(model, **terms)
    rng = np.random.default_rng(4)
    for ask in ("forces", "energy", "forces", "forces", "forces", "energy", "energy", "stress", "forces",
                "energies", "forces"):
        atoms.positions += rng.normal(0.0, 0.02, atoms.positions.shape)
        energy, forces, stress = _fresh(model, atoms, **terms)
        value = {"forces": atoms.get_forces, "energy": atoms.get_potential_energy, "stress": atoms.get_stress,
                 "energies": lambda: atoms.get_potential_energies().sum()}[ask]()
        expected = {"forces": forces, "energy": energy, "stress": stress, "energies": energy}[ask]
        assert np.allclose(value, expected, rtol=0, atol=1e-9)
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-9)  # the last one, asked afterwards


def test_md_reading_the_energy_at_every_step_costs_one_lammps_run_per_step(model, atoms, monkeypatch):
    """Forces, then the energy of the same configuration from the stored results (as a frame written at every
    step does): the energy stays on, so each step is one incremental run and no full set-up."""
    runs = []
    command = Lammps.command
    monkeypatch.setattr(Lammps, "command", lambda self, line: (runs.append(line), command(self, line))[1])
    atoms.calc = SNAPCalculator(model)
    dynamics = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dynamics.attach(atoms.get_potential_energy, interval=1)
    dynamics.run(2)  # the first set-up, and the energy switched on
    runs.clear()
    dynamics.run(6)
    assert runs == ["run 1 pre no post no"] * 6


def test_nve_conserves_energy(model, atoms):
    atoms.calc = SNAPCalculator(model, zbl=ZBL([("H1a", "N3a")], 1.5, 2.5))
    thermalize_momenta(atoms, 100, rng=np.random.default_rng(2))
    total = [atoms.get_total_energy()]
    md = VelocityVerlet(atoms, 0.25 * units.fs)
    md.attach(lambda: total.append(atoms.get_total_energy()), interval=10)
    md.run(200)
    assert np.ptp(total) < 2e-3 * len(atoms)


def test_cell_relaxation_with_fire(model, atoms):
    atoms.calc = SNAPCalculator(model, d3=D3(cutoff=10.0, cn_cutoff=8.0))
    start = atoms.get_potential_energy()
    opt = FIRE(FrechetCellFilter(atoms), logfile=None)
    opt.run(fmax=0.5, steps=40)
    assert atoms.get_potential_energy() < start


def test_model_file_round_trip_is_exact(model, tmp_path):
    model.write(tmp_path / "m")
    again = SNAPModel.read(tmp_path / "m")
    assert again.types == model.types
    assert np.array_equal(again.coefficients, model.coefficients)
    assert np.array_equal(again.radii, model.radii) and np.array_equal(again.weights, model.weights)
    assert again.params() == model.params()


def test_reads_foreign_snap_files(tmp_path):
    """Files as other programs write them: comments, blank lines, extra keys, optional keys missing."""
    rows = "\n".join(f"{0.001 * k}  # B{k}" for k in range(31))
    (tmp_path / "x.snapcoeff").write_text(f"# fitted elsewhere\n\n1 31\nZn4a 0.5 1.0  # type line\n{rows}\n")
    (tmp_path / "x.snapparam").write_text("# params\nrcutfac 4.2\ntwojmax 6\n\nbzeroflag 0\nwselfallflag 0\n")
    m = SNAPModel.read(tmp_path / "x")
    assert (m.twojmax, m.rcutfac, m.bzeroflag, m.rfac0) == (6, 4.2, 0, SNAPModel(["Zn4a"]).rfac0)
    assert m.coefficients[0, 30] == pytest.approx(0.030)
    assert m.extra == {"wselfallflag": "0"}
    m.write(tmp_path / "y")
    assert "wselfallflag 0" in (tmp_path / "y.snapparam").read_text()


@pytest.mark.parametrize("edit, message", [
    (lambda c, p: (c.replace(c.splitlines()[8], "nan"), p), r"m.snapcoeff: coefficients of type C3a column 4 is "
                                                             r"nan; a model needs finite numbers \(refit it"),
    (lambda c, p: (c + "0.5 0.25\n", p), r"m.snapcoeff: \d+ entries after the header, but 4 types of 56 "
                                         r"coefficients need 236 .* has extra numbers"),
    (lambda c, p: (c.rsplit("\n", 3)[0] + "\n", p), r"m.snapcoeff: .* the file is truncated"),
    (lambda c, p: (c, p.replace("twojmax 8", "twojmax 6")), r"m.snapcoeff: 56 coefficients per type, but twojmax "
                                                             r"6 in .*m.snapparam needs 31"),
    (lambda c, p: (c, p + "nonsense 1\n"), r"m.snapparam, line \d+: unknown SNAP parameter 'nonsense'; known are"),
    (lambda c, p: (c, p.replace("rcutfac 4.0", "rcutfac 4.0 4.2")), r"m.snapparam, line \d+: expected 'key value'"),
    (lambda c, p: (c, p.replace("rfac0 0.99363", "rfac0 x")), r"m.snapparam: rfac0 is 'x', not a number"),
    (lambda c, p: (c, p.replace("rfac0 0.99363", "rfac0 2.5")), r"m.snapparam: SNAP parameter rfac0 = 2.5 must be "
                                                                 r"in \(0, 1\]"),
    (lambda c, p: (c, p.replace("rcutfac 4.0", "rcutfac 0")), r"m.snapparam: SNAP parameter rcutfac = 0.0 must be "
                                                               r"> 0"),
])
def test_damaged_model_files_are_refused_naming_the_file(model, tmp_path, edit, message):
    coeff, param = model.write(tmp_path / "m")
    new_coeff, new_param = edit(coeff.read_text(), param.read_text())
    assert (new_coeff, new_param) != (coeff.read_text(), param.read_text())
    coeff.write_text(new_coeff)
    param.write_text(new_param)
    with pytest.raises(ModelError, match=message) as error:
        SNAPModel.read(tmp_path / "m")
    assert str(tmp_path) in str(error.value)  # the user's file, not a temporary copy
    with pytest.raises(ModelError, match=message):
        SNAPCalculator(tmp_path / "m")


def test_loads_from_file_prefix(model, atoms, tmp_path):
    model.write(tmp_path / "m")
    atoms.calc = SNAPCalculator(str(tmp_path / "m"))
    assert atoms.get_potential_energy() == pytest.approx(_fresh(model, atoms)[0], abs=1e-10)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.arrays.pop("atom_types"), "no atom types"),
    (lambda a: a.arrays["atom_types"].__setitem__(0, "C3b"), "not in the model"),
    (lambda a: a.arrays["atom_types"].__setitem__(0, "H1a"), "does not match element"),
    (lambda a: a.positions.__setitem__((0, 0), np.nan), "NaN"),
    (lambda a: a.set_pbc([True, True, False]), "periodic"),
])
def test_bad_atoms_are_rejected(model, atoms, change, message):
    change(atoms)
    atoms.calc = SNAPCalculator(model)
    with pytest.raises(ModelError, match=message):
        atoms.get_potential_energy()


def test_bad_settings_are_rejected(model, tmp_path):
    with pytest.raises(ModelError, match="inner cutoff"):
        ZBL([("H1a", "N3a")], inner=2.5, outer=2.0)
    with pytest.raises(ModelError, match="coordination-number cutoff"):
        D3(cutoff=10.0, cn_cutoff=20.0)
    with pytest.raises(ModelError, match="not types of the model"):
        SNAPCalculator(model, zbl=ZBL([("H1b", "N3a")]))
    with pytest.raises(ModelError, match="does not exist"):
        SNAPCalculator(tmp_path / "missing")
    with pytest.raises(ModelError, match="duplicate"):
        SNAPModel(["C3a", "C3a"])


def test_lammps_errors_become_exceptions(model, atoms):
    """An invalid snapparam key is rejected by LAMMPS itself; Python gets the message and survives."""
    bad = SNAPModel(model.types, model.radii, model.weights, model.coefficients, extra={"nonsense": "1"})
    atoms.calc = SNAPCalculator(bad)
    with pytest.raises(LammpsError, match="nonsense"):
        atoms.get_potential_energy()
    atoms.calc = SNAPCalculator(model)
    assert np.isfinite(atoms.get_potential_energy())


@pytest.mark.parametrize("given", ["prefix", "model"])
@pytest.mark.parametrize("terms", ["snap", "zbl", "all"])
def test_todict_rebuilds_an_equal_calculator(model, atoms, tmp_path, given, terms):
    source = str(model.write(tmp_path / "m")[0].with_suffix("")) if given == "prefix" else model
    calc = SNAPCalculator(source, **TERMS[terms])
    settings = calc.todict()
    assert json.loads(json.dumps(settings)) == settings  # plain values: storable in JSON and ASE trajectories
    again = SNAPCalculator(**settings)
    assert again.todict() == settings
    assert (again.model, again.d3, again.zbl, again.snap) == (model, calc.d3, calc.zbl, calc.snap)
    atoms.calc = calc
    copy = atoms.copy()
    copy.calc = again
    assert copy.get_potential_energy() == atoms.get_potential_energy()
    np.testing.assert_array_equal(copy.get_forces(), atoms.get_forces())
    np.testing.assert_array_equal(copy.get_stress(), atoms.get_stress())


def test_settings_round_trip_through_dicts_exactly(model):
    assert SNAPModel(**model.todict()) == model
    assert D3(**D3(functional="b3lyp", damping="zero", cutoff=9.5, cn_cutoff=7.0).todict()) == D3("b3lyp", "zero", 9.5, 7.0)
    zbl = ZBL([("N3a", "H1a"), ("C3a", "Zn4a")], inner=1.2, outer=2.9)
    assert ZBL(**zbl.todict()) == zbl
    changed = SNAPModel(**model.todict())
    changed.coefficients[2, 5] += 1e-12
    assert changed != model


def test_set_changes_the_terms_computed(model, atoms):
    atoms.calc = SNAPCalculator(model, d3=True)
    with_d3 = atoms.get_potential_energy()
    assert atoms.calc.set(d3=None) == {"d3": None}
    assert atoms.calc.todict() == {"model": model.todict()}
    assert atoms.get_potential_energy() == pytest.approx(_fresh(model, atoms)[0], abs=1e-10)
    assert atoms.get_potential_energy() != pytest.approx(with_d3, abs=1e-6)
    with pytest.raises(ModelError, match="nothing to compute"):
        atoms.calc.set(snap=False)


def test_close_releases_lammps_and_the_calculator_stays_usable(model, atoms, tmp_path):
    log = tmp_path / "lammps.log"
    atoms.calc = SNAPCalculator(model, log=str(log))
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    assert "Total wall time" not in log.read_text()  # LAMMPS writes it when its instance ends
    atoms.calc.close()
    assert "Total wall time" in log.read_text()
    atoms.calc.close()  # closing twice is harmless
    start = atoms.positions.copy()
    atoms.positions[0] += 0.05
    assert atoms.get_potential_energy() != pytest.approx(energy, abs=1e-8)  # computed again, by a new LAMMPS
    atoms.positions = start
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), forces, atol=1e-10)


def test_context_manager_closes_at_the_end_of_the_block(model, atoms, tmp_path):
    log = tmp_path / "lammps.log"
    with SNAPCalculator(model, log=str(log)) as calc:
        atoms.calc = calc
        energy = atoms.get_potential_energy()
        assert "Total wall time" not in log.read_text()
    assert "Total wall time" in log.read_text()
    assert energy == pytest.approx(_fresh(model, atoms)[0], abs=1e-10)


def test_a_process_ending_without_finalisers_leaves_no_files(model, atoms, tmp_path):
    """Pool workers end by os._exit, which runs no finalisers: the calculator must leave nothing in the temporary
    directory by then."""
    model_prefix, frame, scratch = tmp_path / "m", tmp_path / "frame.extxyz", tmp_path / "scratch"
    model.write(model_prefix)
    atoms.write(frame)
    scratch.mkdir()
    script = ("import os, sys, ase.io\n"
              "from mofsnap.calculator import SNAPCalculator\n"
              "atoms = ase.io.read(sys.argv[2])\n"
              "atoms.calc = SNAPCalculator(sys.argv[1])\n"
              "print(atoms.get_potential_energy(), flush=True)\n"
              "os._exit(0)\n")
    done = subprocess.run([sys.executable, "-c", script, str(model_prefix), str(frame)], capture_output=True,
                          text=True, env={**os.environ, "TMPDIR": str(scratch)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == pytest.approx(_fresh(model, atoms)[0], abs=1e-8)
    assert list(scratch.iterdir()) == []


def _closest_contacts(atoms, cutoff: float = 4.0) -> dict:
    from ase.neighborlist import neighbor_list

    types = atoms.arrays["atom_types"]
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    closest = {}
    for a, b, dist in zip(types[i], types[j], d):
        closest[tuple(sorted((a, b)))] = min(closest.get(tuple(sorted((a, b))), np.inf), dist)
    return closest


def test_safety_wall_pairs_are_hydrogen_or_metal_pairs_far_at_equilibrium(zif8_atoms):
    """ZBL.safety_wall on ZIF-8: every pair has an H type or two metal types, none comes within outer + margin
    in the structure; the reference model's pairs are among them except H1a-N3a, a two-bond contact at 2.19 A."""
    zbl = ZBL.safety_wall(zif8_atoms)
    closest = _closest_contacts(zif8_atoms)
    for pair in zbl.pairs:
        assert pair[0].startswith("H") or pair[1].startswith("H") or pair == ("Zn4a", "Zn4a")
        assert closest.get(pair, np.inf) > zbl.outer + 0.1 > 1.2  # beyond any bond, and beyond the switch
    assert ("Zn4a", "Zn4a") in zbl.pairs
    assert set(ZIF8_ZBL.pairs) - set(zbl.pairs) == {("H1a", "N3a")}
    assert closest[("H1a", "N3a")] < zbl.outer
    # every H type comes within 3.3 A of every other type; the Zn atoms are 6.0 A apart
    assert ZBL.safety_wall(zif8_atoms, outer=5.5, inner=3.0) == ZBL((("Zn4a", "Zn4a"),), 3.0, 5.5)
    assert ZBL.safety_wall(zif8_atoms, outer=6.5, inner=3.0) is None


def test_safety_wall_holds_the_paddlewheel_metals_apart():
    """DMOF-1: the two Zn of a paddlewheel (2.94 A apart, no bond) get the wall, which is zero there and pushes
    them apart once closer than its outer cutoff."""
    from mofsnap.structures import builtin_structure

    atoms = builtin_structure("dmof1")
    zbl = ZBL.safety_wall(atoms)
    assert ("Zn5a", "Zn5a") in zbl.pairs
    zn = np.flatnonzero(atoms.numbers == 30)
    assert atoms.get_distance(*zn, mic=True) == pytest.approx(2.94, abs=0.01)
    model = SNAPModel(sorted(set(atoms.arrays["atom_types"])))
    wall_only = SNAPCalculator(model, zbl=zbl, snap=False)
    atoms.calc = wall_only
    assert atoms.get_potential_energy() == 0.0
    squeezed = atoms.copy()
    squeezed.arrays["atom_types"] = atoms.arrays["atom_types"]
    squeezed.set_distance(*zn, 1.9, mic=True)
    squeezed.calc = wall_only
    forces = squeezed.get_forces()
    along = squeezed.get_distance(*zn, mic=True, vector=True)
    assert squeezed.get_potential_energy() > 1.0
    assert forces[zn[1]] @ along > 0 > forces[zn[0]] @ along


def test_reference_zif8_settings_cover_the_zif8_types(zif8_atoms):
    """The reference radii/weights and ZBL pairs read from data/ are those of ZIF-8's seven types."""
    types = sorted(set(zif8_atoms.arrays["atom_types"]))
    assert sorted(ZIF8_HYPERPARAMETERS) == types
    radii, weights = default_hyperparameters(types)
    hydrogen = np.array([t.startswith("H") for t in types])
    assert radii[hydrogen].max() < radii[~hydrogen].min()  # H has the shortest reach
    assert (weights > 0).all()
    assert len(ZIF8_ZBL.pairs) == 6 and len(set(ZIF8_ZBL.pairs)) == 6
    assert all(set(pair) <= set(types) and any(t.startswith("H") for t in pair) for pair in ZIF8_ZBL.pairs)
    assert 0 < ZIF8_ZBL.inner < ZIF8_ZBL.outer < 3.0  # switched off before typical non-bonded contacts
