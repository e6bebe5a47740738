"""Run or resume an MD run (NVE, NVT, Langevin, NPT) with a SNAP model or another calculator.

Writes DIR/md.extxyz (or md.traj with --format traj), DIR/md.json (steps, ns/day, mean temperature and volume;
also printed) and DIR/md.png (temperature, potential energy and volume against time). Run the same command
again with more --steps to continue the run from the last frame of its trajectory.

The run is guarded by default (mofsnap.md.MDGuard: non-finite values, largest force, temperature against the
target, volume change, bonds of the starting structure); when the guard stops it, the trajectory ends with the
last good state, md.json says "stopped" with the reason, and the command exits with status 1 and one line naming
the guard, the step and the atoms. --no-guard runs without it. With a SNAP model whose PREFIX.snapfit.npz exists,
the extrapolation grade is evaluated every --grade-interval steps: frames above --grade-warn are appended to
DIR/extrapolative.extxyz, a grade above --grade-stop stops the run like the guard.

Example: mofsnap md uio66.extxyz --model uio66-gfn1 --zbl card --ensemble npt --cell isotropic -T 300 --steps 10000 -o run/
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from .. import plotting
from ..exceptions import MDError
from ..md import MDGuard, read_trajectory, run_md
from ..md.grade import GRADE_INTERVAL, GRADE_STOP, GRADE_WARN, GradeMonitor
from ..md.native import run_native
from ..md.summary import MDSummary
from ..structures import read_structure
from .options import (add_calculator, add_engine, add_md, add_output, add_pressure, calculator_from_args, default_of,
                      positive_float, positive_int)

#: Steps of a run when --steps is not given.
DEFAULT_STEPS = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofsnap md``."""
    parser.add_argument("structure", help="starting structure (CIF, extxyz with atom_types, ...)")
    add_output(parser, "md")
    parser.add_argument("--steps", type=positive_int, default=DEFAULT_STEPS,
                        help="total number of MD steps, counting those of an earlier run (default %(default)s)")
    temperature = default_of(run_md, "temperature_K")
    parser.add_argument("-T", "--temperature", type=float, default=temperature, metavar="K",
                        help=f"temperature in K (default {temperature:g})")
    add_pressure(parser)
    parser.add_argument("--interval", type=positive_int, default=default_of(run_md, "interval"),
                        help="steps between trajectory frames (default %(default)s)")
    parser.add_argument("--format", choices=("extxyz", "traj"), default="extxyz",
                        help="trajectory format (default %(default)s)")
    friction = default_of(run_md, "friction_per_fs")
    parser.add_argument("--friction", type=positive_float, default=friction, metavar="1/FS",
                        help=f"Langevin friction in 1/fs (default {friction:g})")
    add_guard(parser)
    add_grade(parser)
    add_md(parser)
    add_calculator(parser)
    add_engine(parser)


def add_guard(parser: argparse.ArgumentParser) -> None:
    """The options of the default guard (:class:`mofsnap.md.MDGuard`) and ``--no-guard``."""
    group = parser.add_argument_group("guard (on by default: stops a run that blows up, exit status 1)")
    group.add_argument("--no-guard", action="store_true", help="run without the guard")
    max_force = default_of(MDGuard, "max_force")
    group.add_argument("--max-force", type=positive_float, default=max_force, metavar="EV/Å",
                       help=f"stop when a force exceeds this (default {max_force:g})")
    factor, margin = default_of(MDGuard, "temperature_factor"), default_of(MDGuard, "temperature_margin_K")
    group.add_argument("--max-temperature", type=positive_float, metavar="K",
                       help=f"stop when the temperature exceeds this (default {factor:g} x the target + {margin:g} K)")
    ratio = default_of(MDGuard, "max_volume_ratio")
    group.add_argument("--max-volume-ratio", type=positive_float, default=ratio, metavar="R",
                       help=f"stop when the volume grows or shrinks by more than this factor (default {ratio:g})")
    tolerance = default_of(MDGuard, "bond_tolerance")
    group.add_argument("--bond-tolerance", type=positive_float, default=tolerance, metavar="F",
                       help=f"stop when a bond of the start (atom types needed) is longer than F x its starting "
                            f"length (default {tolerance:g})")


def add_grade(parser: argparse.ArgumentParser) -> None:
    """The options of the extrapolation grade (:class:`mofsnap.md.grade.GradeMonitor`)."""
    group = parser.add_argument_group("extrapolation grade (on when the model has its PREFIX.snapfit.npz)")
    group.add_argument("--grade-interval", type=positive_int, default=GRADE_INTERVAL, metavar="N",
                       help=f"steps between grade evaluations (default {GRADE_INTERVAL})")
    group.add_argument("--grade-warn", type=positive_float, default=GRADE_WARN, metavar="G1",
                       help=f"above this grade, warn and append the frame to DIR/extrapolative.extxyz "
                            f"(default {GRADE_WARN:g})")
    group.add_argument("--grade-stop", type=positive_float, default=GRADE_STOP, metavar="G2",
                       help=f"above this grade, stop the run (default {GRADE_STOP:g})")


def run(args: argparse.Namespace) -> int | None:
    """Run the dynamics, then write the summary (always, finished) and the plot of the whole trajectory.

    Raises
    ------
    MDError
        The guard stopped the run (after md.json is written): the message names the guard, the step and the atoms.
    """
    out = Path(args.output)
    atoms = read_structure(args.structure)
    calculator = calculator_from_args(args)
    guard = None if args.no_guard else MDGuard(max_force=args.max_force, max_temperature_K=args.max_temperature,
                                               max_volume_ratio=args.max_volume_ratio,
                                               bond_tolerance=args.bond_tolerance)
    out.mkdir(parents=True, exist_ok=True)
    observers = []
    if getattr(calculator, "posterior", None) is not None:
        observers.append(GradeMonitor(calculator, args.grade_interval, args.grade_warn, args.grade_stop,
                                      out / "extrapolative.extxyz"))
    result, failure = None, None
    try:
        protocol = dict(temperature_K=args.temperature, ensemble=args.ensemble, pressure_MPa=args.pressure,
                        cell=args.cell, timestep_fs=args.timestep, tdamp_fs=args.tdamp, pdamp_fs=args.pdamp,
                        chain=args.chain, friction_per_fs=args.friction, seed=args.seed, interval=args.interval)
        if args.engine == "lammps":
            if args.calculator != "snap":
                raise MDError("--engine lammps runs SNAP models (--model PREFIX); use --engine ase for "
                              f"--calculator {args.calculator}")
            result = run_native(atoms, args.steps, calculator, out / "lammps", ranks=args.np,
                                trajectory=out / f"md.{args.format}", progress=args.progress, **protocol)
        else:
            result = run_md(atoms, args.steps, trajectory=out / f"md.{args.format}", guard=guard,
                            observers=observers, progress=args.progress, calculator=calculator, **protocol)
    except Exception as error:
        failure = f"{type(error).__name__}: {error}"
        raise
    finally:
        summary = MDSummary.of_run(str(args.structure), len(atoms), args.ensemble, args.timestep,
                                   out / f"md.{args.format}", result, failure)
        summary.write(out / "md.json")
    frames = read_trajectory(result.trajectory)
    plotting.md_run_figure(frames, out / "md.png")
    print(json.dumps(asdict(summary), indent=2))
    if result.stopped:
        raise MDError(f"stopped by the {result.stopped}; the trajectory ends with the last good state (step "
                      f"{result.steps}), {out / 'md.json'} is written")
    return None
