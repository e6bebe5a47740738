"""What a fitted model knows about its own uncertainty: the ridge posterior and the per-atom extrapolation grade.

The ridge loss of :mod:`mofsnap.fit.leastsquares` is the negative log posterior of a linear-Gaussian model: weighted
rows with independent noise of variance ``s2`` and a prior ``beta ~ N(0, s2 / alpha I)``. So the coefficients have
the Gaussian posterior

    mean = (G + alpha I)^-1 A^T W b  (the fitted coefficients),    covariance = s2 (G + alpha I)^-1,

with ``G = A^T W A`` at the fitted weights, and ``s2`` estimated from the weighted residuals as
``RSS / (n_rows - tr(G (G + alpha I)^-1))``. :class:`ModelPosterior` gives the predictive σ of any descriptor row
(energy of a structure, force components, stress) and samples of coefficients or whole models.

Extrapolation grade (per atom, linear model, exact): the leverage of an atom's own energy row. Atom ``i`` of type
``t`` with per-atom bispectrum ``B_i`` (LAMMPS ``compute sna/atom``) has the row ``x_i`` that is ``[1, B_i]`` in
the columns of type ``t`` and zero elsewhere (the energy row of a structure made of copies of that environment),
weighted like the fit's energy rows, ``Ew``. Its leverage
``h_i = Ew^2 x_i (G + alpha I)^-1 x_i^T`` is the hat-matrix diagonal :func:`~mofsnap.fit.extrapolation_grade`
uses. The grade is ``gamma_i = sqrt(h_i / h_t)``, where ``h_t`` is the largest leverage of a training atom of type
``t`` (when the training set was given to :meth:`ModelPosterior.calibrate`; else ``h_t = 1``): ``gamma <= 1`` for
every training atom and ``gamma`` grows like the distance, in the metric of the posterior covariance, of an
environment from what was trained on.

The file ``<prefix>.snapfit.npz`` beside ``<prefix>.snapcoeff`` (:func:`fit_statistics_path`) holds all of this,
versioned; :meth:`ModelPosterior.write` writes it and :meth:`ModelPosterior.read` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from ase import Atoms

from ..exceptions import FitError
from ..model import SNAPModel, model_prefix
from ..results import read_arrays, write_arrays
from .leastsquares import KINDS
from .report import FitReport

#: Kind and format version of the ``.snapfit.npz`` file.
#: Smallest eigenvalue of G + alpha I kept, relative to the largest (the rest is rounding noise).
EIGENVALUE_FLOOR = 1e-13
POSTERIOR_KIND, POSTERIOR_VERSION = "snap-posterior", 1


def fit_statistics_path(prefix: str | Path) -> Path:
    """``<prefix>.snapfit.npz``: the posterior file of the model with files ``<prefix>.snapcoeff``/``.snapparam``."""
    prefix = Path(prefix)
    if prefix.suffix == ".snapcoeff":
        prefix = prefix.with_suffix("")
    return prefix.with_name(prefix.name + ".snapfit.npz")


def posterior_calculators(calculator, n: int, seed: int = 0) -> list:
    """``n`` copies of a :class:`~mofsnap.calculator.SNAPCalculator` (same D3, ZBL and other settings) whose models
    are drawn from the posterior of its model: a property recomputed with each gives its model spread.

    Raises
    ------
    FitError
        ``n < 2``, or the calculator has no posterior: not a SNAP model given by file prefix, or no
        ``<prefix>.snapfit.npz`` beside it (``mofsnap fit`` writes it).
    """
    if n < 2:
        raise FitError(f"a model spread needs at least 2 posterior samples (got {n})")
    model = getattr(calculator, "parameters", {}).get("model")
    if model is None:
        raise FitError("posterior samples need a SNAP model with its fit statistics (--model PREFIX with "
                       "PREFIX.snapfit.npz, written by 'mofsnap fit')")
    posterior = calculator.posterior
    if posterior is None:
        if isinstance(model, SNAPModel):
            raise FitError("posterior samples need the model as files: write it and its fit statistics "
                           "(mofsnap.md.grade.write_fit_statistics) and give the prefix")
        raise FitError(f"posterior samples need {fit_statistics_path(model_prefix(model))}, which does not exist: 'mofsnap fit' "
                       f"writes it beside the model (or mofsnap.md.grade.write_fit_statistics)")
    return [type(calculator)(**{**calculator.todict(), "model": sample})
            for sample in posterior.sample_models(calculator.model, n, seed)]


@dataclass(eq=False)
class ModelPosterior:
    """Gaussian posterior of the coefficients of a linear model fitted by ridge regression.

    Attributes
    ----------
    mean : (n,) array
        The fitted coefficients (flattened ``SNAPModel.coefficients``).
    gram : (n, n) array
        ``G = A^T W A`` at the fitted weights.
    alpha : float
        The ridge parameter.
    noise_variance : float
        ``s2``, the variance of a weighted row's noise.
    energy_weight : float
        ``Ew``, the weight of the per-atom energy rows (scales the per-atom grade).
    n_types, n_coefficients : int
        Layout of ``mean``: type-major blocks of ``n_coefficients`` (constant term first).
    atom_leverage_scale : (n_types,) array
        ``h_t`` of the grade (ones until :meth:`calibrate`).
    """

    mean: np.ndarray
    gram: np.ndarray
    alpha: float
    noise_variance: float
    energy_weight: float
    n_types: int
    n_coefficients: int
    atom_leverage_scale: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=float)
        self.gram = np.asarray(self.gram, dtype=float)
        n = self.n_types * self.n_coefficients
        if self.mean.shape != (n,) or self.gram.shape != (n, n):
            raise FitError(f"posterior of {n} coefficients with a mean of shape {self.mean.shape} and a gram of "
                           f"shape {self.gram.shape}")
        if not (self.alpha > 0 and self.noise_variance >= 0):
            raise FitError(f"the posterior needs alpha > 0 (got {self.alpha}) and a noise variance >= 0")
        if self.atom_leverage_scale is None:
            self.atom_leverage_scale = np.ones(self.n_types)
        self.atom_leverage_scale = np.asarray(self.atom_leverage_scale, dtype=float)
        # L L^T = G + alpha I from its eigenvalues: with a tiny alpha, rounding leaves G + alpha I numerically
        # indefinite (Cholesky fails), so eigenvalues below EIGENVALUE_FLOOR x the largest are raised to it
        values, vectors = np.linalg.eigh(self.gram + self.alpha * np.eye(n))
        values = np.maximum(values, EIGENVALUE_FLOOR * values.max())
        self._factor = vectors * np.sqrt(values)
        # an atom's descriptor row is non-zero only in its type's block, so its leverage needs only that
        # diagonal block of (G + alpha I)^-1: k x k per type instead of a solve with the whole factor
        inverse = (vectors / values) @ vectors.T
        k = self.n_coefficients
        self._type_blocks = np.stack([inverse[t * k:(t + 1) * k, t * k:(t + 1) * k] for t in range(self.n_types)])

    @classmethod
    def from_fit(cls, model: SNAPModel, report: FitReport) -> ModelPosterior:
        """The posterior of a model and the report :func:`mofsnap.fit.fit_snap` returned with it."""
        equations, ew, sw = report.equations, report.energy_weight, report.stress_weight
        gram = equations.gram(ew, sw)
        beta = model.coefficients.ravel()
        x = np.append(beta, -1.0)
        scale = {"energy": ew, "forces": 1.0, "stress": sw}
        rss = sum(scale[k] ** 2 * float(np.sum((equations.factors[k].factor() @ x) ** 2)) for k in KINDS)
        rows = sum(equations.factors[k].rows for k in KINDS)
        # effective parameters tr(G (G + alpha I)^-1) from G's eigenvalues: no solve, so a tiny alpha with
        # collinear columns (e.g. the per-type constants at a fixed composition) stays well defined
        eigenvalues = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
        dof = float(np.sum(eigenvalues / (eigenvalues + report.alpha)))
        if rows - dof <= 0:
            raise FitError(f"{rows:g} weighted rows leave no degrees of freedom for the noise ({dof:.1f} used)")
        return cls(beta, gram, report.alpha, rss / (rows - dof), ew, len(model.types), model.n_coefficients)

    # -- the posterior -------------------------------------------------------------------------------
    def _solve(self, rhs: np.ndarray) -> np.ndarray:
        """``(G + alpha I)^-1 rhs`` through the factor ``L`` (``L L^T = G + alpha I``)."""
        y = np.linalg.solve(self._factor, rhs)
        return np.linalg.solve(self._factor.T, y)

    @property
    def covariance(self) -> np.ndarray:
        """``s2 (G + alpha I)^-1``."""
        return self.noise_variance * self._solve(np.eye(len(self.mean)))

    def predictive_sigma(self, rows: np.ndarray) -> np.ndarray:
        """Posterior standard deviation of ``rows @ beta`` for each descriptor row (model uncertainty only).

        With the rows of :class:`mofsnap.descriptors.SnapDescriptors` this is σ of a structure's energy (eV),
        of each force component (eV/Å) and of each stress component (eV/Å³).
        """
        whitened = np.linalg.solve(self._factor, np.atleast_2d(rows).T)  # L^-1 a^T
        return np.sqrt(self.noise_variance * np.sum(whitened ** 2, axis=0))

    def sample_coefficients(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` draws of the coefficients from the posterior, shape ``(n, n_coefficients_total)``."""
        normal = np.random.default_rng(seed).standard_normal((len(self.mean), n))
        return self.mean + np.sqrt(self.noise_variance) * np.linalg.solve(self._factor.T, normal).T

    def sample_models(self, model: SNAPModel, n: int, seed: int = 0) -> list[SNAPModel]:
        """``n`` copies of ``model`` with coefficients drawn from the posterior (for error bars on properties)."""
        return [replace(model, radii=model.radii.copy(), weights=model.weights.copy(), extra=dict(model.extra),
                        coefficients=beta.reshape(self.n_types, self.n_coefficients))
                for beta in self.sample_coefficients(n, seed)]

    # -- the extrapolation grade ----------------------------------------------------------------------
    def atom_leverage(self, bispectrum: np.ndarray, types: np.ndarray) -> np.ndarray:
        """``h_i`` of each atom (module docstring) from its ``compute sna/atom`` row and its 0-based type index."""
        bispectrum = np.atleast_2d(bispectrum)
        types = np.asarray(types)
        rows = np.column_stack([np.ones(len(bispectrum)), bispectrum])  # the atom's block: constant, then B
        leverage = np.empty(len(rows))
        for t in np.unique(types):
            mine = types == t
            leverage[mine] = np.einsum("ij,jk,ik->i", rows[mine], self._type_blocks[t], rows[mine])
        return self.energy_weight ** 2 * leverage

    def atom_grades(self, bispectrum: np.ndarray, types: np.ndarray) -> np.ndarray:
        """The extrapolation grade ``gamma_i`` of each atom (module docstring)."""
        types = np.asarray(types)
        return np.sqrt(self.atom_leverage(bispectrum, types) / self.atom_leverage_scale[types])

    def calibrate(self, training: Sequence[Atoms], calculator) -> ModelPosterior:
        """Set ``h_t`` to the largest leverage of a training atom of each type; returns ``self``.

        ``calculator`` is a :class:`mofsnap.calculator.SNAPCalculator` of the model (it supplies
        :meth:`~mofsnap.calculator.SNAPCalculator.bispectrum` and the type indices).
        """
        largest = np.zeros(self.n_types)
        for atoms in training:
            types = calculator.type_indices(atoms)
            leverage = self.atom_leverage(calculator.bispectrum(atoms), types)
            np.maximum.at(largest, types, leverage)
        self.atom_leverage_scale = np.where(largest > 0, largest, 1.0)
        return self

    # -- the file -------------------------------------------------------------------------------------
    def write(self, path: str | Path) -> Path:
        """Write the posterior as a versioned NPZ (``<prefix>.snapfit.npz`` beside a model, see
        :func:`fit_statistics_path`), replacing any older file atomically."""
        return write_arrays(path, POSTERIOR_KIND, POSTERIOR_VERSION, dict(
            mean=self.mean, gram=self.gram, alpha=self.alpha, noise_variance=self.noise_variance,
            energy_weight=self.energy_weight, n_types=self.n_types, n_coefficients=self.n_coefficients,
            atom_leverage_scale=self.atom_leverage_scale))

    @classmethod
    def read(cls, path: str | Path) -> ModelPosterior:
        """The posterior written by :meth:`write`, equal to it array by array.

        Raises
        ------
        ResultFileError
            Missing, unreadable, or not a posterior of this format version.
        """
        arrays = read_arrays(path, POSTERIOR_KIND, POSTERIOR_VERSION,
                             "write it again with ModelPosterior.from_fit(model, report).write(...)")
        return cls(arrays["mean"], arrays["gram"], float(arrays["alpha"]), float(arrays["noise_variance"]),
                   float(arrays["energy_weight"]), int(arrays["n_types"]), int(arrays["n_coefficients"]),
                   arrays["atom_leverage_scale"])
