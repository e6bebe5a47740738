"""Models scored on test frames (:mod:`mofsnap.learn.scoring`): RMSE pooled over frames, bootstrap intervals,
rises beyond the noise of the frames; and the learning-curve statistics of the zoo benchmark built on them (rises
on the learned range, seed-mean rises beyond the seeds' spread)."""

import sys
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from mofsnap import SNAPCalculator
from mofsnap.learn.scoring import change_intervals, prediction_errors, rmse, rmse_intervals, squared_errors

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the benchmarks are scripts
from bench_zoo import seed_mean_rises  # noqa: E402
from zoo_collect import LEARNED_RANGE_MIN_FRAMES, learned_range_rises  # noqa: E402


def squared(energy, forces=None, stress=None, components=3):
    """Rows of squared errors as ``zoo_collect.squared_errors`` gives them: one energy, ``components`` force
    components and six stress components per frame, each row holding the sums of squares and their counts."""
    energy = np.asarray(energy, dtype=float)
    forces = energy if forces is None else np.asarray(forces, dtype=float)
    stress = energy if stress is None else np.asarray(stress, dtype=float)
    n = len(energy)
    return np.column_stack([energy ** 2, components * forces ** 2, 6 * stress ** 2,
                            np.ones(n), np.full(n, components), np.full(n, 6)])


def test_rmse_pools_the_squares_of_every_value():
    errors = rmse(squared([1.0, np.sqrt(3.0)], forces=[2.0, 0.0]))
    assert errors.energy == pytest.approx(np.sqrt(2.0), abs=1e-15)
    assert errors.forces == pytest.approx(np.sqrt(2.0), abs=1e-15)  # (3 x 4 + 0) / 6 values
    assert errors.n == 2 and rmse(np.empty((0, 6))) is None


def labelled_by(model, atoms, energy_shift_per_atom=0.0):
    """``atoms`` labelled with ``model``'s own predictions, the energy shifted by ``energy_shift_per_atom``."""
    probe = atoms.copy()
    probe.calc = SNAPCalculator(model)
    results = {"energy": probe.get_potential_energy() + energy_shift_per_atom * len(atoms),
               "forces": probe.get_forces(), "stress": probe.get_stress()}
    probe.calc = SinglePointCalculator(probe, **results)
    return probe


def test_a_model_scored_on_its_own_predictions_and_on_shifted_energies(snap_model, triclinic_atoms):
    frames = [triclinic_atoms.copy() for _ in range(3)]
    for k, atoms in enumerate(frames):
        atoms.rattle(0.05, seed=k)
    exact = squared_errors(snap_model, [labelled_by(snap_model, a) for a in frames])
    assert exact.shape == (3, 6) and np.all(exact[:, 3:] == [1, 36, 6])
    assert np.all(exact[:, :3] < 1e-16)
    errors = prediction_errors(snap_model, [labelled_by(snap_model, a, 0.002) for a in frames])
    assert errors.energy == pytest.approx(2.0, rel=1e-9) and errors.forces < 1e-8 and errors.n == 3


def test_a_rise_is_beyond_noise_only_when_the_frames_agree(rng):
    before = squared(rng.uniform(0.5, 1.5, 30))
    low, high = rmse_intervals(before)["energy"]
    assert low < rmse(before).energy < high
    assert change_intervals(before, before)["energy"] == [0.0, 0.0]
    worse, better = before.copy(), before.copy()
    worse[:, :3] *= 1.01 ** 2  # every frame 1 % worse: paired, so no noise at all
    better[:, :3] /= 1.01 ** 2
    assert change_intervals(before, worse)["forces"][0] > 0 and change_intervals(before, better)["forces"][1] < 0
    one_frame = before.copy()
    one_frame[7, 0] *= 100.0  # one frame of 30 far worse: a third of the resamples leave it out
    assert rmse(one_frame).energy > rmse(before).energy
    assert change_intervals(before, one_frame)["energy"][0] == 0.0
    with pytest.raises(ValueError, match="different configurations"):
        change_intervals(before, before[:-1])


def test_learned_range_counts_only_the_frames_both_models_had_labels_for():
    temperatures = np.array([50.0] * LEARNED_RANGE_MIN_FRAMES + [450.0] * 20)
    cold_rise = squared([1.0] * LEARNED_RANGE_MIN_FRAMES + [3.0] * 20)
    after = squared([1.5] * LEARNED_RANGE_MIN_FRAMES + [1.0] * 20)
    assert rmse(after).energy < rmse(cold_rise).energy  # over all frames the curve falls
    found = learned_range_rises([cold_rise, cold_rise, after], [0.0, 100.0, 200.0], temperatures)
    assert found["steps"] == 1  # generation 0 had learned no temperature: no frame is within its range
    assert found["rises"] == {"energy": 1, "forces": 1, "stress": 1}
    assert found["rises_beyond_noise"] == {"energy": 1, "forces": 1, "stress": 1}
    fewer = learned_range_rises([cold_rise, after], [40.0], temperatures)
    assert fewer["steps"] == 0


def curve(energy, labels):
    return [{"n_train": n, "energy": e, "forces": 100.0 - n, "stress": 10.0} for e, n in zip(energy, labels)]


def test_seed_mean_rises_beyond_twice_the_standard_error():
    labels = [10, 20, 30, 30]  # the last step added no label in any seed: not a step
    curves = [curve([1.0, 2.0, 5.0, 9.0], labels), curve([1.0, 2.0, 1.0, 9.0], labels),
              curve([1.0, 2.0, 3.0, 9.0], labels)]
    found = seed_mean_rises(curves)
    # step 1: +1 in every seed (standard error 0); step 2: +3, -1, +1, mean 1 < 2 x 2 / sqrt(3)
    assert found["energy"] == {"steps": 2, "rises": 2, "beyond_seed_spread": 1}
    assert found["forces"] == {"steps": 2, "rises": 0, "beyond_seed_spread": 0}
    assert found["stress"] == {"steps": 2, "rises": 0, "beyond_seed_spread": 0}
    assert seed_mean_rises(curves[:2]) is None
