"""Active learning across the structure zoo: every framework, every selection rule, one fixed budget (GFN1-xTB).

Each campaign is :class:`mofsnap.learn.ActiveLearning` (what ``mofsnap learn`` runs) on one framework of the
zoo with the embedded reference ``gfn1-xtb`` (its labels carry dispersion, so no D3 is added) and the budget
of :data:`BUDGETS` (``quick`` or ``full``), differing only in ``selection`` and ``seed``:

- the rule comparison: every rule of :data:`mofsnap.learn.SELECTIONS` with three seeds on MOF-5 and on UiO-66
  (a framework with μ3-OH groups), primitive cells;
- the rest of the zoo: ZIF-8, HKUST-1, MIL-53, MOF-74 and DMOF-1 with every rule once (full mode), or ZIF-8
  and DMOF-1 with the library's default rule only (quick mode; see "Costs").

The campaigns of one framework and seed share step 0 (labels and MLP0) and the reference relaxation (shared by
all seeds too). Per framework and seed, one common test set scores every rule: a ramp MD with each rule's last
generation model, ``test_frames`` random intact frames of each, labelled.

Per campaign: training and total labels, test RMSE (energy meV/atom, forces meV/Å, stress MPa) on the common
test set and on the campaign's own test set, the validation verdict and checks, the time to first failure
(the ps at which a validation run's guard stopped it, or "stable") with the guard's message (which guard,
which atoms and types), the MD runs the guard stopped while learning, and the wall time. For a framework
whose campaigns fail validation, the stops of one failed campaign (the default rule's, if it failed) are
replayed from 100 fs before each stop with its model and with the reference itself (``--replay``,
:func:`replay_stops`), which tells a model failure from a reference that does not hold there.

Aggregates: mean ± standard deviation over seeds per framework and rule; a ranking of the rules on the
comparison frameworks (the geometric mean of the three common-test RMSE ratios to random selection of the
same framework and seed, averaged; and the labels each rule needs to reach random's final error); the checks
of the targets (every framework passes at 300 K; the default rule reaches random's error with no more labels
than random and beats ``cbad``); ``zoo_learning_curves.png`` (common-test error vs training labels per rule,
error bars over seeds); ``bench_zoo.json`` (and ``--json FILE``) with every figure.

Costs (measured on the 2-core machine of this project, one thread per process): a GFN1-xTB label (energy,
forces, stress) of the SNAP-ready cell, and an MD step of SNAP (twojmax 6, ASE driver, no guard):

    framework          atoms (SNAP-ready cell)    label     SNAP MD step
    mof5-primitive     106                        2.2 s      6.3 ms
    uio66-primitive    114                        4.4 s      9.0 ms
    zif8-primitive     138                        4.0 s      7.3 ms
    hkust1-primitive   156                       29   s      8.5 ms
    mil53-primitive     76 (38 x 2, skewed)       2.4 s      9.6 ms
    mof74-primitive    108 (54 x 2, skewed)       4.0 s     13.3 ms
    dmof1               54                        1.0 s      9.9 ms

MIL-53 and MOF-74 need supercells to exceed twice the cutoff; the fewest-atom ones are skewed two-cell
supercells (:func:`mofsnap.structures.snap_ready_cell`), where diagonal repeats took 152 and 432 atoms (7.3 s
and 190 s per label). Their figures were measured with a campaign running alongside (load 3.5). HKUST-1 (slow
SCF of the Cu paddlewheels) has labels too slow for the quick budget; MIL-53 and MOF-74 are in full mode only
as the quick mode was defined before their labels became cheap. One quick MOF-5 campaign
(cbad, seed 0) took 244 s on the shared machine (load average 4): relaxation 47 s, step 0 (22 labels and a
hyperparameter search) 76 s, three generations of 17 s each, final fit, test labels and validation 55 s,
common test 15 s; it passed validation with 31 labels. Wall times on 2 cores: quick 47 min measured on an idle
machine (with the relaxed cell and refinement rounds), full ~30-35 h; ``--estimate`` prints a lower bound
(labels and MD only) for any selection from :data:`COSTS`.

Results go in ``-o DIR`` (one work directory per campaign, ``DIR/<framework>/seed<N>/<rule>``); a rerun with
the same options resumes; a crashed campaign is recorded as failed with its error and the others go on.

    python benchmarks/bench_zoo.py --quick                    # ~1 h on 2 cores
    python benchmarks/bench_zoo.py                            # ~30-35 h on 2 cores
    python benchmarks/bench_zoo.py --smoke --structures dmof1 --rules random --seeds 0   # ~3 min
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from campaigns import QUANTITIES, common_test_set, learning_curves, seed_from
from mofsnap.executors import worker_pool
from mofsnap.learn import (DEMO, SELECTIONS, VALIDATION_TEMPERATURE_K, ActiveLearning, LearnSettings, LearnSummary,
                           StopReplay)
from mofsnap.plotting import save_figure
from mofsnap.structures import STRUCTURES

#: The zoo: the smallest cell of each built-in framework.
ZOO = ("zif8-primitive", "mof5-primitive", "uio66-primitive", "hkust1-primitive", "mil53-primitive",
       "mof74-primitive", "dmof1")
#: Frameworks of the rule comparison (with seeds): MOF-5, and UiO-66 for its μ3-OH groups.
COMPARISON = ("mof5-primitive", "uio66-primitive")
#: Seeds of the rule comparison (the other frameworks run the first one).
SEEDS = (0, 1, 2)
#: Frameworks left out of quick mode: their reference relaxation alone exceeds its budget.
FULL_ONLY = ("hkust1-primitive", "mil53-primitive", "mof74-primitive")
#: The rule the library uses unless told otherwise (the one quick mode runs on the non-comparison frameworks).
DEFAULT_RULE = LearnSettings().selection
#: The reference work's rule, which the default must beat.
REFERENCE_RULE = "cbad"

#: The budget of every campaign. Full: the demo campaign of ``mofsnap learn --demo`` (80 perturbed copies,
#: 100-500 K in 5 generations of 10 runs x 500 steps, 30 test frames) with the stability protocol (300 K for
#: 50 ps, 500 K for 10 ps). Quick: 24 copies displaced by 0.05 Å (MLP0 from few 0.12 Å copies breaks bonds
#: within steps, see bench_learn), 3 generations (100, 300, 500 K) of 3 runs x 300 steps, 4 test frames, SNAP
#: twojmax 6, validation 2 ps at 300 K and 0.5 ps at 500 K. Both use the model's default hyperparameters (the
#: library default; docs/active_learning.md says why).
BUDGETS = {
    "full": replace(DEMO, final_md_steps=50000, hot_md_steps=10000),
    "quick": replace(DEMO, n_perturbed=24, displacement=0.05, temperatures=(100.0, 300.0, 500.0), runs=3,
                     md_steps=300, ramp_steps=600, ramp_segments=6, test_size=4, twojmax=6, relax_steps=100,
                     final_md_steps=2000, hot_md_steps=500),
}
#: Settings a framework needs beyond the budget: the spin state of HKUST-1's twelve Cu²⁺ (d9) is a choice the
#: library refuses to guess; high-spin ferromagnetic, the usual approximation of the weakly coupled paddlewheels.
FRAMEWORK_SETTINGS: dict[str, dict] = {"hkust1-primitive": {"unpaired_electrons": 12}}
#: Frames per campaign in the common test set of a framework and seed.
TEST_FRAMES = {"full": 10, "quick": 3}
#: Femtoseconds before a failed campaign's validation stop from which its model and the reference replay it
#: (:func:`replay_stops`; quick mode: none).
REPLAY_FS = {"full": 100, "quick": 0}
#: ``--smoke``: the quick budget cut to a pipeline check of a few minutes (not a measurement).
SMOKE = replace(BUDGETS["quick"], n_perturbed=8, temperatures=(300.0,), runs=2, md_steps=100, ramp_steps=200,
                ramp_segments=2, test_size=3, relax_steps=20, final_md_steps=300, hot_md_steps=100)
#: Measured costs per framework (see the module docstring): (seconds per label, ms per SNAP MD step).
COSTS = {"zif8-primitive": (4.0, 7.3), "mof5-primitive": (2.2, 6.3), "uio66-primitive": (4.4, 9.0),
         "hkust1-primitive": (29.0, 8.5), "mil53-primitive": (2.4, 9.6), "mof74-primitive": (4.0, 13.3),
         "dmof1": (1.0, 9.9)}


@dataclass(frozen=True)
class Campaign:
    """One campaign of the benchmark: framework, selection rule, seed."""

    structure: str
    rule: str
    seed: int

    def workdir(self, out: Path) -> Path:
        """Its work directory under the benchmark's output directory."""
        return out / self.structure / f"seed{self.seed}" / self.rule


def plan(mode: str, structures: list[str], rules: list[str], seeds: list[int]) -> list[Campaign]:
    """The campaigns of a mode, restricted to ``structures``, ``rules`` and ``seeds``."""
    campaigns = []
    for structure in structures:
        if mode == "quick" and structure in FULL_ONLY:
            continue
        if structure in COMPARISON:
            structure_rules, structure_seeds = rules, seeds
        else:
            structure_rules = rules if mode == "full" else [r for r in rules if r == DEFAULT_RULE] or rules[:1]
            structure_seeds = seeds[:1]
        campaigns += [Campaign(structure, rule, seed) for seed in structure_seeds for rule in structure_rules]
    return campaigns


def estimate_seconds(campaigns: list[Campaign], settings: LearnSettings, test_frames: int, workers: int) -> float:
    """Expected wall time from :data:`COSTS`: labels and MD runs on ``workers`` processes, the reference
    relaxation (assumed 40 FIRE steps) and the validation runs in one; fits not counted."""
    total = 0.0
    groups: dict[tuple[str, int], list[Campaign]] = {}
    for c in campaigns:
        groups.setdefault((c.structure, c.seed), []).append(c)
    for structure in {c.structure for c in campaigns}:
        label_s, _ = COSTS.get(structure, (10.0, 10.0))
        total += min(40, settings.relax_steps) * label_s
    for group in groups.values():
        label_s, step_ms = COSTS.get(group[0].structure, (10.0, 10.0))
        total += (settings.n_perturbed + len(group) * test_frames) * label_s / workers
        total += len(group) * settings.ramp_steps * step_ms / 1e3 / workers
    for c in campaigns:
        label_s, step_ms = COSTS.get(c.structure, (10.0, 10.0))
        n_generations = len(settings.temperatures)
        total += (n_generations * settings.runs + settings.test_size) * label_s / workers
        total += (n_generations * settings.runs * settings.md_steps + settings.ramp_steps) * step_ms / 1e3 / workers
        total += (settings.final_md_steps + settings.hot_md_steps) * step_ms / 1e3
    return total


def progress(message: str) -> None:
    """One progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def campaign_learner(campaign: Campaign, settings: LearnSettings, out: Path, workers: int) -> ActiveLearning:
    """The campaign's learner: the budget's settings with the campaign's framework, rule and seed."""
    return ActiveLearning(workdir=campaign.workdir(out), progress=False,
                          settings=replace(settings, structure=campaign.structure, selection=campaign.rule,
                                           seed=campaign.seed, max_workers=workers,
                                           **FRAMEWORK_SETTINGS.get(campaign.structure, {})))


def run_group(campaigns: list[Campaign], settings: LearnSettings, out: Path, workers: int,
              relaxed_from: Path | None) -> dict[Campaign, dict]:
    """The campaigns of one framework and seed (step 0 shared); per campaign its record or its error."""
    records: dict[Campaign, dict] = {}
    learners: dict[Campaign, ActiveLearning] = {}
    first, *others = campaigns
    try:
        if relaxed_from is not None:
            seed_from(relaxed_from, first.workdir(out), step0=False)
        learners[first] = campaign_learner(first, settings, out, workers)
        start = time.perf_counter()
        record = learners[first].step0()
        progress(f"{first.structure} seed {first.seed}: step 0, {record.labelled} labels shared by "
                 f"{', '.join(c.rule for c in campaigns)} ({time.perf_counter() - start:.0f} s)")
    except Exception as error:  # noqa: BLE001 - a crashed campaign is a result, the benchmark goes on
        for campaign in campaigns:
            records[campaign] = failed(campaign, out, error, "step 0")
        for learner in learners.values():
            learner.close()
        return records
    for campaign in others:
        seed_from(first.workdir(out), campaign.workdir(out))
    for campaign in campaigns:
        start = time.perf_counter()
        try:
            learner = learners.get(campaign) or campaign_learner(campaign, settings, out, workers)
            learners[campaign] = learner
            summary = learner.run()
            learner.close()
            records[campaign] = campaign_record(campaign, summary,
                                                add_wall(campaign.workdir(out), time.perf_counter() - start))
            progress(f"{campaign.structure} seed {campaign.seed} {campaign.rule}: "
                     f"{records[campaign]['labels_train']} training labels, {summary.validation.verdict[:160]}")
        except Exception as error:  # noqa: BLE001
            records[campaign] = failed(campaign, out, error, "campaign", time.perf_counter() - start)
            if campaign in learners:
                learners[campaign].close()
    common_test(learners, records, settings, out, workers)
    return records


def failed(campaign: Campaign, out: Path, error: BaseException, stage: str, seconds: float = 0.0) -> dict:
    """The record of a campaign that crashed (the traceback goes to its ``error.txt``)."""
    workdir = campaign.workdir(out)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "error.txt").write_text("".join(traceback.format_exception(error)))
    progress(f"{campaign.structure} seed {campaign.seed} {campaign.rule}: FAILED in {stage}: "
             f"{type(error).__name__}: {error}")
    return {**asdict(campaign), "status": "failed", "error": f"{stage}: {type(error).__name__}: {error}",
            "wall_seconds": add_wall(workdir, seconds)}


def add_wall(workdir: Path, seconds: float) -> float:
    """Add this call's ``seconds`` to the campaign's wall time over all calls (``bench_wall.json``)."""
    path = workdir / "bench_wall.json"
    total = json.loads(path.read_text())["seconds"] if path.exists() else 0.0
    path.write_text(json.dumps({"seconds": total + seconds}))
    return total + seconds


def campaign_record(campaign: Campaign, summary: LearnSummary, wall_seconds: float) -> dict:
    """The figures of a finished campaign (the common-test errors are added by :func:`common_test`)."""
    validation = summary.validation
    stops = [r for r in summary.first_validation.runs if r.stopped]  # of the model before any refinement
    first_stop = min(stops, key=lambda r: r.steps, default=None)
    at_300K = [c.passed for c in validation.checks if c.name.startswith(f"{VALIDATION_TEMPERATURE_K:.0f} K")]
    return {**asdict(campaign), "status": "done", "labels_train": summary.final.train.n,
            "labels_total": summary.labels, "failed_labels": summary.failed_labels,
            "own_test": asdict(summary.final.test) if summary.final.test is not None else None,
            "passed": validation.passed, "passed_300K": all(at_300K), "verdict": validation.verdict,
            "checks": [asdict(c) for c in validation.checks],
            "validation_runs": [{"temperature_K": r.temperature_K, "planned_ps": r.planned_steps / 1e3,
                                 "ps": r.steps / 1e3, "stopped": r.stopped} for r in validation.runs],
            "first_failure_ps": None if first_stop is None else failure_time_ps(first_stop.stopped, first_stop.steps),
            "first_failure": "stable" if first_stop is None else
            f"{first_stop.temperature_K:.0f} K run: {first_stop.stopped}",
            "refinements": [{"round": r.round, "labelled": r.labelled,
                             "learned_from": [run.stopped for run in r.learned_from.runs if run.stopped],
                             "previous_model_on_new": asdict(r.previous_model_on_new)} for r in summary.refinements],
            "learning_md_stopped": sum(g.stopped or 0 for g in summary.generations),
            "learning_md_runs": sum(g.runs or 0 for g in summary.generations),
            "learning_curve": [{"generation": p.generation, "n_train": p.n_train,
                                **({q: getattr(p.test, q) for q in QUANTITIES} if p.test is not None else {}),
                                "rises_beyond_noise": p.rises_beyond_noise()}
                               for p in summary.final.learning_curve],
            "stopped_per_generation": [g.stopped for g in summary.generations if g.runs],
            "wall_seconds": wall_seconds}


def failure_time_ps(stopped: str, steps: int) -> float:
    """The time (ps) a guard's message names ("... at 0.154 ps (step 154)"), else that of the last frame."""
    named = re.search(r"at ([0-9.]+) ps", stopped)
    return float(named[1]) if named else steps / 1e3


def common_test(learners: dict[Campaign, ActiveLearning], records: dict[Campaign, dict], settings: LearnSettings,
                out: Path, workers: int) -> None:
    """Score every rule of one framework and seed on their common test set; adds ``common_test`` (final model)
    and ``curve`` (every generation) to the records of finished campaigns."""
    done = {c.rule: learners[c] for c in learners if records.get(c, {}).get("status") == "done"}
    if not done:
        return
    any_campaign = next(iter(learners))
    test_dir = out / any_campaign.structure / f"seed{any_campaign.seed}" / "test"
    per_rule = TEST_FRAMES["quick" if settings.final_md_steps < BUDGETS["full"].final_md_steps else "full"]
    executor = worker_pool(workers)
    try:
        test = common_test_set(done, replace(settings, seed=any_campaign.seed), per_rule, test_dir, executor)
    except Exception as error:  # noqa: BLE001
        progress(f"{any_campaign.structure} seed {any_campaign.seed}: common test set failed: {error}")
        return
    finally:
        executor.shutdown()
    curves = learning_curves(done, len(settings.temperatures) + 1, test)
    for campaign in learners:
        curve = curves.get(campaign.rule)
        if curve:
            records[campaign]["curve"] = curve
            records[campaign]["common_test"] = {**{q: curve[-1][q] for q in QUANTITIES}, "n": len(test)}


def finished_learner(workdir: Path) -> ActiveLearning:
    """The learner of the campaign in ``workdir``, with the settings it was made with (its ``settings.json``,
    and for settings added since, the values it ran with)."""
    saved = LearnSettings.as_ran(json.loads((workdir / "settings.json").read_text()))
    settings = LearnSettings(**{k: v for k, v in saved.items() if k in LearnSettings.__dataclass_fields__})
    return ActiveLearning(settings=settings, workdir=workdir, progress=False)


def replay_stops(workdir: Path, fs_before: int) -> list[dict]:
    """Whose failure: each stop of the last validation of the finished campaign in ``workdir``, replayed with
    its model and with the reference (:meth:`mofsnap.learn.ActiveLearning.replay_stops`), as records."""
    with finished_learner(workdir) as learner:
        return [replay.to_dict() for replay in learner.replay_stops(fs_before).replays]


def replay_line(replay: dict) -> str:
    """One replay record of :func:`replay_stops` in words."""
    return StopReplay.from_dict(replay).line()


def mean_std(values: list[float]) -> dict | None:
    """Mean, sample standard deviation (0 for one value) and count of the finite values."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "n": len(values)}


def aggregate(records: list[dict]) -> dict[str, dict]:
    """Per ``framework/rule``: campaigns, passes, and mean ± std over seeds of labels and test errors."""
    table: dict[str, dict] = {}
    for key in sorted({(r["structure"], r["rule"]) for r in records}):
        group = [r for r in records if (r["structure"], r["rule"]) == key]
        done = [r for r in group if r["status"] == "done"]
        entry = {"campaigns": len(group), "failed": len(group) - len(done),
                 "passed": sum(r["passed"] for r in done), "passed_300K": sum(r["passed_300K"] for r in done),
                 "stable": sum(r["first_failure_ps"] is None for r in done),
                 "labels_train": mean_std([r["labels_train"] for r in done]),
                 "first_failure_ps": mean_std([r["first_failure_ps"] for r in done])}
        for test in ("common_test", "own_test"):
            entry[test] = {q: mean_std([r[test][q] for r in done if r.get(test)]) for q in QUANTITIES}
        entry["seed_mean_rises"] = seed_mean_rises([r["curve"] for r in done if r.get("curve")])
        table[f"{key[0]}/{key[1]}"] = entry
    return table


def seed_mean_rises(curves: list[list[dict]]) -> dict[str, dict] | None:
    """How often the seed-mean common-test curve rises from one generation to the next, per quantity.

    Each step's change is averaged over the seeds (paired: the same generation step of each seed); a rise is
    *beyond the seeds' spread* when that mean exceeds twice its standard error. Steps that added no label in
    any seed (refinement rounds that labelled nothing) are skipped. None with fewer than three seeds.
    """
    if len(curves) < 3:
        return None
    length = min(len(c) for c in curves)
    labels = np.array([[c[k]["n_train"] for k in range(length)] for c in curves])
    steps = [k for k in range(length - 1) if np.any(labels[:, k + 1] > labels[:, k])]
    out = {}
    for q in QUANTITIES:
        change = np.array([[c[k + 1][q] - c[k][q] for k in steps] for c in curves])
        mean, error = change.mean(axis=0), change.std(axis=0, ddof=1) / math.sqrt(len(curves))
        out[q] = {"steps": len(steps), "rises": int(np.sum(mean > 0)),
                  "beyond_seed_spread": int(np.sum(mean > 2 * error))}
    return out


def ranking(records: list[dict]) -> dict:
    """The rules ranked on the comparison frameworks (see the module docstring), with the target checks."""
    pairs: dict[str, list[float]] = {}
    to_random: dict[str, list[float]] = {}
    random_labels: list[float] = []
    by_group: dict[tuple, dict[str, dict]] = {}
    for r in records:
        if r["structure"] in COMPARISON and r.get("common_test"):
            by_group.setdefault((r["structure"], r["seed"]), {})[r["rule"]] = r
    for rules in by_group.values():
        random = rules.get("random")
        if random is None:
            continue
        random_labels.append(random["labels_train"])
        for rule, r in rules.items():
            ratios = [r["common_test"][q] / random["common_test"][q] for q in QUANTITIES]
            pairs.setdefault(rule, []).append(float(np.exp(np.mean(np.log(ratios)))))
            reached = next((p["n_train"] for p in r["curve"]
                            if all(p[q] <= random["common_test"][q] for q in QUANTITIES)), None)
            to_random.setdefault(rule, []).append(math.inf if reached is None else reached)
    order = sorted(pairs, key=lambda rule: np.mean(pairs[rule]))
    rules = {rule: {"error_ratio_to_random": mean_std(pairs[rule]),
                    "labels_to_random_error": mean_std(to_random[rule]),
                    "never_reached_random_error": sum(math.isinf(x) for x in to_random[rule])}
             for rule in order}
    default, reference = rules.get(DEFAULT_RULE), rules.get(REFERENCE_RULE)
    checks = {}
    if default is not None and random_labels:
        reach = default["labels_to_random_error"]
        checks["default_reaches_random_error_with_no_more_labels"] = bool(
            default["never_reached_random_error"] == 0 and reach is not None and
            reach["mean"] <= float(np.mean(random_labels)))
    if default is not None and reference is not None and DEFAULT_RULE != REFERENCE_RULE:
        checks["default_beats_reference_rule"] = bool(
            default["error_ratio_to_random"]["mean"] < reference["error_ratio_to_random"]["mean"])
    return {"order": order, "best": order[0] if order else None, "default": DEFAULT_RULE,
            "reference_rule": REFERENCE_RULE, "rules": rules, "checks": checks}


def plot(records: list[dict], path: Path) -> Path | None:
    """Common-test RMSE vs training labels per rule, mean ± std over seeds, one row per comparison framework."""
    structures = [s for s in COMPARISON if any(r["structure"] == s and r.get("curve") for r in records)]
    if not structures:
        return None
    fig = Figure(figsize=(13, 3.6 * len(structures)))
    axes = fig.subplots(len(structures), len(QUANTITIES), squeeze=False)
    for row, structure in zip(axes, structures):
        for ax, (q, unit) in zip(row, QUANTITIES.items()):
            for rule in SELECTIONS:
                curves = [r["curve"] for r in records if (r["structure"], r["rule"]) == (structure, rule)
                          and r.get("curve")]
                if not curves:
                    continue
                length = min(len(c) for c in curves)
                x = np.array([[c[k]["n_train"] for k in range(length)] for c in curves])
                y = np.array([[c[k][q] for k in range(length)] for c in curves])
                ax.errorbar(x.mean(0), y.mean(0), xerr=x.std(0, ddof=1) if len(curves) > 1 else None,
                            yerr=y.std(0, ddof=1) if len(curves) > 1 else None, marker="o", capsize=3,
                            label=f"{rule} ({len(curves)} seeds)")
            ax.set_xlabel("labelled training configurations")
            ax.set_ylabel(f"test {q} RMSE ({unit})")
            ax.set_yscale("log")
            ax.set_title(structure, fontsize=9)
        row[0].legend(title="selection", fontsize=8)
    return save_figure(fig, path)


def report(records: list[dict], table: dict, ranks: dict, replays: dict) -> None:
    """Print the per-campaign lines, the aggregate table, the ranking and the targets."""
    def fmt(stat: dict | None, digits: int = 1) -> str:
        if stat is None:
            return "-"
        return f"{stat['mean']:.{digits}f}±{stat['std']:.{digits}f}" if stat["n"] > 1 else f"{stat['mean']:.{digits}f}"

    print("\ncampaigns (common-test RMSE E meV/atom, F meV/Å, S MPa; time to first failure)")
    for r in records:
        head = f"{r['structure']:17} {r['rule']:7} seed {r['seed']}"
        if r["status"] != "done":
            print(f"{head}: FAILED ({r['error']})")
            continue
        test = r.get("common_test")
        errors = " ".join(f"{test[q]:8.2f}" for q in QUANTITIES) if test else "   no common test"
        failure = "stable" if r["first_failure_ps"] is None else f"{r['first_failure_ps']:.3f} ps"
        print(f"{head}: {r['labels_train']:4d} labels {errors}  {'PASS' if r['passed'] else 'FAIL'}  "
              f"first failure {failure}{'' if r['first_failure_ps'] is None else ': ' + r['first_failure']}"
              f"  ({r['wall_seconds']:.0f} s)")
    print(f"\nper framework and rule (mean±std over seeds): {'labels':>10} {'E':>11} {'F':>11} {'S':>11} "
          "passed  stable")
    for key, e in table.items():
        print(f"{key:35} {fmt(e['labels_train'], 0):>10} " + " ".join(
            f"{fmt(e['common_test'][q], 2 if q == 'energy' else 0):>11}" for q in QUANTITIES)
              + f"  {e['passed']}/{e['campaigns']}   {e['stable']}/{e['campaigns'] - e['failed']}")
    rising = {key: e["seed_mean_rises"] for key, e in table.items() if e.get("seed_mean_rises")}
    if rising:
        print("\nrises of the seed-mean learning curve between generations (beyond twice the seeds' standard error)")
        for key, rises in rising.items():
            print(f"  {key:35} " + ", ".join(f"{q} {r['rises']} ({r['beyond_seed_spread']})" for q, r in rises.items())
                  + f" in {next(iter(rises.values()))['steps']} steps")
    for structure, entry in replays.items():
        print(f"{structure} ({entry['rule']}, seed {entry['seed']}), validation stops replayed: "
              + (entry["error"] if "error" in entry else "; ".join(replay_line(r) for r in entry["replays"])))
    if ranks["order"]:
        print("\nrules ranked (common-test error relative to random, geometric mean of E, F, S; labels to reach "
              "random's final error)")
        for rule, e in ranks["rules"].items():
            never = e["never_reached_random_error"]
            print(f"  {rule:7} {fmt(e['error_ratio_to_random'], 2):>10}  {fmt(e['labels_to_random_error'], 0):>10}"
                  + (f"  (never reached it in {never} of {e['error_ratio_to_random']['n']})" if never else ""))
        for name, ok in ranks["checks"].items():
            print(f"  target {name}: {'yes' if ok else 'NO'}")


def targets(records: list[dict], ranks: dict) -> dict:
    """The issue's targets as yes/no facts: every framework's default-rule campaigns pass validation (and its
    300 K checks), and the rule checks of :func:`ranking`."""
    per_framework = {}
    for structure in dict.fromkeys(r["structure"] for r in records):
        default = [r for r in records if r["structure"] == structure and r["rule"] == DEFAULT_RULE]
        per_framework[structure] = {"passed": bool(default) and all(r.get("passed") for r in default),
                                    "passed_300K": bool(default) and all(r.get("passed_300K") for r in default)}
    return {"default_rule_passes": per_framework,
            "every_framework_passes_at_300K": all(v["passed_300K"] for v in per_framework.values()),
            **ranks["checks"]}


def write_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the quick budget and plan (~1 h on 2 cores)")
    parser.add_argument("--smoke", action="store_true",
                        help="the quick plan on a budget cut to a pipeline check (minutes per campaign)")
    parser.add_argument("-o", "--output", default="results/bench_zoo",
                        help="directory of the work directories, test sets and figures (resumed)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--structures", nargs="+", default=list(ZOO), choices=sorted(STRUCTURES),
                        metavar="NAME", help=f"frameworks to run (default: the zoo, {' '.join(ZOO)})")
    parser.add_argument("--rules", nargs="+", default=list(SELECTIONS), choices=SELECTIONS,
                        help="selection rules to compare (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS),
                        help="seeds of the comparison frameworks (the others run the first)")
    parser.add_argument("--workers", type=int, default=2, help="local processes for labelling and MD")
    parser.add_argument("--replay", type=int, default=None, metavar="FS",
                        help="replay a failing framework's validation stops with its model and with the reference "
                             "from FS fs before each stop (default: 100 in full mode, 0 = none in quick mode)")
    parser.add_argument("--estimate", action="store_true",
                        help="print the expected wall time of the selection from the measured costs and exit")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick or args.smoke else "full"
    settings = SMOKE if args.smoke else BUDGETS[mode]
    campaigns = plan(mode, args.structures, args.rules, args.seeds)
    expected = estimate_seconds(campaigns, settings, TEST_FRAMES[mode], args.workers)
    print(f"{len(campaigns)} campaigns ({'smoke' if args.smoke else mode} budget), expected ~{expected / 60:.0f} min "
          f"on {args.workers} workers", file=sys.stderr, flush=True)
    if args.estimate:
        print(f"{expected / 3600:.2f} h")
        return {"campaigns": len(campaigns), "expected_seconds": expected}
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("mofsnap.learn").setLevel(logging.INFO)
    out = Path(args.output)
    start = time.perf_counter()
    groups: dict[tuple[str, int], list[Campaign]] = {}
    for c in campaigns:
        groups.setdefault((c.structure, c.seed), []).append(c)
    records: dict[Campaign, dict] = {}
    first_of: dict[str, Path] = {}
    results: dict = {}
    for (structure, seed), group in groups.items():
        progress(f"{structure} seed {seed}: {', '.join(c.rule for c in group)}")
        records.update(run_group(group, settings, out, args.workers, first_of.get(structure)))
        first_of.setdefault(structure, group[0].workdir(out))
        results = summarise(list(records.values()), {}, settings, mode, args, time.perf_counter() - start)
        write_results(out / "bench_zoo.json", results)
    fs_before = REPLAY_FS[mode] if args.replay is None else args.replay
    replays = {}
    for structure in dict.fromkeys(c.structure for c in campaigns):
        stopped = sorted((r for r in records.values() if r["structure"] == structure and r["status"] == "done"
                          and not r["passed"] and any(run["stopped"] for run in r["validation_runs"])),
                         key=lambda r: r["rule"] != DEFAULT_RULE)
        if fs_before and stopped:
            campaign = Campaign(structure, stopped[0]["rule"], stopped[0]["seed"])
            try:
                replays[structure] = {"rule": campaign.rule, "seed": campaign.seed,
                                      "replays": replay_stops(campaign.workdir(out), fs_before)}
            except Exception as error:  # noqa: BLE001
                replays[structure] = {"rule": campaign.rule, "seed": campaign.seed,
                                      "error": f"{type(error).__name__}: {error}"}
    results = summarise(list(records.values()), replays, settings, mode, args, time.perf_counter() - start)
    report(results["campaigns"], results["aggregate"], results["ranking"], replays)
    for name, ok in results["targets"].items():
        if not isinstance(ok, dict):
            print(f"target {name}: {'yes' if ok else 'NO'}")
    figure = plot(results["campaigns"], out / "zoo_learning_curves.png")
    write_results(out / "bench_zoo.json", results)
    if args.json:
        write_results(Path(args.json), results)
    print(f"\n{len(campaigns)} campaigns, {results['wall_seconds_this_call']:.0f} s this call; "
          f"{figure or 'no comparison plot'}, {out / 'bench_zoo.json'}")
    return results


def summarise(records: list[dict], replays: dict, settings: LearnSettings, mode: str,
              args: argparse.Namespace, seconds: float) -> dict:
    """Everything the benchmark reports, as one JSON-ready dictionary."""
    ranks = ranking(records)
    return {"reference": settings.reference, "mode": "smoke" if args.smoke else mode,
            "settings": json.loads(json.dumps(asdict(settings))), "default_rule": DEFAULT_RULE,
            "campaigns": records, "aggregate": aggregate(records), "ranking": ranks,
            "targets": targets(records, ranks), "replays": replays,
            "wall_seconds_this_call": seconds}


if __name__ == "__main__":
    main()
