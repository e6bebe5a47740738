"""Model cards: what a SNAP model was trained on, how well it does, where it is stable and how to use it.

A card travels with the model files (``PREFIX.json`` for programs, ``PREFIX.md`` for people). The ready models
in ``data/models/`` each carry one, and :func:`packaged_model` resolves their names
(``SNAPCalculator("mof5-gfn1")``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import ModelError
from .resources import DATA_DIR
from .results import read_result, write_result

KIND = "model-card"
VERSION = 1


@dataclass(frozen=True)
class ErrorFigures:
    """Root-mean-square errors of a model on ``n`` held-out configurations."""

    energy_meV_per_atom: float
    forces_meV_per_A: float
    stress_MPa: float
    n: int


@dataclass(frozen=True)
class StabilityRun:
    """One guarded MD run of the model (SNAP + D3): its protocol and how it ended."""

    ensemble: str
    temperature_K: float
    picoseconds: float
    stopped: str | None
    mean_temperature_K: float
    max_volume_change_percent: float

    @property
    def stable(self) -> bool:
        """True when no guard stopped the run."""
        return self.stopped is None


@dataclass(frozen=True)
class ModelCard:
    """Everything a user needs to judge a SNAP model before using it.

    Attributes
    ----------
    name : str
        The model's name, also the prefix of its files (``mof5-gfn1``).
    framework : str
        The framework and cell it was trained on.
    formula : str
        Chemical formula of the training cell.
    atom_types : list of str
        The atom types of the model, in snapcoeff order.
    reference : str
        The reference method of the labels (``GFN1-xTB (tblite)`` or a CP2K preset).
    training_labels, test_labels : int
        Configurations in the fit and held out for the test errors.
    temperatures_K : list of float
        Temperatures of the active-learning generations.
    test : ErrorFigures or None
        Errors on the held-out configurations.
    stability : list of StabilityRun
        The validation's guarded NPT runs with the final model.
    cell_lengths_300K_A, cell_lengths_reference_A : list of float or None
        Mean cell lengths a, b, c in the 300 K validation run, and those of the reference-relaxed structure.
    validation_passed : bool
        The verdict of the validation (stability runs, test errors and lattice within their limits).
    validation_checks : list of str
        One line per check of the validation, passed or failed, with its figures.
    use_with : dict
        Calculator settings to use with the model (``{"d3": {...}, "zbl": None}``).
    config_toml : str
        The active-learning settings that made the model.
    notes : list of str
        Limits and warnings a user must know (e.g. "GFN1-xTB labels, not DFT").
    mofsnap_version : str
        Version of mofsnap that trained it.
    """

    name: str
    framework: str
    formula: str
    atom_types: list[str]
    reference: str
    training_labels: int
    test_labels: int
    temperatures_K: list[float]
    test: ErrorFigures | None
    stability: list[StabilityRun]
    cell_lengths_300K_A: list[float] | None
    cell_lengths_reference_A: list[float] | None
    validation_passed: bool
    validation_checks: list[str]
    use_with: dict[str, Any]
    config_toml: str
    notes: list[str] = field(default_factory=list)
    mofsnap_version: str = ""

    @property
    def verdict(self) -> str:
        """``"passed"`` or ``"failed"``: the validation's verdict."""
        return "passed" if self.validation_passed else "failed"

    @property
    def stable_temperature_range_K(self) -> tuple[float, float] | None:
        """Lowest and highest temperature of the stability runs that finished (None if none did)."""
        stable = [run.temperature_K for run in self.stability if run.stable]
        return (min(stable), max(stable)) if stable else None

    def write(self, path: str | Path) -> Path:
        """Write the card as versioned JSON (``path``) and as Markdown beside it (``.md``)."""
        path = write_result(path, KIND, VERSION, asdict(self))
        path.with_suffix(".md").write_text(self.markdown())
        return path

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """Read a card written by :meth:`write`."""
        data = read_result(path, KIND, VERSION)
        data["test"] = None if data["test"] is None else ErrorFigures(**data["test"])
        data["stability"] = [StabilityRun(**run) for run in data["stability"]]
        return cls(**data)

    def markdown(self) -> str:
        """The card for people: a short page with the figures, the stability runs and how to use the model."""
        rows = "\n".join(f"| {r.ensemble.upper()} {r.temperature_K:.0f} K | {r.picoseconds:g} ps | "
                         f"{'stable' if r.stable else 'stopped: ' + str(r.stopped)} | {r.mean_temperature_K:.0f} K | "
                         f"{r.max_volume_change_percent:.1f} % |" for r in self.stability)
        lattice = ("" if self.cell_lengths_300K_A is None or self.cell_lengths_reference_A is None else
                   f"\nMean cell lengths at 300 K: {', '.join(f'{x:.3f}' for x in self.cell_lengths_300K_A)} Å; "
                   f"reference-relaxed: {', '.join(f'{x:.3f}' for x in self.cell_lengths_reference_A)} Å.\n")
        checks = "\n".join(f"- {check}" for check in self.validation_checks)
        notes = "\n".join(f"- {note}" for note in self.notes)
        test = ("none" if self.test is None else
                f"{self.test.energy_meV_per_atom:.2f} meV/atom, {self.test.forces_meV_per_A:.0f} meV/Å, "
                f"{self.test.stress_MPa:.1f} MPa ({self.test.n} configurations)")
        return f"""# {self.name}

SNAP model of {self.framework} ({self.formula}), atom types {", ".join(self.atom_types)}.

| | |
|---|---|
| reference method | {self.reference} |
| training / test configurations | {self.training_labels} / {self.test_labels} |
| active-learning temperatures | {", ".join(f"{t:.0f}" for t in self.temperatures_K)} K |
| test RMSE | {test} |
| validation verdict | {self.verdict} |
| use with | {self.use_with} |
| trained by | mofsnap {self.mofsnap_version} |

## Validation

{checks}

| run | length | outcome | mean T | largest volume change |
|---|---|---|---|---|
{rows}
{lattice}
## Notes

{notes}

## Settings that made it

```toml
{self.config_toml.rstrip()}
```
"""


def packaged_models() -> list[str]:
    """Names of the ready models shipped in ``data/models``."""
    folder = DATA_DIR / "models"
    return sorted(p.name for p in folder.iterdir() if (p / f"{p.name}.snapcoeff").is_file()) if folder.is_dir() else []


def packaged_model(name: str) -> Path:
    """The file prefix of a ready model (``data/models/NAME/NAME``).

    Raises
    ------
    ModelError
        No ready model of that name; the message lists the names there are.
    """
    prefix = DATA_DIR / "models" / name / name
    if not prefix.with_name(f"{name}.snapcoeff").is_file():
        raise ModelError(f"no ready model named {name!r}; the ready models are {', '.join(packaged_models())} "
                         "(or give the prefix of your own PREFIX.snapcoeff/PREFIX.snapparam)")
    return prefix
