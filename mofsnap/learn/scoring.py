"""A model scored on labelled configurations: residuals, RMSE, and how much of a change between two models is
the noise of the configurations.

A campaign's learning curve scores every generation's model on the same test frames. Whether a rise from one
generation to the next belongs to the models or to the draw of test frames is told by a paired bootstrap over
the frames (:func:`change_intervals`): both models are scored on the same resampled frames, and a rise is
beyond the noise when the 95 % interval of the change lies above zero. :func:`rmse_intervals` gives the
interval of one model's RMSE (the error bars of ``learning_curve.png``).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ..calculator import SNAPCalculator
from ..model import SNAPModel
from ..fit.leastsquares import REPORT_UNITS
from .summary import RMSE

#: The scored quantities, in the column order of :func:`squared_errors`.
QUANTITIES = ("energy", "forces", "stress")
#: Resamples and seed of every bootstrap (fixed, so a resumed campaign reports the same intervals).
BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED = 2000, 0
#: Percentiles bounding the 95 % intervals.
INTERVAL_PERCENTILES = (2.5, 97.5)


def prediction_residuals(model: SNAPModel, images: list[Atoms]) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Per labelled configuration, the model minus the label: energy per atom (eV/atom), forces (eV/Å, one row
    per atom) and stress (eV/Å³, Voigt order)."""
    calc = SNAPCalculator(model)
    residuals = []
    for atoms in images:
        probe = atoms.copy()
        probe.calc = calc
        residuals.append(((probe.get_potential_energy() - atoms.get_potential_energy()) / len(atoms),
                          probe.get_forces() - atoms.get_forces(), probe.get_stress() - atoms.get_stress()))
    return residuals


def squared_errors(model: SNAPModel, images: list[Atoms]) -> np.ndarray:
    """Per configuration (rows), the model's squared errors summed per quantity in the units of
    :data:`~mofsnap.fit.leastsquares.REPORT_UNITS`: energy per atom (meV/atom)², force components (meV/Å)²,
    stress components (MPa)²; columns 3-5 hold how many values each sum has."""
    scale = [REPORT_UNITS[q][1] for q in QUANTITIES]
    return np.array([[*(np.sum((f * np.asarray(r)) ** 2) for f, r in zip(scale, residuals)),
                      *(np.size(r) for r in residuals)]
                     for residuals in prediction_residuals(model, images)]).reshape(-1, 6)


def rmse(squared: np.ndarray) -> RMSE | None:
    """The RMSE of each quantity over all configurations of :func:`squared_errors` (None for none)."""
    if len(squared) == 0:
        return None
    total = squared.sum(axis=0)
    return RMSE(*(float(np.sqrt(total[i] / total[i + 3])) for i in range(3)), len(squared))


def prediction_errors(model: SNAPModel, images: list[Atoms]) -> RMSE | None:
    """RMSE of a model against labelled configurations (None for no configurations)."""
    return rmse(squared_errors(model, images))


def _resampled(squared: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """The RMSE of each quantity (columns) on each resample of configurations (rows of ``picks``)."""
    sums = squared[picks].sum(axis=1)
    return np.sqrt(sums[:, :3] / sums[:, 3:])


def _picks(n: int) -> np.ndarray:
    return np.random.default_rng(BOOTSTRAP_SEED).integers(n, size=(BOOTSTRAP_RESAMPLES, n))


def _intervals(values: np.ndarray) -> dict[str, list[float]]:
    bounds = np.percentile(values, INTERVAL_PERCENTILES, axis=0)
    return {q: [float(bounds[0, i]), float(bounds[1, i])] for i, q in enumerate(QUANTITIES)}


def rmse_intervals(squared: np.ndarray) -> dict[str, list[float]]:
    """The 95 % bootstrap interval ``[low, high]`` of each quantity's RMSE over the configurations of
    :func:`squared_errors` (resampled with replacement)."""
    return _intervals(_resampled(squared, _picks(len(squared))))


def change_intervals(before: np.ndarray, after: np.ndarray) -> dict[str, list[float]]:
    """The 95 % interval ``[low, high]`` of the change of each quantity's RMSE from the model of ``before`` to
    the model of ``after`` (:func:`squared_errors` of both on the same configurations), from a paired
    bootstrap: both are scored on the same resampled configurations. A rise is beyond the noise of the
    configurations when ``low > 0``."""
    if before.shape != after.shape:
        raise ValueError(f"the two models were scored on different configurations ({len(before)} and {len(after)})")
    picks = _picks(len(before))
    return _intervals(_resampled(after, picks) - _resampled(before, picks))
