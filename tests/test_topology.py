"""Topology: bond/angle/dihedral enumeration and type keys on molecules with known answers, periodic measuring
against ASE's own minimum-image geometry, wrap invariance, batches, broken bonds, write/read, bad input."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from mofsnap.exceptions import ResultFileError, TopologyError
from mofsnap.results import write_result
from mofsnap.topology import Topology, cell_parameters, stack_frames

TRICLINIC = np.array([[6.5, 0.0, 0.0], [1.7, 6.2, 0.0], [-1.1, 1.4, 6.8]])


def typed_molecule(name: str, cell=TRICLINIC, corner=(5.0, 5.5, 6.0)) -> Atoms:
    """A molecule in a periodic triclinic cell, placed across the cell corner so that some atoms lie outside."""
    atoms = molecule(name)
    atoms.set_cell(cell)
    atoms.pbc = True
    atoms.positions += np.asarray(corner) - atoms.positions.mean(axis=0)
    atoms.arrays["atom_types"] = np.array(["C4a" if z == 6 else "H1a" for z in atoms.numbers])
    return atoms


def butane_skeleton(phi: float) -> Atoms:
    """Four carbons C-C-C-C (bonds 1.53 Å, angles 111°) with dihedral ``phi`` (degrees) in a large cubic box."""
    bond, theta, phi = 1.53, np.radians(111.0), np.radians(phi)
    b = np.array([0.0, 0.0, 0.0])
    c = np.array([bond, 0.0, 0.0])
    a = b + bond * np.array([np.cos(theta), np.sin(theta), 0.0])
    d = c + bond * np.array([-np.cos(theta), np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi)])
    atoms = Atoms("C4", positions=[a, b, c, d], cell=np.eye(3) * 12.0, pbc=True)
    atoms.positions += 6.0
    atoms.arrays["atom_types"] = np.array(["C1a", "C2a", "C2a", "C1a"])
    return atoms


def test_ethane_counts_and_type_keys():
    topo = Topology.from_atoms(typed_molecule("C2H6"))
    assert (len(topo.bonds), len(topo.angles), len(topo.dihedrals)) == (7, 12, 9)
    assert topo.bond_types == ["C4a-C4a", "C4a-H1a"]
    assert np.bincount(topo.bond_type_index).tolist() == [1, 6]
    assert topo.angle_types == ["C4a-C4a-H1a", "H1a-C4a-H1a"]
    assert np.bincount(topo.angle_type_index).tolist() == [6, 6]
    assert topo.dihedral_types == ["H1a-C4a-C4a-H1a"]
    labels = topo.atom_types
    assert all(labels[centre] == "C4a" for centre in topo.angles[:, 1])


def test_three_membered_ring_dihedrals_are_excluded():
    """Cyclopropane: 3 ring bonds x (3 x 3 - 1) = 24 dihedrals, none of them C-C-C-C; ring angles 60°."""
    topo = Topology.from_atoms(typed_molecule("C3H6_D3h"))
    assert len(topo.dihedrals) == 24
    assert sorted(topo.dihedral_types) == ["C4a-C4a-C4a-H1a", "H1a-C4a-C4a-H1a"]
    assert np.bincount(topo.dihedral_type_index).tolist() == [12, 12]
    values = topo.measure(typed_molecule("C3H6_D3h").positions, TRICLINIC)
    ring = topo.angle_type_index == topo.angle_types.index("C4a-C4a-C4a")
    assert np.allclose(values["angle"][ring], 60.0)


def test_chain_bonded_to_its_own_images():
    """Planar zig-zag chain, 2 atoms per cell: every bond crosses or touches the boundary; dihedrals are trans."""
    chain = Atoms("C2", positions=[[0.0, 0.0, 0.0], [1.25, 0.9, 0.0]], cell=[2.5, 10.0, 10.0], pbc=True)
    chain.arrays["atom_types"] = np.array(["C2a", "C2a"])
    topo = Topology.from_atoms(chain)
    assert (len(topo.bonds), len(topo.angles), len(topo.dihedrals)) == (2, 2, 2)
    values = topo.measure(chain.positions, chain.cell)
    assert np.allclose(values["bond"], np.hypot(1.25, 0.9))
    assert np.allclose(values["angle"], np.degrees(2 * np.arctan2(1.25, 0.9)))
    assert np.allclose(np.abs(values["dihedral"]), 180.0)


@pytest.mark.parametrize("phi", [-179.9, -120.0, -60.0, 0.0, 45.0, 90.0, 179.9, 180.0])
def test_dihedral_of_a_built_geometry(phi):
    atoms = butane_skeleton(phi)
    topo = Topology.from_atoms(atoms)
    assert len(topo.dihedrals) == 1
    measured = topo.measure(atoms.positions, atoms.cell)["dihedral"][0]
    assert -180.0 < measured <= 180.0
    assert np.isclose(np.mod(measured - phi + 180.0, 360.0) - 180.0, 0.0, atol=1e-8)
    assert np.isclose(np.degrees(topo.measure(atoms.positions, atoms.cell, degrees=False)["dihedral"][0]), measured)


def test_triclinic_values_match_ase_minimum_image():
    atoms = typed_molecule("C2H6")
    topo = Topology.from_atoms(atoms)
    rng = np.random.default_rng(4)
    atoms.positions += rng.normal(scale=0.1, size=atoms.positions.shape)
    atoms.set_cell(TRICLINIC * 1.03, scale_atoms=True)
    atoms.wrap()
    values = topo.measure(atoms.positions, atoms.cell)
    assert np.allclose(values["bond"], [atoms.get_distance(i, j, mic=True) for i, j in topo.bonds])
    assert np.allclose(values["angle"], [atoms.get_angle(*a, mic=True) for a in topo.angles])
    ase_dihedrals = np.array([atoms.get_dihedral(*d, mic=True) for d in topo.dihedrals])
    assert np.allclose(np.mod(values["dihedral"] - ase_dihedrals + 180.0, 360.0) - 180.0, 0.0, atol=1e-8)


def test_wrapped_and_image_shifted_atoms_give_the_same_values():
    atoms = typed_molecule("C2H6")
    topo = Topology.from_atoms(atoms)
    reference = topo.measure(atoms.positions, atoms.cell)
    wrapped = atoms.copy()
    wrapped.wrap()
    assert not np.allclose(wrapped.positions, atoms.positions)     # some atoms really moved across the boundary
    shifted = atoms.positions + np.random.default_rng(1).integers(-2, 3, size=(len(atoms), 3)) @ TRICLINIC
    for positions in (wrapped.positions, shifted):
        values = topo.measure(positions, atoms.cell)
        assert np.allclose(values["bond"], reference["bond"], atol=1e-10)
        assert np.allclose(values["angle"], reference["angle"], atol=1e-10)
        # exactly trans H-C-C-H sits on the ±180° seam: compare dihedrals modulo 360°
        difference = np.mod(values["dihedral"] - reference["dihedral"] + 180.0, 360.0) - 180.0
        assert np.allclose(difference, 0.0, atol=1e-10)


def test_batch_equals_frame_by_frame():
    atoms = typed_molecule("C2H6")
    topo = Topology.from_atoms(atoms)
    rng = np.random.default_rng(2)
    frames = []
    for _ in range(5):
        frame = atoms.copy()
        frame.set_cell(TRICLINIC @ (np.eye(3) + rng.normal(scale=0.02, size=(3, 3))), scale_atoms=True)
        frame.positions += rng.normal(scale=0.05, size=frame.positions.shape)
        frames.append(frame)
    batch = topo.measure(*stack_frames(frames))
    for n, frame in enumerate(frames):
        single = topo.measure(frame.positions, frame.cell)
        for kind in single:
            assert np.allclose(batch[kind][n], single[kind], atol=1e-12)
    assert np.allclose(cell_parameters(stack_frames(frames)[1])[0], frames[0].cell.cellpar())


def test_broken_bonds_flag_exactly_the_stretched_bond():
    atoms = typed_molecule("C2H6")
    topo = Topology.from_atoms(atoms)
    k = int(np.flatnonzero(topo.bond_type_index == topo.bond_types.index("C4a-H1a"))[0])
    carbon, hydrogen = topo.bonds[k] if atoms.numbers[topo.bonds[k][0]] == 6 else topo.bonds[k][::-1]
    stretched = atoms.positions.copy()
    stretched[hydrogen] += 0.7 * (stretched[hydrogen] - stretched[carbon])  # 1.7x the reference length
    assert topo.broken_bonds(stretched, atoms.cell, tolerance=1.5).tolist() == [n == k for n in range(7)]
    assert not topo.broken_bonds(stretched, atoms.cell, tolerance=1.8).any()
    batch = topo.broken_bonds(np.stack([atoms.positions, stretched]), atoms.cell)
    assert batch.any(axis=1).tolist() == [False, True]

    reference = np.linalg.norm(atoms.positions[hydrogen] - atoms.positions[carbon])
    assert topo.most_stretched_bond(stretched, atoms.cell, 1.5) == (
        f"C4a (atom {carbon})–H1a (atom {hydrogen}) at {1.7 * reference:.2f} Å > 1.5 x its {reference:.2f} Å")
    assert topo.most_stretched_bond(stretched, atoms.cell, 1.8) is None


def test_write_read_round_trip_is_exact(tmp_path):
    atoms = typed_molecule("C3H6_D3h")
    topo = Topology.from_atoms(atoms)
    assert topo.write(tmp_path / "topology.json") == tmp_path / "topology.json"
    loaded = Topology.read(tmp_path / "topology.json")
    for name, value in topo.__dict__.items():
        other = loaded.__dict__[name]
        if isinstance(value, np.ndarray):
            assert other.dtype.kind == value.dtype.kind and other.shape == value.shape
            assert np.array_equal(other, value)
        else:
            assert other == value
    positions = atoms.positions + 0.03
    for kind, values in topo.measure(positions, atoms.cell).items():
        assert np.array_equal(loaded.measure(positions, atoms.cell)[kind], values)


def test_read_refuses_other_result_files(tmp_path):
    write_result(tmp_path / "other.json", "fit-report", 1, {"x": 1})
    with pytest.raises(ResultFileError, match="not a topology"):
        Topology.read(tmp_path / "other.json")
    with pytest.raises(ResultFileError, match="no such result file"):
        Topology.read(tmp_path / "missing.json")


def test_bad_input_is_rejected_with_clear_errors():
    atoms = typed_molecule("C2H6")
    untyped = atoms.copy()
    del untyped.arrays["atom_types"]
    with pytest.raises(TopologyError, match="atom_types"):
        Topology.from_atoms(untyped)
    molecular = atoms.copy()
    molecular.pbc = False
    with pytest.raises(TopologyError, match="3D-periodic"):
        Topology.from_atoms(molecular)
    topo = Topology.from_atoms(atoms)
    with pytest.raises(TopologyError, match="7 atoms, the reference topology has 8"):
        topo.check(atoms[:-1])
    first_h = int(np.flatnonzero(atoms.numbers == 1)[0])
    swapped = atoms[[first_h] + [n for n in range(len(atoms)) if n != first_h]]     # an H moved to the front
    with pytest.raises(TopologyError, match="element order"):
        topo.check(swapped)
    nan = atoms.positions.copy()
    nan[3, 1] = np.nan
    with pytest.raises(TopologyError, match="NaN"):
        topo.measure(nan, atoms.cell)
    with pytest.raises(TopologyError, match="singular"):
        topo.measure(atoms.positions, np.zeros((3, 3)))


def test_metal_metal_contacts_are_no_bonds_unless_asked(paddlewheel):
    from mofsnap.atomtypes import assign_atom_types

    atoms = paddlewheel
    atoms.set_cell(np.eye(3) * 14.0)
    atoms.pbc = True
    atoms.center()
    assign_atom_types(atoms)
    plain = Topology.from_atoms(atoms)
    assert plain.bond_types == ["C3a-H1a", "C3a-O2a", "Cu4a-O2a"]
    assert not any(key.startswith("Cu4a-Cu4a") or "-Cu4a-Cu4a" in key for key in plain.dihedral_types)
    assign_atom_types(atoms, metal_bonds=True)
    old = Topology.from_atoms(atoms, metal_bonds=True)
    assert "Cu5a-Cu5a" in old.bond_types
    assert len(old.bonds) == len(plain.bonds) + 1


def _in_box(symbols: str, positions) -> Atoms:
    atoms = Atoms(symbols, positions=positions, cell=np.eye(3) * 15.0, pbc=True)
    atoms.center()
    return atoms


def _bonded(atoms: Atoms) -> set[tuple[str, str]]:
    from mofsnap.topology import bond_pairs

    i, j, _, _ = bond_pairs(atoms)
    return {(atoms[a].symbol + str(a), atoms[b].symbol + str(b)) for a, b in zip(i, j)}


def _at_angle(vertex, toward, length: float, degrees: float) -> np.ndarray:
    """The point ``length`` from ``vertex`` at ``degrees`` from the direction to ``toward``, in the xy plane."""
    vertex, toward = np.asarray(vertex, float), np.asarray(toward, float)
    u = (toward - vertex) / np.linalg.norm(toward - vertex)
    v = np.array([-u[1], u[0], 0.0])
    t = np.radians(degrees)
    return vertex + length * (np.cos(t) * u + np.sin(t) * v)


def test_the_apex_of_a_chelating_carboxylate_is_no_bond_of_its_metal():
    # La-O 2.55 Å, C-O 1.27 Å, O-C-O 120 degrees: La-C 2.94 Å, within 1.2 x (2.07 + 0.76) = 3.40 Å
    half = np.radians(60.0)
    oxygen = 1.27 * np.array([np.cos(half), np.sin(half), 0.0]), 1.27 * np.array([np.cos(half), -np.sin(half), 0.0])
    la_c = oxygen[0][0] + np.sqrt(2.55**2 - oxygen[0][1] ** 2)
    atoms = _in_box("LaOOCH", [[-la_c, 0, 0], -oxygen[0], -oxygen[1], [0, 0, 0], [1.09, 0, 0]])
    assert np.linalg.norm(atoms.positions[0] - atoms.positions[3]) < 1.2 * (2.07 + 0.76)
    assert _bonded(atoms) == {("La0", "O1"), ("La0", "O2"), ("O1", "C3"), ("O2", "C3"), ("C3", "H4"),
                              ("O1", "La0"), ("O2", "La0"), ("C3", "O1"), ("C3", "O2"), ("H4", "C3")}


@pytest.mark.parametrize("degrees", [85.0, 60.0])
def test_an_h_bonded_to_oxygen_is_no_bond_of_a_metal_nearby(degrees):
    # Sr-O 2.50 Å, O-H 0.97 Å: at 85 degrees Sr-H is 2.60 Å, at 60 degrees 2.15 Å, both within the
    # 1.2 x (1.95 + 0.31) = 2.71 Å of the distance rule
    hydrogen = _at_angle([2.5, 0, 0], [0, 0, 0], 0.97, degrees)
    atoms = _in_box("SrOH", [[0, 0, 0], [2.5, 0, 0], hydrogen])
    assert np.linalg.norm(atoms.positions[2] - atoms.positions[0]) < 1.2 * (1.95 + 0.31)
    assert _bonded(atoms) == {("Sr0", "O1"), ("O1", "Sr0"), ("O1", "H2"), ("H2", "O1")}


def test_a_hydride_is_bonded_to_its_metal():
    atoms = _in_box("SrH", [[0, 0, 0], [2.3, 0, 0]])
    assert _bonded(atoms) == {("Sr0", "H1"), ("H1", "Sr0")}


def test_a_side_on_peroxide_keeps_both_metal_bonds():
    atoms = _in_box("TiOO", [[0, 0, 0], [1.6, 0.725, 0], [1.6, -0.725, 0]])  # Ti-O 1.75 Å, O-O 1.45 Å
    assert _bonded(atoms) == {("Ti0", "O1"), ("Ti0", "O2"), ("O1", "O2"), ("O1", "Ti0"), ("O2", "Ti0"),
                              ("O2", "O1")}
