"""Label configurations (energy, forces, stress) with a reference method into an ase.db store.

Every frame of the input files is checked (overlapping atoms, Z = 0, non-finite positions or cell, atom types
that disagree with the geometry: refused before any calculation), labelled and stored in DIR/labels.db as soon
as it is computed; re-running skips what is already labelled (failures too, unless --retry-failed). Labels with
non-finite numbers, a force over --max-force or an energy per atom further than --max-energy-deviation from
the batch's median are stored as failures with the reason. One process writes a store at a time (a second one
stops with a message, or waits --lock-timeout seconds). Writes DIR/labelling.json (counts, timings, failures)
and DIR/labelling.png (time per calculation, energy per atom).

Example: mofsnap label frames.extxyz -o labels/ --reference gfn1-xtb --workers 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..exceptions import LabellingError
from .options import add_executor, add_output, add_unpaired_electrons, default_of, positive_float, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofsnap label``."""
    from ..labelling import LabelChecks, label
    from ..reference import DEFAULT_REFERENCE, REFERENCES, reference_by_name

    parser.add_argument("inputs", nargs="+", help="structure files readable by ase.io (all frames are used); the "
                        "file name and frame index are stored as provenance")
    add_output(parser, None, "output directory (labels.db, labelling.json, labelling.png)")
    parser.add_argument("--reference", choices=tuple(REFERENCES), default=DEFAULT_REFERENCE,
                        help="reference method: GFN1/GFN2-xTB (tblite) or a CP2K preset (default %(default)s)")
    add_executor(parser)
    group = parser.add_argument_group("labelling")
    group.add_argument("--timeout", type=positive_float, default=default_of(label, "timeout"), metavar="S",
                       help="seconds allowed per calculation (default: no limit)")
    group.add_argument("--retry-failed", action="store_true", help="recompute configurations stored as failed")
    group.add_argument("--generation", type=int, default=None, help="active-learning generation (provenance)")
    group.add_argument("--temperature", type=float, default=None, help="MD temperature in K (provenance)")
    group.add_argument("--mpi-ranks", type=positive_int, default=default_of(reference_by_name, "mpi_ranks"),
                       help="MPI ranks per CP2K calculation (default %(default)s)")
    group.add_argument("--omp-threads", type=positive_int, default=default_of(reference_by_name, "omp_threads"),
                       help="OpenMP threads per CP2K rank (default %(default)s)")
    group.add_argument("--lock-timeout", type=float, default=default_of(label, "lock_timeout"), metavar="S",
                       help="seconds to wait while another process writes the store (default %(default)s: stop at "
                       "once with a message)")
    group.add_argument("--max-force", type=positive_float, default=default_of(LabelChecks, "max_force"),
                       metavar="EV_PER_A", help="largest force of a good label, eV/Å (default %(default)s)")
    group.add_argument("--max-energy-deviation", type=positive_float,
                       default=default_of(LabelChecks, "max_energy_deviation"), metavar="EV_PER_ATOM",
                       help="largest distance of a label's energy per atom from the batch median of its "
                       "composition, eV/atom (default %(default)s)")
    add_unpaired_electrons(group)
    group.add_argument("--export", default=None, metavar="FILE",
                       help="also write all good labels of the store to this extxyz file")


def run(args: argparse.Namespace) -> int:
    """Label the frames, write the report and print the counts."""
    import ase.io

    from ..labelling import LabelChecks, LabelStore, label, write_report
    from ..reference import reference_by_name

    configs, metadata = [], []
    for path in args.inputs:
        if not Path(path).is_file():
            raise LabellingError(f"{path}: no such file; give structure files readable by ase.io")
        for frame, atoms in enumerate(ase.io.read(path, index=":")):
            configs.append(atoms)
            metadata.append({"source": str(path), "frame": frame, "generation": args.generation,
                             "temperature": args.temperature})
    reference = reference_by_name(args.reference, args.mpi_ranks, args.omp_threads, args.unpaired_electrons)
    checks = LabelChecks(max_force=args.max_force, max_energy_deviation=args.max_energy_deviation)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    store = LabelStore(out / "labels.db")
    summary = label(configs, reference, store, executor=args.executor, metadata=metadata, checks=checks,
                    timeout=args.timeout, retry_failed=args.retry_failed, max_workers=args.workers,
                    lock_timeout=args.lock_timeout, progress=args.progress)
    if args.export:
        store.export_extxyz(args.export)
    write_report(summary, store, reference, out)
    print(f"{summary.done} labelled, {summary.failed} failed, {summary.skipped} already stored, "
          f"{summary.wall_time:.1f} s; store {store.path}")
    return 0
