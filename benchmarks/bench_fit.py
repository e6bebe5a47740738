"""Cost of a SNAP fit on ZIF-8: descriptor wall time, solve time and peak memory.

672 configurations of the 276-atom ZIF-8 cell (atoms ±0.12 Å, cell ±0.5 %, as the reference protocol's
step 0), labelled with a Lennard-Jones potential: the benchmark measures cost, not accuracy. The fit uses
the reference settings (2J = 8, 7 types, 392 coefficients) with alpha chosen by 5-fold cross-validation.
Targets on this 2-core machine: at most 3 minutes in all and 1 GB of peak memory (a dense A matrix would
take ~1.8 GB).

The fit runs once in this process and once with its descriptor rows fanned out over a local pool of
``--workers`` processes (what ``mofsnap fit --workers N`` does); the two models must be bit-equal.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fit.py`` (``--quick`` for 48 configurations).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import numpy as np
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from mofsnap.executors import open_executor
from mofsnap.fit import fit_snap
from mofsnap.structures import zif8


def configurations(n: int, seed: int = 0) -> list:
    """``n`` perturbed ZIF-8 cells labelled with Lennard-Jones energies, forces and stresses."""
    rng = np.random.default_rng(seed)
    base = zif8()
    calc = LennardJones(sigma=0.9, epsilon=0.01, rc=4.0, smooth=True)
    images = []
    for _ in range(n):
        atoms = base.copy()
        strain = np.eye(3) + rng.uniform(-0.005, 0.005, size=(3, 3))
        atoms.set_cell(base.cell.array @ (strain + strain.T) / 2, scale_atoms=True)
        atoms.positions += rng.uniform(-0.12, 0.12, size=atoms.positions.shape)
        atoms.calc = calc
        results = dict(energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress())
        atoms.calc = SinglePointCalculator(atoms, **results)
        images.append(atoms)
    return images


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="48 configurations instead of 672")
    parser.add_argument("--configurations", type=int, default=672, help="number of configurations")
    parser.add_argument("--workers", type=int, default=2, help="processes of the parallel fit (default 2)")
    args = parser.parse_args(argv)
    n = 48 if args.quick else args.configurations

    t0 = time.perf_counter()
    images = configurations(n)
    t_label = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        model, report = fit_snap(images, twojmax=8, cv=5, cache_dir=cache, progress=True)
        total = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as cache, open_executor(args.workers) as executor:
        t0 = time.perf_counter()
        parallel_model, parallel_report = fit_snap(images, twojmax=8, cv=5, cache_dir=cache, progress=True,
                                                   executor=executor)
        parallel_total = time.perf_counter() - t0
    parallel_peak_mb = max(resource.getrusage(who).ru_maxrss / 1024
                           for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    if not np.array_equal(model.coefficients, parallel_model.coefficients):
        raise SystemExit("the parallel fit differs from the serial one")
    natoms = len(images[0])
    ncol = model.coefficients.size
    dense_gb = n * (1 + 3 * natoms + 6) * ncol * 8 / 1e9
    print(f"configurations          {n} x {natoms} atoms, {len(model.types)} types, {ncol} coefficients")
    print(f"labelling (LJ, unmeasured target) {t_label:8.1f} s")
    print(f"descriptors + accumulation  {report.timings['descriptors']:8.1f} s "
          f"({1e3 * report.timings['descriptors'] / n:.0f} ms per configuration)")
    print(f"solve (5-fold CV over {len(report.alpha_scan)} alphas + final) {report.timings['solve']:8.1f} s")
    print(f"error evaluation (cached descriptors) {report.timings['evaluation']:8.1f} s")
    print(f"fit_snap total, 1 process   {total:8.1f} s")
    print(f"fit_snap total, {args.workers} workers   {parallel_total:8.1f} s   (descriptors "
          f"{parallel_report.timings['descriptors']:.1f} s; target <= 60 s for 672 on 2 cores; "
          f"speed-up {total / parallel_total:.2f}x, coefficients bit-equal)")
    print(f"peak memory (max RSS)       {peak_mb:8.0f} MB  of the serial fit (target <= 1024 MB; dense A would be {dense_gb:.2f} GB)")
    print(f"peak memory of one process in the {args.workers}-worker fit {parallel_peak_mb:.0f} MB")
    print(f"chosen alpha {report.alpha:.3g}; train RMSE: energy {report.metrics['train']['energy_rmse']:.3f} "
          f"meV/atom, forces {report.metrics['train']['forces_rmse']:.1f} meV/Å, "
          f"stress {report.metrics['train']['stress_rmse']:.1f} MPa")


if __name__ == "__main__":
    main()
