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
temperatures was tested on cold frames only.

    python benchmarks/zoo_collect.py runs/mof5 runs/dmof1 --json zoo_full.json
    python benchmarks/zoo_collect.py runs/mof74 --replay 100 --json zoo_mof74.json
    python benchmarks/zoo_collect.py runs/mof5 --retest 30 --json zoo_mof5.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from bench_zoo import BUDGETS, Campaign, campaign_record, finished_learner, replay_line, replay_stops, write_results
from campaigns import QUANTITIES, common_test_set

from mofsnap.executors import worker_pool
from mofsnap.fit import FitReport
from mofsnap.learn import LearnSettings
from mofsnap.learn.loop import prediction_residuals
from mofsnap.learn.summary import LearnSummary
from mofsnap.model import SNAPModel
from mofsnap.units import EV_PER_A3_IN_MPA

#: The paired bootstrap that tells a rise of a retest curve from the noise of its frames: resamples, seed.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
#: Column of each quantity in :func:`squared_errors`.
QUANTITIES_INDEX = {q: i for i, q in enumerate(QUANTITIES)}
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
        the frames (:func:`beyond_noise`) tells from noise, and ``rise_details`` (generation, quantity,
        errors before and after, beyond the noise or not).
    """
    with finished_learner(workdir) as learner:
        executor = worker_pool(workers)
        try:
            test = common_test_set({"campaign": learner}, learner.settings, frames, workdir / "retest", executor)
        finally:
            executor.shutdown()
    curve, squared = [], []
    for gen in sorted(workdir.glob("gen[0-9][0-9][0-9]")):
        if not (gen / "report.json").exists():
            break
        squared.append(squared_errors(SNAPModel.read(gen / "model"), test))
        curve.append({"generation": int(gen.name[3:]),
                      "n_train": FitReport.read(gen / "report.json").metrics["train"]["n_configurations"],
                      **{q: float(np.sqrt(squared[-1][:, i].sum() / squared[-1][:, i + 3].sum()))
                         for q, i in QUANTITIES_INDEX.items()}})
    rises = [{"generation": now["generation"], "quantity": q, "before": before[q], "after": now[q],
              "beyond_noise": beyond_noise(squared[k], squared[k + 1], QUANTITIES_INDEX[q])}
             for k, (before, now) in enumerate(zip(curve, curve[1:])) for q in QUANTITIES if now[q] > before[q]]
    counts = {q: sum(r["quantity"] == q for r in rises) for q in QUANTITIES}
    beyond = {q: sum(r["quantity"] == q and r["beyond_noise"] for r in rises) for q in QUANTITIES}
    return {"frames": len(test), "curve": curve, "rises": counts, "rises_beyond_noise": beyond, "rise_details": rises}


def squared_errors(model: SNAPModel, frames: list) -> np.ndarray:
    """Per frame, the model's squared errors summed per quantity: energy per atom (meV/atom)², force
    components (meV/Å)² and stress components (MPa)², with the number of values each sum holds (columns 3-5)."""
    return np.array([[(1e3 * de) ** 2, np.sum((1e3 * df) ** 2), np.sum((EV_PER_A3_IN_MPA * ds) ** 2), 1, df.size, 6]
                     for de, df, ds in prediction_residuals(model, frames)])


def beyond_noise(before: np.ndarray, after: np.ndarray, column: int) -> bool:
    """Whether the RMSE of quantity ``column`` of :func:`squared_errors` rose from ``before`` to ``after`` by more
    than the noise of the frames: the lower end of the 95 % interval of a paired bootstrap of the rise is > 0."""
    picks = np.random.default_rng(BOOTSTRAP_SEED).integers(len(before), size=(BOOTSTRAP_RESAMPLES, len(before)))

    def rmse(squared: np.ndarray) -> np.ndarray:
        return np.sqrt(squared[picks, column].sum(axis=1) / squared[picks, column + 3].sum(axis=1))

    return bool(np.percentile(rmse(after) - rmse(before), 2.5) > 0)


def retest_line(found: dict) -> str:
    """A :func:`retest` in words: the last generation's errors and the rises along the curve."""
    last = found["curve"][-1]
    errors = ", ".join(f"{q} {last[q]:.3g} {unit}" for q, unit in QUANTITIES.items())
    rises = ", ".join(f"{q} {found['rises'][q]} ({found['rises_beyond_noise'][q]} beyond noise)"
                      for q in QUANTITIES)
    return (f"retested on {found['frames']} ramp frames: {errors}; rises over {len(found['curve']) - 1} "
            f"generations: {rises}")


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
    parser.add_argument("--workers", type=int, default=2, help="processes labelling the retest frames (default: 2)")
    args = parser.parse_args(argv)
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
    return results


if __name__ == "__main__":
    main()
