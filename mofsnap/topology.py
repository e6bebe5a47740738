"""Covalent bonds with periodic images, and built on them the angles and dihedrals of a typed structure.

:func:`bond_pairs` finds the bonded pairs of any structure. :class:`Topology` fixes, once, from a typed reference
structure (``atoms.arrays["atom_types"]``), which atoms form bonds, angles and dihedrals and which type key each
has, and then measures their values in any new configuration of the same atoms, one frame or a batch of frames at
a time, with vectorised numpy.

Periodic images
---------------
Each bond remembers its reference vector in fractional coordinates. In a new configuration the bond vector is the
image of ``r_j - r_i`` whose fractional coordinates are nearest the reference ones: the minimum-image convention
applied to the change of the bond since the reference. For bonds shorter than half the cell widths it is the
ordinary minimum image; it stays right in skewed triclinic cells, in cells that deform, and whatever way the
atoms are wrapped (or unwrapped) across the boundary. Angles and dihedrals are built from these bond vectors.

Metal-metal contacts
--------------------
Two metal atoms (:data:`METALS`) are never bonded by default, however close: a Cu-Cu contact of 2.63 Å in a
paddlewheel or Zr-Zr of 3.52 Å in a Zr6 cluster is held together by its bridging ligands, and counting it would
make coordination numbers (and so atom types, angles and dihedrals) depend on where a distance threshold falls.
Coordination numbers then count ligand atoms only. ``metal_bonds=True`` restores the plain distance rule.

Second neighbours of a metal
----------------------------
The covalent radii of large metals (La 2.07 Å, Sr 1.95 Å, Cs 2.44 Å) put atoms that sit behind a ligand atom
within the distance rule: the carboxylate carbon of a chelating carboxylate (La-C 2.94 Å, under 1.2 x 2.83 Å),
the phosphorus of a phosphonate bridging through one O (La-P 3.7 Å), the H of a water molecule on Sr (Sr-H
2.7 Å). So a metal-hydrogen contact is no bond when the H is bonded to a non-metal (an O-H or C-H next to a
metal, not a hydride). Any other metal-ligand contact M-X is no bond when a non-metal Y bonded to both lies
between them: the angle M-Y-X at Y is at least :data:`BEHIND_LIGAND_ANGLE` (about 95 degrees at a chelate's
apex, 140 across a bridging O; a three-membered ring such as a side-on peroxide, 60-70 degrees, keeps its
bonds) and M-X is the longer contact relative to its sum of covalent radii (so the ligand atom Y is never the
one dropped). The decision uses the distance rule's contacts only, so it does not depend on atom order.

Units
-----
Lengths in Å; angles and dihedrals in degrees unless ``degrees=False`` (radians). Bond angles lie in [0, 180],
dihedrals (IUPAC sign convention) in (-180, 180].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols, covalent_radii
from matscipy.neighbours import neighbour_list

from .exceptions import StructureError, TopologyError
from .results import read_result, write_result

#: Two atoms are bonded when closer than this factor times the sum of their covalent radii.
BOND_SCALE = 1.2

#: Elements that are not metals: hydrogen, the noble gases, and the non-metals and metalloids of the p block.
NON_METALS = frozenset({
    "H", "He", "B", "C", "N", "O", "F", "Ne", "Si", "P", "S", "Cl", "Ar", "Ge", "As", "Se", "Br", "Kr", "Sb", "Te",
    "I", "Xe", "At", "Rn",
})  # fmt: skip

#: Atomic numbers of the metals (every element up to Cm that is not in :data:`NON_METALS`).
METALS = frozenset(z for z in range(1, 97) if chemical_symbols[z] not in NON_METALS)

#: A metal-ligand contact M-X is no bond when a non-metal bonded to both, Y, makes the angle M-Y-X at least this
#: (degrees): X sits behind Y as seen from the metal (see the module notes).
BEHIND_LIGAND_ANGLE = 75.0

#: Default factor: a bond is broken when longer than this times its reference length.
BROKEN_BOND_TOLERANCE = 1.5


def bond_pairs(atoms: Atoms, scale: float = BOND_SCALE, metal_bonds: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Directed bonded pairs of a periodic structure.

    Parameters
    ----------
    atoms : Atoms
        The structure (periodic or not).
    scale : float
        Bond if distance < ``scale * (r_cov,i + r_cov,j)`` (ASE covalent radii).
    metal_bonds : bool
        Also bond two metal atoms by the distance rule (by default metal-metal contacts are no bonds; see the
        module notes).

    Returns
    -------
    i, j : int arrays
        Every bond appears twice, as (i, j) and (j, i).
    shift : (nbond, 3) int array
        Cell shift of ``j`` (``r_j + shift @ cell - r_i`` is the bond vector).
    distance : float array
        Bond lengths in Å.
    """
    numbers = np.unique(atoms.numbers)
    cutoffs = {(int(a), int(b)): scale * (covalent_radii[a] + covalent_radii[b]) for a in numbers for b in numbers
               if metal_bonds or not (a in METALS and b in METALS)}
    if not cutoffs:
        return np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3), int), np.zeros(0)
    i, j, shift, distance = neighbour_list("ijSd", atoms, cutoffs)
    keep = ~_second_neighbour_contacts(atoms, i, j, shift, distance)
    return i[keep], j[keep], shift[keep], distance[keep]


def _second_neighbour_contacts(atoms: Atoms, i: np.ndarray, j: np.ndarray, shift: np.ndarray,
                               distance: np.ndarray) -> np.ndarray:
    """Mask of the metal-ligand contacts of the pair list ``i, j, shift`` (both directions) that are no bonds: an H
    bonded to a non-metal, or a ligand atom ``X`` behind a non-metal ``Y`` bonded to both it and the metal ``M``
    (the angle M-Y-X at least :data:`BEHIND_LIGAND_ANGLE`, M-X longer than M-Y relative to their sums of
    covalent radii)."""
    metal = np.isin(atoms.numbers, list(METALS))
    bonded_hydrogen = np.zeros(len(atoms), dtype=bool)
    bonded_hydrogen[i[(atoms.numbers[i] == 1) & ~metal[j]]] = True
    drop = (metal[i] & bonded_hydrogen[j]) | (bonded_hydrogen[i] & metal[j])
    contacts = np.flatnonzero(metal[i] & ~metal[j] & ~drop)
    if not contacts.size:
        return drop
    # every ordered pair (k, e) of contacts of the same metal M: X = j[k], Y = j[e]
    contacts = contacts[np.argsort(i[contacts], kind="stable")]
    _, first, count = np.unique(i[contacts], return_index=True, return_counts=True)
    per_contact = np.repeat(count, count)
    k = np.repeat(contacts, per_contact)
    within = np.arange(k.size) - np.repeat(np.cumsum(per_contact) - per_contact, per_contact)
    e = contacts[np.repeat(np.repeat(first, count), per_contact) + within]
    relative = distance / (covalent_radii[atoms.numbers[i]] + covalent_radii[atoms.numbers[j]])
    closer = relative[e] < relative[k]  # Y is the nearer one (also rules out e == k)
    k, e = k[closer], e[closer]
    reach = 2 * int(np.abs(shift).max())  # the largest cell shift of a difference of two pairs' shifts

    def pair_keys(a: np.ndarray, b: np.ndarray, pair_shift: np.ndarray) -> np.ndarray:
        key = a.astype(np.int64) * len(atoms) + b  # one integer per directed pair a, b, shift
        for component in (pair_shift + reach).T:
            key = key * (2 * reach + 1) + component
        return key

    keys = pair_keys(i, j, shift)
    order = np.argsort(keys)
    ordered = keys[order]

    def find(query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of each queried pair in the pair list, and whether it is there."""
        at = np.minimum(np.searchsorted(ordered, query), len(ordered) - 1)
        return order[at], ordered[at] == query

    _, behind = find(pair_keys(j[k], j[e], shift[e] - shift[k]))  # X-Y is a bond
    k, e = k[behind], e[behind]
    vectors = atoms.positions[j] + shift @ atoms.cell.array - atoms.positions[i]
    to_metal, to_ligand = -vectors[e], vectors[k] - vectors[e]
    cosine = np.einsum("ij,ij->i", to_metal, to_ligand) / (np.linalg.norm(to_metal, axis=1)
                                                          * np.linalg.norm(to_ligand, axis=1))
    k = np.unique(k[cosine <= np.cos(np.radians(BEHIND_LIGAND_ANGLE))])
    reverse, _ = find(pair_keys(j[k], i[k], -shift[k]))  # every pair is listed in both directions
    drop[k] = drop[reverse] = True
    return drop


def neighbour_frame(atoms: Atoms) -> Atoms:
    """``atoms`` as a neighbour list takes them: themselves when they have a full cell, else (a molecule) a
    copy centred in a box with 5 Å of vacuum.

    Raises
    ------
    StructureError
        The atoms are periodic but their cell vectors do not span three dimensions (zero volume).
    """
    rank = int(np.linalg.matrix_rank(atoms.cell.array))
    if rank == 3:
        return atoms
    if atoms.pbc.any():
        axes = "".join("xyz"[k] for k in range(3) if atoms.pbc[k])
        raise StructureError(f"the structure is periodic along {axes} but its cell vectors span only {rank} "
                             f"dimension(s) (zero volume); give three linearly independent cell vectors, or "
                             f"pbc=False for a molecule")
    boxed = atoms.copy()
    boxed.center(vacuum=5.0)
    return boxed


def cell_parameters(cells: np.ndarray) -> np.ndarray:
    """Cell lengths and angles of one cell or a stack of cells.

    Parameters
    ----------
    cells : (3, 3) or (nframe, 3, 3) array
        Cell vectors as rows (Å).

    Returns
    -------
    (6,) or (nframe, 6) array
        a, b, c in Å and α, β, γ in degrees (α between b and c, β between a and c, γ between a and b).
    """
    cells = np.asarray(cells, dtype=float)
    lengths = np.linalg.norm(cells, axis=-1)
    pairs = ((1, 2), (0, 2), (0, 1))
    cosines = [np.einsum("...k,...k->...", cells[..., p, :], cells[..., q, :]) / (lengths[..., p] * lengths[..., q])
               for p, q in pairs]
    angles = np.degrees(np.arccos(np.clip(np.stack(cosines, axis=-1), -1.0, 1.0)))
    return np.concatenate([lengths, angles], axis=-1)


def stack_frames(frames: list[Atoms]) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(nframe, natom, 3)`` and cells ``(nframe, 3, 3)`` of equally sized frames, for batch measuring."""
    return (np.stack([atoms.positions for atoms in frames]),
            np.stack([atoms.cell.array for atoms in frames]))


def _canonical_direction(i: np.ndarray, j: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """True where the directed edge (i -> j + shift) is the canonical one of its bond (i < j, or i == j and the
    first non-zero shift component positive)."""
    first = np.take_along_axis(shift, np.argmax(shift != 0, axis=1)[:, None], axis=1)[:, 0]
    return (i < j) | ((i == j) & (first > 0))


def _type_keys(labels: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Join rows of type labels with '-' and return (sorted unique keys, index of each row's key)."""
    keys = np.array(["-".join(row) for row in labels.tolist()], dtype=str)
    names, index = np.unique(keys, return_inverse=True)
    return [str(name) for name in names], index.astype(np.int64)


@dataclass(eq=False)
class Topology:
    """Bonds, angles and dihedrals of a typed structure, fixed from a reference and measured in new frames.

    Build it with :meth:`from_atoms`. Type keys: a bond is the unordered pair of atom types (``"C3a-N3a"``, the
    labels sorted); an angle is end-centre-end with the two ends sorted (``"C3a-N3a-Zn4a"``: centre ``N3a``); a
    dihedral is the quadruple or its reverse, whichever sorts first. Atom indices in :attr:`angles` and
    :attr:`dihedrals` follow the order of their key.

    Attributes
    ----------
    numbers : (natom,) int array
        Atomic numbers of the reference, in order.
    atom_types : (natom,) str array
        Atom-type labels of the reference.
    cell : (3, 3) array
        Reference cell (Å).
    bonds, angles, dihedrals : (n, 2), (n, 3), (n, 4) int arrays
        Atom indices; the angle centre is the middle column.
    bond_types, angle_types, dihedral_types : list of str
        Sorted unique type keys.
    bond_type_index, angle_type_index, dihedral_type_index : int arrays
        Key of each bond / angle / dihedral as an index into the matching ``*_types`` list.
    reference_bond_lengths : (nbond,) array
        Bond lengths in the reference structure (Å).
    bond_fractional : (nbond, 3) array
        Reference bond vectors in fractional coordinates (they pick the periodic image in new frames).
    angle_bonds, dihedral_bonds : (nangle, 2), (ndihedral, 3) int arrays
        Bonds whose vectors make each angle (centre -> end1, centre -> end2) and dihedral (a -> b, b -> c,
        c -> d); ``angle_signs`` / ``dihedral_signs`` (+1 / -1) orient them.
    """

    numbers: np.ndarray
    atom_types: np.ndarray
    cell: np.ndarray
    bonds: np.ndarray
    bond_fractional: np.ndarray
    reference_bond_lengths: np.ndarray
    bond_types: list[str]
    bond_type_index: np.ndarray
    angles: np.ndarray
    angle_bonds: np.ndarray
    angle_signs: np.ndarray
    angle_types: list[str]
    angle_type_index: np.ndarray
    dihedrals: np.ndarray
    dihedral_bonds: np.ndarray
    dihedral_signs: np.ndarray
    dihedral_types: list[str]
    dihedral_type_index: np.ndarray

    #: Kind and format version of the result files of :meth:`write`.
    KIND: ClassVar[str] = "topology"
    VERSION: ClassVar[int] = 1

    # ------------------------------------------------------------------ building
    @classmethod
    def from_atoms(cls, atoms: Atoms, scale: float = BOND_SCALE, metal_bonds: bool = False) -> Topology:
        """Find bonds (:func:`bond_pairs`), angles and dihedrals of a typed, 3D-periodic reference structure.

        Parameters
        ----------
        atoms : Atoms
            Reference structure carrying ``atoms.arrays["atom_types"]``.
        scale : float
            Bond criterion of :func:`bond_pairs`.
        metal_bonds : bool
            Count metal-metal contacts as bonds (off by default, as for the atom types).

        Raises
        ------
        TopologyError
            No atom types, not periodic in 3D, or no bonds at all.
        """
        if "atom_types" not in atoms.arrays:
            raise TopologyError("the reference structure has no atoms.arrays['atom_types'] (assign atom types first)")
        if not atoms.pbc.all() or atoms.cell.rank < 3:
            raise TopologyError("a Topology needs a 3D-periodic reference structure with a full cell")
        labels = np.asarray(atoms.arrays["atom_types"]).astype(str)
        i, j, shift, _ = bond_pairs(atoms, scale, metal_bonds)
        if len(i) == 0:
            raise TopologyError(f"no bonds found in the reference structure (bond scale {scale})")

        # Undirected bonds: each directed edge maps to its bond and a sign (+1 along the canonical direction).
        forward = _canonical_direction(i, j, shift)
        rows = np.where(forward[:, None], np.column_stack([i, j, shift]), np.column_stack([j, i, -shift]))
        unique_rows, bond_of_edge = np.unique(rows, axis=0, return_inverse=True)
        bond_of_edge = bond_of_edge.ravel()
        sign_of_edge = np.where(forward, 1, -1)
        bonds = unique_rows[:, :2]
        scaled = atoms.get_scaled_positions(wrap=False)
        bond_fractional = scaled[bonds[:, 1]] + unique_rows[:, 2:] - scaled[bonds[:, 0]]
        reference_lengths = np.linalg.norm(bond_fractional @ atoms.cell.array, axis=1)
        bond_types, bond_type_index = _type_keys(np.sort(labels[bonds], axis=1))

        # Edges grouped by their first atom: edges[start[a]:start[a + 1]] leave atom a.
        order = np.lexsort((j, i))
        i, j, shift = i[order], j[order], shift[order]
        bond_of_edge, sign_of_edge = bond_of_edge[order], sign_of_edge[order]
        degree = np.bincount(i, minlength=len(atoms))
        start = np.concatenate([[0], np.cumsum(degree)])

        angles, angle_bonds, angle_signs = cls._find_angles(i, j, bond_of_edge, sign_of_edge, degree)
        swap = labels[angles[:, 0]] > labels[angles[:, 2]]
        angles[swap] = angles[swap][:, ::-1]
        angle_bonds[swap] = angle_bonds[swap][:, ::-1]
        angle_signs[swap] = angle_signs[swap][:, ::-1]
        angle_types, angle_type_index = _type_keys(labels[angles])

        dihedrals, dihedral_bonds, dihedral_signs = cls._find_dihedrals(
            i, j, shift, bond_of_edge, sign_of_edge, degree, start, bonds, unique_rows[:, 2:])
        forward_keys = np.array(["-".join(row) for row in labels[dihedrals].tolist()], dtype=str)
        reverse_keys = np.array(["-".join(row) for row in labels[dihedrals[:, ::-1]].tolist()], dtype=str)
        flip = reverse_keys < forward_keys
        dihedrals[flip] = dihedrals[flip][:, ::-1]
        dihedral_bonds[flip] = dihedral_bonds[flip][:, ::-1]
        dihedral_signs[flip] = -dihedral_signs[flip][:, ::-1]
        dihedral_types, dihedral_type_index = _type_keys(labels[dihedrals])

        return cls(numbers=atoms.numbers.copy(), atom_types=labels, cell=atoms.cell.array.copy(),
                   bonds=bonds, bond_fractional=bond_fractional, reference_bond_lengths=reference_lengths,
                   bond_types=bond_types, bond_type_index=bond_type_index,
                   angles=angles, angle_bonds=angle_bonds, angle_signs=angle_signs,
                   angle_types=angle_types, angle_type_index=angle_type_index,
                   dihedrals=dihedrals, dihedral_bonds=dihedral_bonds, dihedral_signs=dihedral_signs,
                   dihedral_types=dihedral_types, dihedral_type_index=dihedral_type_index)

    @staticmethod
    def _find_angles(i, j, bond_of_edge, sign_of_edge, degree):
        """Every unordered pair of distinct edges leaving the same atom is an angle (vectorised over atoms)."""
        first, second = [], []
        for offset in range(1, int(degree.max())):
            e1 = np.arange(len(i) - offset)
            e1 = e1[i[e1] == i[e1 + offset]]
            first.append(e1)
            second.append(e1 + offset)
        e1 = np.concatenate(first).astype(np.int64) if first else np.zeros(0, np.int64)
        e2 = np.concatenate(second).astype(np.int64) if second else np.zeros(0, np.int64)
        angles = np.column_stack([j[e1], i[e1], j[e2]]).reshape(-1, 3)
        angle_bonds = np.column_stack([bond_of_edge[e1], bond_of_edge[e2]]).reshape(-1, 2)
        angle_signs = np.column_stack([sign_of_edge[e1], sign_of_edge[e2]]).reshape(-1, 2)
        return angles, angle_bonds, angle_signs

    @staticmethod
    def _find_dihedrals(i, j, shift, bond_of_edge, sign_of_edge, degree, start, bonds, bond_shift):
        """Dihedrals a-b-c-d around every bond b-c (a != c, d != b, a and d not the same atom image)."""
        b, c = bonds[:, 0], bonds[:, 1]
        central = np.arange(len(bonds))
        max_degree = int(degree.max())
        parts = []
        for k1 in range(max_degree):
            for k2 in range(max_degree):
                keep = (k1 < degree[b]) & (k2 < degree[c])
                e1 = start[b[keep]] + k1          # edge b -> a
                e2 = start[c[keep]] + k2          # edge c -> d
                k = central[keep]
                keep = ~((bond_of_edge[e1] == k) & (sign_of_edge[e1] == 1))      # a is c itself
                keep &= ~((bond_of_edge[e2] == k) & (sign_of_edge[e2] == -1))    # d is b itself
                same_image = (j[e1] == j[e2]) & np.all(shift[e1] == bond_shift[k] + shift[e2], axis=1)
                keep &= ~same_image                                               # three-membered ring
                parts.append((e1[keep], k[keep], e2[keep]))
        e1 = np.concatenate([p[0] for p in parts]).astype(np.int64)
        k = np.concatenate([p[1] for p in parts]).astype(np.int64)
        e2 = np.concatenate([p[2] for p in parts]).astype(np.int64)
        order = np.lexsort((e2, e1, k))
        e1, k, e2 = e1[order], k[order], e2[order]
        dihedrals = np.column_stack([j[e1], b[k], c[k], j[e2]]).reshape(-1, 4)
        dihedral_bonds = np.column_stack([bond_of_edge[e1], k, bond_of_edge[e2]]).reshape(-1, 3)
        # a -> b is the reverse of edge b -> a.
        dihedral_signs = np.column_stack([-sign_of_edge[e1], np.ones_like(k), sign_of_edge[e2]]).reshape(-1, 3)
        return dihedrals, dihedral_bonds, dihedral_signs

    # ------------------------------------------------------------------ checking
    def check(self, atoms: Atoms) -> None:
        """Raise :class:`TopologyError` unless ``atoms`` has the reference's atom count and element order."""
        if len(atoms) != len(self.numbers):
            raise TopologyError(f"frame has {len(atoms)} atoms, the reference topology has {len(self.numbers)}")
        if not np.array_equal(atoms.numbers, self.numbers):
            first = int(np.argmax(atoms.numbers != self.numbers))
            raise TopologyError(f"frame element order differs from the reference topology (first at atom {first}: "
                                f"Z={atoms.numbers[first]}, reference Z={self.numbers[first]})")

    # ------------------------------------------------------------------ measuring
    def bond_vectors(self, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
        """Bond vectors ``r_j - r_i`` (Å) of one frame ``(natom, 3)`` or a batch ``(nframe, natom, 3)``.

        ``cell`` is ``(3, 3)`` or ``(nframe, 3, 3)``. Returns ``(nbond, 3)`` or ``(nframe, nbond, 3)``. The image is
        the one nearest the reference bond in fractional coordinates (see the module notes).

        Raises
        ------
        TopologyError
            Wrong number of atoms, non-finite positions or cell, or a singular cell.
        """
        components, single = self._bond_components(positions, cell)
        vectors = np.moveaxis(components, 0, -1)
        return vectors[0] if single else vectors

    def _bond_components(self, positions: np.ndarray, cell: np.ndarray) -> tuple[np.ndarray, bool]:
        """Bond vectors as ``(3, nframe, nbond)`` (component first: fast gathers) and whether one frame was given."""
        positions = np.asarray(positions, dtype=float)
        cell = np.asarray(cell, dtype=float)
        if positions.shape[-2:] != (len(self.numbers), 3) or positions.ndim not in (2, 3):
            raise TopologyError(f"positions of shape {positions.shape} do not fit {len(self.numbers)} atoms")
        if cell.shape[-2:] != (3, 3) or cell.ndim > positions.ndim:
            raise TopologyError(f"cell of shape {cell.shape} does not fit positions of shape {positions.shape}")
        if not (np.isfinite(positions).all() and np.isfinite(cell).all()):
            raise TopologyError("positions or cell contain NaN or infinite values")
        single = positions.ndim == 2
        positions = positions[None] if single else positions
        cell = np.broadcast_to(cell, (len(positions), 3, 3))
        try:
            inverse = np.linalg.inv(cell)
        except np.linalg.LinAlgError:
            raise TopologyError("cell is singular") from None
        scaled = np.einsum("fnk,fkl->lfn", positions, inverse)
        delta = scaled[:, :, self.bonds[:, 1]] - scaled[:, :, self.bonds[:, 0]]
        delta += np.round(self.bond_fractional.T[:, None, :] - delta)
        return np.einsum("kfb,fkl->lfb", delta, cell), single

    def measure(self, positions: np.ndarray, cell: np.ndarray, degrees: bool = True) -> dict[str, np.ndarray]:
        """Bond lengths, angles and dihedrals of one frame or a batch (shapes as in :meth:`bond_vectors`).

        Returns
        -------
        dict
            ``"bond"`` (Å), ``"angle"`` in [0, 180] and ``"dihedral"`` in (-180, 180] (degrees, or radians if
            ``degrees=False``); each ``(n,)`` for one frame or ``(nframe, n)`` for a batch.
        """
        (x, y, z), single = self._bond_components(positions, cell)
        lengths = np.sqrt(x * x + y * y + z * z)

        def gather(bonds):
            return x[:, bonds], y[:, bonds], z[:, bonds]

        def cross(u, v):
            return u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]

        def dot(u, v):
            return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]

        # Bond signs only flip scalar products, so they are applied to the scalars at the end.
        u, v = gather(self.angle_bonds[:, 0]), gather(self.angle_bonds[:, 1])
        w = cross(u, v)
        angle = np.arctan2(np.sqrt(dot(w, w)), np.prod(self.angle_signs, axis=1) * dot(u, v))
        b1, b2, b3 = (gather(self.dihedral_bonds[:, n]) for n in range(3))
        n2 = cross(b2, b3)
        s1, s2, s3 = self.dihedral_signs.T
        sine = (s1 * s2 * s3) * lengths[:, self.dihedral_bonds[:, 1]] * dot(b1, n2)
        cosine = (s1 * s3) * dot(cross(b1, b2), n2)
        dihedral = np.arctan2(sine, cosine)
        dihedral[dihedral <= -np.pi] = np.pi
        if degrees:
            angle, dihedral = np.degrees(angle), np.degrees(dihedral)
        values = {"bond": lengths, "angle": angle, "dihedral": dihedral}
        return {kind: value[0] for kind, value in values.items()} if single else values

    def broken_bonds(self, positions: np.ndarray, cell: np.ndarray,
                     tolerance: float = BROKEN_BOND_TOLERANCE) -> np.ndarray:
        """Mask of bonds longer than ``tolerance`` times their reference length (``(nbond,)`` or
        ``(nframe, nbond)``); ``mask.any(axis=-1)`` flags a blown-up frame."""
        (x, y, z), single = self._bond_components(positions, cell)
        broken = np.sqrt(x * x + y * y + z * z) > tolerance * self.reference_bond_lengths
        return broken[0] if single else broken

    def most_stretched_bond(self, positions: np.ndarray, cell: np.ndarray, tolerance: float) -> str | None:
        """The bond stretched most beyond ``tolerance`` times its reference length, named by its atoms and types
        (``"Zn5a (atom 1)–N4a (atom 27) at 3.08 Å > 1.5 x its 2.05 Å"``), or None when none is. One frame; only the
        bond lengths are computed (it runs at every step of a guarded MD run)."""
        (x, y, z), _ = self._bond_components(positions, cell)
        lengths = np.sqrt(x * x + y * y + z * z)[0]
        stretch = lengths / self.reference_bond_lengths
        b = int(np.argmax(stretch))
        if stretch[b] <= tolerance:
            return None
        i, j = (int(x) for x in self.bonds[b])
        return (f"{self.atom_types[i]} (atom {i})–{self.atom_types[j]} (atom {j}) at {lengths[b]:.2f} Å > "
                f"{tolerance:g} x its {self.reference_bond_lengths[b]:.2f} Å")

    # ------------------------------------------------------------------ writing and reading
    def to_dict(self) -> dict:
        """JSON-ready dictionary of every field (floats written with full precision: exact round-trip)."""
        return {name: value.tolist() if isinstance(value, np.ndarray) else list(value)
                for name, value in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict) -> Topology:
        """Inverse of :meth:`to_dict`."""
        fields = {}
        for name, value in data.items():
            if name.endswith("_types") and name != "atom_types":
                fields[name] = [str(v) for v in value]
            elif name == "atom_types":
                fields[name] = np.array(value, dtype=str)
            elif name in ("cell", "bond_fractional", "reference_bond_lengths"):
                fields[name] = np.array(value, dtype=float)
            else:
                fields[name] = np.array(value, dtype=np.int64)
        shapes = {"bonds": 2, "angles": 3, "dihedrals": 4, "angle_bonds": 2, "angle_signs": 2,
                  "dihedral_bonds": 3, "dihedral_signs": 3, "bond_fractional": 3}
        for name, width in shapes.items():
            fields[name] = fields[name].reshape(-1, width)
        return cls(**fields)

    def write(self, path: str | Path) -> Path:
        """Write the topology as a versioned JSON result file; return ``path``."""
        return write_result(path, self.KIND, self.VERSION, self.to_dict())

    @classmethod
    def read(cls, path: str | Path) -> Topology:
        """Read a topology written by :meth:`write` (exactly equal to the one written).

        Raises
        ------
        ResultFileError
            The file is missing or holds something else.
        """
        return cls.from_dict(read_result(path, cls.KIND, cls.VERSION))

    def __repr__(self) -> str:
        return (f"Topology({len(self.numbers)} atoms, {len(self.bonds)} bonds / {len(self.bond_types)} types, "
                f"{len(self.angles)} angles / {len(self.angle_types)} types, "
                f"{len(self.dihedrals)} dihedrals / {len(self.dihedral_types)} types)")
