"""PLUMED input of well-tempered metadynamics, and the MOF-5 phenylene rings it rotates.

Every input made here starts with :data:`UNITS_LINE`, so Gaussian heights, walls, HILLS and COLVAR files are
in eV, Å, rad and fs (ASE's own units except time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ...exceptions import MetadynamicsError, RingSelectionError
from ...topology import bond_pairs

#: First line of every PLUMED input run here: PLUMED reads and writes eV, Å and fs.
UNITS_LINE = "UNITS LENGTH=A ENERGY=eV TIME=fs"


def metad_line(
    args: Sequence[str],
    *,
    temperature_K: float,
    sigma: float = 0.1,
    height: float = 0.05,
    biasfactor: float = 12.0,
    pace: int = 100,
    grid_min: str = "-pi",
    grid_max: str = "pi",
    grid_spacing: float = 0.05,
    hills_file: str = "HILLS",
    label: str = "metad",
) -> str:
    """A well-tempered ``METAD`` line with the same settings for every CV.

    Parameters
    ----------
    args : sequence of str
        CV labels.
    temperature_K : float
        Temperature of the run (PLUMED's TEMP).
    sigma, height : float
        Gaussian width (CV units) and initial height (eV).
    biasfactor : float
        Well-tempered bias factor γ > 1.
    pace : int
        MD steps between hills.
    grid_min, grid_max : str
        Grid bounds (PLUMED numbers such as ``-pi``).
    grid_spacing : float
        Grid spacing (CV units).
    hills_file : str
        HILLS file name.
    label : str
        Action label (its bias is ``<label>.bias``).
    """
    if biasfactor <= 1:
        raise MetadynamicsError(f"well-tempered bias factor must exceed 1, got {biasfactor}")
    n = len(args)
    rep = lambda value: ",".join([str(value)] * n)  # noqa: E731
    return (
        f"{label}: METAD ARG={','.join(args)} SIGMA={rep(sigma)} HEIGHT={height} BIASFACTOR={biasfactor} "
        f"TEMP={temperature_K} PACE={pace} GRID_MIN={rep(grid_min)} GRID_MAX={rep(grid_max)} "
        f"GRID_SPACING={rep(grid_spacing)} FILE={hills_file}"
    )


@dataclass(frozen=True)
class PhenyleneRing:
    """Atoms (0-based indices) of one phenylene linker and its two carboxylate ends.

    Attributes
    ----------
    index : int
        Position of the ring in the order of :func:`phenylene_rings`.
    ring_atoms : tuple of int
        The six ring carbons.
    dihedrals : two (C3c, C3b, C3a, O2a) tuples
        Ring plane against carboxylate plane, one per end.
    zn_o : four (Zn4a, O2a) pairs
        Carboxylate O and the Zn it binds, two per end.
    o_zn_zn_o : two (O2a, Zn4a, Zn4a, O2a) tuples
        Carboxylate against its two Zn, one per end.
    """

    index: int
    ring_atoms: tuple[int, ...]
    dihedrals: tuple[tuple[int, int, int, int], ...]
    zn_o: tuple[tuple[int, int], ...]
    o_zn_zn_o: tuple[tuple[int, int, int, int], ...]


def phenylene_rings(atoms: Atoms) -> list[PhenyleneRing]:
    """All phenylene-dicarboxylate rings bound to Zn, found from atom types and bonds.

    Types used: C3a carboxylate C, C3b ring C bonded to it, C3c ring CH, O2a carboxylate O, Zn4a.
    Rings are ordered by their lowest atom index; within each end the lowest-index C3c and O2a are taken.

    Raises
    ------
    RingSelectionError
        If ``atoms.arrays["atom_types"]`` is missing or a ring is not bonded as a phenylene dicarboxylate.
    """
    if "atom_types" not in atoms.arrays:
        raise RingSelectionError('atoms.arrays["atom_types"] is missing; assign atom types first')
    types = np.asarray(atoms.arrays["atom_types"]).astype(str)
    i, j, _, _ = bond_pairs(atoms)
    neighbours: list[set[int]] = [set() for _ in range(len(atoms))]
    for a, b in zip(i.tolist(), j.tolist()):
        neighbours[a].add(b)

    def of_type(atom: int, label: str) -> list[int]:
        return sorted(n for n in neighbours[atom] if types[n] == label)

    def single(atom: int, label: str) -> int:
        found = of_type(atom, label)
        if len(found) != 1:
            raise RingSelectionError(f"atom {atom} ({types[atom]}) has {len(found)} {label} neighbours, expected 1")
        return found[0]

    ring_carbons = set(np.flatnonzero(np.isin(types, ["C3b", "C3c"])).tolist())
    rings, seen = [], set()
    for start in sorted(ring_carbons):
        if start in seen:
            continue
        component, stack = set(), [start]
        while stack:
            atom = stack.pop()
            if atom not in component:
                component.add(atom)
                stack.extend(n for n in neighbours[atom] if n in ring_carbons)
        seen |= component
        ends = sorted(a for a in component if types[a] == "C3b")
        if len(component) != 6 or len(ends) != 2:
            raise RingSelectionError(
                f"ring carbons {sorted(component)} form no phenylene (6 C with 2 C3b): check types and bonds")
        dihedrals, zn_o, o_zn_zn_o = [], [], []
        for b in ends:
            c = of_type(b, "C3c")
            a = single(b, "C3a")
            oxygens = of_type(a, "O2a")
            if not c or len(oxygens) != 2:
                raise RingSelectionError(f"ring end C3b {b} lacks C3c neighbours or its C3a {a} lacks two O2a")
            zincs = [single(o, "Zn4a") for o in oxygens]
            dihedrals.append((c[0], b, a, oxygens[0]))
            zn_o.extend(zip(zincs, oxygens))
            o_zn_zn_o.append((oxygens[0], zincs[0], zincs[1], oxygens[1]))
        rings.append(PhenyleneRing(len(rings), tuple(sorted(component)), tuple(dihedrals), tuple(zn_o),
                                   tuple(o_zn_zn_o)))
    return rings


def ring_rotation_input(
    atoms: Atoms,
    ring: int = 0,
    *,
    temperature_K: float = 300.0,
    sigma: float = 0.1,
    height: float = 0.05,
    biasfactor: float = 12.0,
    pace: int = 100,
    grid_spacing: float = 0.05,
    wall_distance: float = 2.4,
    wall_distance_kappa: float = 25.0,
    wall_dihedral: float = 0.85,
    wall_dihedral_kappa: float = 25.0,
    colvar_stride: int | None = None,
) -> list[str]:
    """PLUMED input of the reference well-tempered metadynamics of one MOF-5 phenylene rotation.

    CVs ``phi1``, ``phi2``: the C3c–C3b–C3a–O2a dihedrals at the two ends of the ring. Upper walls keep the
    four Zn–O distances below ``wall_distance``; upper and lower walls keep the two O2a–Zn–Zn–O2a dihedrals
    within ±``wall_dihedral`` so the carboxylates stay on their Zn while the ring turns. Walls are
    ``kappa (x - at)^2``. Writes ``HILLS`` and ``COLVAR`` (every ``colvar_stride`` steps, default ``pace``).

    Parameters
    ----------
    atoms : Atoms
        Structure with ``atoms.arrays["atom_types"]``.
    ring : int
        Which ring of :func:`phenylene_rings` (0 = first).
    temperature_K, sigma, height, biasfactor, pace, grid_spacing
        As in :func:`metad_line` (rad, eV, K).
    wall_distance, wall_distance_kappa : float
        Zn–O wall in Å and eV/Å².
    wall_dihedral, wall_dihedral_kappa : float
        O2a–Zn–Zn–O2a walls in rad and eV/rad².
    colvar_stride : int, optional
        Steps between COLVAR lines.
    """
    rings = phenylene_rings(atoms)
    if not 0 <= ring < len(rings):
        raise RingSelectionError(f"ring {ring} requested but the structure has {len(rings)} phenylene rings")
    chosen = rings[ring]
    one = lambda atom_ids: ",".join(str(a + 1) for a in atom_ids)  # noqa: E731  (PLUMED counts from 1)
    lines = [UNITS_LINE]
    lines += [f"phi{k + 1}: TORSION ATOMS={one(d)}" for k, d in enumerate(chosen.dihedrals)]
    lines += [f"d{k + 1}: DISTANCE ATOMS={one(pair)}" for k, pair in enumerate(chosen.zn_o)]
    lines += [f"t{k + 1}: TORSION ATOMS={one(d)}" for k, d in enumerate(chosen.o_zn_zn_o)]
    dist = ",".join(f"d{k + 1}" for k in range(len(chosen.zn_o)))
    tors = ",".join(f"t{k + 1}" for k in range(len(chosen.o_zn_zn_o)))
    nd, nt = len(chosen.zn_o), len(chosen.o_zn_zn_o)
    rep = lambda value, n: ",".join([str(value)] * n)  # noqa: E731
    lines += [
        f"wall_zno: UPPER_WALLS ARG={dist} AT={rep(wall_distance, nd)} KAPPA={rep(wall_distance_kappa, nd)}",
        f"wall_up: UPPER_WALLS ARG={tors} AT={rep(wall_dihedral, nt)} KAPPA={rep(wall_dihedral_kappa, nt)}",
        f"wall_lo: LOWER_WALLS ARG={tors} AT={rep(-wall_dihedral, nt)} KAPPA={rep(wall_dihedral_kappa, nt)}",
        metad_line(["phi1", "phi2"], temperature_K=temperature_K, sigma=sigma, height=height,
                   biasfactor=biasfactor, pace=pace, grid_spacing=grid_spacing),
        f"PRINT ARG=phi1,phi2,{dist},{tors},metad.bias,wall_zno.bias,wall_up.bias,wall_lo.bias "
        f"STRIDE={colvar_stride or pace} FILE=COLVAR",
    ]
    return lines
