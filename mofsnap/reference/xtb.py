"""GFN1-xTB / GFN2-xTB through tblite: the embedded reference (periodic energy, forces and stress).

Each configuration gets a fresh tblite calculator, so that no SCF state of an earlier configuration reaches
it: a label is bit-for-bit the same whatever a worker computed before.  Open-shell metals get the spin
state of :mod:`mofsnap.reference.spin` (tblite's ``multiplicity``). :meth:`XTB.electronic_warning` looks at
the gap between occupied and empty states once, before a campaign: a closed-shell framework with almost none
is most often one whose database entry lost its counter-ions or terminal ligands.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.units import Bohr, Hartree, kB

from ..exceptions import ReferenceMethodError
from . import Reference
from .spin import unpaired_electrons

METHODS = ("GFN1-xTB", "GFN2-xTB")
MAX_Z = 86  # both GFN parametrisations cover H..Rn
#: A closed-shell structure whose gap between occupied and empty states is below this (eV) gets a warning. MOFs
#: are insulators: GFN1-xTB gives 1.9-4.8 eV for the zoo, and 0.13 eV for a Sc3O-trimer framework whose
#: terminal ligands the database removed (2.1 eV once the cell carries their charge, +2).
SMALL_GAP_EV = 0.5
#: Occupations (per spatial orbital, 0 to 2) further than this from 0 and 2 count as partial.
PARTIAL_OCCUPATION = 0.02


@dataclass(frozen=True)
class XTB(Reference):
    """Extended tight binding (tblite) as reference.

    Parameters
    ----------
    method
        ``"GFN1-xTB"`` (default) or ``"GFN2-xTB"``.
    accuracy
        tblite numerical accuracy (smaller is tighter).
    electronic_temperature
        Fermi smearing temperature in K.
    max_iterations
        SCF iteration limit; a non-converged SCF is an error (a failed label).
    charge
        Total charge of the cell.
    unpaired_electrons
        Unpaired electrons of the cell (multiplicity - 1); ``None`` follows the per-metal default of
        :mod:`mofsnap.reference.spin` (closed-shell without open-shell metals; refused when ambiguous).
    """

    reusable = False  # a calculator reused across configurations carries its SCF state along

    method: str = "GFN1-xTB"
    accuracy: float = 1.0
    electronic_temperature: float = 300.0
    max_iterations: int = 250
    charge: int = 0
    unpaired_electrons: int | None = None

    @property
    def includes_dispersion(self) -> bool:
        """Always True: GFN1-xTB carries D3(BJ) dispersion and GFN2-xTB D4 as part of the method."""
        return True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ReferenceMethodError(f"unknown xTB method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.unpaired_electrons is not None and self.unpaired_electrons < 0:
            raise ReferenceMethodError(f"unpaired_electrons must be >= 0, got {self.unpaired_electrons}")

    @property
    def name(self) -> str:
        return self.method

    @property
    def settings(self) -> dict[str, Any]:
        settings = asdict(self)
        if self.unpaired_electrons is None:  # the default rule adds nothing: older stores keep their keys
            del settings["unpaired_electrons"]
        return settings

    def unpaired_electrons_for(self, atoms: Atoms) -> int:
        return unpaired_electrons(atoms, self.unpaired_electrons, self.charge)

    def calculator(self, atoms: Atoms | None = None) -> Calculator:
        from tblite.ase import TBLite

        unpaired = 0 if atoms is None else self.unpaired_electrons_for(atoms)
        return TBLite(method=self.method, accuracy=self.accuracy,
                      electronic_temperature=self.electronic_temperature, max_iterations=self.max_iterations,
                      charge=self.charge, multiplicity=unpaired + 1, verbosity=0, cache_api=False)

    def electronic_warning(self, atoms: Atoms) -> str | None:
        """For a closed-shell count, one calculation of ``atoms``: a warning when the gap between the highest
        occupied and the lowest empty state is below :data:`SMALL_GAP_EV`, as in a metal or a radical (open-shell
        counts: None without a calculation)."""
        from tblite.interface import Calculator as TBLiteCalculator

        if self.unpaired_electrons_for(atoms) != 0:
            return None
        calculator = TBLiteCalculator(self.method, atoms.numbers, atoms.positions / Bohr, float(self.charge), 0,
                                      atoms.cell.array / Bohr, np.asarray(atoms.pbc))
        for key, value in (("accuracy", self.accuracy), ("temperature", self.electronic_temperature * kB / Hartree),
                           ("max-iter", self.max_iterations), ("verbosity", 0)):
            calculator.set(key, value)
        result = calculator.singlepoint()
        energies = np.asarray(result.get("orbital-energies")).reshape(-1) * Hartree
        occupations = np.asarray(result.get("orbital-occupations")).reshape(-1, len(energies)).sum(axis=0)
        gap = energies[occupations < 1.0].min() - energies[occupations >= 1.0].max()
        partial = int(((occupations > PARTIAL_OCCUPATION) & (occupations < 2.0 - PARTIAL_OCCUPATION)).sum())
        if gap >= SMALL_GAP_EV:
            return None
        return (f"{self.method} finds almost no gap between the occupied and the empty states of "
                f"{atoms.get_chemical_formula()} counted closed-shell ({gap:.2f} eV, {partial} orbitals partly "
                f"occupied), as in a metal or a radical, while MOFs are insulators: if the database removed "
                f"counter-ions or terminal ligands, the cell is charged and its labels are not the material's "
                f"(restore them); if metals are open-shell, give --unpaired-electrons")

    def check(self, atoms: Atoms) -> None:
        super().check(atoms)
        heavy = sorted({s for s, z in zip(atoms.get_chemical_symbols(), atoms.numbers) if z > MAX_Z})
        if heavy:
            raise ReferenceMethodError(f"{self.method} has no parameters for {', '.join(heavy)} (only H to Rn)")
        self.unpaired_electrons_for(atoms)
