"""Descriptor rows of a fit fanned out over an Executor: the same rows bit for bit, the same cache, clear errors."""

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from mofsnap.descriptors import descriptor_key, fill_cache, iter_descriptors
from mofsnap.exceptions import DescriptorError
from mofsnap.executors import worker_pool
from mofsnap.hashing import atoms_hash
from mofsnap.model import SNAPModel


@pytest.fixture
def images(zif8_atoms, rng):
    """Ten perturbed ZIF-8 cells."""
    frames = []
    for _ in range(10):
        atoms = zif8_atoms.copy()
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        frames.append(atoms)
    return frames


@pytest.fixture
def model(zif8_atoms):
    return SNAPModel(sorted(set(zif8_atoms.arrays["atom_types"])), twojmax=2)


def test_parallel_rows_equal_serial_rows_bit_for_bit(images, model, tmp_path):
    serial = list(iter_descriptors(images, model, progress=False))  # no executor: all in this process
    with worker_pool(2) as executor:
        parallel = list(iter_descriptors(images, model, cache_dir=tmp_path, progress=False, executor=executor))
    for ours, theirs in zip(parallel, serial, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    cached = sorted(p.name for p in (tmp_path / descriptor_key(model)).iterdir())
    assert cached == sorted(f"{atoms_hash(a)}.npy" for a in images)
    with worker_pool(2) as executor:
        assert fill_cache(images, model, tmp_path, executor, progress=False) == 0  # nothing left to compute


def test_without_an_executor_the_rows_are_left_to_the_serial_path(images, model, tmp_path):
    assert fill_cache(images, model, tmp_path, progress=False) == 0
    assert not (tmp_path / descriptor_key(model)).exists()


def test_explicit_executor_and_errors(images, model, tmp_path):
    with ProcessPoolExecutor(2) as executor:
        assert fill_cache(images[:3], model, tmp_path, executor, progress=False) == 3
        for ours, atoms in zip(iter_descriptors(images[:3], model, tmp_path, progress=False, executor=executor),
                               images[:3]):
            np.testing.assert_array_equal(ours, np.load(tmp_path / descriptor_key(model) / f"{atoms_hash(atoms)}.npy"))
        images[4].arrays["atom_types"][0] = "Xx"
        with pytest.raises(DescriptorError, match=r"train: configuration 4 .*unknown to the model"):
            fill_cache(images, model, tmp_path / "other", executor, progress=False, desc="train")
