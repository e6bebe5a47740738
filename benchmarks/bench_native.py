"""Native LAMMPS MD against ASE-driven MD: ns/day of ZIF-8 and MOF-5 with SNAP + D3 on this machine's cores.

For each structure (the conventional ZIF-8 and MOF-5 cells, and a 2x2x2 ZIF-8 supercell) NVT at 300 K with a
SNAP model of its atom types (random coefficients: the cost does not depend on them; small, so the short runs
stay stable) + D3(BJ)/PBE (+ the reference ZBL pairs for ZIF-8):

- ``ase``: :func:`mofsnap.md.run_md` with :class:`mofsnap.SNAPCalculator`, one process;
- ``native_1``, ``native_2``: :func:`mofsnap.md.native.run_native` on 1 and 2 MPI ranks;
- ``concurrent_2x1``: two 1-rank native runs at the same time (both ns/day and their sum).

Native figures are LAMMPS's own loop performance (its ``Performance:`` line, without start-up); ``*_wall`` include
the start-up, deck writing and conversion. Reported: parallel efficiency of 2 ranks (``native_2 / (2 native_1)``)
and the machine throughput of the best native use of the cores (max of ``native_2`` and the concurrent sum)
relative to ``ase`` (target >= 1.8).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_native.py`` (``--quick``: fewer steps, a few minutes).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mofsnap.calculator import D3, ZIF8_ZBL, SNAPCalculator
from mofsnap.md import run_md
from mofsnap.md.native import run_native
from mofsnap.model import SNAPModel
from mofsnap.structures import mof5, zif8

PERFORMANCE = re.compile(r"^Performance: ([0-9.eE+-]+) ns/day", re.M)


def calculator_for(atoms) -> SNAPCalculator:
    """SNAP (random small coefficients over the structure's types) + D3, + the reference ZBL for ZIF-8 types."""
    types = sorted(set(atoms.arrays["atom_types"]))
    model = SNAPModel(types)
    model.coefficients = np.random.default_rng(0).normal(0.0, 1e-4, model.coefficients.shape)
    zbl = ZIF8_ZBL if {t for pair in ZIF8_ZBL.pairs for t in pair} <= set(types) else None
    return SNAPCalculator(model, d3=D3(), zbl=zbl)


def native_ns_per_day(directory: Path) -> float:
    """LAMMPS's loop performance of the last run in ``directory``."""
    return float(PERFORMANCE.findall((directory / "log.lammps").read_text())[-1])


def measure(name: str, atoms, steps: int, work: Path, with_ase: bool = True) -> dict:
    """The figures of one structure (see the module docstring)."""
    calc = calculator_for(atoms)
    figures: dict = {"atoms": len(atoms), "steps": steps}
    if with_ase:
        run = run_md(atoms.copy(), steps, interval=steps, guard=None, calculator=calc, progress=False)
        figures["ase"] = run.ns_per_day
    for ranks in (1, 2):
        directory = work / f"{name}-{ranks}"
        began = time.perf_counter()
        run_native(atoms.copy(), steps, calc, directory, ranks=ranks, interval=steps, progress=False)
        figures[f"native_{ranks}"] = native_ns_per_day(directory)
        figures[f"native_{ranks}_wall"] = steps * 1e-6 / (time.perf_counter() - began) * 86400.0
    with ThreadPoolExecutor(2) as pool:
        directories = [work / f"{name}-concurrent-{k}" for k in range(2)]
        list(pool.map(lambda d: run_native(atoms.copy(), steps, calc, d, ranks=1, interval=steps, progress=False),
                      directories))
    each = [native_ns_per_day(d) for d in directories]
    figures["concurrent_2x1"] = each
    figures["concurrent_2x1_sum"] = sum(each)
    figures["parallel_efficiency_2_ranks"] = figures["native_2"] / (2 * figures["native_1"])
    best = max(figures["native_2"], figures["concurrent_2x1_sum"])
    if with_ase:
        figures["throughput_vs_ase"] = best / figures["ase"]
    calc.close()
    for directory in work.glob(f"{name}-*"):
        shutil.rmtree(directory)
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 steps per run (20 for the supercell)")
    parser.add_argument("--steps", type=int, default=400, help="steps per run (default %(default)s)")
    parser.add_argument("--json", metavar="FILE", help="write the figures here")
    parser.add_argument("-o", "--output", metavar="DIR", help="run directories (default: a temporary one)")
    args = parser.parse_args(argv)
    steps = 40 if args.quick else args.steps
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-native-") as tmp:
        work = Path(args.output or tmp)
        work.mkdir(parents=True, exist_ok=True)
        cases = [("zif8", zif8(), steps, True), ("mof5", mof5(), steps, True),
                 ("zif8_2x2x2", zif8().repeat(2), max(steps // 4, 10), not args.quick)]
        for name, atoms, n, with_ase in cases:
            results[name] = measure(name, atoms, n, work, with_ase)
            figures = results[name]
            print(f"{name:11} {figures['atoms']:5d} atoms: ASE {figures.get('ase', float('nan')):6.2f} ns/day, "
                  f"native 1 rank {figures['native_1']:6.2f}, 2 ranks {figures['native_2']:6.2f} "
                  f"(efficiency {figures['parallel_efficiency_2_ranks']:.2f}), two concurrent 1-rank runs "
                  f"{figures['concurrent_2x1_sum']:6.2f} in all; throughput vs ASE "
                  f"{figures.get('throughput_vs_ase', float('nan')):.2f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
