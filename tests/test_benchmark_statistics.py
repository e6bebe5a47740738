"""The statistics behind the zoo benchmark's learning-curve figures: RMSE from per-frame squared errors, rises
beyond the noise of the test frames (paired bootstrap), on the learned range, and beyond the seeds' spread."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the benchmarks are scripts
from bench_zoo import seed_mean_rises  # noqa: E402
from zoo_collect import LEARNED_RANGE_MIN_FRAMES, beyond_noise, learned_range_rises, rmse_of  # noqa: E402


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
    rows = squared([1.0, np.sqrt(3.0)], forces=[2.0, 0.0])
    assert rmse_of(rows, 0) == pytest.approx(np.sqrt(2.0), abs=1e-15)
    assert rmse_of(rows, 1) == pytest.approx(np.sqrt(2.0), abs=1e-15)  # (3 x 4 + 0) / 6 values


def test_a_rise_is_beyond_noise_only_when_the_frames_agree(rng):
    before = squared(rng.uniform(0.5, 1.5, 30))
    assert not beyond_noise(before, before, 0)
    worse, better = before.copy(), before.copy()
    worse[:, :3] *= 1.01 ** 2  # every frame 1 % worse: paired, so no noise at all
    better[:, :3] /= 1.01 ** 2
    assert beyond_noise(before, worse, 0) and not beyond_noise(before, better, 0)
    one_frame = before.copy()
    one_frame[7, 0] *= 100.0  # one frame of 30 far worse: a third of the resamples leave it out
    assert rmse_of(one_frame, 0) > rmse_of(before, 0) and not beyond_noise(before, one_frame, 0)


def test_learned_range_counts_only_the_frames_both_models_had_labels_for():
    temperatures = np.array([50.0] * LEARNED_RANGE_MIN_FRAMES + [450.0] * 20)
    cold_rise = squared([1.0] * LEARNED_RANGE_MIN_FRAMES + [3.0] * 20)
    after = squared([1.5] * LEARNED_RANGE_MIN_FRAMES + [1.0] * 20)
    assert rmse_of(after, 0) < rmse_of(cold_rise, 0)  # over all frames the curve falls
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
