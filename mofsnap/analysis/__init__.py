"""Analyses of MD runs with any ASE calculator, each with Python functions, a result type that round-trips
through ``write(path)``/``read(path)``, and a ``mofsnap`` command (in :mod:`mofsnap.cli`).

- :mod:`mofsnap.analysis.thermal_expansion` (``mofsnap thermal-expansion``): lattice parameters vs temperature
  and pressure from NPT runs, linear thermal-expansion coefficient, bulk modulus.
- :mod:`mofsnap.analysis.vdos` (``mofsnap vdos``): vibrational density of states (total and per atom type)
  from velocities.
- :mod:`mofsnap.analysis.metadynamics` (``mofsnap metadynamics``): well-tempered metadynamics through PLUMED.
- :mod:`mofsnap.analysis.phonons` (``mofsnap phonons``): harmonic phonons with phonopy, phonon DOS per atom
  type, VDOS comparison.
"""
