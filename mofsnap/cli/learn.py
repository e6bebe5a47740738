"""Active learning of a SNAP model: perturbed copies, MD at rising temperatures, CBAD picks, labels, fits.

Settings come from a TOML file (keys of mofsnap.learn.LearnSettings), from the embedded demo (--demo: the
MOF-5 primitive cell with GFN1-xTB, about 15 minutes on 2 cores) or are the defaults. The work directory
(-o) holds all state: a killed run given the same directory resumes where it stopped; a second process on the
same directory is refused. Every setting is checked before any work. The campaign ends with a validation of
the final model (guarded SNAP + D3 NPT runs at 300 K and at the highest training temperature, test errors,
300 K lattice): its verdict is printed, written (final/validation.json, validation.png) and a failed
validation ends the command with exit status 1. With --replay-stops FS, each guard stop of a failed
validation is replayed with the model and with the reference from FS fs before it: whose failure it is.

    mofsnap learn config.toml -o WORKDIR
    mofsnap learn --demo -o results/demo
    mofsnap learn --demo --structure my_mof.cif -o my_mof   # the demo schedule on your framework
    mofsnap learn --write-config my.toml          # every key, commented, with its default (--demo: the demo's)
    mofsnap learn config.toml -o WORKDIR --replay-stops 100   # after a failed validation: whose failure?
    mofsnap learn config.toml --pool a.xyz b.xyz  # select with CBAD from trajectories, label, fit (no MD loop)
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ..exceptions import LearnError, ValidationFailed
from .options import add_executor, add_output, add_unpaired_electrons, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofsnap learn``."""
    from ..learn import DEFAULT_WORKDIR

    parser.add_argument("config", nargs="?", help="TOML settings file (keys of mofsnap.learn.LearnSettings)")
    add_output(parser, DEFAULT_WORKDIR, "work directory (resumed if it exists)")
    parser.add_argument("--demo", action="store_true", help="the embedded demo schedule (MOF-5 cell, GFN1-xTB)")
    parser.add_argument("--structure", metavar="NAME|FILE",
                        help="the framework instead of the config's or the demo's: a built-in name or a structure "
                             "file (a CIF is checked as 'mofsnap structures' does)")
    add_unpaired_electrons(parser)
    parser.add_argument("--pool", nargs="+", metavar="TRAJ",
                        help="select with CBAD from these trajectories, label and fit (no MD loop)")
    parser.add_argument("--write-config", metavar="FILE",
                        help="write the settings (demo or defaults) as a commented TOML file and exit")
    parser.add_argument("--retry-failed", action="store_true",
                        help="recompute the labels stored as failed (a resumed campaign keeps them otherwise)")
    parser.add_argument("--replay-stops", type=positive_int, metavar="FS",
                        help="after a failed validation, replay each guard stop with the model and with the "
                             "reference from FS fs before it (final/replays.json): does the reference break too?")
    parser.add_argument("--export", metavar="PREFIX",
                        help="after the campaign, copy its model as PREFIX.snapcoeff/.snapparam/.snapfit.npz with "
                             "its card (PREFIX.json, .md), settings (PREFIX.toml) and labels (PREFIX.labels.extxyz.gz)")
    add_executor(parser)


def run(args: argparse.Namespace) -> None:
    """Run ``mofsnap learn``."""
    from ..learn import DEMO, ActiveLearning, LearnSettings, export_model, learn_from_pool
    from ..learn.validation import next_steps

    if args.config and args.demo:
        raise LearnError("give either a config file or --demo, not both")
    settings = LearnSettings.from_toml(args.config) if args.config else (DEMO if args.demo else LearnSettings())
    overrides = {k: v for k, v in (("max_workers", args.workers), ("executor", args.executor),
                                   ("structure", args.structure), ("unpaired_electrons", args.unpaired_electrons))
                 if v is not None}
    settings = replace(settings, **overrides)
    if args.write_config:
        Path(args.write_config).write_text(settings.to_toml())
        print(f"wrote {args.write_config}")
        return
    if args.pool:
        result = learn_from_pool(args.pool, settings.structure, args.output, settings=settings,
                                 progress=args.progress)
        print(f"{result.offered} frames offered, {result.selected} selected, {result.labelled} labelled")
        print(f"model: {result.model}.snapcoeff/.snapparam ({result.train.n} training configurations)")
        print(f"results in {args.output}: result.json, report.json, parity.png")
        return
    with ActiveLearning(workdir=args.output, settings=settings, progress=args.progress,
                        retry_failed=args.retry_failed) as learner:
        summary = learner.run()
        stopped = any(run.stopped for run in summary.validation.runs)
        replays = learner.replay_stops(args.replay_stops) if args.replay_stops and stopped else None
    final = summary.final
    print(f"\nfinal model: {final.model}.snapcoeff/.snapparam ({final.train.n} training configurations)")
    if final.test is None:
        print("no test set: the ramp MD gave no intact frame")
    else:
        print(f"test RMSE ({final.test.n} configurations): {final.test.energy:.2f} meV/atom, "
              f"{final.test.forces:.0f} meV/Å, {final.test.stress:.1f} MPa")
        print(learning_curve_line(final.learning_curve))
    for refinement in summary.refinements:
        before = refinement.previous_model_on_new
        print(f"refinement round {refinement.round}: {refinement.labelled} labels from before the stops of "
              f"{', '.join(f'{r.temperature_K:.0f} K' for r in refinement.learned_from.runs if r.stopped)} "
              f"(the failing model on them: {before.energy:.2f} meV/atom, {before.forces:.0f} meV/Å, "
              f"{before.stress:.1f} MPa), refitted and validated again")
    for run in summary.validation.runs:
        d3 = " + D3" if learner.d3 else ""
        print(f"{run.temperature_K:.0f} K NPT with SNAP{d3}: {run.steps}/{run.planned_steps} steps, "
              f"<T> = {run.mean_temperature_K:.0f} K, <V> = {run.mean_volume_A3:.0f} Å³"
              + (f", stopped: {run.stopped}" if run.stopped else ""))
    for check in summary.validation.checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    if summary.failed_labels:
        print(f"{summary.failed_labels} labels failed (their reasons: ase db {args.output}/labels.db status=failed); "
              "--retry-failed recomputes them")
    print(f"results in {args.output}: summary.json, summary.png, learning_curve.png, final/ "
          "(model card model.json/.md, validation.json, validation.png)")
    if replays is not None:
        for replay in replays.replays:
            print(f"replay: {replay.line()}")
        print(f"replays in {args.output}/final/replays.json")
    elif args.replay_stops:
        print("replay: no validation run was stopped, nothing to replay")
    if args.export:
        print(f"model exported: {export_model(args.output, args.export)}")
    if not summary.validation.passed:
        raise ValidationFailed(f"{summary.validation.verdict} (everything is written in {args.output}; see "
                               f"final/validation.png); next: {next_steps(summary, learner.settings, replays)}")


def learning_curve_line(curve: list) -> str:
    """The rises of the learning curve (a list of :class:`mofsnap.learn.CurvePoint`) that are beyond the noise
    of the test frames, in one line."""
    from ..fit.leastsquares import REPORT_UNITS

    rises = [f"{q} at generation {now.generation} ({getattr(now.test, q) - getattr(before.test, q):+.3g} "
             f"{REPORT_UNITS[q][0]}, "
             f"95 % interval {now.change_interval[q][0]:+.3g} to {now.change_interval[q][1]:+.3g})"
             for before, now in zip(curve, curve[1:]) for q in now.rises_beyond_noise()]
    frames = f"the noise of its {curve[-1].test.n} test frames (paired bootstrap)"
    if not rises:
        return f"learning curve: no rise beyond {frames}"
    return f"learning curve: rises beyond {frames}: {'; '.join(rises)}"
