"""Hyperparameters optimised inside the active-learning loop: at the chosen generations only, warm-started,
used by the later fits, read back on resume, on held-out training labels only, validated as a setting."""

import re
import shutil
from dataclasses import replace
from functools import partial
from pathlib import Path

import ase.io
import numpy as np
import pytest

from springs import BondSprings

import mofsnap.learn.loop
from mofsnap.exceptions import LearnError
from mofsnap.fit import FitReport, HyperparameterSearch
from mofsnap.labelling import LabelStore
from mofsnap.learn import DEMO, ActiveLearning, LearnSettings
from mofsnap.model import SNAPModel
from mofsnap.model_card import ModelCard
from mofsnap.reference import ASEReference

#: A tiny campaign (ethanol in a box, two generations) optimising at step 0, generation 2 and the final fit (3);
#: no refinement rounds, so that the final fit is the campaign's model.
SETTINGS = LearnSettings(n_perturbed=6, temperatures=(100.0, 200.0), runs=3, md_steps=30, frame_interval=5,
                         ramp_steps=20, ramp_segments=2, test_size=3, extra_random=1, final_md_steps=20,
                         hot_md_steps=10, twojmax=2, max_workers=1, optimise_hyperparameters_at=(0, 2, 3),
                         hyperparameter_evaluations=4, refine_rounds=0)
SEARCHED = (0, 2, 3)


def _learner(workdir: Path, structure: Path) -> ActiveLearning:
    reference = ASEReference(partial(BondSprings, ase.io.read(structure)), "springs", {"k": 20.0})
    return ActiveLearning(workdir=workdir, settings=replace(SETTINGS, structure=str(structure)),
                          reference=reference, progress=False)


class SearchSpy:
    """Records the arguments of every hyperparameter search the loop starts (and runs it)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.original = mofsnap.learn.loop.search_hyperparameters

    def __call__(self, train, validation, start, **kwargs):
        self.calls.append({"train": list(train), "validation": list(validation), "start": start, **kwargs})
        return self.original(train, validation, start, **kwargs)

    def __enter__(self) -> "SearchSpy":
        mofsnap.learn.loop.search_hyperparameters = self
        return self

    def __exit__(self, *exc_info) -> None:
        mofsnap.learn.loop.search_hyperparameters = self.original


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, ethanol_file) -> tuple[Path, list[dict]]:
    """The finished campaign and the searches it started, in order."""
    work = tmp_path_factory.mktemp("hyper") / "work"
    with SearchSpy() as spy, _learner(work, ethanol_file) as learner:
        learner.run()
    return work, spy.calls


def _search(work: Path, k: int) -> HyperparameterSearch:
    return HyperparameterSearch.read(work / f"gen{k:03d}" / "hyperparameters.json")


def test_optimisation_runs_at_the_chosen_generations_only(campaign):
    work, calls = campaign
    assert len(calls) == len(SEARCHED)
    written = sorted(int(p.parent.name[3:]) for p in work.glob("gen*/hyperparameters.json"))
    assert written == list(SEARCHED)
    for k, call in zip(SEARCHED, calls):
        assert call["n_evaluations"] == SETTINGS.hyperparameter_evaluations
        assert len(_search(work, k).history) == SETTINGS.hyperparameter_evaluations


def test_each_search_starts_from_the_previous_best(campaign):
    work, calls = campaign
    defaults = SNAPModel(_search(work, 0).best["types"], twojmax=SETTINGS.twojmax, rcutfac=SETTINGS.rcutfac)
    first = calls[0]
    np.testing.assert_array_equal(first["start"].radii, defaults.radii)
    assert (first["energy_weight"], first["stress_weight"]) == (SETTINGS.energy_weight, SETTINGS.stress_weight)
    for previous, k, call in zip(SEARCHED, SEARCHED[1:], calls[1:]):
        before, history = _search(work, previous).best, _search(work, k).history
        # the written history begins at the previous optimisation's best, not at the defaults
        for key in ("radii", "weights"):
            np.testing.assert_allclose(history[0]["params"][key], before[key], rtol=1e-12)
        assert history[0]["params"]["rfac0"] == pytest.approx(before["rfac0"], rel=1e-12)
        assert (call["alpha"], call["energy_weight"], call["stress_weight"]) == (
            before["alpha"], before["energy_weight"], before["stress_weight"])
    assert _search(work, 0).best["radii"] != list(defaults.radii)  # so the warm start is not the default start


def test_later_fits_use_the_latest_optimised_hyperparameters(campaign):
    work, _ = campaign
    latest = {0: 0, 1: 0, 2: 2, 3: 3}
    for k, g in latest.items():
        model, best = SNAPModel.read(work / f"gen{k:03d}" / "model"), _search(work, g).best
        assert model.radii.tolist() == best["radii"] and model.weights.tolist() == best["weights"]
        assert model.rfac0 == best["rfac0"]
    final = SNAPModel.read(work / "final" / "model")
    assert final.radii.tolist() == _search(work, 3).best["radii"]
    (note,) = [n for n in ModelCard.read(work / "final" / "model.json").notes if n.startswith("Hyperparameters")]
    report = FitReport.read(work / "gen003" / "report.json")
    radius, weight = re.search(rf"{final.types[0]} radius (\S+) weight ([^,\s]+)", note).groups()
    assert float(radius) == pytest.approx(final.radii[0], rel=1e-5)
    assert float(weight) == pytest.approx(final.weights[0], rel=1e-5)
    assert float(re.search(r"alpha ([^,\s]+)", note).group(1)) == pytest.approx(report.alpha, rel=1e-5)
    assert "at generations 0, 2, 3" in note and "np.float64" not in note


def test_fits_use_the_optimised_energy_and_stress_weights(campaign):
    work, _ = campaign
    for k, g in {0: 0, 1: 0, 2: 2, 3: 3}.items():
        report, best = FitReport.read(work / f"gen{k:03d}" / "report.json"), _search(work, g).best
        assert (report.energy_weight, report.stress_weight) == (best["energy_weight"], best["stress_weight"])
    assert (report.energy_weight, report.stress_weight) != (SETTINGS.energy_weight, SETTINGS.stress_weight)


def test_a_resumed_fit_reads_the_optimisation_back(campaign, ethanol_file, tmp_path):
    work, _ = campaign
    copy = tmp_path / "work"
    shutil.copytree(work, copy, ignore=shutil.ignore_patterns("lock"))
    for name in ("report.json", "model.snapcoeff", "model.snapparam"):
        (copy / "gen002" / name).unlink()  # killed after the search, before the fit's completion mark
    stamp = (copy / "gen002" / "hyperparameters.json").stat().st_mtime_ns
    with SearchSpy() as spy, _learner(copy, ethanol_file) as learner:
        model, _ = learner._fit(2)
    assert spy.calls == []  # not recomputed
    assert (copy / "gen002" / "hyperparameters.json").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(model.coefficients, SNAPModel.read(work / "gen002" / "model").coefficients)


def test_the_validation_split_holds_out_training_labels_only(campaign):
    work, calls = campaign
    store = LabelStore(work / "labels.db")
    roles = {a.info["label_hash"]: a.info["role"] for a in store}
    test = {h for h, role in roles.items() if role == "test"}
    final = calls[SEARCHED.index(3)]  # optimised after the test labels were made
    assert test, "the campaign labelled no test configuration"
    validation = {a.info["label_hash"] for a in final["validation"]}
    train = {a.info["label_hash"] for a in final["train"]}
    assert validation and not validation & train
    assert not (validation | train) & test
    assert validation | train == {a.info["label_hash"] for a in store.select(role="train")}
    assert len(validation) == round(0.2 * len(validation | train))


def test_unset_schedule_is_step0_and_the_middle_generation():
    assert LearnSettings().hyperparameter_generations() == ()
    assert LearnSettings(optimise_hyperparameters_at=None).hyperparameter_generations() == (0, 5)
    assert replace(DEMO, optimise_hyperparameters_at=None).hyperparameter_generations() == (0, 3)
    assert LearnSettings(optimise_hyperparameters_at=[]).hyperparameter_generations() == ()
    assert LearnSettings(optimise_hyperparameters_at=[4, 0, 4]).hyperparameter_generations() == (0, 4)


@pytest.mark.parametrize("value, message", [
    ("[0, 4]", "setting 'optimise_hyperparameters_at' names generation 4, but the campaign's generations are 0 to 3"),
    ("[-1]", "setting 'optimise_hyperparameters_at' must be at least 0, got -1"),
    ("[1.5]", "setting 'optimise_hyperparameters_at' must be an integer, got 1.5"),
    ('"0"', "setting 'optimise_hyperparameters_at' must be a list of integers, got '0'"),
])
def test_a_bad_schedule_is_refused_at_load_in_one_line(tmp_path, value, message):
    path = tmp_path / "bad.toml"
    path.write_text(f"temperatures = [100, 200]\noptimise_hyperparameters_at = {value}\n")
    with pytest.raises(LearnError) as error:
        LearnSettings.from_toml(path)
    assert str(error.value).startswith(f"{path}: {message}") and "\n" not in str(error.value)


def test_schedule_round_trips_through_toml(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SETTINGS.to_toml())
    assert LearnSettings.from_toml(path) == SETTINGS
    assert LearnSettings.from_toml(path).optimise_hyperparameters_at == (0, 2, 3)
