"""A finished campaign as a ready model: its model card, and the folder a user (or ``data/models``) receives.

Every campaign writes ``final/model.json`` and ``final/model.md`` (:func:`campaign_card`);
:func:`export_model` copies the model files, the card, the settings and the labels under one prefix.
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import replace
from pathlib import Path

import ase.io
from ase import Atoms

from .. import __version__
from ..calculator import D3, ZBL
from ..exceptions import LearnError
from ..fit import FitReport
from ..labelling import LabelStore
from ..model import SNAPModel
from ..model_card import ErrorFigures, ModelCard, StabilityRun
from ..reference import Reference
from .settings import LearnSettings
from .summary import LearnSummary

#: Files of a campaign's final model beside ``final/model``: the SNAP files and the fit statistics (grade).
MODEL_SUFFIXES = (".snapcoeff", ".snapparam", ".snapfit.npz")


def campaign_card(summary: LearnSummary, settings: LearnSettings, structure: Atoms, reference: Reference,
                  d3: bool, zbl: ZBL | None, name: str, fit: FitReport | None = None) -> ModelCard:
    """The model card of a finished campaign.

    Parameters
    ----------
    summary : LearnSummary
        The campaign's summary, with its validation.
    settings : LearnSettings
        The settings that made it (written into the card as TOML).
    structure : Atoms
        The (reference-relaxed, SNAP-ready) structure it was trained on.
    reference : Reference
        The labelling reference.
    d3 : bool
        Whether the production MD adds D3 to the model (the labels lack dispersion).
    zbl : ZBL or None
        The ZBL repulsion the campaign's MD used, to be used in production too.
    name : str
        The model's name.
    fit : FitReport, optional
        The final fit's report: its alpha and energy/stress weights join the card's hyperparameter note.
    """
    model = SNAPModel.read(summary.final.model)
    test = summary.final.test
    validation = summary.validation
    notes = [f"Labels from {reference.name}"
             + (", which includes dispersion: run the model WITHOUT D3." if reference.includes_dispersion
                else ", without dispersion: add D3 at MD time (use_with).")]
    if "xTB" in reference.name:
        notes.append("Tight-binding labels, not DFT: for trying the toolkit and quick studies; train against CP2K "
                     "for production.")
    optimised = settings.hyperparameter_generations()
    notes.append("Hyperparameters: " + ", ".join(f"{t} radius {float(r):.6g} weight {float(w):.6g}"
                                                  for t, r, w in zip(model.types, model.radii, model.weights))
                 + f", rfac0 {float(model.rfac0):.6g}"
                 + ("" if fit is None else f", alpha {fit.alpha:.6g}, energy weight {fit.energy_weight:.6g}, "
                                           f"stress weight {fit.stress_weight:.6g}")
                 + (f" (optimised on held-out training labels at generations {', '.join(map(str, optimised))})"
                    if optimised else " (model defaults)") + ".")
    if summary.refinements:
        notes.append(f"Refined in {len(summary.refinements)} round(s) after failed validations, with "
                     f"{sum(r.labelled for r in summary.refinements)} labels from before the guard stops; the first "
                     f"failure: {summary.first_validation.verdict.removeprefix('validation failed: ')}.")
    stable = sorted({f"{run.temperature_K:.0f}" for run in validation.runs if not run.stopped}, key=float)
    notes.append("Stable range: " + (f"{'-'.join(dict.fromkeys([stable[0], stable[-1]]))} K in the validation runs; "
                                     if stable else "no validation run finished; ")
                 + "beyond the training temperatures, check the extrapolation grade (mofsnap md --grade-*).")
    return ModelCard(
        name=name, framework=settings.structure, formula=structure.get_chemical_formula(),
        atom_types=list(model.types), reference=reference.name,
        training_labels=summary.final.train.n, test_labels=0 if test is None else test.n,
        temperatures_K=list(settings.temperatures),
        test=None if test is None else ErrorFigures(test.energy, test.forces, test.stress, test.n),
        stability=[StabilityRun("npt", run.temperature_K, run.steps / 1000.0, run.stopped, run.mean_temperature_K,
                                100.0 * run.max_volume_change) for run in validation.runs],
        cell_lengths_300K_A=list(validation.runs[0].mean_cell_lengths) if validation.runs else None,
        cell_lengths_reference_A=[float(x) for x in structure.cell.lengths()],
        validation_passed=validation.passed,
        validation_checks=[f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in validation.checks],
        use_with={"d3": D3().todict() if d3 else None, "zbl": None if zbl is None else zbl.todict()},
        config_toml=settings.to_toml(), notes=notes, mofsnap_version=__version__)


def export_model(workdir: str | Path, prefix: str | Path) -> Path:
    """Copy a finished campaign's model as ``PREFIX.*``: SNAP files, fit statistics, card, settings, labels.

    Parameters
    ----------
    workdir : path
        The campaign's work directory (``final/model.json`` must exist: the campaign has finished).
    prefix : path
        Prefix of the exported files; its last part becomes the model's name (``data/models/NAME/NAME``).

    Returns
    -------
    Path
        The card ``PREFIX.json``.
    """
    workdir, prefix = Path(workdir), Path(prefix)
    source = workdir / "final" / "model"
    card_path = source.with_suffix(".json")
    if not card_path.is_file():
        raise LearnError(f"{workdir} has no finished campaign (no final/model.json); run mofsnap learn on it first")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for suffix in MODEL_SUFFIXES:
        if source.with_name(source.name + suffix).is_file():
            shutil.copyfile(source.with_name(source.name + suffix), prefix.with_name(prefix.name + suffix))
    card = replace(ModelCard.read(card_path), name=prefix.name)
    path = card.write(prefix.with_name(prefix.name + ".json"))
    prefix.with_name(prefix.name + ".toml").write_text(card.config_toml)
    with gzip.open(prefix.with_name(prefix.name + ".labels.extxyz.gz"), "wt") as handle:
        ase.io.write(handle, list(LabelStore(workdir / "labels.db")), format="extxyz")
    return path
