"""The built-in zoo checked for chemistry, not for numbers copied from the tables: formula and Z, space group,
metal coordination and bond lengths in the ranges of the published structures, physical X-H lengths, intact
linkers, no close contacts, the intake checks, distinct types for chemically distinct atoms, primitive cells."""

import re
from collections import Counter

import numpy as np
import pytest
import spglib
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from mofsnap.structures import STRUCTURES, builtin_structure, check_structure
from mofsnap.topology import METALS, bond_pairs

# name: (formula unit, Z of the conventional cell, Z of the primitive cell or None, space group, metal,
#        its ligand atoms, metal-ligand bond range in Å, linkers as (formula, rings) -> count per formula unit)
ZOO = {
    "zif8": ("C8H10N4Zn", 12, 6, "I-43m (217)", "Zn", ["N"] * 4, (1.95, 2.05), {("C4H5N2", 1): 2}),
    "mof5": ("C24H12O13Zn4", 8, 2, "Fm-3m (225)", "Zn", ["O"] * 4, (1.90, 2.00), {("C8H4O4", 1): 3}),
    # Zr6O4(OH)4(BDC)6 with the μ3-O and μ3-OH ordered on alternate faces (Td cluster: F-43m)
    "uio66": ("C48H28O32Zr6", 4, 1, "F-43m (216)", "Zr", ["O"] * 8, (2.05, 2.30), {("C8H4O4", 1): 6}),
    # Cu3(BTC)2, dehydrated paddlewheels
    "hkust1": ("C18H6Cu3O12", 16, 4, "Fm-3m (225)", "Cu", ["O"] * 4, (1.90, 2.00), {("C9H3O6", 1): 2}),
    # Al(OH)(BDC), large-pore form: AlO6 octahedra, 2 μ2-OH + 4 carboxylate O
    "mil53": ("C8H5AlO5", 4, 2, "Imma (74)", "Al", ["O"] * 6, (1.80, 1.95), {("C8H4O4", 1): 1}),
    # Mg2(dobdc), dehydrated: MgO5 square pyramids (open site), Z = 9 on hexagonal axes, 3 in the rhombohedral cell
    "mof74": ("C8H2Mg2O6", 9, 3, "R-3 (148)", "Mg", ["O"] * 5, (1.95, 2.15), {("C8H2O6", 1): 1}),
    # Zn2(BDC)2(dabco), ordered dabco: Zn paddlewheels (4 carboxylate O) pillared by dabco N; dabco is bicyclic
    "dmof1": ("C22H20N2O8Zn2", 1, None, "Pmm2 (25)", "Zn", ["N"] + ["O"] * 4, (2.00, 2.10),
              {("C8H4O4", 1): 2, ("C6H12N2", 2): 1}),
}


@pytest.fixture(scope="module", params=sorted(ZOO))
def framework(request):
    return request.param, builtin_structure(request.param)


def _bonds(atoms):
    i, j, shift, d = bond_pairs(atoms)
    return i, j, d


def _formula_times(unit, z):
    counts = Counter()
    for symbol, n in re.findall(r"([A-Z][a-z]?)(\d*)", unit):
        counts[symbol] += int(n or 1) * z
    return counts


@pytest.mark.filterwarnings("ignore::DeprecationWarning:spglib")
def test_formula_z_and_space_group(framework):
    name, atoms = framework
    unit, z, z_primitive, spacegroup, *_ = ZOO[name]
    assert Counter(atoms.get_chemical_symbols()) == _formula_times(unit, z)
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    assert spglib.get_spacegroup(cell, symprec=1e-3) == spacegroup  # the ordered H keep the table's symmetry
    if z_primitive is not None and z_primitive < z:
        primitive = builtin_structure(f"{name}-primitive")
        assert Counter(primitive.get_chemical_symbols()) == _formula_times(unit, z_primitive)
        assert primitive.get_volume() == pytest.approx(atoms.get_volume() * z_primitive / z)
        ratio = z // z_primitive
        assert Counter(primitive.arrays["atom_types"]) == {t: n // ratio for t, n in
                                                           Counter(atoms.arrays["atom_types"]).items()}


def test_metal_coordination_and_bond_lengths(framework):
    name, atoms = framework
    *_, metal, ligands, (low, high), _ = ZOO[name]
    i, j, d = _bonds(atoms)
    symbols = np.array(atoms.get_chemical_symbols())
    for m in np.flatnonzero(symbols == metal):
        assert sorted(symbols[j[i == m]]) == ligands
        assert low <= d[i == m].min() and d[i == m].max() <= high
    assert np.all(~np.isin(atoms.numbers[j[np.isin(atoms.numbers[i], list(METALS))]], list(METALS)))  # no M-M bond


def test_hydrogens_at_physical_lengths(framework):
    name, atoms = framework
    i, j, d = _bonds(atoms)
    on_h = atoms.numbers[i] == 1
    assert np.all(np.bincount(i[on_h], minlength=len(atoms))[atoms.numbers == 1] == 1)  # one bond per H
    partner = atoms.numbers[j[on_h]]
    assert set(partner) <= {6, 8}
    ch, oh = d[on_h][partner == 6], d[on_h][partner == 8]
    assert ch.size and np.all((1.07 <= ch) & (ch <= 1.10))  # neutron/DFT C-H, not the X-ray 0.93-0.96 Å
    assert np.all((0.95 <= oh) & (oh <= 1.00))


def test_linkers_are_intact_and_nothing_is_too_close(framework):
    name, atoms = framework
    unit, z, *_, linkers = ZOO[name]
    i, j, d = _bonds(atoms)
    numbers = atoms.numbers
    metal = np.isin(numbers, list(METALS))
    # the inorganic node: metals, O bonded only to metals (and H), and the H on such O
    node_o = np.array([numbers[a] == 8 and np.all(metal[j[i == a]] | (numbers[j[i == a]] == 1))
                       for a in range(len(atoms))])
    node_h = np.array([numbers[a] == 1 and node_o[j[i == a]].any() for a in range(len(atoms))])
    keep = ~(metal | node_o | node_h)
    mask = keep[i] & keep[j]
    graph = coo_matrix((np.ones(mask.sum()), (i[mask], j[mask])), shape=(len(atoms),) * 2)
    _, label = connected_components(graph, directed=False)
    pieces = Counter()
    for piece in np.unique(label[keep]):
        members = np.flatnonzero(label == piece)
        rings = np.isin(i[mask], members).sum() // 2 - len(members) + 1
        pieces[(atoms[members].get_chemical_formula(), rings)] += 1
    assert pieces == {linker: n * z for linker, n in linkers.items()}
    # no close contacts: atoms neither bonded nor sharing a bonded neighbour are at least 2.2 Å apart
    bonded = coo_matrix((np.ones(len(i)), (i, j)), shape=(len(atoms),) * 2).tocsr()
    near = ((bonded + bonded @ bonded) > 0).toarray()
    distances = atoms.get_all_distances(mic=True)
    np.fill_diagonal(near, True)
    assert distances[~near].min() >= 2.2


def test_intake_checks_pass(framework):
    name, atoms = framework
    checked, warnings = check_structure(atoms)
    assert len(checked) == len(atoms) and warnings == []


def test_uio66_types_tell_the_cluster_oxygens_and_hydrogens_apart():
    atoms = builtin_structure("uio66-primitive")
    labels, symbols = atoms.arrays["atom_types"], np.array(atoms.get_chemical_symbols())
    i, j, _ = _bonds(atoms)
    around = [tuple(sorted(symbols[j[i == a]])) for a in range(len(atoms))]
    role = {("Zr", "Zr", "Zr"): "μ3-O", ("H", "Zr", "Zr", "Zr"): "μ3-OH", ("C", "Zr"): "carboxylate O",
            ("O",): "OH hydrogen", ("C",): "aromatic H"}
    kinds = {}
    for a in np.flatnonzero(np.isin(symbols, ["O", "H"])):
        kinds.setdefault(role[around[a]], set()).add(labels[a])
    assert all(len(found) == 1 for found in kinds.values())  # one type per role ...
    assert len({next(iter(found)) for found in kinds.values()}) == 5  # ... and a different one for each role
    assert Counter(role[around[a]] for a in np.flatnonzero(symbols == "O")) == {"μ3-O": 4, "μ3-OH": 4,
                                                                                 "carboxylate O": 24}


def test_hkust1_paddlewheel_copper_pairs_are_not_bonded():
    atoms = builtin_structure("hkust1-primitive")
    copper = np.flatnonzero(atoms.numbers == 29)
    distances = atoms.get_all_distances(mic=True)[np.ix_(copper, copper)]
    np.fill_diagonal(distances, np.inf)
    assert np.all((2.5 < distances.min(axis=1)) & (distances.min(axis=1) < 2.7))  # each Cu has its partner ...
    assert set(atoms.arrays["atom_types"][copper]) == {"Cu4a"}  # ... which is no bond: four O only


def test_every_builtin_has_physical_c_h_lengths():
    for name in STRUCTURES:
        atoms = builtin_structure(name)
        i, j, d = _bonds(atoms)
        ch = d[(atoms.numbers[i] == 1) & (atoms.numbers[j] == 6)]
        assert ch.size and 1.07 <= ch.min() and ch.max() <= 1.10, name


def test_mil53_chains_are_bridged_by_mu2_oh():
    atoms = builtin_structure("mil53")
    labels, symbols = atoms.arrays["atom_types"], np.array(atoms.get_chemical_symbols())
    i, j, _ = _bonds(atoms)
    hydroxyl = [a for a in np.flatnonzero(symbols == "O") if sorted(symbols[j[i == a]]) == ["Al", "Al", "H"]]
    assert len(hydroxyl) == 4  # one μ2-OH per Al
    for a in hydroxyl:
        first, second = j[i == a][symbols[j[i == a]] == "Al"]
        assert 115 < atoms.get_angle(first, a, second, mic=True) < 135  # Al-O(H)-Al of a trans corner-sharing chain
    oh_h = {labels[j[i == a][symbols[j[i == a]] == "H"][0]] for a in hydroxyl}
    ring_h = {labels[h] for h in np.flatnonzero(symbols == "H")} - oh_h
    assert len(oh_h) == 1 and len(ring_h) == 1 and oh_h != ring_h  # OH hydrogen and aromatic H differ
    aluminium = np.flatnonzero(symbols == "Al")
    chains = atoms.get_all_distances(mic=True)[np.ix_(aluminium, aluminium)]
    assert np.isclose(np.sort(chains, axis=1)[:, 1], atoms.cell.lengths()[0] / 2).all()  # Al-Al along the chain


def test_dmof1_paddlewheels_are_pillared_by_one_ordered_dabco():
    atoms = builtin_structure("dmof1")
    labels, symbols = atoms.arrays["atom_types"], np.array(atoms.get_chemical_symbols())
    i, j, _ = _bonds(atoms)
    zinc, nitrogen = np.flatnonzero(symbols == "Zn"), np.flatnonzero(symbols == "N")
    pillar = atoms.cell[1] / np.linalg.norm(atoms.cell[1])  # the ordered model's b axis: Zn-Zn and dabco N-N
    zn_zn = atoms.get_distance(*zinc, mic=True, vector=True)
    assert 2.8 < np.linalg.norm(zn_zn) < 3.0 and abs(zn_zn @ pillar) == pytest.approx(np.linalg.norm(zn_zn))
    n_n = atoms.get_distance(*nitrogen, mic=True, vector=True)
    assert 2.5 < np.linalg.norm(n_n) < 2.65 and abs(n_n @ pillar) == pytest.approx(np.linalg.norm(n_n))
    for n in nitrogen:
        carbons = j[i == n][symbols[j[i == n]] == "C"]
        assert len(carbons) == 3
        for first, second in [(0, 1), (0, 2), (1, 2)]:  # tetrahedral N of the cage, not the planar C-N of a ring
            assert 105 < atoms.get_angle(carbons[first], n, carbons[second], mic=True) < 112
    methylene = [a for a in np.flatnonzero(symbols == "C") if Counter(symbols[j[i == a]]) == {"C": 1, "N": 1, "H": 2}]
    assert len(methylene) == 6  # all six CH2 of one dabco, each with two H
    dabco_h = {labels[h] for a in methylene for h in j[i == a] if symbols[h] == "H"}
    ring_h = {labels[h] for h in np.flatnonzero(symbols == "H")} - dabco_h
    assert len(dabco_h) == 1 and len(ring_h) == 1 and dabco_h != ring_h  # CH2 and aromatic H differ


def test_mof74_open_magnesium_chains_and_three_kinds_of_oxygen():
    atoms = builtin_structure("mof74-primitive")
    labels, symbols = atoms.arrays["atom_types"], np.array(atoms.get_chemical_symbols())
    i, j, _ = _bonds(atoms)
    distances = atoms.get_all_distances(mic=True)
    magnesium, oxygen = np.flatnonzero(symbols == "Mg"), np.flatnonzero(symbols == "O")
    for m in magnesium:
        assert np.sort(distances[m, oxygen])[5] > 3.0  # five O, the sixth site open
        neighbours = np.sort(distances[m, magnesium])[1:4]
        assert np.all((2.8 < neighbours[:2]) & (neighbours[:2] < 3.2)) and neighbours[2] > 5  # a chain: two Mg each
    role = {}
    for o in oxygen:
        carbon = j[i == o][symbols[j[i == o]] == "C"][0]
        ring = Counter(symbols[j[i == carbon]])["O"] == 1  # a phenoxide O sits on a ring C, a carboxylate O on O-C-O
        metals = Counter(symbols[j[i == o]])["Mg"]
        role.setdefault(("phenoxide" if ring else "carboxylate", metals), set()).add(labels[o])
    assert set(role) == {("phenoxide", 2), ("carboxylate", 2), ("carboxylate", 1)}  # μ2 phenoxide, μ2 and μ1 carboxylate
    assert all(len(found) == 1 for found in role.values()) and len(set.union(*role.values())) == 3  # three O types
    assert {labels[h] for h in np.flatnonzero(symbols == "H")} == {"H1a"}  # one aromatic H
    assert sorted(Counter(labels[oxygen]).values()) == [6, 6, 6]  # three formula units, 2 O of each kind
