"""Vibrational density of states, total and per atom type, from the velocities of an MD trajectory.

The mass-weighted velocity autocorrelation of each atom type is windowed, zero padded and cosine
transformed; the total integrates to the degrees of freedom and the partial VDOS add up to it. Give a
trajectory with velocities, or --run STRUCTURE to run the reference protocol first (relaxation of
positions and cell unless --no-relax, NPT equilibration, NVE production; on the ASE or the native LAMMPS
--engine; resumable). Frames without atom types are typed on the fly; when that fails, the partial VDOS are per
element.

The run checks itself: the mean kinetic temperature of every type is compared with the system's, and
types out of equipartition (by more than --equipartition-fraction of it and --equipartition-kelvin) are
logged as a warning and listed under "equipartition" with their states against the 3N per type expected.

With --samples N (with --run and a SNAP --model that has its PREFIX.snapfit.npz, written by mofsnap fit),
the NVE production is run again with N models drawn from the model's ridge posterior (in
-o DIR/posterior/sampleK/, on --workers local processes or a Dask --executor, resumable), each from the
same equilibrated state (positions and velocities, no new random draw) and with the same protocol as the
model's own production, so the spread is the model's and not that of other MD starts. Each peak of the
model's spectrum in the --bands gets the mean and standard deviation of its position over the samples:
"m ± z (model) cm⁻¹", next to the frequency resolution of the spectrum (no MD error of a peak position is
computed). It costs N more NVE productions.

Writes vdos.json (the VDOS, readable with VDOSResult.read), vdos.csv (the spectra), vdos_summary.json
(states and peaks per band; with --samples the peaks' model spread) and vdos.png (with --samples the peaks
of the total at their posterior mean ± model spread) into -o DIR; prints the degrees of freedom, states and,
with --samples, one line per peak of the total.
"""

from __future__ import annotations

import argparse
import json
from functools import partial

from ..analysis.runs import check_engine
from ..analysis.vdos import WINDOWS, compute_vdos, run_posterior_vdos, run_vdos_protocol, write_outputs
from ..exceptions import VDOSError
from ..executors import open_executor
from ..fit.posterior import posterior_calculators
from ..md import read_trajectory
from ..structures import read_structure
from .options import (add_calculator, add_engine, add_executor, add_md, add_output, add_pressure, add_relax,
                      add_samples, calculator_from_args, default_of, positive_float, positive_int)

#: Frequency bands of the peak list when --bands is not given: framework, fingerprint and C-H stretch (cm⁻¹).
DEFAULT_BANDS = "0-600,600-1800,2800-3300"


def parse_bands(text: str) -> list[tuple[float, float]]:
    """``"0-600,600-1800"`` -> ``[(0, 600), (600, 1800)]`` (cm⁻¹).

    Raises
    ------
    VDOSError
        Text that is not comma-separated ``LO-HI`` pairs with ``LO < HI``.
    """
    try:
        bands = [tuple(float(x) for x in item.split("-")) for item in text.split(",") if item.strip()]
    except ValueError:
        raise VDOSError(f"bands {text!r} must look like 0-600,600-1800 (cm⁻¹)") from None
    if any(len(b) != 2 or not b[0] < b[1] for b in bands):
        raise VDOSError(f"bands {text!r} must be LO-HI pairs with LO < HI (cm⁻¹), e.g. 0-600,600-1800")
    return bands


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofsnap vdos``."""
    parser.add_argument("trajectory", nargs="?", help="extxyz (momenta or velocities column) or ASE .traj")
    add_output(parser, "vdos")
    parser.add_argument("--frame-interval", type=positive_float, metavar="FS",
                        help="time between frames in fs (default: from the frames' time_fs)")
    parser.add_argument("--skip", type=int, default=default_of(compute_vdos, "skip"),
                        help="frames dropped from the start (default %(default)s)")
    max_lag = default_of(compute_vdos, "max_lag_fs")
    parser.add_argument("--max-lag", type=positive_float, default=max_lag, metavar="FS",
                        help=f"longest correlation time in fs; sets the resolution (default {max_lag:g}, capped at "
                             "half the trajectory)")
    parser.add_argument("--window", choices=WINDOWS, default=default_of(compute_vdos, "window"),
                        help="lag window (default %(default)s)")
    parser.add_argument("--padding", type=positive_int, default=default_of(compute_vdos, "padding"),
                        help="zero-padding factor (default %(default)s)")
    parser.add_argument("--bands", default=DEFAULT_BANDS, metavar="LO-HI,...",
                        help="frequency bands in cm⁻¹ for the peak list (default %(default)s)")
    parser.add_argument("--prominence", type=positive_float, default=default_of(write_outputs, "min_prominence"),
                        help="minimum peak prominence as a fraction of the band maximum (default %(default)s)")
    fraction, kelvin = default_of(compute_vdos, "tolerance_fraction"), default_of(compute_vdos, "tolerance_K")
    parser.add_argument("--equipartition-fraction", type=float, default=fraction, metavar="F",
                        help=f"flag a type whose kinetic temperature differs from the system's by more than this "
                             f"fraction of it (default {fraction:g}) ...")
    parser.add_argument("--equipartition-kelvin", type=float, default=kelvin, metavar="K",
                        help=f"... and by more than this many K (default {kelvin:g})")
    parser.add_argument("--by-element", action="store_true", help="partial VDOS per element, not per atom type")
    parser.add_argument("--removed-dof", type=float,
                        help="degrees of freedom removed from 3N (default: 3 if the centre of mass is fixed, "
                             "plus constraints)")
    protocol = parser.add_argument_group("reference protocol (--run)")
    protocol.add_argument("--run", metavar="STRUCTURE",
                          help="run NPT then NVE from this structure with the calculator, then analyse the NVE run")
    for flags, parameter, metavar, what in ((("-T", "--temperature"), "temperature_K", "K", "temperature in K"),
                                            (("--npt-ps",), "npt_ps", "PS", "NPT equilibration in ps"),
                                            (("--nve-ps",), "nve_ps", "PS", "NVE production in ps"),
                                            (("--save-every",), "frame_interval_fs", "FS", "NVE frame interval in fs")):
        value = default_of(run_vdos_protocol, parameter)
        protocol.add_argument(*flags, type=positive_float, default=value, metavar=metavar,
                              help=f"{what} (default {value:g})")
    add_pressure(protocol)
    add_md(parser, ensemble=False)
    add_calculator(parser)
    add_relax(parser)
    add_engine(parser)
    add_executor(parser)
    add_samples(parser)


def run(args: argparse.Namespace) -> None:
    """``mofsnap vdos``: the VDOS of a trajectory, or of the reference protocol run first."""
    if (args.trajectory is None) == (args.run is None):
        raise VDOSError("give either a trajectory or --run STRUCTURE (not both)")
    if args.samples and args.run is None:
        raise VDOSError("--samples reruns the NVE production with posterior models: it needs --run STRUCTURE")
    bands = parse_bands(args.bands)
    sample_trajectories = []
    if args.run is not None:
        calculator = calculator_from_args(args)
        check_engine(args.engine, calculator)
        if args.samples:  # refuse a model without posterior before any MD
            posterior_calculators(calculator, args.samples, args.samples_seed)
        production = dict(nve_ps=args.nve_ps, timestep_fs=args.timestep, frame_interval_fs=args.save_every,
                          engine=args.engine, ranks=args.np, progress=args.progress)
        frames = run_vdos_protocol(read_structure(args.run), calculator, args.output, temperature_K=args.temperature,
                                   pressure_MPa=args.pressure, npt_ps=args.npt_ps, seed=args.seed, relax=args.relax,
                                   relax_fmax=args.relax_fmax, cell=args.cell, tdamp_fs=args.tdamp,
                                   pdamp_fs=args.pdamp, chain=args.chain, **production)
        if args.samples:
            with open_executor(args.workers, args.executor, args.np) as executor:
                sample_trajectories = run_posterior_vdos(calculator, args.output, args.samples,
                                                         args.samples_seed, executor=executor, **production)
    else:
        frames = read_trajectory(args.trajectory)
    analyse = partial(compute_vdos, frame_interval_fs=args.frame_interval, skip=args.skip, max_lag_fs=args.max_lag,
                      window=args.window, padding=args.padding, by_element=args.by_element,
                      removed_dof=args.removed_dof, tolerance_fraction=args.equipartition_fraction,
                      tolerance_K=args.equipartition_kelvin)
    summary = write_outputs(analyse(frames), args.output, bands, args.prominence,
                            [analyse(read_trajectory(path)) for path in sample_trajectories], args.samples_seed)
    printed = {k: summary[k] for k in ("dof", "states", "equipartition", "settings")}
    if args.samples:
        printed["report"] = summary["model_spread"]["report"]
    print(json.dumps(printed, indent=2, ensure_ascii=False))
