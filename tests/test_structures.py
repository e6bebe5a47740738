"""ZIF-8 and MOF-5 builders from the site tables in data/: composition, symmetry, connectivity, hydrogen geometry,
the published type labels, the registry of built-in structures, structure files and the command."""

import json
from collections import Counter

import numpy as np
import pytest
import spglib
from ase.io import read, write

from mofsnap.atomtypes import assign_atom_types
from mofsnap.exceptions import StructureError
from mofsnap.structures import STRUCTURES, builtin_structure, mof5, read_structure, site_table, zif8
from mofsnap.topology import bond_pairs


@pytest.fixture(scope="module")
def zif():
    return zif8()


@pytest.fixture(scope="module")
def mof():
    return mof5()


def _neighbours(atoms):
    i, j, shift, _ = bond_pairs(atoms)
    return [j[i == a] for a in range(len(atoms))], (i, j, shift)


def _symbols_around(atoms, neighbours, a):
    return sorted(atoms.get_chemical_symbols()[b] for b in neighbours[a])


@pytest.mark.filterwarnings("ignore::DeprecationWarning:spglib")
@pytest.mark.parametrize(
    "build, primitive, natoms, formula, spacegroup",
    [
        (zif8, False, 276, "C96H120N48Zn12", "I-43m (217)"),
        (zif8, True, 138, "C48H60N24Zn6", "I-43m (217)"),
        (mof5, False, 424, "C192H96O104Zn32", "Fm-3m (225)"),
        (mof5, True, 106, "C48H24O26Zn8", "Fm-3m (225)"),
    ],
)
def test_composition_and_space_group(build, primitive, natoms, formula, spacegroup):
    atoms = build(primitive=primitive)
    assert len(atoms) == natoms
    assert atoms.get_chemical_formula() == formula
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    assert spglib.get_spacegroup(cell, symprec=1e-3) == spacegroup  # ordered H keep the full symmetry
    distances = atoms.get_all_distances(mic=True)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 0.9


def test_zif8_hydrogen_geometry(zif):
    neighbours, (i, j, shift) = _neighbours(zif)

    def vector(a, b):
        k = np.flatnonzero((i == a) & (j == b))[0]
        return zif.positions[b] + shift[k] @ zif.cell - zif.positions[a]

    for h in np.flatnonzero(zif.numbers == 1):
        (c,) = neighbours[h]
        ch = vector(c, h)
        assert 1.07 <= np.linalg.norm(ch) <= 1.10  # neutron C(sp2)-H 1.083 Å, C(sp3)-H 1.09 Å, not X-ray 0.93/0.96
        others = [b for b in neighbours[c] if b != h]
        if len(others) == 2:  # ring CH: in the ring plane, equal angles to both ring neighbours
            u, v = (vector(c, b) / np.linalg.norm(vector(c, b)) for b in others)
            w = ch / np.linalg.norm(ch)
            assert abs(np.dot(np.cross(u, v), w)) < 1e-3
            assert np.isclose(np.dot(u, w), np.dot(v, w), atol=1e-3)
        else:  # methyl: tetrahedral angles around the methyl carbon
            for b in others:
                cosine = np.dot(ch, vector(c, b)) / np.linalg.norm(ch) / np.linalg.norm(vector(c, b))
                assert np.degrees(np.arccos(cosine)) == pytest.approx(109.47, abs=0.5)


def _assert_labels(atoms, roles, counts):
    """Each label sits where ``roles`` says: the sorted neighbour symbols of the atom (of its C partner for H)."""
    labels = atoms.arrays["atom_types"]
    assert sorted(set(labels)) == sorted(counts)
    neighbours, _ = _neighbours(atoms)
    around = [_symbols_around(atoms, neighbours, a) for a in range(len(atoms))]
    for label, symbols in roles.items():
        for a in np.flatnonzero(labels == label):
            assert (around[neighbours[a][0]] if atoms.numbers[a] == 1 else around[a]) == symbols, label
    assert Counter(labels) == counts


def test_zif8_published_labels(zif):
    roles = {
        "C3a": ["C", "N", "N"],  # ring C between the N, bonded to the methyl
        "C3b": ["C", "H", "N"],  # ring CH
        "C4a": ["C", "H", "H", "H"],  # methyl C
        "H1a": ["C", "H", "N"],  # ring H (on a ring CH)
        "H1b": ["C", "H", "H", "H"],  # methyl H
        "N3a": ["C", "C", "Zn"],
    }
    counts = {"C3a": 24, "C3b": 48, "C4a": 24, "H1a": 48, "H1b": 72, "N3a": 48, "Zn4a": 12}
    _assert_labels(zif, roles, counts)


def test_mof5_published_labels(mof):
    roles = {
        "C3a": ["C", "O", "O"],  # carboxylate C
        "C3b": ["C", "C", "C"],  # ring C bonded to the carboxylate
        "C3c": ["C", "C", "H"],  # ring CH
        "H1a": ["C", "C", "H"],
        "O2a": ["C", "Zn"],  # carboxylate O
        "O4a": ["Zn"] * 4,  # central O
    }
    counts = {"C3a": 48, "C3b": 48, "C3c": 96, "H1a": 96, "O2a": 96, "O4a": 8, "Zn4a": 32}
    _assert_labels(mof, roles, counts)


@pytest.mark.parametrize("build", [zif8, mof5])
def test_typing_is_permutation_invariant(build):
    atoms = build()
    order = np.random.default_rng(11).permutation(len(atoms))
    assert np.array_equal(assign_atom_types(atoms[order]), atoms.arrays["atom_types"][order])


@pytest.mark.parametrize("build", [zif8, mof5])
def test_primitive_cell_types_equal_conventional_ones_per_site(build):
    conventional, primitive = build(), build(primitive=True)
    for atom in primitive:
        d = conventional.positions - atom.position
        d -= np.round(d @ np.linalg.inv(conventional.cell)) @ conventional.cell  # cubic: exact minimum image
        (same,) = np.flatnonzero(np.linalg.norm(d, axis=1) < 1e-3)
        assert conventional.numbers[same] == atom.number
        assert conventional.arrays["atom_types"][same] == primitive.arrays["atom_types"][atom.index]


def test_types_survive_extxyz(zif, tmp_path):
    write(tmp_path / "zif8.extxyz", zif)
    back = read(tmp_path / "zif8.extxyz")
    assert back.arrays["atom_types"].tolist() == zif.arrays["atom_types"].tolist()
    assert np.allclose(back.positions, zif.positions) and np.allclose(back.cell, zif.cell)


@pytest.mark.parametrize("name, a, natoms, angle, formula", [
    ("zif8", 16.991, 276, 90.0, "C96H120N48Zn12"),  # Park et al. (2006): a = 16.991 Å
    ("zif8-primitive", 16.991, 138, 109.4712206, "C48H60N24Zn6"),  # bcc primitive: a√3/2, arccos(-1/3)
    ("mof5", 25.832, 424, 90.0, "C192H96O104Zn32"),
    ("mof5-primitive", 25.832, 106, 60.0, "C48H24O26Zn8"),  # fcc primitive: a/√2, 60°
])
def test_registry_builds_each_cell(name, a, natoms, angle, formula):
    atoms = builtin_structure(name)
    length = {90.0: a, 60.0: a / np.sqrt(2), 109.4712206: a * np.sqrt(3) / 2}[angle]
    np.testing.assert_allclose(atoms.cell.cellpar(), [length] * 3 + [angle] * 3, rtol=1e-9, atol=1e-6)
    assert len(atoms) == natoms and atoms.get_chemical_formula() == formula
    assert atoms.info["name"] == {"zif8": "ZIF-8", "mof5": "MOF-5"}[name.split("-")[0]]
    assert len(atoms.arrays["atom_types"]) == natoms
    assert builtin_structure(name) is not atoms  # a fresh structure each time
    assert {"mof5", "mof5-primitive", "zif8", "zif8-primitive", "uio66", "uio66-primitive", "hkust1",
            "hkust1-primitive"} <= set(STRUCTURES)


def test_unknown_builtin_name_lists_the_names():
    with pytest.raises(StructureError, match="'zif9'.*zif8, zif8-primitive, mof5, mof5-primitive, uio66"):
        builtin_structure("zif9")


@pytest.mark.parametrize("key, name, spacegroup, wyckoff", [
    ("zif8", "ZIF-8", 217, ["12d", "48h", "24g", "48h", "24g"]),
    ("mof5", "MOF-5", 225, ["32f", "8c", "96k", "48g", "48g", "96k", "96k"]),
])
def test_site_tables_come_from_data_files_with_their_source(key, name, spacegroup, wyckoff):
    table = site_table(key)
    assert (table.name, table.spacegroup) == (name, spacegroup)
    assert [site.wyckoff for site in table.sites] == wyckoff
    assert len(table.source) > 40  # says where the numbers come from
    # Wyckoff multiplicities of the asymmetric unit add up to the atoms of the conventional cell
    assert sum(int(w[:-1]) for w in wyckoff) == len(table.conventional())
    hydrogens = [w for rule in table.hydrogens for w in rule.wyckoff]
    assert sum(int(w[:-1]) for w in wyckoff + hydrogens) == len(builtin_structure(key))


def test_read_structure_restores_types_and_rejects_missing_files(zif8_atoms, tmp_path):
    write(tmp_path / "zif8.extxyz", zif8_atoms)
    back = read_structure(tmp_path / "zif8.extxyz")
    assert back.arrays["atom_types"].tolist() == zif8_atoms.arrays["atom_types"].tolist()
    with pytest.raises(StructureError, match="missing.cif does not exist"):
        read_structure(tmp_path / "missing.cif")


def test_command_writes_structure_files(cli, tmp_path):
    r = cli("structures", "mof5-primitive", "-o", tmp_path)
    assert r.status == 0, r.err
    assert r.out == (tmp_path / "mof5-primitive.txt").read_text()
    summary = json.loads((tmp_path / "mof5-primitive.json").read_text())
    assert summary["types"]["O4a"]["neighbours"] == "4 Zn4a"  # central μ4-O
    assert summary["types"]["C3a"]["neighbours"] == "1 C3b, 2 O2a"
    assert summary["metal_coordination"]["Zn4a"]["coordination"] == 4
    assert summary["metal_coordination"]["Zn4a"]["ligand_atoms"] == "4 O"
    assert "Zn4a   4-coordinate by 4 O" in r.out
    assert summary["natoms"] == 106 and summary["formula"] == "C48H24O26Zn8"
    assert summary["atom_types"] == {"C3a": 12, "C3b": 12, "C3c": 24, "H1a": 24, "O2a": 24, "O4a": 2, "Zn4a": 8}
    back = read(tmp_path / "mof5-primitive.extxyz")
    assert Counter(back.arrays["atom_types"]) == summary["atom_types"]
    assert len(read(tmp_path / "mof5-primitive.cif")) == 106
    assert (tmp_path / "mof5-primitive.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_rejects_an_unknown_name_in_one_line(cli, tmp_path):
    r = cli("structures", "zif9", "-o", tmp_path / "out")
    assert r.status == 1
    assert r.err.strip().splitlines() == [
        f"mofsnap structures: error: zif9 is neither a structure file nor a built-in structure ({', '.join(STRUCTURES)}); "
        "give a CIF, extxyz, POSCAR, ... file or one of these names"]
    assert not (tmp_path / "out").exists()
