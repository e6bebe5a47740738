"""Lattice parameters against temperature and pressure from NPT MD: thermal expansion α and bulk modulus.

Several NPT runs per state point; the equilibration is discarded and the rest averaged over windows, whose
spread gives the errors. α = (1/a) da/dT at a chosen T comes from a weighted fit of a(T), the bulk modulus
from a fit of V(P). Analyses existing NPT trajectories (FILE, or FILE:T[:P] for trajectories without
mofsnap's T and P, e.g. LAMMPS dumps) or runs the scan first with --run: the structure is relaxed with the
calculator (positions and cell, unless --no-relax), then the independent runs (state points × --runs) go
to --workers local processes or a Dask --executor, on the ASE or the native LAMMPS --engine; a finished
run is not run again and an unfinished one resumes.

Every state point is checked for drift: a lattice parameter that still moves through the production
windows (slope above --drift-sigma standard errors) is flagged with a warning and listed as "drifting".

With --samples N (with --run and a SNAP --model that has its PREFIX.snapfit.npz, written by mofsnap fit),
the scan is repeated with N models drawn from the model's ridge posterior (in -o DIR/posterior/sampleK/,
same state points, runs and MD seeds), each analysed like the model's own; the standard deviation of their
a(T) and α is the model spread: "a(T) = x ± y (MD) ± z (model)". It costs N scans.

Writes thermal_expansion.json (readable with ThermalExpansionResult.read), state_points.csv,
lattice_vs_T.png and lattice_vs_P.png into -o DIR; prints α, the bulk modulus, the drifting state
points as [T, P] and the report lines "a(T, P) = ..." and "α(T) = ...".
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ..analysis.runs import check_engine
from ..executors import open_executor
from ..analysis.thermal_expansion import (analyse, model_spread, run_npt_scan, run_posterior_scans,
                                          state_points_from_files, write_outputs)
from ..exceptions import ThermalExpansionError
from ..structures import read_structure
from ..fit.posterior import posterior_calculators
from .options import (add_calculator, add_engine, add_executor, add_md, add_output, add_relax, add_samples,
                      calculator_from_args, default_of, positive_float, positive_int)


def float_list(text: str) -> list[float]:
    """argparse type: ``"100,200,300"`` -> ``[100.0, 200.0, 300.0]``."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers, e.g. 100,200,300") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofsnap thermal-expansion``."""
    parser.add_argument("trajectories", nargs="*", metavar="FILE[:T[:P]]",
                        help="NPT trajectories (extxyz, ASE .traj, LAMMPS dump, ...); T (K) and P (MPa) are read "
                             "from frames written by mofsnap or given after colons")
    add_output(parser, "thermal_expansion")
    for flag, parameter, what in (("--equilibration-ps", "equilibration_ps",
                                   "time discarded at the start of every run in ps"),
                                  ("--window-ps", "window_ps", "averaging window in ps")):
        value = default_of(state_points_from_files, parameter)
        parser.add_argument(flag, type=positive_float, default=value, metavar="PS", help=f"{what} (default {value:g})")
    drift = default_of(state_points_from_files, "drift_sigma")
    parser.add_argument("--drift-sigma", type=positive_float, default=drift, metavar="N",
                        help=f"flag a state point whose lattice parameter drifts over the production windows by more "
                             f"than N standard errors of the slope (default {drift:g})")
    parser.add_argument("--frame-interval", type=positive_float, metavar="FS",
                        help="time between frames in fs for trajectories without time_fs (e.g. LAMMPS dumps)")
    parser.add_argument("--length-factor", type=positive_float,
                        default=default_of(state_points_from_files, "length_factor"),
                        help="multiply cell lengths by this to get the reported lattice parameter (0.5 for a "
                             "2x2x2 supercell, 1.41421 for the primitive cell of an fcc lattice; default %(default)s)")
    parser.add_argument("--at", type=positive_float, default=default_of(analyse, "at_K"), metavar="K",
                        help="temperature of α (default %(default)s)")
    parser.add_argument("--at-pressure", type=float, metavar="MPA",
                        help="pressure of the bulk modulus (default: lowest pressure of the scan)")
    parser.add_argument("--degree-T", type=positive_int, default=default_of(analyse, "degree_T"),
                        help="polynomial degree of the a(T) fit (default %(default)s)")
    parser.add_argument("--degree-P", type=positive_int, default=default_of(analyse, "degree_P"),
                        help="polynomial degree of the V(P) fit (default %(default)s)")
    scan = parser.add_argument_group("running the NPT scan (--run)")
    scan.add_argument("--run", metavar="STRUCTURE", help="run the NPT scan from this structure first (resumable)")
    scan.add_argument("--temperatures", type=float_list, metavar="T1,T2,...",
                      help="temperatures in K (default: the --at temperature)")
    scan.add_argument("--pressures", type=float_list, default=list(default_of(run_npt_scan, "pressures_MPa")),
                      metavar="P1,P2,...", help="pressures in MPa (default 1 atm)")
    scan.add_argument("--runs", type=positive_int, default=default_of(run_npt_scan, "runs"),
                      help="independent runs per state point (default %(default)s)")
    production = default_of(run_npt_scan, "production_ps")
    scan.add_argument("--production-ps", type=positive_float, default=production, metavar="PS",
                      help=f"production per run in ps (default {production:g})")
    interval = default_of(run_npt_scan, "frame_interval_fs")
    scan.add_argument("--save-every", type=positive_float, default=interval, metavar="FS",
                      help=f"frame interval in fs (default {interval:g})")
    add_md(parser, ensemble=False)
    add_calculator(parser)
    add_relax(parser)
    add_engine(parser)
    add_executor(parser)
    add_samples(parser)


def run(args: argparse.Namespace) -> None:
    """``mofsnap thermal-expansion``: run the NPT scan if asked, then analyse the trajectories."""
    if bool(args.trajectories) == (args.run is not None):
        raise ThermalExpansionError("give either NPT trajectories or --run STRUCTURE (not both)")
    if args.samples and args.run is None:
        raise ThermalExpansionError("--samples reruns the scan with posterior models: it needs --run STRUCTURE")
    scans = [args.trajectories]
    if args.run is not None:
        calculator = calculator_from_args(args)
        check_engine(args.engine, calculator)
        if args.samples:  # refuse a model without posterior before any MD
            posterior_calculators(calculator, args.samples, args.samples_seed)
        atoms = read_structure(args.run)
        scan = dict(temperatures_K=args.temperatures or [args.at], pressures_MPa=args.pressures, runs=args.runs,
                    equilibration_ps=args.equilibration_ps, production_ps=args.production_ps,
                    timestep_fs=args.timestep, frame_interval_fs=args.save_every, seed=args.seed,
                    progress=args.progress, relax=args.relax, relax_fmax=args.relax_fmax, engine=args.engine,
                    ranks=args.np, cell=args.cell, tdamp_fs=args.tdamp, pdamp_fs=args.pdamp, chain=args.chain)
        with open_executor(args.workers, args.executor, args.np) as executor:
            paths = [run_npt_scan(atoms, calculator, args.output, executor=executor, **scan)]
            if args.samples:
                paths += run_posterior_scans(atoms, calculator, args.output, args.samples, args.samples_seed,
                                             executor=executor, **scan)
        scans = [[str(p) for group in sample.values() for p in group] for sample in paths]
    results = [analyse(state_points_from_files(files, args.equilibration_ps, args.window_ps, args.length_factor,
                                               args.frame_interval, args.drift_sigma),
                       args.at, args.at_pressure, args.degree_T, args.degree_P) for files in scans]
    result = results[0]
    if args.samples:
        result.model_spread = model_spread(result, results[1:], args.samples_seed)
    write_outputs(result, args.output)
    print(json.dumps({"alpha": result.alpha and asdict(result.alpha),
                      "bulk_modulus": result.bulk_modulus and asdict(result.bulk_modulus),
                      "drifting": [[p.temperature_K, p.pressure_MPa] for p in result.drifting],
                      "report": result.report()}, indent=2, ensure_ascii=False))
