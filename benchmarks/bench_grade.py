"""Cost of the extrapolation grade in MD, of the default guard, and of posterior sampling.

For ZIF-8 (276 atoms, the reference SNAP hyperparameters, 2J_max = 8) NVT through :func:`mofsnap.md.run_md`:
ms per step without guard, with the default :class:`~mofsnap.md.MDGuard`, and with the guard plus a
:class:`~mofsnap.md.GradeMonitor` evaluating the per-atom grade every 1, 10 and 100 steps (target: at most 10 %
of a step at interval 10); then ms per posterior sample of the coefficients (``ModelPosterior.sample_models``).
Costs do not depend on the coefficient values, so the model has random small coefficients and the posterior a
random positive-definite Gram matrix.

Run: ``python benchmarks/bench_grade.py [--quick] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mofsnap.calculator import SNAPCalculator
from mofsnap.fit.posterior import ModelPosterior, fit_statistics_path
from mofsnap.md import GradeMonitor, MDGuard, run_md
from mofsnap.model import SNAPModel
from mofsnap.structures import zif8


def model_with_posterior(types: list[str], prefix: Path) -> SNAPModel:
    """A random model written at ``prefix`` with a random posterior beside it."""
    rng = np.random.default_rng(0)
    model = SNAPModel(sorted(set(types)))
    model.coefficients = rng.normal(0.0, 1e-3, model.coefficients.shape)
    model.write(prefix)
    n = model.coefficients.size
    half = rng.normal(size=(2 * n, n))
    ModelPosterior(model.coefficients.ravel(), half.T @ half, 1e-6, 1e-4, 1250.0, len(model.types),
                   model.n_coefficients).write(fit_statistics_path(prefix))
    return model


def ms_per_step(atoms, prefix: Path, steps: int, guard, grade_interval: int | None) -> float:
    atoms = atoms.copy()
    calc = SNAPCalculator(str(prefix))
    observers = [GradeMonitor(calc, interval=grade_interval, warn=1e30, stop=1e30)] if grade_interval else []
    run_md(atoms, 2, calculator=calc, guard=guard, observers=observers, progress=False)  # set-up not timed
    start = time.perf_counter()
    run_md(atoms, steps, calculator=calc, guard=guard, observers=observers, progress=False, thermalize=False)
    calc.close()
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    steps = 100 if args.quick else 400
    atoms = zif8()
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "zif8"
        model = model_with_posterior(list(atoms.arrays["atom_types"]), prefix)
        ms_per_step(atoms, prefix, 10, None, None)  # warm-up: the first LAMMPS instance and caches
        plain = ms_per_step(atoms, prefix, steps, None, None)
        figures.append({"case": "NVT step, no guard", "ms_per_step": plain, "overhead_percent": 0.0})
        guarded = ms_per_step(atoms, prefix, steps, MDGuard(), None)
        figures.append({"case": "NVT step, default guard", "ms_per_step": guarded,
                        "overhead_percent": 100 * (guarded / plain - 1)})
        for interval in (1, 10, 100):
            cost = ms_per_step(atoms, prefix, steps, MDGuard(), interval)
            figures.append({"case": f"NVT step, guard + grade every {interval}", "ms_per_step": cost,
                            "overhead_percent": 100 * (cost / guarded - 1)})
        posterior = ModelPosterior.read(fit_statistics_path(prefix))
        start = time.perf_counter()
        posterior.sample_models(model, 100, seed=0)
        figures.append({"case": "posterior sample (one model)", "ms_per_step": (time.perf_counter() - start) * 10,
                        "overhead_percent": float("nan")})
    print(f"ZIF-8, {len(atoms)} atoms, {steps} steps per case (grade overhead relative to the guarded step)")
    for row in figures:
        print(f"{row['case']:<40} {row['ms_per_step']:8.2f} ms   {row['overhead_percent']:+6.1f} %")
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": figures}, indent=2))


if __name__ == "__main__":
    main()
