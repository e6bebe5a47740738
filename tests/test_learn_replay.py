"""Whose failure: a validation's guard stops replayed with the model and with the reference."""

import ase.io
import numpy as np
import pytest

from mofsnap.calculator import SNAPCalculator
from mofsnap.exceptions import LearnError
from mofsnap.learn import ActiveLearning, LearnSettings, StopReplay, StopReplays, ValidationGuard, validate
from mofsnap.learn.replay import REPLAY_MARGIN_FS, replay_stops
from mofsnap.model import SNAPModel
from mofsnap.topology import Topology
from molecules import boxed
from springs import BondSprings

#: The validation of a model that knows nothing (zero SNAP coefficients, D3 only): the guard stops its
#: 400 K run within the first 60 fs as the molecule comes apart.
SETTINGS = LearnSettings(temperatures=(400.0,), final_md_steps=4000, hot_md_steps=400)


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    atoms = boxed("CH3CH2OH")
    model = SNAPModel(sorted(set(atoms.arrays["atom_types"])), twojmax=2)
    topology = Topology.from_atoms(atoms)
    directory = tmp_path_factory.mktemp("validation")
    validation = validate(model, atoms, topology, SETTINGS, None, directory, d3=True, progress=False,
                          stop_at_first_failure=True)
    (run,) = validation.runs
    assert run.stopped is not None and run.steps < 60
    return atoms, model, topology, validation, directory


def _replays(broken, reference, fs_before=50):
    atoms, model, topology, validation, directory = broken
    calculators = {"model": lambda a: SNAPCalculator(model, d3=True), "reference": reference}
    return replay_stops(validation, directory, calculators,
                        lambda t: ValidationGuard(topology, SETTINGS, t, atoms.get_volume()), topology, fs_before)


def test_a_stop_the_reference_does_not_make_is_the_models(broken):
    """Springs on the bonds hold the molecule where the model's D3 alone lets it come apart again."""
    atoms, _, topology, validation, directory = broken
    (replay,) = _replays(broken, lambda a: BondSprings(atoms))
    (run,) = validation.runs
    stop = int(ase.io.read(directory / "validation_400K.extxyz", -1).info["md_step"])
    # the latest written frame (every 10 fs) at or before 50 fs before the stop
    assert stop - 60 < 1000 * replay.from_ps <= stop - 50
    assert replay.fs == 50 + REPLAY_MARGIN_FS and replay.stopped == run.stopped
    assert replay.model.stopped is not None and replay.model.fs < replay.fs
    assert replay.reference.stopped is None and replay.reference.fs == replay.fs
    assert replay.reference.largest_stretch < SETTINGS.bond_tolerance < replay.model.largest_stretch
    assert replay.verdict == "the reference stays intact where the model stops: the failure is the model's"
    assert replay.line().startswith(f"400 K stop replayed from {replay.from_ps:.3f} ps (the replays' times count "
                                    f"from there): the model: {replay.model.stopped} (largest stretch ")
    # both start from the same state: the replays' first frames are that frame, momenta included
    start = [f for f in ase.io.read(directory / "validation_400K.extxyz", ":")
             if f.info["md_step"] == round(1000 * replay.from_ps)][0]
    for who in ("model", "reference"):
        first = ase.io.read(directory / f"replay_400K_50fs_{who}.extxyz", 0)
        np.testing.assert_array_equal(first.positions, start.positions)
        np.testing.assert_array_equal(first.get_momenta(), start.get_momenta())


def test_a_stop_the_reference_makes_too_is_the_references(broken):
    atoms, model, *_ = broken
    (replay,) = _replays(broken, lambda a: SNAPCalculator(model, d3=True), fs_before=30)
    assert replay.reference.stopped == replay.model.stopped is not None  # the same dynamics from the same state
    assert replay.verdict == "the reference stops too: the failure is the reference's"


def test_a_stop_neither_makes_again_is_settled_by_neither(broken):
    """From the run's intact start (60 fs before a stop within the first 60 fs), springs hold the bonds, so neither
    replayer trips a guard: the stop needed the run's own dynamics (the zero model's), and the replay says it
    settles nothing."""
    atoms, _, topology, validation, directory = broken
    calculators = {"model": lambda a: BondSprings(atoms), "reference": lambda a: BondSprings(atoms)}
    (replay,) = replay_stops(validation, directory, calculators,
                             lambda t: ValidationGuard(topology, SETTINGS, t, atoms.get_volume()), topology, 60)
    assert replay.from_ps == 0.0 and replay.model == replay.reference and replay.model.stopped is None
    assert replay.verdict == "neither stops in the replay: the stop needs the thermostat's or barostat's history"


def test_replays_resume_and_round_trip(broken, tmp_path):
    atoms, *_ = broken
    first = StopReplays(50, _replays(broken, lambda a: BondSprings(atoms)))
    again = StopReplays(50, _replays(broken, lambda a: BondSprings(atoms)))  # read back from the trajectories
    assert again == first
    assert StopReplays.read(first.write(tmp_path / "replays.json")) == first
    assert StopReplay.from_dict(first.replays[0].to_dict()) == first.replays[0]


def test_replaying_an_unfinished_campaign_is_refused(tmp_path, ethanol_file):
    with ActiveLearning(workdir=tmp_path / "work", settings=LearnSettings(structure=str(ethanol_file)),
                        progress=False) as learner:
        with pytest.raises(LearnError, match="holds no finished campaign .* run it before replaying"):
            learner.replay_stops(100)
        with pytest.raises(LearnError, match="positive time before the stop, in fs; got 0"):
            learner.replay_stops(0)
