"""Reading CIF files: ASE's reader first, gemmi for the CIFs ASE cannot parse, CIF sites kept on every atom.

ASE's reader refuses space-group settings it has no table entry for (``I m c m``), spellings such as
``f_d_-3_m`` or ``P4(2)/mmc``, and a symmetry loop holding a bare ``x,y,z``. Such files are read again with
gemmi (https://gemmi.readthedocs.io): a well-kept, fast C++ library with Python wheels for every platform and no
further dependencies, whose CIF parser follows the CIF 1.1 grammar and whose space-group tables know every
setting of the International Tables. The symmetry of a file is, in this order of preference: its symmetry
operations, its Hall symbol, its Hermann-Mauguin symbol (spellings normalised; without an origin choice the
first one, as in ASE), its space-group number.

Either way every atom carries the CIF site it comes from and that site's occupancy and disorder group, in
``atoms.arrays["cif_site"]``, ``["occupancy"]`` and ``["disorder_group"]``, for the checks of
:mod:`mofsnap.structures.intake`.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import gemmi
import numpy as np
from ase import Atoms
from ase.cell import Cell
from ase.data import atomic_numbers
from ase.io import read

from ..exceptions import StructureError

log = logging.getLogger(__name__)

#: Atoms of one CIF site closer than this (Å) after applying the symmetry are one atom.
SAME_ATOM_A = 0.05

_SYMOP_TAGS = ("_space_group_symop_operation_xyz", "_symmetry_equiv_pos_as_xyz")
_HALL_TAGS = ("_space_group_name_Hall", "_symmetry_space_group_name_Hall")
_HM_TAGS = ("_space_group_name_H-M_alt", "_symmetry_space_group_name_H-M")
_NUMBER_TAGS = ("_space_group_IT_number", "_symmetry_Int_Tables_number")


def read_cif(path: str | Path) -> Atoms:
    """The crystal of the first data block with atom sites in a CIF file.

    Parameters
    ----------
    path : path
        The CIF file.

    Returns
    -------
    Atoms
        The full unit cell with ``arrays["cif_site"]`` (site label), ``["occupancy"]`` and
        ``["disorder_group"]`` (0 where the file gives none).

    Raises
    ------
    StructureError
        The file is no CIF, has no atom sites or no cell, names an unknown element or a space group neither ASE
        nor gemmi knows.
    """
    path = Path(path)
    block = _atom_site_block(path)
    sites = gemmi.make_small_structure_from_block(block).sites
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = read(path, format="cif")
        kinds = np.asarray(atoms.arrays["spacegroup_kinds"])
        if len(kinds) and kinds.max() >= len(sites):
            raise ValueError("ASE and gemmi disagree on the atom sites")
        atoms = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
    except Exception as error:  # noqa: BLE001  (ASE's CIF reader raises many kinds of errors)
        log.debug("%s: ASE cannot read it (%s); reading it with gemmi", path, error)
        atoms, kinds = _expand_with_gemmi(path, block, sites)
    atoms.arrays["cif_site"] = np.array([sites[k].label for k in kinds], dtype=str)
    atoms.arrays["occupancy"] = np.array([sites[k].occ for k in kinds], dtype=float)
    atoms.arrays["disorder_group"] = np.array([sites[k].disorder_group for k in kinds], dtype=int)
    atoms.info["name"] = block.name
    return atoms


def normalise_spacegroup_name(name: str) -> str:
    """A Hermann-Mauguin symbol as gemmi spells it: ``f_d_-3_m`` -> ``f d -3 m``, ``P4(2)/mmc`` -> ``P4_2/mmc``."""
    name = name.strip().strip("'\"")
    name = re.sub(r"(\d)\((\d)\)", r"\1_\2", name)
    return re.sub(r"_(?!\d)|(?<!\d)_", " ", name).strip()


def _atom_site_block(path: Path) -> gemmi.cif.Block:
    """The first data block of ``path`` with atom sites, fractional (Cartesian ones are converted)."""
    for block in _document(path):
        if not block.find_values("_atom_site_fract_x") and block.find_values("_atom_site_Cartn_x"):
            _add_fractional_sites(path, block)
        if block.find_values("_atom_site_fract_x"):
            _add_site_labels(block)
            return block
    raise StructureError(f"{path}: no data block with atom sites (_atom_site_fract_x or _atom_site_Cartn_x); give "
                         "a CIF of a crystal structure")


def _document(path: Path) -> gemmi.cif.Document:
    """The parsed CIF. Lines before the first ``data_`` header (e.g. a metadata line some database exports
    put first) are skipped, and a file without any header is read as one block named after the file, each
    with a warning."""
    try:
        return gemmi.cif.read(str(path))
    except (RuntimeError, ValueError) as error:
        if "expected block header" not in str(error):
            raise StructureError(f"{path}: not a readable CIF ({error}); check the file") from None
    lines = path.read_text(errors="replace").splitlines()
    first = next((i for i, line in enumerate(lines) if line.lower().startswith("data_")), None)
    if first is None:
        log.warning("%s has no data_ block header; reading it as the block data_%s", path, path.stem)
        lines = [f"data_{path.stem}", *lines]
    else:
        log.warning("%s: skipping %d line(s) before its first data_ block header", path, first)
        lines = lines[first:]
    try:
        return gemmi.cif.read_string("\n".join(lines) + "\n")
    except (RuntimeError, ValueError) as error:
        raise StructureError(f"{path}: not a readable CIF ({error}); check the file") from None


def _ase_cell(cell: gemmi.UnitCell) -> Cell:
    """A gemmi unit cell as ASE's (a along x, b in the xy plane: the CIF's default Cartesian frame)."""
    return Cell.fromcellpar([cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma])


def _add_site_labels(block: gemmi.cif.Block) -> None:
    """Label the atom sites of a block that gives only their elements (``Fe1``, ``Fe2``, ... in file order)."""
    symbols = block.find_values("_atom_site_type_symbol")
    if block.find_values("_atom_site_label") or not symbols:
        return
    labels = [f"{re.sub('[^A-Za-z]', '', gemmi.cif.as_string(symbol))}{i + 1}" for i, symbol in enumerate(symbols)]
    loop = block.find_loop("_atom_site_type_symbol").get_loop()
    if loop is None:  # a single site given as tag-value pairs
        block.set_pair("_atom_site_label", labels[0])
        return
    loop.add_columns(["_atom_site_label"], "?")
    column = block.find_values("_atom_site_label")
    for i, label in enumerate(labels):
        column[i] = label


def _add_fractional_sites(path: Path, block: gemmi.cif.Block) -> None:
    """Add ``_atom_site_fract_x/y/z`` to a block that gives its atom sites in Cartesian coordinates (Å): with its
    ``_atom_sites_fract_tran_matrix``/``vector`` when given, else in the CIF's default frame (x along a, y in
    the ab plane)."""
    loop = block.find_loop("_atom_site_Cartn_x").get_loop()
    small = gemmi.make_small_structure_from_block(block)
    if loop is None or not small.cell.is_crystal():
        raise StructureError(f"{path}: Cartesian atom sites need a loop of sites and a unit cell "
                             "(_cell_length_a, ...); give a CIF of a crystal structure")
    cartesian = np.array([[gemmi.cif.as_number(v) for v in block.find_values(f"_atom_site_Cartn_{c}")]
                          for c in "xyz"]).T
    matrix = [block.find_value(f"_atom_sites_fract_tran_matrix_{i}{j}") for i in "123" for j in "123"]
    if all(matrix):
        shift = [block.find_value(f"_atom_sites_fract_tran_vector_{i}") or "0" for i in "123"]
        fractional = (cartesian @ np.array([gemmi.cif.as_number(v) for v in matrix]).reshape(3, 3).T
                      + [gemmi.cif.as_number(v) for v in shift])
    else:
        fractional = _ase_cell(small.cell).scaled_positions(cartesian)
    loop.add_columns([f"_atom_site_fract_{c}" for c in "xyz"], "?")
    for c, values in zip("xyz", fractional.T):
        column = block.find_values(f"_atom_site_fract_{c}")
        for i, value in enumerate(values):
            column[i] = f"{value:.10f}"


def _operations(path: Path, block: gemmi.cif.Block) -> list[np.ndarray]:
    """The symmetry operations of ``block`` as 4x4 Seitz matrices (fractional coordinates)."""
    ops = None
    for tag in _SYMOP_TAGS:
        values = [gemmi.cif.as_string(v) for v in block.find_values(tag)]
        if values:
            ops = [gemmi.Op(v.replace(" ", "")) for v in values]
            break
    else:
        spacegroup = None
        for tags, lookup in ((_HALL_TAGS, lambda v: gemmi.find_spacegroup_by_ops(gemmi.symops_from_hall(v))),
                             (_HM_TAGS, lambda v: gemmi.find_spacegroup_by_name(normalise_spacegroup_name(v))),
                             (_NUMBER_TAGS, lambda v: gemmi.find_spacegroup_by_number(int(v)))):
            values = [gemmi.cif.as_string(block.find_value(tag)) for tag in tags if block.find_value(tag)]
            for value in values:
                try:
                    spacegroup = lookup(value)
                except (RuntimeError, ValueError):
                    spacegroup = None
                if spacegroup is not None:
                    break
            if spacegroup is not None:
                break
        if spacegroup is None:
            raise StructureError(f"{path}: no symmetry operations and no space group known to ASE or gemmi; add a "
                                 "_space_group_symop_operation_xyz loop")
        ops = list(spacegroup.operations())
    return [np.array(op.float_seitz()) for op in ops]


def _expand_with_gemmi(path: Path, block: gemmi.cif.Block, sites) -> tuple[Atoms, np.ndarray]:
    """Apply the symmetry operations to every site; return the atoms and the site index of each."""
    small = gemmi.make_small_structure_from_block(block)
    if not small.cell.is_crystal():
        raise StructureError(f"{path}: no unit cell (_cell_length_a, ...); give a CIF of a crystal structure")
    cell = _ase_cell(small.cell)
    operations = _operations(path, block)
    numbers, fractional, kinds = [], [], []
    for k, site in enumerate(sites):
        symbol = site.element.name
        if symbol not in atomic_numbers or atomic_numbers[symbol] == 0:
            raise StructureError(f"{path}: CIF site {site.label} has an unknown element {site.type_symbol!r}; "
                                 "give its chemical symbol in _atom_site_type_symbol")
        position = np.append(site.fract.tolist(), 1.0)
        images = np.array([(op @ position)[:3] for op in operations]) % 1.0
        kept: list[np.ndarray] = []
        for image in images:
            if all(np.linalg.norm(cell.cartesian_positions((image - other + 0.5) % 1.0 - 0.5)) > SAME_ATOM_A
                   for other in kept):
                kept.append(image)
        numbers += [atomic_numbers[symbol]] * len(kept)
        fractional += kept
        kinds += [k] * len(kept)
    atoms = Atoms(numbers, scaled_positions=np.array(fractional).reshape(-1, 3), cell=cell, pbc=True)
    return atoms, np.array(kinds, dtype=int)
