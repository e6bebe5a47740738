"""Model cards round-trip exactly; ready models resolve by name and unknown names are refused clearly."""

from __future__ import annotations

import numpy as np
import pytest

from mofsnap.exceptions import ModelError, ResultFileError
from mofsnap.model import SNAPModel
from mofsnap.model_card import ErrorFigures, ModelCard, StabilityRun, packaged_model, packaged_models


def card(stability: list[StabilityRun]) -> ModelCard:
    return ModelCard(name="toy-gfn1", framework="a toy framework", formula="C2H6", atom_types=["C4a", "H1a"],
                     reference="GFN1-xTB", training_labels=40, test_labels=10, temperatures_K=[100.0, 200.0],
                     test=ErrorFigures(0.5, 60.0, 12.0, 10), stability=stability,
                     cell_lengths_300K_A=[10.1, 10.2, 10.3], cell_lengths_reference_A=[10.0, 10.0, 10.0],
                     validation_passed=all(run.stable for run in stability),
                     validation_checks=["300 K NPT run: 20 ps stable"], use_with={"d3": None, "zbl": None},
                     config_toml='structure = "toy"\n', notes=["a note"], mofsnap_version="0.1.0")


def test_card_round_trips_exactly_and_writes_markdown(tmp_path):
    original = card([StabilityRun("npt", 300.0, 20.0, None, 299.1, 1.2),
                     StabilityRun("npt", 800.0, 3.2, "temperature 2400 K > 2400 K at step 3200", 790.0, 4.5)])
    path = original.write(tmp_path / "toy-gfn1.json")
    assert ModelCard.read(path) == original
    text = path.with_suffix(".md").read_text()
    assert "# toy-gfn1" in text and "stopped: temperature 2400 K" in text and "10.100, 10.200, 10.300 Å" in text


def test_verdict_and_stable_range_follow_the_runs():
    stable, stopped = StabilityRun("npt", 300.0, 20.0, None, 300.0, 0.0), StabilityRun("npt", 600.0, 1.0, "x",
                                                                                        600.0, 0.0)
    assert card([]).stable_temperature_range_K is None
    assert card([stable]).verdict == "passed"
    mixed = card([stable, stopped])
    assert mixed.verdict == "failed" and mixed.stable_temperature_range_K == (300.0, 300.0)


def test_a_card_file_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"mofsnap_result": "fit-report", "version": 1}')
    with pytest.raises(ResultFileError, match="not a model-card"):
        ModelCard.read(path)


def test_unknown_ready_model_names_the_ready_ones():
    with pytest.raises(ModelError, match="no ready model named 'no-such-model'"):
        packaged_model("no-such-model")
    with pytest.raises(ModelError, match="does not exist; give the prefix"):
        SNAPModel.read("no-such-model")


def test_the_mof5_and_zif8_models_ship():
    assert {"mof5-gfn1", "zif8-gfn1"} <= set(packaged_models())


@pytest.mark.parametrize("name", packaged_models())
def test_every_ready_model_loads_by_name_and_has_its_card(name):
    model = SNAPModel.read(name)
    prefix = packaged_model(name)
    assert model == SNAPModel.read(prefix)
    card = ModelCard.read(prefix.with_suffix(".json"))
    assert card.name == name and card.atom_types == list(model.types)
    for suffix in (".md", ".toml", ".labels.extxyz.gz"):
        assert prefix.with_name(name + suffix).is_file()


@pytest.mark.parametrize("name", packaged_models())
def test_a_ready_model_named_alone_brings_its_posterior_for_the_grade(name):
    """The calculator of a ready model given by name finds the fit statistics beside the packaged files: the
    extrapolation grade and the error bars work on a fresh install."""
    from mofsnap.calculator import SNAPCalculator
    from mofsnap.fit.posterior import ModelPosterior, fit_statistics_path

    with SNAPCalculator(name) as calculator:
        posterior = calculator.posterior
    expected = ModelPosterior.read(fit_statistics_path(packaged_model(name)))
    assert posterior is not None
    np.testing.assert_array_equal(posterior.mean, expected.mean)
    np.testing.assert_array_equal(posterior.mean, SNAPModel.read(name).coefficients.ravel())


@pytest.mark.parametrize("name", packaged_models())
def test_zbl_card_gives_the_pairs_the_card_says(name, tmp_path):
    """``--zbl card`` takes the ZBL settings of the model's card (a ready model's included); a model without a
    card is refused in one line naming the file."""
    import argparse

    from mofsnap.calculator import ZBL
    from mofsnap.cli.options import calculator_from_args
    from mofsnap.exceptions import MDError

    args = argparse.Namespace(calculator="snap", model=name, d3=False, zbl="card")
    wanted = ModelCard.read(packaged_model(name).with_suffix(".json")).use_with["zbl"]
    with calculator_from_args(args) as calculator:
        assert calculator.zbl == (None if wanted is None else ZBL(**wanted))
    SNAPModel.read(name).write(tmp_path / "bare")
    with pytest.raises(MDError, match=f"--zbl card needs the model's card {tmp_path / 'bare.json'} "):
        calculator_from_args(argparse.Namespace(calculator="snap", model=str(tmp_path / "bare"), d3=False,
                                                zbl="card"))
