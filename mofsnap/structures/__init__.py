"""Structures: the built-in frameworks ZIF-8 and MOF-5, their registry, and structure files.

- :func:`zif8`, :func:`mof5`: typed conventional or primitive cells built from the site tables in
  ``data/structures/`` (:mod:`.builtin`, :mod:`.sites`);
- :data:`STRUCTURES`, :func:`builtin_structure`: the one registry of built-in structures by name
  (``zif8``, ``zif8-primitive``, ``mof5``, ``mof5-primitive``);
- :func:`read_structure`, :func:`summary`, :func:`write_structure_files`: structure files (:mod:`.io`).

Command: ``mofsnap structures NAME -o DIR`` (also ``python -m mofsnap.structures``) writes a built-in structure
as extxyz (with types), CIF, JSON summary and PNG.
"""

from .builtin import STRUCTURES, builtin_structure, mof5, zif8
from .io import read_structure, summary, write_structure_files
from .sites import Site, SiteTable, primitive_cell, site_table

__all__ = ["STRUCTURES", "Site", "SiteTable", "builtin_structure", "mof5", "primitive_cell", "read_structure",
           "site_table", "summary", "write_structure_files", "zif8"]
