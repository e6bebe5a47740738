"""Harmonic phonons with phonopy from any ASE calculator: Γ frequencies, phonon DOS and partial DOS per atom type.

Force constants come from finite displacements of the structure (Γ only: the cell itself) or of a
supercell, with phonopy's symmetry reduction unless atom types split symmetry-equivalent sites. The DOS
is Gaussian-smeared on a q-point mesh; the partial DOS of each atom type is the sum of phonopy's
projected DOS of its atoms, so the partial DOS add up to the total and each integrates to 3 × its atoms.
:func:`plot_vdos_vs_phonon_dos` puts a harmonic DOS and an MD VDOS (anharmonic, finite temperature) in
one plot, both per atom.

Command::

    python -m mofsnap.analysis.phonons zif8.extxyz --model zif8 --d3 --supercell 1 -o phonons/
    python -m mofsnap.analysis.phonons mof5.extxyz --model mof5 --compare-vdos vdos/ -o phonons/
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from tqdm import tqdm

from ..exceptions import PhononError
from ..md import add_calculator_arguments, calculator_from_args, read_structure
from .vdos import THZ_TO_CM1, VDOSResult, atom_labels, plot_spectra, write_spectra_csv


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
    """

    gamma_cm1: np.ndarray
    frequency_cm1: np.ndarray
    total: np.ndarray
    partial: dict[str, np.ndarray]
    counts: dict[str, int]
    settings: dict = field(default_factory=dict)

    @property
    def natoms(self) -> int:
        """Atoms in the cell."""
        return int(sum(self.counts.values()))

    def imaginary_modes(self, threshold_cm1: float = 10.0) -> int:
        """Γ modes below ``-threshold_cm1`` (signs of an unrelaxed structure or an unstable model)."""
        return int(np.sum(self.gamma_cm1 < -threshold_cm1))

    def write(self, directory: str | Path) -> dict:
        """Write ``phonons.json``, ``phonon_dos.csv`` and ``phonon_dos.png``; return the JSON content."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        write_spectra_csv(out / "phonon_dos.csv", self.frequency_cm1, self.total, self.partial)
        summary = {"natoms": self.natoms, "counts": self.counts, "settings": self.settings,
                   "gamma_cm1": self.gamma_cm1.round(3).tolist(),
                   "gamma_THz": (self.gamma_cm1 / THZ_TO_CM1).round(5).tolist(),
                   "imaginary_modes_below_-10cm1": self.imaginary_modes(),
                   "dos_integral": float(np.trapezoid(self.total, self.frequency_cm1)),
                   "partial_integrals": {t: float(np.trapezoid(dos, self.frequency_cm1))
                                         for t, dos in self.partial.items()}}
        (out / "phonons.json").write_text(json.dumps(summary, indent=2))
        plot_phonon_dos(self, out / "phonon_dos.png")
        return summary


def _phonopy_atoms(atoms: Atoms):
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=np.array(atoms.cell),
                        scaled_positions=atoms.get_scaled_positions(), masses=atoms.get_masses())


def compute_phonons(atoms: Atoms, calculator: Calculator, *, supercell: int | tuple[int, int, int] = 1,
                    displacement: float = 0.01, mesh: int | tuple[int, int, int] | None = None,
                    sigma_cm1: float = 5.0, subtract_residual_forces: bool = True, by_element: bool = False,
                    progress: bool = True) -> PhononResult:
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

    Returns
    -------
    PhononResult
    """
    from phonopy import Phonopy

    if not atoms.pbc.all():
        raise PhononError("phonons need a structure periodic in all three directions")
    repeat = np.broadcast_to(np.asarray(supercell, dtype=int), (3,))
    qmesh = repeat if mesh is None else np.broadcast_to(np.asarray(mesh, dtype=int), (3,))
    if np.any(repeat < 1) or np.any(qmesh < 1) or displacement <= 0 or sigma_cm1 <= 0:
        raise PhononError(f"need supercell >= 1, mesh >= 1, displacement > 0 and sigma > 0 "
                          f"(got {repeat.tolist()}, {qmesh.tolist()}, {displacement} Å, {sigma_cm1} cm⁻¹)")
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

    def forces_of(structure) -> np.ndarray:
        image = Atoms(structure.symbols, cell=structure.cell, scaled_positions=structure.scaled_positions,
                      pbc=True)
        if calculator_types is not None:
            image.new_array("atom_types", np.asarray(calculator_types)[cell_index])
        image.calc = calculator
        return image.get_forces()

    displaced = phonon.supercells_with_displacements
    residual = forces_of(phonon.supercell) if subtract_residual_forces else 0.0
    phonon.forces = np.array([forces_of(s) - residual
                              for s in tqdm(displaced, desc="phonon displacements", disable=not progress)])
    phonon.produce_force_constants()
    phonon.symmetrize_force_constants()

    gamma = phonon.run_qpoints([[0.0, 0.0, 0.0]]).frequencies[0] * THZ_TO_CM1
    phonon.run_mesh(qmesh.tolist(), is_gamma_center=True, with_eigenvectors=True, is_mesh_symmetry=False)
    frequencies = phonon.mesh.frequencies * THZ_TO_CM1
    sigma = sigma_cm1 / THZ_TO_CM1
    low, high = frequencies.min() / THZ_TO_CM1 - 5 * sigma, frequencies.max() / THZ_TO_CM1 + 5 * sigma
    phonon.run_projected_dos(sigma=sigma, freq_min=low, freq_max=high, freq_pitch=sigma / 5,
                             use_tetrahedron_method=False)
    grid = np.asarray(phonon.projected_dos.frequency_points) * THZ_TO_CM1
    per_atom = np.asarray(phonon.projected_dos.projected_dos) / THZ_TO_CM1
    partial = {t: per_atom[types == t].sum(axis=0) for t in dict.fromkeys(types.tolist())}
    settings = {"supercell": repeat.tolist(), "mesh": qmesh.tolist(), "displacement_A": displacement,
                "sigma_cm1": sigma_cm1, "symmetry": use_symmetry, "force_evaluations": len(displaced) + 1,
                "subtract_residual_forces": subtract_residual_forces}
    return PhononResult(gamma, grid, per_atom.sum(axis=0), partial, {t: int(np.sum(types == t)) for t in partial},
                        settings)


def plot_phonon_dos(result: PhononResult, png: str | Path) -> None:
    """Phonon DOS and partial DOS per type (cm⁻¹ below, THz above)."""
    plot_spectra(result.frequency_cm1, result.total, result.partial, "phonon DOS (states / cm$^{-1}$ / cell)", png)


def plot_vdos_vs_phonon_dos(vdos: VDOSResult, phonons: PhononResult, png: str | Path) -> None:
    """MD VDOS and harmonic phonon DOS in one plot, both per atom (each integrates to 3).

    One panel for the totals and one per atom type present in both.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vdos_scale = 3.0 / vdos.dof  # the VDOS integrates to 3N - removed
    common = [t for t in phonons.partial if t in vdos.partial]
    common = common if len(common) > 1 else []  # one type: its panel would repeat the total
    fig, axes = plt.subplots(1 + len(common), 1, figsize=(8, 2.2 * (1 + len(common)) + 0.8), sharex=True,
                             squeeze=False)
    panels = [("total", vdos.total, phonons.total)] + [(t, vdos.partial[t], phonons.partial[t]) for t in common]
    for ax, (label, md, harmonic) in zip(axes[:, 0], panels):
        ax.plot(vdos.frequency_cm1, md * vdos_scale, lw=1.0, label="MD VDOS")
        ax.plot(phonons.frequency_cm1, harmonic / phonons.natoms, lw=1.0, label="harmonic phonon DOS")
        ax.set_ylabel(f"{label}\n(states/cm$^{{-1}}$/atom)", fontsize=8)
    axes[0, 0].legend(fontsize=8)
    top = max(phonons.frequency_cm1.max(), 100.0)
    axes[-1, 0].set_xlim(0, top)
    axes[-1, 0].set_xlabel("frequency (cm$^{-1}$)")
    fig.tight_layout()
    fig.savefig(png, dpi=130)
    plt.close(fig)


def _ints(text: str) -> tuple[int, int, int]:
    values = [int(x) for x in text.split(",")]
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: give N or N1,N2,N3")
    return tuple(values)


def main(argv: list[str] | None = None) -> None:
    """``python -m mofsnap.analysis.phonons``."""
    parser = argparse.ArgumentParser(
        prog="python -m mofsnap.analysis.phonons",
        description="Harmonic phonons with phonopy from a SNAP model (or another calculator): Γ frequencies, "
                    "phonon DOS and partial DOS per atom type, optionally against an MD VDOS. Writes "
                    "phonons.json, phonon_dos.csv, phonon_dos.png (and vdos_vs_phonons.png).")
    parser.add_argument("structure", help="relaxed periodic structure (extxyz with atom_types, CIF, ...)")
    parser.add_argument("-o", "--output", default="phonons", metavar="DIR", help="output directory")
    parser.add_argument("--supercell", type=_ints, default=(1, 1, 1), metavar="N|N1,N2,N3",
                        help="supercell of the force constants; 1 = Γ point of the cell itself (default 1)")
    parser.add_argument("--mesh", type=_ints, metavar="N|N1,N2,N3",
                        help="Γ-centred q mesh of the DOS (default: the supercell)")
    parser.add_argument("--displacement", type=float, default=0.01, metavar="Å",
                        help="finite displacement in Å (default 0.01)")
    parser.add_argument("--sigma", type=float, default=5.0, metavar="CM-1",
                        help="Gaussian smearing of the DOS in cm⁻¹ (default 5)")
    parser.add_argument("--keep-residual-forces", action="store_true",
                        help="do not subtract the forces of the undisplaced structure")
    parser.add_argument("--by-element", action="store_true", help="partial DOS per element, not per atom type")
    parser.add_argument("--compare-vdos", metavar="DIR",
                        help="directory with vdos.csv + vdos.json from mofsnap.analysis.vdos: plot both")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    add_calculator_arguments(parser)
    args = parser.parse_args(argv)

    result = compute_phonons(read_structure(args.structure), calculator_from_args(args), supercell=args.supercell,
                             displacement=args.displacement, mesh=args.mesh, sigma_cm1=args.sigma,
                             subtract_residual_forces=not args.keep_residual_forces, by_element=args.by_element,
                             progress=not args.no_progress)
    summary = result.write(args.output)
    if args.compare_vdos:
        plot_vdos_vs_phonon_dos(VDOSResult.read(args.compare_vdos), result,
                                Path(args.output) / "vdos_vs_phonons.png")
    print(json.dumps({k: summary[k] for k in ("natoms", "settings", "imaginary_modes_below_-10cm1", "dos_integral")},
                     indent=2))


if __name__ == "__main__":
    main()
