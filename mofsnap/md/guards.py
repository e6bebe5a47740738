"""Guards of an MD run: called after every step, a reason string stops the run cleanly."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms

#: A guard gets the atoms after each step and the total step number; a non-empty string stops the run.
Guard = Callable[[Atoms, int], "str | None"]


def blowup_guard(max_force: float = 20.0, max_temperature_K: float = 3000.0) -> Guard:
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
        forces), else None.
    """

    def guard(atoms: Atoms, step: int) -> str | None:
        forces = atoms.get_forces()  # (not the energy: MD steps need forces only, which can be cheaper)
        if not np.all(np.isfinite(forces)):
            return f"non-finite forces at step {step}"
        fmax = float(np.max(np.linalg.norm(forces, axis=1)))
        if fmax > max_force:
            return f"force {fmax:.1f} eV/Å > {max_force} eV/Å at step {step}"
        temperature = atoms.get_temperature()
        if temperature > max_temperature_K:
            return f"temperature {temperature:.0f} K > {max_temperature_K} K at step {step}"
        return None

    return guard
