"""Write a built-in framework (typed) as extxyz, CIF, JSON summary and PNG picture.

NAME is one of the built-in structures: zif8 and mof5 are the cubic cells of ZIF-8 (276 atoms) and MOF-5
(424 atoms), zif8-primitive and mof5-primitive their primitive cells (138 and 106 atoms). The files are
DIR/NAME.extxyz (with the atom types), NAME.cif, NAME.json (composition, cell, type counts, shortest distance)
and NAME.png; the summary is also printed.
"""

from __future__ import annotations

import argparse
import json

from ..structures import STRUCTURES, builtin_structure, summary, write_structure_files
from .options import add_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofsnap structures``."""
    parser.add_argument("name", metavar="NAME", help=f"built-in structure: {', '.join(STRUCTURES)}")
    add_output(parser, ".", "output directory, created if missing")


def run(args: argparse.Namespace) -> None:
    """Build the structure, write its files and print its summary."""
    atoms = builtin_structure(args.name)
    write_structure_files(atoms, args.output, args.name)
    print(json.dumps(summary(atoms), indent=2))
