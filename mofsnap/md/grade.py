"""The extrapolation grade in production MD: warn, collect extrapolative frames, stop.

:class:`GradeMonitor` is an observer of :func:`mofsnap.md.run_md`: every ``interval`` steps it evaluates the
per-atom grade γ of :class:`mofsnap.fit.posterior.ModelPosterior` from the per-atom bispectrum of the
calculator's own LAMMPS instance (:meth:`mofsnap.calculator.SNAPCalculator.bispectrum`). Above ``warn`` it logs a
warning and appends the frame (with a per-atom ``grade`` array) to ``extrapolative.extxyz``, ready for
``mofsnap learn --pool``; above ``stop`` it stops the run. γ ≤ 1 for every training atom; the defaults follow the
usual active-learning practice: collect above 2, stop above 10.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

from ..calculator import SNAPCalculator
from ..exceptions import MDError
from ..fit import FitReport
from ..fit.posterior import ModelPosterior, fit_statistics_path
from ..model import SNAPModel
from .guards import describe_atoms

log = logging.getLogger(__name__)

#: Default thresholds of :class:`GradeMonitor`: collect the frame above γ1, stop the run above γ2.
GRADE_WARN, GRADE_STOP = 2.0, 10.0
#: Default steps between grade evaluations.
GRADE_INTERVAL = 10


class GradeMonitor:
    """Evaluate the extrapolation grade every ``interval`` steps of a run (an observer of ``run_md``).

    Parameters
    ----------
    calculator : SNAPCalculator
        The run's calculator; its model files must carry ``<prefix>.snapfit.npz`` (its ``posterior``).
    interval : int
        Steps between evaluations.
    warn, stop : float
        γ above which the frame is collected (and a warning logged), and above which the run stops.
    extrapolative : path, optional
        Where collected frames are appended (extended XYZ).

    Attributes
    ----------
    history : list of (int, float)
        Step and largest γ of every evaluation.
    """

    def __init__(self, calculator, interval: int = GRADE_INTERVAL, warn: float = GRADE_WARN,
                 stop: float = GRADE_STOP, extrapolative: str | Path | None = None) -> None:
        posterior = getattr(calculator, "posterior", None)
        if posterior is None:
            raise MDError("the extrapolation grade needs a SNAP model given by its file prefix with the fit's "
                          "<prefix>.snapfit.npz beside it (mofsnap.md.grade.write_fit_statistics)")
        if not (isinstance(interval, int) and interval >= 1 and 0 < warn <= stop):
            raise MDError(f"grade settings need interval >= 1 and 0 < warn <= stop (got {interval}, {warn}, {stop})")
        self.calculator, self.posterior = calculator, posterior
        self.interval, self.warn, self.stop = interval, warn, stop
        self.extrapolative = Path(extrapolative) if extrapolative is not None else None
        self.history: list[tuple[int, float]] = []

    def grades(self, atoms: Atoms) -> np.ndarray:
        """γ of each atom at the current state."""
        return self.posterior.atom_grades(self.calculator.bispectrum(atoms), self.calculator.type_indices(atoms))

    def __call__(self, atoms: Atoms, step: int) -> str | None:
        if step % self.interval:
            return None
        gamma = self.grades(atoms)
        worst = int(np.argmax(gamma))
        self.history.append((step, float(gamma[worst])))
        if gamma[worst] <= self.warn:
            return None
        log.warning("extrapolation grade %.2f > %g on %s at step %d", gamma[worst], self.warn,
                    describe_atoms(atoms, [worst]), step)
        if self.extrapolative is not None:
            frame = atoms.copy()
            frame.calc = None
            frame.arrays["grade"] = gamma
            frame.info.update(md_step=step, max_grade=float(gamma[worst]))
            write(self.extrapolative, frame, format="extxyz", append=True)
        if gamma[worst] > self.stop:
            over = np.flatnonzero(gamma > self.stop)
            return (f"grade guard: extrapolation grade {gamma[worst]:.1f} > {self.stop:g} on "
                    f"{describe_atoms(atoms, over[np.argsort(-gamma[over])])} at step {step}")
        return None


def write_fit_statistics(prefix: str | Path, model: SNAPModel, report: FitReport,
                         training: Sequence[Atoms] | None = None) -> Path:
    """Write ``<prefix>.snapfit.npz``: the posterior of a fit, calibrated on ``training`` when given.

    Call it next to ``model.write(prefix)`` so the model's files carry what the grade and the error bars need.
    """
    posterior = ModelPosterior.from_fit(model, report)
    if training:
        with SNAPCalculator(model) as calculator:
            posterior.calibrate(training, calculator)
    return posterior.write(fit_statistics_path(prefix))
