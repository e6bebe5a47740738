"""The outcome of a fit: errors, settings, the training statistics and the parity data, as a result file."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import plotting
from ..results import read_result, write_result
from ..units import EV_PER_A3_IN_MPA
from .leastsquares import KINDS, OBJECTIVE_SCALES, REPORT_UNITS, NormalEquations, split_rows

#: Kind and format version of the JSON file of a :class:`FitReport`.
REPORT_KIND, REPORT_VERSION = "fit-report", 1


@dataclass
class FitReport:
    """Errors, settings and parity data of a fit.

    ``metrics[set]`` (``set`` = ``"train"``, ``"validation"``) holds ``energy_rmse``/``energy_mae``
    (meV/atom), ``forces_rmse``/``forces_mae`` (meV/Å, force components), ``forces_rmse_by_type`` /
    ``forces_mae_by_type`` (meV/Å), ``stress_rmse``/``stress_mae`` (MPa) and ``n_configurations``.
    ``timings`` holds wall seconds of the ``descriptors`` pass (with accumulation), the ``solve`` (alpha
    selection included) and the ``evaluation`` of the errors. ``parity[set][kind]`` is the pair (reference,
    predicted) of every row of that kind, in ASE units (eV/atom, eV/Å, eV/Å³).
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
        """Descriptor rows of a configuration weighted as the fit weighs them (for ``extrapolation_grade``)."""
        scale = {"energy": self.energy_weight, "forces": 1.0, "stress": self.stress_weight}
        parts = split_rows(rows, np.zeros(len(rows)), natoms)
        return weight * np.vstack([scale[k] * parts[k][0] for k in KINDS])

    def write(self, path: str | Path) -> Path:
        """Write the whole report (statistics and parity data included) as a versioned JSON file.

        Besides the fields, the file states the units of the metrics and the scales of the selection
        objective, for readers other than :meth:`read`.
        """
        return write_result(path, REPORT_KIND, REPORT_VERSION, {
            "alpha": self.alpha, "alpha_selection": self.alpha_selection, "energy_weight": self.energy_weight,
            "stress_weight": self.stress_weight, "reference_subtracted": self.reference,
            "units": {k: unit for k, (unit, _) in REPORT_UNITS.items()},
            "objective_scales": {k: v * REPORT_UNITS[k][1] for k, v in OBJECTIVE_SCALES.items()},
            "metrics": self.metrics, "alpha_scan": [{"alpha": a, "objective": o} for a, o in self.alpha_scan],
            "timings_s": self.timings, "equations": self.equations.to_dict(),
            "parity": {name: {kind: {"reference": ref, "predicted": pred} for kind, (ref, pred) in data.items()}
                       for name, data in self.parity.items()}})

    @classmethod
    def read(cls, path: str | Path) -> FitReport:
        """The report written by :meth:`write`, equal to the one written.

        Raises
        ------
        ResultFileError
            The file is missing or is not a fit report of this format version.
        """
        data: dict[str, Any] = read_result(path, REPORT_KIND, REPORT_VERSION)
        parity = {name: {kind: (np.asarray(pair["reference"], dtype=float), np.asarray(pair["predicted"],
                                                                                         dtype=float))
                         for kind, pair in sets.items()} for name, sets in data["parity"].items()}
        return cls(data["metrics"], data["alpha"], data["energy_weight"], data["stress_weight"],
                   data["alpha_selection"], data["reference_subtracted"],
                   NormalEquations.from_dict(data["equations"]),
                   [(entry["alpha"], entry["objective"]) for entry in data["alpha_scan"]], data["timings_s"],
                   parity)

    def write_csv(self, path: str | Path) -> Path:
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
        return plotting.parity_figure(panels, path, title)
