"""Guards of an MD run: called after every step, a reason string stops the run cleanly.

:class:`MDGuard` is the default guard of :func:`mofsnap.md.run_md`: its thresholds are fixed here, and
:meth:`MDGuard.start` binds them to a run (its starting volume, bonds and target temperature). Each reason names
the guard, the step and the atoms (index and type) concerned, e.g.
``force guard: 153.2 eV/Å > 20 eV/Å on atom 17 (H1a) at step 42``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..exceptions import MDError, TopologyError
from ..topology import BROKEN_BOND_TOLERANCE, Topology

log = logging.getLogger(__name__)

#: A guard gets the atoms after each step and the total step number; a non-empty string stops the run.
Guard = Callable[[Atoms, int], "str | None"]

#: Atoms named at most in a reason.
NAMED_ATOMS = 5


def describe_atoms(atoms: Atoms, indices: np.ndarray) -> str:
    """``atom 17 (H1a)`` or ``atoms 3 (C1), 9 (N3a) and 4 more``."""
    indices = np.asarray(indices, dtype=int).ravel()
    types = atoms.arrays.get("atom_types", atoms.get_chemical_symbols())
    names = ", ".join(f"{i} ({types[i]})" for i in indices[:NAMED_ATOMS])
    more = f" and {len(indices) - NAMED_ATOMS} more" if len(indices) > NAMED_ATOMS else ""
    return f"atom{'s' if len(indices) > 1 else ''} {names}{more}"


def _non_finite(atoms: Atoms, step: int) -> str | None:
    for what, values in (("cell", atoms.cell.array), ("positions", atoms.positions),
                         ("momenta", atoms.get_momenta()), ("forces", atoms.get_forces())):
        bad = ~np.isfinite(values)
        if bad.any():
            where = "" if what == "cell" else f" on {describe_atoms(atoms, np.flatnonzero(bad.any(axis=1)))}"
            return f"non-finite guard: NaN or infinite {what}{where} at step {step}"
    return None


def _force(atoms: Atoms, step: int, max_force: float) -> str | None:
    norms = np.linalg.norm(atoms.get_forces(), axis=1)
    worst = int(np.argmax(norms))
    if norms[worst] > max_force:
        return (f"force guard: {norms[worst]:.1f} eV/Å > {max_force:g} eV/Å on {describe_atoms(atoms, [worst])} "
                f"at step {step}")
    return None


def _temperature(atoms: Atoms, step: int, limit_K: float) -> str | None:
    temperature = atoms.get_temperature()
    if temperature > limit_K:
        kinetic = 0.5 * np.sum(atoms.get_momenta() ** 2, axis=1) / atoms.get_masses()
        return (f"temperature guard: {temperature:.0f} K > {limit_K:.0f} K at step {step} (fastest "
                f"{describe_atoms(atoms, [int(np.argmax(kinetic))])})")
    return None


@dataclass(frozen=True)
class MDGuard:
    """The default guard of :func:`mofsnap.md.run_md`: stops a run whose model has left its domain.

    Checked after every step, in this order: non-finite cell, positions, momenta or forces; the largest force;
    the temperature; the volume against the starting volume; and, when the atoms carry
    ``arrays["atom_types"]``, the bonds of the starting structure (:class:`mofsnap.topology.Topology`).

    Parameters
    ----------
    max_force : float
        Largest tolerated force on any atom (eV/Å).
    max_temperature_K : float, optional
        Largest tolerated instantaneous temperature (K); by default ``temperature_factor * T_target +
        temperature_margin_K`` with the run's target (NVE: initial) temperature: 1100 K for a 300 K run.
    temperature_factor, temperature_margin_K : float
        The relative temperature limit.
    max_volume_ratio : float
        The volume may grow or shrink by at most this factor from the start (NPT).
    bond_tolerance : float or None
        A bond of the starting structure longer than this times its starting length stops the run; None
        switches the bond check off.
    """

    max_force: float = 20.0
    max_temperature_K: float | None = None
    temperature_factor: float = 2.0
    temperature_margin_K: float = 500.0
    max_volume_ratio: float = 1.5
    bond_tolerance: float | None = BROKEN_BOND_TOLERANCE

    def __post_init__(self) -> None:
        checks = {"max_force": self.max_force > 0, "max_temperature_K": (self.max_temperature_K or 1) > 0,
                  "temperature_factor": self.temperature_factor >= 1,
                  "temperature_margin_K": self.temperature_margin_K >= 0,
                  "max_volume_ratio": self.max_volume_ratio > 1, "bond_tolerance": (self.bond_tolerance or 2) > 1}
        for name, ok in checks.items():
            value = getattr(self, name)
            if not ok or not np.isfinite(value if value is not None else 0.0):
                raise MDError(f"MDGuard {name} = {value!r} is out of range (max_force, max_temperature_K > 0; "
                              "temperature_factor >= 1; temperature_margin_K >= 0; max_volume_ratio, "
                              "bond_tolerance > 1)")

    def temperature_limit(self, target_K: float) -> float:
        """The temperature above which the run stops, for a run at ``target_K``."""
        if self.max_temperature_K is not None:
            return self.max_temperature_K
        return self.temperature_factor * target_K + self.temperature_margin_K

    def start(self, atoms: Atoms, target_temperature_K: float) -> Guard:
        """The guard of one run starting from ``atoms`` (its volume and, with atom types, its bonds)."""
        volume0 = atoms.get_volume() if atoms.pbc.all() else None
        topology = None
        if self.bond_tolerance is not None and "atom_types" in atoms.arrays:
            try:
                topology = Topology.from_atoms(atoms)
            except TopologyError as error:
                log.info("bond guard off: the starting structure has no usable bonds (%s)", error)
        temperature_limit = self.temperature_limit(target_temperature_K)

        def guard(current: Atoms, step: int) -> str | None:
            reason = (_non_finite(current, step) or _force(current, step, self.max_force)
                      or _temperature(current, step, temperature_limit))
            if reason is None and volume0 is not None:
                ratio = current.get_volume() / volume0
                if not 1 / self.max_volume_ratio <= ratio <= self.max_volume_ratio:
                    reason = (f"volume guard: volume {ratio:.3g} x the starting volume (allowed "
                              f"1/{self.max_volume_ratio:g} to {self.max_volume_ratio:g}) at step {step}")
            if reason is None and topology is not None:
                broken = topology.broken_bonds(current.positions, current.cell.array, self.bond_tolerance)
                if broken.any():
                    pairs = topology.bonds[broken]
                    reason = (f"bond guard: {int(broken.sum())} bond(s) longer than {self.bond_tolerance:g} x their "
                              f"starting length, between {describe_atoms(current, np.unique(pairs))} at step {step}")
            return reason

        return guard


def blowup_guard(max_force: float = MDGuard.max_force, max_temperature_K: float = 3000.0) -> Guard:
    """A guard stopping a run whose forces or temperature run away (for active learning).

    Parameters
    ----------
    max_force : float
        Largest tolerated force on any atom in eV/Å.
    max_temperature_K : float
        Largest tolerated instantaneous temperature in K.

    Returns
    -------
    Guard
        ``guard(atoms, step)`` returning a reason string when the run must stop (also for non-finite
        positions, momenta or forces), else None.
    """

    def guard(atoms: Atoms, step: int) -> str | None:
        return (_non_finite(atoms, step) or _force(atoms, step, max_force)
                or _temperature(atoms, step, max_temperature_K))

    return guard
