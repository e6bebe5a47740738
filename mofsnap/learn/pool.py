"""The ZIF-8 route: select with CBAD from existing trajectories, label the selection, fit — one call."""

from __future__ import annotations

from concurrent.futures import Executor
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from ..cbad import CBADFilter
from ..fit import fit_snap
from ..reference import Reference
from .loop import ActiveLearning
from .settings import LearnSettings
from .summary import RMSE, PoolResult


def learn_from_pool(pool: list[str | Path], structure: Atoms | str, workdir: str | Path,
                    reference: Reference | None = None, settings: LearnSettings = LearnSettings(),
                    executor: Executor | None = None, validation_fraction: float = 0.1,
                    progress: bool = True) -> PoolResult:
    """Select with CBAD from existing trajectories (e.g. AIMD), label the selection, fit.

    The frames of all trajectories are offered in a seeded shuffle; a random ``validation_fraction`` of the
    selection is held out for the reported validation errors. Resumable like :class:`ActiveLearning` (same
    work-directory layout: ``labels.db``, ``descriptors/``), with ``model.snapcoeff``/``.snapparam``,
    ``report.json``, ``parity.png``, ``cbad.json`` and ``result.json`` (the returned result) in ``workdir``.

    Parameters
    ----------
    pool : list of paths
        Trajectory files (any format ASE reads) of the structure.
    structure : Atoms or str
        The typed structure (Atoms, a built-in name or a file); its atom types are given to every frame.
    workdir : path
        Where labels, model and reports go.
    reference : Reference, optional
        Labelling reference; defaults to ``settings.reference``.
    settings : LearnSettings
        Seed, CBAD resolutions, bond tolerance, SNAP and fit settings, workers.
    executor : Executor, optional
        Runs the labelling (default: as :class:`ActiveLearning`).
    validation_fraction : float
        Fraction of the selection held out for validation.
    progress : bool
        Show the CBAD selection's progress bar.

    Returns
    -------
    PoolResult
        Numbers offered, selected and labelled, the model prefix and its errors.
    """
    with ActiveLearning(structure, workdir, settings, reference, executor, progress) as learner:
        frames = [f for path in pool for f in ase.io.iread(str(path))]
        for f in frames:
            f.arrays["atom_types"] = learner.structure.arrays["atom_types"]
            f.calc = None
        cbad = CBADFilter(learner.topology, settings.resolutions or None, bond_tolerance=settings.bond_tolerance)
        selected = cbad.select(frames, shuffle=True, seed=settings.seed, progress=progress)
        held_out = np.random.default_rng(settings.seed).random(len(selected)) < validation_fraction
        labelled = learner.label(selected, [{"generation": 0, "role": "test" if h else "train", "source": "pool",
                                             "frame": int(a.info.get("cbad_index", i))}
                                            for i, (a, h) in enumerate(zip(selected, held_out))])
        validation = sorted(learner.store.select(role="test"), key=lambda a: a.info["label_hash"])
        model, report = fit_snap(learner.training_set(0), validation or None,
                                 model=learner.model(),
                                 energy_weight=settings.energy_weight, stress_weight=settings.stress_weight,
                                 cache_dir=learner.workdir / "descriptors", seed=settings.seed)
        out = learner.workdir / "model"
        model.write(out)
        report.write(learner.workdir / "report.json")
        report.plot(learner.workdir / "parity.png")
        cbad.write(learner.workdir / "cbad.json")
        result = PoolResult(len(frames), len(selected), len(labelled), str(out),
                            RMSE.from_metrics(report.metrics["train"]),
                            RMSE.from_metrics(report.metrics["validation"]) if validation else None)
        result.write(learner.workdir / "result.json")
    return result
