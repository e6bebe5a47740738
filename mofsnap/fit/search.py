"""Hyperparameter search: descriptor hyperparameters by Nelder-Mead, fit weights on the accumulated statistics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from scipy.optimize import minimize
from tqdm.auto import tqdm

from ..exceptions import FitError
from ..model import SNAPModel
from ..results import read_result, write_result
from ..units import ENERGY_WEIGHT, STRESS_WEIGHT
from .leastsquares import NormalEquations, objective
from .report import FitReport
from .training import accumulate_equations, fit_snap, fit_targets, model_for

#: Kind and format version of the JSON file of a :class:`HyperparameterSearch`.
SEARCH_KIND, SEARCH_VERSION = "hyperparameter-search", 1

#: Bounds of the fit weights searched by :func:`optimize_hyperparameters` (log10 of alpha, Ew, Sw).
WEIGHT_BOUNDS = {"alpha": (-10.0, 1.0), "energy_weight": (-1.0, 5.0), "stress_weight": (-1.0, 5.0)}


@dataclass
class HyperparameterSearch:
    """Outcome of :func:`search_hyperparameters`.

    ``best`` holds the best ``radii`` and ``weights`` (per type), ``rfac0``, ``alpha``, ``energy_weight``,
    ``stress_weight`` and the validation ``rmse`` (ASE units); ``history`` every evaluation in order.
    """

    best: dict
    objective: float
    history: list[dict]

    def write(self, path: str | Path) -> Path:
        """Write the best parameters, objective and history as a versioned JSON file."""
        return write_result(path, SEARCH_KIND, SEARCH_VERSION,
                            {"best": self.best, "objective": self.objective, "history": self.history})

    @classmethod
    def read(cls, path: str | Path) -> HyperparameterSearch:
        """The search written by :meth:`write`, equal to the one written."""
        data = read_result(path, SEARCH_KIND, SEARCH_VERSION)
        return cls(data["best"], data["objective"], data["history"])


def best_weights(train: NormalEquations, valid: NormalEquations, start: tuple[float, float, float]) -> dict:
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
                             energy_weight: float = ENERGY_WEIGHT, stress_weight: float = STRESS_WEIGHT,
                             alpha: float = 1e-6,
                             progress: bool = True, **hyperparameters
                             ) -> tuple[SNAPModel, FitReport, HyperparameterSearch]:
    """Search SNAP hyperparameters (:func:`search_hyperparameters`) and fit with the best of them.

    Parameters are those of :func:`search_hyperparameters`; ``cache_dir`` (as in :func:`fit_snap`) is used
    only for the final fit.

    Returns
    -------
    model, report
        The final fit with the best parameters (:func:`fit_snap` on ``train`` and ``validation``).
    search : HyperparameterSearch
    """
    search = search_hyperparameters(train, validation, model, tune=tune, bounds=bounds, n_evaluations=n_evaluations,
                                    seed=seed, log_file=log_file, reference=reference, energy_weight=energy_weight,
                                    stress_weight=stress_weight, alpha=alpha, progress=progress, **hyperparameters)
    best = search.best
    final = replace(model_for(train, model, **hyperparameters), radii=np.array(best["radii"]),
                    weights=np.array(best["weights"]), rfac0=best["rfac0"], coefficients=None)
    fitted, report = fit_snap(train, validation, model=final, alpha=best["alpha"],
                              energy_weight=best["energy_weight"], stress_weight=best["stress_weight"],
                              reference=reference, cache_dir=cache_dir, progress=progress)
    return fitted, report, search


def search_hyperparameters(train: Sequence[Atoms], validation: Sequence[Atoms], model: SNAPModel | None = None,
                           *, tune: Sequence[str] = ("radii", "weights", "rfac0"),
                           bounds: dict[str, tuple[float, float]] | None = None, n_evaluations: int = 30,
                           seed: int = 0, log_file: str | Path | None = None,
                           reference: Calculator | None = None,
                           energy_weight: float = ENERGY_WEIGHT, stress_weight: float = STRESS_WEIGHT,
                           alpha: float = 1e-6, progress: bool = True, **hyperparameters) -> HyperparameterSearch:
    """Search SNAP hyperparameters minimising the validation :func:`objective`.

    Two levels: the descriptor hyperparameters named in ``tune`` (per-type ``radii`` and ``weights``,
    ``rfac0``) are searched by bounded Nelder-Mead from a simplex drawn with ``seed`` around the starting
    model, whose values are the first evaluation; for each of their values one descriptor pass over ``train``
    and ``validation`` is made and then ``alpha``, ``Ew`` and ``Sw`` are optimised on the accumulated
    statistics, which needs no descriptor (log-scale bounds :data:`WEIGHT_BOUNDS`). The search is
    deterministic for a given seed.

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
    reference, progress
        As in :func:`fit_snap`.
    energy_weight, stress_weight, alpha : float
        Starting values of the weight search.

    Returns
    -------
    HyperparameterSearch
        ``best`` also holds the ``types``.
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

    t_train = fit_targets(train, reference, progress, "reference on train")[0]
    t_valid = fit_targets(validation, reference, progress, "reference on validation")[0]
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
            tr = accumulate_equations(train, trial, t_train, np.zeros(len(train), dtype=int), 1, None, False,
                                      "train")[0]
            va = accumulate_equations(validation, trial, t_valid, np.zeros(len(validation), dtype=int), 1, None, False,
                             "validation")[0]
            entry = {"params": params, **best_weights(tr, va, weights0)}
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
    summary = {**best["params"], "types": start.types, "alpha": best["alpha"],
               "energy_weight": best["energy_weight"], "stress_weight": best["stress_weight"], "rmse": best["rmse"]}
    return HyperparameterSearch(summary, best["objective"], history)
