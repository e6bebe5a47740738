"""GFN1-xTB / GFN2-xTB through tblite: the embedded reference (periodic energy, forces and stress).

Each configuration gets a fresh tblite calculator, so that no SCF state of an earlier configuration reaches
it: a label is bit-for-bit the same whatever a worker computed before.  Open-shell metals get the spin
state of :mod:`mofsnap.reference.spin` (tblite's ``multiplicity``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from ..exceptions import ReferenceMethodError
from . import Reference
from .spin import unpaired_electrons

METHODS = ("GFN1-xTB", "GFN2-xTB")
MAX_Z = 86  # both GFN parametrisations cover H..Rn


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

    def check(self, atoms: Atoms) -> None:
        super().check(atoms)
        heavy = sorted({s for s, z in zip(atoms.get_chemical_symbols(), atoms.numbers) if z > MAX_Z})
        if heavy:
            raise ReferenceMethodError(f"{self.method} has no parameters for {', '.join(heavy)} (only H to Rn)")
        self.unpaired_electrons_for(atoms)
