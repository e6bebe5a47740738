"""Analyses of MD runs with any ASE calculator, each a module with a Python function and a command.

- :mod:`mofsnap.analysis.thermal_expansion`: lattice parameters vs temperature and pressure from NPT runs,
  linear thermal-expansion coefficient, bulk modulus.
- :mod:`mofsnap.analysis.vdos`: vibrational density of states (total and per atom type) from velocities.
- :mod:`mofsnap.analysis.metadynamics`: well-tempered metadynamics through PLUMED.
- :mod:`mofsnap.analysis.phonons`: harmonic phonons with phonopy, phonon DOS per atom type, VDOS comparison.
"""
