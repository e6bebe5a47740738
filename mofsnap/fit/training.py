"""Fitting a SNAP model: labels as targets, descriptor passes into normal equations, alpha selection, errors.

:func:`fit_snap` is the one entry point; the loss and the selection objective are documented in
:mod:`mofsnap.fit.leastsquares`.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from tqdm.auto import tqdm

from ..descriptors import configuration_name, iter_descriptors
from ..exceptions import FitError
from ..model import SNAPModel
from ..units import ENERGY_WEIGHT, STRESS_WEIGHT
from .leastsquares import KINDS, REPORT_UNITS, NormalEquations, objective, split_rows
from .report import FitReport

log = logging.getLogger(__name__)

#: Candidate ridge parameters of :func:`fit_snap` when ``alpha`` is not given.
DEFAULT_ALPHAS = tuple(np.logspace(-10, 2, 25))


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


def fit_targets(images: Sequence[Atoms], reference: Calculator | None, progress: bool,
             desc: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Fit targets (labels minus reference) and reference parts of each configuration, in order."""
    pairs = [reference_targets(a, i, reference)
             for i, a in enumerate(tqdm(images, desc=desc, disable=not progress or reference is None))]
    return [lab - ref for lab, ref in pairs], [ref for _, ref in pairs]


def _config_weight(atoms: Atoms, index: int) -> float:
    weight = float(atoms.info.get("weight", 1.0))
    if not np.isfinite(weight) or weight < 0:
        raise FitError(f"{configuration_name(atoms, index)} has an invalid weight {weight}")
    return weight


def _evaluate(images: Sequence[Atoms], model: SNAPModel, targets: Sequence[np.ndarray],
              offsets: Sequence[np.ndarray], descriptors: Iterable[np.ndarray]) -> tuple[dict, dict]:
    """Metrics and parity data of ``model`` plus reference (``offsets``) against the labels."""
    beta = model.coefficients.ravel()
    ref = {k: [] for k in KINDS}
    pred = {k: [] for k in KINDS}
    by_type: dict[str, list[np.ndarray]] = {t: [] for t in model.types}
    for atoms, target, offset, rows in zip(images, targets, offsets, descriptors):
        n = len(atoms)
        parts = split_rows(rows, target, n)
        shift = split_rows(rows, offset, n)
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


def accumulate_equations(images: Sequence[Atoms], model: SNAPModel, targets: Sequence[np.ndarray],
                         folds: np.ndarray, n_folds: int, cache_dir: str | Path | None, progress: bool,
                         desc: str, executor: Executor | None = None) -> list[NormalEquations]:
    """One descriptor pass over ``images``: the normal equations of each fold (``folds[i]`` of image i).

    Parameters
    ----------
    images : sequence of Atoms
    model : SNAPModel
        Types and descriptor hyperparameters.
    targets : sequence of arrays
        Fit targets of each image (:func:`fit_targets`).
    folds : int array
        Fold of each image, in ``range(n_folds)``.
    n_folds : int
    cache_dir : path, optional
        Descriptor cache (see :class:`mofsnap.descriptors.SnapDescriptors`).
    progress : bool
        Show a progress bar labelled ``desc``.
    desc : str
    executor : concurrent.futures.Executor, optional
        Where the uncached descriptor rows are computed (default: a local process pool when worthwhile; see
        :func:`mofsnap.descriptors.fill_cache`).
    """
    equations = [NormalEquations(len(model.types) * model.n_coefficients) for _ in range(n_folds)]
    rows_iter = iter_descriptors(images, model, cache_dir, progress, desc, executor)
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
             model: SNAPModel | None = None, energy_weight: float = ENERGY_WEIGHT,
             stress_weight: float = STRESS_WEIGHT, alpha: float | None = None,
             alphas: Sequence[float] = DEFAULT_ALPHAS, cv: int = 5,
             reference: Calculator | None = None, cache_dir: str | Path | None = None, seed: int = 0,
             progress: bool = True, executor: Executor | None = None,
             **hyperparameters) -> tuple[SNAPModel, FitReport]:
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
    executor : concurrent.futures.Executor, optional
        Where the descriptor rows of uncached configurations are computed
        (:func:`mofsnap.executors.open_executor`, a Dask ``client.get_executor()``); without one they are
        computed in this process (``mofsnap fit`` opens a pool of ``--workers``).
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
    t_train, o_train = fit_targets(train, reference, progress, "reference on train")
    t_valid, o_valid = fit_targets(validation, reference, progress, "reference on validation")
    n_folds = 1 if (alpha is not None or validation) else max(2, min(cv, len(train)))
    folds = np.random.default_rng(seed).permutation(len(train)) % n_folds
    clock = [time.perf_counter()]
    with tempfile.TemporaryDirectory(prefix="mofsnap-descriptors-") as tmp:
        cache = cache_dir if cache_dir is not None else tmp
        parts = accumulate_equations(train, model, t_train, folds, n_folds, cache, progress, "train descriptors",
                                     executor)
        valid_eq = None
        if validation:
            valid_eq = accumulate_equations(validation, model, t_valid, np.zeros(len(validation), dtype=int), 1, cache,
                                   progress, "validation descriptors", executor)[0]
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
