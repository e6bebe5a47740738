"""Well-tempered metadynamics of a MOF-5 phenylene rotation (reference protocol) with SNAP + D3: speed and result.

Runs the reference protocol of :func:`mofsnap.analysis.metadynamics.ring_rotation_input` (two ring dihedrals,
σ 0.1 rad, h0 0.05 eV, γ 12, pace 100, Zn–O and O–Zn–Zn–O walls) in NVT at 300 K and prints ns/day of the
biased MD next to the same MD without PLUMED (the bias overhead), then the free-energy barrier of the run.

A physical run needs a SNAP model trained on MOF-5: pass ``--model PREFIX`` (PREFIX.snapcoeff/.snapparam).
Without one, only the speed is measured, with a random-coefficient model of the reference hyperparameters
(cost does not depend on the coefficients; its dynamics and barrier are meaningless and not printed).

Run: ``python benchmarks/bench_metadynamics.py [--quick] [--model PREFIX] [--steps N] [-o DIR]``
(``--quick``: primitive cell, 106 atoms, 300 steps; default: conventional cell, 424 atoms, 3000 steps.
The published barrier, 0.46 eV, needs nanoseconds: e.g. ``--steps 2000000`` with a trained model.)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from mofsnap.analysis.metadynamics import free_energy, ring_rotation_input, run_metadynamics
from mofsnap.calculator import SNAPCalculator
from mofsnap.md import run_md
from mofsnap.model import SNAPModel
from mofsnap.structures import mof5

TEMPERATURE = 300.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="primitive cell (106 atoms) and 300 steps")
    parser.add_argument("--model", metavar="PREFIX", help="trained MOF-5 SNAP model (PREFIX.snapcoeff/.snapparam)")
    parser.add_argument("--steps", type=int, help="MD steps (default 300 quick, 3000 otherwise)")
    parser.add_argument("--ring", type=int, default=0, help="phenylene ring to rotate (default 0)")
    parser.add_argument("-o", "--output", help="run directory (default: a temporary one)")
    args = parser.parse_args(argv)
    steps = args.steps or (300 if args.quick else 3000)
    atoms = mof5(primitive=args.quick)
    if args.model:
        model = SNAPModel.read(args.model)
    else:
        print("No --model given: a physical metadynamics run needs a SNAP model trained on MOF-5 "
              "(python -m mofsnap.learn / mofsnap.fit). Measuring speed only, with random coefficients.")
        model = SNAPModel(sorted(set(atoms.arrays["atom_types"])))
        model.coefficients = np.random.default_rng(0).normal(0.0, 1e-3, model.coefficients.shape)

    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(args.output or scratch)
        plain = run_md(atoms.copy(), steps, temperature_K=TEMPERATURE, ensemble="nvt", seed=1, progress=False,
                       calculator=SNAPCalculator(model, d3=True))
        biased = run_metadynamics(atoms.copy(), SNAPCalculator(model, d3=True), ring_rotation_input(atoms, args.ring),
                                  temperature_K=TEMPERATURE, steps=steps, directory=directory, seed=1, progress=False)
        print(f"MOF-5, {len(atoms)} atoms, SNAP + D3, NVT {TEMPERATURE:g} K, 1 fs, {steps} steps")
        print(f"  MD without bias       : {plain.ns_per_day:8.3f} ns/day")
        print(f"  WT-MetaD through PLUMED: {biased.ns_per_day:8.3f} ns/day "
              f"({(plain.ns_per_day / biased.ns_per_day - 1) * 100:+.1f} % time)")
        if args.model and steps >= 100 * 20:
            result = free_energy(directory / "HILLS", TEMPERATURE)
            print(f"  ring-rotation barrier : {result.barrier:.3f} ± {result.barrier_error:.3f} eV "
                  f"(nan: not crossed yet; reference 0.46 eV needs ns)")


if __name__ == "__main__":
    main()
