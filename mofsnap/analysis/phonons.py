"""Harmonic phonons with phonopy from any ASE calculator: Γ frequencies, phonon DOS and partial DOS per atom type.

Force constants come from finite displacements of the structure (Γ only: the cell itself) or of a
supercell, with phonopy's symmetry reduction unless atom types split symmetry-equivalent sites. The DOS
is Gaussian-smeared on a q-point mesh; the partial DOS of each atom type is the sum of phonopy's
projected DOS of its atoms, so the partial DOS add up to the total and each integrates to 3 × its atoms.
:func:`mofsnap.plotting.vdos_vs_phonon_dos_figure` puts a harmonic DOS and an MD VDOS (anharmonic, finite
temperature) in one plot, both per atom.

Model spread (``samples=N``): the force constants, Γ frequencies and DOS are recomputed with ``N`` models drawn
from the ridge posterior of a SNAP model (:func:`mofsnap.fit.posterior.posterior_calculators`; the model needs
its ``<prefix>.snapfit.npz``), on the same displaced structures. The Γ frequencies of each model are sorted, so
mode ``k`` is the ``k``-th lowest frequency of every model; the mean and the standard deviation over the models
of each frequency and of the total DOS (on the grid of the result) are :class:`PhononSpread`. The result itself
stays the single (posterior-mean) model's.

Command (also ``python -m mofsnap.analysis.phonons``)::

    mofsnap phonons zif8.extxyz --model zif8 --d3 --supercell 1 -o phonons/
    mofsnap phonons mof5.extxyz --model mof5 --compare-vdos vdos/vdos.json -o phonons/
    mofsnap phonons mof5.extxyz --model mof5 --samples 10 -o phonons/   # ± model spread
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from tqdm import tqdm

from .. import plotting
from ..exceptions import PhononError
from ..fit.posterior import posterior_calculators
from ..results import read_result, write_result
from ..units import THZ_TO_CM1
from .vdos import atom_labels, write_spectra_csv

#: Kind and format version of the files of :meth:`PhononResult.write`.
RESULT_KIND, RESULT_VERSION = "phonons", 2


@dataclass
class PhononSpread:
    """Γ frequencies and total DOS over models drawn from the posterior of the model (mean and standard deviation).

    Attributes
    ----------
    samples, seed : int
        Number of posterior models and the seed of their draw.
    gamma_mean_cm1, gamma_std_cm1 : ndarray
        Mean and standard deviation of each Γ frequency (sorted per model) in cm⁻¹.
    total_mean, total_std : ndarray
        Mean and standard deviation of the total DOS on the result's frequency grid.
    """

    samples: int
    seed: int
    gamma_mean_cm1: np.ndarray
    gamma_std_cm1: np.ndarray
    total_mean: np.ndarray
    total_std: np.ndarray

    @classmethod
    def of(cls, gamma_cm1: np.ndarray, totals: np.ndarray, seed: int) -> PhononSpread:
        """The spread of the Γ frequencies (one row per model) and total DOS (one row per model)."""
        gamma_cm1 = np.sort(gamma_cm1, axis=1)
        return cls(len(gamma_cm1), seed, gamma_cm1.mean(axis=0), gamma_cm1.std(axis=0, ddof=1), totals.mean(axis=0),
                   totals.std(axis=0, ddof=1))


@dataclass
class PhononResult:
    """Harmonic phonons of one structure.

    Attributes
    ----------
    gamma_cm1 : ndarray
        The 3N frequencies at Γ in cm⁻¹ (imaginary modes as negative numbers).
    frequency_cm1 : ndarray
        Frequency grid of the DOS.
    total : ndarray
        Phonon DOS in states per cm⁻¹ per cell (integral 3N).
    partial : dict of str to ndarray
        DOS projected on the atoms of each type; they sum to ``total``.
    counts : dict of str to int
        Atoms of each type in the cell.
    settings : dict
        Supercell, mesh, displacement, smearing, symmetry use, number of force evaluations.
    spread : PhononSpread or None
        Model spread over posterior samples (None without samples).
    """

    gamma_cm1: np.ndarray
    frequency_cm1: np.ndarray
    total: np.ndarray
    partial: dict[str, np.ndarray]
    counts: dict[str, int]
    settings: dict = field(default_factory=dict)
    spread: PhononSpread | None = None

    @property
    def natoms(self) -> int:
        """Atoms in the cell."""
        return int(sum(self.counts.values()))

    def imaginary_modes(self, threshold_cm1: float = 10.0) -> int:
        """Γ modes below ``-threshold_cm1`` (signs of an unrelaxed structure or an unstable model)."""
        return int(np.sum(self.gamma_cm1 < -threshold_cm1))

    def write(self, path: str | Path) -> Path:
        """Write this result as a versioned JSON file; :meth:`read` gives it back exactly."""
        return write_result(path, RESULT_KIND, RESULT_VERSION, {
            "gamma_cm1": self.gamma_cm1, "frequency_cm1": self.frequency_cm1, "total": self.total,
            "partial": self.partial, "counts": self.counts, "settings": self.settings,
            "spread": None if self.spread is None else asdict(self.spread)})

    @classmethod
    def read(cls, path: str | Path) -> PhononResult:
        """Phonons written by :meth:`write`.

        Raises
        ------
        ResultFileError
            The file is missing or holds no phonons of this format version.
        """
        data = read_result(path, RESULT_KIND, RESULT_VERSION)
        spread = data["spread"]
        if spread is not None:
            spread = PhononSpread(int(spread["samples"]), int(spread["seed"]),
                                  *(np.array(spread[name], dtype=float) for name in
                                    ("gamma_mean_cm1", "gamma_std_cm1", "total_mean", "total_std")))
        return cls(np.array(data["gamma_cm1"], dtype=float), np.array(data["frequency_cm1"], dtype=float),
                   np.array(data["total"], dtype=float),
                   {label: np.array(values, dtype=float) for label, values in data["partial"].items()},
                   {label: int(n) for label, n in data["counts"].items()}, data["settings"], spread)

    def summary(self) -> dict:
        """Atoms, settings, imaginary Γ modes, the integrals of the total and partial DOS and, with a spread, the
        number of posterior models and the median and largest model spread of the Γ frequencies."""
        spread = None if self.spread is None else {
            "samples": self.spread.samples, "seed": self.spread.seed,
            "gamma_std_cm1_median": float(np.median(self.spread.gamma_std_cm1)),
            "gamma_std_cm1_max": float(self.spread.gamma_std_cm1.max())}
        return {"model_spread": spread, "natoms": self.natoms, "counts": self.counts, "settings": self.settings,
                "imaginary_modes_below_-10cm1": self.imaginary_modes(),
                "dos_integral": float(np.trapezoid(self.total, self.frequency_cm1)),
                "partial_integrals": {t: float(np.trapezoid(dos, self.frequency_cm1))
                                      for t, dos in self.partial.items()}}


def write_outputs(result: PhononResult, directory: str | Path) -> dict:
    """Write ``phonons.json`` (:meth:`PhononResult.write`), ``phonon_dos.csv``, ``phonons_summary.json``
    (:meth:`PhononResult.summary`) and ``phonon_dos.png`` (with the model spread of the total DOS as a band) into
    ``directory``, with a spread also ``gamma_modes.csv`` (each Γ frequency of the model, and the mean and model
    spread over the posterior models); return the summary."""
    out = Path(directory)
    result.write(out / "phonons.json")
    write_spectra_csv(out / "phonon_dos.csv", result.frequency_cm1, result.total, result.partial)
    summary = result.summary()
    (out / "phonons_summary.json").write_text(json.dumps(summary, indent=2))
    spread = None if result.spread is None else (result.spread.total_mean, result.spread.total_std)
    plotting.spectrum_figure(result.frequency_cm1, result.total, result.partial,
                             "phonon DOS (states / cm$^{-1}$ / cell)", out / "phonon_dos.png", spread=spread)
    if result.spread is not None:
        np.savetxt(out / "gamma_modes.csv",
                   np.column_stack([np.arange(len(result.gamma_cm1)), np.sort(result.gamma_cm1),
                                    result.spread.gamma_mean_cm1, result.spread.gamma_std_cm1]),
                   fmt=["%d", "%.6f", "%.6f", "%.6f"], delimiter=",", comments="",
                   header="mode,model_cm1,posterior_mean_cm1,model_spread_cm1")
    return summary


def _phonopy_atoms(atoms: Atoms):
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=np.array(atoms.cell),
                        scaled_positions=atoms.get_scaled_positions(), masses=atoms.get_masses())


def compute_phonons(atoms: Atoms, calculator: Calculator, *, supercell: int | tuple[int, int, int] = 1,
                    displacement: float = 0.01, mesh: int | tuple[int, int, int] | None = None,
                    sigma_cm1: float = 5.0, subtract_residual_forces: bool = True, by_element: bool = False,
                    progress: bool = True, samples: int = 0, seed: int = 0) -> PhononResult:
    """Harmonic phonons of a periodic structure with phonopy and an ASE calculator.

    Parameters
    ----------
    atoms : Atoms
        The (relaxed) structure; ``arrays["atom_types"]`` gives the types of the partial DOS and is
        passed on to the calculator (types are assigned on the fly when absent).
    calculator : Calculator
        Any ASE calculator with forces.
    supercell : int or 3 ints
        Repetitions of the cell for the force constants; 1 is a Γ-point calculation of the cell itself.
    displacement : float
        Finite displacement in Å (plus and minus).
    mesh : int or 3 ints, optional
        Γ-centred q-point mesh of the DOS; defaults to the supercell (exact q-points of the supercell).
    sigma_cm1 : float
        Gaussian smearing of the DOS in cm⁻¹.
    subtract_residual_forces : bool
        Subtract the forces of the undisplaced supercell (removes the error of a not fully relaxed
        structure to first order).
    by_element : bool
        Partial DOS per element instead of per atom type.
    progress : bool
        Show a progress bar over the displaced supercells.
    samples : int
        Posterior models for the model spread (module docstring; 0: none, else at least 2). Each costs the
        force evaluations of the calculation again.
    seed : int
        Seed of the posterior draw.

    Returns
    -------
    PhononResult

    Raises
    ------
    PhononError
        Not periodic, or bad supercell, mesh, displacement or smearing.
    FitError
        ``samples`` without a posterior of the calculator's model (no SNAP model, or no ``.snapfit.npz``).
    """
    from phonopy import Phonopy

    if not atoms.pbc.all():
        raise PhononError("phonons need a structure periodic in all three directions")
    repeat = np.broadcast_to(np.asarray(supercell, dtype=int), (3,))
    qmesh = repeat if mesh is None else np.broadcast_to(np.asarray(mesh, dtype=int), (3,))
    if np.any(repeat < 1) or np.any(qmesh < 1) or displacement <= 0 or sigma_cm1 <= 0:
        raise PhononError(f"need supercell >= 1, mesh >= 1, displacement > 0 and sigma > 0 "
                          f"(got {repeat.tolist()}, {qmesh.tolist()}, {displacement} Å, {sigma_cm1} cm⁻¹)")
    models = [calculator, *(posterior_calculators(calculator, samples, seed) if samples else [])]
    types = atom_labels(atoms, by_element)
    calculator_types = atoms.arrays.get("atom_types") if by_element else types  # what the forces depend on
    sites = types if calculator_types is None else calculator_types
    phonon = Phonopy(_phonopy_atoms(atoms), supercell_matrix=np.diag(repeat), primitive_matrix="P")
    symmetric_sites = phonon.primitive_symmetry.get_map_atoms()
    use_symmetry = bool(np.all(sites == sites[symmetric_sites]))
    if not use_symmetry:  # atom types distinguish sites that are equivalent by geometry alone
        phonon = Phonopy(_phonopy_atoms(atoms), supercell_matrix=np.diag(repeat), primitive_matrix="P",
                         is_symmetry=False)
    phonon.generate_displacements(distance=displacement, is_plusminus=True, is_diagonal=False)
    cell_index = np.array([phonon.supercell.u2u_map[s] for s in phonon.supercell.s2u_map])

    def forces_of(structure, model: Calculator) -> np.ndarray:
        image = Atoms(structure.symbols, cell=structure.cell, scaled_positions=structure.scaled_positions,
                      pbc=True)
        if calculator_types is not None:
            image.new_array("atom_types", np.asarray(calculator_types)[cell_index])
        image.calc = model
        return image.get_forces()

    displaced = phonon.supercells_with_displacements
    force_constants, gammas, extremes = [], [], []
    for k, model in enumerate(models):
        residual = forces_of(phonon.supercell, model) if subtract_residual_forces else 0.0
        what = "phonon displacements" if k == 0 else f"posterior model {k}/{samples}"
        phonon.forces = np.array([forces_of(s, model) - residual
                                  for s in tqdm(displaced, desc=what, disable=not progress)])
        phonon.produce_force_constants()
        phonon.symmetrize_force_constants()
        if k:
            model.close()  # a posterior model's LAMMPS instance
        force_constants.append(phonon.force_constants.copy())
        gammas.append(phonon.run_qpoints([[0.0, 0.0, 0.0]]).frequencies[0] * THZ_TO_CM1)
        phonon.run_mesh(qmesh.tolist(), is_gamma_center=True, with_eigenvectors=True, is_mesh_symmetry=False)
        extremes += [phonon.mesh.frequencies.min(), phonon.mesh.frequencies.max()]
    sigma = sigma_cm1 / THZ_TO_CM1  # one grid (THz) holding the DOS of every model
    low, high = min(extremes) - 5 * sigma, max(extremes) + 5 * sigma
    per_atom = []
    for constants in force_constants:
        phonon.force_constants = constants
        phonon.run_mesh(qmesh.tolist(), is_gamma_center=True, with_eigenvectors=True, is_mesh_symmetry=False)
        phonon.run_projected_dos(sigma=sigma, freq_min=low, freq_max=high, freq_pitch=sigma / 5,
                                 use_tetrahedron_method=False)
        per_atom.append(np.asarray(phonon.projected_dos.projected_dos) / THZ_TO_CM1)
    grid = np.asarray(phonon.projected_dos.frequency_points) * THZ_TO_CM1
    partial = {t: per_atom[0][types == t].sum(axis=0) for t in dict.fromkeys(types.tolist())}
    settings = {"supercell": repeat.tolist(), "mesh": qmesh.tolist(), "displacement_A": displacement,
                "sigma_cm1": sigma_cm1, "symmetry": use_symmetry, "force_evaluations": len(displaced) + 1,
                "subtract_residual_forces": subtract_residual_forces}
    spread = None if not samples else PhononSpread.of(np.array(gammas[1:]),
                                                      np.array([d.sum(axis=0) for d in per_atom[1:]]), seed)
    return PhononResult(gammas[0], grid, per_atom[0].sum(axis=0), partial,
                        {t: int(np.sum(types == t)) for t in partial}, settings, spread)


if __name__ == "__main__":
    from mofsnap.cli import run_as_module

    run_as_module("phonons")
