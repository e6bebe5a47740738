"""MD driver: energy conservation, thermostats, barostat cell modes, seeding, resume (bit for bit from the
checkpoint), guards, range checks; the command."""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import all_changes
from ase.calculators.emt import EMT

from mofsnap.exceptions import MDError, ResultFileError
from mofsnap.md import (MDCheckpoint, MDGuard, MDSummary, blowup_guard, checkpoint_path, read_trajectory, reheat_momenta,
                        run_md)


class FreshEMT(EMT):
    """EMT whose results depend on the state only: it rebuilds its neighbour list at every call (ASE's EMT keeps
    one, so its forces depend in the last bits on where the list was built)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, all_changes)


class NaNAfter(EMT):
    """EMT whose forces turn NaN after ``calls`` force evaluations (a model leaving its domain)."""

    def __init__(self, calls):
        super().__init__()
        self.calls = calls

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.calls -= 1
        if self.calls < 0:
            self.results["forces"] = np.full_like(self.results["forces"], np.nan)


def copper(repeat=2, a=3.6):
    atoms = bulk("Cu", cubic=True, a=a).repeat(repeat)
    atoms.new_array("atom_types", np.array(["Cu12a"] * len(atoms)))
    return atoms


def test_nve_conserves_energy_and_writes_frames(tmp_path):
    atoms = copper()
    result = run_md(atoms, 200, ensemble="nve", temperature_K=300, timestep_fs=1.0, trajectory=tmp_path / "a.extxyz",
                    interval=20, calculator=EMT(), progress=False)
    frames = read_trajectory(tmp_path / "a.extxyz")
    assert [f.info["md_step"] for f in frames] == list(range(0, 201, 20))
    assert all((f.arrays["atom_types"] == "Cu12a").all() for f in frames)
    total = np.array([f.get_potential_energy() + f.get_kinetic_energy() for f in frames])
    kinetic = np.array([f.get_kinetic_energy() for f in frames])
    assert np.ptp(total) < 0.01 * np.ptp(kinetic)
    assert np.allclose(frames[-1].positions, result.atoms.positions, atol=1e-6)
    assert result.steps == 200 and result.new_steps == 200 and result.ns_per_day > 0


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    runs = []
    for name, seed in [("a", 1), ("b", 1), ("c", 2)]:
        atoms = copper()
        run_md(atoms, 20, ensemble="langevin", seed=seed, calculator=EMT(), progress=False)
        runs.append(atoms.positions.copy())
    assert np.array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])


@pytest.mark.parametrize("ensemble", ["nvt", "langevin"])
def test_thermostats_reach_target_temperature(ensemble):
    atoms = copper()
    atoms.calc = EMT()
    run_md(atoms, 300, ensemble=ensemble, temperature_K=600, timestep_fs=4.0, tdamp_fs=50, friction_per_fs=0.02,
           progress=False, seed=5)
    temps = []
    run_md(atoms, 600, ensemble=ensemble, temperature_K=600, timestep_fs=4.0, tdamp_fs=50, friction_per_fs=0.02,
           progress=False, thermalize=False, guard=lambda a, step: temps.append(a.get_temperature()))
    # 32 atoms: instantaneous T fluctuates by ~15 %, the mean over 2.4 ps is within a few %
    assert np.mean(temps) == pytest.approx(600, rel=0.08)


def _nve_temperature_after(draw, steps=200):
    """Copper equilibrated at 150 K (Langevin), new momenta from ``draw(atoms)``, then NVE: the mean kinetic
    temperature over the second half of ``steps`` steps."""
    atoms = copper(repeat=3)
    atoms.calc = EMT()
    run_md(atoms, 200, ensemble="langevin", temperature_K=150, timestep_fs=4.0, friction_per_fs=0.02, seed=3,
           progress=False)
    draw(atoms)
    temps = []
    run_md(atoms, steps, ensemble="nve", timestep_fs=2.0, thermalize=False, progress=False,
           guard=lambda a, step: temps.append(a.get_temperature()))
    return np.mean(temps[steps // 2:])


def test_reheated_solid_settles_at_the_new_temperature():
    # equipartition: momenta drawn at T relax to (T + 150 K) / 2; reheat_momenta compensates
    plain = _nve_temperature_after(lambda atoms: run_md(atoms, 0, ensemble="nve", temperature_K=450, seed=4,
                                                        progress=False))
    assert plain == pytest.approx(300, rel=0.08)
    reheated = _nve_temperature_after(lambda atoms: reheat_momenta(atoms, 450, seed=4))
    assert reheated == pytest.approx(450, rel=0.05)


def test_npt_cell_modes(tmp_path):
    for cell in ["angles-fixed", "isotropic", "full"]:
        atoms = copper(a=3.75)  # expanded: the cell must shrink towards the EMT lattice constant (3.59 Å)
        atoms.set_cell(atoms.cell * [1.0, 1.01, 0.99], scale_atoms=True)
        start = atoms.cell.cellpar()
        run_md(atoms, 100, ensemble="npt", cell=cell, temperature_K=100, timestep_fs=2.0, pdamp_fs=100, interval=50,
               calculator=EMT(), progress=False, trajectory=tmp_path / f"{cell}.extxyz")
        end = atoms.cell.cellpar()
        assert atoms.get_volume() < 0.97 * np.prod(start[:3])
        if cell != "full":
            np.testing.assert_allclose(end[3:], 90.0, atol=1e-8)
        if cell == "isotropic":
            np.testing.assert_allclose(end[:3] / start[:3], end[0] / start[0], rtol=1e-10)
        assert read_trajectory(tmp_path / f"{cell}.extxyz")[-1].info["md_cell"] == cell


def test_resume_continues_exactly_and_does_not_repeat(tmp_path):
    straight = copper()
    run_md(straight, 40, ensemble="nve", calculator=EMT(), progress=False, seed=3)
    first = copper()
    run_md(first, 20, ensemble="nve", calculator=EMT(), progress=False, seed=3, trajectory=tmp_path / "r.extxyz",
           interval=5)
    resumed = copper()  # fresh structure: everything must come from the trajectory
    result = run_md(resumed, 40, ensemble="nve", calculator=EMT(), progress=False, seed=99,
                    trajectory=tmp_path / "r.extxyz", interval=5)
    assert result.new_steps == 20 and result.steps == 40
    np.testing.assert_allclose(resumed.positions, straight.positions, atol=1e-5)
    np.testing.assert_allclose(resumed.get_velocities(), straight.get_velocities(), atol=1e-5)
    assert [f.info["md_step"] for f in read_trajectory(tmp_path / "r.extxyz")] == list(range(0, 41, 5))
    again = run_md(copper(), 40, ensemble="nve", calculator=EMT(), progress=False, trajectory=tmp_path / "r.extxyz")
    assert again.new_steps == 0


def test_resume_ase_traj_keeps_cell_and_types(tmp_path):
    atoms = copper()
    run_md(atoms, 10, ensemble="npt", calculator=EMT(), progress=False, trajectory=tmp_path / "r.traj", interval=5)
    resumed = copper()
    run_md(resumed, 10, ensemble="npt", calculator=EMT(), progress=False, trajectory=tmp_path / "r.traj")
    np.testing.assert_allclose(resumed.cell, atoms.cell, atol=1e-12)
    assert (read_trajectory(tmp_path / "r.traj")[-1].arrays["atom_types"] == "Cu12a").all()


def test_guard_stops_cleanly_and_stopped_run_is_not_resumed(tmp_path):
    atoms = copper()
    result = run_md(atoms, 100, ensemble="nvt", calculator=EMT(), progress=False, trajectory=tmp_path / "g.extxyz",
                    guard=lambda a, step: "enough" if step == 7 else None)
    assert result.stopped == "enough" and result.steps == 6  # the last good state is the one before the stop
    last = read_trajectory(tmp_path / "g.extxyz")[-1]
    assert last.info["md_step"] == 6 and last.info["md_stop"] == "enough"
    np.testing.assert_allclose(last.positions, atoms.positions, atol=1e-6)
    again = run_md(copper(), 100, ensemble="nvt", calculator=EMT(), progress=False, trajectory=tmp_path / "g.extxyz")
    assert again.stopped == "enough" and again.new_steps == 0


@pytest.mark.parametrize("ensemble, cell", [("nvt", "angles-fixed"), ("npt", "angles-fixed"), ("npt", "isotropic"),
                                            ("npt", "full"), ("langevin", "angles-fixed")])
def test_killed_and_resumed_run_equals_uninterrupted_bit_for_bit(tmp_path, ensemble, cell):
    options = dict(ensemble=ensemble, cell=cell, temperature_K=500, tdamp_fs=20, pdamp_fs=50, interval=5,
                   progress=False)
    straight = copper()
    run_md(straight, 40, calculator=FreshEMT(), trajectory=tmp_path / "straight.extxyz", **options)
    killed = copper()
    run_md(killed, 20, calculator=FreshEMT(), trajectory=tmp_path / "r.extxyz", **options)  # "killed" at 20
    resumed = copper()
    result = run_md(resumed, 40, calculator=FreshEMT(), trajectory=tmp_path / "r.extxyz", **options)
    assert result.new_steps == 20
    np.testing.assert_array_equal(resumed.positions, straight.positions)
    np.testing.assert_array_equal(resumed.get_momenta(), straight.get_momenta())
    np.testing.assert_array_equal(resumed.cell.array, straight.cell.array)
    assert [f.info["md_step"] for f in read_trajectory(tmp_path / "r.extxyz")] == list(range(0, 41, 5))


class KilledAt(FreshEMT):
    """FreshEMT that is killed (KeyboardInterrupt) at its ``calls``-th evaluation."""

    def __init__(self, calls):
        super().__init__()
        self.calls = calls

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        self.calls -= 1
        if self.calls <= 0:
            raise KeyboardInterrupt("killed")
        super().calculate(atoms, properties, system_changes)


@pytest.mark.parametrize("cell", ["positions", "full"])
def test_killed_and_resumed_relaxation_ends_as_the_uninterrupted_one(tmp_path, cell):
    from mofsnap.analysis.runs import relax_start

    start = copper()
    start.rattle(0.05, seed=1)
    start.set_cell(start.cell.array * [1.03, 0.98, 1.01], scale_atoms=True)
    options = dict(fmax=1e-6, steps=25, cell=cell)  # not converged in 25 steps: FIRE's state matters to the end
    relax_start(start, FreshEMT(), tmp_path / "straight", **options)
    saved = checkpoint_path(tmp_path / "resumed" / "relaxed.extxyz")
    with pytest.raises(KeyboardInterrupt):
        relax_start(start, KilledAt(12), tmp_path / "resumed", **options)
    assert saved.exists()
    with pytest.raises(MDError, match="relaxation of another structure; remove it"):
        relax_start(copper(repeat=1), FreshEMT(), tmp_path / "resumed", **options)
    resumed = relax_start(start, FreshEMT(), tmp_path / "resumed", **options)
    assert ((tmp_path / "resumed" / "relaxed.extxyz").read_bytes()
            == (tmp_path / "straight" / "relaxed.extxyz").read_bytes())
    assert not np.array_equal(resumed.positions, start.positions) and not saved.exists()


@pytest.mark.parametrize("ensemble, cell", [("nvt", "angles-fixed"), ("npt", "full")])
def test_killed_and_resumed_snap_run_equals_uninterrupted_bit_for_bit(tmp_path, snap_model, triclinic_atoms,
                                                                      ensemble, cell):
    """With SNAPCalculator + D3 (LAMMPS neighbour lists built where the resumed run starts, not where the first
    run had built them): the resumed run still follows the uninterrupted one to the last bit."""
    from mofsnap.calculator import D3, SNAPCalculator

    options = dict(ensemble=ensemble, cell=cell, temperature_K=300, timestep_fs=0.5, interval=5, progress=False,
                   guard=None)
    straight = triclinic_atoms.copy()
    with SNAPCalculator(snap_model, d3=D3(cutoff=8.0, cn_cutoff=6.0)) as calculator:
        run_md(straight, 40, calculator=calculator, trajectory=tmp_path / "straight.extxyz", **options)
    for steps in (20, 40):  # "killed" at 20, then resumed by a new process's calculator
        resumed = triclinic_atoms.copy()
        with SNAPCalculator(snap_model, d3=D3(cutoff=8.0, cn_cutoff=6.0)) as calculator:
            run_md(resumed, steps, calculator=calculator, trajectory=tmp_path / "r.extxyz", **options)
    np.testing.assert_array_equal(resumed.positions, straight.positions)
    np.testing.assert_array_equal(resumed.get_momenta(), straight.get_momenta())
    np.testing.assert_array_equal(resumed.cell.array, straight.cell.array)


def test_without_checkpoint_the_thermostat_restarts_from_rest(tmp_path):
    options = dict(ensemble="nvt", temperature_K=500, tdamp_fs=20, interval=5, progress=False)
    straight = copper()
    run_md(straight, 40, calculator=FreshEMT(), **options)
    run_md(copper(), 20, calculator=FreshEMT(), trajectory=tmp_path / "r.extxyz", **options)
    checkpoint_path(tmp_path / "r.extxyz").unlink()
    resumed = copper()
    run_md(resumed, 40, calculator=FreshEMT(), trajectory=tmp_path / "r.extxyz", **options)
    assert not np.allclose(resumed.get_momenta(), straight.get_momenta(), atol=1e-6)


def test_checkpoint_written_before_its_frame_is_completed_on_resume(tmp_path):
    """A kill between checkpoint and frame: the resumed run writes the missing frame and continues exactly."""
    options = dict(ensemble="npt", temperature_K=500, pdamp_fs=50, interval=5, progress=False)
    straight = copper()
    run_md(straight, 30, calculator=FreshEMT(), **options)
    run_md(copper(), 20, calculator=FreshEMT(), trajectory=tmp_path / "r.extxyz", **options)
    frames = read_trajectory(tmp_path / "r.extxyz")
    (tmp_path / "r.extxyz").unlink()
    for frame in frames[:-1]:  # the frame of step 20 never made it to disk
        frame.write(tmp_path / "r.extxyz", append=True)
    resumed = copper()
    run_md(resumed, 30, calculator=FreshEMT(), trajectory=tmp_path / "r.extxyz", **options)
    np.testing.assert_array_equal(resumed.positions, straight.positions)
    assert [f.info["md_step"] for f in read_trajectory(tmp_path / "r.extxyz")] == list(range(0, 31, 5))


def test_checkpoint_round_trip(tmp_path):
    atoms = copper()
    run_md(atoms, 10, ensemble="npt", cell="isotropic", calculator=EMT(), trajectory=tmp_path / "c.extxyz",
           progress=False)
    checkpoint = MDCheckpoint.read(checkpoint_path(tmp_path / "c.extxyz"))
    assert checkpoint.step == 10 and checkpoint.integrator == "IsotropicMTKNPT" and checkpoint.stopped is None
    assert {"_thermostat._eta", "_thermostat._p_eta", "_barostat._xi", "_barostat._p_xi", "._eps",
            "._p_eps"} <= set(checkpoint.state)
    np.testing.assert_array_equal(checkpoint.positions, atoms.positions)
    again = MDCheckpoint.read(checkpoint.write(tmp_path / "copy.npz"))
    for name in ("step", "integrator", "stopped"):
        assert getattr(again, name) == getattr(checkpoint, name)
    for name in ("positions", "momenta", "cell"):
        np.testing.assert_array_equal(getattr(again, name), getattr(checkpoint, name))
    assert again.state.keys() == checkpoint.state.keys()
    for key in checkpoint.state:
        np.testing.assert_array_equal(again.state[key], checkpoint.state[key])
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(ResultFileError, match="not a readable md-checkpoint file"):
        MDCheckpoint.read(tmp_path / "bad.npz")


def test_default_guard_stops_nan_forces_and_keeps_the_last_good_frame(tmp_path):
    atoms = copper()
    result = run_md(atoms, 50, ensemble="nvt", calculator=NaNAfter(12), trajectory=tmp_path / "n.extxyz",
                    interval=5, progress=False)
    assert result.stopped.startswith("non-finite guard: NaN or infinite momenta on atoms 0 (Cu12a)")
    assert "at step 12" in result.stopped  # EMT is called at step 0, then once per step
    frames = read_trajectory(tmp_path / "n.extxyz")
    assert [f.info["md_step"] for f in frames] == [0, 5, 10, 11]
    assert frames[-1].info["md_stop"] == result.stopped
    assert all(np.isfinite(f.positions).all() and np.isfinite(f.get_momenta()).all() for f in frames)
    assert np.isfinite(atoms.get_momenta()).all() and result.steps == 11
    assert run_md(copper(), 50, calculator=EMT(), trajectory=tmp_path / "n.extxyz").new_steps == 0


def test_default_guard_temperature_and_volume(tmp_path):
    squeezed = copper(a=3.0)  # NVE from 10 K: the compressed, rattled lattice heats far above 2 x 10 K + 500 K
    squeezed.rattle(0.2, seed=1)
    result = run_md(squeezed, 200, ensemble="nve", temperature_K=10, calculator=EMT(), progress=False,
                    guard=MDGuard(max_force=1e6))
    assert result.stopped.startswith("temperature guard:") and "> 520 K" in result.stopped
    expanded = copper(a=3.75)  # NPT shrinks the cell by about 13 %
    result = run_md(expanded, 100, ensemble="npt", temperature_K=100, timestep_fs=2.0, pdamp_fs=100,
                    calculator=EMT(), progress=False, guard=MDGuard(max_volume_ratio=1.05))
    assert result.stopped.startswith("volume guard:")
    assert 1 / 1.05 <= expanded.get_volume() / copper(a=3.75).get_volume() <= 1.05  # the last good state
    unguarded = copper(a=3.75)
    assert run_md(unguarded, 100, ensemble="npt", temperature_K=100, timestep_fs=2.0, pdamp_fs=100,
                  calculator=EMT(), progress=False, guard=None).stopped is None


def test_blowup_guard_catches_huge_forces_and_hot_atoms():
    squeezed = copper(a=2.6)
    squeezed.calc = EMT()
    squeezed.rattle(0.3, seed=1)
    assert "force" in blowup_guard(max_force=5.0)(squeezed, 3)
    relaxed = copper()
    relaxed.calc = EMT()
    relaxed.set_velocities(np.full((len(relaxed), 3), 0.5))
    assert "temperature" in blowup_guard(max_force=5.0, max_temperature_K=2000)(relaxed, 3)
    relaxed.set_velocities(np.zeros((len(relaxed), 3)))
    assert blowup_guard()(relaxed, 3) is None


def test_bad_settings_are_rejected(tmp_path):
    atoms = copper()
    with pytest.raises(MDError, match="no calculator"):
        run_md(atoms, 10, progress=False)
    with pytest.raises(MDError, match="unknown ensemble"):
        run_md(atoms, 10, ensemble="npe", calculator=EMT(), progress=False)
    with pytest.raises(MDError, match="unknown NPT cell mode"):
        run_md(atoms, 10, ensemble="npt", cell="triclinic", calculator=EMT(), progress=False)
    run_md(atoms, 5, calculator=EMT(), progress=False, trajectory=tmp_path / "x.extxyz")
    with pytest.raises(MDError, match="exists"):
        run_md(copper(), 10, calculator=EMT(), progress=False, trajectory=tmp_path / "x.extxyz", resume=False)
    with pytest.raises(MDError, match="differ"):
        run_md(copper(3), 10, calculator=EMT(), progress=False, trajectory=tmp_path / "x.extxyz")
    molecule = copper()
    molecule.pbc = False
    with pytest.raises(MDError, match="periodic"):
        run_md(molecule, 10, ensemble="npt", calculator=EMT(), progress=False)


@pytest.mark.parametrize("setting, message", [
    (dict(tdamp_fs=-100), r"tdamp_fs must be a finite number > 0 \(got -100\)"),
    (dict(chain=0), r"chain must be a whole number >= 1 \(got 0\)"),
    (dict(ensemble="npt", pdamp_fs=float("nan")), "pdamp_fs must be a finite number > 0"),
    (dict(ensemble="langevin", friction_per_fs=0.0), "friction_per_fs must be a finite number > 0"),
    (dict(temperature_K=0.0), "temperature_K must be a finite number > 0"),
    (dict(interval=0), "interval must be a whole number >= 1"),
    (dict(steps=2.5), "steps must be a whole number >= 0"),
    (dict(timestep_fs=float("inf")), "timestep_fs must be a finite number > 0"),
])
def test_every_setting_is_range_checked_before_the_first_step(tmp_path, setting, message):
    options = dict(steps=10, ensemble="nvt") | setting
    with pytest.raises(MDError, match=message):
        run_md(copper(), options.pop("steps"), calculator=EMT(), progress=False, trajectory=tmp_path / "t.extxyz",
               **options)
    assert not (tmp_path / "t.extxyz").exists()
    nan_atoms = copper()
    nan_atoms.positions[3] = np.nan
    with pytest.raises(MDError, match="positions or cell contain NaN"):
        run_md(nan_atoms, 10, calculator=EMT(), progress=False)


def test_command_runs_and_resumes(cli, tmp_path):
    copper().write(tmp_path / "cu.extxyz")
    run = tmp_path / "run"
    args = ["md", tmp_path / "cu.extxyz", "--calculator", "emt", "--ensemble", "npt", "--interval", "5", "-o", run]
    r = cli(*args, "--steps", "20")
    assert r.status == 0, r.err
    summary = json.loads((run / "md.json").read_text())
    assert MDSummary(**json.loads(r.out)) == MDSummary.read(run / "md.json")
    assert summary["steps"] == 20 and summary["new_steps"] == 20 and summary["ns_per_day"] > 0
    assert summary["natoms"] == 32 and summary["ensemble"] == "npt"
    assert (run / "md.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frames = read_trajectory(run / "md.extxyz")
    assert [f.info["md_step"] for f in frames] == [0, 5, 10, 15, 20]
    assert all(f.info["md_ensemble"] == "npt" for f in frames)
    r = cli(*args, "--steps", "30")
    assert r.status == 0, r.err
    summary = json.loads((run / "md.json").read_text())
    assert summary["steps"] == 30 and summary["new_steps"] == 10
    assert [f.info["md_step"] for f in read_trajectory(run / "md.extxyz")] == [0, 5, 10, 15, 20, 25, 30]


def test_command_options_reach_the_run(cli, tmp_path):
    copper().write(tmp_path / "cu.extxyz")
    r = cli("md", tmp_path / "cu.extxyz", "--calculator", "emt", "--ensemble", "nvt", "-T", "450", "--timestep",
            "2", "--steps", "4", "--interval", "2", "--format", "traj", "-o", tmp_path / "run", "-q")
    assert r.status == 0, r.err
    frames = read_trajectory(tmp_path / "run" / "md.traj")
    assert [f.info["time_fs"] for f in frames] == [0.0, 4.0, 8.0]
    assert {f.info["md_target_temperature_K"] for f in frames} == {450.0}
    assert (frames[-1].arrays["atom_types"] == "Cu12a").all()


def test_command_guard_stops_a_blown_up_run(cli, tmp_path):
    squeezed = copper(a=2.6)
    squeezed.rattle(0.3, seed=1)
    squeezed.write(tmp_path / "hot.extxyz")
    r = cli("md", tmp_path / "hot.extxyz", "--calculator", "emt", "--steps", "50", "--max-force", "5",
            "-o", tmp_path / "run", "-q")
    assert r.status == 1
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mofsnap md: error: stopped by the force guard: ")
    assert "at step 1" in lines[0] and "(Cu12a)" in lines[0]
    summary = json.loads((tmp_path / "run" / "md.json").read_text())
    assert summary["status"] == "stopped" and summary["stopped"].startswith("force guard")
    assert summary["steps"] == 0 and summary["mean_temperature_K"] is not None
    frames = read_trajectory(tmp_path / "run" / "md.extxyz")
    assert [f.info["md_step"] for f in frames] == [0]
    r = cli("md", tmp_path / "hot.extxyz", "--calculator", "emt", "--steps", "5", "--no-guard",
            "-o", tmp_path / "free", "-q")
    assert r.status == 0, r.err
    assert json.loads((tmp_path / "free" / "md.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("arguments, message", [
    (["--calculator", "snap"], "needs --model PREFIX"),
    (["--calculator", "emt", "--ensemble", "npt", "-T", "-5"], "temperature_K must be a finite number > 0 (got -5.0)"),
    (["--calculator", "emt", "--bond-tolerance", "0.5"], "MDGuard bond_tolerance = 0.5 is out of range"),
    (["--model", "nowhere/zif8"], "nowhere/zif8.snapcoeff does not exist"),
])
def test_command_bad_input_is_one_line_and_status_1(cli, tmp_path, arguments, message):
    copper().write(tmp_path / "cu.extxyz")
    r = cli("md", tmp_path / "cu.extxyz", "-o", tmp_path / "run", *arguments)
    assert r.status == 1
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mofsnap md: error: ") and message in lines[0]


def test_command_rejects_unreadable_structure_files(cli, tmp_path):
    (tmp_path / "junk.extxyz").write_text("not a structure\n")
    r = cli("md", tmp_path / "junk.extxyz", "--calculator", "emt", "-o", tmp_path / "run")
    assert r.status == 1
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mofsnap md: error: {tmp_path / 'junk.extxyz'}: ase.io cannot "
                                                   "read it")


def test_md_summary_round_trips_exactly(tmp_path):
    summary = MDSummary("start.extxyz", 12, "npt", "stopped", 40, 20, 1.0, "force guard: 21 eV/Å", 1.5, 2.3,
                        301.2, None, "run/md.extxyz")
    assert MDSummary.read(summary.write(tmp_path / "md.json")) == summary
