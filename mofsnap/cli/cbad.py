"""Select training configurations from MD frames with the CBAD filter.

A frame is kept when one of its cell/bond/angle/dihedral values falls in a bin not yet seen. Writes the
selected frames (DIR/selected.extxyz), a report (DIR/cbad.json: counts, reasons, coverage) and, unless
--no-plot, training-versus-pool histograms on the CBAD bins (DIR/histograms.png).

Example: mofsnap cbad md_300K.extxyz md_400K.extxyz -o selection/ --train train.extxyz --state cbad_state.json
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from itertools import chain
from pathlib import Path

from ..exceptions import CBADError
from .options import add_output, default_of, positive_float, positive_int

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofsnap cbad``."""
    from ..cbad import CBADFilter, Resolutions

    parser.add_argument("pool", nargs="+", help="candidate frames (extxyz or any ASE-readable trajectory); several "
                        "files are read in turn (with --per-run, each file is one MD run)")
    add_output(parser, None, "output directory (selected.extxyz, cbad.json, histograms.png)")
    parser.add_argument("--reference", help="typed reference structure fixing the topology (default: the first frame "
                        "of the first pool file; atom types from its 'atom_types' array, else assigned)")
    parser.add_argument("--train", nargs="*", default=[], help="existing training frames: their bins are seeded "
                        "first, they are not re-selected")
    parser.add_argument("--state", help="CBAD state file (JSON): read if it exists (resolutions and topology then "
                        "come from it), written after the selection")
    bins = parser.add_argument_group("bin widths")
    for flag, field, what in (("--cell-length", "cell_length", "cell-length bin width, Å"),
                              ("--cell-angle", "cell_angle", "cell-angle bin width, degrees"),
                              ("--bond", "bond", "bond-length bin width, Å"),
                              ("--angle", "angle", "bond-angle bin width, degrees"),
                              ("--dihedral", "dihedral", "dihedral bin width, degrees")):
        bins.add_argument(flag, type=positive_float, default=default_of(Resolutions, field),
                          help=f"{what} (default %(default).4g)")
    selection = parser.add_argument_group("selection")
    selection.add_argument("--bond-tolerance", type=positive_float, default=default_of(CBADFilter, "bond_tolerance"),
                           help="reject a frame as broken when a bond exceeds this factor times its reference "
                                "length (default %(default)s)")
    selection.add_argument("--bond-scale", type=positive_float, default=default_of(CBADFilter, "scale"),
                           help="bond criterion of the topology: distance < scale x sum of covalent radii "
                                "(default %(default)s)")
    selection.add_argument("--per-run", choices=("first", "last", "random"), help="take at most one frame per pool "
                           "file: its first, last or a random CBAD-new frame")
    selection.add_argument("--shuffle", action="store_true", help="offer the frames in a random order (reads them "
                           "all)")
    selection.add_argument("--seed", type=int, default=0, help="seed for --shuffle and --per-run random (default 0)")
    selection.add_argument("--batch-size", type=positive_int, default=default_of(CBADFilter, "batch_size"),
                           help="frames measured together (default %(default)s)")
    parser.add_argument("--no-plot", action="store_true", help="skip the histogram PNG (it reads the pool again)")


def run(args: argparse.Namespace) -> int:
    """Select, write frames, report, histograms and state, and print the counts."""
    from ase.io import iread, write

    from ..cbad import KINDS, CBADFilter, Resolutions, plot_histograms, reference_structure
    from ..results import write_result

    for path in [*args.pool, *args.train, *([args.reference] if args.reference else [])]:
        if not Path(path).is_file():
            raise CBADError(f"{path}: no such file; give trajectories readable by ase.io")
    if args.state and Path(args.state).exists():
        cbad = CBADFilter.read(args.state)
        log.info("continuing from %s (%d bins)", args.state, sum(map(len, cbad.bins().values())))
    else:
        resolutions = Resolutions(args.cell_length, args.cell_angle, args.bond, args.angle, args.dihedral)
        cbad = CBADFilter(reference_structure(args.reference or args.pool[0]), resolutions,
                          bond_tolerance=args.bond_tolerance, batch_size=args.batch_size, scale=args.bond_scale)
    log.info("%r", cbad.topology)
    for path in args.train:
        log.info("seeded %d bins from %s", cbad.include(iread(path)), path)
    if args.per_run:
        picked = cbad.select_per_run((iread(path) for path in args.pool), pick=args.per_run, seed=args.seed)
        selected = [atoms for atoms in picked if atoms is not None]
    else:
        selected = cbad.select((atoms for path in args.pool for atoms in iread(path)), shuffle=args.shuffle,
                               seed=args.seed, progress=args.progress)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    write(out / "selected.extxyz", selected, format="extxyz")
    summary = cbad.summary()
    report = {"selected": len(selected), "summary": summary, "resolutions": asdict(cbad.resolutions),
              "coverage": cbad.coverage(), "pool": args.pool, "train": args.train}
    if not args.no_plot:
        training = chain(selected, *(iread(path) for path in args.train))
        report["histograms"] = plot_histograms(cbad, training, (a for p in args.pool for a in iread(p)),
                                               out / "histograms.png")
    write_result(out / "cbad.json", "cbad-selection", 1, report)
    if args.state:
        cbad.write(args.state)
    print(f"selected {len(selected)} of {summary['offered']} frames -> {out / 'selected.extxyz'}")
    print(f"  rejected: {summary['rejected_known']} with no new bin, {summary['rejected_broken']} with broken bonds"
          + (f" ({', '.join(f'{k} x{v}' for k, v in summary['broken_bond_types'].items())})"
             if summary["rejected_broken"] else "")
          + (f", {summary['not_picked']} new but not picked (one per run)" if args.per_run else ""))
    kinds = summary["new_bins_by_kind"]
    print("  accepted frames with new bins per kind: " + ", ".join(f"{kind} {kinds[kind]}" for kind in KINDS))
    top = sorted(summary["new_bins_by_type"].items(), key=lambda item: -item[1])[:8]
    print("  most frequent new-bin types: " + ", ".join(f"{name} ({count})" for name, count in top))
    return 0
