"""Atom typing: the letter rule on molecules worked out by hand, invariance, extxyz round trip, bad input."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.io import read, write

from mofsnap.atomtypes import _letters, assign_atom_types, element_of
from mofsnap.exceptions import AtomTypingError
from mofsnap.topology import bond_pairs


def _boxed(atoms):
    boxed = atoms.copy()
    boxed.center(vacuum=5.0)
    return boxed


def _hydrogen_roles(atoms):
    """Role of each H of ethanol from the geometry: bonded to O, to the CH2 carbon or to the CH3 carbon."""
    boxed = _boxed(atoms)
    i, j, _, _ = bond_pairs(boxed)
    count = np.bincount(i, minlength=len(atoms))
    roles = {}
    for h in np.flatnonzero(atoms.numbers == 1):
        partner = j[i == h][0]
        if atoms.numbers[partner] == 8:
            roles[h] = "OH"
        else:
            heavy = [k for k in j[i == partner] if atoms.numbers[k] != 1]
            roles[h] = "CH2" if len(heavy) == 2 else "CH3"
    assert count.sum() == 16  # 8 bonds
    return roles


def test_ethanol_letters_follow_neighbour_sums():
    # Hand-worked rule: C bonded to O (C, O, 2 H: S1 = 16) before methyl C (C, 3 H: 9); H on O (S1 = 8) first;
    # H on CH2 and on CH3 tie at S1 = 6, then S2 = 16 (CH2) > 9 (CH3).
    atoms = molecule("CH3CH2OH")
    labels = assign_atom_types(atoms)
    expected = {"OH": "H1a", "CH2": "H1b", "CH3": "H1c"}
    for h, role in _hydrogen_roles(atoms).items():
        assert labels[h] == expected[role]
    carbons = np.flatnonzero(atoms.numbers == 6)
    boxed = _boxed(atoms)
    i, j, _, _ = bond_pairs(boxed)
    for c in carbons:
        has_oxygen = 8 in atoms.numbers[j[i == c]]
        assert labels[c] == ("C4a" if has_oxygen else "C4b")
    assert labels[atoms.numbers == 8].tolist() == ["O2a"]
    assert np.array_equal(atoms.arrays["atom_types"], labels)


def test_shells_set_how_far_environments_are_compared():
    atoms = molecule("CH3CH2OH")
    one_shell = assign_atom_types(atoms, shells=1)
    hydrogens = one_shell[atoms.numbers == 1]
    assert sorted(set(hydrogens)) == ["H1a", "H1b"]  # CH2 and CH3 hydrogens look alike one bond deep
    assert set(assign_atom_types(atoms, shells=0)) == {"C4a", "O2a", "H1a"}


def test_types_do_not_depend_on_atom_order():
    atoms = molecule("CH3CH2OH")
    labels = assign_atom_types(atoms)
    rng = np.random.default_rng(7)
    for _ in range(5):
        order = rng.permutation(len(atoms))
        assert np.array_equal(assign_atom_types(atoms[order]), labels[order])


def test_bonds_through_periodic_images():
    diamond = bulk("C", "diamond", a=3.567)  # 2 atoms; every bond crosses the cell boundary
    assert assign_atom_types(diamond).tolist() == ["C4a", "C4a"]
    assert assign_atom_types(diamond.repeat((2, 1, 3))).tolist() == ["C4a"] * 12


def test_types_survive_extxyz(tmp_path):
    atoms = molecule("CH3CH2OH")
    atoms.center(vacuum=4.0)
    atoms.pbc = True
    labels = assign_atom_types(atoms)
    write(tmp_path / "ethanol.extxyz", atoms)
    back = read(tmp_path / "ethanol.extxyz")
    assert back.arrays["atom_types"].tolist() == labels.tolist()
    assert [element_of(label) for label in back.arrays["atom_types"]] == back.get_chemical_symbols()


def test_letters_continue_after_z():
    assert [_letters(k) for k in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == [
        "a", "b", "z", "aa", "ab", "az", "ba", "zz", "aaa"
    ]


def test_unknown_element_rejected():
    atoms = molecule("CH4")
    atoms.numbers[0] = 0
    with pytest.raises(AtomTypingError, match="unknown element"):
        assign_atom_types(atoms)


def test_overlapping_atoms_rejected():
    atoms = molecule("CH4")
    atoms.append("H")
    atoms.positions[-1] = atoms.positions[1] + [0.3, 0.0, 0.0]
    with pytest.raises(AtomTypingError, match="overlapping atoms.*0.300 Å"):
        assign_atom_types(atoms)


def test_isolated_atom_rejected():
    atoms = molecule("CH4") + Atoms("Ar", positions=[[6.0, 0.0, 0.0]])
    with pytest.raises(AtomTypingError, match=r"isolated atom.*5 \(Ar\)"):
        assign_atom_types(atoms)


def test_hydrogen_with_two_bonds_rejected_unless_allowed():
    chain = Atoms("H3", positions=[[0, 0, 0], [0.7, 0, 0], [1.4, 0, 0]])
    with pytest.raises(AtomTypingError, match=r"impossible coordination.*atom 1 \(H\) with 2 bonds \(at most 1\)"):
        assign_atom_types(chain)
    assert assign_atom_types(chain, max_coordination={"H": 2}).tolist() == ["H1a", "H2a", "H1a"]


def test_an_iodide_bridging_four_copper_atoms_is_typed_not_refused():
    # mu4-I of copper iodide clusters and chains: Cu-I 2.7 Å, within 1.2 x (1.32 + 1.39) = 3.25 Å
    directions = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    atoms = Atoms("ICu4", positions=[[0, 0, 0], *(2.7 * directions)])
    assert assign_atom_types(atoms).tolist() == ["I4a", "Cu1a", "Cu1a", "Cu1a", "Cu1a"]


def test_five_coordinate_carbon_rejected():
    # trigonal-bipyramidal CH5 with C-H 1.1 A: no H-H pair is bonded, the carbon has 5 bonds
    directions = [[0, 0, 1], [0, 0, -1], [1, 0, 0], [-0.5, 0.866, 0], [-0.5, -0.866, 0]]
    atoms = Atoms("CH5", positions=[[0, 0, 0]] + [list(1.1 * np.array(d)) for d in directions])
    with pytest.raises(AtomTypingError, match=r"atom 0 \(C\) with 5 bonds \(at most 4\)"):
        assign_atom_types(atoms)


def test_negative_shells_rejected():
    with pytest.raises(AtomTypingError, match="shells must be >= 0"):
        assign_atom_types(molecule("CH4"), shells=-1)


def test_paddlewheel_copper_counts_its_four_oxygens_only(paddlewheel):
    atoms = paddlewheel
    labels = assign_atom_types(atoms)
    assert labels[:2].tolist() == ["Cu4a", "Cu4a"]
    assert sorted(set(labels[2:])) == ["C3a", "H1a", "O2a"]
    assert assign_atom_types(atoms, metal_bonds=True)[:2].tolist() == ["Cu5a", "Cu5a"]  # the old rule


def test_mu_oh_hydrogen_differs_from_a_carbon_hydrogen():
    # an Al chain along x bridged alternately by μ-OH and μ-OCH3
    cell = np.diag([7.4, 9.0, 9.0])
    atoms = Atoms("AlOAlOH", positions=[[0.0, 4.5, 4.5], [1.85, 4.5, 5.0], [3.7, 4.5, 4.5], [5.55, 4.5, 5.0],
                                        [1.85, 4.5, 5.97]], cell=cell, pbc=True)
    atoms += Atoms("CH3", positions=[[5.55, 4.5, 6.43], [6.58, 4.5, 6.79], [5.04, 5.39, 6.79], [5.04, 3.61, 6.79]])
    labels = assign_atom_types(atoms)
    assert labels[4] == "H1a"  # on O: S1 = 8 beats 6
    assert set(labels[6:]) == {"H1b"}
    assert labels[1] == "O3b" and labels[3] == "O3a"  # (Al, Al, C) has the larger neighbour sum than (Al, Al, H)
