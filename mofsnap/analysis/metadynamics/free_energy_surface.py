"""Free energies from the hills of well-tempered metadynamics, with the bias-time error of the barrier.

PLUMED writes well-tempered hills already scaled by γ/(γ−1), so the free-energy surface is
``F(s) = -Σ_hills w_i G_i(s)`` (up to a constant), which equals ``-γ/(γ−1) V(s)`` with ``V`` the bias that
acted on the system. One-dimensional profiles integrate out the other CVs with Boltzmann weights,
``F(s_k) = -kT ln ∫ exp(-F(s)/kT) ds_{j≠k}``. The barrier error comes from the bias-time convergence: the
barrier is recomputed from the hills deposited up to a series of times and its spread over the last part of
the run is the uncertainty.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import units
from scipy.signal import find_peaks
from scipy.special import logsumexp

from ... import plotting
from ...exceptions import HillsFileError
from ...results import read_result, write_result

#: Kind and format version of the files of :meth:`FreeEnergy.write`.
RESULT_KIND, RESULT_VERSION = "free-energy", 1


def _plumed_number(text: str) -> float:
    """A PLUMED number such as ``-pi``, ``2*pi`` or ``1.5``."""
    text = text.strip().lower()
    if "pi" not in text:
        return float(text)
    factor = text.replace("pi", "").rstrip("*").strip()
    signs = {"": 1.0, "+": 1.0, "-": -1.0}
    return (signs[factor] if factor in signs else float(factor)) * np.pi


@dataclass
class Hills:
    """Gaussians deposited by a PLUMED ``METAD`` (diagonal kernels).

    Attributes
    ----------
    names : list of str
        CV names.
    time : (n,) array
        Deposition times (PLUMED time units; fs for runs made here).
    centers, sigmas : (n, d) arrays
        Centres and widths.
    heights : (n,) array
        Heights as written (for well-tempered runs already scaled by γ/(γ−1)).
    biasfactor : float
        γ (inf for plain metadynamics).
    periods : list of (min, max) or None
        Domain of each periodic CV.
    """

    names: list[str]
    time: np.ndarray
    centers: np.ndarray
    sigmas: np.ndarray
    heights: np.ndarray
    biasfactor: float
    periods: list[tuple[float, float] | None] = field(default_factory=list)


def read_hills(path: str | Path) -> Hills:
    """Read a PLUMED HILLS file (also one appended to by restarts).

    Raises
    ------
    HillsFileError
        Missing or empty file, no ``#! FIELDS`` header, or multivariate kernels.
    """
    path = Path(path)
    if not path.exists():
        raise HillsFileError(f"HILLS file {path} does not exist")
    fields: list[str] = []
    settings: dict[str, str] = {}
    rows = []
    for line in path.read_text().splitlines():
        words = line.split()
        if not words:
            continue
        if line.startswith("#! FIELDS"):
            fields = words[2:]
        elif line.startswith("#! SET"):
            settings[words[2]] = words[3]
        elif not line.startswith("#"):
            rows.append([float(w) for w in words])
    if not fields or "time" not in fields:
        raise HillsFileError(f"{path} has no '#! FIELDS time ...' header: not a PLUMED HILLS file")
    if settings.get("multivariate", "false") != "false":
        raise HillsFileError(f"{path} has multivariate hills, which are not supported")
    if not rows:
        raise HillsFileError(f"{path} holds no hills yet")
    data = np.array(rows)
    names = [f for f in fields[1:] if not f.startswith("sigma_") and f not in ("height", "biasf")]
    col = {f: k for k, f in enumerate(fields)}
    periods = [(_plumed_number(settings[f"min_{n}"]), _plumed_number(settings[f"max_{n}"]))
               if f"min_{n}" in settings else None for n in names]
    biasf = data[:, col["biasf"]] if "biasf" in col else np.full(len(data), np.inf)
    return Hills(names=names, time=data[:, 0], centers=data[:, [col[n] for n in names]],
                 sigmas=data[:, [col[f"sigma_{n}"] for n in names]], heights=data[:, col["height"]],
                 biasfactor=float(biasf[-1]), periods=periods)


def grid_axes(hills: Hills, spacing: Sequence[float] | None = None) -> list[np.ndarray]:
    """Grid points per CV: the periodic domain, or the visited range ± 3σ; spacing defaults to σ/2."""
    axes = []
    for k, period in enumerate(hills.periods):
        step = spacing[k] if spacing is not None else 0.5 * float(hills.sigmas[:, k].min())
        if period is not None:
            n = max(int(round((period[1] - period[0]) / step)), 2)
            axes.append(period[0] + (period[1] - period[0]) * np.arange(n) / n)
        else:
            margin = 3 * float(hills.sigmas[:, k].max())
            low, high = hills.centers[:, k].min() - margin, hills.centers[:, k].max() + margin
            axes.append(np.linspace(low, high, max(int(round((high - low) / step)) + 1, 2)))
    return axes


def _sum_hills(hills: Hills, axes: list[np.ndarray], select: slice) -> np.ndarray:
    """Σ height × Gaussian over the hills ``select`` on the grid (minimum image for periodic CVs)."""
    factors = []
    for k, axis in enumerate(axes):
        delta = axis[None, :] - hills.centers[select, k][:, None]
        if hills.periods[k] is not None:
            width = hills.periods[k][1] - hills.periods[k][0]
            delta -= width * np.round(delta / width)
        factors.append(np.exp(-0.5 * (delta / hills.sigmas[select, k][:, None]) ** 2))
    letters = "abcdefgh"[: len(axes)]
    spec = "h," + ",".join(f"h{c}" for c in letters) + "->" + letters
    return np.einsum(spec, hills.heights[select], *factors, optimize=True)


def profile_1d(surface: np.ndarray, axes: list[np.ndarray], keep: int, kT: float) -> np.ndarray:
    """``F(s_keep) = -kT ln ∫ exp(-F/kT) ds_other``, shifted to minimum 0 (eV)."""
    other = tuple(k for k in range(surface.ndim) if k != keep)
    weights = np.zeros(surface.shape)
    for k in other:
        shape = [1] * surface.ndim
        shape[k] = len(axes[k])
        weights = weights + np.log(np.gradient(axes[k])).reshape(shape)
    profile = -kT * logsumexp(-surface / kT + weights, axis=other) if other else surface.copy()
    return profile - profile.min()


def barrier_height(profile: np.ndarray, periodic: bool = False, min_prominence: float = 0.0) -> float:
    """Lowest free-energy barrier out of the global minimum of a 1-D profile.

    The barrier to another minimum is the highest point on the path to it (either way round for periodic
    CVs) minus the global minimum; only minima of ``min_prominence`` (eV) or more count, so noise is ignored.

    Returns
    -------
    float
        Barrier in eV, ``nan`` if the profile has no second minimum (the run has not crossed yet).
    """
    F = np.asarray(profile, float)
    start = int(np.argmin(F))
    if periodic:
        path = np.append(np.roll(F, -start), F[start])
        minima, _ = find_peaks(-path, prominence=min_prominence)
        tops = [min(path[: m + 1].max(), path[m:].max()) for m in minima]
    else:
        minima, _ = find_peaks(-F, prominence=min_prominence)
        tops = [F[min(m, start): max(m, start) + 1].max() for m in minima if m != start]
    return float(min(tops) - F[start]) if tops else float("nan")



@dataclass
class FreeEnergy:
    """Free energy from well-tempered metadynamics hills, with the bias-time convergence of the barriers.

    Attributes
    ----------
    names : list of str
        CV names.
    axes : list of arrays
        Grid of each CV.
    surface : ndarray
        F on the grid (eV, minimum 0), one dimension per CV.
    profiles : list of arrays
        1-D F of each CV with the others integrated out (eV, minimum 0).
    temperature_K : float
        Temperature of the run.
    biasfactor : float
        Well-tempered bias factor γ.
    times : (m,) array
        Bias times of the convergence checkpoints (time of the last hill used).
    barrier_history : (m, d) array
        Barrier of each CV's profile from the hills up to each checkpoint (eV; nan before crossing).
    barriers, barrier_errors : (d,) arrays
        Final barrier of each CV and its spread (standard deviation) over the last ``tail`` of checkpoints.
    barrier, barrier_error : float
        Mean over CVs of the final barriers, and the spread of that mean over the tail checkpoints.
    """

    names: list[str]
    axes: list[np.ndarray]
    surface: np.ndarray
    profiles: list[np.ndarray]
    temperature_K: float
    biasfactor: float
    times: np.ndarray
    barrier_history: np.ndarray
    barriers: np.ndarray
    barrier_errors: np.ndarray
    barrier: float
    barrier_error: float

    @property
    def barrier_kJ_per_mol(self) -> float:
        """:attr:`barrier` in kJ/mol."""
        return self.barrier * units.mol / units.kJ

    def write(self, path: str | Path) -> Path:
        """Write this result as a versioned JSON file; :meth:`read` gives it back exactly."""
        return write_result(path, RESULT_KIND, RESULT_VERSION, {
            "names": self.names, "axes": self.axes, "surface": self.surface, "profiles": self.profiles,
            "temperature_K": self.temperature_K, "biasfactor": self.biasfactor, "times": self.times,
            "barrier_history": self.barrier_history, "barriers": self.barriers,
            "barrier_errors": self.barrier_errors, "barrier": self.barrier, "barrier_error": self.barrier_error})

    @classmethod
    def read(cls, path: str | Path) -> FreeEnergy:
        """A free energy written by :meth:`write`.

        Raises
        ------
        ResultFileError
            The file is missing or holds no free energy of this format version.
        """
        data = read_result(path, RESULT_KIND, RESULT_VERSION)
        ncv = len(data["names"])
        return cls(names=list(data["names"]), axes=[np.array(a, dtype=float) for a in data["axes"]],
                   surface=np.array(data["surface"], dtype=float),
                   profiles=[np.array(p, dtype=float) for p in data["profiles"]],
                   temperature_K=float(data["temperature_K"]), biasfactor=float(data["biasfactor"]),
                   times=np.array(data["times"], dtype=float),
                   barrier_history=np.array(data["barrier_history"], dtype=float).reshape(-1, ncv),
                   barriers=np.array(data["barriers"], dtype=float),
                   barrier_errors=np.array(data["barrier_errors"], dtype=float), barrier=float(data["barrier"]),
                   barrier_error=float(data["barrier_error"]))


def free_energy(
    hills: Hills | str | Path,
    temperature_K: float,
    *,
    spacing: Sequence[float] | None = None,
    checkpoints: int = 20,
    tail: float = 0.25,
    min_prominence: float | None = None,
) -> FreeEnergy:
    """Free-energy surface, 1-D profiles and barriers (with error) from well-tempered hills.

    Parameters
    ----------
    hills : Hills or path
        Hills, or a HILLS file to read.
    temperature_K : float
        Temperature of the run (for integrating out CVs).
    spacing : sequence of float, optional
        Grid spacing per CV (default σ/2).
    checkpoints : int
        Number of bias times at which the barriers are recomputed.
    tail : float
        Fraction of the run (the last checkpoints) over which the barrier spread is the error.
    min_prominence : float, optional
        Smallest depth (eV) of a minimum that counts for the barrier; default 2 kT.

    Raises
    ------
    HillsFileError
        For hills of plain (not well-tempered) metadynamics.
    """
    hills = hills if isinstance(hills, Hills) else read_hills(hills)
    if not np.isfinite(hills.biasfactor):
        raise HillsFileError("hills are not well-tempered (no biasf column); F = -V needs a converged plain run")
    if not 0 < tail <= 1:
        raise HillsFileError(f"tail must be a fraction in (0, 1], got {tail}")
    kT = units.kB * temperature_K
    prominence = 2 * kT if min_prominence is None else min_prominence
    axes = grid_axes(hills, spacing)
    n = len(hills.heights)
    ends = np.unique(np.linspace(0, n, checkpoints + 1).round().astype(int)[1:])
    total = np.zeros([len(a) for a in axes])
    history, begin = [], 0
    for end in ends:
        total += _sum_hills(hills, axes, slice(begin, end))
        begin = end
        surface = -total - (-total).min()
        history.append([barrier_height(profile_1d(surface, axes, k, kT), hills.periods[k] is not None,
                                       prominence) for k in range(len(axes))])
    history = np.array(history)
    in_tail = slice(max(len(ends) - max(int(round(tail * len(ends))), 1), 0), None)
    with warnings.catch_warnings():  # all-nan columns (no crossing yet) give nan, as they should
        warnings.simplefilter("ignore", RuntimeWarning)
        errors = np.nanstd(history[in_tail], axis=0)
        mean_error = float(np.nanstd(np.nanmean(history[in_tail], axis=1)))
    return FreeEnergy(
        names=hills.names, axes=axes, surface=surface,
        profiles=[profile_1d(surface, axes, k, kT) for k in range(len(axes))], temperature_K=temperature_K,
        biasfactor=hills.biasfactor, times=hills.time[ends - 1], barrier_history=history, barriers=history[-1],
        barrier_errors=errors, barrier=float(np.mean(history[-1])), barrier_error=mean_error)


def write_outputs(result: FreeEnergy, directory: str | Path) -> Path:
    """Write ``metadynamics.json`` (:meth:`FreeEnergy.write`) and the PNG plots of ``result`` into ``directory``.

    The plots are ``fes_2d.png`` (two CVs), ``fes_1d.png`` and ``barrier_convergence.png``.

    Returns
    -------
    Path
        The JSON file.
    """
    directory = Path(directory)
    plotting.free_energy_figures(result, directory)
    return result.write(directory / "metadynamics.json")
