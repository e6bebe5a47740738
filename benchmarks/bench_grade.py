"""Cost of the extrapolation grade in MD, of the default guard, and of posterior sampling.

ZIF-8 (276 atoms) with the ready model ``zif8-gfn1`` (2J_max = 8, its fit's posterior beside it, used as its
card says: no D3), NVT at 300 K through :func:`mofsnap.md.run_md`: ms per step without guard, with the default
:class:`~mofsnap.md.MDGuard`, and with the guard plus a :class:`~mofsnap.md.GradeMonitor` evaluating the
per-atom grade every 1, 10 and 100 steps (target: at most 10 % of a step at interval 10); then ms per
posterior sample of the coefficients (``ModelPosterior.sample_models``). Every timed run must complete its
steps (a run stopped by a guard would time fewer steps than it counts).

Run: ``python benchmarks/bench_grade.py [--quick] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mofsnap.calculator import SNAPCalculator
from mofsnap.md import GradeMonitor, MDGuard, run_md
from mofsnap.structures import zif8

MODEL = "zif8-gfn1"


def ms_per_step(atoms, steps: int, guard, grade_interval: int | None) -> float:
    """Wall ms per MD step of ``steps`` NVT steps (after a 2-step set-up that is not timed)."""
    atoms = atoms.copy()
    with SNAPCalculator(MODEL) as calc:
        observers = [GradeMonitor(calc, interval=grade_interval, warn=1e30, stop=1e30)] if grade_interval else []
        run_md(atoms, 2, calculator=calc, guard=guard, observers=observers, progress=False)
        start = time.perf_counter()
        result = run_md(atoms, steps, calculator=calc, guard=guard, observers=observers, progress=False,
                        thermalize=False)
        elapsed = time.perf_counter() - start
    if result.stopped or result.new_steps != steps:
        raise SystemExit(f"the timed run did not complete its {steps} steps: {result.stopped}")
    return elapsed / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    steps = 100 if args.quick else 400
    atoms = zif8()
    figures = []
    ms_per_step(atoms, 10, None, None)  # warm-up: the first LAMMPS instance and caches
    plain = ms_per_step(atoms, steps, None, None)
    figures.append({"case": "NVT step, no guard", "ms_per_step": plain, "overhead_percent": 0.0})
    guarded = ms_per_step(atoms, steps, MDGuard(), None)
    figures.append({"case": "NVT step, default guard", "ms_per_step": guarded,
                    "overhead_percent": 100 * (guarded / plain - 1)})
    for interval in (1, 10, 100):
        cost = ms_per_step(atoms, steps, MDGuard(), interval)
        figures.append({"case": f"NVT step, guard + grade every {interval}", "ms_per_step": cost,
                        "overhead_percent": 100 * (cost / guarded - 1)})
    with SNAPCalculator(MODEL) as calc:
        start = time.perf_counter()
        calc.posterior.sample_models(calc.model, 100, seed=0)
        figures.append({"case": "posterior sample (one model)", "ms_per_step": (time.perf_counter() - start) * 10,
                        "overhead_percent": float("nan")})
    print(f"ZIF-8, {len(atoms)} atoms, model {MODEL}, {steps} steps per case (grade overhead relative to the guarded step)")
    for row in figures:
        print(f"{row['case']:<40} {row['ms_per_step']:8.2f} ms   {row['overhead_percent']:+6.1f} %")
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": figures}, indent=2))


if __name__ == "__main__":
    main()
