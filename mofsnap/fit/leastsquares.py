"""Weighted ridge least squares on SNAP descriptor rows, accumulated one configuration at a time.

The loss minimised for coefficients ``beta`` (the flattened ``SNAPModel.coefficients``) is::

    sum_c w_c^2 [ Ew^2 ((E_c - A_E beta) / N_c)^2 + |F_c - A_F beta|^2 + Sw^2 |S_c - A_S beta|^2 ] + alpha |beta|^2

with ``w_c = atoms.info.get("weight", 1)`` per configuration, energies per atom (eV/atom), forces in eV/Å and
stress in eV/Å³ (the virial divided by the volume): ``Ew`` and ``Sw`` are row weights relative to the force
rows. The statistics are accumulated configuration by configuration as the upper-triangular factor ``R`` of
the weighted ``[A | b]`` of each kind of row (energy, forces, stress), so memory grows with ncoef², not with
the number of rows; ``R^T R`` is exactly the normal-equation matrix ``[A|b]^T W [A|b]``, but solving from
``R`` keeps the accuracy of a dense least-squares solve (the normal equations square the condition number).
Because the three kinds are kept apart, refits with new ``Ew``, ``Sw`` or ``alpha`` and the RMSEs of any
coefficient vector cost O(ncoef³) and need no descriptor.

The model-selection objective (used for ``alpha`` and by :func:`mofsnap.fit.optimize_hyperparameters`) is::

    RMSE_E / 1 meV/atom + RMSE_F / 100 meV/Å + RMSE_S / 30 MPa

on held-out data (the scales, see :data:`OBJECTIVE_SCALES`, are the size of the published ZIF-8 errors, so a
good model scores about 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..exceptions import FitError
from ..units import EV_PER_A3_IN_MPA

#: The three kinds of rows of a configuration, in the order of its descriptor rows.
KINDS = ("energy", "forces", "stress")
#: Scales of the selection objective, in ASE units (eV/atom, eV/Å, eV/Å³).
OBJECTIVE_SCALES = {"energy": 1e-3, "forces": 0.1, "stress": 30.0 / EV_PER_A3_IN_MPA}
#: Report units: (name, factor from ASE units).
REPORT_UNITS = {"energy": ("meV/atom", 1e3), "forces": ("meV/Å", 1e3), "stress": ("MPa", EV_PER_A3_IN_MPA)}


def split_rows(rows: np.ndarray, target: np.ndarray, natoms: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Descriptor rows and targets of one configuration by kind, the energy row divided by the atom count."""
    return {"energy": (rows[:1] / natoms, target[:1] / natoms), "forces": (rows[1:-6], target[1:-6]),
            "stress": (rows[-6:], target[-6:])}


class _Triangle:
    """Upper-triangular factor R of a growing weighted matrix [A | b] (R^T R = [A|b]^T [A|b])."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.r = np.zeros((0, width))
        self.rows = 0.0  # sum of w^2 over rows: the denominator of a weighted RMSE
        self._buffer: list[np.ndarray] = []
        self._buffered = 0

    def add(self, block: np.ndarray, weight_sq_rows: float) -> None:
        self._buffer.append(block)
        self._buffered += len(block)
        self.rows += weight_sq_rows
        if self._buffered >= 2 * self.width:
            self.factor()

    def factor(self) -> np.ndarray:
        if self._buffer:
            stacked = np.vstack([self.r, *self._buffer])
            self.r = np.linalg.qr(stacked, mode="r")[:self.width]
            self._buffer, self._buffered = [], 0
        return self.r

    def merged(self, others: Iterable[_Triangle]) -> _Triangle:
        out = _Triangle(self.width)
        for tri in (self, *others):
            out.add(tri.factor(), 0.0)
            out.rows += tri.rows
        out.factor()
        return out


class NormalEquations:
    """Weighted least-squares statistics of a training set, accumulated one configuration at a time.

    Parameters
    ----------
    n_columns : int
        Number of coefficients (``ntypes * n_coefficients``).
    """

    def __init__(self, n_columns: int) -> None:
        self.n_columns = n_columns
        self.factors = {kind: _Triangle(n_columns + 1) for kind in KINDS}
        self.n_configurations = 0

    def add(self, rows: np.ndarray, target: np.ndarray, natoms: int, weight: float = 1.0) -> None:
        """Add one configuration's descriptor rows and targets (see :func:`mofsnap.fit.reference_targets`)."""
        for kind, (a, b) in split_rows(rows, target, natoms).items():
            self.factors[kind].add(weight * np.column_stack([a, b]), weight ** 2 * len(a))
        self.n_configurations += 1

    def merged(self, others: Sequence[NormalEquations]) -> NormalEquations:
        """The statistics of this set and ``others`` together."""
        out = NormalEquations(self.n_columns)
        out.factors = {k: self.factors[k].merged(o.factors[k] for o in others) for k in KINDS}
        out.n_configurations = self.n_configurations + sum(o.n_configurations for o in others)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The statistics as plain data: per kind the factor ``R`` and the summed squared row weights."""
        return {"n_columns": self.n_columns, "n_configurations": self.n_configurations,
                "factors": {k: {"r": self.factors[k].factor(), "rows": self.factors[k].rows} for k in KINDS}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormalEquations:
        """The statistics written by :meth:`to_dict` (exactly: the same factors give the same solutions)."""
        out = cls(int(data["n_columns"]))
        out.n_configurations = int(data["n_configurations"])
        for kind in KINDS:
            tri = out.factors[kind]
            tri.r = np.asarray(data["factors"][kind]["r"], dtype=float).reshape(-1, tri.width)
            tri.rows = float(data["factors"][kind]["rows"])
        return out

    def _stack(self, energy_weight: float, stress_weight: float) -> np.ndarray:
        scale = {"energy": energy_weight, "forces": 1.0, "stress": stress_weight}
        return np.vstack([scale[k] * self.factors[k].factor() for k in KINDS])

    def gram(self, energy_weight: float, stress_weight: float) -> np.ndarray:
        """The normal-equation matrix ``A^T W A`` (without the ridge term) for these global weights."""
        r = self._stack(energy_weight, stress_weight)[:, :-1]
        return r.T @ r

    def rhs(self, energy_weight: float, stress_weight: float) -> np.ndarray:
        """The right-hand side ``A^T W b``."""
        r = self._stack(energy_weight, stress_weight)
        return r[:, :-1].T @ r[:, -1]

    def solve(self, alpha: float, energy_weight: float, stress_weight: float) -> np.ndarray:
        """Coefficients minimising the weighted ridge loss (module docstring)."""
        return self.solve_path([alpha], energy_weight, stress_weight)[0]

    def solve_path(self, alphas: Sequence[float], energy_weight: float, stress_weight: float) -> np.ndarray:
        """Coefficients for each ridge parameter in ``alphas`` (rows), from one singular value decomposition.

        With ``alpha = 0`` singular values below ``eps * max(shape) * s_max`` are dropped: the minimum-norm
        least-squares solution, as ``numpy.linalg.lstsq`` gives.
        """
        if self.n_configurations == 0:
            raise FitError("no training configurations")
        r = self._stack(energy_weight, stress_weight)
        u, s, vt = np.linalg.svd(r[:, :-1], full_matrices=False)
        ub = u.T @ r[:, -1]
        kept = s > np.finfo(float).eps * max(r.shape) * s.max()
        out = []
        for alpha in alphas:
            factor = np.divide(s, s ** 2 + alpha, out=np.zeros_like(s), where=kept | (alpha > 0))
            out.append(vt.T @ (factor * ub))
        return np.array(out)

    def rmse(self, beta: np.ndarray) -> dict[str, float]:
        """Weighted RMSE of each kind of row for coefficients ``beta`` (ASE units; eV/atom for energy)."""
        x = np.append(beta, -1.0)
        out = {}
        for kind in KINDS:
            tri = self.factors[kind]
            out[kind] = float(np.sqrt(np.sum((tri.factor() @ x) ** 2) / tri.rows)) if tri.rows else float("nan")
        return out


def objective(rmse: dict[str, float]) -> float:
    """The documented selection objective: the sum of each RMSE over its :data:`OBJECTIVE_SCALES` entry."""
    return float(sum(rmse[k] / OBJECTIVE_SCALES[k] for k in KINDS if np.isfinite(rmse[k])))


def extrapolation_grade(gram: np.ndarray, rows: np.ndarray, rcond: float = 1e-12) -> float:
    """Leverage of descriptor rows with respect to a training set: ``max_i a_i G^+ a_i^T``.

    ``G = A^T W A`` is the training normal-equation matrix. For a training row the value is its
    hat-matrix diagonal (between 0 and 1; the grades of all training rows sum to the rank of ``G``), so a
    grade above 1 means the row lies outside the span the training set covers: the model extrapolates.
    This is the D-optimality criterion: adding a row with grade ``g`` multiplies ``det G`` by ``1 + g``.

    Parameters
    ----------
    gram : (n, n) array
        A normal-equation matrix, e.g. ``FitReport.gram`` of :func:`mofsnap.fit.fit_snap`.
    rows : (m, n) array
        Descriptor rows of the configuration, weighted as in the fit (see
        :meth:`mofsnap.fit.FitReport.weighted_rows`).
    rcond : float
        Eigenvalues of ``G`` below ``rcond * max eigenvalue`` are treated as zero (pseudo-inverse).
    """
    g = np.asarray(gram, dtype=float)
    values, vectors = np.linalg.eigh(g)
    keep = values > rcond * values.max()
    projected = np.atleast_2d(rows) @ vectors[:, keep]
    return float(np.max(np.sum(projected ** 2 / values[keep], axis=1)))
