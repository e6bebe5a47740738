"""Fit a SNAP potential to labelled configurations.

The training (and validation) files are extxyz frames carrying energy, forces, stress and
atoms.arrays['atom_types'], e.g. exported by 'mofsnap label --export'. Writes <name>.snapcoeff/.snapparam,
report.json (a FitReport), report.csv and parity.png to the output directory; with --optimize also
hyperparameters.json, with --learning-curve also learning_curve.json and learning_curve.png.

Example: mofsnap fit train.extxyz --valid valid.extxyz -o model/
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..exceptions import FitError
from .options import add_executor, add_output, default_of, positive_float, positive_int


def _type_value(text: str) -> tuple[str, float]:
    """argparse type of --radius/--weight: ``TYPE=VALUE``."""
    label, _, value = text.partition("=")
    try:
        return label, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give TYPE=VALUE, e.g. H1a=0.28") from None


def _sizes(text: str) -> list[int]:
    """argparse type of --learning-curve: comma-separated positive integers."""
    try:
        return [positive_int(size) for size in text.split(",")]
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"{text!r}: give training-set sizes like 50,100,200") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofsnap fit``."""
    from ..fit import fit_snap
    from ..model import SNAPModel

    parser.add_argument("train", nargs="+", help="training extxyz file(s); every frame is used")
    parser.add_argument("--valid", nargs="*", default=[], help="validation extxyz file(s): alpha is chosen on "
                        "them and their errors reported (without them: k-fold cross-validation)")
    add_output(parser, "snap-fit")
    parser.add_argument("--name", default="snap", help="model file prefix inside the output directory "
                                                       "(default %(default)s)")
    model = parser.add_argument_group("model")
    for flag, field, kind, what in (("--twojmax", "twojmax", positive_int, "2J_max of the bispectrum"),
                                    ("--rcutfac", "rcutfac", positive_float, "cutoff scale in Å"),
                                    ("--rfac0", "rfac0", positive_float, "SNAP rfac0")):
        model.add_argument(flag, type=kind, default=default_of(SNAPModel, field),
                           help=f"{what} (default %(default)s)")
    model.add_argument("--radius", action="append", type=_type_value, default=[], metavar="TYPE=R",
                       help="per-type radius (repeatable; default: published ZIF-8 values or by element)")
    model.add_argument("--weight", action="append", type=_type_value, default=[], metavar="TYPE=W",
                       help="per-type neighbour weight (repeatable; default as for --radius)")
    fit = parser.add_argument_group("fit")
    fit.add_argument("--energy-weight", type=positive_float, default=default_of(fit_snap, "energy_weight"),
                     help="row weight Ew of per-atom energies (eV/atom) relative to forces (default %(default)s)")
    fit.add_argument("--stress-weight", type=positive_float, default=default_of(fit_snap, "stress_weight"),
                     help="row weight Sw of stresses (eV/Å^3) relative to forces (default %(default)s)")
    fit.add_argument("--alpha", type=float, default=default_of(fit_snap, "alpha"),
                     help="ridge parameter (default: chosen on the validation set or by cross-validation)")
    fit.add_argument("--cv", type=positive_int, default=default_of(fit_snap, "cv"),
                     help="folds of the cross-validation without --valid (default %(default)s)")
    fit.add_argument("--cache", default=None, metavar="DIR", help="descriptor cache directory (default: temporary)")
    fit.add_argument("--seed", type=int, default=default_of(fit_snap, "seed"),
                     help="seed of folds, subsets and search (default %(default)s)")
    add_executor(parser)
    extra = parser.add_argument_group("search and learning curve")
    extra.add_argument("--optimize", type=positive_int, default=None, metavar="N",
                       help="search radii, weights, rfac0, alpha, Ew, Sw with N descriptor evaluations (needs "
                            "--valid; resumable through <output>/hyperparameters.jsonl)")
    extra.add_argument("--learning-curve", type=_sizes, default=None, metavar="N1,N2,...",
                       help="also fit on random subsets of these sizes and plot learning_curve.png (needs --valid)")


def _read_frames(paths: Sequence[str]) -> list:
    from ase.io import read

    frames = []
    for path in paths:
        if not Path(path).is_file():
            raise FitError(f"{path}: no such file; give extxyz files of labelled configurations")
        frames += read(path, ":")
    return frames


def run(args: argparse.Namespace) -> int:
    """Fit, write model, report and plots, and print the errors."""
    from ..executors import open_executor
    from ..fit import fit_snap, learning_curve, model_for, optimize_hyperparameters
    from ..md.grade import write_fit_statistics

    if (args.optimize or args.learning_curve) and not args.valid:
        raise FitError("--optimize and --learning-curve need a validation set: add --valid FILE")
    train, valid = _read_frames(args.train), _read_frames(args.valid)
    start = model_for(train, twojmax=args.twojmax, rcutfac=args.rcutfac, rfac0=args.rfac0)
    for pairs, field, option in ((args.radius, "radii", "--radius"), (args.weight, "weights", "--weight")):
        for label, value in pairs:
            if label not in start.types:
                raise FitError(f"{option}: type {label} does not occur in the training data; choose from "
                               f"{', '.join(start.types)}")
            getattr(start, field)[start.types.index(label)] = value
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    common = dict(cache_dir=args.cache, progress=args.progress)
    if args.optimize:
        model, report, search = optimize_hyperparameters(
            train, valid, start, n_evaluations=args.optimize, seed=args.seed,
            log_file=out / "hyperparameters.jsonl", energy_weight=args.energy_weight,
            stress_weight=args.stress_weight, **common)
        search.write(out / "hyperparameters.json")
        best = search.best
        print(f"best hyperparameters (objective {search.objective:.4g}): rfac0 {best['rfac0']:.4f}, "
              f"alpha {best['alpha']:.3g}, Ew {best['energy_weight']:.4g}, Sw {best['stress_weight']:.4g}")
        for label, r, w in zip(best["types"], best["radii"], best["weights"]):
            print(f"  {label:>6}: radius {r:.4f}, weight {w:.4f}")
    else:
        with open_executor(args.workers, args.executor) as executor:  # descriptor rows on every core
            model, report = fit_snap(train, valid, model=start, energy_weight=args.energy_weight,
                                     stress_weight=args.stress_weight, alpha=args.alpha, cv=args.cv, seed=args.seed,
                                     executor=executor, **common)
    model.write(out / args.name)
    write_fit_statistics(out / args.name, model, report, train)  # for the extrapolation grade and error bars
    report.write(out / "report.json")
    report.write_csv(out / "report.csv")
    report.plot(out / "parity.png")
    if args.learning_curve:
        curve = learning_curve(train, valid, args.learning_curve, seed=args.seed, model=model, alpha=report.alpha,
                               energy_weight=report.energy_weight, stress_weight=report.stress_weight, **common)
        curve.plot(out / "learning_curve.png")
        curve.write(out / "learning_curve.json")
    for name, m in report.metrics.items():
        print(f"{name:>10}: energy {m['energy_rmse']:.3f} meV/atom, forces {m['forces_rmse']:.1f} meV/Å, "
              f"stress {m['stress_rmse']:.1f} MPa (RMSE)")
    print(f"model written to {out / args.name}.snapcoeff/.snapparam")
    return 0
