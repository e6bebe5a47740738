"""CBAD selection speed on a 20,000-frame ZIF-8 trajectory (276 atoms), and how many frames it keeps.

The trajectory is a cheap stand-in for MD: every atom follows an Ornstein-Uhlenbeck walk (correlation time
``--tau`` frames, stationary amplitude ``--amplitude`` Å per Cartesian component) around the ZIF-8 reference, and
the cell an OU walk of its strain (``--strain``, symmetric, cell angles kept). It is written once as extxyz
(positions + atom types, like an MD dump) into ``results/bench_cbad/`` and reused.

Prints: time to read the file with ``ase.io.iread`` alone, time of descriptors + binning on frames already in
memory, the end-to-end ``CBADFilter.select(ase.io.iread(...))`` time (target <= 20 s), and the number selected
at the reference resolutions (and why).

Run: ``python benchmarks/bench_cbad.py [--quick] [--frames N] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase.io import iread, write

from mofsnap.cbad import KINDS, CBADFilter, Resolutions
from mofsnap.structures import zif8

CACHE = Path(__file__).resolve().parent.parent / "results" / "bench_cbad"


def ou_trajectory(frames: int, amplitude: float, strain: float, tau: float, seed: int) -> list:
    """ZIF-8 frames from an Ornstein-Uhlenbeck walk of atomic displacements and cell strain."""
    reference = zif8()
    rng = np.random.default_rng(seed)
    keep = np.exp(-1.0 / tau)
    kick = np.sqrt(1.0 - keep**2)
    displacement = rng.normal(scale=amplitude, size=reference.positions.shape)
    eps = np.zeros((3, 3))
    out = []
    for _ in range(frames):
        displacement = keep * displacement + kick * rng.normal(scale=amplitude, size=displacement.shape)
        kick_eps = np.diag(rng.normal(scale=strain, size=3))
        eps = keep * eps + kick * kick_eps
        atoms = reference.copy()
        atoms.set_cell(reference.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        atoms.positions += displacement
        out.append(atoms)
    return out


def trajectory_file(frames: int, amplitude: float, strain: float, tau: float, seed: int) -> Path:
    """Path of the cached trajectory, generated on first use."""
    path = CACHE / f"zif8_ou_{frames}_{amplitude}_{strain}_{tau}_{seed}.extxyz"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        write(path.with_suffix(".tmp"), ou_trajectory(frames, amplitude, strain, tau, seed), format="extxyz")
        path.with_suffix(".tmp").rename(path)
        print(f"generated {path.name} in {time.perf_counter() - start:.1f} s")
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 frames instead of 20,000")
    parser.add_argument("--frames", type=int, help="number of frames (overrides --quick)")
    parser.add_argument("--amplitude", type=float, default=0.04, help="OU amplitude of atomic displacements, Å "
                        "(0.04: bond lengths fluctuate by ~5 %%, like MD at a few hundred K)")
    parser.add_argument("--strain", type=float, default=0.005, help="OU amplitude of the diagonal cell strain")
    parser.add_argument("--tau", type=float, default=20.0, help="OU correlation time, frames")
    parser.add_argument("--seed", type=int, default=0, help="seed of the walk")
    parser.add_argument("--batch-size", type=int, default=256, help="CBADFilter batch size")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    frames = args.frames or (2000 if args.quick else 20000)
    path = trajectory_file(frames, args.amplitude, args.strain, args.tau, args.seed)
    reference = zif8()

    start = time.perf_counter()
    loaded = list(iread(path))
    read_s = time.perf_counter() - start

    cbad = CBADFilter(reference, Resolutions(), batch_size=args.batch_size)
    start = time.perf_counter()
    in_memory = cbad.select(loaded)
    binning_s = time.perf_counter() - start
    del loaded

    streamed_filter = CBADFilter(reference, Resolutions(), batch_size=args.batch_size)
    start = time.perf_counter()
    streamed = streamed_filter.select(iread(path))
    total_s = time.perf_counter() - start
    assert [a.info["cbad_index"] for a in streamed] == [a.info["cbad_index"] for a in in_memory]

    summary, topo = cbad.summary(), cbad.topology
    figures = {"frames": frames, "atoms": len(reference),
               "descriptor_values_per_frame": 6 + sum(map(len, (topo.bonds, topo.angles, topo.dihedrals))),
               "read_s": read_s, "descriptors_and_binning_s": binning_s, "select_from_iread_s": total_s,
               "selected": len(in_memory), "rejected_broken": summary["rejected_broken"],
               "new_bins_by_kind": summary["new_bins_by_kind"],
               "occupied_bins": int(sum(len(b) for b in cbad.bins().values()))}
    print(f"ZIF-8 {len(reference)} atoms, {frames} frames, {figures['descriptor_values_per_frame']} CBAD values "
          f"per frame, reference resolutions {Resolutions()}")
    print(f"  read (ase.io.iread only)        {read_s:7.2f} s  ({1e3 * read_s / frames:.2f} ms/frame)")
    print(f"  descriptors + binning (memory)  {binning_s:7.2f} s  ({1e3 * binning_s / frames:.2f} ms/frame)")
    print(f"  select(iread(...)) end to end   {total_s:7.2f} s  (target <= 20 s)")
    print(f"  rejected {summary['rejected_known']} with no new bin, {summary['rejected_broken']} with broken bonds")
    print(f"  selected {len(in_memory)} of {frames}; accepted frames with new bins per kind: "
          + ", ".join(f"{kind} {summary['new_bins_by_kind'][kind]}" for kind in KINDS))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main()
