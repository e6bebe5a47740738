"""Training SNAP models: weighted ridge regression on descriptor rows, error reports, hyperparameter search.

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

The model-selection objective (used for ``alpha`` and by :func:`optimize_hyperparameters`) is::

    RMSE_E / 1 meV/atom + RMSE_F / 100 meV/Å + RMSE_S / 30 MPa

on held-out data (the scales, see :data:`OBJECTIVE_SCALES`, are the size of the published ZIF-8 errors, so a
good model scores about 3).

Command line: ``python -m mofsnap.fit train.extxyz --valid valid.extxyz -o model/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from scipy.optimize import minimize
from tqdm.auto import tqdm

from .descriptors import configuration_name, iter_descriptors
from .exceptions import FitError
from .units import ENERGY_WEIGHT, EV_PER_A3_IN_MPA, STRESS_WEIGHT
from .model import SNAPModel
from .plotting import learning_curve_figure, parity_figure

log = logging.getLogger(__name__)

#: eV/Å³ in MPa.
KINDS = ("energy", "forces", "stress")
#: Scales of the selection objective, in ASE units (eV/atom, eV/Å, eV/Å³).
OBJECTIVE_SCALES = {"energy": 1e-3, "forces": 0.1, "stress": 30.0 / EV_PER_A3_IN_MPA}
#: Report units: (name, factor from ASE units).
REPORT_UNITS = {"energy": ("meV/atom", 1e3), "forces": ("meV/Å", 1e3), "stress": ("MPa", EV_PER_A3_IN_MPA)}
DEFAULT_ALPHAS = tuple(np.logspace(-10, 2, 25))


# ----------------------------------------------------------------------------------------------- targets

def reference_targets(atoms: Atoms, index: int = 0,
                      reference: Calculator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Labels ``[E, F_1x .. F_Nz, S_xx S_yy S_zz S_yz S_xz S_xy]`` of a configuration and the reference's part.

    Parameters
    ----------
    atoms : Atoms
        Carrying energy, forces and stress in its calculator (as ``ase.io.read`` of an extxyz gives).
    index : int
        Position in the data set, for error messages.
    reference : ASE calculator, optional
        A potential fitted *around*: SNAP is fitted to ``labels - reference_part``.

    Returns
    -------
    labels, reference_part : arrays of length 1 + 3N + 6
        ``reference_part`` is zero without a reference.
    """
    name = configuration_name(atoms, index)
    try:
        energy = float(atoms.get_potential_energy())
        forces = np.asarray(atoms.get_forces(), dtype=float)
        stress = np.asarray(atoms.get_stress(voigt=True), dtype=float)
    except Exception as exc:  # noqa: BLE001  (no calculator, or one without that property)
        raise FitError(f"{name} lacks a reference energy, forces or stress ({type(exc).__name__}: {exc})") from None
    if forces.shape != (len(atoms), 3) or stress.shape != (6,):
        raise FitError(f"{name}: forces of shape {forces.shape} and stress of shape {stress.shape} do not fit "
                       f"{len(atoms)} atoms")
    values = np.concatenate([[energy], forces.ravel(), stress])
    if not np.all(np.isfinite(values)):
        raise FitError(f"{name} has NaN or infinite energy, forces or stress")
    if reference is None:
        return values, np.zeros_like(values)
    probe = atoms.copy()
    probe.calc = reference
    return values, np.concatenate([[probe.get_potential_energy()], probe.get_forces().ravel(),
                                   probe.get_stress(voigt=True)])


def _targets(images: Sequence[Atoms], reference: Calculator | None, progress: bool,
             desc: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Fit targets (labels minus reference) and reference parts of each configuration."""
    pairs = [reference_targets(a, i, reference)
             for i, a in enumerate(tqdm(images, desc=desc, disable=not progress or reference is None))]
    return [lab - ref for lab, ref in pairs], [ref for _, ref in pairs]


def _config_weight(atoms: Atoms, index: int) -> float:
    weight = float(atoms.info.get("weight", 1.0))
    if not np.isfinite(weight) or weight < 0:
        raise FitError(f"{configuration_name(atoms, index)} has an invalid weight {weight}")
    return weight


def _split(rows: np.ndarray, target: np.ndarray, natoms: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Rows and targets by kind, the energy row per atom."""
    return {"energy": (rows[:1] / natoms, target[:1] / natoms), "forces": (rows[1:-6], target[1:-6]),
            "stress": (rows[-6:], target[-6:])}


# ---------------------------------------------------------------------------------------- normal equations

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

    def merged(self, others: Iterable["_Triangle"]) -> "_Triangle":
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
        """Add one configuration's descriptor rows and targets (see :func:`reference_targets`)."""
        for kind, (a, b) in _split(rows, target, natoms).items():
            self.factors[kind].add(weight * np.column_stack([a, b]), weight ** 2 * len(a))
        self.n_configurations += 1

    def merged(self, others: Sequence["NormalEquations"]) -> "NormalEquations":
        """The statistics of this set and ``others`` together."""
        out = NormalEquations(self.n_columns)
        out.factors = {k: self.factors[k].merged(o.factors[k] for o in others) for k in KINDS}
        out.n_configurations = self.n_configurations + sum(o.n_configurations for o in others)
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


def extrapolation_grade(gram, rows: np.ndarray, rcond: float = 1e-12) -> float:
    """Leverage of descriptor rows with respect to a training set: ``max_i a_i G^+ a_i^T``.

    ``G = A^T W A`` is the training normal-equation matrix. For a training row the value is its
    hat-matrix diagonal (between 0 and 1; the grades of all training rows sum to the rank of ``G``), so a
    grade above 1 means the row lies outside the span the training set covers: the model extrapolates.
    This is the D-optimality criterion: adding a row with grade ``g`` multiplies ``det G`` by ``1 + g``.

    Parameters
    ----------
    gram : FitReport or (n, n) array
        A report of :func:`fit_snap` (its ``gram``) or a normal-equation matrix.
    rows : (m, n) array
        Descriptor rows of the configuration, weighted as in the fit (see :meth:`FitReport.weighted_rows`).
    rcond : float
        Eigenvalues of ``G`` below ``rcond * max eigenvalue`` are treated as zero (pseudo-inverse).
    """
    g = gram.gram if isinstance(gram, FitReport) else np.asarray(gram, dtype=float)
    values, vectors = np.linalg.eigh(g)
    keep = values > rcond * values.max()
    projected = np.atleast_2d(rows) @ vectors[:, keep]
    return float(np.max(np.sum(projected ** 2 / values[keep], axis=1)))


# ------------------------------------------------------------------------------------------------ report

@dataclass
class FitReport:
    """Errors, settings and parity data of a fit.

    ``metrics[set]`` (``set`` = ``"train"``, ``"validation"``) holds ``energy_rmse``/``energy_mae``
    (meV/atom), ``forces_rmse``/``forces_mae`` (meV/Å, force components), ``forces_rmse_by_type`` /
    ``forces_mae_by_type`` (meV/Å), ``stress_rmse``/``stress_mae`` (MPa) and ``n_configurations``.
    ``timings`` holds wall seconds of the ``descriptors`` pass (with accumulation), the ``solve`` (alpha
    selection included) and the ``evaluation`` of the errors.
    """

    metrics: dict[str, dict]
    alpha: float
    energy_weight: float
    stress_weight: float
    alpha_selection: str
    reference: str
    equations: NormalEquations
    alpha_scan: list[tuple[float, float]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    parity: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict, repr=False)

    @property
    def gram(self) -> np.ndarray:
        """The training normal-equation matrix ``A^T W A`` at the fitted weights (no ridge term)."""
        return self.equations.gram(self.energy_weight, self.stress_weight)

    def weighted_rows(self, rows: np.ndarray, natoms: int, weight: float = 1.0) -> np.ndarray:
        """Descriptor rows of a configuration weighted as the fit weighs them (for :func:`extrapolation_grade`)."""
        scale = {"energy": self.energy_weight, "forces": 1.0, "stress": self.stress_weight}
        parts = _split(rows, np.zeros(len(rows)), natoms)
        return weight * np.vstack([scale[k] * parts[k][0] for k in KINDS])

    def as_dict(self) -> dict:
        """Settings and metrics as plain JSON-able data."""
        return {"alpha": self.alpha, "alpha_selection": self.alpha_selection, "energy_weight": self.energy_weight,
                "stress_weight": self.stress_weight, "reference_subtracted": self.reference,
                "objective_scales": {k: v * REPORT_UNITS[k][1] for k, v in OBJECTIVE_SCALES.items()},
                "units": {k: u for k, (u, _) in REPORT_UNITS.items()}, "metrics": self.metrics,
                "alpha_scan": [{"alpha": a, "objective": o} for a, o in self.alpha_scan],
                "timings_s": self.timings}

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`as_dict` to ``path``."""
        path = Path(path)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        return path

    def to_csv(self, path: str | Path) -> Path:
        """Write one line per (set, quantity, statistic, atom type) with its value and unit."""
        path = Path(path)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["set", "quantity", "statistic", "atom_type", "value", "unit"])
            for name, metrics in self.metrics.items():
                for kind in KINDS:
                    unit = REPORT_UNITS[kind][0]
                    for stat in ("rmse", "mae"):
                        writer.writerow([name, kind, stat, "all", metrics[f"{kind}_{stat}"], unit])
                    for stat in ("rmse", "mae"):
                        for label, value in metrics[f"forces_{stat}_by_type"].items() if kind == "forces" else ():
                            writer.writerow([name, kind, stat, label, value, unit])
        return path

    def plot(self, path: str | Path) -> Path:
        """Parity plots of energy (eV/atom), force components (eV/Å) and stress components (GPa) as PNG."""
        factors = {"energy": ("energy", "eV/atom", 1.0), "forces": ("force component", "eV/Å", 1.0),
                   "stress": ("stress component", "GPa", EV_PER_A3_IN_MPA / 1e3)}
        panels = []
        for kind in KINDS:
            quantity, unit, factor = factors[kind]
            series = {name: (ref * factor, pred * factor) for name, data in self.parity.items()
                      for ref, pred in [data[kind]]}
            panels.append((quantity, unit, series))
        title = f"SNAP fit (alpha {self.alpha:.2g}, Ew {self.energy_weight:.3g}, Sw {self.stress_weight:.3g})"
        return parity_figure(panels, path, title)


def _evaluate(images: Sequence[Atoms], model: SNAPModel, targets: Sequence[np.ndarray],
              offsets: Sequence[np.ndarray], descriptors: Iterable[np.ndarray]) -> tuple[dict, dict]:
    """Metrics and parity data of ``model`` plus reference (``offsets``) against the labels."""
    beta = model.coefficients.ravel()
    ref = {k: [] for k in KINDS}
    pred = {k: [] for k in KINDS}
    by_type: dict[str, list[np.ndarray]] = {t: [] for t in model.types}
    for atoms, target, offset, rows in zip(images, targets, offsets, descriptors):
        n = len(atoms)
        parts = _split(rows, target, n)
        shift = _split(rows, offset, n)
        for kind in KINDS:
            a, b = parts[kind]
            ref[kind].append(b + shift[kind][1])
            pred[kind].append(a @ beta + shift[kind][1])
        delta = (pred["forces"][-1] - ref["forces"][-1]).reshape(n, 3)
        for label in model.types:
            by_type[label].append(delta[np.asarray(atoms.arrays["atom_types"]) == label].ravel())
    ref = {k: np.concatenate(v) for k, v in ref.items()}
    pred = {k: np.concatenate(v) for k, v in pred.items()}
    metrics: dict = {"n_configurations": len(images)}
    for kind in KINDS:
        factor = REPORT_UNITS[kind][1]
        err = pred[kind] - ref[kind]
        metrics[f"{kind}_rmse"] = float(np.sqrt(np.mean(err ** 2)) * factor)
        metrics[f"{kind}_mae"] = float(np.mean(np.abs(err)) * factor)
    errs = {t: np.concatenate(v) for t, v in by_type.items() if sum(len(x) for x in v)}
    metrics["forces_rmse_by_type"] = {t: float(np.sqrt(np.mean(e ** 2)) * 1e3) for t, e in errs.items()}
    metrics["forces_mae_by_type"] = {t: float(np.mean(np.abs(e)) * 1e3) for t, e in errs.items()}
    return metrics, {k: (ref[k], pred[k]) for k in KINDS}


# --------------------------------------------------------------------------------------------------- fit

def model_for(images: Sequence[Atoms], model: SNAPModel | None = None, **hyperparameters) -> SNAPModel:
    """The model to fit: a copy of ``model``, or a new one over the sorted atom types found in ``images``.

    ``hyperparameters`` are :class:`SNAPModel` fields (``twojmax``, ``rcutfac``, ``rfac0``, ``radii``...).
    """
    if model is not None:
        return replace(model, radii=model.radii.copy(), weights=model.weights.copy(),
                       coefficients=None, extra=dict(model.extra), **hyperparameters)
    types = sorted({str(t) for atoms in images for t in atoms.arrays.get("atom_types", [])})
    if not types:
        raise FitError("the training configurations carry no atoms.arrays['atom_types']")
    return SNAPModel(types, **hyperparameters)


def _accumulate(images: Sequence[Atoms], model: SNAPModel, targets: Sequence[np.ndarray], folds: np.ndarray,
                n_folds: int, cache_dir, progress: bool, desc: str) -> list[NormalEquations]:
    equations = [NormalEquations(len(model.types) * model.n_coefficients) for _ in range(n_folds)]
    rows_iter = iter_descriptors(images, model, cache_dir, progress, desc)
    for i, (atoms, target, rows) in enumerate(zip(images, targets, rows_iter)):
        if len(target) != len(rows):
            raise FitError(f"{configuration_name(atoms, i)}: {len(target)} targets for {len(rows)} rows")
        equations[folds[i]].add(rows, target, len(atoms), _config_weight(atoms, i))
    return equations


def _select_alpha(train_folds: list[NormalEquations], valid: NormalEquations | None, alphas: Sequence[float],
                  energy_weight: float, stress_weight: float) -> tuple[float, list[tuple[float, float]], str]:
    if valid is not None:
        full = train_folds[0].merged(train_folds[1:])
        scores = [objective(valid.rmse(beta)) for beta in full.solve_path(alphas, energy_weight, stress_weight)]
        how = "validation set"
    else:
        per_fold = []
        for k, held_out in enumerate(train_folds):
            others = [f for j, f in enumerate(train_folds) if j != k]
            rest = others[0].merged(others[1:])
            per_fold.append([objective(held_out.rmse(beta))
                             for beta in rest.solve_path(alphas, energy_weight, stress_weight)])
        scores = np.mean(per_fold, axis=0).tolist()
        how = f"{len(train_folds)}-fold cross-validation"
    best = int(np.nanargmin(scores))
    return float(alphas[best]), [(float(a), float(s)) for a, s in zip(alphas, scores)], how


def fit_snap(train: Sequence[Atoms], validation: Sequence[Atoms] | None = None, *,
             model: SNAPModel | None = None, energy_weight: float = ENERGY_WEIGHT, stress_weight: float = STRESS_WEIGHT,
             alpha: float | None = None, alphas: Sequence[float] = DEFAULT_ALPHAS, cv: int = 5,
             reference: Calculator | None = None, cache_dir: str | Path | None = None, seed: int = 0,
             progress: bool = True, **hyperparameters) -> tuple[SNAPModel, FitReport]:
    """Fit the linear SNAP coefficients by weighted ridge regression (loss in the module docstring).

    Parameters
    ----------
    train : sequence of Atoms
        Labelled configurations with ``atoms.arrays['atom_types']``; optional ``atoms.info['weight']``.
    validation : sequence of Atoms, optional
        Held-out configurations: ``alpha`` is chosen on them (if not given) and errors are reported.
    model : SNAPModel, optional
        Types and descriptor hyperparameters to use (its coefficients are ignored). Without it a model is
        built over the atom types of ``train`` from ``hyperparameters``.
    energy_weight, stress_weight : float
        ``Ew`` and ``Sw``: row weights of per-atom energies (eV/atom) and stresses (eV/Å³) relative to forces.
    alpha : float, optional
        Ridge parameter; if omitted it is the member of ``alphas`` with the lowest held-out objective
        (:func:`objective`), on ``validation`` or else by ``cv``-fold cross-validation over ``train``.
    alphas : sequence of float
        Candidate ridge parameters.
    cv : int
        Folds of the cross-validation (configurations are assigned to folds at random with ``seed``).
    reference : ASE calculator, optional
        Potential subtracted from the labels before fitting (e.g. a ``SNAPCalculator`` with only D3/ZBL);
        the written model is then meant to be used together with it. Reported errors are of the sum.
    cache_dir : path, optional
        Descriptor cache (see :class:`mofsnap.descriptors.SnapDescriptors`); a temporary one if omitted.
    seed : int
        Seed of the fold assignment.
    progress : bool
        Show progress bars.
    **hyperparameters
        :class:`SNAPModel` fields (``twojmax``, ``rcutfac``, ``rfac0``, ``radii``, ``weights``...).

    Returns
    -------
    model : SNAPModel
        With ``coefficients`` set; ``model.write(prefix)`` gives files for ``SNAPCalculator``.
    report : FitReport
    """
    train, validation = list(train), list(validation or [])
    if not train:
        raise FitError("no training configurations")
    model = model_for(train, model, **hyperparameters)
    t_train, o_train = _targets(train, reference, progress, "reference on train")
    t_valid, o_valid = _targets(validation, reference, progress, "reference on validation")
    n_folds = 1 if (alpha is not None or validation) else max(2, min(cv, len(train)))
    folds = np.random.default_rng(seed).permutation(len(train)) % n_folds
    clock = [time.perf_counter()]
    with tempfile.TemporaryDirectory(prefix="mofsnap-descriptors-") as tmp:
        cache = cache_dir if cache_dir is not None else tmp
        parts = _accumulate(train, model, t_train, folds, n_folds, cache, progress, "train descriptors")
        valid_eq = None
        if validation:
            valid_eq = _accumulate(validation, model, t_valid, np.zeros(len(validation), dtype=int), 1, cache,
                                   progress, "validation descriptors")[0]
        clock.append(time.perf_counter())
        scan: list[tuple[float, float]] = []
        how = "given"
        if alpha is None:
            alpha, scan, how = _select_alpha(parts, valid_eq, alphas, energy_weight, stress_weight)
        full = parts[0].merged(parts[1:])
        beta = full.solve(alpha, energy_weight, stress_weight)
        model.coefficients = beta.reshape(len(model.types), model.n_coefficients)
        clock.append(time.perf_counter())
        metrics, parity = {}, {}
        for name, images, targets, offsets in (("train", train, t_train, o_train),
                                               ("validation", validation, t_valid, o_valid)):
            if images:
                rows = iter_descriptors(images, model, cache, progress=False)
                metrics[name], parity[name] = _evaluate(images, model, targets, offsets, rows)
    clock.append(time.perf_counter())
    timings = dict(zip(("descriptors", "solve", "evaluation"), np.diff(clock).tolist()))
    reference_name = "none" if reference is None else f"{type(reference).__name__}: {reference!r}"
    report = FitReport(metrics, float(alpha), float(energy_weight), float(stress_weight), how, reference_name,
                       full, scan, timings, parity)
    for name, m in metrics.items():
        log.info("%s: energy %.3f meV/atom, forces %.1f meV/Å, stress %.1f MPa", name, m["energy_rmse"],
                 m["forces_rmse"], m["stress_rmse"])
    return model, report


# --------------------------------------------------------------------------------- hyperparameter search

#: Bounds of the fit weights searched by :func:`optimize_hyperparameters` (log10 of alpha, Ew, Sw).
WEIGHT_BOUNDS = {"alpha": (-10.0, 1.0), "energy_weight": (-1.0, 5.0), "stress_weight": (-1.0, 5.0)}


@dataclass
class HyperparameterSearch:
    """Outcome of :func:`optimize_hyperparameters`.

    ``best`` holds the best ``radii`` and ``weights`` (per type), ``rfac0``, ``alpha``, ``energy_weight``,
    ``stress_weight`` and the validation ``rmse`` (ASE units); ``history`` every evaluation in order.
    """

    best: dict
    objective: float
    history: list[dict]

    def to_json(self, path: str | Path) -> Path:
        """Write the best parameters, objective and history."""
        path = Path(path)
        path.write_text(json.dumps({"best": self.best, "objective": self.objective, "history": self.history},
                                   indent=2) + "\n")
        return path


def _best_weights(train: NormalEquations, valid: NormalEquations, start: tuple[float, float, float]) -> dict:
    """Minimise the validation objective over log10(alpha, Ew, Sw) within :data:`WEIGHT_BOUNDS`."""
    bounds = list(WEIGHT_BOUNDS.values())

    def score(x: np.ndarray) -> float:
        alpha, ew, sw = 10.0 ** np.clip(x, [b[0] for b in bounds], [b[1] for b in bounds])
        return objective(valid.rmse(train.solve(alpha, ew, sw)))

    x0 = np.clip(np.log10(np.maximum(start, 1e-12)), [b[0] for b in bounds], [b[1] for b in bounds])
    result = minimize(score, x0, method="Nelder-Mead", bounds=bounds,
                      options={"maxfev": 150, "xatol": 0.02, "fatol": 1e-4, "initial_simplex":
                               np.vstack([x0, x0 + np.diag(np.where(x0 + 1 <= [b[1] for b in bounds], 1.0, -1.0))])})
    alpha, ew, sw = (float(v) for v in 10.0 ** result.x)
    return {"alpha": alpha, "energy_weight": ew, "stress_weight": sw, "objective": float(result.fun),
            "rmse": valid.rmse(train.solve(alpha, ew, sw))}


def optimize_hyperparameters(train: Sequence[Atoms], validation: Sequence[Atoms], model: SNAPModel | None = None,
                             *, tune: Sequence[str] = ("radii", "weights", "rfac0"),
                             bounds: dict[str, tuple[float, float]] | None = None, n_evaluations: int = 30,
                             seed: int = 0, log_file: str | Path | None = None,
                             reference: Calculator | None = None, cache_dir: str | Path | None = None,
                             energy_weight: float = ENERGY_WEIGHT, stress_weight: float = STRESS_WEIGHT, alpha: float = 1e-6,
                             progress: bool = True, **hyperparameters
                             ) -> tuple[SNAPModel, FitReport, HyperparameterSearch]:
    """Search SNAP hyperparameters minimising the validation :func:`objective`.

    Two levels: the descriptor hyperparameters named in ``tune`` (per-type ``radii`` and ``weights``,
    ``rfac0``) are searched by bounded Nelder-Mead from a simplex drawn with ``seed`` around the starting
    model; for each of their values one descriptor pass over ``train`` and ``validation`` is made and then
    ``alpha``, ``Ew`` and ``Sw`` are optimised on the accumulated statistics, which needs no descriptor
    (log-scale bounds :data:`WEIGHT_BOUNDS`). The search is deterministic for a given seed.

    Parameters
    ----------
    train, validation : sequences of Atoms
        Labelled configurations (see :func:`fit_snap`).
    model : SNAPModel, optional
        Starting types and hyperparameters; otherwise built from ``train`` and ``hyperparameters``.
    tune : sequence of {"radii", "weights", "rfac0"}
        Descriptor hyperparameters to search (``()`` searches only alpha, Ew and Sw).
    bounds : dict, optional
        ``{"radii": (lo, hi), "weights": (lo, hi), "rfac0": (lo, hi)}``; radii and weights bounds are
        relative factors applied to the starting values. Defaults: radii ×(0.8, 1.2), weights ×(0.5, 1.5),
        rfac0 (0.7, 0.99).
    n_evaluations : int
        Budget of descriptor-hyperparameter evaluations (descriptor passes).
    seed : int
        Seed of the initial simplex.
    log_file : path, optional
        JSON-lines record of every evaluation. An interrupted search re-run with the same log, seed and
        settings replays the recorded evaluations without recomputing them and continues where it stopped.
    reference, cache_dir, progress
        As in :func:`fit_snap`; the cache is used only for the final fit.
    energy_weight, stress_weight, alpha : float
        Starting values of the weight search.

    Returns
    -------
    model, report
        The final fit with the best parameters (:func:`fit_snap` on ``train`` and ``validation``).
    search : HyperparameterSearch
    """
    train, validation = list(train), list(validation)
    if not validation:
        raise FitError("hyperparameter optimisation needs a validation set")
    unknown = set(tune) - {"radii", "weights", "rfac0"}
    if unknown:
        raise FitError(f"cannot tune {sorted(unknown)}; choose from radii, weights, rfac0")
    start = model_for(train, model, **hyperparameters)
    limits = {"radii": (0.8, 1.2), "weights": (0.5, 1.5), "rfac0": (0.7, 0.99), **(bounds or {})}
    ntypes = len(start.types)
    lo, hi, names = [], [], []
    for key in tune:
        if key == "rfac0":
            lo.append(limits[key][0])
            hi.append(limits[key][1])
            names.append(("rfac0", 0))
        else:
            base = getattr(start, key)
            lo.extend(base * limits[key][0])
            hi.extend(base * limits[key][1])
            names.extend((key, i) for i in range(ntypes))
    lo, hi = np.array(lo), np.array(hi)

    def decode(u: np.ndarray) -> dict:
        values = {"radii": start.radii.copy(), "weights": start.weights.copy(), "rfac0": float(start.rfac0)}
        for (key, i), v in zip(names, lo + np.clip(u, 0, 1) * (hi - lo)):
            if key == "rfac0":
                values[key] = float(v)
            else:
                values[key][i] = float(v)
        return {"radii": [float(r) for r in values["radii"]], "weights": [float(w) for w in values["weights"]],
                "rfac0": values["rfac0"]}

    t_train = _targets(train, reference, progress, "reference on train")[0]
    t_valid = _targets(validation, reference, progress, "reference on validation")[0]
    done: dict[str, dict] = {}
    if log_file is not None and Path(log_file).exists():
        for line in Path(log_file).read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                done[json.dumps(entry["params"], sort_keys=True)] = entry
    history: list[dict] = []
    weights0 = (alpha, energy_weight, stress_weight)
    bar = tqdm(total=n_evaluations, desc="hyperparameters", disable=not progress, unit="eval")

    def evaluate(u: np.ndarray) -> float:
        params = decode(u)
        key = json.dumps(params, sort_keys=True)
        entry = done.get(key)
        if entry is None:
            trial = replace(start, radii=np.array(params["radii"]), weights=np.array(params["weights"]),
                            rfac0=params["rfac0"], coefficients=None)
            tr = _accumulate(train, trial, t_train, np.zeros(len(train), dtype=int), 1, None, False, "train")[0]
            va = _accumulate(validation, trial, t_valid, np.zeros(len(validation), dtype=int), 1, None, False,
                             "validation")[0]
            entry = {"params": params, **_best_weights(tr, va, weights0)}
            done[key] = entry
            if log_file is not None:
                with Path(log_file).open("a") as handle:
                    handle.write(json.dumps(entry) + "\n")
        history.append(entry)
        bar.update(1)
        bar.set_postfix(best=f"{min(h['objective'] for h in history):.4g}")
        return entry["objective"]

    u0 = (np.array([getattr(start, k)[i] if k != "rfac0" else start.rfac0 for k, i in names]) - lo) / (hi - lo)
    if names:
        rng = np.random.default_rng(seed)
        simplex = np.clip(u0 + rng.uniform(-0.25, 0.25, size=(len(names) + 1, len(names))), 0, 1)
        simplex[0] = np.clip(u0, 0, 1)
        minimize(evaluate, simplex[0], method="Nelder-Mead", bounds=[(0, 1)] * len(names),
                 options={"maxfev": n_evaluations, "initial_simplex": simplex, "xatol": 1e-3, "fatol": 1e-6})
    else:
        evaluate(np.zeros(0))
    bar.close()
    best = min(history, key=lambda h: h["objective"])
    final = replace(start, radii=np.array(best["params"]["radii"]), weights=np.array(best["params"]["weights"]),
                    rfac0=best["params"]["rfac0"], coefficients=None)
    fitted, report = fit_snap(train, validation, model=final, alpha=best["alpha"],
                              energy_weight=best["energy_weight"], stress_weight=best["stress_weight"],
                              reference=reference, cache_dir=cache_dir, progress=progress)
    summary = {**best["params"], "types": start.types, "alpha": best["alpha"],
               "energy_weight": best["energy_weight"], "stress_weight": best["stress_weight"], "rmse": best["rmse"]}
    return fitted, report, HyperparameterSearch(summary, best["objective"], history)


# --------------------------------------------------------------------------------------- learning curve

@dataclass
class LearningCurve:
    """Errors of fits on growing training sets; ``metrics[i]`` is the :class:`FitReport` metrics of fit i."""

    sizes: list[int]
    labels: list[str]
    metrics: list[dict]

    def plot(self, path: str | Path) -> Path:
        """RMSE of energy, forces and stress versus training-set size (train and validation) as PNG."""
        curves = {kind: {name: [m[name][f"{kind}_rmse"] for m in self.metrics]
                         for name in ("train", "validation") if name in self.metrics[0]} for kind in KINDS}
        units = {kind: REPORT_UNITS[kind][0] for kind in KINDS}
        plain = self.labels == [str(n) for n in self.sizes]  # random subsets: the labels are the sizes
        return learning_curve_figure(self.sizes, curves, units, path, labels=None if plain else self.labels)

    def to_json(self, path: str | Path) -> Path:
        """Write sizes, labels and metrics."""
        path = Path(path)
        path.write_text(json.dumps({"sizes": self.sizes, "labels": self.labels, "metrics": self.metrics},
                                   indent=2) + "\n")
        return path


def learning_curve(train: Sequence[Atoms] | dict[str, Sequence[Atoms]], validation: Sequence[Atoms],
                   sizes: Sequence[int] | None = None, *, seed: int = 0, cache_dir: str | Path | None = None,
                   progress: bool = True, **fit_kwargs) -> LearningCurve:
    """Fit on growing training sets and collect the errors.

    Parameters
    ----------
    train : sequence of Atoms, or dict label -> sequence of Atoms
        With ``sizes``: one pool from which nested random subsets (seeded) of each size are drawn.
        Without: ready-made training sets, e.g. ``{"0.10 Å": ..., "0.05 Å": ...}`` from different CBAD
        resolutions, plotted against their sizes and annotated with their labels.
    validation : sequence of Atoms
        Held-out set on which every fit is scored (and alpha chosen, unless given in ``fit_kwargs``).
    sizes : sequence of int, optional
        Training-set sizes to draw from the pool.
    seed : int
        Seed of the subset order.
    cache_dir : path, optional
        Descriptor cache shared by all fits (a temporary one if omitted), so each configuration's
        descriptors are computed once.
    **fit_kwargs
        Passed to :func:`fit_snap` (``model``, weights, ``alpha``...).
    """
    if sizes is not None:
        pool = list(train)
        if max(sizes) > len(pool):
            raise FitError(f"size {max(sizes)} exceeds the {len(pool)} configurations available")
        order = np.random.default_rng(seed).permutation(len(pool))
        sets = {f"{n}": [pool[i] for i in order[:n]] for n in sorted(sizes)}
    elif isinstance(train, dict):
        sets = {str(k): list(v) for k, v in train.items()}
    else:
        raise FitError("give sizes with one pool of configurations, or a dict of training sets")
    metrics = []
    with tempfile.TemporaryDirectory(prefix="mofsnap-descriptors-") as tmp:
        for label, images in tqdm(sets.items(), desc="learning curve", disable=not progress):
            _, report = fit_snap(images, validation, cache_dir=cache_dir or tmp, progress=False, **fit_kwargs)
            metrics.append(report.metrics)
    return LearningCurve([len(v) for v in sets.values()], list(sets), metrics)


# ------------------------------------------------------------------------------------------ command line

def _per_type(pairs: Sequence[str], option: str) -> dict[str, float]:
    out = {}
    for pair in pairs:
        label, _, value = pair.partition("=")
        try:
            out[label] = float(value)
        except ValueError:
            raise FitError(f"{option} expects TYPE=VALUE, got {pair!r}") from None
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: fit a SNAP model to labelled extxyz files and write model, report and plots."""
    from ase.io import read

    parser = argparse.ArgumentParser(prog="python -m mofsnap.fit", description=(
        "Fit a SNAP potential to labelled configurations (energy, forces, stress and "
        "atoms.arrays['atom_types'] in extxyz files). Writes <name>.snapcoeff/.snapparam, report.json, "
        "report.csv and parity.png to the output directory."))
    parser.add_argument("train", nargs="+", help="training extxyz file(s); every frame is used")
    parser.add_argument("--valid", nargs="*", default=[], help="validation extxyz file(s): alpha is chosen on "
                        "them and their errors reported (without them: k-fold cross-validation)")
    parser.add_argument("-o", "--output", default="snap-fit", help="output directory (default: %(default)s)")
    parser.add_argument("--name", default="snap", help="model file prefix inside the output directory")
    parser.add_argument("--twojmax", type=int, default=8, help="2J_max of the bispectrum (default: %(default)s)")
    parser.add_argument("--rcutfac", type=float, default=4.0, help="cutoff scale in Å (default: %(default)s)")
    parser.add_argument("--rfac0", type=float, default=0.99363, help="SNAP rfac0 (default: %(default)s)")
    parser.add_argument("--radius", action="append", default=[], metavar="TYPE=R",
                        help="per-type radius (repeatable; default: published ZIF-8 values or by element)")
    parser.add_argument("--weight", action="append", default=[], metavar="TYPE=W",
                        help="per-type neighbour weight (repeatable; default as for --radius)")
    parser.add_argument("--energy-weight", type=float, default=1250.0,
                        help="row weight Ew of per-atom energies (eV/atom) relative to forces (default: %(default)s)")
    parser.add_argument("--stress-weight", type=float, default=3834.0,
                        help="row weight Sw of stresses (eV/Å^3) relative to forces (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=None,
                        help="ridge parameter (default: chosen on the validation set or by cross-validation)")
    parser.add_argument("--cv", type=int, default=5, help="folds of the cross-validation without --valid")
    parser.add_argument("--cache", default=None, help="descriptor cache directory (default: temporary)")
    parser.add_argument("--optimize", type=int, default=0, metavar="N",
                        help="search radii, weights, rfac0, alpha, Ew, Sw with N descriptor evaluations "
                             "(needs --valid; resumable through <output>/hyperparameters.jsonl)")
    parser.add_argument("--learning-curve", default=None, metavar="N1,N2,...",
                        help="also fit on random subsets of these sizes and plot learning_curve.png")
    parser.add_argument("--seed", type=int, default=0, help="seed of folds, subsets and search (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")

    train = [atoms for path in args.train for atoms in read(path, ":")]
    valid = [atoms for path in args.valid for atoms in read(path, ":")]
    start = model_for(train, twojmax=args.twojmax, rcutfac=args.rcutfac, rfac0=args.rfac0)
    for values, key, option in ((args.radius, "radii", "--radius"), (args.weight, "weights", "--weight")):
        for label, value in _per_type(values, option).items():
            if label not in start.types:
                raise FitError(f"{option}: type {label} does not occur in the training data {start.types}")
            getattr(start, key)[start.types.index(label)] = value
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    common = dict(cache_dir=args.cache, progress=not args.quiet)
    if args.optimize:
        model, report, search = optimize_hyperparameters(
            train, valid, start, n_evaluations=args.optimize, seed=args.seed,
            log_file=out / "hyperparameters.jsonl", energy_weight=args.energy_weight,
            stress_weight=args.stress_weight, **common)
        search.to_json(out / "hyperparameters.json")
        best = search.best
        print(f"best hyperparameters (objective {search.objective:.4g}): rfac0 {best['rfac0']:.4f}, "
              f"alpha {best['alpha']:.3g}, Ew {best['energy_weight']:.4g}, Sw {best['stress_weight']:.4g}")
        for label, r, w in zip(best["types"], best["radii"], best["weights"]):
            print(f"  {label:>6}: radius {r:.4f}, weight {w:.4f}")
    else:
        model, report = fit_snap(train, valid, model=start, energy_weight=args.energy_weight,
                                 stress_weight=args.stress_weight, alpha=args.alpha, cv=args.cv, seed=args.seed,
                                 **common)
    model.write(out / args.name)
    report.to_json(out / "report.json")
    report.to_csv(out / "report.csv")
    report.plot(out / "parity.png")
    if args.learning_curve:
        if not valid:
            raise FitError("--learning-curve needs --valid")
        sizes = [int(s) for s in args.learning_curve.split(",")]
        curve = learning_curve(train, valid, sizes, seed=args.seed, model=model, alpha=report.alpha,
                               energy_weight=report.energy_weight, stress_weight=report.stress_weight, **common)
        curve.plot(out / "learning_curve.png")
        curve.to_json(out / "learning_curve.json")
    for name, m in report.metrics.items():
        print(f"{name:>10}: energy {m['energy_rmse']:.3f} meV/atom, forces {m['forces_rmse']:.1f} meV/Å, "
              f"stress {m['stress_rmse']:.1f} MPa (RMSE)")
    print(f"model written to {out / args.name}.snapcoeff/.snapparam")


if __name__ == "__main__":
    main()
