"""Read, check and type a framework (a CIF or other structure file, or a built-in name) and write it out.

SOURCE is a structure file (CIF, extxyz, POSCAR, anything ASE reads; CIFs ASE cannot parse are read with gemmi)
or a built-in name (the zoo's frameworks and their primitive cells, listed under SOURCE below). Files are checked
before anything else: partial occupancy, guests and solvent, misplaced and missing hydrogens, overlapping atoms,
and the elements and spin state the reference cannot treat (open-shell metals: --unpaired-electrons) each end in
one line naming the atoms and the fix; a left-handed cell is re-oriented. The outputs are DIR/STEM.extxyz (with
the atom types), STEM.cif, STEM.json and STEM.txt (formula, cell, each type with its count and neighbours, metal
coordination, warnings) and STEM.png, STEM being the built-in name or the file name without suffix; the text
summary is also printed.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from ..model import SNAPModel
from ..reference import DEFAULT_REFERENCE, REFERENCES, reference_by_name
from ..structures import (STRUCTURES, describe_supercell, find_primitive_cell, prepare_structure, snap_ready_cell,
                          summary, summary_text, write_structure_files)
from .options import add_output, add_unpaired_electrons


log = logging.getLogger(__name__)

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofsnap structures``."""
    parser.add_argument("source", metavar="SOURCE", help=f"structure file, or a built-in name: {', '.join(STRUCTURES)}")
    add_output(parser, ".", "output directory, created if missing")
    parser.add_argument("--keep-major", action="store_true",
                        help="keep the major component of partially occupied (disordered) CIF sites")
    parser.add_argument("--remove-guests", action="store_true",
                        help="remove guest and solvent molecules not bonded to the framework")
    parser.add_argument("--metal-bonds", action="store_true",
                        help="count metal-metal contacts as bonds (the old rule; off by default)")
    parser.add_argument("--reference", choices=REFERENCES, default=DEFAULT_REFERENCE,
                        help="the reference whose elements and spin state are checked (default %(default)s)")
    add_unpaired_electrons(parser)
    parser.add_argument("--primitive", action="store_true", help="reduce to the primitive cell (spglib)")
    parser.add_argument("--snap-ready", action="store_true",
                        help="write the smallest supercell whose widths exceed twice the default SNAP cutoff")


def run(args: argparse.Namespace) -> None:
    """Prepare the structure, write its files and print its summary."""
    atoms, warnings = prepare_structure(args.source, keep_major=args.keep_major, remove_guests=args.remove_guests,
                                        metal_bonds=args.metal_bonds,
                                        reference=reference_by_name(args.reference,
                                                                    unpaired_electrons=args.unpaired_electrons))
    if args.primitive:
        atoms = find_primitive_cell(atoms)
    if args.snap_ready:
        cutoff = SNAPModel(sorted(set(atoms.arrays["atom_types"]))).cutoff
        atoms, matrix = snap_ready_cell(atoms, cutoff)
        if not (matrix == np.eye(3)).all():
            log.info("written as %s, which the SNAP cutoff %.2f Å needs", describe_supercell(matrix), cutoff)
    stem = args.source if args.source in STRUCTURES else Path(args.source).stem
    write_structure_files(atoms, args.output, stem, warnings, args.metal_bonds)
    print(summary_text(summary(atoms, warnings, args.metal_bonds)), end="")
