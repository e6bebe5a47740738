"""Benchmark of the labelling engine: perturbed MOF-5 primitive cells (106 atoms) with GFN1-xTB.

Wall time with 1 local worker, 2 local workers and 2 Dask workers (LocalCluster, one process each), and the
overhead of store + executor per item relative to the work itself (target <= 5 %).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_labelling.py [--quick] [--count N]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from mofsnap.labelling import LabelSummary, label
from mofsnap.learn import perturbed_copies
from mofsnap.reference import XTB
from mofsnap.structures import mof5

#: Largest displacement (Å) of an atom along each axis. The label checks refuse a configuration whose atom
#: types no longer hold, and at 0.12 Å some C-H bonds of the copies stretch past the bonding cutoff.
DISPLACEMENT = 0.05


def perturbed_cells(count: int, seed: int) -> list:
    """``count`` copies of primitive MOF-5 (:func:`mofsnap.learn.perturbed_copies`) with atoms moved by up to
    :data:`DISPLACEMENT` Å and the cell strained by up to 0.5 %."""
    frames = perturbed_copies(mof5(primitive=True), count, DISPLACEMENT, 0.005, seed)
    for i, atoms in enumerate(frames):
        atoms.info.update(frame=i, source="bench_labelling")
    return frames


def report(name: str, workers: int, summary: LabelSummary) -> dict:
    n = summary.done + summary.failed
    overhead = (summary.wall_time * workers - summary.work_time) / summary.work_time
    print(f"{name:<16} {workers:>2}  wall {summary.wall_time:7.1f} s  work/item {summary.work_time / n:6.2f} s  "
          f"store/item {1000 * summary.store_time / n:5.1f} ms  overhead {100 * overhead:5.1f} %  "
          f"(labelled {summary.done}, failed {summary.failed})")
    return {"wall": summary.wall_time, "overhead": overhead}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 cells instead of 100")
    parser.add_argument("--count", type=int, default=None, help="number of cells (overrides --quick)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the perturbations")
    args = parser.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    count = args.count or (8 if args.quick else 100)
    frames = perturbed_cells(count, args.seed)
    reference = XTB("GFN1-xTB")
    print(f"{count} perturbed MOF-5 primitive cells ({len(frames[0])} atoms), {reference.name}")
    print("overhead = (wall x workers - time inside calculations) / time inside calculations")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            results[f"local{workers}"] = report("local pool", workers, label(
                frames, reference, Path(tmp) / f"local{workers}.db", max_workers=workers, progress=False))
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            results["dask2"] = report("Dask LocalCluster", 2, label(
                frames, reference, Path(tmp) / "dask.db", executor=client.get_executor(), progress=False))
    print(f"speed-up 2 local workers: {results['local1']['wall'] / results['local2']['wall']:.2f}x, "
          f"2 Dask workers: {results['local1']['wall'] / results['dask2']['wall']:.2f}x")


if __name__ == "__main__":
    main()
