"""Fixtures shared by the whole suite: built-in structures, the command line, a seeded generator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from mofsnap.cli import main as mofsnap_main
from mofsnap.model import SNAPModel

#: The four ZIF-8 atom types of the small SNAP test systems.
SNAP_TEST_TYPES = ["C3a", "H1a", "N3a", "Zn4a"]


@dataclass
class CommandResult:
    """What one ``mofsnap`` command line returned and printed."""

    status: int
    out: str
    err: str


@pytest.fixture
def cli(capsys) -> Callable[..., CommandResult]:
    """Run ``mofsnap ARGS...`` in this process: ``cli("vdos", "traj.extxyz", "-o", dir)``."""

    def run(*args) -> CommandResult:
        capsys.readouterr()
        status = mofsnap_main([str(a) for a in args])
        captured = capsys.readouterr()
        return CommandResult(status, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def _zif8() -> Atoms:
    from mofsnap.structures import zif8

    return zif8()


@pytest.fixture(scope="session")
def _mof5() -> Atoms:
    from mofsnap.structures import mof5

    return mof5()


@pytest.fixture
def zif8_atoms(_zif8) -> Atoms:
    """The conventional ZIF-8 cell (276 atoms, typed); a fresh copy for each test."""
    return _zif8.copy()


@pytest.fixture
def mof5_atoms(_mof5) -> Atoms:
    """The conventional MOF-5 cell (424 atoms, typed); a fresh copy for each test."""
    return _mof5.copy()


@pytest.fixture
def paddlewheel() -> Atoms:
    """The Cu2(O2CH)4 paddlewheel molecule, no cell: Cu-Cu 2.63 Å, Cu-O 1.96 Å, C-O 1.28 Å, C-H 1.09 Å."""
    atoms = Atoms("Cu2", positions=[[0, 0, 1.315], [0, 0, -1.315]])
    for direction in ([1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]):
        d = np.array(direction, dtype=float)
        atoms += Atoms("O2CH", positions=[1.95 * d + [0, 0, 1.13], 1.95 * d - [0, 0, 1.13], 2.55 * d, 3.64 * d])
    return atoms


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator (the same numbers in every run)."""
    return np.random.default_rng(20261129)


@pytest.fixture(scope="module")
def snap_model() -> SNAPModel:
    """A SNAP model of :data:`SNAP_TEST_TYPES` with small random coefficients: smooth, so finite differences are
    meaningful (costs and agreements do not depend on the coefficients)."""
    rng = np.random.default_rng(1)
    model = SNAPModel(SNAP_TEST_TYPES, radii=[0.45, 0.30, 0.45, 0.42], weights=[1.0, 0.8, 1.1, 0.3])
    model.coefficients = rng.normal(0.0, 0.05, model.coefficients.shape)
    model.coefficients[:, 0] = [-3.0, -1.0, -4.0, -2.0]
    return model


@pytest.fixture
def triclinic_atoms() -> Atoms:
    """12 atoms of the :data:`SNAP_TEST_TYPES` (typed) in a skewed triclinic cell."""
    rng = np.random.default_rng(0)
    cell = np.array([[7.0, 0.0, 0.0], [0.8, 7.2, 0.0], [-0.5, 0.6, 6.8]])
    grid = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(3)]) / [2, 2, 3]
    atoms = Atoms(["C", "H", "N", "Zn"] * 3, positions=grid @ cell + rng.normal(0, 0.15, (12, 3)), cell=cell,
                  pbc=True)
    atoms.arrays["atom_types"] = np.array(SNAP_TEST_TYPES * 3)
    return atoms


@pytest.fixture(scope="session")
def copper_snap(tmp_path_factory):
    """File prefix of a copper SNAP (type Cu12a, first neighbours only, for 2x2x2 cubic cells and larger) fitted to
    EMT on six rattled cells, with its .snapfit.npz, and the prefix of the same model without it."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    from mofsnap.fit import fit_snap
    from mofsnap.md.grade import write_fit_statistics

    training = []
    for k in range(6):
        atoms = bulk("Cu", cubic=True, a=3.55 + 0.02 * k).repeat(2)
        atoms.new_array("atom_types", np.array(["Cu12a"] * len(atoms)))
        atoms.rattle(0.05, seed=k)
        atoms.calc = EMT()
        labels = dict(energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress())
        atoms.calc = SinglePointCalculator(atoms, **labels)
        training.append(atoms)
    model, report = fit_snap(training, model=SNAPModel(["Cu12a"], twojmax=4, rcutfac=4.0, radii=[0.43],
                                                       weights=[1.0]), alpha=1e-6, progress=False)
    folder = tmp_path_factory.mktemp("snap")
    model.write(folder / "cu")
    write_fit_statistics(folder / "cu", model, report, training=training)
    model.write(folder / "bare")
    return folder / "cu", folder / "bare"


@pytest.fixture(scope="session")
def ethanol_file(tmp_path_factory) -> Path:
    """Ethanol typed in a periodic 9 Å box, as an extxyz file: the structure of the small learn campaigns."""
    from ase.io import write
    from molecules import boxed

    path = tmp_path_factory.mktemp("structure") / "ethanol.extxyz"
    write(path, boxed("CH3CH2OH"))
    return path
