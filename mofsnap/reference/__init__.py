"""Reference methods that label configurations with energy, forces and stress.

A *reference* is a small, picklable specification (a frozen dataclass): it travels to process-pool or Dask
workers, and only there builds its ASE calculator with :meth:`Reference.calculator`.  Its :attr:`settings`
(everything that changes the numbers, nothing about how the program is run) are hashed into
:attr:`settings_hash`, which keys the labelling store.

Available references: :class:`CP2K` (DFT presets of the reference work), :class:`XTB` (GFN1/GFN2-xTB through
tblite, the embedded default) and :class:`ASEReference` (any picklable ASE calculator factory).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ..exceptions import ReferenceMethodError


class Reference(ABC):
    """Picklable specification of a reference method.

    Subclasses are frozen dataclasses implementing :attr:`name`, :attr:`settings` and :meth:`calculator`;
    they may extend :meth:`check` (per configuration), :meth:`check_environment` (per worker) and
    :meth:`unpaired_electrons_for` (spin state per configuration).
    """

    periodic: bool = True
    #: Whether a worker may keep one calculator for many configurations (False when a calculator carries
    #: state, such as an SCF guess, from one configuration into the next).
    reusable: bool = True

    @property
    @abstractmethod
    def name(self) -> str:
        """Short human-readable name of the method, e.g. ``"GFN1-xTB"`` or ``"CP2K/PBE"``."""

    @property
    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Every setting that changes the computed numbers (JSON-serialisable)."""

    @abstractmethod
    def calculator(self, atoms: Atoms | None = None) -> Calculator:
        """A fresh ASE calculator for this reference (built on the worker that runs it), set up for the spin
        state of ``atoms`` when given (closed-shell otherwise)."""

    @property
    def includes_dispersion(self) -> bool:
        """Whether the method's energies already contain London dispersion (GFN-xTB's D3/D4, CP2K with D3).

        A SNAP model trained on such labels has the dispersion in it: adding D3 at MD time would count it twice.
        """
        return False

    def unpaired_electrons_for(self, atoms: Atoms) -> int:
        """Unpaired electrons the calculation of ``atoms`` carries (default: 0, closed-shell)."""
        return 0

    @property
    def settings_hash(self) -> str:
        """Stable 16-hex-digit SHA-256 of :attr:`name` and :attr:`settings` (sorted JSON)."""
        text = json.dumps({"name": self.name, "settings": self.settings}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def check(self, atoms: Atoms) -> None:
        """Raise :class:`ReferenceMethodError` if this reference cannot label ``atoms``.

        The base check requires, for a periodic method, periodic boundaries in all three directions and a
        cell of non-zero volume.
        """
        if not self.periodic:
            return
        if not np.all(atoms.pbc):
            raise ReferenceMethodError(
                f"{self.name} is a periodic method but the configuration {atoms.get_chemical_formula()} has "
                f"pbc={atoms.pbc.tolist()}; set a cell and atoms.pbc = True")
        if atoms.cell.rank < 3 or abs(atoms.cell.volume) < 1e-6:
            raise ReferenceMethodError(
                f"{self.name} is a periodic method but the configuration {atoms.get_chemical_formula()} has no "
                f"3D cell (cell = {atoms.cell.tolist()})")

    def electronic_warning(self, atoms: Atoms) -> str | None:
        """A warning about the electronic structure this reference finds for ``atoms`` before a campaign starts
        on them (at most one calculation), or None: nothing to say, or no cheap look (the default)."""
        return None

    def check_environment(self) -> None:
        """Raise :class:`ReferenceUnavailableError` if the program cannot run here (default: always fine)."""

    def abort(self, calculator: Calculator) -> None:
        """Stop a running calculation of ``calculator`` from another thread (timeouts); default: nothing."""

    def check_picklable(self) -> None:
        """Raise :class:`ReferenceMethodError` if the specification cannot be sent to another process."""
        try:
            pickle.dumps(self)
        except Exception as exc:  # pickle raises several unrelated types
            raise ReferenceMethodError(
                f"reference {self.name!r} cannot be pickled ({exc}); use a module-level function or class "
                "(not a lambda or local function) as calculator factory") from exc


@dataclass(frozen=True)
class ASEReference(Reference):
    """Any ASE calculator as a reference.

    Parameters
    ----------
    factory
        Picklable callable returning a fresh ASE calculator (a module-level function, a calculator class, or
        :func:`functools.partial` of one).
    method_name
        Name recorded as provenance, e.g. ``"EMT"``.
    method_settings
        Settings that define the numbers (hashed for the store key); include everything that matters.
    periodic
        Whether configurations must carry a 3D periodic cell.
    dispersion
        Whether the calculator's energies contain London dispersion (see :attr:`includes_dispersion`).
    """

    factory: Callable[[], Calculator]
    method_name: str
    method_settings: dict[str, Any] = field(default_factory=dict)
    periodic: bool = True
    dispersion: bool = False

    @property
    def includes_dispersion(self) -> bool:
        return self.dispersion

    @property
    def name(self) -> str:
        return self.method_name

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.method_settings)

    def calculator(self, atoms: Atoms | None = None) -> Calculator:
        return self.factory()


from .cp2k import CP2K, PRESETS  # noqa: E402  (the subclasses need the base class above)
from .xtb import XTB  # noqa: E402


def _xtb_method(method: str, mpi_ranks: int, omp_threads: int, unpaired_electrons: int | None) -> XTB:
    return XTB(method, unpaired_electrons=unpaired_electrons)


def _cp2k_preset(preset: str, mpi_ranks: int, omp_threads: int, unpaired_electrons: int | None) -> CP2K:
    return CP2K(preset, mpi_ranks=mpi_ranks, omp_threads=omp_threads, unpaired_electrons=unpaired_electrons)


#: The ready references by name, as commands and settings files spell them: name -> factory of
#: ``(mpi_ranks, omp_threads, unpaired_electrons)`` (the parallel layout matters to CP2K only).
REFERENCES: dict[str, Callable[[int, int, int | None], Reference]] = {
    "gfn1-xtb": partial(_xtb_method, "GFN1-xTB"),
    "gfn2-xtb": partial(_xtb_method, "GFN2-xTB"),
    **{f"cp2k-{preset}": partial(_cp2k_preset, preset) for preset in PRESETS},
}
#: The reference of commands and settings that name none: GFN1-xTB, embedded and quick.
DEFAULT_REFERENCE = "gfn1-xtb"


def reference_by_name(name: str, mpi_ranks: int = 1, omp_threads: int = 1,
                      unpaired_electrons: int | None = None) -> Reference:
    """A ready reference by name (a key of :data:`REFERENCES`), with its parallel layout and spin choice.

    Parameters
    ----------
    name
        A key of :data:`REFERENCES`.
    mpi_ranks, omp_threads
        Parallel layout of one calculation (CP2K only).
    unpaired_electrons
        Unpaired electrons of every cell; ``None`` follows the per-metal default of
        :mod:`mofsnap.reference.spin`.

    Raises
    ------
    ReferenceMethodError
        For a name not in :data:`REFERENCES`.
    """
    if name not in REFERENCES:
        raise ReferenceMethodError(f"unknown reference {name!r}; choose one of {', '.join(REFERENCES)}")
    return REFERENCES[name](mpi_ranks, omp_threads, unpaired_electrons)


__all__ = ["ASEReference", "CP2K", "DEFAULT_REFERENCE", "REFERENCES", "Reference", "XTB", "reference_by_name"]
