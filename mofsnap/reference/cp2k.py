"""CP2K (Quickstep, GPW) through :class:`ase.calculators.cp2k.CP2K`, with the reference work's settings as presets.

Presets
-------
``"training"``
    PBE, GTH-PBE pseudopotentials (valence charge q per element), TZV2P-MOLOPT-GTH basis (metals such as Zn:
    TZV2P-MOLOPT-SR-GTH), 1000 Ry cutoff, REL_CUTOFF 60 Ry, 5 grids, EPS_SCF 1e-7 with OT + outer SCF,
    analytical stress, no dispersion: the settings of the training data.
``"optimisation"``
    As ``"training"`` plus Grimme D3(BJ) for PBE, for geometry and cell optimisation.
``"cheap"``
    DZVP-MOLOPT-SR-GTH, 300 Ry / 40 Ry, 4 grids, EPS_SCF 1e-6: seconds on tiny cells, for tests and demos.

Every setting can be overridden by keyword, e.g. ``CP2K("training", cutoff=800, kinds={"Cu": (basis, pot)})``.

Open-shell metals: a configuration with unpaired electrons (``unpaired_electrons=N``, or the per-metal
default of :mod:`mofsnap.reference.spin`) is computed spin-unrestricted (``UKS``) with ``MULTIPLICITY N+1``.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from ..exceptions import ReferenceMethodError, ReferenceUnavailableError
from . import Reference
from .spin import unpaired_electrons

# valence charge of the GTH-PBE pseudopotential used for each element
_VALENCE = {"H": 1, "B": 3, "C": 4, "N": 5, "O": 6, "F": 7, "Mg": 10, "Al": 3, "Si": 4, "P": 5, "S": 6,
            "Cl": 7, "Mn": 15, "Fe": 16, "Co": 17, "Ni": 18, "Cu": 11, "Zn": 12, "Br": 7, "Zr": 12, "Cd": 12}
# elements whose TZV2P-MOLOPT basis is the short-range one (BASIS_MOLOPT_UCL)
_TZV2P_SR = ("B", "Al", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Br", "Zr", "Cd")
_TZV2P_FULL = ("H", "C", "N", "O", "F", "Si", "P", "S", "Cl")


def _kinds(basis_of: dict[str, str]) -> dict[str, list[str]]:
    return {el: [f"{basis}-q{_VALENCE[el]}", f"GTH-PBE-q{_VALENCE[el]}"] for el, basis in basis_of.items()}


_TRAINING: dict[str, Any] = {
    "xc": "PBE",
    "kinds": _kinds({**{el: "TZV2P-MOLOPT-GTH" for el in _TZV2P_FULL},
                     **{el: "TZV2P-MOLOPT-SR-GTH" for el in _TZV2P_SR}}),
    "basis_files": ["BASIS_MOLOPT", "BASIS_MOLOPT_UCL"],
    "potential_file": "POTENTIAL",
    "cutoff": 1000.0,
    "rel_cutoff": 60.0,
    "ngrids": 5,
    "eps_scf": 1e-7,
    "max_scf": 50,
    "outer_max_scf": 20,
    "ot_minimizer": "DIIS",
    "ot_preconditioner": "FULL_SINGLE_INVERSE",
    "d3": False,
    "charge": 0,
    "unpaired_electrons": None,
    "extra_input": "",
}
PRESETS: dict[str, dict[str, Any]] = {
    "training": _TRAINING,
    "optimisation": {**_TRAINING, "d3": True},
    "cheap": {**_TRAINING, "kinds": _kinds({el: "DZVP-MOLOPT-SR-GTH" for el in _VALENCE}),
              "basis_files": ["BASIS_MOLOPT"], "cutoff": 300.0, "rel_cutoff": 40.0, "ngrids": 4,
              "eps_scf": 1e-6},
}


@dataclass(frozen=True, init=False)
class CP2K(Reference):
    """CP2K DFT reference built from a named preset plus overrides.

    Parameters
    ----------
    preset
        ``"training"``, ``"optimisation"`` or ``"cheap"`` (see module docstring).
    mpi_ranks
        MPI ranks per calculation (``mpiexec -n``); 1 runs ``cp2k.psmp`` directly.
    omp_threads
        OpenMP threads per rank (``OMP_NUM_THREADS`` of the CP2K process).
    binary
        CP2K executable (must support the ``-s`` shell mode).
    mpiexec
        MPI launcher used when ``mpi_ranks > 1``, e.g. ``"srun"`` or ``"mpiexec --bind-to core"``.
    data_dir
        Directory with BASIS_* / POTENTIAL / dftd3.dat; default ``$CP2K_DATA_DIR`` or ``/usr/share/cp2k``.
    workdir
        Where CP2K writes its input/output files; default a fresh temporary directory per calculator.
    **overrides
        Any key of the preset's :attr:`settings`: ``xc``, ``kinds`` (``{element: (basis, potential)}``,
        merged into the preset's), ``basis_files``, ``potential_file``, ``cutoff`` and ``rel_cutoff`` (Ry),
        ``ngrids``, ``eps_scf``, ``max_scf``, ``outer_max_scf``, ``ot_minimizer``, ``ot_preconditioner``,
        ``d3``, ``charge``, ``unpaired_electrons`` (``None``: the per-metal default of
        :mod:`mofsnap.reference.spin`), ``extra_input`` (raw CP2K input merged into the generated one).

    Only the overrides enter :attr:`settings` (and the hash); ranks, threads, paths and binary do not.
    """

    preset: str
    resolved: dict[str, Any]
    mpi_ranks: int
    omp_threads: int
    binary: str
    mpiexec: str
    data_dir: str
    workdir: str | None

    def __init__(self, preset: str = "training", *, mpi_ranks: int = 1, omp_threads: int = 1,
                 binary: str = "cp2k.psmp", mpiexec: str = "mpiexec", data_dir: str | None = None,
                 workdir: str | None = None, **overrides: Any) -> None:
        if preset not in PRESETS:
            raise ReferenceMethodError(f"unknown CP2K preset {preset!r}; choose one of {', '.join(PRESETS)}")
        unknown = sorted(set(overrides) - set(PRESETS[preset]))
        if unknown:
            raise ReferenceMethodError(f"unknown CP2K setting(s) {', '.join(unknown)}; "
                                       f"valid: {', '.join(PRESETS[preset])}")
        if mpi_ranks < 1 or omp_threads < 1:
            raise ReferenceMethodError(f"mpi_ranks and omp_threads must be >= 1 (got {mpi_ranks}, {omp_threads})")
        resolved = copy.deepcopy(PRESETS[preset])
        kinds = overrides.pop("kinds", {})
        resolved.update(overrides)
        resolved["kinds"].update({el: list(pair) for el, pair in kinds.items()})
        values = dict(preset=preset, resolved=resolved, mpi_ranks=mpi_ranks, omp_threads=omp_threads,
                      binary=binary, mpiexec=mpiexec,
                      data_dir=data_dir or os.environ.get("CP2K_DATA_DIR", "/usr/share/cp2k"), workdir=workdir)
        for key, value in values.items():
            object.__setattr__(self, key, value)

    @property
    def name(self) -> str:
        return f"CP2K/{self.resolved['xc']}" + ("+D3(BJ)" if self.resolved["d3"] else "")

    @property
    def includes_dispersion(self) -> bool:
        """True for the presets with D3(BJ) in the labels (``d3``), False for plain PBE (the training preset)."""
        return bool(self.resolved["d3"])

    @property
    def settings(self) -> dict[str, Any]:
        settings = copy.deepcopy(self.resolved)
        if settings["unpaired_electrons"] is None:  # the default rule adds nothing: older stores keep their keys
            del settings["unpaired_electrons"]
        return settings

    def unpaired_electrons_for(self, atoms: Atoms) -> int:
        return unpaired_electrons(atoms, self.resolved["unpaired_electrons"], self.resolved["charge"])

    @property
    def command(self) -> str:
        """Shell command that starts the CP2K shell (``cp2k.psmp -s``) with the chosen ranks and threads."""
        launch = f"{self.mpiexec} -n {self.mpi_ranks} " if self.mpi_ranks > 1 else ""
        return f"env OMP_NUM_THREADS={self.omp_threads} {launch}{self.binary} -s"

    def check(self, atoms: Atoms) -> None:
        super().check(atoms)
        missing = sorted(set(atoms.get_chemical_symbols()) - set(self.resolved["kinds"]))
        if missing:
            raise ReferenceMethodError(
                f"CP2K preset {self.preset!r} has no basis set/pseudopotential for {', '.join(missing)}; "
                f"add them with kinds={{'El': ('BASIS-NAME', 'GTH-PBE-qN')}}")
        self.unpaired_electrons_for(atoms)

    def check_environment(self) -> None:
        if shutil.which(self.binary) is None:
            raise ReferenceUnavailableError(
                f"CP2K executable {self.binary!r} not found on PATH; install it with `sudo apt-get install "
                "cp2k` (Debian/Ubuntu) or pass binary='/path/to/cp2k.psmp'")
        if not os.path.isdir(self.data_dir):
            raise ReferenceUnavailableError(
                f"CP2K data directory {self.data_dir!r} does not exist; set CP2K_DATA_DIR or data_dir=")

    def abort(self, calculator: Calculator) -> None:
        """Kill the CP2K shell process of ``calculator`` (its pending read then fails)."""
        shell = getattr(calculator, "_shell", None)
        child = getattr(shell, "_child", None)
        if child is not None and child.poll() is None:
            child.kill()

    def input_template(self, unpaired_electrons: int = 0) -> str:
        """CP2K input (everything but coordinates and cell, which ASE adds) for these settings, spin-unrestricted
        with ``MULTIPLICITY unpaired_electrons + 1`` when ``unpaired_electrons > 0``."""
        s = self.resolved
        spin = f"\n    UKS TRUE\n    MULTIPLICITY {unpaired_electrons + 1}" if unpaired_electrons else ""
        files = "\n".join(f"BASIS_SET_FILE_NAME {os.path.join(self.data_dir, f)}" for f in s["basis_files"])
        d3 = (f"""
      &VDW_POTENTIAL
        POTENTIAL_TYPE PAIR_POTENTIAL
        &PAIR_POTENTIAL
          TYPE DFTD3(BJ)
          PARAMETER_FILE_NAME {os.path.join(self.data_dir, 'dftd3.dat')}
          REFERENCE_FUNCTIONAL {s['xc']}
        &END PAIR_POTENTIAL
      &END VDW_POTENTIAL""" if s["d3"] else "")
        kinds = "\n".join(f"    &KIND {el}\n      BASIS_SET {basis}\n      POTENTIAL {pot}\n    &END KIND"
                          for el, (basis, pot) in sorted(s["kinds"].items()))
        return f"""&FORCE_EVAL
  &DFT
    {files}
    POTENTIAL_FILE_NAME {os.path.join(self.data_dir, s['potential_file'])}
    CHARGE {s['charge']}{spin}
    &MGRID
      CUTOFF {s['cutoff']}
      REL_CUTOFF {s['rel_cutoff']}
      NGRIDS {s['ngrids']}
    &END MGRID
    &SCF
      SCF_GUESS ATOMIC
      EPS_SCF {s['eps_scf']}
      MAX_SCF {s['max_scf']}
      &OT
        MINIMIZER {s['ot_minimizer']}
        PRECONDITIONER {s['ot_preconditioner']}
      &END OT
      &OUTER_SCF
        EPS_SCF {s['eps_scf']}
        MAX_SCF {s['outer_max_scf']}
      &END OUTER_SCF
    &END SCF
    &XC
      &XC_FUNCTIONAL {s['xc']}
      &END XC_FUNCTIONAL{d3}
    &END XC
  &END DFT
  &SUBSYS
{kinds}
  &END SUBSYS
&END FORCE_EVAL
{s['extra_input']}"""

    def calculator(self, atoms: Atoms | None = None) -> Calculator:
        from ase.calculators.cp2k import CP2K as AseCP2K

        self.check_environment()
        directory = self.workdir or tempfile.mkdtemp(prefix="mofsnap-cp2k-")
        os.makedirs(directory, exist_ok=True)
        # every section is in the template; switch off ASE's own generation of the same keywords
        unpaired = 0 if atoms is None else self.unpaired_electrons_for(atoms)
        return AseCP2K(command=self.command, label=os.path.join(directory, "cp2k"),
                       inp=self.input_template(unpaired), basis_set=None, basis_set_file=None,
                       potential_file=None, pseudo_potential=None, cutoff=None, max_scf=None, xc=None, stress_tensor=True, print_level="LOW")
