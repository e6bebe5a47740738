"""Whose failure: each guard stop of a validation, replayed with the model and with the reference.

When the guard stops a validation run, the question that decides what to do next is whether the reference
itself breaks there. Both replays start from the same state, the run's written frame ``fs_before`` fs before
the stop (positions, momenta, cell), and run ``fs_before`` + :data:`REPLAY_MARGIN_FS` fs of NVE (1 fs steps)
under the validation's guard; NVE leaves out only the thermostat and barostat. The model runs with the MD's
D3 and safety wall, as in the validation. Then:

- the reference stops too: no model fitted to it passes there. The framework as given (a charge or spin
  state, removed ligands), the reference method, or the guard is at fault, not the learning;
- the reference stays intact where the model stops: the failure is the model's, and labels from there (more
  refinement rounds) can mend it;
- neither stops: the stop needs the thermostat's or the barostat's history, and the replay settles nothing.

Each replay also gives the largest bond stretch it reached (length over the topology's reference length).
:meth:`mofsnap.learn.ActiveLearning.replay_stops` replays a campaign's last validation (``mofsnap learn
--replay-stops FS``) and writes ``final/replays.json``. A replay costs ``fs_before + 100`` reference
calculations per stopped run: for a 108-atom lanthanide MOF (GUWDUY) with GFN1-xTB, two stops replayed from
300 fs took about an hour on 2 cores shared with another job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ..md import Guard, run_md
from ..topology import Topology
from .md_tasks import EXPLOSIONS
from .summary import ResultFile, Validation

log = logging.getLogger(__name__)

#: Femtoseconds a replay runs past the time of the stop it replays.
REPLAY_MARGIN_FS = 100
#: Steps between the written frames of a replay (its largest bond stretch is taken over them).
REPLAY_INTERVAL = 5
#: Who replays a stop.
REPLAYERS = ("model", "reference")


@dataclass(frozen=True)
class ReplayOutcome:
    """What one replayer did from the state before a stop.

    Attributes
    ----------
    stopped : str or None
        The guard's reason when it stopped the replay (None: intact to the end).
    fs : int
        Femtoseconds replayed.
    largest_stretch : float
        Largest bond length over the topology's reference length, over the replay's frames.
    """

    stopped: str | None
    fs: int
    largest_stretch: float


@dataclass(frozen=True)
class StopReplay:
    """One validation stop replayed by the model and by the reference.

    Attributes
    ----------
    temperature_K : float
        The validation run's temperature.
    stopped : str
        The validation guard's reason.
    from_ps : float
        The time of the run's frame both replays start from.
    fs : int
        Femtoseconds each replay was asked to run.
    model, reference : ReplayOutcome
        What each did.
    """

    temperature_K: float
    stopped: str
    from_ps: float
    fs: int
    model: ReplayOutcome
    reference: ReplayOutcome

    @property
    def verdict(self) -> str:
        """Whose failure the stop is, in words."""
        if self.reference.stopped is not None:
            return "the reference stops too: the failure is the reference's"
        if self.model.stopped is not None:
            return "the reference stays intact where the model stops: the failure is the model's"
        return "neither stops in the replay: the stop needs the thermostat's or barostat's history"

    def line(self) -> str:
        """The replay in one line: what each replayer did and the verdict."""
        def outcome(who: str) -> str:
            found: ReplayOutcome = getattr(self, who)
            return (f"the {who}: {found.stopped or f'intact for {found.fs} fs'} "
                    f"(largest stretch {found.largest_stretch:.2f})")

        return (f"{self.temperature_K:.0f} K stop replayed from {self.from_ps:.3f} ps (the replays' times count "
                f"from there): {outcome('model')}; {outcome('reference')}: {self.verdict}")

    def to_dict(self) -> dict[str, Any]:
        """The replay as plain data, with its verdict."""
        return {**asdict(self), "verdict": self.verdict}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StopReplay:
        """The replay of :func:`dataclasses.asdict` or :meth:`to_dict`."""
        return cls(data["temperature_K"], data["stopped"], data["from_ps"], data["fs"],
                   *(ReplayOutcome(**data[who]) for who in REPLAYERS))


@dataclass(frozen=True)
class StopReplays(ResultFile):
    """The replays of a validation's stops (``final/replays.json``), from ``fs_before`` fs before each."""

    fs_before: int
    replays: list[StopReplay]

    KIND = "learn-stop-replays"
    VERSION = 1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StopReplays:
        return cls(data["fs_before"], [StopReplay.from_dict(r) for r in data["replays"]])


def replay(start: Atoms, calculator: Calculator, steps: int, temperature_K: float, guard: Guard,
           topology: Topology, trajectory: Path, progress: bool = False) -> ReplayOutcome:
    """``steps`` fs of NVE with ``calculator`` from ``start`` (its positions, momenta and cell) under
    ``guard``, written to ``trajectory`` (resumed when it exists; with a progress bar when ``progress``)."""
    atoms = start.copy()
    atoms.set_momenta(start.get_momenta())
    atoms.calc = calculator
    try:
        stopped = run_md(atoms, steps, temperature_K=temperature_K, ensemble="nve", thermalize=False,
                         trajectory=trajectory, interval=REPLAY_INTERVAL, progress=progress, guard=guard).stopped
    except EXPLOSIONS as exc:  # an exploding model can break LAMMPS
        stopped = f"MD failed: {type(exc).__name__}: {exc}"
    frames = ase.io.read(trajectory, ":")
    positions = np.array([f.positions for f in frames])
    cells = np.array([f.cell.array for f in frames])
    stretch = np.linalg.norm(topology.bond_vectors(positions, cells), axis=-1) / topology.reference_bond_lengths
    return ReplayOutcome(stopped, int(frames[-1].info["md_step"]), float(stretch.max()))


def replay_stops(validation: Validation, directory: Path, calculators: dict[str, Callable[[Atoms], Calculator]],
                 guard: Callable[[float], Guard], topology: Topology, fs_before: int = 100,
                 progress: bool = False) -> list[StopReplay]:
    """Replay every run of ``validation`` that the guard stopped (its trajectories in ``directory``).

    Parameters
    ----------
    validation : Validation
        The validation whose stops are replayed.
    directory : Path
        Its directory; the replays' trajectories are written there
        (``replay_<T>K_<fs_before>fs_<who>.extxyz``) and resumed.
    calculators : dict
        ``"model"`` and ``"reference"``: a new calculator for a configuration.
    guard : callable
        The validation's guard at a temperature (K).
    topology : Topology
        The structure's bonds, for the largest stretch.
    fs_before : int
        How long before each stop the replays start (the latest written frame at or before).
    progress : bool
        Show a progress bar per replay.

    Returns
    -------
    list of StopReplay
        One per stopped run, in the validation's order.
    """
    replays = []
    for run in validation.runs:
        if not run.stopped:
            continue
        frames = ase.io.read(directory / Path(run.trajectory).name, ":")
        stop = int(frames[-1].info["md_step"])
        start = [f for f in frames if int(f.info["md_step"]) <= stop - fs_before] or frames[:1]
        steps = fs_before + REPLAY_MARGIN_FS
        outcomes = {}
        for who in REPLAYERS:
            log.info("replaying the %.0f K stop with the %s (%d fs of NVE)", run.temperature_K, who, steps)
            outcomes[who] = replay(start[-1], calculators[who](start[-1]), steps, run.temperature_K,
                                   guard(run.temperature_K), topology,
                                   directory / f"replay_{run.temperature_K:.0f}K_{fs_before}fs_{who}.extxyz",
                                   progress)
        replays.append(StopReplay(run.temperature_K, run.stopped, int(start[-1].info["md_step"]) / 1e3, steps,
                                  outcomes["model"], outcomes["reference"]))
    return replays
