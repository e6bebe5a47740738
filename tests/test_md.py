"""MD driver: energy conservation, thermostats, barostat cell modes, seeding, resume, guard, errors; the command."""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from mofsnap.exceptions import MDError
from mofsnap.md import blowup_guard, read_trajectory, run_md


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
    assert result.stopped == "enough" and result.steps == 7
    last = read_trajectory(tmp_path / "g.extxyz")[-1]
    assert last.info["md_step"] == 7 and last.info["md_stop"] == "enough"
    again = run_md(copper(), 100, ensemble="nvt", calculator=EMT(), progress=False, trajectory=tmp_path / "g.extxyz")
    assert again.stopped == "enough" and again.new_steps == 0


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


def test_command_runs_and_resumes(cli, tmp_path):
    copper().write(tmp_path / "cu.extxyz")
    run = tmp_path / "run"
    args = ["md", tmp_path / "cu.extxyz", "--calculator", "emt", "--ensemble", "npt", "--interval", "5", "-o", run]
    r = cli(*args, "--steps", "20")
    assert r.status == 0, r.err
    summary = json.loads((run / "md.json").read_text())
    assert json.loads(r.out) == summary
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
    assert r.status == 0, r.err
    summary = json.loads(r.out)
    assert summary["steps"] == 1 and summary["stopped"].startswith("force")


@pytest.mark.parametrize("arguments, message", [
    (["--calculator", "snap"], "needs --model PREFIX"),
    (["--calculator", "emt", "--ensemble", "npt", "-T", "-5"], "T >= 0"),
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
