"""GFN1-xTB / GFN2-xTB through tblite: the embedded reference (periodic energy, forces and stress)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from ..exceptions import ReferenceMethodError
from . import Reference

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
    """

    method: str = "GFN1-xTB"
    accuracy: float = 1.0
    electronic_temperature: float = 300.0
    max_iterations: int = 250
    charge: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ReferenceMethodError(f"unknown xTB method {self.method!r}; choose one of {', '.join(METHODS)}")

    @property
    def name(self) -> str:
        return self.method

    @property
    def settings(self) -> dict[str, Any]:
        return asdict(self)

    def calculator(self) -> Calculator:
        from tblite.ase import TBLite

        return TBLite(method=self.method, accuracy=self.accuracy,
                      electronic_temperature=self.electronic_temperature,
                      max_iterations=self.max_iterations, charge=self.charge, verbosity=0,
                      cache_api=False)  # no SCF guess from the previous configuration: labels reproducible

    def check(self, atoms: Atoms) -> None:
        super().check(atoms)
        heavy = sorted({s for s, z in zip(atoms.get_chemical_symbols(), atoms.numbers) if z > MAX_Z})
        if heavy:
            raise ReferenceMethodError(f"{self.method} has no parameters for {', '.join(heavy)} (only H to Rn)")
