"""Data efficiency of active learning: the selection rules side by side (MOF-5, GFN1-xTB, one seed).

Four :class:`mofsnap.learn.ActiveLearning` campaigns on the 106-atom MOF-5 primitive cell with GFN1-xTB
labels differ only in ``selection`` (``cbad``, ``hybrid``, ``grade``, ``random``): same seeds, so the same
perturbed MD starts and velocities per generation, and the same budget (at most one label per MD run).
Step 0 (the perturbed copies) is identical for all four; it is labelled and fitted once and the other work
directories are seeded with a copy of that label store and MLP0.

One common test set scores every generation's model of every strategy: after the campaigns, a ramp MD from
10 K to the highest temperature is run with each strategy's final model (same start and seed), and the same
number of random intact frames is taken from each ramp and labelled. No strategy is tested only on the
configurations its own model visits.

The figures: test RMSE of energy (meV/atom), forces (meV/Å) and stress (MPa) versus the number of labelled
training configurations per strategy, the rises from one generation to the next that are beyond the noise of
the test frames (a paired bootstrap, drawn in red), and the labels each strategy needs to come within
``--tolerance`` of the plateau (the lowest final test error of all), with the ratio to random selection. The reference work
reached its plateau with ~600 labels at full scale (target: ~300); this benchmark runs at a reduced scale that
fits a 2-core machine, so the ratios, not the absolute label counts, are the comparable figures.

Results (work directories, ``bench_learn.json``, ``learning_curves.png``) go in ``-o DIR``; a rerun with the
same options resumes (every step of ActiveLearning is idempotent, labels are never recomputed).

    python benchmarks/bench_learn.py --quick          # ~5 min on 2 cores
    python benchmarks/bench_learn.py                  # ~80 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from campaigns import QUANTITIES, common_test_set, learning_curves, rise_counts, seed_from
from mofsnap.exceptions import ExecutorUnavailableError
from mofsnap.labelling import LabelStore
from mofsnap.learn import SELECTIONS, ActiveLearning, LearnSettings
from mofsnap.plotting import save_figure
from mofsnap.reference import reference_by_name

#: Times the campaigns are resumed with a fresh process pool after a worker died.
ATTEMPTS = 3

#: Reduced schedules: (campaign settings, frames labelled from each strategy's ramp for the common test set).
#: The structure is first relaxed with the reference (once; the other work directories get a copy). Step 0
#: displaces atoms by up to 0.05 Å (not the 0.12 Å default): with only 16-40 perturbed copies of the
#: unrelaxed cell, MLP0 fitted on 0.12 Å copies broke bonds within 5-10 MD steps at 100-200 K and no run
#: offered a frame; a frame every 5 steps lets a run that stops early offer those before its blow-up.
SCHEDULES = {
    "quick": (LearnSettings(relax_fmax=0.1, n_perturbed=16, displacement=0.05, temperatures=(200.0, 400.0, 600.0),
                            runs=3, md_steps=200, frame_interval=5, ramp_steps=300, ramp_segments=6,
                            twojmax=6),
              4),
    "full": (LearnSettings(relax_fmax=0.1, n_perturbed=40, displacement=0.05,
                           temperatures=tuple(float(t) for t in range(100, 701, 100)), runs=10, md_steps=400,
                           frame_interval=5, ramp_steps=1400, ramp_segments=14),
             10),
}


def run_campaigns(settings: LearnSettings, out: Path, executor: ProcessPoolExecutor,
                  learners: dict[str, ActiveLearning]) -> dict[str, list]:
    """The campaigns of every rule, generation by generation, their learners put in ``learners`` (the caller
    closes them); per strategy the records of its generations."""
    reference = reference_by_name(settings.reference)
    first, *others = SELECTIONS

    def learner(selection: str) -> ActiveLearning:
        return ActiveLearning(workdir=out / selection, settings=replace(settings, selection=selection),
                              reference=reference, executor=executor)

    learners[first] = learner(first)
    records: dict[str, list] = {first: [learners[first].step0()]}
    for selection in others:
        seed_from(learners[first].workdir, out / selection)
        learners[selection] = learner(selection)
        seeded = len(learners[selection].store)
        records[selection] = [learners[selection].step0()]
        if len(learners[selection].store) != seeded:
            raise RuntimeError(f"step 0 of {selection} labelled {len(learners[selection].store) - seeded} "
                               f"configurations that {first} did not: the step-0 sets differ")
    print(f"step 0: {records[first][0].labelled} labels shared by {', '.join(SELECTIONS)}", flush=True)
    for k, temperature in enumerate(settings.temperatures, start=1):
        for selection, campaign in learners.items():
            start = time.perf_counter()
            record = campaign.generation(k, temperature)
            records[selection].append(record)
            print(f"generation {k} ({temperature:.0f} K) {selection:6}: {record.labelled}/{record.runs} runs "
                  f"labelled, {record.stopped} stopped by the guard, {record.n_train} training "
                  f"configurations, mean grade of picks {record.grade_mean or float('nan'):.2f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    return records


def labels_to_plateau(curves: dict[str, list[dict]], tolerance: float) -> dict[str, dict]:
    """Per quantity: the plateau (lowest final test error), and the labels each strategy needs to get within
    ``tolerance`` of it (first generation at or below; ``None`` if never) with the ratio to random."""
    result = {}
    for q in QUANTITIES:
        plateau = min(c[-1][q] for c in curves.values())
        threshold = plateau * (1.0 + tolerance)
        needed = {name: next((p["n_train"] for p in c if p[q] <= threshold), None) for name, c in curves.items()}
        random = needed.get("random")
        result[q] = {"plateau": plateau, "threshold": threshold, "labels": needed,
                     "ratio_to_random": {name: (n / random if n is not None and random else None)
                                         for name, n in needed.items()}}
    return result


def plot(curves: dict[str, list[dict]], path: Path) -> Path:
    """Test RMSE versus labelled training configurations, one panel per quantity, one line per strategy; a
    point whose rise from the previous one is beyond the noise of the test frames is ringed in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(QUANTITIES), figsize=(13, 3.8))
    for ax, (q, unit) in zip(axes, QUANTITIES.items()):
        for name, curve in curves.items():
            ax.plot([p["n_train"] for p in curve], [p[q] for p in curve], "o-", label=name)
            risen = [p for p in curve if q in p.get("rises_beyond_noise", ())]
            ax.plot([p["n_train"] for p in risen], [p[q] for p in risen], "o", markersize=11, fillstyle="none",
                    color="red")
        ax.set_xlabel("labelled training configurations")
        ax.set_ylabel(f"test {q} RMSE ({unit})")
        ax.set_yscale("log")
    axes[0].legend(title="selection")
    fig.suptitle("MOF-5 (106 atoms), GFN1-xTB: data efficiency of frame selection")
    fig.tight_layout()
    return save_figure(fig, path)


def report(curves: dict[str, list[dict]], plateau: dict[str, dict], tolerance: float) -> None:
    """Print the learning curves (a rise beyond the noise of the test frames marked ``*``), the rises per
    strategy and the labels-to-plateau table."""
    print("\ntest RMSE vs labelled training configurations (common test set; * a rise beyond its noise)")
    print(f"{'selection':9} {'gen':>3} {'labels':>6} " + " ".join(f"{f'{q} ({u})':>18}" for q, u in QUANTITIES.items()))
    for name, curve in curves.items():
        for p in curve:
            print(f"{name:9} {p['generation']:3d} {p['n_train']:6d} "
                  + " ".join(f"{p[q]:17.2f}{'*' if q in p.get('rises_beyond_noise', ()) else ' '}" for q in QUANTITIES))
    print("\nrises between consecutive generations (beyond the noise of the test frames)")
    for name, curve in curves.items():
        counts = rise_counts(curve)
        print(f"{name:9} in {len(curve) - 1} steps: " + ", ".join(f"{q} {n} ({beyond})" for q, (n, beyond) in counts.items()))
    print(f"\nlabels to reach the plateau (within {100 * tolerance:.0f}% of the lowest final test error)")
    print(f"{'quantity':9} {'plateau':>9} " + " ".join(f"{name:>16}" for name in curves))
    for q, entry in plateau.items():
        cells = []
        for name in curves:
            n, ratio = entry["labels"][name], entry["ratio_to_random"][name]
            cells.append(f"{'not reached' if n is None else n:>6} ({'-' if ratio is None else f'{ratio:.2f}'} x rnd)")
        print(f"{q:9} {entry['plateau']:9.2f} " + " ".join(f"{c:>16}" for c in cells))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="3 generations x 3 runs x 200 steps, 4 test frames per rule (~5 min) instead of 7 x 10 x 400, 10")
    parser.add_argument("-o", "--output", default="results/bench_learn",
                        help="directory of the work directories, the test set and the figures (resumed)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--seed", type=int, default=0, help="seed of all campaigns and of the test set")
    parser.add_argument("--workers", type=int, default=2, help="local processes for labelling and MD")
    parser.add_argument("--tolerance", type=float, default=0.1,
                        help="a strategy has reached the plateau within this relative margin of the lowest error")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("mofsnap.learn").setLevel(logging.INFO)  # the reference relaxation's progress
    settings, per_strategy = SCHEDULES["quick" if args.quick else "full"]
    settings = replace(settings, seed=args.seed)
    out = Path(args.output)
    start = time.perf_counter()
    for attempt in range(1, ATTEMPTS + 1):
        executor = ProcessPoolExecutor(args.workers, mp_context=get_context("forkserver"))
        learners: dict[str, ActiveLearning] = {}
        try:
            records = run_campaigns(settings, out, executor, learners)
            test = common_test_set(learners, settings, per_strategy, out / "test", executor)
            curves = learning_curves(learners, len(settings.temperatures), test)
            break
        except (BrokenProcessPool, ExecutorUnavailableError) as error:
            # a worker died (an exploding model can crash LAMMPS): resume with a fresh pool; finished MD runs,
            # labels and fits are kept on disk
            if attempt == ATTEMPTS:
                raise
            print(f"worker pool broken ({error}); resuming with a new pool (attempt {attempt + 1})", flush=True)
        finally:
            for campaign in learners.values():
                campaign.close()
            executor.shutdown()
    plateau = labels_to_plateau(curves, args.tolerance)
    report(curves, plateau, args.tolerance)
    figure = plot(curves, out / "learning_curves.png")
    store = LabelStore(out / "test" / "labels.db")
    label_seconds = [a.info.get("wall_time", float("nan")) for a in store]
    wall = time.perf_counter() - start
    results = {"system": "MOF-5 primitive cell (106 atoms)", "reference": settings.reference,
               "schedule": "quick" if args.quick else "full", "settings": json.loads(json.dumps(asdict(settings))),
               "n_test": len(test), "test_label_seconds_mean": float(np.nanmean(label_seconds)),
               "tolerance": args.tolerance, "curves": curves, "labels_to_plateau": plateau,
               "rises": {name: {q: {"rises": n, "beyond_noise": beyond} for q, (n, beyond) in rise_counts(c).items()}
                         for name, c in curves.items()},
               "generations": {name: [{k: getattr(r, k) for k in ("generation", "temperature", "runs", "stopped",
                                                             "selected", "labelled", "n_train", "grade_mean")}
                                      for r in recs] for name, recs in records.items()},
               "wall_seconds_this_call": wall}
    (out / "bench_learn.json").write_text(json.dumps(results, indent=1, default=float))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    print(f"\n{len(test)} test configurations, {wall:.0f} s this call; {figure}, {out / 'bench_learn.json'}")
    return results


if __name__ == "__main__":
    main()
