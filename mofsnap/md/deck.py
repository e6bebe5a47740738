"""A self-contained LAMMPS deck of a SNAP model, a structure and an MD protocol.

:func:`write_deck` writes a directory that LAMMPS runs as it is, here or on a cluster:

================== =========================================================================================
``in.lammps``      the run from the start: read the data file, set the potential, integrate, dump, restart
``in.resume.lammps`` the same run continued from the newest ``restart.<step>.bin`` (``read_restart restart.*.bin``)
``structure.data`` cell, atoms with their LAMMPS type, image flags and (seeded) velocities, masses per type
``model.snapcoeff``, ``model.snapparam``  the SNAP model
``deck.json``      what :mod:`mofsnap.md.native` needs to turn the output back into ASE frames
================== =========================================================================================

The run writes ``log.lammps`` (thermo every ``interval`` steps: energy, temperature, cell, virial),
``frames.lammpstrj`` (ids, types, unwrapped positions, velocities and forces every ``interval`` steps) and
``restart.<step>.bin`` every ``restart_interval`` steps and at the end.

The potential is set by :func:`mofsnap.calculator.pair_commands`, the function
:class:`mofsnap.SNAPCalculator` uses, so both engines run the same
``pair_style hybrid/overlay snap dispersion/d3 zbl`` with every ZBL pair explicit.

The protocol is the one of :func:`mofsnap.md.run_md` (:class:`Protocol`, defaults read from its signature):
Nose-Hoover chains (``fix nvt``/``fix npt`` with ``tchain``/``pchain``), ``fix langevin`` + ``fix nve``, or
``fix nve``. NPT with ``cell="angles-fixed"`` barostats x, y and z independently (``couple none``) with the tilt
factors scaled along (``scalexy/scalexz/scaleyz yes``): every LAMMPS cell vector then keeps its direction, so
the angles stay fixed for any cell (for a triclinic cell the driving stresses are the Cartesian ``xx yy zz`` of
the LAMMPS frame, not the stresses along the cell vectors). ``isotropic`` scales the whole cell (``iso``),
``full`` barostats all six components (``tri``).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.data import atomic_masses, atomic_numbers
from ase.md.velocitydistribution import Stationary, thermalize_momenta

from .._lammps import Box
from ..calculator import SKIN, SNAPCalculator, pair_commands
from ..exceptions import MDError
from ..model import SNAPModel
from ..units import LAMMPS_EV_PER_A3_IN_BAR, LAMMPS_METAL_TIME_IN_FS, mpa_to_ev_per_a3
from .driver import CELL_MODES, ENSEMBLES, run_md


DECK = "in.lammps"
RESUME_DECK = "in.resume.lammps"
DATA = "structure.data"
MODEL_PREFIX = "model"
LOG = "log.lammps"
FRAMES = "frames.lammpstrj"
#: Restart files: LAMMPS puts the step in place of ``*`` (and ``read_restart`` takes the newest).
RESTART = "restart.*.bin"
SETTINGS = "deck.json"
#: Version of ``deck.json``.
SETTINGS_VERSION = 1
#: Thermo columns of the deck (``c_virial[1..6]``: virial pressure ``xx yy zz xy xz yz`` in bar).
THERMO = ("step", "time", "temp", "pe", "ke", "etotal", "press", "vol", "lx", "ly", "lz", "xy", "xz", "yz",
          *(f"c_virial[{k}]" for k in range(1, 7)))
#: Per-atom columns of the frame dumps.
DUMP = ("id", "type", "xu", "yu", "zu", "vx", "vy", "vz", "fx", "fy", "fz")


def _run_md_default(name: str):
    return inspect.signature(run_md).parameters[name].default


@dataclass(frozen=True)
class Protocol:
    """The MD protocol of a deck: the arguments of :func:`mofsnap.md.run_md`, with its defaults."""

    temperature_K: float = _run_md_default("temperature_K")
    ensemble: str = _run_md_default("ensemble")
    pressure_MPa: float = _run_md_default("pressure_MPa")
    cell: str = _run_md_default("cell")
    timestep_fs: float = _run_md_default("timestep_fs")
    tdamp_fs: float = _run_md_default("tdamp_fs")
    pdamp_fs: float = _run_md_default("pdamp_fs")
    chain: int = _run_md_default("chain")
    friction_per_fs: float = _run_md_default("friction_per_fs")
    seed: int = _run_md_default("seed")
    thermalize: bool = _run_md_default("thermalize")
    interval: int = _run_md_default("interval")

    def __post_init__(self) -> None:
        if self.ensemble not in ENSEMBLES:
            raise MDError(f"unknown ensemble {self.ensemble!r}; choose one of {', '.join(ENSEMBLES)}")
        if self.cell not in CELL_MODES:
            raise MDError(f"unknown NPT cell mode {self.cell!r}; choose one of {', '.join(CELL_MODES)}")
        if min(self.timestep_fs, self.tdamp_fs, self.pdamp_fs, self.friction_per_fs) <= 0 or self.chain < 1 \
                or self.interval < 1 or self.temperature_K < 0:
            raise MDError("need time step, damping times and friction > 0, chain >= 1, interval >= 1 and T >= 0")

    def fixes(self) -> list[str]:
        """The integrator (and thermostat/barostat) commands of this protocol."""
        to_time = 1.0 / LAMMPS_METAL_TIME_IN_FS
        t, tdamp = self.temperature_K, self.tdamp_fs * to_time
        thermostat = f"temp {t!r} {t!r} {tdamp!r} tchain {self.chain}"
        if self.ensemble == "nve":
            return ["fix integrate all nve"]
        if self.ensemble == "langevin":
            damp = 1.0 / self.friction_per_fs * to_time
            return ["fix integrate all nve", f"fix thermostat all langevin {t!r} {t!r} {damp!r} {self.seed + 1}"]
        if self.ensemble == "nvt":
            return [f"fix integrate all nvt {thermostat}"]
        bar = mpa_to_ev_per_a3(self.pressure_MPa) * LAMMPS_EV_PER_A3_IN_BAR
        target = f"{bar!r} {bar!r} {self.pdamp_fs * to_time!r}"
        barostat = {"angles-fixed": f"x {target} y {target} z {target} couple none scalexy yes scalexz yes "
                                    f"scaleyz yes",
                    "isotropic": f"iso {target} scalexy yes scalexz yes scaleyz yes",
                    "full": f"tri {target}"}[self.cell]
        return [f"fix integrate all npt {thermostat} {barostat} pchain {self.chain}"]


@dataclass(frozen=True)
class Deck:
    """The files of a written deck (see the module docstring)."""

    directory: Path

    @property
    def deck(self) -> Path:
        return self.directory / DECK

    @property
    def resume_deck(self) -> Path:
        return self.directory / RESUME_DECK

    @property
    def log(self) -> Path:
        return self.directory / LOG

    @property
    def frames(self) -> Path:
        return self.directory / FRAMES

    def restarts(self) -> dict[int, Path]:
        """The restart files by step, oldest first."""
        found = {int(p.name.split(".")[1]): p for p in self.directory.glob(RESTART)}
        return dict(sorted(found.items()))

    def settings(self) -> dict:
        """The contents of ``deck.json`` (types, elements, masses, frame rotation, protocol, steps)."""
        path = self.directory / SETTINGS
        if not path.is_file():
            raise MDError(f"{self.directory} holds no {SETTINGS}: not a deck written by mofsnap")
        settings = json.loads(path.read_text())
        if settings.get("version") != SETTINGS_VERSION:
            raise MDError(f"{path}: version {settings.get('version')}, this mofsnap reads {SETTINGS_VERSION}")
        return settings


def model_types(atoms: Atoms, model: SNAPModel) -> np.ndarray:
    """0-based model type index of each atom.

    Raises
    ------
    MDError
        Missing atom types, types unknown to the model or not of the atom's element, a non-periodic cell.
    """
    if not atoms.pbc.all():
        raise MDError("a LAMMPS deck needs a cell periodic in all three directions")
    if "atom_types" not in atoms.arrays:
        raise MDError("the Atoms have no atom types: call mofsnap.assign_atom_types(atoms) first")
    labels = [str(t) for t in atoms.arrays["atom_types"]]
    unknown = sorted(set(labels) - set(model.types))
    if unknown:
        raise MDError(f"atom types {unknown} are not in the model (model types: {model.types})")
    types = np.array([model.types.index(t) for t in labels], dtype=int)
    numbers = np.array([atomic_numbers[e] for e in model.elements])[types]
    wrong = np.flatnonzero(numbers != atoms.numbers)
    if wrong.size:
        raise MDError(f"atom type {labels[wrong[0]]} does not match element number {atoms.numbers[wrong[0]]} "
                      f"(atom {wrong[0]})")
    return types


def _type_masses(atoms: Atoms, types: np.ndarray, model: SNAPModel) -> list[float]:
    """Mass of each model type: that of its atoms (one mass per type), or the element's for absent types."""
    masses = atoms.get_masses()
    result = []
    for k, element in enumerate(model.elements):
        of_type = np.unique(masses[types == k])
        if len(of_type) > 1:
            raise MDError(f"atoms of type {model.types[k]} have different masses {of_type.tolist()}; LAMMPS "
                          f"gives a mass per type")
        result.append(float(of_type[0]) if len(of_type) else float(atomic_masses[atomic_numbers[element]]))
    return result


def _data_file(atoms: Atoms, types: np.ndarray, masses: list[float], box: Box, velocities: np.ndarray) -> str:
    xhi, yhi, zhi, xy, xz, yz = box.prism.split()
    positions = box.to_lammps(atoms.positions)
    frac = np.linalg.solve(box.lower.T, positions.T).T
    images = np.floor(frac).astype(int)
    wrapped = (frac - images) @ box.lower
    lines = [f"mofsnap deck: {atoms.get_chemical_formula()}", "", f"{len(atoms)} atoms",
             f"{len(masses)} atom types", "", f"0 {xhi} xlo xhi", f"0 {yhi} ylo yhi", f"0 {zhi} zlo zhi",
             f"{xy} {xz} {yz} xy xz yz", "", "Masses", ""]
    lines += [f"{k} {m!r}" for k, m in enumerate(masses, start=1)]
    lines += ["", "Atoms # atomic", ""]
    lines += [f"{i} {t + 1} {x:.17g} {y:.17g} {z:.17g} {a} {b} {c}"
              for i, (t, (x, y, z), (a, b, c)) in enumerate(zip(types, wrapped, images), start=1)]
    lines += ["", "Velocities", ""]
    lines += [f"{i} {x:.17g} {y:.17g} {z:.17g}" for i, (x, y, z) in enumerate(velocities, start=1)]
    return "\n".join(lines) + "\n"


def _deck_text(start: list[str], common: list[str], run: str, steps: int, interval: int, comment: str) -> str:
    end = [f"write_dump all custom {FRAMES} {' '.join(DUMP)} modify sort id append yes format float %.17g"
           ] if steps % interval else []
    return "\n".join([comment, f"log {LOG} append", *start, *common, run, *end,
                      f"write_restart {RESTART}"]) + "\n"


def write_deck(directory: str | Path, atoms: Atoms, calculator: SNAPCalculator, steps: int,
               protocol: Protocol = Protocol(), restart_interval: int = 1000) -> Deck:
    """Write the deck of ``steps`` MD steps of ``atoms`` with ``calculator``'s potential (module docstring).

    Parameters
    ----------
    directory : path
        Created if needed; existing deck files are overwritten (output files are not touched).
    atoms : Atoms
        Start: positions, cell, ``atom_types`` and (with ``protocol.thermalize=False``) momenta.
    calculator : SNAPCalculator
        Model, D3 and ZBL settings.
    steps : int
        Total steps; ``in.resume.lammps`` runs ``upto`` this step.
    protocol : Protocol
        Ensemble, thermostat and barostat settings, seed and frame interval. With ``thermalize`` the
        velocities are those :func:`~mofsnap.md.run_md` draws for the same seed.
    restart_interval : int
        Steps between restart files.

    Raises
    ------
    MDError
        Bad steps or intervals, a non-periodic cell, atom types missing, unknown to the model or not matching
        their elements, types without one mass.
    """
    if steps < 0 or restart_interval < 1:
        raise MDError(f"need steps >= 0 and restart_interval >= 1 (got {steps}, {restart_interval})")
    types = model_types(atoms, calculator.model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = calculator.model
    files = [p.name for p in model.write(directory / MODEL_PREFIX)]
    start = atoms.copy()
    if protocol.thermalize:
        thermalize_momenta(start, protocol.temperature_K, rng=np.random.default_rng(protocol.seed))
        Stationary(start)
    box = Box(atoms.cell.array)
    masses = _type_masses(atoms, types, model)
    velocities = box.to_lammps(start.get_velocities()) * (units.fs * LAMMPS_METAL_TIME_IN_FS)  # Å/ps
    (directory / DATA).write_text(_data_file(atoms, types, masses, box, velocities))

    interval = protocol.interval
    common = [f"neighbor {SKIN} bin",
              *pair_commands(model, files, snap=calculator.snap, d3=calculator.d3, zbl=calculator.zbl,
                             natoms=len(atoms), volume=atoms.get_volume()),
              f"timestep {protocol.timestep_fs / LAMMPS_METAL_TIME_IN_FS!r}",
              *protocol.fixes(),
              "compute virial all pressure NULL virial",
              f"thermo_style custom {' '.join(THERMO)}",
              "thermo_modify norm no flush yes format float %.17g",
              f"thermo {interval}",
              f"dump frames all custom {interval} {FRAMES} {' '.join(DUMP)}",
              "dump_modify frames sort id append yes format float %.17g",
              f"restart {restart_interval} {RESTART}"]
    system = ["units metal", "atom_style atomic", "boundary p p p"]
    head = (f"# mofsnap MD deck: {atoms.get_chemical_formula()} ({len(atoms)} atoms), {protocol.ensemble} "
            f"{protocol.temperature_K:g} K, {steps} steps of {protocol.timestep_fs:g} fs\n"
            f"# run: mpirun -np N lmp -in {{}} -log none -screen none")
    (directory / DECK).write_text(_deck_text([*system, f"read_data {DATA}"], common, f"run {steps}", steps,
                                             interval, head.format(DECK)))
    (directory / RESUME_DECK).write_text(_deck_text([*system, f"read_restart {RESTART}"], common,
                                                    f"run {steps} upto", steps, interval,
                                                    head.format(RESUME_DECK)))
    settings = {"version": SETTINGS_VERSION, "steps": steps, "natoms": len(atoms), "types": model.types,
                "elements": model.elements, "masses": masses, "rotation": box.rotation.tolist(),
                "protocol": asdict(protocol), "restart_interval": restart_interval}
    (directory / SETTINGS).write_text(json.dumps(settings, indent=1))
    return Deck(directory)


