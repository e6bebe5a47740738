"""What a configuration and its label must satisfy: inputs refused before any reference call, labels checked
before they count.

Inputs (:func:`check_configuration`, one :class:`~mofsnap.exceptions.ConfigurationError` naming the atoms
and the fix): finite positions and cell, real elements (no Z = 0, nothing past the periodic table), what the
reference itself requires (:meth:`~mofsnap.reference.Reference.check`: periodic cell, supported elements,
spin state), no two atoms closer than :attr:`LabelChecks.min_distance`, and atom types, when present, equal
to those :func:`~mofsnap.atomtypes.assign_atom_types` gives the geometry.

Labels (:func:`label_problem` for each result, :func:`energy_outliers` for a batch): finite energy, forces and
stress of the right shapes, largest force at most :attr:`LabelChecks.max_force`, and energy per atom within
:attr:`LabelChecks.max_energy_deviation` of the median of the labels of the same composition (the batch
and the good labels of the same reference already stored).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.neighborlist import neighbor_list

from ..exceptions import AtomTypingError, ConfigurationError, LabellingError
from ..reference import Reference

_SHOWN = 6  # atoms or pairs named in a message


@dataclass(frozen=True)
class LabelChecks:
    """Bounds on the configurations sent to a reference and on the labels it returns.

    Attributes
    ----------
    min_distance
        Closest allowed approach of two atoms, Å (closer: the input is refused as overlapping).
    check_types
        Refuse configurations whose ``atom_types`` differ from the types of their own geometry.
    max_force
        Largest allowed force component norm on any atom, eV/Å (larger: the label is a failure).
    max_energy_deviation
        Largest allowed distance of a label's energy per atom from the median of its batch (same
        composition, same reference), eV/atom (larger: the label is a failure).
    """

    min_distance: float = 0.5
    check_types: bool = True
    max_force: float = 50.0
    max_energy_deviation: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_distance", "max_force", "max_energy_deviation"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise LabellingError(f"LabelChecks.{name} must be a positive number, got {value!r}")


def check_configuration(atoms: Atoms, reference: Reference, checks: LabelChecks, name: str) -> None:
    """Refuse ``atoms`` before any reference call if it cannot give a meaningful label.

    Parameters
    ----------
    atoms
        The configuration.
    reference
        The reference that would label it (its own :meth:`~mofsnap.reference.Reference.check` runs too).
    checks
        Bounds (:attr:`LabelChecks.min_distance`, :attr:`LabelChecks.check_types`).
    name
        How the message names the configuration, e.g. ``"configuration 3 (frame 7 of md.extxyz)"``.

    Raises
    ------
    ConfigurationError
        Non-finite positions or cell, Z = 0 or unknown elements, overlapping atoms, types that disagree
        with the geometry.
    ReferenceMethodError
        The reference cannot treat it (no cell, element without parameters, ambiguous spin state).
    """
    where = f"{name} ({atoms.get_chemical_formula()})"
    bad = np.flatnonzero(~np.isfinite(atoms.positions).all(axis=1))
    if bad.size:
        raise ConfigurationError(f"{where}: positions of atom(s) {_atoms(bad)} are not finite (NaN or inf); "
                                 "drop this frame (it comes from a run that blew up)")
    if not np.isfinite(atoms.cell.array).all():
        raise ConfigurationError(f"{where}: the cell is not finite ({atoms.cell.tolist()}); drop this frame")
    bad = np.flatnonzero((atoms.numbers < 1) | (atoms.numbers >= len(chemical_symbols)))
    if bad.size:
        raise ConfigurationError(
            f"{where}: atom(s) {_atoms(bad)} have atomic number(s) {sorted(set(atoms.numbers[bad].tolist()))}, "
            "not an element; give every atom a real element (a dummy atom 'X' cannot be labelled)")
    reference.check(atoms)
    _check_overlaps(atoms, checks.min_distance, where)
    if checks.check_types and "atom_types" in atoms.arrays:
        _check_types(atoms, where)


def _check_overlaps(atoms: Atoms, min_distance: float, where: str) -> None:
    if atoms.pbc.any() and atoms.cell.rank < 3:
        raise ConfigurationError(f"{where}: periodic along {atoms.pbc.tolist()} without a 3D cell; set the cell")
    i, j, d = neighbor_list("ijd", atoms, min_distance, self_interaction=False)
    close = i < j
    if not close.any():
        return
    pairs = ", ".join(f"{a}-{b} at {r:.2f} Å" for a, b, r in list(zip(i[close], j[close], d[close]))[:_SHOWN])
    more = " ..." if close.sum() > _SHOWN else ""
    raise ConfigurationError(f"{where}: overlapping atoms closer than {min_distance:g} Å: {pairs}{more}; remove "
                             "duplicated atoms (or the minor part of a disordered site) or drop this frame")


def _check_types(atoms: Atoms, where: str) -> None:
    from ..atomtypes import assign_atom_types

    given = np.asarray(atoms.arrays["atom_types"]).astype(str)
    try:
        found = assign_atom_types(atoms.copy())
    except AtomTypingError as exc:
        raise ConfigurationError(f"{where} carries atom types but its geometry cannot be typed ({exc}); fix the "
                                 "geometry or drop the frame") from exc
    bad = np.flatnonzero(given != found)
    if bad.size:
        shown = ", ".join(f"{k} ({given[k]}, geometry gives {found[k]})" for k in bad[:_SHOWN])
        raise ConfigurationError(
            f"{where}: atom types disagree with the geometry at {bad.size} atom(s): {shown}"
            f"{' ...' if bad.size > _SHOWN else ''}; the types belong to another structure or atom order: "
            "retype it with assign_atom_types(atoms), or delete atoms.arrays['atom_types']")


def label_problem(result: dict[str, Any], n_atoms: int, periodic: bool, checks: LabelChecks) -> str | None:
    """Why a reference's result cannot be a label (non-finite or misshapen numbers, a force over
    :attr:`LabelChecks.max_force`), or None when it can."""
    energy = np.asarray(result["energy"], dtype=float)
    if energy.shape != () or not np.isfinite(energy):
        return f"the reference returned a non-finite energy ({result['energy']})"
    forces = np.asarray(result["forces"], dtype=float)
    if forces.shape != (n_atoms, 3):
        return f"the reference returned forces of shape {forces.shape} for {n_atoms} atoms"
    bad = np.flatnonzero(~np.isfinite(forces).all(axis=1))
    if bad.size:
        return f"the reference returned non-finite forces on atom(s) {_atoms(bad)}"
    if periodic:
        stress = result["stress"]
        if stress is None or np.asarray(stress).shape not in ((6,), (3, 3)):
            return f"the reference returned no stress, or one of shape {np.shape(stress)}"
        if not np.isfinite(stress).all():
            return "the reference returned a non-finite stress"
    norms = np.linalg.norm(forces, axis=1)
    worst = int(np.argmax(norms))
    if norms[worst] > checks.max_force:
        return (f"largest force {norms[worst]:.4g} eV/Å on atom {worst} exceeds max_force = {checks.max_force:g} "
                "eV/Å (overlapping atoms or a broken calculation)")
    return None


def energy_outliers(candidates: dict[str, tuple[str, float]], accepted: dict[str, tuple[str, float]],
                    checks: LabelChecks) -> dict[str, str]:
    """The candidates whose energy per atom is further than :attr:`LabelChecks.max_energy_deviation` from the
    median of their composition.

    Parameters
    ----------
    candidates
        ``{key: (composition, energy per atom)}`` of the labels to judge.
    accepted
        The same for good labels already kept; they enter the medians but are not judged.
    checks
        The bound.

    Returns
    -------
    dict
        ``{key: reason}`` of the rejected candidates.
    """
    groups: dict[str, list[float]] = defaultdict(list)
    for composition, energy in [*candidates.values(), *accepted.values()]:
        groups[composition].append(energy)
    medians = {composition: float(np.median(values)) for composition, values in groups.items()}
    rejected = {}
    for key, (composition, energy) in candidates.items():
        deviation = energy - medians[composition]
        if abs(deviation) > checks.max_energy_deviation:
            rejected[key] = (f"energy per atom {energy:.6g} eV is {deviation:+.4g} eV/atom from the median "
                             f"{medians[composition]:.6g} eV/atom of {len(groups[composition])} {composition} labels "
                             f"(max_energy_deviation = {checks.max_energy_deviation:g} eV/atom)")
    return rejected


def _atoms(indices: np.ndarray) -> str:
    shown = ", ".join(str(k) for k in indices[:_SHOWN])
    return shown + (f" ... ({indices.size} in all)" if indices.size > _SHOWN else "")
