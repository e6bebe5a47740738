"""Training SNAP models: weighted ridge regression on descriptor rows, error reports, hyperparameter search.

- :mod:`~mofsnap.fit.leastsquares`: the loss, :class:`NormalEquations`, the selection objective and
  :func:`extrapolation_grade`;
- :mod:`~mofsnap.fit.training`: :func:`fit_snap`, from labelled configurations to a model and its report;
- :mod:`~mofsnap.fit.report`: :class:`FitReport` (``write``/``read``, CSV, parity plots);
- :mod:`~mofsnap.fit.search`: :func:`search_hyperparameters`, :func:`optimize_hyperparameters`;
- :mod:`~mofsnap.fit.curve`: :func:`learning_curve`.

Command line: ``mofsnap fit train.extxyz --valid valid.extxyz -o model/`` (or ``python -m mofsnap.fit``).
"""

from .curve import LearningCurve, learning_curve
from .leastsquares import NormalEquations, extrapolation_grade, objective
from .report import FitReport
from .search import HyperparameterSearch, optimize_hyperparameters, search_hyperparameters
from .training import fit_snap, model_for, reference_targets

__all__ = ["FitReport", "HyperparameterSearch", "LearningCurve", "NormalEquations", "extrapolation_grade",
           "fit_snap", "learning_curve", "model_for", "objective", "optimize_hyperparameters",
           "reference_targets", "search_hyperparameters"]
