"""Harmonic phonons with phonopy: Γ frequencies, phonon DOS and partial DOS per atom type, MD VDOS comparison.

Force constants from finite displacements of the structure (Γ only, --supercell 1) or of a supercell, with
any calculator. The structure is first relaxed with the same calculator (positions and the full cell, FIRE
to --relax-fmax; written to -o DIR/relaxed.extxyz and reused when the command runs again) unless
--no-relax.

With --samples N (a SNAP --model with its PREFIX.snapfit.npz, written by mofsnap fit), the force constants,
Γ frequencies and DOS are recomputed with N models drawn from the model's ridge posterior: every Γ
frequency and the DOS come with the mean and the model spread (standard deviation) over them, next to the
model's own result.

Writes phonons.json (the phonons, readable with PhononResult.read), phonon_dos.csv, phonons_summary.json
(imaginary modes, DOS integrals, model spread) and phonon_dos.png (the spread of the DOS as a band) into
-o DIR, gamma_modes.csv with --samples (each Γ frequency: model, posterior mean, model spread), and
vdos_vs_phonons.png with --compare-vdos; prints the summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import plotting
from ..analysis.phonons import compute_phonons, write_outputs
from ..analysis.runs import relax_start
from ..analysis.vdos import VDOSResult
from ..structures import read_structure
from ..fit.posterior import posterior_calculators
from .options import (add_calculator, add_output, add_relax, add_samples, calculator_from_args, default_of,
                      positive_float)


def mesh_size(text: str) -> tuple[int, int, int]:
    """argparse type: ``N`` or ``N1,N2,N3`` (positive integers) as three integers."""
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give N or N1,N2,N3 (whole numbers)") from None
    values = values * 3 if len(values) == 1 else values
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give N or N1,N2,N3 (whole numbers greater than 0)")
    return tuple(values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofsnap phonons``."""
    parser.add_argument("structure", help="relaxed periodic structure (extxyz with atom_types, CIF, ...)")
    add_output(parser, "phonons")
    parser.add_argument("--supercell", type=mesh_size, default=default_of(compute_phonons, "supercell"),
                        metavar="N|N1,N2,N3",
                        help="supercell of the force constants; 1 = Γ point of the cell itself (default %(default)s)")
    parser.add_argument("--mesh", type=mesh_size, metavar="N|N1,N2,N3",
                        help="Γ-centred q mesh of the DOS (default: the supercell)")
    displacement = default_of(compute_phonons, "displacement")
    parser.add_argument("--displacement", type=positive_float, default=displacement, metavar="Å",
                        help=f"finite displacement in Å (default {displacement:g})")
    sigma = default_of(compute_phonons, "sigma_cm1")
    parser.add_argument("--sigma", type=positive_float, default=sigma, metavar="CM-1",
                        help=f"Gaussian smearing of the DOS in cm⁻¹ (default {sigma:g})")
    parser.add_argument("--keep-residual-forces", action="store_true",
                        help="do not subtract the forces of the undisplaced structure")
    parser.add_argument("--by-element", action="store_true", help="partial DOS per element, not per atom type")
    parser.add_argument("--compare-vdos", metavar="FILE",
                        help="vdos.json written by 'mofsnap vdos' (or its directory): plot the VDOS with the DOS")
    add_calculator(parser)
    add_relax(parser)
    add_samples(parser)


def run(args: argparse.Namespace) -> None:
    """``mofsnap phonons``: harmonic phonons of one structure."""
    vdos = None
    if args.compare_vdos:  # read first: a wrong file should not cost the phonon calculation
        path = Path(args.compare_vdos)
        vdos = VDOSResult.read(path / "vdos.json" if path.is_dir() else path)
    calculator = calculator_from_args(args)
    if args.samples:  # refuse a model without posterior before the relaxation
        posterior_calculators(calculator, args.samples, args.samples_seed)
    atoms = read_structure(args.structure)
    if args.relax:
        atoms = relax_start(atoms, calculator, args.output, fmax=args.relax_fmax, cell="full")
    result = compute_phonons(atoms, calculator, supercell=args.supercell,
                             displacement=args.displacement, mesh=args.mesh, sigma_cm1=args.sigma,
                             subtract_residual_forces=not args.keep_residual_forces, by_element=args.by_element,
                             progress=args.progress, samples=args.samples or 0, seed=args.samples_seed)
    summary = write_outputs(result, args.output)
    if vdos is not None:
        plotting.vdos_vs_phonon_dos_figure(vdos, result, Path(args.output) / "vdos_vs_phonons.png")
    print(json.dumps({k: summary[k] for k in ("natoms", "settings", "imaginary_modes_below_-10cm1", "dos_integral",
                                              "model_spread")}, indent=2))
