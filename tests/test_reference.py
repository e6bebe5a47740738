"""Reference specifications: real tblite and CP2K numbers, stress vs finite differences, bad input."""

import os
import pickle
import shutil

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from mofsnap.exceptions import ReferenceMethodError, ReferenceUnavailableError
from mofsnap.reference import CP2K, DEFAULT_REFERENCE, REFERENCES, XTB, ASEReference, reference_by_name
from molecules import boxed

needs_cp2k = pytest.mark.skipif(shutil.which("cp2k.psmp") is None,
                                reason="the CP2K program cp2k.psmp is not on PATH (apt-get install cp2k)")


def silicon():
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.positions[1] += [0.05, -0.03, 0.02]
    atoms.set_cell(atoms.cell.array @ np.array([[1.0, 0.01, 0.0], [0.0, 0.99, 0.0], [0.0, 0.0, 1.01]]),
                   scale_atoms=True)
    return atoms


@pytest.mark.parametrize("method", ["GFN1-xTB", "GFN2-xTB"])
def test_xtb_forces_and_stress_match_finite_differences(method):
    ref = XTB(method)
    atoms = silicon()
    calc = ref.calculator()
    atoms.calc = calc
    forces, stress = atoms.get_forces(), atoms.get_stress()
    assert stress.shape == (6,) and forces.shape == (2, 3)
    assert np.abs(forces.sum(axis=0)).max() < 1e-6  # translation invariance
    numerical = calculate_numerical_forces(atoms, eps=1e-4, iatoms=[1])
    np.testing.assert_allclose(numerical[0], forces[1], atol=2e-4)  # rows of the atoms in iatoms
    np.testing.assert_allclose(calculate_numerical_stress(atoms, eps=1e-3, force_consistent=False), stress,
                               atol=2e-5)


def test_xtb_settings_hash_is_stable_and_sensitive():
    a, b = XTB(), pickle.loads(pickle.dumps(XTB()))
    assert a.settings_hash == b.settings_hash and len(a.settings_hash) == 16
    assert XTB(electronic_temperature=500.0).settings_hash != a.settings_hash
    assert XTB("GFN2-xTB").settings_hash != a.settings_hash


def test_xtb_rejects_unknown_method_and_missing_cell():
    with pytest.raises(ReferenceMethodError, match="unknown xTB method"):
        XTB("GFN0-xTB")
    molecule = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])
    with pytest.raises(ReferenceMethodError, match="periodic method"):
        XTB().check(molecule)
    flat = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], cell=[4, 4, 0], pbc=True)
    with pytest.raises(ReferenceMethodError, match="no 3D cell"):
        XTB().check(flat)


def test_xtb_warns_about_a_closed_shell_count_without_a_gap():
    """O2 counted closed-shell puts two electrons in its two degenerate π* orbitals (no gap, both partly occupied);
    the same cell with charge +2 (N2's count) and ethanol have wide gaps; an open-shell count is not looked at."""
    oxygen = boxed("O2", 8.0)
    warning = XTB().electronic_warning(oxygen)
    assert warning.startswith("GFN1-xTB finds almost no gap between the occupied and the empty states of O2 "
                              "counted closed-shell (0.00 eV, 2 orbitals partly occupied)")
    assert "counter-ions or terminal ligands" in warning and "--unpaired-electrons" in warning
    assert XTB(charge=2).electronic_warning(oxygen) is None
    assert XTB().electronic_warning(boxed("CH3CH2OH", 8.0)) is None
    assert XTB(unpaired_electrons=2).electronic_warning(oxygen) is None
    assert CP2K().electronic_warning(oxygen) is None  # no cheap look


def test_ase_reference_wraps_any_calculator_and_needs_picklable_factory():
    ref = ASEReference(EMT, "EMT")
    atoms = bulk("Cu", cubic=True)
    atoms.calc = ref.calculator()
    direct = bulk("Cu", cubic=True)
    direct.calc = EMT()
    assert atoms.get_potential_energy() == direct.get_potential_energy()
    with pytest.raises(ReferenceMethodError, match="cannot be pickled"):
        ASEReference(lambda: EMT(), "EMT").check_picklable()


def test_cp2k_presets_follow_the_reference_protocol_and_resolve_in_the_data_files():
    training, optimisation = CP2K("training"), CP2K("optimisation")
    s = training.settings
    assert (s["xc"], s["cutoff"], s["rel_cutoff"], s["ngrids"], s["eps_scf"], s["d3"]) == (
        "PBE", 1000.0, 60.0, 5, 1e-7, False)
    assert optimisation.settings["d3"] and "DFTD3(BJ)" in optimisation.input_template()
    assert "VDW_POTENTIAL" not in training.input_template()
    assert s["kinds"]["Zn"][0].startswith("TZV2P-MOLOPT-SR-GTH") and s["kinds"]["C"][0].startswith("TZV2P-MOLOPT-GTH")
    assert CP2K("training", cutoff=800).settings_hash != training.settings_hash
    assert CP2K("training", mpi_ranks=4, omp_threads=2).settings_hash == training.settings_hash
    assert "mpiexec -n 4" in CP2K("training", mpi_ranks=4).command


@needs_cp2k
def test_every_basis_and_potential_of_the_presets_is_in_the_cp2k_data_files():
    for ref in (CP2K("training"), CP2K("cheap")):
        assert os.path.isdir(ref.data_dir), f"cp2k.psmp is installed but its data folder {ref.data_dir} is " \
                                            "missing: set CP2K_DATA_DIR"
        text = "".join(open(os.path.join(ref.data_dir, f)).read() for f in ref.settings["basis_files"])
        pots = open(os.path.join(ref.data_dir, ref.settings["potential_file"])).read()
        for el, (basis, pot) in ref.settings["kinds"].items():
            assert f" {basis}" in text, (el, basis)
            assert f"{el} {pot}" in pots, (el, pot)


def test_reference_registry_names_and_layout():
    assert list(REFERENCES) == ["gfn1-xtb", "gfn2-xtb", "cp2k-training", "cp2k-optimisation", "cp2k-cheap"]
    assert DEFAULT_REFERENCE in REFERENCES
    assert reference_by_name("gfn1-xtb") == XTB("GFN1-xTB") and reference_by_name("gfn2-xtb") == XTB("GFN2-xTB")
    cheap = reference_by_name("cp2k-cheap", mpi_ranks=2, omp_threads=3)
    assert (cheap.preset, cheap.mpi_ranks, cheap.omp_threads) == ("cheap", 2, 3)
    assert reference_by_name("cp2k-optimisation").settings == CP2K("optimisation").settings
    with pytest.raises(ReferenceMethodError, match="unknown reference 'gfn1'; choose one of gfn1-xtb, gfn2-xtb, "):
        reference_by_name("gfn1")


def test_cp2k_bad_input():
    with pytest.raises(ReferenceMethodError, match="unknown CP2K preset"):
        CP2K("accurate")
    with pytest.raises(ReferenceMethodError, match="unknown CP2K setting"):
        CP2K("cheap", cutof=300)
    xenon = bulk("Xe", "fcc", a=6.2)
    with pytest.raises(ReferenceMethodError, match="no basis set/pseudopotential for Xe"):
        CP2K("training").check(xenon)
    with pytest.raises(ReferenceMethodError, match="periodic method"):
        CP2K("cheap").check(Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]]))
    with pytest.raises(ReferenceUnavailableError, match="apt-get install cp2k"):
        CP2K("cheap", binary="cp2k-missing.psmp").calculator()


@needs_cp2k
def test_cp2k_energy_forces_stress_in_ase_units_and_stress_matches_finite_differences(tmp_path):
    ref = CP2K("cheap", workdir=str(tmp_path), cutoff=200.0, rel_cutoff=30.0)
    atoms = Atoms("H2O", positions=[[0, 0, 0], [0.97, 0, 0], [-0.25, 0.94, 0]],
                  cell=[[4.0, 0, 0], [0.3, 4.2, 0], [0.1, 0.2, 4.4]], pbc=True)
    atoms.positions += 1.5
    with ref.calculator() as calc:
        atoms.calc = calc
        energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        # ASE units: a water molecule in PBE/GTH is about -17.2 Hartree = -468 eV (not Hartree, not kJ/mol)
        assert -480 < energy < -455
        assert forces.shape == (3, 3)
        # the O-H bonds are slightly off equilibrium: forces of order 0.1-10 eV/Å, not Hartree/Bohr
        assert 0.05 < np.abs(forces).max() < 20
        numerical = calculate_numerical_stress(atoms, eps=2e-3, force_consistent=False)
        np.testing.assert_allclose(numerical, stress, atol=1e-5)  # 1.6 MPa


def cell_with(symbols):
    """The atoms of ``symbols`` 3 Å apart on a line in a periodic box (a Cr³⁺-like CrH has 25 electrons)."""
    n = len(Atoms(symbols))
    return Atoms(symbols, positions=[[3.0 * k + 1.0, 2.0, 2.0] for k in range(n)], cell=[3.0 * n + 2.0, 8.0, 8.0],
                 pbc=True)


@pytest.mark.parametrize("symbols, expected", [("Zn", 0), ("ZnH", None), ("Cu", 1), ("Co", 3), ("Ni", 2),
                                               ("CrH", 3), ("V", 1), ("Mg2", 0), ("Zr", 0), ("Cu2", "choose")])
def test_spin_defaults_per_metal(symbols, expected):
    atoms = cell_with(symbols)
    if expected == "choose":
        with pytest.raises(ReferenceMethodError, match=r"2 open-shell metal atoms \(2 Cu \(1 unpaired each\)\): "
                                                       r".* e\.g\. 2 for high-spin ferromagnetic or 0 for anti.*"
                                                       r"\(Cu\(I\), d10, .* counts 0\)$"):
            XTB().check(atoms)
    elif expected is None:  # Zn + H: 31 electrons cannot be closed-shell
        with pytest.raises(ReferenceMethodError, match="0 unpaired electron.* 31 electrons .* parity differs"):
            XTB().check(atoms)
    else:
        assert XTB().unpaired_electrons_for(atoms) == expected
        assert CP2K("cheap").unpaired_electrons_for(atoms) == expected


def test_spin_choice_is_explicit_for_ambiguous_metals_and_enters_the_settings():
    with pytest.raises(ReferenceMethodError, match="no default spin state for Fe .* unpaired_electrons=N"):
        XTB().check(cell_with("Fe"))
    assert XTB(unpaired_electrons=4).unpaired_electrons_for(cell_with("Fe")) == 4
    assert XTB(unpaired_electrons=2).unpaired_electrons_for(cell_with("Cu2")) == 2
    assert XTB(unpaired_electrons=2).settings_hash != XTB().settings_hash
    assert "unpaired_electrons" not in XTB().settings and "unpaired_electrons" not in CP2K("cheap").settings
    with pytest.raises(ReferenceMethodError, match="unpaired_electrons must be >= 0"):
        XTB(unpaired_electrons=-1)
    assert reference_by_name("gfn1-xtb", unpaired_electrons=3) == XTB("GFN1-xTB", unpaired_electrons=3)
    assert reference_by_name("cp2k-cheap", unpaired_electrons=3).settings["unpaired_electrons"] == 3


def test_open_shell_calculators_carry_the_multiplicity():
    copper = cell_with("Cu")
    assert XTB().calculator(copper).parameters["multiplicity"] == 2
    assert XTB().calculator(cell_with("Zn")).parameters["multiplicity"] == 1
    template = CP2K("cheap").input_template(CP2K("cheap").unpaired_electrons_for(cell_with("Co")))
    assert "UKS TRUE" in template and "MULTIPLICITY 4" in template
    assert "UKS" not in CP2K("cheap").input_template(0)
    copper.calc = XTB().calculator(copper)  # a real open-shell tblite calculation
    energy = copper.get_potential_energy()
    closed = cell_with("Zn")
    closed.calc = XTB().calculator(closed)
    assert np.isfinite(energy) and np.isfinite(closed.get_potential_energy())


def test_every_element_must_be_supported_before_any_calculation():
    with pytest.raises(ReferenceMethodError, match="GFN1-xTB has no parameters for Fr"):
        XTB().check(cell_with("Fr"))
    with pytest.raises(ReferenceMethodError, match="no basis set/pseudopotential for U"):
        CP2K("cheap").check(cell_with("U"))
