"""The exact state of an MD run beside its trajectory, so a killed and resumed run equals an uninterrupted one.

A trajectory frame holds positions and momenta rounded to its text format and nothing of the thermostat or
barostat. :class:`MDCheckpoint` holds, bit for bit, the positions, momenta and cell, the step, the guard's stop
reason, and the integrator's own variables: for ASE 3.29's Nose-Hoover-chain family the chain positions and
momenta of the thermostat (``_eta``, ``_p_eta``) and barostat (``_xi``, ``_p_xi``), the integrator's copies of
positions and momenta (``_q``, ``_p``) and its cell variables (``_h``, ``_p_g`` of ``MTKNPT``; ``_p_c``,
``_h0_basis`` of ``MaskedMTKNPT``; ``_eps``, ``_p_eps``, ``_volume0``, ``_cell0`` of ``IsotropicMTKNPT``), and
for ``Langevin`` the state of its random generator. They are ASE's private attributes: :func:`integrator_state`
names them in one table and :func:`restore_integrator` refuses an integrator that lacks one. A guard or observer
that remembers earlier steps (e.g. how long a bond has been stretched) keeps its memory there too: it offers
``state() -> dict of arrays`` and ``restore(state)``.

The file is ``<trajectory>.checkpoint.npz`` (:func:`checkpoint_path`), a versioned NPZ replaced atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from ..exceptions import MDError
from ..results import read_arrays, write_arrays

#: Kind and format version of the checkpoint file.
CHECKPOINT_KIND, CHECKPOINT_VERSION = "md-checkpoint", 1

#: Private state variables of ASE's integrators, by owner: the integrator itself, its thermostat, its barostat.
STATE_ATTRIBUTES = {
    "": ("_q", "_p", "_h", "_p_g", "_p_c", "_h0_basis", "_eps", "_p_eps", "_volume0", "_cell0"),
    "_thermostat": ("_eta", "_p_eta"),
    "_barostat": ("_xi", "_p_xi"),
}


def monitor_states(monitors: list) -> dict[str, np.ndarray]:
    """The memory of the monitors (guards, observers) that have one, keyed ``"<index>:<name>"`` by their place
    in ``monitors``."""
    return {f"{index}:{name}": np.asarray(value) for index, monitor in enumerate(monitors)
            if hasattr(monitor, "state") for name, value in monitor.state().items()}


def restore_monitors(monitors: list, states: dict[str, np.ndarray]) -> None:
    """Give each monitor with a memory its part of ``states`` (:func:`monitor_states` of the same monitors)."""
    for index, monitor in enumerate(monitors):
        if hasattr(monitor, "restore"):
            monitor.restore({key.split(":", 1)[1]: value for key, value in states.items()
                             if key.split(":", 1)[0] == str(index)})


def checkpoint_path(trajectory: str | Path) -> Path:
    """The checkpoint file of a trajectory: ``<trajectory>.checkpoint.npz``."""
    trajectory = Path(trajectory)
    return trajectory.with_name(trajectory.name + ".checkpoint.npz")


def _plain_attribute(owner: object, name: str) -> bool:
    """Whether ``name`` is an instance variable of ``owner`` (not a computed property)."""
    return name in vars(owner)


def integrator_state(dynamics: object) -> dict[str, np.ndarray]:
    """The integrator's state variables as arrays, keyed ``owner.name`` (see :data:`STATE_ATTRIBUTES`)."""
    state = {}
    for owner_name, names in STATE_ATTRIBUTES.items():
        owner = getattr(dynamics, owner_name, None) if owner_name else dynamics
        for name in names if owner is not None else ():
            if _plain_attribute(owner, name):
                state[f"{owner_name}.{name}"] = np.array(getattr(owner, name), dtype=float)
    rng = getattr(dynamics, "rng", None)
    if isinstance(rng, np.random.Generator):
        state["rng"] = np.array(json.dumps(rng.bit_generator.state))
    return state


def restore_integrator(dynamics: object, state: dict[str, np.ndarray]) -> None:
    """Put the variables of :func:`integrator_state` back into a freshly built integrator of the same class.

    Raises
    ------
    MDError
        The integrator lacks one of the variables (another ASE version or another integrator).
    """
    for key, value in state.items():
        if key == "rng":
            dynamics.rng.bit_generator.state = json.loads(str(value))
            continue
        owner_name, name = key.split(".")
        owner = getattr(dynamics, owner_name, None) if owner_name else dynamics
        if owner is None or not _plain_attribute(owner, name):
            raise MDError(f"cannot restore the MD state: {type(dynamics).__name__} has no {key!r} (another ASE "
                          "version?); resume without the checkpoint by removing it")
        setattr(owner, name, float(value) if value.ndim == 0 else value.copy())


@dataclass
class MDCheckpoint:
    """The exact state of an MD run after ``step`` steps.

    Attributes
    ----------
    step : int
        Steps done.
    positions, momenta, cell : arrays
        The atoms' state, exactly.
    integrator : str
        Class name of the integrator whose variables ``state`` holds.
    state : dict of str to array
        :func:`integrator_state` (empty when the run stopped: a stopped run is not continued).
    stopped : str or None
        The guard's reason when the run stopped.
    monitors : dict of str to array
        The memory of the run's guard and observers that have one (:func:`monitor_states`).
    """

    step: int
    positions: np.ndarray
    momenta: np.ndarray
    cell: np.ndarray
    integrator: str
    state: dict[str, np.ndarray] = field(default_factory=dict)
    stopped: str | None = None
    monitors: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def capture(cls, atoms: Atoms, step: int, dynamics: object, stopped: str | None = None,
                monitors: dict[str, np.ndarray] | None = None) -> MDCheckpoint:
        """The state of ``atoms``, ``dynamics`` and the ``monitors``' memory now (without integrator variables
        when ``stopped``)."""
        return cls(step, atoms.get_positions(), atoms.get_momenta(), atoms.cell.array.copy(), type(dynamics).__name__,
                   {} if stopped else integrator_state(dynamics), stopped, dict(monitors or {}))

    def apply(self, atoms: Atoms) -> None:
        """Set the positions, momenta and cell of ``atoms`` to the checkpoint's, exactly."""
        atoms.set_cell(self.cell, scale_atoms=False)
        atoms.set_positions(self.positions)
        atoms.set_momenta(self.momenta)

    def write(self, path: str | Path) -> Path:
        """Write the checkpoint as a versioned NPZ, replacing any older one atomically."""
        return write_arrays(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, dict(
            step=self.step, positions=self.positions, momenta=self.momenta, cell=self.cell,
            integrator=self.integrator, stopped=self.stopped or "",
            **{f"state:{key}": value for key, value in self.state.items()},
            **{f"monitor:{key}": value for key, value in self.monitors.items()}))

    @classmethod
    def read(cls, path: str | Path) -> MDCheckpoint:
        """The checkpoint written by :meth:`write`, equal to the one written.

        Raises
        ------
        ResultFileError
            Missing, unreadable, of another kind or of another format version.
        """
        arrays = read_arrays(path, CHECKPOINT_KIND, CHECKPOINT_VERSION,
                             "remove it to resume from the trajectory's last frame")
        return cls(int(arrays["step"]), arrays["positions"], arrays["momenta"], arrays["cell"],
                   str(arrays["integrator"]),
                   {key.split(":", 1)[1]: value for key, value in arrays.items() if key.startswith("state:")},
                   str(arrays["stopped"]) or None,
                   {key.split(":", 1)[1]: value for key, value in arrays.items() if key.startswith("monitor:")})
