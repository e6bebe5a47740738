"""SNAP descriptor rows: derivatives against finite differences, agreement with pair_style snap, cache, errors."""

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from mofsnap._lammps import Box, Lammps
from mofsnap.descriptors import SnapDescriptors, iter_descriptors
from mofsnap.exceptions import DescriptorError
from mofsnap.hashing import atoms_hash
from mofsnap.model import SNAPModel

TYPES = ["C3a", "H1a", "O2a"]


def small_model(**kwargs) -> SNAPModel:
    options = dict(radii=[0.5, 0.35, 0.45], weights=[1.0, 0.6, 0.8], twojmax=4, rcutfac=3.0, rfac0=0.95)
    options.update(kwargs)
    return SNAPModel(TYPES, **options)


def random_configuration(seed: int, n: int = 12) -> Atoms:
    """Random types in a triclinic cell, rotated away from the LAMMPS orientation, atoms at least 1 Å apart."""
    rng = np.random.default_rng(seed)
    cell = np.array([[6.4, 0.3, 0.2], [0.9, 6.6, -0.4], [0.5, 0.8, 6.9]]) * rng.uniform(0.98, 1.02)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    cell = cell @ (rotation * np.sign(np.linalg.det(rotation))).T
    positions: list[np.ndarray] = []
    while len(positions) < n:
        p = rng.random(3) @ cell
        probe = Atoms(positions=[*positions, p], cell=cell, pbc=True)
        if not positions or probe.get_distances(len(positions), range(len(positions)), mic=True).min() > 1.0:
            positions.append(p)
    labels = rng.choice(TYPES, size=n)
    atoms = Atoms([t[0] for t in labels], positions=positions, cell=cell, pbc=True)
    atoms.arrays["atom_types"] = labels
    return atoms


class DescriptorEnergy(Calculator):
    """An energy that is a fixed linear combination of the energy descriptor row: ``rows[0] @ weights``."""

    implemented_properties = ["energy", "free_energy"]

    def __init__(self, snap: SnapDescriptors, weights: np.ndarray) -> None:
        super().__init__()
        self.snap, self.weights = snap, weights

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energy = float(self.snap.rows(self.atoms)[0] @ self.weights)
        self.results = {"energy": energy, "free_energy": energy}


def test_force_and_stress_rows_are_derivatives_of_the_energy_row(rng):
    model = small_model()
    atoms = random_configuration(1)
    with SnapDescriptors(model) as snap:
        rows = snap.rows(atoms)
        n = len(atoms)
        assert rows.shape == (1 + 3 * n + 6, 3 * model.n_coefficients)
        weights = rng.normal(size=rows.shape[1])
        atoms.calc = DescriptorEnergy(snap, weights)
        forces = calculate_numerical_forces(atoms, eps=1e-5)
        stress = calculate_numerical_stress(atoms, eps=1e-5)
    np.testing.assert_allclose(rows[1:1 + 3 * n] @ weights, forces.ravel(), atol=1e-6)
    np.testing.assert_allclose(rows[-6:] @ weights, stress, atol=1e-8)
    assert np.abs(forces).max() > 1 and np.abs(stress).max() > 1e-2  # derivatives that are not all zero


def test_rows_times_coefficients_match_lammps_pair_style_snap(tmp_path):
    rng = np.random.default_rng(3)
    model = small_model()
    model.coefficients = rng.normal(scale=0.1, size=model.coefficients.shape)
    coeff, param = model.write(tmp_path / "m")
    atoms = random_configuration(5)
    with SnapDescriptors(model) as snap:
        predicted = snap.rows(atoms) @ model.coefficients.ravel()
    box = Box(atoms.cell.array)
    m = box.lower
    types = [model.types.index(t) + 1 for t in atoms.arrays["atom_types"]]
    with Lammps() as lmp:
        lmp.commands(["units metal", "atom_style atomic", "atom_modify map array sort 0 0", "boundary p p p",
                      f"region c prism 0 {m[0, 0]} 0 {m[1, 1]} 0 {m[2, 2]} {m[1, 0]} {m[2, 0]} {m[2, 1]} units box",
                      "create_box 3 c", "mass * 1.0", "pair_style snap",
                      f"pair_coeff * * {coeff} {param} {' '.join(model.types)}"])
        x = box.wrap(box.to_lammps(atoms.positions))
        lmp.lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types, x.ravel().tolist())
        lmp.command("run 0")
        energy = lmp.lmp.get_thermo("pe")
        forces = box.to_ase(np.array(lmp.lmp.numpy.extract_atom("f")[:len(atoms)]))
    n = len(atoms)
    assert predicted[0] == pytest.approx(energy, abs=1e-9 * max(1.0, abs(energy)))
    np.testing.assert_allclose(predicted[1:1 + 3 * n].reshape(n, 3), forces, atol=1e-9)


def test_cache_is_keyed_by_configuration_and_hyperparameters(tmp_path):
    atoms = [random_configuration(s) for s in (1, 2)]
    first = list(iter_descriptors(atoms[:1], small_model(), cache_dir=tmp_path, progress=False))
    files = list(tmp_path.rglob("*.npy"))
    assert len(files) == 1 and files[0].stem == atoms_hash(atoms[0])
    both = list(iter_descriptors(atoms, small_model(), cache_dir=tmp_path, progress=False))
    assert len(list(tmp_path.rglob("*.npy"))) == 2
    np.testing.assert_array_equal(first[0], both[0])
    list(iter_descriptors(atoms[:1], small_model(rfac0=0.9), cache_dir=tmp_path, progress=False))
    assert len(list(tmp_path.rglob("*.npy"))) == 3


@pytest.mark.parametrize("spoil, message", [
    (lambda a: a.arrays.__setitem__("atom_types", np.array(["Zn4a"] * len(a))), r"descriptors: configuration 1 .*unknown"),
    (lambda a: a.positions.__setitem__((2, 1), np.nan), r"descriptors: configuration 1 .*NaN"),
    (lambda a: a.set_cell(a.cell.array * 0.8, scale_atoms=True), r"descriptors: configuration 1 .*half the shortest cell"),
    (lambda a: a.arrays.pop("atom_types"), r"descriptors: configuration 1 .*atom_types"),
])
def test_bad_configurations_are_named(spoil, message):
    images = [random_configuration(1), random_configuration(2)]
    spoil(images[1])
    with pytest.raises(DescriptorError, match=message):
        list(iter_descriptors(images, small_model(), progress=False))
