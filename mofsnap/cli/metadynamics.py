"""Well-tempered metadynamics through PLUMED (run, resumable) and its free energy and barrier (analyse).

  mofsnap metadynamics run STRUCTURE --model PREFIX [--ring N] -T 300 --steps 100000 -o DIR
  mofsnap metadynamics analyse DIR/HILLS -T 300 -o DIR

run: biased NVT MD of the MOF-5 phenylene-ring rotation (the reference protocol: the two ring dihedrals as
CVs, walls keeping the carboxylates on their Zn) or of any PLUMED input (--plumed), then the analysis of its
HILLS. Running the same command again continues an interrupted run.
analyse: free-energy surface, 1-D profiles and barrier with its bias-time convergence error from the HILLS
file of a well-tempered run.

Writes metadynamics.json (the free energy, readable with FreeEnergy.read), fes_1d.png, fes_2d.png (two CVs)
and barrier_convergence.png into -o DIR; prints the barriers.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..analysis.metadynamics import free_energy, ring_rotation_input, run_metadynamics, write_outputs
from ..analysis.metadynamics.biased_md import THERMOSTATS
from ..atomtypes import assign_atom_types
from ..exceptions import MetadynamicsError
from ..structures import read_structure
from .options import add_calculator, add_output, calculator_from_args, default_of, positive_float, positive_int

log = logging.getLogger(__name__)

#: MD steps of a run when --steps is not given (100 ps at 1 fs).
DEFAULT_STEPS = 100_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofsnap metadynamics``."""
    parser.add_argument("action", choices=("run", "analyse"),
                        help="run: biased MD then its analysis; analyse: an existing HILLS file")
    parser.add_argument("input", metavar="STRUCTURE|HILLS",
                        help="run: start structure (extxyz/CIF/...; atom types are assigned if missing); "
                             "analyse: PLUMED HILLS file of a well-tempered run")
    add_output(parser, "metadynamics", "run and results directory")
    parser.add_argument("-T", "--temperature", type=positive_float, metavar="K",
                        help=f"temperature of the run in K (run: default "
                             f"{default_of(ring_rotation_input, 'temperature_K'):g}; analyse: required)")

    run = parser.add_argument_group("run")
    run.add_argument("--plumed", metavar="FILE",
                     help="PLUMED input to use instead of the ring-rotation protocol (any CVs; its METAD must write "
                          "FILE=HILLS; UNITS LENGTH=A ENERGY=eV TIME=fs is added if it has no UNITS)")
    run.add_argument("--steps", type=positive_int, default=DEFAULT_STEPS,
                     help="total MD steps (default %(default)s)")

    ring = parser.add_argument_group("well-tempered metadynamics of the ring rotation (run)")
    ring.add_argument("--ring", type=int, default=default_of(ring_rotation_input, "ring"),
                      help="index of the phenylene ring to rotate (default %(default)s, the first)")
    for flag, parameter, kind, what in (("--sigma", "sigma", positive_float, "Gaussian width in rad"),
                                        ("--height", "height", positive_float, "initial Gaussian height in eV"),
                                        ("--biasfactor", "biasfactor", positive_float, "bias factor γ"),
                                        ("--pace", "pace", positive_int, "MD steps between Gaussians"),
                                        ("--grid-spacing", "grid_spacing", positive_float,
                                         "PLUMED bias grid spacing in rad")):
        value = default_of(ring_rotation_input, parameter)
        ring.add_argument(flag, type=kind, default=value, help=f"{what} (default {value:g})")

    md = parser.add_argument_group("molecular dynamics, NVT (run)")
    md.add_argument("--thermostat", choices=THERMOSTATS, default=default_of(run_metadynamics, "thermostat"),
                    help="nvt: Nose-Hoover chain; langevin: Langevin with --friction (default %(default)s)")
    for flag, parameter, kind, metavar, what in (
            ("--timestep", "timestep_fs", positive_float, "FS", "time step in fs"),
            ("--tdamp", "tdamp_fs", positive_float, "FS", "Nose-Hoover time constant in fs"),
            ("--chain", "chain", positive_int, "N", "Nose-Hoover chain length"),
            ("--friction", "friction_per_fs", positive_float, "PER_FS", "Langevin friction in 1/fs"),
            ("--interval", "interval", positive_int, "N", "steps between trajectory frames (resume points)")):
        value = default_of(run_metadynamics, parameter)
        md.add_argument(flag, type=kind, default=value, metavar=metavar, help=f"{what} (default {value:g})")
    md.add_argument("--seed", type=int, default=default_of(run_metadynamics, "seed"),
                    help="seed of the velocities and the Langevin noise (default %(default)s)")
    add_calculator(parser)

    analysis = parser.add_argument_group("free-energy analysis")
    analysis.add_argument("--spacing", type=positive_float, nargs="+", metavar="DS",
                          help="grid spacing per CV in CV units (default: half the Gaussian width)")
    analysis.add_argument("--checkpoints", type=positive_int, default=default_of(free_energy, "checkpoints"),
                          help="bias times at which the barrier is recomputed for its error (default %(default)s)")
    analysis.add_argument("--tail", type=positive_float, default=default_of(free_energy, "tail"),
                          help="fraction of the run whose barrier spread is the error (default %(default)s)")
    analysis.add_argument("--min-prominence", type=positive_float, metavar="EV",
                          help="smallest depth of a free-energy minimum that counts for the barrier, eV "
                               "(default 2 kT)")


def _run(args: argparse.Namespace, temperature_K: float) -> Path:
    """The biased MD of ``mofsnap metadynamics run``; returns its HILLS file."""
    atoms = read_structure(args.input)
    if args.plumed:
        plumed = Path(args.plumed)
        if not plumed.is_file():
            raise MetadynamicsError(f"PLUMED input {plumed} does not exist; give an existing file to --plumed")
        lines = plumed.read_text().splitlines()
    else:
        if "atom_types" not in atoms.arrays:
            assign_atom_types(atoms)
        lines = ring_rotation_input(atoms, args.ring, temperature_K=temperature_K, sigma=args.sigma,
                                    height=args.height, biasfactor=args.biasfactor, pace=args.pace,
                                    grid_spacing=args.grid_spacing)
    result = run_metadynamics(atoms, calculator_from_args(args), lines, temperature_K=temperature_K,
                              steps=args.steps, directory=args.output, timestep_fs=args.timestep,
                              thermostat=args.thermostat, tdamp_fs=args.tdamp, chain=args.chain,
                              friction_per_fs=args.friction, seed=args.seed, interval=args.interval,
                              progress=args.progress)
    log.info("%d steps, %.3f ns/day", result.steps, result.ns_per_day)
    return Path(args.output) / "HILLS"


def run(args: argparse.Namespace) -> None:
    """``mofsnap metadynamics``: run (then analyse) or analyse well-tempered metadynamics."""
    if args.action == "analyse":
        if args.temperature is None:
            raise MetadynamicsError("analyse needs the temperature of the run: give -T/--temperature K")
        hills, temperature_K = Path(args.input), args.temperature
    else:
        temperature_K = args.temperature or default_of(ring_rotation_input, "temperature_K")
        hills = _run(args, temperature_K)
    result = free_energy(hills, temperature_K, spacing=args.spacing, checkpoints=args.checkpoints, tail=args.tail,
                         min_prominence=args.min_prominence)
    path = write_outputs(result, args.output)
    for name, value, error in zip(result.names, result.barriers, result.barrier_errors):
        print(f"barrier along {name}: {value:.3f} ± {error:.3f} eV")
    print(f"barrier: {result.barrier:.3f} ± {result.barrier_error:.3f} eV  ({path})")
