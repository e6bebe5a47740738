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
with its model and with the reference (:func:`bench_zoo.replay_stops`; ``replays`` in its record).

    python benchmarks/zoo_collect.py runs/mof5 runs/dmof1 --json zoo_full.json
    python benchmarks/zoo_collect.py runs/mof74 --replay 100 --json zoo_mof74.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

from bench_zoo import BUDGETS, Campaign, campaign_record, replay_line, replay_stops, write_results

from mofsnap.learn import LearnSettings
from mofsnap.learn.summary import LearnSummary

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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("workdirs", nargs="+", type=Path, help="work directories of finished campaigns")
    parser.add_argument("--json", required=True, type=Path, help="the JSON file to write")
    parser.add_argument("--replay", type=int, default=0, metavar="FS",
                        help="replay each failed campaign's validation stops with its model and with the reference "
                             "from FS fs before each stop (default: 0, none)")
    args = parser.parse_args(argv)
    records = [collect(workdir) for workdir in args.workdirs]
    for workdir, record in zip(args.workdirs, records):
        if args.replay and not record["passed"]:
            record["replays"] = replay_stops(workdir, args.replay)
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
    return results


if __name__ == "__main__":
    main()
