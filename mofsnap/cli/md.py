"""Run or resume an MD run (NVE, NVT, Langevin, NPT) with a SNAP model or another calculator.

Writes DIR/md.extxyz (or md.traj with --format traj), DIR/md.json (steps, ns/day, mean temperature and volume;
also printed) and DIR/md.png (temperature, potential energy and volume against time). Run the same command
again with more --steps to continue the run from the last frame of its trajectory.

Example: mofsnap md zif8.extxyz --model zif8 --d3 --ensemble npt -T 300 --steps 10000 -o run/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .. import plotting
from ..md import blowup_guard, read_trajectory, run_md
from ..structures import read_structure
from .options import (add_calculator, add_md, add_output, add_pressure, calculator_from_args, default_of,
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
    parser.add_argument("--max-force", type=positive_float, metavar="EV/Å",
                        help="stop the run when a force exceeds this (with --max-temperature: blow-up guard)")
    max_temperature = default_of(blowup_guard, "max_temperature_K")
    parser.add_argument("--max-temperature", type=positive_float, default=max_temperature, metavar="K",
                        help=f"with --max-force: stop when the temperature exceeds this (default {max_temperature:g})")
    add_md(parser)
    add_calculator(parser)


def run(args: argparse.Namespace) -> None:
    """Run the dynamics, then write the summary and the plot of the whole trajectory."""
    out = Path(args.output)
    atoms = read_structure(args.structure)
    calculator = calculator_from_args(args)
    out.mkdir(parents=True, exist_ok=True)
    guard = blowup_guard(args.max_force, args.max_temperature) if args.max_force is not None else None
    result = run_md(atoms, args.steps, temperature_K=args.temperature, ensemble=args.ensemble,
                    pressure_MPa=args.pressure, cell=args.cell, timestep_fs=args.timestep, tdamp_fs=args.tdamp,
                    pdamp_fs=args.pdamp, chain=args.chain, friction_per_fs=args.friction, seed=args.seed,
                    trajectory=out / f"md.{args.format}", interval=args.interval, guard=guard,
                    progress=args.progress, calculator=calculator)
    frames = read_trajectory(result.trajectory)
    plotting.md_run_figure(frames, out / "md.png")
    summary = {
        "structure": str(args.structure), "natoms": len(atoms), "ensemble": args.ensemble,
        "steps": result.steps, "new_steps": result.new_steps, "timestep_fs": args.timestep,
        "stopped": result.stopped, "wall_seconds": result.wall_seconds, "ns_per_day": result.ns_per_day,
        "mean_temperature_K": float(np.mean([f.info["temperature_K"] for f in frames[1:] or frames])),
        "mean_volume_A3": float(np.mean([f.get_volume() for f in frames])),
        "trajectory": str(result.trajectory),
    }
    (out / "md.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
