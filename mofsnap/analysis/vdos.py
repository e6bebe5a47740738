"""Vibrational density of states from MD velocities, total and per atom type.

The mass-weighted velocity autocorrelation of each atom type,
``C_t(τ) = Σ_{i∈t} m_i <v_i(0)·v_i(τ)>`` (averaged over all time origins, computed by FFT with zero
padding so it is not circular), is multiplied by a lag window, zero padded and cosine transformed. All
spectra share one scale, chosen so that the total VDOS integrates to the number of degrees of freedom
``3N - removed`` (equipartition); the partial VDOS of the types therefore add up to the total exactly and
each integrates to its share of the kinetic energy, ``≈ 3 N_t`` for a thermalised system.

The VDOS checks that share: the mean kinetic temperature of every type is compared with the whole
system's, and types further from it than the tolerance (:data:`EQUIPARTITION_FRACTION` of the system's
temperature or :data:`EQUIPARTITION_KELVIN`, whichever is larger) are listed in
:attr:`VDOSResult.out_of_equipartition`, logged as a warning and written to the summary. A type out of
equipartition means the run was not thermalised (e.g. an unrelaxed start whose stored energy went into
some modes): its partial VDOS integral is not ``3 N_t`` and the band intensities cannot be trusted.

Model spread of the peak positions (:func:`run_posterior_vdos`, :func:`vdos_peak_spread`, ``--samples N``): the
NVE production is run again with each of ``N`` SNAP models drawn from the ridge posterior
(:func:`mofsnap.fit.posterior.posterior_calculators`), from the same equilibrated state (positions, velocities,
cell) as the model's own production and with the same protocol, so the samples differ from the model only by
their coefficients and the spread of their peaks is the model's, not that of other MD starts. Each sample's
VDOS is analysed like the model's and its peaks found on its own spectrum; each peak of the model's spectrum
is matched to the nearest peak of the same spectrum and band of every sample, and the mean and standard
deviation of the matched positions are reported as ``m ± z (model)``. No MD statistical error of a peak position
is computed: the frequency resolution of the spectrum (``settings["resolution_cm1"]``, set by the maximum lag)
is reported next to it instead. It costs ``N`` more NVE productions.

Command (also ``python -m mofsnap.analysis.vdos``)::

    mofsnap vdos nve.extxyz -o vdos/ --bands 0-600,600-1800,2800-3300
    mofsnap vdos --run zif8.extxyz --model zif8 --d3 -o vdos/   # reference protocol
    mofsnap vdos --run zif8.extxyz --model zif8 --d3 --samples 4 -o vdos/   # with the model spread of the peaks
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.units import kB
from scipy.signal import find_peaks

from .. import plotting
from ..atomtypes import assign_atom_types
from ..exceptions import AtomTypingError, VDOSError
from ..fit.posterior import posterior_calculators
from ..md import read_trajectory
from ..results import read_result, write_result
from ..units import ATMOSPHERE_MPA, THZ_TO_CM1
from .runs import RELAX_FMAX, MDRun, relax_start, run_all, run_one

log = logging.getLogger(__name__)

#: Lag windows: Hann and Blackman halves (1 at lag 0, 0 at the maximum lag) or none (rectangular).
WINDOWS = ("hann", "blackman", "none")
#: Kind and format version of the files of :meth:`VDOSResult.write`.
RESULT_KIND, RESULT_VERSION = "vdos", 2
#: Equipartition tolerance: a type is flagged when its mean kinetic temperature differs from the whole
#: system's by more than this fraction of the system's temperature and by more than :data:`EQUIPARTITION_KELVIN`.
EQUIPARTITION_FRACTION = 0.10
#: Absolute part of the equipartition tolerance in K (keeps cold runs and small types from false alarms).
EQUIPARTITION_KELVIN = 10.0
#: Trajectories of :func:`run_vdos_protocol` in its directory: the NPT equilibration and the NVE production.
EQUILIBRATION, PRODUCTION = "equilibration.extxyz", "nve.extxyz"


def write_spectra_csv(path: str | Path, frequency_cm1: np.ndarray, total: np.ndarray,
                      partial: dict[str, np.ndarray]) -> None:
    """Write a density of states as CSV: frequency in cm⁻¹ and THz, the total, one column per atom type."""
    labels = list(partial)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frequency_cm1", "frequency_THz", "total", *labels])
        for k in range(frequency_cm1.size):
            writer.writerow([f"{frequency_cm1[k]:.4f}", f"{frequency_cm1[k] / THZ_TO_CM1:.6f}",
                             f"{total[k]:.6e}", *(f"{partial[t][k]:.6e}" for t in labels)])


@dataclass
class VDOSResult:
    """A total VDOS and the partial VDOS per atom type.

    Attributes
    ----------
    frequency_cm1 : ndarray
        Frequencies in cm⁻¹ (from 0 to the Nyquist frequency).
    total : ndarray
        Total VDOS in states per cm⁻¹; its integral is :attr:`dof`.
    partial : dict of str to ndarray
        VDOS of each atom type, same units; they sum to :attr:`total`.
    dof : float
        Number of vibrational degrees of freedom, ``3N`` minus removed ones.
    counts : dict of str to int
        Number of atoms of each type.
    temperature_K : float
        Mean kinetic temperature of the whole system, ``<Σ m v²> / (dof k_B)``.
    type_temperatures_K : dict of str to float
        Mean kinetic temperature of each type, ``<Σ_{i∈t} m_i v_i²> / (dof_t k_B)`` with
        ``dof_t = 3 N_t dof / 3N`` (the removed degrees of freedom shared in proportion).
    out_of_equipartition : list of str
        Types whose temperature is further from :attr:`temperature_K` than the tolerance in
        ``settings["equipartition_tolerance"]``; empty for a thermalised run.
    settings : dict
        Frame interval, maximum lag, window, padding, number of frames, equipartition tolerance.
    """

    frequency_cm1: np.ndarray
    total: np.ndarray
    partial: dict[str, np.ndarray]
    dof: float
    counts: dict[str, int]
    temperature_K: float
    type_temperatures_K: dict[str, float]
    out_of_equipartition: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def frequency_THz(self) -> np.ndarray:
        """Frequencies in THz."""
        return self.frequency_cm1 / THZ_TO_CM1

    def integral(self, spectrum: np.ndarray, band: tuple[float, float] | None = None) -> float:
        """Number of states of ``spectrum`` (total or a partial) within ``band`` (cm⁻¹; all if None)."""
        lo, hi = band if band is not None else (-np.inf, np.inf)
        mask = (self.frequency_cm1 >= lo) & (self.frequency_cm1 <= hi)
        return float(np.trapezoid(spectrum[mask], self.frequency_cm1[mask]))

    def expected_states(self, label: str) -> float:
        """States of type ``label`` at equipartition: ``3 N_t`` times ``dof / 3N``."""
        return 3.0 * self.counts[label] * self.dof / (3.0 * sum(self.counts.values()))

    def equipartition(self) -> dict:
        """Per type: mean kinetic temperature, states (partial VDOS integral) and states expected at
        equipartition; with the system's temperature, the tolerance and the types out of it."""
        return {"temperature_K": self.temperature_K, "tolerance": self.settings.get("equipartition_tolerance"),
                "out_of_equipartition": list(self.out_of_equipartition),
                "types": {label: {"temperature_K": self.type_temperatures_K[label],
                                  "states": self.integral(spectrum), "expected_states": self.expected_states(label)}
                          for label, spectrum in self.partial.items()}}

    def peaks(self, bands: list[tuple[float, float]], min_prominence: float = 0.05) -> list[dict]:
        """Peaks of the total and of every partial VDOS within each band.

        Parameters
        ----------
        bands : list of (lo, hi)
            Frequency bands in cm⁻¹.
        min_prominence : float
            A local maximum is a peak when its prominence is at least this fraction of the largest value
            of that spectrum within the band.

        Returns
        -------
        list of dict
            One entry per (spectrum, band): ``type`` ("total" or the type label), ``band_cm1``,
            ``states`` (integral over the band) and ``peaks``: list of ``{"cm1", "THz", "height"}``
            sorted by decreasing height.
        """
        entries = []
        for label, spectrum in {"total": self.total, **self.partial}.items():
            for lo, hi in bands:
                if not lo < hi:
                    raise VDOSError(f"band ({lo}, {hi}) cm⁻¹ must have lo < hi")
                index = np.flatnonzero((self.frequency_cm1 >= lo) & (self.frequency_cm1 <= hi))
                found = []
                if index.size >= 3 and spectrum[index].max() > 0:
                    local, _ = find_peaks(spectrum[index], prominence=min_prominence * spectrum[index].max())
                    order = local[np.argsort(spectrum[index][local])[::-1]]
                    found = [{"cm1": float(self.frequency_cm1[index[k]]),
                              "THz": float(self.frequency_cm1[index[k]] / THZ_TO_CM1),
                              "height": float(spectrum[index[k]])} for k in order]
                entries.append({"type": label, "band_cm1": [lo, hi], "states": self.integral(spectrum, (lo, hi)),
                                "peaks": found})
        return entries

    def write(self, path: str | Path) -> Path:
        """Write this result as a versioned JSON file; :meth:`read` gives it back exactly."""
        return write_result(path, RESULT_KIND, RESULT_VERSION, {
            "frequency_cm1": self.frequency_cm1, "total": self.total, "partial": self.partial, "dof": self.dof,
            "counts": self.counts, "temperature_K": self.temperature_K,
            "type_temperatures_K": self.type_temperatures_K, "out_of_equipartition": self.out_of_equipartition,
            "settings": self.settings})

    @classmethod
    def read(cls, path: str | Path) -> VDOSResult:
        """A VDOS written by :meth:`write`.

        Raises
        ------
        ResultFileError
            The file is missing or holds no VDOS of this format version.
        """
        data = read_result(path, RESULT_KIND, RESULT_VERSION)
        return cls(np.array(data["frequency_cm1"], dtype=float), np.array(data["total"], dtype=float),
                   {label: np.array(values, dtype=float) for label, values in data["partial"].items()},
                   float(data["dof"]), {label: int(n) for label, n in data["counts"].items()},
                   float(data["temperature_K"]),
                   {label: float(t) for label, t in data["type_temperatures_K"].items()},
                   [str(label) for label in data["out_of_equipartition"]], data["settings"])

    def summary(self, bands: list[tuple[float, float]] | None = None, min_prominence: float = 0.05) -> dict:
        """Degrees of freedom, atoms, settings, the :meth:`equipartition` check, states of every spectrum and
        the peaks within ``bands``."""
        return {"dof": self.dof, "natoms": int(sum(self.counts.values())), "counts": self.counts,
                "settings": self.settings, "equipartition": self.equipartition(),
                "states": {"total": self.integral(self.total),
                           **{label: self.integral(spectrum) for label, spectrum in self.partial.items()}},
                "bands_cm1": [list(b) for b in bands or []],
                "peaks": self.peaks(bands, min_prominence) if bands else []}


def vdos_peak_spread(result: VDOSResult, samples: Sequence[VDOSResult], bands: list[tuple[float, float]],
                     min_prominence: float = 0.05) -> list[dict]:
    """The peaks of ``result`` with their positions in the VDOS of posterior models (module docstring).

    The peaks of every sample are found by :meth:`VDOSResult.peaks` on its own spectrum with the same bands
    and prominence; a peak of ``result`` is matched, in each sample, to the nearest peak of the same spectrum
    (total or type) and band.

    Parameters
    ----------
    result : VDOSResult
        The VDOS of the model.
    samples : sequence of VDOSResult
        The VDOS of each posterior model, from the same protocol and analysis settings.
    bands : list of (lo, hi)
        Frequency bands in cm⁻¹.
    min_prominence : float
        As for :meth:`VDOSResult.peaks`.

    Returns
    -------
    list of dict
        The entries of ``result.peaks(bands, min_prominence)``; each peak also holds ``samples_cm1`` (the
        matched position in each sample, None for a sample without a peak there), ``posterior_mean_cm1`` and
        ``model_spread_cm1`` (mean and standard deviation of the matched positions; None with fewer than two).

    Raises
    ------
    VDOSError
        Fewer than two samples, or a sample whose spectra are not those of ``result`` (other types).
    """
    if len(samples) < 2:
        raise VDOSError(f"a model spread needs at least 2 posterior samples (got {len(samples)})")
    entries = result.peaks(bands, min_prominence)
    others = [sample.peaks(bands, min_prominence) for sample in samples]
    for k, other in enumerate(others):
        if [(e["type"], e["band_cm1"]) for e in other] != [(e["type"], e["band_cm1"]) for e in entries]:
            raise VDOSError(f"posterior sample {k} has other spectra ({list(samples[k].partial)}) than the model "
                            f"({list(result.partial)}): analyse every run with the same settings")
    for index, entry in enumerate(entries):
        for peak in entry["peaks"]:
            matched = [min((p["cm1"] for p in other[index]["peaks"]), key=lambda cm1: abs(cm1 - peak["cm1"]),
                           default=None) for other in others]
            found = [cm1 for cm1 in matched if cm1 is not None]
            peak.update(samples_cm1=matched, posterior_mean_cm1=float(np.mean(found)) if len(found) > 1 else None,
                        model_spread_cm1=float(np.std(found, ddof=1)) if len(found) > 1 else None)
    return entries


def peak_report(summary: dict) -> list[str]:
    """One line per peak of the total VDOS in a summary of :func:`write_outputs` with a model spread:
    ``peak at x cm⁻¹ (band lo-hi): m ± z (model) cm⁻¹ over k of N samples, resolution r cm⁻¹ (no MD error)``,
    where ``k`` samples have a peak in that band."""
    resolution = summary["settings"]["resolution_cm1"]
    lines = []
    for entry in summary["peaks"]:
        if entry["type"] != "total":
            continue
        lo, hi = entry["band_cm1"]
        for peak in entry["peaks"]:
            found = sum(cm1 is not None for cm1 in peak["samples_cm1"])
            spread = ("no model spread" if peak["model_spread_cm1"] is None else
                      f"{peak['posterior_mean_cm1']:.1f} ± {peak['model_spread_cm1']:.1f} (model) cm⁻¹")
            lines.append(f"peak at {peak['cm1']:.1f} cm⁻¹ (band {lo:g}-{hi:g}): {spread} over {found} of "
                         f"{len(peak['samples_cm1'])} samples, resolution {resolution:.1f} cm⁻¹ (no MD error)")
    return lines


def write_outputs(result: VDOSResult, directory: str | Path, bands: list[tuple[float, float]] | None = None,
                  min_prominence: float = 0.05, samples: Sequence[VDOSResult] = (),
                  samples_seed: int | None = None) -> dict:
    """Write ``vdos.json`` (:meth:`VDOSResult.write`), ``vdos.csv`` (spectra), ``vdos_summary.json`` (states and
    peaks of :meth:`VDOSResult.summary`) and ``vdos.png`` into ``directory``.

    With the VDOS of posterior models (``samples``, drawn with ``samples_seed``), the peaks of the summary are
    those of :func:`vdos_peak_spread`, the summary's ``"model_spread"`` holds the number of samples, the seed
    and the :func:`peak_report` lines, and the plot marks the peaks of the total at their posterior mean
    with the model spread as error bar.

    Returns
    -------
    dict
        The summary written to ``vdos_summary.json``.
    """
    out = Path(directory)
    result.write(out / "vdos.json")
    write_spectra_csv(out / "vdos.csv", result.frequency_cm1, result.total, result.partial)
    summary = result.summary(bands, min_prominence)
    summary["model_spread"] = None
    if samples:
        summary["peaks"] = vdos_peak_spread(result, samples, bands or [], min_prominence)
        summary["model_spread"] = {"samples": len(samples), "seed": samples_seed, "report": peak_report(summary)}
    (out / "vdos_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    plot_vdos(result, out / "vdos.png", bands, summary["peaks"] if samples else None)
    return summary


def _lag_window(name: str, length: int) -> np.ndarray:
    x = np.arange(length) / length
    if name == "hann":
        return 0.5 * (1 + np.cos(np.pi * x))
    if name == "blackman":
        return 0.42 + 0.5 * np.cos(np.pi * x) + 0.08 * np.cos(2 * np.pi * x)
    if name == "none":
        return np.ones(length)
    raise VDOSError(f"unknown window {name!r}; choose one of {', '.join(WINDOWS)}")


def _autocorrelation(velocities: np.ndarray, masses: np.ndarray, max_lag: int, chunk: int = 64) -> np.ndarray:
    """Σ_i m_i <v_i(0)·v_i(τ)> for τ < max_lag, averaged over time origins (FFT, zero padded to 2T)."""
    nframes = velocities.shape[0]
    nfft = 2 * nframes
    power = np.zeros(nfft // 2 + 1)
    for start in range(0, velocities.shape[1], chunk):
        spectrum = np.fft.rfft(velocities[:, start:start + chunk], n=nfft, axis=0)
        power += np.einsum("fij,i->f", np.abs(spectrum) ** 2, masses[start:start + chunk])
    acf = np.fft.irfft(power, n=nfft)[:max_lag]
    return acf / (nframes - np.arange(max_lag))


def vdos_from_velocities(velocities: np.ndarray, masses: np.ndarray, labels: np.ndarray, frame_interval_fs: float,
                         *, max_lag_fs: float | None = 5000.0, window: str = "hann", padding: int = 4,
                         removed_dof: float = 3.0, tolerance_fraction: float = EQUIPARTITION_FRACTION,
                         tolerance_K: float = EQUIPARTITION_KELVIN) -> VDOSResult:
    """Total and partial VDOS from a velocity array, with the equipartition check of its types.

    Parameters
    ----------
    velocities : (nframes, natoms, 3) array
        Velocities in ASE units (Å per ASE time unit, as ``Atoms.get_velocities()``) at equally spaced
        times. The spectra do not depend on the unit; the kinetic temperatures do.
    masses : (natoms,) array
        Atomic masses in amu.
    labels : (natoms,) array of str
        Atom type (or element) of each atom; one partial VDOS per distinct label.
    frame_interval_fs : float
        Time between frames in fs.
    max_lag_fs : float or None
        Longest correlation time used (sets the resolution, about 2/max_lag for the Hann window);
        capped at half the trajectory, which is also the value for None.
    window : {"hann", "blackman", "none"}
        Lag window damping the correlation function to zero at the maximum lag.
    padding : int
        Zero padding factor of the transformed correlation function (interpolates the spectrum).
    removed_dof : float
        Degrees of freedom removed from ``3N`` (3 for a fixed centre of mass, plus fixed atoms...).
    tolerance_fraction, tolerance_K : float
        A type is out of equipartition when its mean kinetic temperature differs from the system's by
        more than ``tolerance_fraction`` times the system's temperature and by more than ``tolerance_K``;
        such types are listed in :attr:`VDOSResult.out_of_equipartition` and logged as a warning.

    Returns
    -------
    VDOSResult
    """
    velocities = np.asarray(velocities, dtype=float)
    masses = np.asarray(masses, dtype=float)
    labels = np.asarray(labels, dtype=str)
    if velocities.ndim != 3 or velocities.shape[2] != 3:
        raise VDOSError(f"velocities must have shape (nframes, natoms, 3), got {velocities.shape}")
    nframes, natoms, _ = velocities.shape
    if masses.shape != (natoms,) or labels.shape != (natoms,):
        raise VDOSError(f"need one mass and one label per atom ({natoms}), got {masses.shape} and {labels.shape}")
    if nframes < 8:
        raise VDOSError(f"a VDOS needs at least 8 frames, got {nframes}")
    if frame_interval_fs <= 0 or padding < 1:
        raise VDOSError(f"need frame interval > 0 and padding >= 1 (got {frame_interval_fs} fs, {padding})")
    if not 0 <= removed_dof < 3 * natoms:
        raise VDOSError(f"removed degrees of freedom {removed_dof} must be in [0, 3N = {3 * natoms})")
    if tolerance_fraction < 0 or tolerance_K < 0:
        raise VDOSError(f"equipartition tolerances must be >= 0 (got {tolerance_fraction}, {tolerance_K} K)")
    max_lag = nframes // 2
    if max_lag_fs is not None:
        max_lag = max(2, min(max_lag, int(round(max_lag_fs / frame_interval_fs))))
    weights = _lag_window(window, max_lag)
    nfft = 2 * max_lag * padding
    dt = frame_interval_fs
    frequency_cm1 = np.fft.rfftfreq(nfft, d=dt) * 1000.0 * THZ_TO_CM1

    spectra = {}
    for label in dict.fromkeys(labels.tolist()):
        members = labels == label
        acf = _autocorrelation(velocities[:, members], masses[members], max_lag) * weights
        symmetric = np.zeros(nfft)
        symmetric[:max_lag] = acf
        symmetric[nfft - max_lag + 1:] = acf[1:][::-1]
        spectra[label] = np.fft.rfft(symmetric).real
    total = np.sum(list(spectra.values()), axis=0)
    dof = 3.0 * natoms - removed_dof
    scale = dof / np.trapezoid(total, frequency_cm1)
    counts = {t: int(np.sum(labels == t)) for t in spectra}
    kinetic = np.einsum("fij,i->", velocities ** 2, masses) / nframes  # <Σ m v²> in eV
    temperature = float(kinetic / (dof * kB))
    type_temperatures = {t: float(np.einsum("fij,i->", velocities[:, labels == t] ** 2, masses[labels == t])
                                  / nframes / (3.0 * counts[t] * dof / (3.0 * natoms) * kB)) for t in spectra}
    tolerance = max(tolerance_fraction * temperature, tolerance_K)
    out = [t for t, value in type_temperatures.items() if abs(value - temperature) > tolerance]
    if out:
        log.warning("out of equipartition: %s against %.0f K for the whole system (tolerance %.0f K); the run "
                    "was not thermalised (relax the start, equilibrate longer) and the partial VDOS integrals "
                    "are not 3 N per type", ", ".join(f"{t} {type_temperatures[t]:.0f} K" for t in out),
                    temperature, tolerance)
    settings = {"frame_interval_fs": dt, "max_lag_fs": max_lag * dt, "window": window, "padding": padding,
                "nframes": nframes, "resolution_cm1": float(1000.0 * THZ_TO_CM1 / (max_lag * dt)),
                "equipartition_tolerance": {"fraction": tolerance_fraction, "kelvin": tolerance_K}}
    return VDOSResult(frequency_cm1, total * scale, {t: s * scale for t, s in spectra.items()}, dof, counts,
                      temperature, type_temperatures, out, settings)


def frame_interval_of(frames: list[Atoms]) -> float:
    """Time between frames in fs from their ``info["time_fs"]`` (as written by :func:`mofsnap.md.run_md`).

    Raises
    ------
    VDOSError
        If the frames carry no times or are not equally spaced.
    """
    if not all("time_fs" in f.info for f in frames):
        raise VDOSError("the frames carry no 'time_fs'; give the frame interval explicitly")
    steps = np.diff([float(f.info["time_fs"]) for f in frames])
    if steps.size == 0 or steps[0] <= 0 or not np.allclose(steps, steps[0], rtol=1e-6):
        raise VDOSError("the frames are not equally spaced in time; give a trajectory with a fixed frame interval")
    return float(steps[0])


def atom_labels(atoms: Atoms, by_element: bool = False) -> np.ndarray:
    """Labels of the partial spectra of ``atoms``.

    ``arrays["atom_types"]`` if present, else types assigned by :func:`mofsnap.atomtypes.assign_atom_types`;
    the chemical symbols when ``by_element`` or when the structure cannot be typed (isolated atoms, unknown
    elements...), the latter with a logged warning.
    """
    if by_element:
        return np.array(atoms.get_chemical_symbols())
    if "atom_types" in atoms.arrays:
        return atoms.arrays["atom_types"].astype(str)
    try:
        return np.asarray(assign_atom_types(atoms.copy()), dtype=str)
    except AtomTypingError as error:
        log.warning("no atom types in the frames and they cannot be assigned (%s): partial spectra per element",
                    error)
        return np.array(atoms.get_chemical_symbols())


def _removed_dof(frames: list[Atoms], velocities: np.ndarray, masses: np.ndarray) -> float:
    """3 when the centre of mass does not move (thermostats with fixed COM, NVE), plus constrained ones."""
    momentum = np.einsum("fij,i->fj", velocities, masses)
    kinetic = np.einsum("fij,i->f", velocities ** 2, masses)
    com_kinetic = np.sum(momentum ** 2, axis=1) / masses.sum()
    fixed_com = bool(np.all(com_kinetic <= 1e-10 * kinetic))
    constrained = sum(c.get_removed_dof(frames[0]) for c in frames[0].constraints)
    return 3.0 * fixed_com + constrained


def compute_vdos(frames: list[Atoms], *, frame_interval_fs: float | None = None, skip: int = 0,
                 max_lag_fs: float | None = 5000.0, window: str = "hann", padding: int = 4,
                 by_element: bool = False, removed_dof: float | None = None,
                 tolerance_fraction: float = EQUIPARTITION_FRACTION,
                 tolerance_K: float = EQUIPARTITION_KELVIN) -> VDOSResult:
    """Total and partial VDOS of a trajectory with velocities, with the equipartition check of its types.

    Parameters
    ----------
    frames : list of Atoms
        Equally spaced frames with momenta (extxyz ``momenta``/``velocities`` or ``.traj``), e.g. from
        :func:`mofsnap.md.read_trajectory`.
    frame_interval_fs : float, optional
        Time between frames; read from ``info["time_fs"]`` when None.
    skip : int
        Frames dropped from the start (equilibration).
    max_lag_fs, window, padding
        See :func:`vdos_from_velocities`.
    by_element : bool
        Partial VDOS per element instead of per atom type. Otherwise types come from
        ``arrays["atom_types"]`` or are assigned on the fly.
    removed_dof : float, optional
        Degrees of freedom removed from 3N; None detects a fixed centre of mass (3) and ASE constraints.
    tolerance_fraction, tolerance_K : float
        Equipartition tolerance, see :func:`vdos_from_velocities`.

    Returns
    -------
    VDOSResult
    """
    frames = frames[skip:]
    if len(frames) < 8:
        raise VDOSError(f"a VDOS needs at least 8 frames after skipping {skip}, got {len(frames)}")
    if any(not f.has("momenta") for f in frames):
        raise VDOSError("the trajectory has no velocities (extxyz momenta/velocities column or .traj momenta)")
    dt = frame_interval_of(frames) if frame_interval_fs is None else frame_interval_fs
    velocities = np.stack([f.get_velocities() for f in frames])
    masses = frames[0].get_masses()
    if removed_dof is None:
        removed_dof = _removed_dof(frames, velocities, masses)
    return vdos_from_velocities(velocities, masses, atom_labels(frames[0], by_element), dt, max_lag_fs=max_lag_fs,
                                window=window, padding=padding, removed_dof=removed_dof,
                                tolerance_fraction=tolerance_fraction, tolerance_K=tolerance_K)


def run_vdos_protocol(atoms: Atoms, calculator: Calculator, directory: str | Path, *, temperature_K: float = 300.0,
                      pressure_MPa: float = ATMOSPHERE_MPA, npt_ps: float = 1.0, nve_ps: float = 500.0,
                      timestep_fs: float = 1.0, frame_interval_fs: float = 2.0, seed: int = 0,
                      progress: bool = True, relax: bool = True, relax_fmax: float = RELAX_FMAX,
                      engine: str = "ase", ranks: int = 1, **md_options) -> list[Atoms]:
    """Reference VDOS protocol: relaxation, NPT equilibration, then NVE with positions and velocities saved
    regularly.

    Writes ``DIR/relaxed.extxyz`` (:func:`mofsnap.analysis.runs.relax_start`), ``DIR/equilibration.extxyz``
    (NPT) and ``DIR/nve.extxyz`` (positions, momenta, cell, types). Every stage resumes when the protocol is
    restarted; finished stages are skipped.

    Parameters
    ----------
    atoms : Atoms
        Starting structure (with ``atom_types``); not changed.
    calculator : Calculator
        Any ASE calculator with energies, forces and stress (e.g. ``SNAPCalculator``; that one for
        ``engine="lammps"``).
    directory : path
        Where the trajectories go.
    temperature_K, pressure_MPa : float
        NPT conditions; the NVE run starts from the final NPT state.
    npt_ps, nve_ps : float
        Lengths of the equilibration and of the NVE production.
    timestep_fs, frame_interval_fs : float
        MD time step and time between saved NVE frames (a multiple of the time step).
    seed : int
        Seed of the initial velocities.
    progress : bool
        Progress bars.
    relax : bool
        Relax positions and cell first (False: start from ``atoms`` as given).
    relax_fmax : float
        Convergence of that relaxation in eV/Å.
    engine : {"ase", "lammps"}
        :func:`mofsnap.md.run_md` or native LAMMPS (:func:`mofsnap.md.native.run_native`).
    ranks : int
        MPI ranks of the native runs.
    **md_options
        Further MD options of the NPT run (``cell``, ``tdamp_fs``, ``pdamp_fs``, ``chain``).

    Returns
    -------
    list of Atoms
        The NVE frames, ready for :func:`compute_vdos`.
    """
    _frame_steps(frame_interval_fs, timestep_fs)  # refuse a bad interval before any MD
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if relax:
        atoms = relax_start(atoms, calculator, out, fmax=relax_fmax, pressure_MPa=pressure_MPa,
                            cell=md_options.get("cell", "angles-fixed"))
    npt = MDRun(atoms, int(round(npt_ps * 1000 / timestep_fs)), out / EQUILIBRATION,
                dict(ensemble="npt", temperature_K=temperature_K, pressure_MPa=pressure_MPa, timestep_fs=timestep_fs,
                     seed=seed, interval=max(1, int(round(100 / timestep_fs))), **md_options))
    run_one(npt, calculator, engine, ranks, progress)
    nve = _production(out, out, nve_ps, timestep_fs, frame_interval_fs)
    run_one(nve, calculator, engine, ranks, progress)
    return read_trajectory(nve.trajectory)


def run_posterior_vdos(calculator: Calculator, directory: str | Path, samples: int, samples_seed: int = 0, *,
                       nve_ps: float, timestep_fs: float, frame_interval_fs: float, engine: str = "ase",
                       ranks: int = 1, executor: Executor | None = None, progress: bool = True) -> list[Path]:
    """The NVE production of :func:`run_vdos_protocol` again with each of ``samples`` models drawn from the
    posterior of the calculator's model, into ``directory/posterior/sample{k}/nve.extxyz`` (module docstring).

    Every sample starts from the same equilibrated state as the model's own production (the last frame of
    ``directory/equilibration.extxyz``: positions, velocities, cell) and integrates the same NVE protocol, so
    the samples differ from the model only by their coefficients. The runs are independent: with an
    ``executor`` they run concurrently; a finished run is not run again and an unfinished one resumes. Cost:
    ``samples`` more NVE productions.

    Parameters
    ----------
    calculator : Calculator
        The ``SNAPCalculator`` of the protocol, of a model with its ``<prefix>.snapfit.npz``.
    directory : path
        The directory of :func:`run_vdos_protocol` (its equilibration must exist).
    samples, samples_seed : int
        Number of posterior models (at least 2) and the seed of their draw.
    nve_ps, timestep_fs, frame_interval_fs : float
        The production of the protocol (give the values of the model's own run).
    engine : {"ase", "lammps"}
        :func:`mofsnap.md.run_md` or native LAMMPS.
    ranks : int
        MPI ranks of each native run.
    executor : Executor, optional
        Runs the sample runs (e.g. from :func:`mofsnap.executors.open_executor`); None runs them one after
        another in this process.
    progress : bool
        Progress bars.

    Returns
    -------
    list of Path
        The NVE trajectory of each sample, ready for :func:`compute_vdos`.

    Raises
    ------
    FitError
        The calculator's model has no posterior (no SNAP model or no ``.snapfit.npz``), or ``samples < 2``.
    VDOSError
        No equilibration in ``directory``, or a frame interval that is no multiple of the time step.
    """
    out = Path(directory)
    models = posterior_calculators(calculator, samples, samples_seed)
    runs = [_production(out, out / "posterior" / f"sample{k}", nve_ps, timestep_fs, frame_interval_fs)
            for k in range(samples)]
    run_all(runs, models, engine=engine, ranks=ranks, executor=executor, progress=progress)
    return [run.trajectory for run in runs]


def _production(protocol: Path, directory: Path, nve_ps: float, timestep_fs: float,
                frame_interval_fs: float) -> MDRun:
    """The NVE production into ``directory/nve.extxyz`` from the last frame of ``protocol/equilibration.extxyz``
    (positions, velocities and cell of the equilibrated state; no new velocities)."""
    equilibration = protocol / EQUILIBRATION
    if not equilibration.is_file():
        raise VDOSError(f"{equilibration} does not exist: run the VDOS protocol (run_vdos_protocol, mofsnap vdos "
                        f"--run) into {protocol} first")
    start = read_trajectory(equilibration, index=-1)[0]
    start.info.clear()
    return MDRun(start, int(round(nve_ps * 1000 / timestep_fs)), directory / PRODUCTION,
                 dict(ensemble="nve", timestep_fs=timestep_fs, thermalize=False,
                      interval=_frame_steps(frame_interval_fs, timestep_fs)), frame_results=False)


def _frame_steps(frame_interval_fs: float, timestep_fs: float) -> int:
    """MD steps between saved frames; a :class:`VDOSError` unless the interval is a multiple of the time step."""
    interval = int(round(frame_interval_fs / timestep_fs))
    if interval < 1 or not np.isclose(interval * timestep_fs, frame_interval_fs):
        raise VDOSError(f"frame interval {frame_interval_fs} fs must be a multiple of the time step {timestep_fs} fs")
    return interval


def plot_vdos(result: VDOSResult, png: str | Path, bands: list[tuple[float, float]] | None = None,
              peaks: list[dict] | None = None) -> Path:
    """Total VDOS and partial VDOS per type against frequency (cm⁻¹ below, THz above), up to the highest mode;
    with ``peaks`` of :func:`vdos_peak_spread`, the peaks of the total at their posterior mean ± model spread."""
    top = result.frequency_cm1[np.flatnonzero(result.total > 1e-3 * result.total.max())[-1]]
    markers = [(peak["posterior_mean_cm1"], peak["height"], peak["model_spread_cm1"])
               for entry in peaks or [] if entry["type"] == "total" for peak in entry["peaks"]
               if peak["model_spread_cm1"] is not None]
    return plotting.spectrum_figure(result.frequency_cm1, result.total, result.partial, "VDOS (states / cm$^{-1}$)",
                                    png, bands, xmax=min(result.frequency_cm1[-1], 1.1 * top),
                                    peaks=markers or None)


if __name__ == "__main__":
    from mofsnap.cli import run_as_module

    run_as_module("vdos")
