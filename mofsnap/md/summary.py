"""The outcome of an MD run as a result file (``md.json``): status, length, speed and means over its frames."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..results import read_result, write_result
from .driver import MDResult
from .trajectory import read_trajectory

KIND = "md-summary"
VERSION = 1


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


@dataclass(frozen=True)
class MDSummary:
    """What an MD command reports of its run; written as ``md.json`` whether the run finished or not.

    Attributes
    ----------
    structure : str
        The starting structure's file.
    natoms : int
    ensemble : str
    status : str
        ``"completed"``, ``"stopped"`` (by the guard) or ``"failed"`` (an error ended it).
    steps : int
        Steps in the trajectory (its last frame's ``md_step``).
    new_steps : int or None
        Steps integrated by this call (None when it failed).
    timestep_fs : float
    stopped : str or None
        The guard's reason or the error.
    wall_seconds, ns_per_day : float or None
        Speed of this call (None when undefined).
    mean_temperature_K, mean_volume_A3 : float or None
        Means over the frames (None without frames).
    trajectory : str
    """

    structure: str
    natoms: int
    ensemble: str
    status: str
    steps: int
    new_steps: int | None
    timestep_fs: float
    stopped: str | None
    wall_seconds: float | None
    ns_per_day: float | None
    mean_temperature_K: float | None
    mean_volume_A3: float | None
    trajectory: str

    @classmethod
    def of_run(cls, structure: str, natoms: int, ensemble: str, timestep_fs: float, trajectory: Path,
               result: MDResult | None, failure: str | None) -> MDSummary:
        """The summary of a run from its trajectory and its result (None with ``failure`` when it raised)."""
        frames = read_trajectory(trajectory) if trajectory.exists() and trajectory.stat().st_size else []
        temperatures = [f.info["temperature_K"] for f in frames[1:] or frames]
        stopped = result.stopped if result is not None else failure
        return cls(structure, natoms, ensemble, "failed" if result is None else "stopped" if stopped else "completed",
                   int(frames[-1].info["md_step"]) if frames else 0, None if result is None else result.new_steps,
                   timestep_fs, stopped, None if result is None else result.wall_seconds,
                   None if result is None else _finite_or_none(result.ns_per_day),
                   _finite_or_none(np.mean(temperatures)) if temperatures else None,
                   _finite_or_none(np.mean([f.get_volume() for f in frames])) if frames else None, str(trajectory))

    def write(self, path: str | Path) -> Path:
        """Write the summary (versioned JSON, replaced atomically)."""
        return write_result(path, KIND, VERSION, asdict(self))

    @classmethod
    def read(cls, path: str | Path) -> MDSummary:
        """Read a summary written by :meth:`write`."""
        return cls(**read_result(path, KIND, VERSION))
