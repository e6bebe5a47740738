"""``SNAPCalculator``: a SNAP model (+ Grimme D3 dispersion + ZBL repulsion) as an ASE calculator.

One LAMMPS instance lives until :meth:`SNAPCalculator.close` (or the end of a ``with`` block). When only positions
change between calls, LAMMPS is advanced like its own MD loop: positions are written in place and one force
evaluation runs, with ghost atoms and neighbour lists rebuilt from the current positions, so the results depend
on the atoms alone (a resumed MD run equals an uninterrupted one bit for bit) and an ASE-driven MD step costs
about what a native LAMMPS step does. A changed cell also re-initialises LAMMPS's styles; new atoms or types
rebuild the LAMMPS instance.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import atomic_masses, atomic_numbers

from ._lammps import Box, Lammps
from .exceptions import ModelError
from .fit.posterior import ModelPosterior, fit_statistics_path
from .model import ZIF8_REFERENCE, SNAPModel, model_prefix
from .units import LAMMPS_EV_PER_A3_IN_BAR

#: Neighbour-list skin in Å (LAMMPS metal default) of the native deck; the calculator rebuilds its lists at every
#: evaluation and needs none.
SKIN = 2.0
ZERO_IMAGE = (512 << 20) | (512 << 10) | 512  # LAMMPS's packed image flags (0, 0, 0)


@dataclass(frozen=True)
class D3:
    """Grimme D3 dispersion through LAMMPS ``pair_style dispersion/d3``.

    Parameters
    ----------
    functional : str
        Exchange-correlation functional whose damping parameters are used (lower case, e.g. ``"pbe"``).
    damping : str
        ``"bj"`` (Becke-Johnson), ``"zero"``, ``"zerom"`` or ``"bjm"``.
    cutoff : float
        Pair cutoff of the dispersion energy in Å.
    cn_cutoff : float
        Cutoff of the coordination numbers in Å.

    Notes
    -----
    D3 dominates the cost of an MD step. Against 50/25 Å cutoffs, the default 12/10 Å is off by < 0.6 meV/atom,
    < 1.5 meV/Å and < 8 MPa for ZIF-8 and MOF-5 (far below SNAP's own errors) at a quarter of the cost of
    20/15 Å, which is off by < 0.1 meV/atom, 0.15 meV/Å and 1.5 MPa (``benchmarks/bench_calculator.py``).
    """

    functional: str = "pbe"
    damping: str = "bj"
    cutoff: float = 12.0
    cn_cutoff: float = 10.0

    def __post_init__(self) -> None:
        if self.damping not in ("bj", "zero", "zerom", "bjm"):
            raise ModelError(f"unknown D3 damping {self.damping!r}; use bj, zero, zerom or bjm")
        if not 0 < self.cn_cutoff <= self.cutoff:
            raise ModelError(f"D3 coordination-number cutoff {self.cn_cutoff} Å must be in "
                             f"(0, cutoff = {self.cutoff} Å]")

    def todict(self) -> dict[str, Any]:
        """The settings as plain values; ``D3(**d3.todict()) == d3``."""
        return asdict(self)


@dataclass(frozen=True)
class ZBL:
    """Ziegler-Biersack-Littmark repulsion on chosen atom-type pairs.

    Parameters
    ----------
    pairs : sequence of (str, str)
        Atom-type pairs that get the repulsion (order within a pair does not matter).
    inner, outer : float
        The ZBL energy is switched smoothly to zero between ``inner`` and ``outer`` (Å); the defaults, 1.8 and
        2.3 Å, are those of the reference ZIF-8 model (``data/hyperparameters/zif8.json``).
    """

    pairs: tuple[tuple[str, str], ...]
    inner: float = ZIF8_REFERENCE["zbl"]["inner_A"]
    outer: float = ZIF8_REFERENCE["zbl"]["outer_A"]

    def __post_init__(self) -> None:
        object.__setattr__(self, "pairs", tuple(tuple(sorted(p)) for p in self.pairs))
        if not 0 < self.inner < self.outer:
            raise ModelError(f"ZBL inner cutoff {self.inner} Å must be positive and below the outer {self.outer} Å")
        if any(len(p) != 2 for p in self.pairs):
            raise ModelError("ZBL pairs must be pairs of atom-type labels")

    def todict(self) -> dict[str, Any]:
        """The settings as plain values; ``ZBL(**zbl.todict()) == zbl``."""
        return {"pairs": [list(pair) for pair in self.pairs], "inner": self.inner, "outer": self.outer}

    @classmethod
    def safety_wall(cls, atoms: Atoms, inner: float = ZIF8_REFERENCE["zbl"]["inner_A"],
                    outer: float = ZIF8_REFERENCE["zbl"]["outer_A"], margin: float = 0.1) -> ZBL | None:
        """A safety wall for a typed structure: ZBL on every pair of types with a hydrogen, and on every pair of
        metal types, that never comes closer than ``outer + margin`` in ``atoms`` (so never bonded). It is zero
        near equilibrium and acts only in a collapse an early model cannot yet resist: a hydrogen swinging onto
        a metal or another linker (what the reference ZIF-8 pairs prevent), or the two metals of a paddlewheel
        (Zn-Zn 2.9 Å in DMOF-1, Cu-Cu 2.6 Å in HKUST-1) falling onto each other. None when no pair qualifies.

        Parameters
        ----------
        atoms : Atoms
            The relaxed, typed structure (``atoms.arrays["atom_types"]``).
        inner, outer : float
            Switching range of the ZBL energy in Å.
        margin : float
            How far beyond ``outer`` (Å) the closest contact of a pair must lie.
        """
        from matscipy.neighbours import neighbour_list

        from .topology import METALS, neighbour_frame

        types = np.asarray(atoms.arrays["atom_types"]).astype(str)
        first, second = neighbour_list("ij", neighbour_frame(atoms), outer + margin)
        close = {tuple(sorted(pair)) for pair in zip(types[first], types[second])}
        element = dict(zip(types.tolist(), atoms.numbers.tolist()))
        hydrogens = {t for t, z in element.items() if z == 1}
        metals = {t for t, z in element.items() if z in METALS}
        candidates = {tuple(sorted((h, t))) for h in hydrogens for t in element}
        candidates |= {tuple(sorted((m, n))) for m in metals for n in metals}
        pairs = sorted(candidates - close)
        return cls(tuple(pairs), inner, outer) if pairs else None


#: The ZBL pairs of the reference ZIF-8 model (non-bonded H-containing pairs; H1a ring H, H1b methyl H), from
#: ``data/hyperparameters/zif8.json``.
ZIF8_ZBL = ZBL(pairs=tuple(tuple(pair) for pair in ZIF8_REFERENCE["zbl"]["pairs"]))


def pair_commands(model: SNAPModel, files: Sequence[str | Path], *, snap: bool, d3: D3 | None, zbl: ZBL | None,
                  natoms: int, volume: float) -> list[str]:
    """LAMMPS commands setting the SNAP (+ D3 + ZBL) potential, with neighbour lists sized for its cutoffs.

    Parameters
    ----------
    model : SNAPModel
        Types (LAMMPS type k is ``model.types[k - 1]``) and cutoff.
    files : (str, str)
        The ``.snapcoeff`` and ``.snapparam`` files as LAMMPS should read them.
    snap : bool
        Include the SNAP term.
    d3, zbl : D3 or None, ZBL or None
        Dispersion and repulsion settings (:class:`mofsnap.D3`, :class:`mofsnap.ZBL`).
    natoms : int
    volume : float
        Atoms and cell volume (Å³), which size the per-atom neighbour limit: long D3 cutoffs exceed LAMMPS's
        default.

    Returns
    -------
    list of str
        ``pair_style``, ``neigh_modify`` and ``pair_coeff`` commands: a single style alone, else
        ``hybrid/overlay`` with one ``pair_coeff i j zbl Zi Zj`` per ZBL pair.
    """
    styles, coeffs = [], []
    if snap:
        styles.append("snap")
        coeffs.append(f"pair_coeff * * snap {files[0]} {files[1]} {' '.join(model.types)}")
    if zbl:
        styles.append(f"zbl {zbl.inner!r} {zbl.outer!r}")
        for a, b in zbl.pairs:
            i, j = sorted((model.types.index(a) + 1, model.types.index(b) + 1))
            za, zb = atomic_numbers[model.elements[i - 1]], atomic_numbers[model.elements[j - 1]]
            coeffs.append(f"pair_coeff {i} {j} zbl {za} {zb}")
    if d3:
        styles.append(f"dispersion/d3 {d3.damping} {d3.functional} {d3.cutoff!r} {d3.cn_cutoff!r}")
        coeffs.append(f"pair_coeff * * dispersion/d3 {' '.join(model.elements)}")
    if len(styles) == 1 and not zbl:
        coeffs = [c.replace(f" {styles[0].split()[0]} ", " ", 1) for c in coeffs]
        cmds = [f"pair_style {styles[0]}"]
    else:  # ZBL acts on some type pairs only, which needs the hybrid style
        cmds = [f"pair_style hybrid/overlay {' '.join(styles)}"]
        if not (snap or d3):
            coeffs.insert(0, "pair_coeff * * none")
    cut = max(d3.cutoff if d3 else 0.0, model.cutoff, zbl.outer if zbl else 0.0) + SKIN
    per_atom = int(1.5 * natoms / volume * 4.0 / 3.0 * np.pi * cut**3) + 200
    cmds.append(f"neigh_modify delay 0 every 1 check yes one {per_atom} page {max(100000, 10 * per_atom)}")
    return cmds + coeffs


class SNAPCalculator(Calculator):
    """SNAP machine-learning potential with optional D3 dispersion and ZBL repulsion.

    Parameters
    ----------
    model : SNAPModel, dict or path
        The model (or its :meth:`SNAPModel.todict`), or the common prefix of its ``.snapcoeff``/``.snapparam``
        files.
    d3 : D3, dict, bool or None
        Add Grimme D3 dispersion (``True`` for the default PBE/BJ settings).
    zbl : ZBL, dict or None
        Add ZBL repulsion on the listed atom-type pairs.
    snap : bool
        Include the SNAP term itself (``False`` evaluates only D3/ZBL, e.g. as a reference potential to
        subtract before fitting).
    log : str or None
        LAMMPS log file (none by default).
    **kwargs
        Further :class:`ase.calculators.calculator.Calculator` arguments.

    Notes
    -----
    The Atoms must be periodic in all three directions and carry ``atoms.arrays["atom_types"]``.

    The settings live in ASE's ``parameters`` (``d3``/``zbl`` as :class:`D3`/:class:`ZBL`, ``model`` as the
    file prefix or the :class:`SNAPModel` given), so ``SNAPCalculator(**calc.todict())`` makes an equal
    calculator, and :meth:`set` changes them (starting a new LAMMPS instance).

    :meth:`close` releases the LAMMPS instance and the temporary model files; a calculation after it starts a
    new instance, so closing never breaks the calculator. ``with SNAPCalculator(...) as calc:`` closes it at the
    end of the block.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]
    default_parameters = {"d3": None, "zbl": None, "snap": True, "log": None}
    discard_results_on_any_change = True

    def __init__(self, model: SNAPModel | dict | str | Path, d3: D3 | dict | bool | None = None,
                 zbl: ZBL | dict | None = None, snap: bool = True, log: str | None = None, **kwargs) -> None:
        self._lmp: Lammps | None = None
        super().__init__(model=model, d3=d3, zbl=zbl, snap=snap, log=log, **kwargs)

    def set(self, **kwargs) -> dict[str, Any]:
        """Change settings (the arguments of the constructor); return those that changed.

        Any change drops the results and the LAMMPS instance; the next calculation starts a new one.

        Raises
        ------
        ModelError
            Missing model files, nothing to compute, or ZBL pairs of types the model does not have.
        """
        if "model" in kwargs:
            model = kwargs["model"]
            kwargs["model"] = (model if isinstance(model, SNAPModel) else SNAPModel(**model)
                               if isinstance(model, dict) else str(model))
        if "d3" in kwargs:
            d3 = kwargs["d3"]
            kwargs["d3"] = D3() if d3 is True else D3(**d3) if isinstance(d3, dict) else (d3 or None)
        if isinstance(kwargs.get("zbl"), dict):
            kwargs["zbl"] = ZBL(**kwargs["zbl"])
        changed = super().set(**kwargs)
        if changed:
            self._configure()
        return changed

    def _configure(self) -> None:
        """Load the model of the current parameters and check the settings; drop the LAMMPS instance."""
        self.close()
        model = self.parameters["model"]
        self.model = model if isinstance(model, SNAPModel) else SNAPModel.read(model)
        if not (self.snap or self.d3 or self.zbl):
            raise ModelError("nothing to compute: enable at least one of snap, d3, zbl")
        if self.zbl is not None:
            unknown = sorted({t for p in self.zbl.pairs for t in p} - set(self.model.types))
            if unknown:
                raise ModelError(f"ZBL pair types {unknown} are not types of the model {self.model.types}")
        self._type_numbers = np.array([atomic_numbers[e] for e in self.model.elements])

    @property
    def d3(self) -> D3 | None:
        """The D3 dispersion settings, or None."""
        return self.parameters["d3"]

    @property
    def zbl(self) -> ZBL | None:
        """The ZBL repulsion settings, or None."""
        return self.parameters["zbl"]

    @property
    def snap(self) -> bool:
        """Whether the SNAP term is included."""
        return self.parameters["snap"]

    # -- lifetime -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the LAMMPS instance (safe to call more than once).

        The calculator stays usable: the next calculation starts a new LAMMPS instance.
        """
        if self._lmp is not None:
            self._lmp.close()
            self._lmp = None
        self._key = None  # what the LAMMPS state was built for (None: rebuild at the next calculation)

    def __enter__(self) -> SNAPCalculator:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_lmp", None) is not None:
            self.close()

    # -- the model's uncertainty ----------------------------------------------------------------------
    @property
    def posterior(self) -> ModelPosterior | None:
        """The model's posterior and extrapolation-grade statistics: ``<prefix>.snapfit.npz`` when the model was
        given as a file prefix and that file exists (:func:`mofsnap.md.grade.write_fit_statistics`), else
        None."""
        model = self.parameters["model"]
        if isinstance(model, SNAPModel):
            return None
        path = fit_statistics_path(model_prefix(model))
        return ModelPosterior.read(path) if path.exists() else None

    def type_indices(self, atoms: Atoms) -> np.ndarray:
        """0-based model type index of each atom (checked against the model, as for a calculation)."""
        return self._lammps_types(atoms) - 1

    def bispectrum(self, atoms: Atoms) -> np.ndarray:
        """Per-atom bispectrum components of the model at the state of ``atoms`` (LAMMPS ``compute sna/atom``),
        shape ``(natoms, model.n_bispectrum)``, ``B - B0`` when the model has ``bzeroflag``.

        Uses the calculator's own LAMMPS instance: the first call adds the compute (one full set-up), later
        ones cost the compute alone on the current state.
        """
        from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY

        self.get_property("forces", atoms)
        if not self._lmp.lmp.has_id("compute", "mofsnap_sna"):
            self._lmp.command(f"compute mofsnap_sna all sna/atom {self.model.compute_snap_args()}")
            self._setup_lower = None  # a new compute needs a full set-up
            self.reset()
            self.get_property("forces", atoms)
        lmp = self._lmp.lmp
        step = lmp.get_thermo("step")
        if step == self._sna_step:  # a set-up ("run 0") does not advance the step: make LAMMPS recompute
            self._lmp.command(f"reset_timestep {int(step) + 1}")
            step += 1
        self._sna_step = step
        n = len(atoms)
        order = np.argsort(lmp.numpy.extract_atom("id")[:n])
        return np.array(lmp.numpy.extract_compute("mofsnap_sna", LMP_STYLE_ATOM, LMP_TYPE_ARRAY)[:n])[order]

    # -- input checks -------------------------------------------------------------------------------
    def _lammps_types(self, atoms: Atoms) -> np.ndarray:
        if "atom_types" not in atoms.arrays:
            raise ModelError("the Atoms have no atom types: call mofsnap.assign_atom_types(atoms) first")
        labels, inverse = np.unique(atoms.arrays["atom_types"], return_inverse=True)
        missing = sorted(set(labels) - set(self.model.types))
        if missing:
            raise ModelError(f"atom types {missing} are not in the model (model types: {self.model.types})")
        types = np.array([self.model.types.index(t) + 1 for t in labels], dtype=np.int32)[inverse]
        wrong = np.flatnonzero(self._type_numbers[types - 1] != atoms.numbers)
        if wrong.size:
            i = wrong[0]
            raise ModelError(f"atom type {atoms.arrays['atom_types'][i]} does not match element number "
                             f"{atoms.numbers[i]} (atom {i})")
        return types

    @staticmethod
    def _check_geometry(atoms: Atoms) -> None:
        if not atoms.pbc.all():
            raise ModelError("SNAPCalculator needs a periodic cell in all three directions")
        if not np.isfinite(atoms.positions).all() or not np.isfinite(atoms.cell.array).all():
            raise ModelError("positions or cell contain NaN or inf")

    # -- LAMMPS state -------------------------------------------------------------------------------
    def _build(self, atoms: Atoms, types: np.ndarray) -> None:
        if self._lmp is not None:
            self._lmp.close()
        box = Box(atoms.cell.array)
        lmp = Lammps(self.parameters["log"])
        lmp.commands(["units metal", "atom_style atomic", "atom_modify map array sort 0 0.0",
                      "boundary p p p", f"region cell prism 0 {box.prism.replace(' ', ' 0 ', 2)}",
                      f"create_box {len(self.model.types)} cell", "neighbor 0.1 bin"])  # rebuilt every call: no skin needed
        for k, element in enumerate(self.model.elements, start=1):
            lmp.command(f"mass {k} {float(atomic_masses[atomic_numbers[element]])!r}")
        x = box.wrap(box.to_lammps(atoms.positions))
        lmp.lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types.tolist(), x.ravel().tolist())
        # pair_coeff reads the model files at once, so they live only as long as this set-up: no directory is
        # left behind by a process that ends without running finalisers (pool workers, a killed run)
        with tempfile.TemporaryDirectory(prefix="mofsnap-") as tmp:
            files = self.model.write(Path(tmp) / "model")
            lmp.commands(pair_commands(self.model, files, snap=self.snap, d3=self.d3, zbl=self.zbl,
                                       natoms=len(atoms), volume=atoms.get_volume()))
        lmp.command("neigh_modify check no")  # rebuild at every evaluation: results depend on the atoms alone
        self._lmp = lmp
        self._setup_lower = None
        self._thermo: tuple[bool, bool, bool] | None = None
        self._without_energy = 0  # configurations computed since the energy was last asked for
        self._sna_step = None  # LAMMPS step of the last compute sna/atom read

    def _set_state(self, atoms: Atoms, box: Box, full: bool) -> bool:
        """Write cell and positions into LAMMPS; return whether a full set-up is needed (or ``full`` asks one).

        Positions are written wrapped into the cell with zero image flags, and LAMMPS rebuilds its ghost
        atoms and neighbour lists at every evaluation (``neigh_modify check no``), so the results are a
        function of the atoms alone, bit-equal whatever was computed before: that is what makes a resumed
        MD run equal an uninterrupted one. A changed cell (or a new compute) needs a full set-up, which also
        re-initialises every style; a fixed cell only the rebuild.
        """
        lmp = self._lmp.lmp
        n = len(atoms)
        if self._setup_lower is None or not np.array_equal(box.lower, self._setup_lower):
            full = True
            xhi, yhi, zhi, xy, xz, yz = box.prism.split()
            self._lmp.command(f"change_box all x final 0 {xhi} y final 0 {yhi} z final 0 {zhi} "
                              f"xy final {xy} xz final {xz} yz final {yz} units box")
        target = box.to_lammps(atoms.positions)[lmp.numpy.extract_atom("id")[:n] - 1]
        lmp.numpy.extract_atom("x")[:n] = box.wrap(target)
        lmp.numpy.extract_atom("image")[:n] = ZERO_IMAGE
        return full

    def _wanted(self, properties, system_changes) -> tuple[bool, bool, bool]:
        """Whether LAMMPS evaluates (energy, per-atom energies, stress) in this and the following calls.

        Each costs extra in every step (the SNAP energy needs the bispectrum itself, not only its
        derivatives), and switching one on or off costs a full setup. Per-atom energies and stress stay on
        once asked for (ASE's NPT asks for forces and stress in turns). The energy stays on while it is
        asked for at least every other configuration (optimisers ask for it every step) and goes off
        otherwise (MD asks only for forces, and for the energy at its logging steps).
        """
        energy_now = "energy" in properties or "free_energy" in properties
        if energy_now:
            self._without_energy = 0
        elif system_changes:
            self._without_energy += 1
        old = self._thermo or (False, False, False)
        energies = old[1] or "energies" in properties
        stress = old[2] or "stress" in properties
        energy = energy_now or energies or (old[0] and self._without_energy < 2)
        return energy, energies, stress

    def _restyle(self, wanted: tuple[bool, bool, bool]) -> list[str]:
        """LAMMPS commands evaluating (energy, per-atom energies, stress) from the next run on.

        An energy or pressure compute that merely exists is evaluated at every thermo output, i.e. in every
        ``run 1``, so they exist only while wanted (LAMMPS's own ``thermo_pe`` included).
        """
        old = self._thermo or (True, False, False)  # a new LAMMPS instance has thermo_pe
        cmds = ["thermo_style custom step"]
        if wanted[0] != old[0]:
            cmds += ["compute thermo_pe all pe"] if wanted[0] else ["uncompute thermo_pe"]
        if wanted[1] != old[1]:
            cmds += (["compute mofsnap_pea all pe/atom", "compute mofsnap_sumpea all reduce sum c_mofsnap_pea"]
                     if wanted[1] else ["uncompute mofsnap_sumpea", "uncompute mofsnap_pea"])
        if wanted[2] != old[2]:
            cmds += ["compute mofsnap_virial all pressure NULL virial"] if wanted[2] else ["uncompute mofsnap_virial"]
        extra = " pe" * wanted[0] + " c_mofsnap_sumpea" * wanted[1] + " c_mofsnap_virial[*]" * wanted[2]
        return cmds + [f"thermo_style custom step{extra}", "thermo_modify norm no"]

    # -- ASE interface ------------------------------------------------------------------------------
    def get_property(self, name: str, atoms: Atoms | None = None, allow_calculation: bool = True) -> Any:
        """ASE's, noting each request for the energy: one answered from the stored results keeps the energy on
        as one that computes it does (:meth:`_wanted`), so MD that reads it at every step never switches it off
        and on again, which costs two full set-ups."""
        if name in ("energy", "free_energy"):
            self._without_energy = 0
        return super().get_property(name, atoms, allow_calculation)

    def calculate(self, atoms: Atoms | None = None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        self._check_geometry(atoms)
        types = self._lammps_types(atoms)
        key = (tuple(atoms.numbers), tuple(types))
        if self._lmp is None or key != self._key:
            self._key = None
            self._build(atoms, types)
            self._key = key
        box = Box(atoms.cell.array)
        wanted = self._wanted(properties, system_changes)
        try:
            restyle = wanted != self._thermo
            if restyle:  # a new thermo style needs a full setup (LAMMPS crashes otherwise)
                self._lmp.commands(self._restyle(wanted))
                self._thermo = wanted
            full = self._set_state(atoms, box, restyle)
            self._lmp.command("run 0 post no" if full else "run 1 pre no post no")
        except Exception:
            self._key = None  # the LAMMPS state is unknown after a failure: rebuild next time
            raise
        if full:
            self._setup_lower = box.lower.copy()
        lmp = self._lmp.lmp
        n = len(atoms)
        order = np.argsort(lmp.numpy.extract_atom("id")[:n])
        forces = np.array(lmp.numpy.extract_atom("f")[:n])[order]
        self.results["forces"] = box.to_ase(forces)
        if wanted[0]:
            self.results["energy"] = self.results["free_energy"] = float(lmp.get_thermo("pe"))
        if wanted[1]:
            self.results["energies"] = np.array(lmp.numpy.extract_compute("mofsnap_pea", 1, 1))[order]
        if wanted[2]:
            pressure = np.array(lmp.numpy.extract_compute("mofsnap_virial", 0, 1))
            self.results["stress"] = -box.tensor_to_ase(pressure) / LAMMPS_EV_PER_A3_IN_BAR
