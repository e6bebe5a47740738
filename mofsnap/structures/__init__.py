"""Structures: the built-in frameworks, any MOF from a file, checked, typed and made SNAP-ready.

- :func:`framework` (and :func:`zif8`, :func:`mof5`): typed conventional or primitive cells built from the
  site tables in ``data/structures/`` (:mod:`.builtin`, :mod:`.sites`);
- :data:`STRUCTURES`, :func:`builtin_structure`: the one registry of built-in structures by name (each of
  :data:`FRAMEWORKS`: ZIF-8, MOF-5, UiO-66, HKUST-1, MIL-53(Al), Mg-MOF-74, DMOF-1, and ``<key>-primitive``);
- :func:`read_structure`: CIF (gemmi where ASE fails, :mod:`.cif`), extxyz, POSCAR, anything ASE reads;
- :func:`prepare_structure`, :func:`check_structure`: the checks before any reference call (:mod:`.intake`);
- :func:`snap_ready_cell` (the supercell of fewest atoms wide enough for the SNAP cutoff, not necessarily
  diagonal), :func:`find_primitive_cell`, :func:`perpendicular_widths`, :func:`right_handed`: cells (:mod:`.cells`);
- :func:`summary`, :func:`summary_text`, :func:`write_structure_files`: describing and writing (:mod:`.io`).

Command: ``mofsnap structures NAME|FILE -o DIR`` (also ``python -m mofsnap.structures``) writes a typed
structure as extxyz, CIF, JSON and text summary and PNG.
"""

from .builtin import FRAMEWORKS, STRUCTURES, builtin_structure, framework, mof5, zif8
from .cells import (describe_supercell, find_primitive_cell, perpendicular_widths, right_handed,
                    snap_ready_cell, snap_ready_matrix)
from .cif import read_cif
from .intake import check_structure, prepare_structure
from .io import read_structure, summary, summary_text, write_structure_files
from .sites import HydrogenRule, Site, SiteTable, primitive_cell, site_table

__all__ = ["FRAMEWORKS", "HydrogenRule", "STRUCTURES", "Site", "SiteTable", "builtin_structure", "check_structure",
           "describe_supercell", "find_primitive_cell", "framework", "mof5", "perpendicular_widths",
           "prepare_structure", "primitive_cell", "read_cif", "read_structure", "right_handed", "site_table",
           "snap_ready_cell", "snap_ready_matrix", "summary", "summary_text", "write_structure_files", "zif8"]
