"""The settings of an active-learning campaign: :class:`LearnSettings`, its TOML form and the :data:`DEMO`."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..exceptions import LearnError
from ..reference import DEFAULT_REFERENCE
from ..units import ATMOSPHERE_MPA, ENERGY_WEIGHT, STRESS_WEIGHT

#: How each MD run's frame is picked (see :attr:`LearnSettings.selection`).
SELECTIONS = ("cbad", "grade", "random")
#: Which CBAD-new frame of a run is picked (see :attr:`LearnSettings.cbad_pick`).
CBAD_PICKS = ("first", "last", "random")


@dataclass(frozen=True)
class LearnSettings:
    """Everything that defines an active-learning campaign (the TOML config file holds these keys).

    Attributes
    ----------
    structure : str
        A built-in name (keys of :data:`mofsnap.structures.STRUCTURES`) or a structure file.
    reference : str
        A name of :data:`mofsnap.reference.REFERENCES`: ``gfn1-xtb``/``gfn2-xtb`` (GFN-xTB by tblite) or
        ``cp2k-training``, ``cp2k-optimisation``, ``cp2k-cheap`` (CP2K presets; pass a ``CP2K`` object for MPI
        ranks).
    seed : int
        Seed of every random choice (perturbations, velocities, shuffles, picks).
    n_perturbed, displacement, strain : int, float, float
        Step 0: number of perturbed copies, uniform atom displacement amplitude (Å) per component, and
        uniform amplitude of the symmetric cell strain components.
    relax_fmax : float or None
        Relax the atom positions of the structure with the reference (FIRE, to this largest force in eV/Å)
        before step 0, so that MD starts near the reference's minimum; ``None`` uses the structure as given
        (e.g. one already relaxed with the reference, as for CP2K).
    relax_steps : int
        Step limit of that relaxation.
    md_displacement : float
        Displacement amplitude (Å) of the MD starts (the same strain amplitude); smaller than the step-0 one,
        since a strongly perturbed start turns its excess potential energy into a temperature spike.
    temperatures : tuple of float
        ``T_k`` of the generations (K).
    runs, md_steps, frame_interval : int
        MD runs per generation, steps per run (1 fs), steps between the frames offered for selection.
    pressure_MPa : float
        NPT pressure.
    d3 : bool
        Run the active-learning MD with SNAP + D3 (dispersion is never part of the labels' fit target).
    selection : str
        How each run's frame is picked: ``cbad`` (a CBAD-new frame, see ``cbad_pick``), ``grade`` (the frame
        of highest extrapolation grade, if above ``grade_threshold``) or ``random``.
    cbad_pick : str
        Which CBAD-new frame of a run: ``first`` (the reference work), ``last`` or ``random``.
    grade_threshold : float
        Lowest extrapolation grade worth labelling with ``selection = "grade"``.
    resolutions : dict
        CBAD bin widths overriding the defaults (keys of :class:`mofsnap.cbad.Resolutions`).
    ramp_steps, ramp_segments : int
        Final test pool: NPT ramp from 10 K to ``max(temperatures)`` in this many steps and segments.
    test_size, extra_random : int
        Random ramp frames labelled as test set, and further random ones added to the training set.
    final_md_steps : int
        Length of the closing 300 K NPT run with the final SNAP + D3 (0 skips it).
    twojmax, rcutfac, energy_weight, stress_weight : int, float, float, float
        SNAP and fit settings (per-type radii and weights: the model defaults).
    max_force, max_temperature_factor, bond_tolerance : float
        Blow-up guard of the MD: force (eV/Å), temperature as a multiple of the target (at least the target
        + 1000 K), and bond length as a multiple of the reference bond.
    max_workers : int or None
        Local process-pool size (default: one per CPU); ignored when an executor is given.
    executor : str or None
        Address of a Dask scheduler to run labelling and MD on (e.g. one started by dask-jobqueue).
    """

    structure: str = "mof5-primitive"
    reference: str = DEFAULT_REFERENCE
    seed: int = 0
    n_perturbed: int = 300
    displacement: float = 0.12
    strain: float = 0.005
    relax_fmax: float | None = None
    relax_steps: int = 200
    md_displacement: float = 0.03
    temperatures: tuple[float, ...] = tuple(float(t) for t in range(100, 1001, 100))
    runs: int = 50
    md_steps: int = 2000
    frame_interval: int = 20
    pressure_MPa: float = ATMOSPHERE_MPA
    d3: bool = False
    selection: str = "cbad"
    cbad_pick: str = "first"
    grade_threshold: float = 1.0
    resolutions: dict = field(default_factory=dict)
    ramp_steps: int = 20000
    ramp_segments: int = 20
    test_size: int = 100
    extra_random: int = 0
    final_md_steps: int = 2000
    twojmax: int = 8
    rcutfac: float = 4.0
    energy_weight: float = ENERGY_WEIGHT
    stress_weight: float = STRESS_WEIGHT
    max_force: float = 20.0
    max_temperature_factor: float = 3.0
    bond_tolerance: float = 1.5
    max_workers: int | None = None
    executor: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperatures", tuple(float(t) for t in self.temperatures))
        if self.selection not in SELECTIONS:
            raise LearnError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.cbad_pick not in CBAD_PICKS:
            raise LearnError(f"cbad_pick must be one of {CBAD_PICKS}, got {self.cbad_pick!r}")
        for name in ("n_perturbed", "runs", "md_steps", "frame_interval", "ramp_segments"):
            if getattr(self, name) < 1:
                raise LearnError(f"{name} must be at least 1, got {getattr(self, name)}")
        if any(t <= 0 for t in self.temperatures):
            raise LearnError(f"temperatures must be positive, got {self.temperatures}")

    #: Keys that may change between a run and its resume (they do not change results).
    RUNTIME_KEYS = ("max_workers", "executor")

    @classmethod
    def from_toml(cls, path: str | Path) -> LearnSettings:
        """Read settings from a TOML file.

        Raises
        ------
        LearnError
            The file is missing or is not TOML, a key is unknown or a value is invalid.
        """
        path = Path(path)
        if not path.is_file():
            raise LearnError(f"{path}: no such settings file; write one with 'mofsnap learn --write-config FILE'")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as error:
            raise LearnError(f"{path}: not a TOML file ({error})") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LearnError(f"{path}: unknown settings {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_toml(self) -> str:
        """The settings as a TOML document (``None`` values are left out)."""
        lines = []
        for key, value in asdict(self).items():
            if value is None:
                continue
            if isinstance(value, dict):
                body = ", ".join(f"{k} = {v!r}" for k, v in value.items())
                lines.append(f"{key} = {{{body}}}")
            elif isinstance(value, tuple):
                lines.append(f"{key} = [{', '.join(repr(v) for v in value)}]")
            else:
                lines.append(f"{key} = {json.dumps(value)}")
        return "\n".join(lines) + "\n"


#: The README's main job: a reduced schedule on the 106-atom MOF-5 cell that takes about 15 minutes on 2 cores.
#: Its cell strains are ±2 % (reference: ±0.5 % of the 424-atom cell): the small cell's volume fluctuates
#: more in NPT, and the model must know the compressed and expanded cell to keep the barostat out of holes.
#: Its MD runs with D3, as the production MD does: D3 shrinks the cell by ~2 %, a region the model must see.
DEMO = LearnSettings(relax_fmax=0.1, n_perturbed=80, strain=0.02, d3=True,
                     temperatures=tuple(float(t) for t in range(100, 801, 100)),
                     runs=10, md_steps=500, frame_interval=10, ramp_steps=2000, ramp_segments=10, test_size=30,
                     final_md_steps=2000)
