"""CBADFilter: hand-made cases with known answers (identical frames, a bond moved across a bin edge, the ±180°
dihedral seam, nested resolutions), order and seeds, per-run picking, state round-trip, bad input, command."""

import json
import re

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.io import read, write

from mofsnap.cbad import CBADFilter, Resolutions, plot_histograms
from mofsnap.exceptions import CBADError, ResultFileError

CELL = np.array([[7.0, 0.0, 0.0], [1.5, 6.8, 0.0], [-0.9, 1.2, 7.2]])


@pytest.fixture
def ethane() -> Atoms:
    atoms = molecule("C2H6")
    atoms.set_cell(CELL)
    atoms.pbc = True
    atoms.positions += np.array([6.4, 6.0, 6.9]) - atoms.positions.mean(axis=0)   # straddles the boundary
    atoms.arrays["atom_types"] = np.array(["C4a" if z == 6 else "H1a" for z in atoms.numbers])
    return atoms


def perturbed(atoms: Atoms, n: int, scale: float, seed: int) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        frame = atoms.copy()
        frame.positions += rng.normal(scale=scale, size=frame.positions.shape)
        frames.append(frame)
    return frames


def ch_bond(atoms: Atoms, cbad: CBADFilter) -> tuple[int, int]:
    """(carbon, hydrogen) of the first C-H bond."""
    topo = cbad.topology
    bond = topo.bonds[np.flatnonzero(topo.bond_type_index == topo.bond_types.index("C4a-H1a"))[0]]
    return (bond[0], bond[1]) if atoms.numbers[bond[0]] == 6 else (bond[1], bond[0])


def with_bond_length(atoms: Atoms, carbon: int, hydrogen: int, length: float) -> Atoms:
    """Move one H along its C-H bond: only that bond length changes (angles and dihedrals keep their values)."""
    moved = atoms.copy()
    vector = atoms.get_distance(carbon, hydrogen, mic=True, vector=True)
    moved.positions[hydrogen] = atoms.positions[carbon] + vector * length / np.linalg.norm(vector)
    return moved


def test_identical_and_rewrapped_copies_are_rejected(ethane):
    cbad = CBADFilter(ethane)
    assert cbad.accept(ethane)
    assert not cbad.accept(ethane.copy())
    shifted = ethane.copy()
    shifted.positions += np.array([[1, 0, -1]] * 4 + [[0, 2, 0]] * 4) @ CELL   # lattice shifts of single atoms
    assert not cbad.accept(shifted)
    assert cbad.summary()["rejected_known"] == 2


def test_moving_one_bond_across_a_bin_edge_is_accepted(ethane):
    cbad = CBADFilter(ethane, Resolutions(bond=0.05))
    carbon, hydrogen = ch_bond(ethane, cbad)
    length = ethane.get_distance(carbon, hydrogen, mic=True)
    edge = (np.floor(length / 0.05) + 1) * 0.05
    assert cbad.accept(ethane)
    assert not cbad.accept(with_bond_length(ethane, carbon, hydrogen, (length + edge) / 2))   # same bin
    assert cbad.accept(with_bond_length(ethane, carbon, hydrogen, edge + 0.01))              # next bin
    assert dict(cbad.stats["new_bins_by_type"]) == {name: 1 for name in cbad.descriptor_types} | {"bond:C4a-H1a": 2}
    assert not cbad.accept(with_bond_length(ethane, carbon, hydrogen, edge + 0.02))          # that bin is known now


def test_dihedrals_across_the_180_seam_bin_consistently():
    """Dihedrals map to [0, 360) before int(value / Δ): every bin is Δ wide, +178° and -178° are neighbours."""
    from test_topology import butane_skeleton

    reference = butane_skeleton(60.0)
    cbad = CBADFilter(reference, Resolutions(dihedral=10.0))
    column = 6 + len(cbad.topology.bonds) + len(cbad.topology.angles)

    def dihedral_bin(phi):
        frame = butane_skeleton(phi)
        values, _ = cbad.descriptors(frame.positions[None], frame.cell.array[None])
        return int(cbad.bin_indices(values)[0, column])

    sweep = np.arange(-179.5, 180.0, 1.0)
    bins = np.array([dihedral_bin(phi) for phi in sweep])
    assert np.bincount(bins).tolist() == [10] * 36                    # 36 bins, each exactly 10° wide
    assert (dihedral_bin(178.0), dihedral_bin(-178.0)) == (17, 18)
    assert dihedral_bin(-170.0 + 1e-6) == dihedral_bin(190.0 - 360.0 + 2e-6)
    assert dihedral_bin(-5.0) == 35 and dihedral_bin(5.0) == 0      # no double-width bin around 0°


def test_shuffle_changes_the_selection_and_a_seed_reproduces_it(ethane):
    pool = perturbed(ethane, 40, 0.04, seed=3)

    def picked(seed):
        return [a.info["cbad_index"] for a in CBADFilter(ethane, batch_size=7).select(pool, shuffle=True, seed=seed)]

    first, again, other = picked(11), picked(11), picked(12)
    assert first == again
    assert first != other
    assert 1 < len(first) < len(pool)
    with pytest.raises(CBADError, match="seed"):
        CBADFilter(ethane).select(pool, shuffle=True)


def test_selection_grows_and_nests_as_resolution_shrinks(ethane):
    pool = perturbed(ethane, 40, 0.03, seed=5)
    selections = []
    for factor in (1.0, 0.5, 0.25):
        resolutions = Resolutions(0.05 * factor, 4.0 * factor, 0.05 * factor, 5.0 * factor, 10.0 * factor)
        selections.append({a.info["cbad_index"] for a in CBADFilter(ethane, resolutions).select(pool)})
    assert selections[0] <= selections[1] <= selections[2]       # halving every bin refines the partition
    assert len(selections[0]) < len(selections[2])


def test_batches_and_accept_loop_agree(ethane):
    pool = perturbed(ethane, 30, 0.03, seed=8)
    one_by_one = CBADFilter(ethane)
    looped = [n for n, frame in enumerate(pool) if one_by_one.accept(frame)]
    batched = CBADFilter(ethane, batch_size=8)
    assert [a.info["cbad_index"] for a in batched.select(iter(pool))] == looped
    assert np.array_equal(one_by_one._known, batched._known)


def test_seeding_with_a_training_set(ethane):
    training = perturbed(ethane, 10, 0.03, seed=1)
    cbad = CBADFilter(ethane)
    assert cbad.include(training) > 0
    assert cbad.select(training) == []
    assert cbad.summary()["included"] == 10


def test_first_last_and_random_new_frame_per_run(ethane):
    run = perturbed(ethane, 12, 0.03, seed=2)
    cbad = CBADFilter(ethane)
    first = cbad.select_per_run([run, run, run[:1]])
    assert first[0].info["cbad_index"] == 0 and first[0].info["cbad_run"] == 0
    assert first[1] is not None and first[1].info["cbad_index"] > 0        # frame 0 is known after run 0
    assert first[2] is None
    assert cbad.summary()["accepted"] == 2
    last = CBADFilter(ethane).select_per_run([run], pick="last")[0]
    assert last.info["cbad_index"] == len(run) - 1
    cbad = CBADFilter(ethane)
    cbad.include(run)
    assert cbad.select_per_run([run], pick="last") == [None]


def test_random_pick_is_a_cbad_new_frame_reproducible_by_seed_and_varies_with_it(ethane):
    run = perturbed(ethane, 16, 0.03, seed=2)

    def seeded() -> CBADFilter:
        cbad = CBADFilter(ethane)
        cbad.include(run[:6])  # the first six frames are known: only later frames can be new
        return cbad

    new_frames = {n for n, frame in enumerate(run) if seeded().accept(frame)}  # each judged alone
    assert len(new_frames) > 2 and not new_frames & set(range(6))

    def pick(seed: int) -> tuple[int, dict]:
        cbad = seeded()
        (atoms,) = cbad.select_per_run([run], pick="random", seed=seed)
        return atoms.info["cbad_index"], cbad.summary()

    picks = {seed: pick(seed) for seed in range(12)}
    for seed, (index, summary) in picks.items():
        assert index in new_frames
        assert summary["not_picked"] == len(new_frames) - 1 and summary["accepted"] == 1
    assert pick(5)[0] == picks[5][0] and pick(9)[0] == picks[9][0]
    assert len({index for index, _ in picks.values()}) > 1
    with pytest.raises(CBADError, match="needs a seed"):
        seeded().select_per_run([run], pick="random")


def test_state_round_trip_is_exact_and_continues_identically(ethane, tmp_path):
    pool = perturbed(ethane, 30, 0.03, seed=6)
    cbad = CBADFilter(ethane, {"bond": 0.03, "dihedral": 7.0}, bond_tolerance=1.4)
    cbad.select(pool[:15])
    loaded = CBADFilter.read(cbad.write(tmp_path / "state.json"))
    assert loaded.resolutions == cbad.resolutions and loaded.bond_tolerance == 1.4
    assert np.array_equal(loaded._known, cbad._known)
    assert {k: v.tolist() for k, v in loaded.bins().items()} == {k: v.tolist() for k, v in cbad.bins().items()}
    assert np.array_equal(loaded.topology.bond_fractional, cbad.topology.bond_fractional)
    assert loaded.summary() == cbad.summary()
    assert ([a.info["cbad_index"] for a in loaded.select(pool[15:])]
            == [a.info["cbad_index"] for a in cbad.select(pool[15:])])
    assert loaded.summary() == cbad.summary()  # both went on identically
    (tmp_path / "other.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ResultFileError, match="not a cbad-state"):
        CBADFilter.read(tmp_path / "other.json")


def test_coverage_reports_bins_and_ranges(ethane):
    cbad = CBADFilter(ethane)
    cbad.accept(ethane)
    coverage = cbad.coverage()
    assert set(coverage) == set(cbad.descriptor_types)
    a = ethane.cell.cellpar()[0]
    low, high = coverage["cell:a"]["range"]
    assert coverage["cell:a"]["bins"] == 1 and low <= a < high and np.isclose(high - low, 0.05)
    lengths = [ethane.get_distance(*bond, mic=True) for bond in cbad.topology.bonds[cbad.topology.bond_type_index == 1]]
    low, high = coverage["bond:C4a-H1a"]["range"]
    assert low <= min(lengths) and max(lengths) < high


def test_bad_frames(ethane):
    cbad = CBADFilter(ethane)
    with pytest.raises(CBADError, match="frame 0: frame has 7 atoms"):
        cbad.accept(ethane[:-1])
    with pytest.raises(CBADError, match="element order"):
        cbad.accept(ethane[[0, 1, 2, 3, 4, 5, 7, 6]][::-1])
    nan = ethane.copy()
    nan.positions[2, 0] = np.nan
    with pytest.raises(CBADError, match="frame 2: .*NaN"):
        cbad.select([ethane, ethane, nan])
    carbon, hydrogen = ch_bond(ethane, cbad)
    broken = with_bond_length(ethane, carbon, hydrogen, 2.0 * ethane.get_distance(carbon, hydrogen, mic=True))
    assert not cbad.accept(broken)
    summary = cbad.summary()
    assert summary["rejected_broken"] == 1 and summary["broken_bond_types"] == {"C4a-H1a": 1}
    with pytest.raises(CBADError, match="resolution bond must be a positive"):
        Resolutions(bond=0.0)
    with pytest.raises(CBADError, match="bond_tolerance"):
        CBADFilter(ethane, bond_tolerance=0.9)


def test_histograms_count_every_value(ethane, tmp_path):
    cbad = CBADFilter(ethane)
    pool = perturbed(ethane, 6, 0.05, seed=9)
    counts = plot_histograms(cbad, pool[:2], pool, tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 0
    assert sum(counts["angle"]["pool"]) == 6 * len(cbad.topology.angles)
    assert sum(counts["dihedral"]["training"]) == 2 * len(cbad.topology.dihedrals)


def test_command_selects_and_explains(ethane, tmp_path, cli):
    pool = perturbed(ethane, 20, 0.03, seed=4)
    carbon, hydrogen = ch_bond(ethane, CBADFilter(ethane))
    pool.append(with_bond_length(ethane, carbon, hydrogen, 2.5))
    write(tmp_path / "pool.extxyz", pool)
    out = tmp_path / "sel"
    result = cli("cbad", tmp_path / "pool.extxyz", "-o", out, "--bond", "0.04", "--state", tmp_path / "state.json")
    assert result.status == 0, result.err
    report = json.loads((out / "cbad.json").read_text())
    assert f"selected {report['selected']} of 21 frames" in result.out
    assert "1 with broken bonds (C4a-H1a x1)" in result.out
    assert report["resolutions"]["bond"] == 0.04
    assert len(read(out / "selected.extxyz", ":")) == report["selected"] > 1
    assert (out / "histograms.png").stat().st_size > 0
    assert CBADFilter.read(tmp_path / "state.json").resolutions.bond == 0.04
    again = cli("cbad", tmp_path / "pool.extxyz", "-o", out, "--state", tmp_path / "state.json", "--no-plot")
    assert again.status == 0 and "selected 0 of 42 frames" in again.out  # resumed: everything is known now
    write(tmp_path / "run2.extxyz", pool[:3])
    per_run = cli("cbad", tmp_path / "pool.extxyz", tmp_path / "run2.extxyz", "-o", tmp_path / "one", "--per-run",
                  "first", "--no-plot")
    assert per_run.status == 0                                         # one frame per file: 2 runs, 2 frames
    assert json.loads((tmp_path / "one" / "cbad.json").read_text())["selected"] == 2


@pytest.mark.parametrize("extra, message", [
    (("--reference", "missing.extxyz"), r"missing.extxyz: no such file"),
    (("--train", "short.extxyz"), r"frame 0: frame has 7 atoms"),
    (("--shuffle", "--bond-tolerance", "0.9"), r"bond_tolerance must exceed 1"),
])
def test_command_bad_input_is_one_line_and_status_1(ethane, tmp_path, monkeypatch, cli, extra, message):
    monkeypatch.chdir(tmp_path)
    write("pool.extxyz", perturbed(ethane, 3, 0.03, seed=4))
    write("short.extxyz", ethane[:-1])
    result = cli("cbad", "pool.extxyz", "-o", "sel", "-q", *extra)
    assert result.status == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mofsnap cbad: error: ") and re.search(message, lines[0])
    assert not (tmp_path / "sel" / "selected.extxyz").exists()


def test_a_chooser_picks_among_the_cbad_new_frames_of_a_run(ethane):
    frames = []
    for amplitude in (0.0, 0.02, 0.3, 0.01, 0.25):
        frame = ethane.copy()
        frame.positions[2] += [amplitude, 0.0, 0.0]  # H 2 moved: bigger moves reach new bond/angle bins
        frames.append(frame)
    offered: list[list[float]] = []

    def most_moved(candidates):
        moves = [float(np.linalg.norm(c.positions[2] - ethane.positions[2])) for c in candidates]
        offered.append(moves)
        return int(np.argmax(moves))

    cbad = CBADFilter(ethane)
    (picked,) = cbad.select_per_run([frames], pick=most_moved)
    assert offered and len(offered[0]) >= 2  # several CBAD-new frames were offered to the chooser
    assert np.linalg.norm(picked.positions[2] - ethane.positions[2]) == pytest.approx(max(offered[0]))
    assert picked.info["cbad_index"] == 2  # the 0.3 Å frame
