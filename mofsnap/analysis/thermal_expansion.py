"""Lattice parameters against temperature and pressure from NPT runs; thermal expansion and bulk modulus.

Each state point (T, P) is sampled by several independent NPT runs. From every run the equilibration is
discarded and the rest is cut into windows of fixed length; the window means are treated as independent
samples, so a state point's value is their mean and its error the standard error of that mean.

Each state point checks that its runs were equilibrated: the window means of the lattice parameter are
fitted against time with a common slope (each run its own offset); a slope larger than
:data:`DRIFT_SIGMA` of its standard errors means the lattice still drifts through the production, so
the state point is flagged (``StatePoint.drifting``, a logged warning, the JSON) and its mean is not an
equilibrium value: discard more equilibration or run longer.

- linear thermal-expansion coefficient ``α(T) = (1/a) da/dT`` at a chosen T from a weighted polynomial fit
  of a(T) (error propagated from the fit covariance, i.e. from the window errors);
- bulk modulus ``K = -V dP/dV`` at a chosen pressure from a weighted polynomial fit of V(P).

Model spread (``run_posterior_scans``, ``--samples N``): a SNAP model's energy surface changes with its coefficients,
and so does the dynamics, so the trajectories of one model cannot be reweighted to another. Each of ``N`` models
drawn from the ridge posterior (:func:`mofsnap.fit.posterior.posterior_calculators`) repeats the whole scan
(its own relaxed start, the same state points, runs and MD seeds) and is analysed like the model's own;
:class:`ModelSpread` holds every sample's a(T) and α, and their standard deviation over the samples is the model
spread reported as ``a(T) = x ± y (MD) ± z (model)``. A cheaper first-order estimate (the spread of the
0 K lattice parameter of relaxations, α unchanged) was not taken: it misses the spread of α, the
quantity the scan is for. The spread of the samples also holds their own MD noise (each sample's
``a_err`` is stored with it): the samples reuse the model's MD seeds so that the noise is shared as far as the
chaos of the dynamics allows, and the spread is an upper bound of the model's part where it is not much
larger than the MD errors. Cost: ``N`` times the scan (``--runs 1`` for the samples is the usual saving).

Command (also ``python -m mofsnap.analysis.thermal_expansion``)::

    mofsnap thermal-expansion --run mof5.extxyz --model mof5 --d3 \\
        --temperatures 100,200,300,400 --runs 5 -o te/          # run the MD (resumable), then analyse
    mofsnap thermal-expansion te/*.extxyz -o te/                 # analyse existing NPT trajectories
    mofsnap thermal-expansion --run mof5.extxyz --model mof5 --temperatures 100,300 --samples 4 -o te/
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from .. import plotting
from ..exceptions import ThermalExpansionError
from ..fit.posterior import posterior_calculators
from ..md import read_trajectory
from ..results import read_result, write_result
from ..units import ATMOSPHERE_MPA
from .runs import RELAX_FMAX, MDRun, relax_start, run_all

log = logging.getLogger(__name__)

#: Kind and format version of the files of :meth:`ThermalExpansionResult.write`.
RESULT_KIND, RESULT_VERSION = "thermal-expansion", 3
#: Reference protocol: time discarded at the start of every NPT run, and the averaging window (ps).
EQUILIBRATION_PS, WINDOW_PS = 100.0, 10.0
#: A state point drifts when the slope of its lattice parameter over the production windows exceeds this
#: many standard errors of the slope.
DRIFT_SIGMA = 3.0


@dataclass
class StatePoint:
    """Averages of one (T, P) state point over windows of all its runs.

    Lengths are the cell lengths times the length factor (e.g. 0.5 for a 2x2x2 supercell); ``a`` is the
    mean of the three; errors are standard errors over the windows. ``drift_per_ps`` and
    ``drift_err_per_ps`` are the slope of ``a`` over the production windows (Å/ps, common to the runs) and
    its standard error (None when there are too few windows to estimate them); ``drifting`` is True when
    the slope exceeds the drift threshold (see :func:`lattice_drift`).
    """

    temperature_K: float
    pressure_MPa: float
    runs: int
    windows: int
    a: float
    a_err: float
    lengths: list[float]
    lengths_err: list[float]
    angles: list[float]
    volume: float
    volume_err: float
    drift_per_ps: float | None = None
    drift_err_per_ps: float | None = None
    drifting: bool = False


@dataclass
class ExpansionCoefficient:
    """Linear thermal-expansion coefficient ``α = (1/a) da/dT`` of a temperature scan.

    Attributes
    ----------
    per_K, err_per_K : float
        α and its standard error in 1/K.
    at_K : float
        Temperature where α is evaluated.
    pressure_MPa : float
        Pressure of the scan.
    degree : int
        Degree of the polynomial a(T) fitted.
    """

    per_K: float
    err_per_K: float
    at_K: float
    pressure_MPa: float
    degree: int


@dataclass
class BulkModulus:
    """Isothermal bulk modulus ``K = -V dP/dV`` of a pressure scan.

    Attributes
    ----------
    GPa, err_GPa : float
        K and its standard error in GPa.
    at_MPa : float
        Pressure where K is evaluated.
    temperature_K : float
        Temperature of the scan.
    degree : int
        Degree of the polynomial V(P) fitted.
    """

    GPa: float
    err_GPa: float
    at_MPa: float
    temperature_K: float
    degree: int


@dataclass
class ModelSpread:
    """The scan repeated with models drawn from the posterior of the model (module docstring).

    Attributes
    ----------
    seed : int
        Seed of the posterior draw.
    a, a_err : list of lists of float
        Lattice parameter and its MD standard error of each sample (rows) at each state point of the result
        (columns, in its order), Å.
    alpha_per_K : list of float
        α of each sample (empty when the result has no α).
    """

    seed: int
    a: list[list[float]]
    a_err: list[list[float]]
    alpha_per_K: list[float]

    @property
    def samples(self) -> int:
        """Number of posterior models."""
        return len(self.a)

    @property
    def a_spread(self) -> list[float]:
        """Standard deviation of a over the samples at each state point (Å)."""
        return np.std(self.a, axis=0, ddof=1).tolist()

    @property
    def alpha_spread_per_K(self) -> float | None:
        """Standard deviation of α over the samples (1/K), None without α."""
        return float(np.std(self.alpha_per_K, ddof=1)) if self.alpha_per_K else None


@dataclass
class ThermalExpansionResult:
    """State points of NPT runs and what their scans give.

    Attributes
    ----------
    state_points : list of StatePoint
        Every (T, P) state point, sorted by temperature, then pressure.
    alpha : ExpansionCoefficient or None
        From the temperature scan at the pressure with most state points (None with fewer than two).
    bulk_modulus : BulkModulus or None
        From the pressure scan at the temperature with most state points (None with fewer than two).
    model_spread : ModelSpread or None
        The scan over posterior models (None without samples).
    """

    state_points: list[StatePoint]
    alpha: ExpansionCoefficient | None = None
    bulk_modulus: BulkModulus | None = None
    model_spread: ModelSpread | None = None

    def write(self, path: str | Path) -> Path:
        """Write this result as a versioned JSON file; :meth:`read` gives it back exactly."""
        return write_result(path, RESULT_KIND, RESULT_VERSION, {
            "state_points": [asdict(p) for p in self.state_points],
            "alpha": None if self.alpha is None else asdict(self.alpha),
            "bulk_modulus": None if self.bulk_modulus is None else asdict(self.bulk_modulus),
            "model_spread": None if self.model_spread is None else asdict(self.model_spread)})

    @property
    def drifting(self) -> list[StatePoint]:
        """The state points whose lattice parameter still drifts through the production."""
        return [p for p in self.state_points if p.drifting]

    @classmethod
    def read(cls, path: str | Path) -> ThermalExpansionResult:
        """A result written by :meth:`write`.

        Raises
        ------
        ResultFileError
            The file is missing or holds no thermal-expansion result of this format version.
        """
        data = read_result(path, RESULT_KIND, RESULT_VERSION)
        return cls([StatePoint(**p) for p in data["state_points"]],
                   None if data["alpha"] is None else ExpansionCoefficient(**data["alpha"]),
                   None if data["bulk_modulus"] is None else BulkModulus(**data["bulk_modulus"]),
                   None if data["model_spread"] is None else ModelSpread(**data["model_spread"]))

    @property
    def a_model_spread(self) -> list[float | None]:
        """Model spread of a at each state point (Å; None each without a :attr:`model_spread`)."""
        return [None] * len(self.state_points) if self.model_spread is None else self.model_spread.a_spread

    def report(self) -> list[str]:
        """One line per state point and one for α: ``a(T, P) = x ± y (MD) ± z (model)`` (the model part with a
        :attr:`model_spread` only)."""
        spread = self.model_spread
        lines = [f"a({p.temperature_K:g} K, {p.pressure_MPa:g} MPa) = {p.a:.5f} ± {p.a_err:.5f} (MD)"
                 + ("" if z is None else f" ± {z:.5f} (model)") + " Å" for p, z in zip(self.state_points, self.a_model_spread)]
        if self.alpha is not None:
            z = None if spread is None else spread.alpha_spread_per_K
            lines.append(f"α({self.alpha.at_K:g} K) = {self.alpha.per_K * 1e6:.3f} ± {self.alpha.err_per_K * 1e6:.3f} "
                         f"(MD)" + ("" if z is None else f" ± {z * 1e6:.3f} (model)") + " × 10⁻⁶ /K")
        return lines


def frame_times_fs(frames: list[Atoms], frame_interval_fs: float | None = None) -> np.ndarray:
    """Time of each frame: ``info["time_fs"]`` (from :func:`mofsnap.md.run_md`) or index × interval."""
    if frame_interval_fs is not None:
        return np.arange(len(frames)) * frame_interval_fs
    if not all("time_fs" in f.info for f in frames):
        raise ThermalExpansionError("the frames carry no 'time_fs' (e.g. a LAMMPS dump); give the frame interval")
    return np.array([float(f.info["time_fs"]) for f in frames])


def window_means(frames: list[Atoms], equilibration_ps: float, window_ps: float, length_factor: float = 1.0,
                 frame_interval_fs: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Means of (a, b, c, α, β, γ, V) over consecutive windows after the equilibration.

    Returns
    -------
    centres_ps : (nwindows,) array
        Middle of each window in ps after the end of the equilibration.
    means : (nwindows, 7) array
        Lengths scaled by ``length_factor`` (Å), angles (degrees), volume scaled by ``length_factor**3``
        (Å³). Only complete windows holding frames are used.
    """
    if window_ps <= 0 or equilibration_ps < 0:
        raise ThermalExpansionError(f"need window > 0 and equilibration >= 0 (got {window_ps}, {equilibration_ps} ps)")
    times = frame_times_fs(frames, frame_interval_fs)
    times = times - times[0]
    cells = np.array([f.cell.cellpar() for f in frames])
    cells[:, :3] *= length_factor
    volumes = np.array([f.get_volume() for f in frames]) * length_factor ** 3
    data = np.column_stack([cells, volumes])
    production = times >= equilibration_ps * 1000.0
    index = np.floor((times[production] - equilibration_ps * 1000.0) / (window_ps * 1000.0)).astype(int)
    complete = int((times[-1] - equilibration_ps * 1000.0 + 1e-6) // (window_ps * 1000.0))
    filled = [k for k in range(complete) if np.any(index == k)]
    means = [data[production][index == k].mean(axis=0) for k in filled]
    return (np.array(filled, dtype=float) + 0.5) * window_ps, np.array(means).reshape(-1, 7)


def lattice_drift(times_ps: list[np.ndarray], values: list[np.ndarray]) -> tuple[float, float] | None:
    """Slope of ``values`` against time shared by several runs, each with its own offset, and its error.

    Parameters
    ----------
    times_ps, values : lists of arrays
        Window centres and window means of each run.

    Returns
    -------
    (slope, standard error) or None
        Least squares with one intercept per run; None when no degree of freedom is left for the error
        (fewer windows than runs + 2) or the windows of every run share one time.
    """
    centred_t = [t - t.mean() for t in times_ps if len(t)]
    centred_y = [y - y.mean() for y in values if len(y)]
    t, y = np.concatenate(centred_t), np.concatenate(centred_y)
    spread = float(t @ t)
    dof = len(t) - len(centred_t) - 1
    if dof < 1 or spread == 0.0:
        return None
    slope = float(t @ y) / spread
    residual = y - slope * t
    return slope, float(np.sqrt(residual @ residual / dof / spread))


def average_state(runs: list[list[Atoms]], temperature_K: float, pressure_MPa: float, equilibration_ps: float,
                  window_ps: float, length_factor: float = 1.0, frame_interval_fs: float | None = None,
                  drift_sigma: float = DRIFT_SIGMA) -> StatePoint:
    """Average one state point over the windows of all its runs and check them for drift.

    A state point drifts when the slope of its lattice parameter over the windows (:func:`lattice_drift`)
    exceeds ``drift_sigma`` standard errors; it is then flagged and a warning is logged.

    Raises
    ------
    ThermalExpansionError
        If fewer than two windows remain after the equilibration.
    """
    windows = [window_means(frames, equilibration_ps, window_ps, length_factor, frame_interval_fs)
               for frames in runs]
    means = np.vstack([m for _, m in windows])
    if len(means) < 2:
        raise ThermalExpansionError(
            f"T = {temperature_K} K, P = {pressure_MPa} MPa: {len(means)} window(s) of {window_ps} ps after "
            f"{equilibration_ps} ps equilibration; need at least 2 (longer runs or shorter windows)")
    a_windows = means[:, :3].mean(axis=1)
    sem = means.std(axis=0, ddof=1) / np.sqrt(len(means))
    drift = lattice_drift([t for t, _ in windows], [m[:, :3].mean(axis=1) for _, m in windows])
    drifting = drift is not None and abs(drift[0]) > drift_sigma * drift[1]
    if drifting:
        log.warning("T = %g K, P = %g MPa: the lattice parameter still drifts through the production "
                    "(%.2e ± %.1e Å/ps, more than %g standard errors): not equilibrated; discard more "
                    "(equilibration_ps) or run longer", temperature_K, pressure_MPa, drift[0], drift[1], drift_sigma)
    return StatePoint(temperature_K, pressure_MPa, len(runs), len(means), float(a_windows.mean()),
                      float(a_windows.std(ddof=1) / np.sqrt(len(means))), means[:, :3].mean(axis=0).tolist(),
                      sem[:3].tolist(), means[:, 3:6].mean(axis=0).tolist(), float(means[:, 6].mean()),
                      float(sem[6]), None if drift is None else drift[0], None if drift is None else drift[1],
                      drifting)


def _weighted_fit(x: np.ndarray, y: np.ndarray, err: np.ndarray, degree: int) -> tuple[np.poly1d, np.ndarray]:
    x, y, err = (np.asarray(v, dtype=float) for v in (x, y, err))
    if len(x) < degree + 1:
        raise ThermalExpansionError(f"a degree-{degree} fit needs at least {degree + 1} state points, got {len(x)}")
    if np.any(err <= 0):
        raise ThermalExpansionError("every state point needs a positive error for the weighted fit")
    coefficients, covariance = np.polyfit(x, y, degree, w=1.0 / err, cov="unscaled")
    return np.poly1d(coefficients), covariance


def _value_and_slope(x, y, err, degree: int, at: float) -> tuple[float, float, np.ndarray]:
    """Fitted value and slope at ``at`` and their 2x2 covariance."""
    poly, covariance = _weighted_fit(x, y, err, degree)
    powers = np.arange(degree, -1, -1)
    jacobian = np.array([at ** powers, np.where(powers > 0, powers * at ** np.maximum(powers - 1, 0), 0.0)])
    return float(poly(at)), float(poly.deriv()(at)), jacobian @ covariance @ jacobian.T


def expansion_coefficient(temperatures_K, a, a_err, at_K: float = 300.0, degree: int = 2) -> tuple[float, float]:
    """Linear thermal-expansion coefficient ``α = (1/a) da/dT`` at ``at_K`` from a weighted polynomial fit.

    Parameters
    ----------
    temperatures_K, a, a_err : sequences
        Lattice parameter and its standard error at each temperature.
    at_K : float
        Temperature where α is evaluated.
    degree : int
        Degree of the polynomial a(T) (lowered to the number of points minus one).

    Returns
    -------
    alpha, alpha_err : float
        In 1/K; the error propagates the fit covariance (from ``a_err``).
    """
    degree = min(degree, len(temperatures_K) - 1)
    if degree < 1:
        raise ThermalExpansionError("α needs lattice parameters at two temperatures at least")
    value, slope, covariance = _value_and_slope(temperatures_K, a, a_err, degree, at_K)
    gradient = np.array([-slope / value ** 2, 1.0 / value])
    return float(slope / value), float(np.sqrt(gradient @ covariance @ gradient))


def bulk_modulus(pressures_MPa, volumes, volume_err, at_MPa: float = ATMOSPHERE_MPA,
                 degree: int = 1) -> tuple[float, float]:
    """Isothermal bulk modulus ``K = -V dP/dV`` at ``at_MPa`` from a weighted polynomial fit of V(P).

    Returns
    -------
    K, K_err : float
        In GPa; the error propagates the fit covariance (from ``volume_err``).
    """
    degree = min(degree, len(pressures_MPa) - 1)
    if degree < 1:
        raise ThermalExpansionError("the bulk modulus needs volumes at two pressures at least")
    value, slope, covariance = _value_and_slope(pressures_MPa, volumes, volume_err, degree, at_MPa)
    gradient = np.array([-1.0 / slope, value / slope ** 2])
    return float(-value / slope / 1000.0), float(np.sqrt(gradient @ covariance @ gradient) / 1000.0)


def analyse(points: list[StatePoint], at_K: float = 300.0, at_MPa: float | None = None, degree_T: int = 2,
            degree_P: int = 1) -> ThermalExpansionResult:
    """Temperature scan (at the pressure with most state points) and pressure scan (at the temperature with
    most state points) of a set of state points: α at ``at_K`` and K at ``at_MPa`` (lowest pressure if None).

    Returns
    -------
    ThermalExpansionResult
        The state points with α and K where the scans have two points or more.
    """
    result = ThermalExpansionResult(list(points))
    by_pressure, by_temperature = defaultdict(list), defaultdict(list)
    for p in points:
        by_pressure[p.pressure_MPa].append(p)
        by_temperature[p.temperature_K].append(p)
    pressure, scan = max(by_pressure.items(), key=lambda item: len(item[1]))
    if len(scan) >= 2:
        scan = sorted(scan, key=lambda p: p.temperature_K)
        alpha, err = expansion_coefficient([p.temperature_K for p in scan], [p.a for p in scan],
                                           [p.a_err for p in scan], at_K, degree_T)
        result.alpha = ExpansionCoefficient(alpha, err, at_K, pressure, min(degree_T, len(scan) - 1))
    temperature, scan = max(by_temperature.items(), key=lambda item: len(item[1]))
    if len(scan) >= 2:
        scan = sorted(scan, key=lambda p: p.pressure_MPa)
        where = scan[0].pressure_MPa if at_MPa is None else at_MPa
        modulus, err = bulk_modulus([p.pressure_MPa for p in scan], [p.volume for p in scan],
                                    [p.volume_err for p in scan], where, degree_P)
        result.bulk_modulus = BulkModulus(modulus, err, where, temperature, min(degree_P, len(scan) - 1))
    return result


def scan_trajectory_name(temperature_K: float, pressure_MPa: float, run: int) -> str:
    """File name of one NPT run of :func:`run_npt_scan`."""
    return f"npt_T{temperature_K:g}K_P{pressure_MPa:g}MPa_run{run}.extxyz"


def run_npt_scan(atoms: Atoms, calculator: Calculator, directory: str | Path, temperatures_K: list[float],
                 pressures_MPa: list[float] = (ATMOSPHERE_MPA,), runs: int = 5,
                 equilibration_ps: float = EQUILIBRATION_PS, production_ps: float = 500.0, timestep_fs: float = 1.0,
                 frame_interval_fs: float = 100.0, seed: int = 0, progress: bool = True, *, relax: bool = True,
                 relax_fmax: float = RELAX_FMAX, engine: str = "ase", ranks: int = 1,
                 executor: Executor | None = None, **md_options) -> dict[tuple[float, float], list[Path]]:
    """NPT runs at every (T, P) combination, several independent runs each (different velocity seeds).

    The start is first relaxed (positions and cell, :func:`mofsnap.analysis.runs.relax_start`, written to
    ``DIR/relaxed.extxyz``); every run starts from it and writes ``DIR/npt_T{T}K_P{P}MPa_run{i}.extxyz``.
    The runs are independent: with an ``executor`` they run concurrently. Restarting the scan skips
    finished runs and resumes unfinished ones.

    Parameters
    ----------
    atoms : Atoms
        Starting structure (not changed).
    calculator : Calculator
        Any ASE calculator with stress (a ``SNAPCalculator`` for ``engine="lammps"``).
    temperatures_K, pressures_MPa : lists
        The grid of state points.
    runs : int
        Independent runs per state point.
    equilibration_ps, production_ps : float
        Each run lasts their sum.
    timestep_fs, frame_interval_fs : float
        MD time step and time between saved frames.
    seed : int
        Run ``i`` of state point ``k`` uses seed ``seed + 1000 k + i``.
    progress : bool
        Progress bars.
    relax : bool
        Relax the start first (False: start the MD from ``atoms`` as given).
    relax_fmax : float
        Convergence of that relaxation in eV/Å.
    engine : {"ase", "lammps"}
        :func:`mofsnap.md.run_md` or native LAMMPS (:func:`mofsnap.md.native.run_native`).
    ranks : int
        MPI ranks of each native run.
    executor : Executor, optional
        Runs the independent runs (e.g. from :func:`mofsnap.executors.open_executor`); None runs them one
        after another.
    **md_options
        Further MD settings (``cell``, ``tdamp_fs``, ``pdamp_fs``, ``chain``).

    Returns
    -------
    dict
        ``(T, P) -> list of trajectory paths``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if relax:
        atoms = relax_start(atoms, calculator, out, fmax=relax_fmax, pressure_MPa=min(pressures_MPa),
                            cell=md_options.get("cell", "angles-fixed"))
    steps = int(round((equilibration_ps + production_ps) * 1000.0 / timestep_fs))
    interval = max(1, int(round(frame_interval_fs / timestep_fs)))
    points = [(t, p) for p in pressures_MPa for t in temperatures_K]
    scan = [[MDRun(atoms, steps, out / scan_trajectory_name(temperature, pressure, run),
                   dict(ensemble="npt", temperature_K=temperature, pressure_MPa=pressure, timestep_fs=timestep_fs,
                        seed=seed + 1000 * k + run, interval=interval, **md_options))
             for run in range(runs)] for k, (temperature, pressure) in enumerate(points)]
    run_all([r for group in scan for r in group], calculator, engine=engine, ranks=ranks, executor=executor,
            progress=progress)
    return {point: [r.trajectory for r in group] for point, group in zip(points, scan)}


def run_posterior_scans(atoms: Atoms, calculator: Calculator, directory: str | Path, samples: int,
                        samples_seed: int = 0, **scan) -> list[dict[tuple[float, float], list[Path]]]:
    """:func:`run_npt_scan` once for each of ``samples`` models drawn from the posterior of the calculator's model,
    in ``directory/posterior/sample{k}/`` (resumable like the scan).

    Parameters
    ----------
    atoms, calculator, directory
        As for :func:`run_npt_scan`; ``calculator`` is a ``SNAPCalculator`` of a model with its
        ``<prefix>.snapfit.npz``.
    samples, samples_seed : int
        Number of posterior models (at least 2) and the seed of their draw.
    **scan
        The further arguments of :func:`run_npt_scan` (the same as the model's own scan, MD seeds included).

    Returns
    -------
    list of dict
        The trajectories of each sample's scan.

    Raises
    ------
    FitError
        The calculator's model has no posterior (no SNAP model or no ``.snapfit.npz``), or ``samples < 2``.
    """
    return [run_npt_scan(atoms, model, Path(directory) / "posterior" / f"sample{k}", **scan)
            for k, model in enumerate(posterior_calculators(calculator, samples, samples_seed))]


def model_spread(result: ThermalExpansionResult, samples: list[ThermalExpansionResult], seed: int) -> ModelSpread:
    """The :class:`ModelSpread` of ``result`` from the results of the same analysis of each posterior sample.

    Raises
    ------
    ThermalExpansionError
        A sample lacks a state point of ``result`` (or α when ``result`` has it).
    """
    rows, errors = [], []
    for k, sample in enumerate(samples):
        points = {(p.temperature_K, p.pressure_MPa): p for p in sample.state_points}
        missing = [key for key in ((p.temperature_K, p.pressure_MPa) for p in result.state_points) if key not in points]
        if missing or (result.alpha is not None and sample.alpha is None):
            raise ThermalExpansionError(f"posterior sample {k} lacks state points {missing} or α of the model's scan")
        rows.append([points[p.temperature_K, p.pressure_MPa].a for p in result.state_points])
        errors.append([points[p.temperature_K, p.pressure_MPa].a_err for p in result.state_points])
    alphas = [] if result.alpha is None else [sample.alpha.per_K for sample in samples]
    return ModelSpread(seed, rows, errors, alphas)


def state_points_from_files(files: list[str], equilibration_ps: float = EQUILIBRATION_PS, window_ps: float = WINDOW_PS,
                            length_factor: float = 1.0, frame_interval_fs: float | None = None,
                            drift_sigma: float = DRIFT_SIGMA) -> list[StatePoint]:
    """Group NPT trajectories by (T, P) and average them (:func:`average_state`, drift check included).

    Each entry is ``PATH`` (T and P read from the frames' ``md_target_temperature_K`` /
    ``md_pressure_MPa``, as written by :func:`mofsnap.md.run_md`), ``PATH:T`` or ``PATH:T:P`` (K, MPa; the
    form for LAMMPS dumps and other foreign trajectories, P defaulting to 1 atm).
    """
    groups: dict[tuple[float, float], list[list[Atoms]]] = defaultdict(list)
    for entry in files:
        path, *given = entry.split(":")
        frames = read_trajectory(path)
        info = frames[0].info
        if given:
            temperature = float(given[0])
            pressure = float(given[1]) if len(given) > 1 else ATMOSPHERE_MPA
        elif "md_target_temperature_K" in info and "md_pressure_MPa" in info:
            temperature, pressure = float(info["md_target_temperature_K"]), float(info["md_pressure_MPa"])
        else:
            raise ThermalExpansionError(f"{path}: no NPT temperature/pressure in the frames; write it as {path}:T:P")
        groups[(temperature, pressure)].append(frames)
    return [average_state(runs, t, p, equilibration_ps, window_ps, length_factor, frame_interval_fs, drift_sigma)
            for (t, p), runs in sorted(groups.items())]


def plot_scans(result: ThermalExpansionResult, directory: str | Path) -> list[Path]:
    """``lattice_vs_T.png`` and ``lattice_vs_P.png`` (points with the fitted curve) for the scans of ``result``."""
    directory = Path(directory)
    written = []
    if result.alpha is not None:
        fit = result.alpha
        scan = sorted((p for p in result.state_points if p.pressure_MPa == fit.pressure_MPa),
                      key=lambda p: p.temperature_K)
        title = f"α({fit.at_K:g} K) = {fit.per_K * 1e6:.2f} ± {fit.err_per_K * 1e6:.2f} × 10⁻⁶ /K"
        written.append(_plot_scan([p.temperature_K for p in scan], [p.a for p in scan], [p.a_err for p in scan],
                                  fit.degree, "T (K)", "a (Å)", title, directory / "lattice_vs_T.png"))
    if result.bulk_modulus is not None:
        fit = result.bulk_modulus
        scan = sorted((p for p in result.state_points if p.temperature_K == fit.temperature_K),
                      key=lambda p: p.pressure_MPa)
        written.append(_plot_scan([p.pressure_MPa for p in scan], [p.volume for p in scan],
                                  [p.volume_err for p in scan], fit.degree, "P (MPa)", "V (Å$^3$)",
                                  f"K({fit.at_MPa:g} MPa) = {fit.GPa:.2f} ± {fit.err_GPa:.2f} GPa",
                                  directory / "lattice_vs_P.png"))
    return written


def _plot_scan(x, values, errors, degree: int, xlabel: str, ylabel: str, title: str, png: Path) -> Path:
    x, values, errors = (np.asarray(v, dtype=float) for v in (x, values, errors))
    poly, _ = _weighted_fit(x, values, errors, degree)
    grid = np.linspace(x.min(), x.max(), 200)
    return plotting.fit_scan_figure(x, values, errors, grid, poly(grid), xlabel, ylabel, title,
                                    f"degree-{degree} fit", png)


def write_outputs(result: ThermalExpansionResult, directory: str | Path) -> Path:
    """Write ``thermal_expansion.json`` (:meth:`ThermalExpansionResult.write`), ``state_points.csv`` and the
    plots of :func:`plot_scans` into ``directory``; return the JSON file."""
    out = Path(directory)
    path = result.write(out / "thermal_expansion.json")
    with open(out / "state_points.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["T_K", "P_MPa", "runs", "windows", "a_A", "a_err_A", "b_A", "c_A", "alpha_deg",
                         "beta_deg", "gamma_deg", "V_A3", "V_err_A3", "drift_A_per_ps", "drift_err_A_per_ps",
                         "drifting", "a_model_spread_A"])
        for p, a_model in zip(result.state_points, result.a_model_spread):
            writer.writerow([p.temperature_K, p.pressure_MPa, p.runs, p.windows, p.a, p.a_err, p.lengths[1],
                             p.lengths[2], *p.angles, p.volume, p.volume_err, p.drift_per_ps, p.drift_err_per_ps,
                             p.drifting, a_model])
    plot_scans(result, out)
    return path


if __name__ == "__main__":
    from mofsnap.cli import run_as_module

    run_as_module("thermal-expansion")
