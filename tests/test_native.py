"""Native LAMMPS MD (mofsnap.md.deck, mofsnap.md.native): agreement with SNAPCalculator and run_md, the deck's
protocol, resuming after a kill, no stray processes, clear failures, the md command with --engine lammps."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from mofsnap.analysis.vdos import compute_vdos
from mofsnap.calculator import D3, ZBL, SNAPCalculator
from mofsnap.exceptions import LammpsError, MDError
from mofsnap.md import read_trajectory, run_md
from mofsnap.md.deck import Deck, Protocol, write_deck
from mofsnap.md.native import read_native, run_deck, run_native
from mofsnap.model import SNAPModel

from conftest import SNAP_TEST_TYPES as TYPES


@pytest.fixture
def model(snap_model) -> SNAPModel:
    return snap_model


@pytest.fixture
def calc(model) -> SNAPCalculator:
    """SNAP + D3 + ZBL on two pairs: every term of the hybrid/overlay style."""
    with SNAPCalculator(model, d3=D3(cutoff=10.0, cn_cutoff=8.0),
                        zbl=ZBL([("H1a", "N3a"), ("C3a", "Zn4a")], 1.5, 3.0)) as calculator:
        yield calculator


@pytest.fixture
def atoms(triclinic_atoms) -> Atoms:
    """The triclinic test atoms rotated, so that the ASE and LAMMPS frames differ."""
    triclinic_atoms.rotate(30, "z", rotate_cell=True)
    triclinic_atoms.rotate(10, "x", rotate_cell=True)
    return triclinic_atoms


def test_step_zero_equals_the_calculator_on_two_ranks(calc, atoms, tmp_path):
    start = atoms.copy()
    result = run_native(atoms, 10, calc, tmp_path / "deck", ranks=2, interval=10, progress=False)
    frame = read_native(tmp_path / "deck")[0]
    start.calc = calc
    assert frame.info["md_step"] == 0
    assert frame.get_potential_energy() == pytest.approx(start.get_potential_energy(), abs=1e-9)
    np.testing.assert_allclose(frame.get_forces(), start.get_forces(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(frame.get_stress(), start.get_stress(), rtol=0, atol=1e-11)
    np.testing.assert_allclose(frame.positions, start.positions, rtol=0, atol=1e-10)
    np.testing.assert_allclose(frame.cell.array, start.cell.array, rtol=0, atol=1e-10)
    assert list(frame.arrays["atom_types"]) == list(start.arrays["atom_types"])
    assert result.steps == 10 and result.new_steps == 10 and result.trajectory.exists()


def test_seeded_velocities_and_nve_steps_match_run_md(calc, atoms, tmp_path):
    """Same start and seed: the same velocities, and velocity Verlet follows the same path."""
    reference = atoms.copy()
    run_md(reference, 20, ensemble="nve", seed=7, timestep_fs=0.5, interval=10, trajectory=tmp_path / "ase.extxyz",
           calculator=calc, guard=None, progress=False)
    ase_frames = read_trajectory(tmp_path / "ase.extxyz")
    run_native(atoms, 20, calc, tmp_path / "deck", ensemble="nve", seed=7, timestep_fs=0.5, interval=10,
               progress=False)
    native = read_native(tmp_path / "deck")
    assert [f.info["md_step"] for f in native] == [f.info["md_step"] for f in ase_frames] == [0, 10, 20]
    np.testing.assert_allclose(native[0].get_velocities(), ase_frames[0].get_velocities(), rtol=0, atol=1e-7)
    for ours, theirs in zip(native[1:], ase_frames[1:]):
        np.testing.assert_allclose(ours.positions, theirs.positions, rtol=0, atol=1e-6)
        assert ours.get_potential_energy() == pytest.approx(theirs.get_potential_energy(), abs=1e-6)


def test_nve_energy_drift_comparable_to_run_md(calc, atoms, tmp_path):
    def drift(frames):
        total = np.array([f.get_potential_energy() + f.get_kinetic_energy() for f in frames])
        return np.abs(total - total[0]).max() / len(frames[0])

    reference = atoms.copy()
    # the random model heats the start to ~1500 K: a short time step keeps velocity Verlet accurate
    run_md(reference, 200, ensemble="nve", temperature_K=100, timestep_fs=0.25, interval=10,
           trajectory=tmp_path / "ase.extxyz", calculator=calc, guard=None, progress=False)
    run_native(atoms, 200, calc, tmp_path / "deck", ensemble="nve", temperature_K=100, timestep_fs=0.25,
               interval=10, progress=False)
    ours, theirs = drift(read_native(tmp_path / "deck")), drift(read_trajectory(tmp_path / "ase.extxyz"))
    assert ours < 5e-4 and theirs < 5e-4
    assert ours < 3 * theirs + 2e-5


def test_npt_keeps_the_angles_of_a_triclinic_cell(model, atoms, tmp_path):
    calculator = SNAPCalculator(model)
    run_native(atoms, 40, calculator, tmp_path / "deck", ensemble="npt", pressure_MPa=500.0, pdamp_fs=50.0,
               interval=20, progress=False)
    frames = read_native(tmp_path / "deck")
    first, last = frames[0].cell.cellpar(), frames[-1].cell.cellpar()
    assert np.abs(last[:3] - first[:3]).max() > 1e-3  # the lengths moved
    np.testing.assert_allclose(last[3:], first[3:], atol=1e-8)
    deck = (tmp_path / "deck" / "in.lammps").read_text()
    assert "fix integrate all npt temp 300.0 300.0 0.1 tchain 5 x " in deck
    assert "couple none scalexy yes scalexz yes scaleyz yes pchain 5" in deck


def test_protocol_commands():
    assert Protocol(ensemble="nvt", chain=5).fixes() == ["fix integrate all nvt temp 300.0 300.0 0.1 tchain 5"]
    assert Protocol(ensemble="nve").fixes() == ["fix integrate all nve"]
    npt = Protocol(ensemble="npt", pressure_MPa=0.1, cell="full").fixes()[0]
    words = npt.split()
    start, stop, damp = (float(w) for w in words[words.index("tri") + 1:words.index("tri") + 4])
    assert start == stop == pytest.approx(1.0, rel=1e-6) and damp == 0.2  # 0.1 MPa = 1 bar, 200 fs = 0.2 ps
    with pytest.raises(MDError, match="unknown ensemble 'nph'"):
        Protocol(ensemble="nph")


def test_native_frames_feed_read_trajectory_and_vdos(calc, atoms, tmp_path):
    result = run_native(atoms, 100, calc, tmp_path / "deck", ranks=2, interval=2, progress=False)
    frames = read_trajectory(result.trajectory)
    assert len(frames) == 51 and frames[-1].info["md_step"] == 100 and frames[-1].info["md_engine"] == "lammps"
    assert frames[3].info["time_fs"] == pytest.approx(6.0)
    assert sorted(set(frames[0].arrays["atom_types"])) == TYPES
    # LAMMPS's own temperature (3N - 3 degrees of freedom) from the log agrees with the converted velocities
    log = (tmp_path / "deck" / "log.lammps").read_text().splitlines()
    header = next(i for i, line in enumerate(log) if line.split()[:1] == ["Step"])
    lammps_temperature = float(log[header + 1].split()[2])
    assert frames[0].info["temperature_K"] * 36 / 33 == pytest.approx(lammps_temperature, rel=1e-5)  # LAMMPS constants
    spectrum = compute_vdos(frames)
    assert sorted(spectrum.partial) == TYPES
    assert np.all(np.isfinite(spectrum.total)) and spectrum.total.max() > 0


def _processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is ``directory`` (the ranks and their launcher)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == directory.resolve():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["killed", "interrupted"])
def test_stopped_run_leaves_no_process_and_resumes_from_its_restart(model, atoms, tmp_path, sig):
    prefix = tmp_path / "model"
    model.write(prefix)
    write(tmp_path / "start.extxyz", atoms)
    deck = tmp_path / "deck"
    script = textwrap.dedent(f"""
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, even if the suite ignores it
        from ase.io import read
        from mofsnap.calculator import SNAPCalculator
        from mofsnap.md.native import run_native
        run_native(read("{tmp_path / 'start.extxyz'}"), 10**7, SNAPCalculator("{prefix}"), "{deck}", ranks=2,
                   restart_interval=100, interval=50, progress=False)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": "1"},
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(deck.glob("restart.*.bin")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(deck.glob("restart.*.bin")), "no restart file within 60 s"
    assert _processes_in(deck)
    child.send_signal(sig)
    child.wait(120)  # two spinning MPI ranks on two cores can starve the interrupted parent for a while
    deadline = time.monotonic() + 15
    while _processes_in(deck) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_in(deck) == []
    last = max(int(p.name.split(".")[1]) for p in deck.glob("restart.*.bin"))
    result = run_native(atoms, last + 100, SNAPCalculator(str(prefix)), deck, ranks=2, restart_interval=100,
                        interval=50, progress=False)
    assert result.steps == last + 100 and result.new_steps == 100
    steps = [f.info["md_step"] for f in read_trajectory(result.trajectory)]
    assert steps == list(range(0, last + 101, 50))


def test_missing_executables_and_lammps_errors_are_clear(calc, atoms, tmp_path):
    with pytest.raises(LammpsError, match="no LAMMPS executable 'no-such-lmp'"):
        run_native(atoms, 10, calc, tmp_path / "a", lmp="no-such-lmp", progress=False)
    with pytest.raises(LammpsError, match="no MPI launcher 'no-such-mpirun'"):
        run_native(atoms, 10, calc, tmp_path / "b", ranks=2, mpirun="no-such-mpirun", progress=False)
    deck = write_deck(tmp_path / "c", atoms, calc, 10)
    deck.deck.write_text(deck.deck.read_text().replace("timestep 0.001", "timestep fast"))
    with pytest.raises(LammpsError, match=r"(?s)ERROR: Expected floating point parameter instead of 'fast'.*"
                                          r"log: .*c/log\.lammps"):
        run_deck(deck, deck.deck.name, 2, progress=False)
    with pytest.raises(MDError, match="unknown MD protocol setting"):
        run_native(atoms, 10, calc, tmp_path / "d", temperature=300, progress=False)


def test_restarts_of_other_atoms_are_refused(calc, atoms, tmp_path):
    run_native(atoms.copy(), 10, calc, tmp_path / "deck", interval=5, progress=False)
    with pytest.raises(MDError, match="holds a run of 12 atoms"):
        run_native(atoms.repeat((2, 1, 1)), 20, calc, tmp_path / "deck", progress=False)
    with pytest.raises(MDError, match="resume it or remove them"):
        run_native(atoms, 20, calc, tmp_path / "deck", resume=False, progress=False)
    assert Deck(tmp_path / "deck").restarts().keys() == {10}


def test_md_command_engine_lammps(cli, model, atoms, tmp_path):
    model.write(tmp_path / "model")
    write(tmp_path / "start.extxyz", atoms)
    common = ("md", tmp_path / "start.extxyz", "--model", tmp_path / "model", "--d3", "--engine", "lammps", "--np", 2,
              "--interval", 5, "-o", tmp_path / "run", "--no-progress")
    r = cli(*common, "--steps", 20)
    assert r.status == 0, r.err
    summary = json.loads((tmp_path / "run" / "md.json").read_text())
    assert summary["steps"] == 20 and summary["new_steps"] == 20 and summary["status"] == "completed"
    assert (tmp_path / "run" / "md.png").stat().st_size > 0
    assert (tmp_path / "run" / "lammps" / "in.lammps").exists()
    r = cli(*common, "--steps", 30)
    assert r.status == 0, r.err
    summary = json.loads((tmp_path / "run" / "md.json").read_text())
    assert summary["steps"] == 30 and summary["new_steps"] == 10
    steps = [f.info["md_step"] for f in read_trajectory(tmp_path / "run" / "md.extxyz")]
    assert steps == [0, 5, 10, 15, 20, 25, 30]
    r = cli("md", tmp_path / "start.extxyz", "--calculator", "emt", "--engine", "lammps", "-o", tmp_path / "emt")
    assert r.status == 1 and "--engine lammps runs SNAP models" in r.err


def _mean_lattice(frames: list[Atoms], skip: int, block: int) -> tuple[float, float]:
    """Mean cube root of the volume after the first ``skip`` frames and its block-average standard error."""
    lengths = np.array([np.cbrt(f.get_volume()) for f in frames[skip:]])
    blocks = lengths[: len(lengths) // block * block].reshape(-1, block).mean(axis=1)
    return lengths.mean(), blocks.std(ddof=1) / np.sqrt(len(blocks))


def test_npt_lattice_at_300K_agrees_with_run_md(copper_snap, tmp_path):
    """Same model, start and seed, 300 K and 1 atm: the two engines' mean lattices agree within their
    statistical errors (the trajectories themselves decorrelate; the ensembles must not)."""
    from ase.build import bulk

    start = bulk("Cu", cubic=True, a=3.6).repeat(3)
    start.new_array("atom_types", np.array(["Cu12a"] * len(start)))
    protocol = dict(ensemble="npt", temperature_K=300.0, timestep_fs=2.0, pdamp_fs=500.0, interval=10, seed=3)
    with SNAPCalculator(copper_snap[0]) as calculator:
        run_md(start.copy(), 6000, trajectory=tmp_path / "ase.extxyz", calculator=calculator, progress=False,
               **protocol)
        run_native(start.copy(), 6000, calculator, tmp_path / "deck", progress=False, **protocol)
    # 2 ps equilibration, then blocks of 0.5 ps
    ase_mean, ase_error = _mean_lattice(read_trajectory(tmp_path / "ase.extxyz"), skip=100, block=25)
    native_mean, native_error = _mean_lattice(read_native(tmp_path / "deck"), skip=100, block=25)
    assert abs(ase_mean - 3 * 3.6) > 5 * ase_error  # the barostat moved the lattice away from its start
    assert abs(native_mean - ase_mean) < 3 * np.hypot(ase_error, native_error)
    assert max(ase_error, native_error) < 2e-3 * ase_mean
