"""Speed of the MD behind the analyses (ns/day for ZIF-8 and MOF-5 with SNAP + D3) and a small run of each analysis.

Part 1 prints ns/day of :func:`mofsnap.md.run_md` (1 fs, Nose-Hoover chain NVT, MTK NPT with fixed angles,
NVE) for ZIF-8 (276 atoms) and MOF-5 (424 atoms, cubic cells) with SNAPCalculator + D3(BJ). The cost of SNAP
does not depend on the coefficient values, so unless ``--model-zif8/--model-mof5`` name trained models the
model has small random coefficients with the reference hyperparameters.

Part 2 runs every analysis on a small fast setting (EMT copper, 32 atoms) and prints its main figures:
thermal expansion α(300 K) and bulk modulus, VDOS peak, phonon DOS, in ``-o DIR`` (PNG + JSON/CSV).
The reference protocols are the documented commands printed at the end (hours to days of MD).

Run: ``python benchmarks/bench_analysis_md.py [--quick] [-o DIR]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

from mofsnap.analysis import phonons as phonon_analysis
from mofsnap.analysis import vdos as vdos_analysis
from mofsnap.analysis.phonons import compute_phonons
from mofsnap.analysis.thermal_expansion import analyse, run_npt_scan, state_points_from_files, write_outputs
from mofsnap.analysis.vdos import compute_vdos, run_vdos_protocol
from mofsnap.md import run_md
from mofsnap.plotting import vdos_vs_phonon_dos_figure

REFERENCE_COMMANDS = [
    "mofsnap thermal-expansion --run zif8.extxyz --model zif8 --d3 --zbl "
    "H1a-H1b,H1a-N3a,H1a-Zn4a,H1b-C3b,H1b-N3a,H1b-Zn4a --temperatures 100,200,300,400,500 --runs 5 "
    "--equilibration-ps 100 --production-ps 500 --window-ps 10 -o te_zif8",
    "mofsnap vdos --run mof5.extxyz --model mof5 --d3 --npt-ps 1 --nve-ps 500 --save-every 2 "
    "-o vdos_mof5",
    "mofsnap phonons mof5.extxyz --model mof5 --d3 --supercell 1 --compare-vdos vdos_mof5/vdos.json "
    "-o phonons_mof5",
]


def snap_d3_calculator(atoms, prefix: str | None):
    from mofsnap.calculator import SNAPCalculator
    from mofsnap.model import SNAPModel

    if prefix is not None:
        return SNAPCalculator(prefix, d3=True)
    model = SNAPModel(sorted(set(atoms.arrays["atom_types"])))
    model.coefficients = np.random.default_rng(0).normal(0.0, 1e-3, model.coefficients.shape)
    return SNAPCalculator(model, d3=True)


def md_speed(steps: int, models: dict[str, str | None]) -> list[dict]:
    """ns/day of run_md for ZIF-8 and MOF-5 with SNAP + D3 in each ensemble the analyses use."""
    from mofsnap.structures import mof5, zif8

    rows = []
    for name, build in [("ZIF-8", zif8), ("MOF-5", mof5)]:
        for ensemble in ["nvt", "npt", "nve"]:
            atoms = build()
            calc = snap_d3_calculator(atoms, models[name])
            run_md(atoms, 2, ensemble=ensemble, calculator=calc, progress=False)  # LAMMPS set-up not timed
            result = run_md(atoms, steps, ensemble=ensemble, thermalize=False, progress=False)
            rows.append({"system": name, "natoms": len(atoms), "ensemble": ensemble, "steps": steps,
                         "ms_per_step": 1e3 * result.wall_seconds / steps, "ns_per_day": result.ns_per_day})
            print(f"{name:6s} {len(atoms):4d} atoms  {ensemble}  {rows[-1]['ms_per_step']:7.1f} ms/step  "
                  f"{result.ns_per_day:6.3f} ns/day", flush=True)
    return rows


def copper():
    atoms = bulk("Cu", cubic=True, a=3.6).repeat(2)
    atoms.new_array("atom_types", np.array(["Cu12a"] * len(atoms)))
    return atoms


def small_analyses(out: Path, quick: bool) -> dict:
    """Every analysis on EMT copper with short runs; returns the headline figures."""
    scale = 0.5 if quick else 1.0
    figures = {}
    temperatures = [100.0, 300.0, 500.0]
    pressures = [0.101325, 1000.0, 2000.0]
    paths = run_npt_scan(copper(), EMT(), out / "thermal_expansion", temperatures, [pressures[0]], runs=2,
                         equilibration_ps=0.4 * scale, production_ps=2.0 * scale, timestep_fs=4.0,
                         frame_interval_fs=20.0, progress=False)
    paths.update(run_npt_scan(copper(), EMT(), out / "thermal_expansion", [300.0], pressures[1:], runs=2,
                              equilibration_ps=0.4 * scale, production_ps=2.0 * scale, timestep_fs=4.0,
                              frame_interval_fs=20.0, progress=False))
    points = state_points_from_files([str(p) for group in paths.values() for p in group], 0.4 * scale,
                                     0.2 * scale, length_factor=0.5)
    result = analyse(points, at_K=300.0, degree_T=1)
    write_outputs(result, out / "thermal_expansion")
    figures["alpha_300K_per_K"] = [result.alpha.per_K, result.alpha.err_per_K]
    figures["bulk_modulus_GPa"] = [result.bulk_modulus.GPa, result.bulk_modulus.err_GPa]

    frames = run_vdos_protocol(copper(), EMT(), out / "vdos", temperature_K=300.0, npt_ps=0.4 * scale,
                               nve_ps=4.0 * scale, timestep_fs=4.0, frame_interval_fs=4.0, progress=False)
    vdos = compute_vdos(frames, max_lag_fs=1000.0)
    summary = vdos_analysis.write_outputs(vdos, out / "vdos", bands=[(0.0, 400.0)])
    figures["vdos_peak_cm1"] = summary["peaks"][0]["peaks"][0]["cm1"]

    primitive = bulk("Cu", "fcc", a=3.6)
    primitive.new_array("atom_types", np.array(["Cu12a"]))
    phonons = compute_phonons(primitive, EMT(), supercell=3 if quick else 4, mesh=12, progress=False)
    phonon_summary = phonon_analysis.write_outputs(phonons, out / "phonons")
    vdos_vs_phonon_dos_figure(vdos, phonons, out / "phonons" / "vdos_vs_phonons.png")
    figures["phonon_dos_integral"] = phonon_summary["dos_integral"]
    figures["phonon_max_cm1"] = float(phonons.frequency_cm1[np.flatnonzero(phonons.total > 1e-3)[-1]])
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer MD steps and shorter analysis runs")
    parser.add_argument("-o", "--output", default="results/bench_analysis_md", help="output directory")
    parser.add_argument("--model-zif8", metavar="PREFIX", help="trained ZIF-8 SNAP model (default: random)")
    parser.add_argument("--model-mof5", metavar="PREFIX", help="trained MOF-5 SNAP model (default: random)")
    parser.add_argument("--skip-snap", action="store_true", help="only the small analyses (no LAMMPS)")
    args = parser.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {}
    if not args.skip_snap:
        print("MD speed with SNAP + D3 (run_md, 1 fs)")
        report["md_speed"] = md_speed(10 if args.quick else 100, {"ZIF-8": args.model_zif8,
                                                                  "MOF-5": args.model_mof5})
    print("small analyses (EMT Cu, 32 atoms)")
    report["analyses"] = small_analyses(out, args.quick)
    for key, value in report["analyses"].items():
        print(f"  {key}: {value}")
    print("reference protocols:")
    for command in REFERENCE_COMMANDS:
        print("  " + command)
    (out / "bench_analysis_md.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
