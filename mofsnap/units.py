"""Units and the shared defaults of the reference protocol, in one place.

Inside mofsnap everything is in ASE units (eV, Å, eV/Å³ for stress, ASE time); reports and command lines use
meV/atom, meV/Å, MPa, fs, K and cm⁻¹. The conversions below are the only ones in the package.
"""

from __future__ import annotations

from ase import units

#: 1 eV/Å³ in MPa.
EV_PER_A3_IN_MPA: float = 1.0 / units.GPa * 1e3
#: One standard atmosphere in MPa.
ATMOSPHERE_MPA: float = 0.101325
#: LAMMPS's own conversion of eV/Å³ to bar in metal units (``force->nktv2p``), used to undo its pressure.
LAMMPS_EV_PER_A3_IN_BAR: float = 1.6021765e6
#: 1 THz in cm⁻¹.
THZ_TO_CM1: float = 1e12 / (units._c * 100.0)

#: Fit weight of an energy row (per atom) relative to a force component: the reference optimum for ZIF-8.
ENERGY_WEIGHT: float = 1250.0
#: Fit weight of a stress component relative to a force component: the reference optimum for ZIF-8.
STRESS_WEIGHT: float = 3834.0


def mpa_to_ev_per_a3(pressure_MPa: float) -> float:
    """A pressure or stress in MPa as eV/Å³."""
    return pressure_MPa / EV_PER_A3_IN_MPA


def ev_per_a3_to_mpa(stress: float) -> float:
    """A pressure or stress in eV/Å³ as MPa."""
    return stress * EV_PER_A3_IN_MPA

#: The LAMMPS ``metal`` time unit (ps) in fs: time steps are written in it, velocities come in Å per it.
LAMMPS_METAL_TIME_IN_FS: float = 1000.0
