"""Helpers of the benchmarks that compare active-learning campaigns (``bench_learn``, ``bench_zoo``).

Campaigns that differ only in their selection rule share step 0 (:func:`seed_from` copies the labels, MLP0 and
the reference relaxation), and are scored on one common test set (:func:`common_test_set`: frames of a ramp
MD with each campaign's final model, labelled with the reference), so that no rule is tested only on the
configurations its own model visits. :func:`learning_curves` scores every generation's model on that set and
names the rises from one generation to the next that are beyond the noise of its frames.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from mofsnap.fit import FitReport
from mofsnap.labelling import LabelStore, label
from mofsnap.learn import ActiveLearning, LearnSettings, MDTask, read_run, run_tasks
from mofsnap.learn.loop import LABEL_CHECKS
from mofsnap.learn.scoring import change_intervals, rmse, squared_errors
from mofsnap.model import SNAPModel

#: The test-error quantities and their units.
QUANTITIES = {"energy": "meV/atom", "forces": "meV/Å", "stress": "MPa"}


def seed_from(source: Path, workdir: Path, step0: bool = True) -> None:
    """Give the work directory ``workdir`` the reference relaxation of the one ``source`` and, with ``step0``,
    its step-0 labels, MLP0 and descriptor cache (nothing is copied into a work directory that has labels)."""
    workdir.mkdir(parents=True, exist_ok=True)
    relaxed = source / "structure_relaxed.extxyz"
    if relaxed.exists() and not (workdir / relaxed.name).exists():
        shutil.copy2(relaxed, workdir)
    target = workdir / "labels.db"
    if not step0 or target.exists():
        return
    with sqlite3.connect(source / "labels.db") as src, sqlite3.connect(target) as dst:
        src.backup(dst)  # consistent copy of the SQLite file, whatever its journal state
    for name in ("gen000", "descriptors"):
        if (source / name).exists():
            shutil.copytree(source / name, workdir / name, dirs_exist_ok=True)


def final_model(learner: ActiveLearning, settings: LearnSettings) -> Path | None:
    """The prefix of the model of the campaign's last generation, None when that generation is not fitted."""
    gen = learner.workdir / f"gen{len(settings.temperatures):03d}"
    return gen / "model" if (gen / "report.json").exists() else None


def common_test_set(learners: dict[str, ActiveLearning], settings: LearnSettings, per_campaign: int,
                    test_dir: Path, executor: Executor) -> list:
    """Ramp MD with each campaign's last-generation model; ``per_campaign`` random intact frames of each,
    labelled with the reference (in ``test_dir``). Campaigns without a last-generation model are left out."""
    test_dir.mkdir(parents=True, exist_ok=True)
    any_learner = next(iter(learners.values()))
    temperatures = tuple(np.linspace(10.0, max(settings.temperatures), settings.ramp_segments))
    steps = max(1, settings.ramp_steps // settings.ramp_segments)
    tasks = {name: MDTask(str(model), any_learner.structure, temperatures, steps, settings.frame_interval,
                          settings.pressure_MPa, settings.seed + 31, str(test_dir / f"ramp_{name}.extxyz"),
                          any_learner.topology.to_dict(), d3=any_learner.d3, max_force=settings.max_force,
                          max_temperature_factor=settings.max_temperature_factor,
                          bond_tolerance=settings.bond_tolerance, zbl=any_learner.zbl)
             for name, learner in learners.items() if (model := final_model(learner, settings)) is not None}
    if not tasks:
        return []
    summaries = run_tasks(list(tasks.values()), executor, "test set: ramp MD per final model", progress=False)
    rng = np.random.default_rng(settings.seed + 17)
    frames, metadata = [], []
    for (name, task), summary in zip(tasks.items(), summaries):
        pool = [(i, f) for i, f in enumerate(read_run(task.trajectory)[1:], start=1)
                if not any_learner.topology.broken_bonds(f.positions, f.cell.array, settings.bond_tolerance).any()]
        chosen = rng.choice(len(pool), size=min(per_campaign, len(pool)), replace=False)
        print(f"test set: ramp of the {name} model: {summary['frames']} frames"
              f"{', stopped: ' + summary['stopped'] if summary['stopped'] else ''}; {len(chosen)} taken",
              file=sys.stderr, flush=True)
        for c in sorted(chosen):
            frames.append(pool[c][1])
            metadata.append({"role": "test", "source": f"{test_dir.name}/ramp_{name}.extxyz", "frame": pool[c][0]})
    store = LabelStore(test_dir / "labels.db")
    summary = label(frames, any_learner.reference, store, executor, metadata=metadata, checks=LABEL_CHECKS,
                    progress=False)
    statuses = store.statuses()
    return [store.get(key) for key in summary.keys if statuses.get(key) == "ok"]


def generation_curve(workdir: Path, test: list, last: int | None = None) -> tuple[list[dict], list[np.ndarray]]:
    """Every fitted generation (up to ``last``) of the campaign in ``workdir`` scored on ``test``.

    Returns
    -------
    list of dict
        Per generation: ``generation``, ``n_train``, the RMSE of each quantity of :data:`QUANTITIES`, and from
        the second point on ``change_interval`` (per quantity, the 95 % paired-bootstrap interval of the
        change from the previous generation, :func:`mofsnap.learn.scoring.change_intervals`) and
        ``rises_beyond_noise`` (the quantities whose rise is beyond the noise of ``test``: interval above 0).
    list of numpy.ndarray
        The per-frame squared errors behind each point (:func:`mofsnap.learn.scoring.squared_errors`).
    """
    curve: list[dict] = []
    squared: list[np.ndarray] = []
    if not test:
        return curve, squared
    for gen in sorted(workdir.glob("gen[0-9][0-9][0-9]")):
        if (last is not None and int(gen.name[3:]) > last) or not (gen / "report.json").exists():
            break
        squared.append(squared_errors(SNAPModel.read(gen / "model"), test))
        errors = rmse(squared[-1])
        point = {"generation": int(gen.name[3:]),
                 "n_train": FitReport.read(gen / "report.json").metrics["train"]["n_configurations"],
                 **{q: getattr(errors, q) for q in QUANTITIES}}
        if len(squared) > 1:
            point["change_interval"] = change_intervals(squared[-2], squared[-1])
            point["rises_beyond_noise"] = [q for q in QUANTITIES if point["change_interval"][q][0] > 0]
        curve.append(point)
    return curve, squared


def learning_curves(learners: dict[str, ActiveLearning], n_generations: int, test: list) -> dict[str, list[dict]]:
    """:func:`generation_curve` of every campaign (generations 0 to ``n_generations``) on ``test``, by name."""
    return {name: generation_curve(learner.workdir, test, n_generations)[0] for name, learner in learners.items()}


def rise_counts(curve: list[dict]) -> dict[str, tuple[int, int]]:
    """Per quantity of a :func:`generation_curve`: how often the error rose from one generation to the next,
    and how many of those rises are beyond the noise of the test frames (``rises_beyond_noise``)."""
    steps = list(zip(curve, curve[1:]))
    return {q: (sum(now[q] > before[q] for before, now in steps),
                sum(now[q] > before[q] and q in now["rises_beyond_noise"] for before, now in steps))
            for q in QUANTITIES}
