"""Any MOF in: CIFs ASE cannot parse, the checks before any reference call (partial occupancy, guests, missing
hydrogens, overlaps, elements), left-handed cells, SNAP-ready cells, and the structures command on files."""

import json
from collections import Counter

import numpy as np
import pytest
from ase import Atoms
from ase.cell import Cell
from ase.io import read, write

from mofsnap.exceptions import ReferenceMethodError, StructureError
from mofsnap.learn import load_structure
from mofsnap.reference import XTB
from mofsnap.structures import (check_structure, describe_supercell, find_primitive_cell, framework,
                                perpendicular_widths, prepare_structure, read_structure, snap_ready_cell)
from mofsnap.structures.cif import normalise_spacegroup_name


def cif_text(sites, cell, spacegroup=None, symops=None, disorder=False):
    """A CIF of ``sites`` = [(label, symbol, (x, y, z) fractional, occupancy[, group])]."""
    a, b, c, alpha, beta, gamma = cell
    lines = ["data_test", f"_cell_length_a {a}", f"_cell_length_b {b}", f"_cell_length_c {c}",
             f"_cell_angle_alpha {alpha}", f"_cell_angle_beta {beta}", f"_cell_angle_gamma {gamma}"]
    if spacegroup:
        lines.append(f"_symmetry_space_group_name_H-M '{spacegroup}'")
    if symops:
        lines += ["loop_", "_symmetry_equiv_pos_as_xyz", *symops]
    lines += ["loop_", "_atom_site_label", "_atom_site_type_symbol", "_atom_site_fract_x", "_atom_site_fract_y",
              "_atom_site_fract_z", "_atom_site_occupancy"] + (["_atom_site_disorder_group"] if disorder else [])
    for label, symbol, (x, y, z), occupancy, *group in sites:
        lines.append(f"{label} {symbol} {x:.6f} {y:.6f} {z:.6f} {occupancy}" + (f" {group[0]}" if disorder else ""))
    return "\n".join(lines) + "\n"


def mu_oh_chain(substituent="H"):
    """An Al(μ-OR) chain along x: Al-O 1.90 Å, each O bridging two Al, with an H or a CH3 group on O."""
    cell = np.diag([3.70, 9.0, 9.0])
    atoms = Atoms("AlO", positions=[[0.0, 4.5, 4.5], [1.85, 4.5, 5.0]], cell=cell, pbc=True)
    if substituent == "H":
        atoms += Atoms("H", positions=[[1.85, 4.5, 5.97]])
    else:
        atoms += Atoms("C", positions=[[1.85, 4.5, 6.43]])
        atoms += methyl_hydrogens(atoms.positions[2], 0.0)
    return atoms


def methyl_hydrogens(carbon, phase_deg):
    """Three H on a methyl C whose C-O bond points down z, rotated by ``phase_deg`` about z."""
    phases = np.radians(phase_deg + np.array([0.0, 120.0, 240.0]))
    tilt = np.radians(180.0 - 109.47)
    return Atoms("H3", positions=[carbon + 1.09 * np.array([np.sin(tilt) * np.cos(p), np.sin(tilt) * np.sin(p),
                                                            np.cos(tilt)]) for p in phases])


# ---------------------------------------------------------------- reading CIFs ASE cannot parse
@pytest.mark.parametrize("spacegroup, symops, cell, natoms", [
    ("I m c m", None, (10, 11, 12, 90, 90, 90), 16),        # a non-standard setting of Imma: 16 general positions
    ("P4(2)/mmc", None, (10, 10, 12, 90, 90, 90), 16),      # 4/mmm has 16 operations, primitive lattice
    (None, ["x,y,z"], (10, 11, 12, 90, 90, 90), 1),         # a symmetry loop holding one bare x,y,z
])
def test_cifs_ase_cannot_parse_are_read(tmp_path, spacegroup, symops, cell, natoms):
    path = tmp_path / "odd.cif"
    path.write_text(cif_text([("C1", "C", (0.1, 0.2, 0.3), 1)], cell, spacegroup, symops))
    with pytest.raises(Exception):
        read(path)  # ASE alone fails on these files
    atoms = read_structure(path)
    assert len(atoms) == natoms
    assert atoms.arrays["cif_site"].tolist() == ["C1"] * natoms
    fractional = atoms.get_scaled_positions()
    assert len(np.unique(np.round(fractional, 6), axis=0)) == natoms  # no duplicates
    assert np.isclose(fractional, [0.1, 0.2, 0.3]).all(axis=1).any()  # the site itself is among them


MONOCLINIC = (9.0, 10.0, 11.0, 90.0, 104.0, 90.0)
SITES = [("Zn1", "Zn", (0.10, 0.20, 0.30), 1), ("O1", "O", (0.25, 0.20, 0.30), 1), ("C1", "C", (0.60, 0.70, 0.15), 1)]


def test_database_exports_with_a_line_before_the_header_or_no_header_are_read(tmp_path, caplog):
    text = cif_text(SITES, MONOCLINIC, "P 1 21/c 1")
    (tmp_path / "plain.cif").write_text(text)
    expected = read_structure(tmp_path / "plain.cif")
    (tmp_path / "export.cif").write_text("{'_ref': 'TBD', '_method': 'VASP DFT with PBE;DDEC'}\n" + text)
    (tmp_path / "headless.cif").write_text(text.split("\n", 1)[1])
    for name, warning in (("export", "skipping 1 line(s) before its first data_ block header"),
                          ("headless", "has no data_ block header; reading it as the block data_headless")):
        caplog.clear()
        atoms = read_structure(tmp_path / f"{name}.cif")
        assert warning in caplog.text
        np.testing.assert_allclose(atoms.positions, expected.positions, atol=1e-12)
        assert atoms.arrays["cif_site"].tolist() == expected.arrays["cif_site"].tolist()


def test_cartesian_sites_and_unlabelled_sites_are_read(tmp_path):
    (tmp_path / "fractional.cif").write_text(cif_text(SITES, MONOCLINIC, "P 1 21/c 1"))
    expected = read_structure(tmp_path / "fractional.cif")
    cell = Cell.fromcellpar(MONOCLINIC)  # the CIF's default Cartesian frame: a along x, b in the ab plane
    header, _ = cif_text(SITES, MONOCLINIC, "P 1 21/c 1").split("loop_\n_atom_site_label")
    loop = ["loop_", "_atom_site_label", "_atom_site_type_symbol", "_atom_site_Cartn_x", "_atom_site_Cartn_y",
            "_atom_site_Cartn_z"] + [f"{label} {symbol} " + " ".join(f"{v:.8f}" for v in cell.cartesian_positions(xyz))
                                     for label, symbol, xyz, _ in SITES]
    (tmp_path / "cartesian.cif").write_text(header + "\n".join(loop) + "\n")
    rotation = Cell.fromcellpar(MONOCLINIC).array  # the same sites in another frame, given by its matrix
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    tran = np.linalg.inv((turn @ rotation.T))  # fractional = tran @ cartesian'
    pairs = [f"_atom_sites_fract_tran_matrix_{i + 1}{j + 1} {tran[i, j]:.12f}" for i in range(3) for j in range(3)]
    rows = [f"{label} {symbol} " + " ".join(f"{v:.8f}" for v in turn @ cell.cartesian_positions(xyz))
            for label, symbol, xyz, _ in SITES]
    (tmp_path / "turned.cif").write_text(header + "\n".join(pairs + loop[:6] + rows) + "\n")
    unlabelled = cif_text(SITES, MONOCLINIC, "P 1 21/c 1").replace("_atom_site_label\n", "")
    for label, *_ in SITES:
        unlabelled = unlabelled.replace(f"{label} ", "", 1)
    (tmp_path / "unlabelled.cif").write_text(unlabelled)
    for name in ("cartesian", "turned", "unlabelled"):
        atoms = read_structure(tmp_path / f"{name}.cif")
        assert atoms.get_chemical_symbols() == expected.get_chemical_symbols(), name
        np.testing.assert_allclose(atoms.positions, expected.positions, atol=1e-6, err_msg=name)
    assert read_structure(tmp_path / "unlabelled.cif").arrays["cif_site"][:4].tolist() == ["Zn1"] * 4


def test_diamond_in_an_underscore_space_group_is_typed_by_the_command(cli, tmp_path):
    a = 3.567
    path = tmp_path / "diamond.cif"
    path.write_text(cif_text([("C1", "C", (0, 0, 0), 1)], (a, a, a, 90, 90, 90), "f_d_-3_m"))
    r = cli("structures", path, "-o", tmp_path / "out")
    assert r.status == 0, r.err
    summary = json.loads((tmp_path / "out" / "diamond.json").read_text())
    assert summary["atom_types"] == {"C4a": 8}  # origin choice 1: 8 atoms, each with 4 C at a√3/4
    assert summary["shortest_distance_A"] == pytest.approx(a * np.sqrt(3) / 4, abs=1e-3)
    assert summary["types"]["C4a"]["neighbours"] == "4 C4a"
    assert "C4a" in r.out and "8" in r.out


@pytest.mark.parametrize("name, normalised", [("f_d_-3_m", "f d -3 m"), ("P4(2)/mmc", "P4_2/mmc"),
                                              ("'P 42/m m c'", "P 42/m m c")])
def test_spacegroup_spellings_are_normalised(name, normalised):
    assert normalise_spacegroup_name(name) == normalised


# ---------------------------------------------------------------- partial occupancy
def _disordered_methoxide_cif(tmp_path, occupancies, groups=None):
    atoms = mu_oh_chain("CH3")
    minor = methyl_hydrogens(atoms.positions[2], 60.0)
    sites = [(f"{s}{k}", s, tuple(f), 1) for k, (s, f) in enumerate(zip(atoms.get_chemical_symbols()[:3],
                                                                        atoms.get_scaled_positions()[:3]))]
    fractional = atoms.cell.scaled_positions
    sites += [(f"H{k}A", "H", tuple(f), occupancies[0], (groups or [0, 0])[0])
              for k, f in enumerate(fractional(atoms.positions[3:]))]
    sites += [(f"H{k}B", "H", tuple(f), occupancies[1], (groups or [0, 0])[1])
              for k, f in enumerate(fractional(minor.positions))]
    sites = [s if len(s) == 5 else (*s, 0) for s in sites]
    path = tmp_path / "methoxide.cif"
    path.write_text(cif_text(sites, atoms.cell.cellpar(), symops=["x,y,z"], disorder=True))
    return path


def test_partial_occupancy_is_refused_naming_the_sites(tmp_path, cli):
    path = _disordered_methoxide_cif(tmp_path, (0.6, 0.4))
    with pytest.raises(StructureError, match=r"partial occupancy .* sites H0A \(0\.6\), H1A \(0\.6\), H2A \(0\.6\), "
                                             r"H0B \(0\.4\).*--keep-major"):
        prepare_structure(path)
    r = cli("structures", path, "-o", tmp_path / "out")
    assert r.status == 1 and len(r.err.strip().splitlines()) == 1
    assert r.err.startswith("mofsnap structures: error: partial occupancy") and "H2B (0.4)" in r.err


@pytest.mark.parametrize("occupancies, groups, kept", [((0.6, 0.4), None, "A"), ((0.5, 0.5), [2, 1], "B")])
def test_keep_major_keeps_one_methyl_orientation(tmp_path, occupancies, groups, kept):
    path = _disordered_methoxide_cif(tmp_path, occupancies, groups)
    atoms, warnings = prepare_structure(path, keep_major=True)
    assert atoms.get_chemical_formula() == "CH3AlO"
    assert sorted(atoms.arrays["cif_site"][atoms.numbers == 1]) == [f"H{k}{kept}" for k in range(3)]
    assert sorted(atoms.arrays["atom_types"]) == ["Al2a", "C4a", "H1a", "H1a", "H1a", "O3a"]
    assert len(warnings) == 1 and "kept the major component" in warnings[0]


def test_half_occupied_sites_without_groups_have_no_major_component(tmp_path, cli):
    path = _disordered_methoxide_cif(tmp_path, (0.5, 0.5))
    with pytest.raises(StructureError, match="no major component at CIF sites H0A.*disorder_group"):
        prepare_structure(path, keep_major=True)
    r = cli("structures", path, "--keep-major", "-o", tmp_path / "out")
    assert r.status == 1 and "no major component" in r.err and len(r.err.strip().splitlines()) == 1


# ---------------------------------------------------------------- guests and solvent
def _solvated(rng):
    from mofsnap.structures import builtin_structure

    framework = builtin_structure("mof5-primitive")
    del framework.arrays["atom_types"]
    grid = rng.random((4000, 3)) @ framework.cell.array
    distances = np.linalg.norm(grid[:, None] - framework.positions[None], axis=2).min(axis=1)
    centre = grid[np.argmax(distances)]
    water = Atoms("OH2", positions=centre + np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
    return framework, framework + water


def test_guest_molecules_are_listed_and_removed_on_request(rng, tmp_path, cli):
    framework, solvated = _solvated(rng)
    with pytest.raises(StructureError, match=r"guest or solvent molecules .*1 x H2O \(atoms 106,107,108\).*"
                                             r"--remove-guests"):
        check_structure(solvated)
    cleaned, warnings = check_structure(solvated, remove_guests=True)
    assert cleaned.get_chemical_formula() == framework.get_chemical_formula()
    np.testing.assert_array_equal(cleaned.positions, framework.positions)
    assert warnings == ["removed guest or solvent molecules: 1 x H2O (atoms 106,107,108)"]
    write(tmp_path / "solvated.extxyz", solvated)
    r = cli("structures", tmp_path / "solvated.extxyz", "-o", tmp_path / "out")
    assert r.status == 1 and "1 x H2O" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("structures", tmp_path / "solvated.extxyz", "--remove-guests", "-o", tmp_path / "out")
    assert r.status == 0, r.err
    summary = json.loads((tmp_path / "out" / "solvated.json").read_text())
    assert summary["atom_types"] == {"C3a": 12, "C3b": 12, "C3c": 24, "H1a": 24, "O2a": 24, "O4a": 2, "Zn4a": 8}
    assert summary["warnings"] == warnings


@pytest.mark.parametrize("remove_guests", [False, True])
def test_a_hydrogen_stretched_off_its_carbon_is_refused_as_misplaced_not_removed_as_a_guest(remove_guests):
    from mofsnap.structures import builtin_structure

    atoms = builtin_structure("mof5-primitive")
    del atoms.arrays["atom_types"]
    h = int(np.flatnonzero(atoms.numbers == 1)[0])
    vectors = atoms.get_distances(h, np.arange(len(atoms)), mic=True, vector=True)
    vectors[h] = np.inf
    c = int(np.argmin(np.linalg.norm(vectors, axis=1)))
    bond = -vectors[c] / np.linalg.norm(vectors[c])  # from the carbon to its H
    atoms.positions[h] = atoms.positions[c] + 1.30 * bond
    with pytest.raises(StructureError, match=rf"^hydrogen atoms bonded to nothing: atom {h} \(H\) 1.30 Å from "
                                             rf"atom {c} \(C\), beyond the C-H bond length of 1.28 Å; a lone H is no "
                                             "guest but a misplaced one"):
        check_structure(atoms, remove_guests=remove_guests)


def test_learn_reads_a_cif_through_the_same_checks(rng, tmp_path):
    framework, solvated = _solvated(rng)
    write(tmp_path / "solvated.cif", solvated)
    with pytest.raises(StructureError, match=r"structure .*solvated.cif: guest or solvent molecules .*1 x H2O.*"
                                             r"give learn the .extxyz that command writes"):
        load_structure(str(tmp_path / "solvated.cif"))
    write(tmp_path / "framework.cif", framework)
    atoms = load_structure(str(tmp_path / "framework.cif"))
    assert Counter(atoms.arrays["atom_types"]) == Counter(prepare_structure("mof5-primitive")[0].arrays["atom_types"])


def test_the_intake_benchmark_tallies_each_cif_by_its_outcome(rng, tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the benchmarks are scripts
    from cif_intake import main

    framework, solvated = _solvated(rng)
    write(tmp_path / "framework.cif", framework)
    write(tmp_path / "solvated.cif", solvated)
    (tmp_path / "broken.cif").write_text("data_x\n_cell_length_a 10\nloop_\n")
    results = main([str(tmp_path), "--workers", "1", "--json", str(tmp_path / "intake.json")])
    assert (results["files"], results["ok"], results["refused"], results["unexpected"]) == (3, 1, 2, 0)
    assert results["refusals"] == {"guest or solvent molecules not bonded to the framework": 1,
                                   "not a readable CIF": 1}
    ok = next(o for o in results["outcomes"] if o["file"] == "framework.cif")
    assert (ok["atoms"], ok["atom_types"], ok["snap_ready_atoms"]) == (len(framework), 7, len(framework))
    assert json.loads((tmp_path / "intake.json").read_text())["outcomes"] == results["outcomes"]
    assert capsys.readouterr().out.startswith("3 CIFs in ")


def test_a_molecule_alone_is_no_framework(paddlewheel):
    atoms = paddlewheel
    atoms.set_cell(np.eye(3) * 15.0)
    atoms.pbc = True
    atoms.center()
    with pytest.raises(StructureError, match="no periodic framework.*finite molecule"):
        check_structure(atoms)


# ---------------------------------------------------------------- missing hydrogens
def test_hydrogen_less_linker_names_the_carbons(tmp_path, cli):
    from mofsnap.structures import builtin_structure

    typed = builtin_structure("mof5-primitive")
    atoms = typed[typed.numbers != 1]
    ring_ch = np.flatnonzero(typed.arrays["atom_types"][typed.numbers != 1] == "C3c")
    with pytest.raises(StructureError, match=r"missing hydrogens: C with too few bonds.*: 24 atom\(s\) "
                                             + ", ".join(f"{a} \\(C\\)" for a in ring_ch[:8])):
        check_structure(atoms)
    write(tmp_path / "bare.extxyz", atoms)
    r = cli("structures", tmp_path / "bare.extxyz", "-o", tmp_path / "out")
    assert r.status == 1 and "missing hydrogens" in r.err and len(r.err.strip().splitlines()) == 1


@pytest.mark.parametrize("drop, phrase", [
    ("methyl H", "pyramidal C with three bonds"),
    ("hydroxyl H", "O bonded to one metal only"),
])
def test_missing_hydrogens_by_valence_rules(drop, phrase):
    if drop == "methyl H":
        atoms = mu_oh_chain("CH3")
        del atoms[[5]]
        bad = 2
    else:  # a terminal aqua/hydroxo O on the Al of the chain, without its H
        atoms = mu_oh_chain("H")
        atoms += Atoms("O", positions=[[0.0, 4.5, 2.6]])
        bad = 3
    with pytest.raises(StructureError, match=f"missing hydrogens: {phrase}.*1 atom\\(s\\) {bad} "):
        check_structure(atoms)


def test_complete_structures_pass_the_hydrogen_rules(zif8_atoms, mof5_atoms):
    for atoms in (zif8_atoms, mof5_atoms, mu_oh_chain("H"), mu_oh_chain("CH3")):
        checked, warnings = check_structure(atoms)
        assert len(checked) == len(atoms) and warnings == []


# ---------------------------------------------------------------- overlaps and elements
def test_overlapping_cif_sites_are_named(tmp_path):
    atoms = mu_oh_chain("H")
    sites = [(f"{s}1", s, tuple(f), 1) for s, f in zip(atoms.get_chemical_symbols(), atoms.get_scaled_positions())]
    sites.append(("O1X", "O", tuple(atoms.get_scaled_positions()[1] + [0.02, 0, 0]), 1))
    path = tmp_path / "overlap.cif"
    path.write_text(cif_text(sites, atoms.cell.cellpar(), symops=["x,y,z"]))
    with pytest.raises(StructureError, match=r"overlapping atoms .*atom 1 \(O, CIF site O1\) and atom 3 "
                                             r"\(O, CIF site O1X\) at 0\.074 Å.*remove duplicate"):
        prepare_structure(path)


@pytest.mark.parametrize("symbol, match", [("Bk", "no covalent radius"), ("Cm", "no D3 parameters")])
def test_elements_without_parameters_are_refused(symbol, match):
    atoms = mu_oh_chain("H")
    atoms.symbols[0] = symbol
    with pytest.raises(StructureError, match=f"{match} .*1 atom\\(s\\) 0 \\({symbol}\\)"):
        check_structure(atoms)


def test_the_reference_must_know_every_element():
    atoms = mu_oh_chain("H")
    atoms.symbols[0] = "U"
    with pytest.raises(ReferenceMethodError, match="no parameters for U"):
        check_structure(atoms, reference=XTB("GFN1-xTB"))


def test_command_checks_the_elements_of_the_reference(tmp_path, cli):
    atoms = mu_oh_chain("H")
    atoms.symbols[0] = "U"
    write(tmp_path / "u.extxyz", atoms)
    r = cli("structures", tmp_path / "u.extxyz", "-o", tmp_path / "out")
    assert r.status == 1 and r.err.strip() == ("mofsnap structures: error: GFN1-xTB has no parameters for U "
                                               "(only H to Rn)")


def test_command_takes_the_spin_choice_of_open_shell_metals(tmp_path, cli):
    chain = mu_oh_chain("H").repeat((2, 1, 1))
    chain.symbols[chain.symbols == "Al"] = "Cr"  # two Cr(III): 66 electrons, 3 unpaired each at high spin
    write(tmp_path / "cr.extxyz", chain)
    r = cli("structures", tmp_path / "cr.extxyz", "-o", tmp_path / "out")
    assert r.status == 1 and len(r.err.strip().splitlines()) == 1
    assert "2 open-shell metal atoms" in r.err and "--unpaired-electrons N), e.g. 6" in r.err
    r = cli("structures", tmp_path / "cr.extxyz", "--unpaired-electrons", "1", "-o", tmp_path / "out")
    assert r.status == 1 and "1 unpaired electron(s) is impossible with 66 electrons" in r.err
    r = cli("structures", tmp_path / "cr.extxyz", "--unpaired-electrons", "6", "-o", tmp_path / "out")
    assert r.status == 0, r.err


# ---------------------------------------------------------------- cells
@pytest.mark.parametrize("cell, rank", [([[5, 0, 0], [5, 0, 0], [0, 0, 5]], 2), ([0, 0, 0], 0)])
def test_a_periodic_structure_with_a_flat_cell_is_one_line_in_every_command(tmp_path, cli, cell, rank):
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], cell=cell, pbc=True)
    write(tmp_path / "flat.extxyz", water)
    message = (f"error: the structure is periodic along xyz but its cell vectors span only {rank} dimension(s) "
               f"(zero volume); give three linearly independent cell vectors, or pbc=False for a molecule\n")
    for command in ("structures", "cbad"):
        result = cli(command, tmp_path / "flat.extxyz", "-o", tmp_path / command)
        assert result.status == 1 and result.err == f"mofsnap {command}: {message}"


def test_left_handed_cell_is_reoriented():
    from mofsnap.structures import builtin_structure

    atoms = builtin_structure("mof5-primitive")
    flipped = atoms.copy()
    flipped.set_cell(atoms.cell.array[[1, 0, 2]], scale_atoms=False)
    assert np.linalg.det(flipped.cell.array) < 0
    checked, warnings = check_structure(flipped)
    assert np.linalg.det(checked.cell.array) > 0
    assert warnings == ["the cell was left-handed; its three vectors were negated (same lattice and positions)"]
    np.testing.assert_allclose(checked.get_all_distances(mic=True), atoms.get_all_distances(mic=True), atol=1e-9)


def smallest_supercells_by_brute_force(cell, cutoff):
    """The fewest cells of any supercell matrix with entries in -2..2 whose widths all exceed 2 x cutoff, and the
    largest smallest width among those (every matrix is tried, no lattice reduction)."""
    entries = np.array(np.meshgrid(*[np.arange(-2, 3)] * 9, indexing="ij")).reshape(9, -1).T.reshape(-1, 3, 3)
    counts = np.rint(np.abs(np.linalg.det(entries))).astype(int)
    entries, counts = entries[counts > 0], counts[counts > 0]
    vectors = entries @ cell
    volume = np.abs(np.linalg.det(vectors))
    faces = np.cross(vectors[:, [1, 2, 0]], vectors[:, [2, 0, 1]])
    widths = (volume[:, None] / np.linalg.norm(faces, axis=2)).min(axis=1)
    passing = widths > 2 * cutoff
    fewest = counts[passing].min()
    return fewest, widths[passing & (counts == fewest)].max()


def assert_is_a_supercell_of(supercell, atoms, cells):
    """Every atom of ``supercell`` sits on a lattice image of an atom of ``atoms`` of the same type, each of
    those ``cells`` times."""
    assert len(supercell) == cells * len(atoms)
    fractional = np.linalg.solve(atoms.cell.array.T, supercell.positions.T).T
    offset = fractional[:, None, :] - atoms.get_scaled_positions(wrap=False)[None, :, :]
    distance = np.linalg.norm((offset - np.rint(offset)) @ atoms.cell.array, axis=2)
    image_of = distance.argmin(axis=1)
    assert distance.min(axis=1).max() < 1e-6
    assert (supercell.arrays["atom_types"] == atoms.arrays["atom_types"][image_of]).all()
    assert np.bincount(image_of, minlength=len(atoms)).tolist() == [cells] * len(atoms)


@pytest.mark.parametrize("cutoff, cells", [(3.6, 2), (4.6, 4), (1.0, 1)])
def test_snap_ready_cell_of_a_rod_chain_has_the_fewest_atoms(cutoff, cells):
    atoms = mu_oh_chain("H")  # 3.7 Å along the chain, 9 Å across; for 4.6 Å four cells, where 3 x 2 x 2 is 12
    atoms.arrays["atom_types"] = np.array(["Al2a", "O3a", "H1a"])
    supercell, matrix = snap_ready_cell(atoms, cutoff)
    assert round(np.linalg.det(matrix)) == cells == smallest_supercells_by_brute_force(atoms.cell.array, cutoff)[0]
    assert (perpendicular_widths(supercell.cell.array) > 2 * cutoff).all()
    np.testing.assert_allclose(supercell.cell.array, matrix @ atoms.cell.array)
    assert_is_a_supercell_of(supercell, atoms, cells)
    if cells == 2:  # as wide as the diagonal repeat, which is preferred
        assert describe_supercell(matrix) == "the 2 x 1 x 1 supercell (2 cells)"


def test_snap_ready_cell_of_mof74_is_two_cells_not_eight():
    atoms = framework("mof74", primitive=True)  # rhombohedral, 54 atoms, 6.6 Å wide in all three directions
    supercell, matrix = snap_ready_cell(atoms, 3.6)
    fewest, widest = smallest_supercells_by_brute_force(atoms.cell.array, 3.6)
    assert round(np.linalg.det(matrix)) == fewest == 2  # the diagonal 2 x 2 x 2 repeat has 432 atoms
    assert perpendicular_widths(supercell.cell.array).min() == pytest.approx(widest, rel=1e-9)
    assert_is_a_supercell_of(supercell, atoms, 2)
    assert supercell.info["name"] == atoms.info["name"]
    np.testing.assert_allclose(np.sort(supercell.get_all_distances(mic=True)[0])[1:7],
                               np.sort(atoms.get_all_distances(mic=True)[0])[1:7], atol=1e-9)


def test_snap_ready_cell_is_the_smallest_in_a_skewed_cell():
    cell = np.array([[6.6, 0.0, 0.0], [2.5, 7.1, 0.0], [-1.2, 1.9, 6.8]])
    atoms = Atoms("C", positions=[[0.0, 0.0, 0.0]], cell=cell, pbc=True)
    atoms.arrays["atom_types"] = np.array(["C0a"])
    supercell, matrix = snap_ready_cell(atoms, 4.0)
    fewest, widest = smallest_supercells_by_brute_force(cell, 4.0)
    assert len(supercell) == round(np.linalg.det(matrix)) == fewest
    assert perpendicular_widths(supercell.cell.array).min() == pytest.approx(widest, rel=1e-9)
    assert np.linalg.det(supercell.cell.array) > 0


def test_a_supercell_is_described_by_the_cell_it_makes():
    assert describe_supercell(np.eye(3, dtype=int)) == "the cell as it is"
    assert describe_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 1]]) == ("the same lattice on the wider basis "
                                                                      "[[1, 1, 0], [0, 1, 0], [0, 0, 1]]")
    assert describe_supercell(np.diag([3, 1, 2])) == "the 3 x 1 x 2 supercell (6 cells)"
    assert describe_supercell([[1, 1, 0], [-1, 1, 0], [0, 0, 1]]) == ("the [[1, 1, 0], [-1, 1, 0], [0, 0, 1]] "
                                                                      "supercell (2 cells)")


def test_the_summary_offers_a_wider_basis_of_the_same_lattice(tmp_path, cli):
    chain = mu_oh_chain("H").repeat((2, 1, 1))
    chain.set_cell([[7.4, 0.0, 0.0], [7.4, 9.0, 0.0], [0.0, 0.0, 9.0]])  # the lattice of a 7.4 x 9 x 9 Å box
    write(tmp_path / "skewed.extxyz", chain)
    r = cli("structures", tmp_path / "skewed.extxyz", "-o", tmp_path / "out")
    assert r.status == 0
    assert r.out.rstrip().endswith("needs widths above 7.20 Å: use the same lattice on the wider basis "
                                   "[[-1, 1, 0], [0, 0, 1], [1, 0, 0]] (--snap-ready)")
    r = cli("structures", tmp_path / "skewed.extxyz", "--snap-ready", "-o", tmp_path / "ready")
    assert r.status == 0 and r.out.rstrip().endswith("this cell is SNAP-ready")
    assert len(read(tmp_path / "ready" / "skewed.extxyz")) == len(chain)


def test_a_cell_wide_enough_is_kept_as_given():
    # a hexagonal CoRE MOF cell (BICDAU): another basis of its lattice is 0.02 Å wider, but this one is ready
    cell = Cell.fromcellpar([18.077, 18.099, 19.129, 89.93, 90.01, 120.05])
    atoms = Atoms("C", positions=[[1.0, 2.0, 3.0]], cell=cell, pbc=True)
    atoms.arrays["atom_types"] = np.array(["C0a"])
    supercell, matrix = snap_ready_cell(atoms, 3.6)
    assert (matrix == np.eye(3)).all() and np.array_equal(supercell.cell.array, cell.array)


def test_snap_ready_cell_refuses_bad_input(paddlewheel):
    with pytest.raises(StructureError, match="cutoff must be > 0"):
        snap_ready_cell(mu_oh_chain("H"), 0.0)
    with pytest.raises(StructureError, match="periodic in all three directions"):
        snap_ready_cell(paddlewheel, 3.0)


def test_primitive_cell_of_the_conventional_mof5_keeps_types(mof5_atoms):
    primitive = find_primitive_cell(mof5_atoms)
    assert len(primitive) == 106
    conventional = Counter(mof5_atoms.arrays["atom_types"].tolist())
    assert Counter(primitive.arrays["atom_types"].tolist()) == {t: n // 4 for t, n in conventional.items()}
    assert primitive.get_volume() == pytest.approx(mof5_atoms.get_volume() / 4)
