"""ASE-driven MD with SNAPCalculator versus the same model in LAMMPS's own ``run`` loop, and D3 cost/accuracy.

Prints, for ZIF-8 (276 atoms) and MOF-5 (424 atoms): ms per MD step through ASE's VelocityVerlet and through
a native LAMMPS ``run`` on the very LAMMPS instance the calculator built (same pair styles, same neighbour
settings), for SNAP alone and SNAP + D3; then the D3 share of the cost and the D3 energy/force/stress error of
each cutoff against a converged one (50 Å / 25 Å). Cost does not depend on the coefficient values, so the model
has random small coefficients with the reference hyperparameters.

Run: ``python benchmarks/bench_calculator.py [--quick] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from ase import units
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet

from mofsnap.calculator import D3, SNAPCalculator
from mofsnap.model import SNAPModel
from mofsnap.structures import mof5, zif8


def random_model(types: list[str], seed: int = 0) -> SNAPModel:
    model = SNAPModel(sorted(set(types)))
    model.coefficients = np.random.default_rng(seed).normal(0.0, 1e-3, model.coefficients.shape)
    return model


def ms_per_step(atoms, model, d3: D3 | None, steps: int) -> tuple[float, float]:
    """ms per velocity-Verlet step of 1 fs: through ASE, and in LAMMPS's own loop on the same LAMMPS state.

    Both evaluate forces only in each step (the energy is evaluated when asked for, e.g. at logging steps).
    """
    atoms = atoms.copy()
    calc = SNAPCalculator(model, d3=d3)
    atoms.calc = calc
    thermalize_momenta(atoms, 300, rng=np.random.default_rng(1))
    md = VelocityVerlet(atoms, 1.0 * units.fs)
    md.run(2)  # builds LAMMPS and the neighbour lists
    start = time.perf_counter()
    md.run(steps)
    ase_ms = 1e3 * (time.perf_counter() - start) / steps

    lmp = calc._lmp  # the same LAMMPS state, now integrated by LAMMPS itself
    lmp.commands(["velocity all create 300 4928459 mom yes rot no", "fix mofsnap_nve all nve",
                  "timestep 0.001", f"thermo {steps}", "run 2"])
    start = time.perf_counter()
    lmp.command(f"run {steps}")
    return ase_ms, 1e3 * (time.perf_counter() - start) / steps


def d3_convergence(atoms, cutoffs: list[tuple[float, float]]) -> list[dict]:
    """D3 energy (meV/atom) and force (meV/Å) error and cost of each (cutoff, cn_cutoff) vs 50/25 Å."""
    model = random_model(list(atoms.arrays["atom_types"]))

    def evaluate(d3: D3) -> tuple[float, np.ndarray, np.ndarray, float]:
        a = atoms.copy()
        a.calc = SNAPCalculator(model, snap=False, d3=d3)
        a.get_forces()
        a.positions += 1e-4  # time a second, neighbour-list-reusing evaluation
        start = time.perf_counter()
        forces = a.get_forces()
        seconds = time.perf_counter() - start
        return a.get_potential_energy(), forces, a.get_stress(), seconds

    e_ref, f_ref, s_ref, _ = evaluate(D3(cutoff=50.0, cn_cutoff=25.0))
    rows = []
    for cutoff, cn in cutoffs:
        e, f, s, seconds = evaluate(D3(cutoff=cutoff, cn_cutoff=cn))
        rows.append({"cutoff": cutoff, "cn_cutoff": cn, "energy_error_meV_per_atom": 1e3 * abs(e - e_ref) / len(atoms),
                     "force_error_meV_per_A": 1e3 * np.abs(f - f_ref).max(),
                     "stress_error_MPa": 160217.66 * np.abs(s - s_ref).max(), "ms_per_evaluation": 1e3 * seconds})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer MD steps and cutoffs")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    steps = 10 if args.quick else 50
    d3 = D3()
    results: dict = {"d3_default": {"cutoff": d3.cutoff, "cn_cutoff": d3.cn_cutoff}, "md": [], "d3_cutoffs": {}}
    print(f"{'system':8} {'terms':9} {'ASE ms/step':>12} {'native ms/step':>15} {'ASE overhead':>13}")
    for name, atoms in (("ZIF-8", zif8()), ("MOF-5", mof5())):
        model = random_model(list(atoms.arrays["atom_types"]))
        per_terms = {}
        for terms, d3_terms in (("SNAP", None), ("SNAP+D3", d3)):
            ase_ms, native_ms = ms_per_step(atoms, model, d3_terms, steps)
            per_terms[terms] = native_ms
            overhead = 100 * (ase_ms / native_ms - 1)
            print(f"{name:8} {terms:9} {ase_ms:12.1f} {native_ms:15.1f} {overhead:12.1f}%")
            results["md"].append({"system": name, "natoms": len(atoms), "terms": terms, "ase_ms_per_step": ase_ms,
                                  "native_ms_per_step": native_ms, "ase_overhead_percent": overhead})
        share = 100 * (1 - per_terms["SNAP"] / per_terms["SNAP+D3"])
        print(f"{name:8} D3 share of the SNAP+D3 step: {share:.0f}% (D3 cutoff {d3.cutoff} Å, CN {d3.cn_cutoff} Å)")
        results["md"].append({"system": name, "d3_share_percent": share})
    cutoffs = [(12.0, 10.0), (20.0, 15.0), (30.0, 20.0)] if args.quick else \
        [(10.0, 8.0), (12.0, 10.0), (15.0, 12.0), (20.0, 15.0), (25.0, 20.0), (30.0, 20.0), (40.0, 25.0)]
    for name, atoms in (("ZIF-8", zif8()), ("MOF-5", mof5())):
        print(f"\n{name}: D3 error vs a 50/25 Å reference, and cost per evaluation")
        print(f"{'cutoff':>7} {'CN cut':>7} {'dE meV/atom':>12} {'max dF meV/Å':>13} {'max dS MPa':>11} {'ms':>8}")
        rows = d3_convergence(atoms, cutoffs)
        for r in rows:
            print(f"{r['cutoff']:7.1f} {r['cn_cutoff']:7.1f} {r['energy_error_meV_per_atom']:12.4f} "
                  f"{r['force_error_meV_per_A']:13.3f} {r['stress_error_MPa']:11.2f} {r['ms_per_evaluation']:8.1f}")
        results["d3_cutoffs"][name] = rows
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
