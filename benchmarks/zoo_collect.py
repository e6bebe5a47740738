"""The zoo benchmark's records of finished ``mofsnap learn`` campaigns: how the full-budget table is made.

A full-budget campaign (``BUDGETS["full"]`` of :mod:`bench_zoo`, 50 ps of validation) takes 30-100 minutes on
2 cores, so these are run one by one with ``mofsnap learn`` on a settings file made from the budget
(docs/zoo_benchmark.md, "Results (full budget, the default rule)", shows how). This script reads their work
directories (``summary.json``, ``settings.json``) and writes one record per campaign in the format of
``bench_zoo.json``: labels, own-test errors, validation verdict and checks, time to first failure, the runs the
guard stopped per generation, the learning curve, the wall time, and every setting that differs from the
budget (``settings_beyond_budget``: a framework's spin choice, or a variant's schedule), and the settings the
campaign predates (``predates``: it ran with the behaviour from before them). Wall times are those
of each campaign's last call (``summary.json``): a campaign resumed to finish counts only its last call.
With ``--replay FS``, the validation stops of each failed campaign are replayed from FS fs before the stop
with its model and with the reference (:func:`bench_zoo.replay_stops`; ``replays`` in its record). With
``--retest N``, every generation of each campaign is scored on N fresh frames of the test ramp as the loop
runs it now (:func:`retest`; ``retest`` in its record): a campaign made before the ramp kept up with its
temperatures was tested on cold frames only. With ``--pooled-test``, campaigns of one framework that differ in
their seeds are scored on their own test labels pooled (:func:`pooled_test`; ``pooled_test`` in the results),
and the rises of their seed-mean learning curve are counted.

    python benchmarks/zoo_collect.py runs/mof5 runs/dmof1 --json zoo_full.json
    python benchmarks/zoo_collect.py runs/mof74 --replay 100 --json zoo_mof74.json
    python benchmarks/zoo_collect.py runs/mof5 --retest 30 --json zoo_mof5.json
    python benchmarks/zoo_collect.py runs/mof5-s0 runs/mof5-s1 runs/mof5-s2 --pooled-test --json mof5_seeds.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from bench_zoo import (BUDGETS, Campaign, campaign_record, finished_learner, replay_line, replay_stops, seed_mean_rises,
                       write_results)
from campaigns import QUANTITIES, common_test_set, generation_curve, rise_counts

from mofsnap.executors import worker_pool
from mofsnap.fit import fit_snap
from mofsnap.learn import ActiveLearning, LearnSettings, read_run
from mofsnap.learn.scoring import change_intervals, rmse, squared_errors
from mofsnap.learn.summary import LearnSummary
from mofsnap.model import SNAPModel

#: Fewest test frames within a step's learned range for :func:`learned_range_rises` to count the step.
LEARNED_RANGE_MIN_FRAMES = 5
#: Keys of a work directory's ``settings.json`` that are not settings of the budget.
NOT_SETTINGS = {"reference_settings_hash", "structure_hash"}


def collect(workdir: Path) -> dict:
    """The record of the finished campaign in ``workdir``.

    Raises
    ------
    SystemExit
        ``workdir`` holds no finished campaign (no ``summary.json``).
    """
    if not (workdir / "summary.json").exists():
        raise SystemExit(f"zoo_collect: {workdir} holds no finished campaign (no summary.json); run or resume it "
                         "with mofsnap learn first")
    used = json.loads((workdir / "settings.json").read_text())
    budget = json.loads(json.dumps(asdict(replace(BUDGETS["full"], structure=used["structure"]))))
    summary = LearnSummary.read(workdir / "summary.json")
    record = campaign_record(Campaign(used["structure"], used["selection"], used["seed"]), summary,
                             summary.wall_seconds)
    record["workdir"] = workdir.name
    record["settings_beyond_budget"] = {key: value for key, value in used.items()
                                        if key not in NOT_SETTINGS | {"structure"} and budget.get(key) != value}
    record["predates"] = sorted(set(budget) - set(used) - set(LearnSettings.RUNTIME_KEYS))
    return record


def retest(workdir: Path, frames: int, workers: int) -> dict:
    """Every fitted generation of the finished campaign in ``workdir`` on a fresh test set: ``frames`` random
    intact frames of the test ramp as the loop runs it now (each segment reheated to its temperature, with
    the model of the campaign's last learning generation), labelled with the reference in ``workdir/retest``
    (a rerun reads them back).

    Returns
    -------
    dict
        ``frames`` (labelled), ``curve`` (per generation: ``generation``, ``n_train`` and the RMSE of each
        quantity of :data:`campaigns.QUANTITIES`), ``rises``: per quantity, how often a generation's error
        is above the previous generation's, ``rises_beyond_noise``: how many of those a paired bootstrap over
        the frames (:func:`mofsnap.learn.scoring.change_intervals`) tells from noise, and ``rise_details`` (generation, quantity,
        errors before and after, beyond the noise or not); ``learned_range``: the same counts on the frames
        of the ramp at or below the temperature the earlier generation of each step had learned at
        (:func:`learned_range_rises`); ``capacity``: the last fit's errors on its own labels and a fit
        without the perturbed copies (:func:`capacity`).
    """
    with finished_learner(workdir) as learner:
        executor = worker_pool(workers)
        try:
            test = common_test_set({"campaign": learner}, learner.settings, frames, workdir / "retest", executor)
        finally:
            executor.shutdown()
        curve, squared = generation_curve(workdir, test)
        found = capacity(learner, curve[-1]["generation"], test)
    rises = [{"generation": now["generation"], "quantity": q, "before": before[q], "after": now[q],
              "beyond_noise": q in now["rises_beyond_noise"]}
             for before, now in zip(curve, curve[1:]) for q in QUANTITIES if now[q] > before[q]]
    found_rises = rise_counts(curve)
    counts = {q: n for q, (n, _) in found_rises.items()}
    beyond = {q: n for q, (_, n) in found_rises.items()}
    learned = learned_range_rises(squared, [learned_temperature(learner.settings, p["generation"]) for p in curve],
                                  ramp_temperatures(workdir, test))
    return {"frames": len(test), "curve": curve, "rises": counts, "rises_beyond_noise": beyond, "rise_details": rises,
            "learned_range": learned, "capacity": found}


def pooled_test(workdirs: list[Path]) -> dict:
    """The learning curves of campaigns of one framework that differ in their seeds, on one test set: the own
    test labels of all of them pooled. With :func:`bench_zoo.seed_mean_rises` of those curves."""
    test = []
    for workdir in workdirs:
        with finished_learner(workdir) as learner:
            test += learner.test_set()
    curves = {w.name: generation_curve(w, test)[0] for w in workdirs}
    return {"frames": len(test), "curves": curves, "seed_mean_rises": seed_mean_rises(list(curves.values()))}


def learned_temperature(settings: LearnSettings, generation: int) -> float:
    """The highest temperature generation ``generation`` has labels from (0 for step 0's perturbed copies)."""
    return settings.temperatures[min(generation, len(settings.temperatures)) - 1] if generation else 0.0


def ramp_temperatures(workdir: Path, test: list) -> np.ndarray:
    """The ramp segment's temperature (K) each labelled test frame was taken at."""
    ramps = {source: read_run(workdir / source) for source in {a.info["source"] for a in test}}
    return np.array([ramps[a.info["source"]][a.info["frame"]].info["md_target_temperature_K"] for a in test])


def learned_range_rises(squared: list[np.ndarray], learned: list[float], temperatures: np.ndarray) -> dict:
    """Rises between consecutive generations counted on the test frames no hotter than the temperature the
    earlier generation had learned at: where both models had labels. Steps with fewer than
    :data:`LEARNED_RANGE_MIN_FRAMES` such frames are left out (``steps`` counts the others)."""
    rises = {q: 0 for q in QUANTITIES}
    beyond = {q: 0 for q in QUANTITIES}
    steps = 0
    for k in range(len(squared) - 1):
        inside = temperatures <= learned[k]
        if inside.sum() < LEARNED_RANGE_MIN_FRAMES:
            continue
        steps += 1
        before, after = squared[k][inside], squared[k + 1][inside]
        for q in QUANTITIES:
            if getattr(rmse(after), q) > getattr(rmse(before), q):
                rises[q] += 1
                beyond[q] += beyond_noise(before, after, q)
    return {"steps": steps, "rises": rises, "rises_beyond_noise": beyond}


def capacity(learner: ActiveLearning, generation: int, test: list) -> dict:
    """How well generation ``generation``'s fit reproduces its own labels, per kind, and what a fit of its
    labels from MD alone (without step 0's perturbed copies) scores on ``test``.

    Returns
    -------
    dict
        ``training``: RMSE per quantity on the ``perturbed copies`` and on the ``labels from MD`` (learning
        runs and refinement rounds) under the generation's fit; ``without_perturbed_copies``: the retest RMSE
        of the same fit (hyperparameters, alpha by the same cross-validation) on the labels from MD alone.
    """
    labels = learner.training_set(generation)
    kinds = {"perturbed copies": [a for a in labels if a.info["generation"] == 0],
             "labels from MD": [a for a in labels if a.info["generation"] > 0]}
    fitted = SNAPModel.read(learner.generation_dir(generation) / "model")
    training = {kind: {"labels": len(group), **rmse_dict(squared_errors(fitted, group))}
                for kind, group in kinds.items()}
    model, (_, energy_weight, stress_weight) = learner.hyperparameters(generation)
    alone, _ = fit_snap(kinds["labels from MD"], model=model, energy_weight=energy_weight,
                        stress_weight=stress_weight, cache_dir=learner.workdir / "descriptors",
                        seed=learner.settings.seed, progress=False)
    return {"training": training, "without_perturbed_copies": rmse_dict(squared_errors(alone, test))}


def rmse_dict(squared: np.ndarray) -> dict[str, float]:
    """The RMSE of every quantity of :func:`mofsnap.learn.scoring.squared_errors`, by name."""
    errors = rmse(squared)
    return {q: getattr(errors, q) for q in QUANTITIES}


def beyond_noise(before: np.ndarray, after: np.ndarray, quantity: str) -> bool:
    """Whether the RMSE of ``quantity`` rose from ``before`` to ``after`` (squared errors of two models on the same
    frames) by more than the noise of the frames: the 95 % paired-bootstrap interval of the rise is above 0."""
    return change_intervals(before, after)[quantity][0] > 0


def retest_line(found: dict) -> str:
    """A :func:`retest` in words: the last generation's errors and the rises along the curve."""
    last = found["curve"][-1]
    errors = ", ".join(f"{q} {last[q]:.3g} {unit}" for q, unit in QUANTITIES.items())
    rises = ", ".join(f"{q} {found['rises'][q]} ({found['rises_beyond_noise'][q]} beyond noise)"
                      for q in QUANTITIES)
    learned = found["learned_range"]
    within = ", ".join(f"{q} {learned['rises'][q]} ({learned['rises_beyond_noise'][q]})" for q in QUANTITIES)
    fitted = "; ".join(f"{kind} ({e['labels']}) " + "/".join(f"{e[q]:.3g}" for q in QUANTITIES)
                       for kind, e in found["capacity"]["training"].items())
    alone = "/".join(f"{found['capacity']['without_perturbed_copies'][q]:.3g}" for q in QUANTITIES)
    return (f"retested on {found['frames']} ramp frames: {errors}; rises over {len(found['curve']) - 1} "
            f"generations: {rises}; on the temperatures learned already ({learned['steps']} steps): {within}; "
            f"last fit on its own labels: {fitted}; fitted without the perturbed copies: {alone}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("workdirs", nargs="+", type=Path, help="work directories of finished campaigns")
    parser.add_argument("--json", required=True, type=Path, help="the JSON file to write")
    parser.add_argument("--replay", type=int, default=0, metavar="FS",
                        help="replay each failed campaign's validation stops with its model and with the reference "
                             "from FS fs before each stop (default: 0, none)")
    parser.add_argument("--retest", type=int, default=0, metavar="N",
                        help="score every generation of each campaign on N fresh frames of the test ramp "
                             "(default: 0, none)")
    parser.add_argument("--pooled-test", action="store_true",
                        help="score every generation of each campaign (seeds of one framework) on their own test "
                             "labels pooled, and count the rises of the seed-mean curve")
    parser.add_argument("--workers", type=int, default=2, help="processes labelling the retest frames (default: 2)")
    args = parser.parse_args(argv)
    structures = {json.loads((w / "settings.json").read_text())["structure"]
                  for w in args.workdirs if (w / "settings.json").exists()}
    if args.pooled_test and len(structures) > 1:
        parser.error(f"--pooled-test needs campaigns of one framework, got {', '.join(sorted(structures))}; give the "
                     "work directories of one framework's seeds")
    records = [collect(workdir) for workdir in args.workdirs]
    for workdir, record in zip(args.workdirs, records):
        if args.replay and not record["passed"]:
            record["replays"] = replay_stops(workdir, args.replay)
        if args.retest:
            record["retest"] = retest(workdir, args.retest, args.workers)
    results = {"mode": "full budget, each campaign with its settings beyond the budget",
               "wall_seconds": "of each campaign's last mofsnap learn call: a resumed campaign's earlier calls are "
                               "not counted",
               "settings": json.loads(json.dumps(asdict(BUDGETS["full"]))), "campaigns": records}
    if args.pooled_test:
        results["pooled_test"] = pooled_test(args.workdirs)
    write_results(args.json, results)
    for r in records:
        test = r["own_test"] or {}
        print(f"{r['workdir']:14} {r['structure']:17} {r['labels_train']:4d} train  "
              f"E {test.get('energy', float('nan')):5.2f}  F {test.get('forces', float('nan')):4.0f}  "
              f"S {test.get('stress', float('nan')):5.1f}  {'passed' if r['passed'] else 'FAILED'}  "
              f"{r['first_failure'][:90]}  {r['wall_seconds'] / 60:.0f} min  {r['settings_beyond_budget'] or ''}"
              + (f"  predates {', '.join(r['predates'])}" if r["predates"] else ""))
        for replay in r.get("replays", ()):
            print(f"    replayed: {replay_line(replay)}")
        if "retest" in r:
            print(f"    {retest_line(r['retest'])}")
    if args.pooled_test:
        pooled = results["pooled_test"]
        for name, curve in pooled["curves"].items():
            print(f"{name:14} on {pooled['frames']} pooled test frames: " + ", ".join(
                f"{q} " + " ".join(f"{p[q]:.3g}" for p in curve) for q in QUANTITIES))
        rises = pooled["seed_mean_rises"]
        print("seed-mean curve: " + (", ".join(f"{q} rises {r['rises']} ({r['beyond_seed_spread']} beyond twice the "
                                               f"seeds' standard error) in {r['steps']} steps"
                                               for q, r in rises.items()) if rises else "fewer than three seeds"))
    return results


if __name__ == "__main__":
    main()
