"""What an active-learning campaign reports: per-generation records, the final model's errors, the summary file.

:class:`LearnSummary` is written to ``summary.json`` by :meth:`mofsnap.learn.ActiveLearning.run` and read back
by :meth:`LearnSummary.read`; :class:`PoolResult` is the result of :func:`mofsnap.learn.learn_from_pool`. Both
are versioned result files (:mod:`mofsnap.results`) that read back equal to what was written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ..results import read_result, write_result


Result = TypeVar("Result", bound="ResultFile")


class ResultFile:
    """``write(path)``/``read(path)`` of a result dataclass as a versioned JSON file of kind :attr:`KIND`."""

    KIND: ClassVar[str]
    VERSION: ClassVar[int]

    def write(self, path: str | Path) -> Path:
        """Write the result as a versioned JSON file; :meth:`read` gives back an equal result."""
        return write_result(path, self.KIND, self.VERSION, asdict(self))

    @classmethod
    def read(cls: type[Result], path: str | Path) -> Result:
        """Read a file written by :meth:`write`."""
        return cls.from_dict(read_result(path, cls.KIND, cls.VERSION))

    @classmethod
    def from_dict(cls: type[Result], data: dict[str, Any]) -> Result:
        """The result of its :func:`dataclasses.asdict` dictionary."""
        return cls(**data)


@dataclass(frozen=True)
class RMSE:
    """Root-mean-square errors of a model on a set of labelled configurations.

    Attributes
    ----------
    energy : float
        Energy per atom, meV/atom.
    forces : float
        Force components, meV/Å.
    stress : float
        Stress components, MPa.
    n : int
        Number of configurations.
    """

    energy: float
    forces: float
    stress: float
    n: int

    @classmethod
    def from_metrics(cls, metrics: dict[str, Any]) -> RMSE:
        """The RMSE of one set of a :class:`mofsnap.fit.FitReport`'s ``metrics``."""
        return cls(float(metrics["energy_rmse"]), float(metrics["forces_rmse"]), float(metrics["stress_rmse"]),
                   int(metrics["n_configurations"]))


def _rmse_or_none(data: dict | None) -> RMSE | None:
    return None if data is None else RMSE(**data)


@dataclass(frozen=True)
class GenerationRecord:
    """One generation of the loop (generation 0 is the perturbed-copies step).

    Attributes
    ----------
    generation : int
        ``k``.
    temperature : float
        ``T_k`` of the MD (K); 0 for generation 0.
    selected, labelled, failed : int
        Configurations selected, labelled successfully, and labels failed in this generation.
    train : RMSE
        The generation's model on its whole training set (``train.n`` is the training-set size).
    offered : int or None
        Generation 0: perturbed copies offered to CBAD.
    runs, stopped : int or None
        Generations >= 1: MD runs, and runs stopped by the blow-up guard.
    grade_mean, grade_max : float or None
        Generations >= 1: extrapolation grades of the picked frames (None without picks).
    previous_model_on_new : RMSE or None
        Generations >= 1: the previous model on this generation's new labels (None without new labels).
    """

    generation: int
    temperature: float
    selected: int
    labelled: int
    failed: int
    train: RMSE
    offered: int | None = None
    runs: int | None = None
    stopped: int | None = None
    grade_mean: float | None = None
    grade_max: float | None = None
    previous_model_on_new: RMSE | None = None

    @property
    def n_train(self) -> int:
        """Size of the generation's training set."""
        return self.train.n

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRecord:
        """The record of its :func:`dataclasses.asdict` dictionary."""
        return cls(**{**data, "train": RMSE(**data["train"]),
                      "previous_model_on_new": _rmse_or_none(data["previous_model_on_new"])})


@dataclass(frozen=True)
class CurvePoint:
    """One generation's model on the final test set.

    Attributes
    ----------
    generation, n_train : int
        The generation and its number of training labels.
    test : RMSE or None
        Its test errors (None without test frames).
    test_interval : dict or None
        Per quantity (``energy``, ``forces``, ``stress``), the 95 % bootstrap interval ``[low, high]`` of the
        test RMSE over the test frames (:func:`mofsnap.learn.scoring.rmse_intervals`).
    change_interval : dict or None
        Per quantity, the 95 % paired-bootstrap interval of the change of the test RMSE from the previous
        generation's model (:func:`mofsnap.learn.scoring.change_intervals`; None for the first point). A rise
        whose interval lies above zero is beyond the noise of the test frames.
    """

    generation: int
    n_train: int
    test: RMSE | None
    test_interval: dict[str, list[float]] | None = None
    change_interval: dict[str, list[float]] | None = None

    def rises_beyond_noise(self) -> list[str]:
        """The quantities whose test RMSE rose from the previous generation beyond the noise of the test set."""
        return [q for q, (low, _) in (self.change_interval or {}).items() if low > 0]


@dataclass(frozen=True)
class ValidationRun(ResultFile):
    """One guarded NPT run of the validation with the final SNAP model (+ D3 when the labels lack dispersion).

    Attributes
    ----------
    temperature_K : float
        Target temperature.
    planned_steps, steps : int
        Steps asked for, and steps done (fewer when the guard stopped the run).
    stopped : str or None
        The guard's reason (guard, value, atoms/types, time) when it stopped the run.
    ns_per_day : float
        Speed of the last call that integrated steps (NaN when resumed complete).
    mean_temperature_K, mean_volume_A3 : float
        Means over the second half of the run's frames.
    max_volume_change : float
        Largest relative volume change from the start over the run's frames.
    mean_cell_lengths : list of float
        Mean a, b, c (Å) over the second half.
    trajectory : str
        The run's extxyz file.
    """

    temperature_K: float
    planned_steps: int
    steps: int
    stopped: str | None
    ns_per_day: float
    mean_temperature_K: float
    mean_volume_A3: float
    max_volume_change: float
    mean_cell_lengths: list[float]
    trajectory: str

    KIND = "learn-validation-run"
    VERSION = 1


@dataclass(frozen=True)
class ValidationCheck:
    """One check of the validation: its name, whether it passed, and what was found."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Validation(ResultFile):
    """The validation that closes a campaign (``final/validation.json``; see :mod:`mofsnap.learn.validation`).

    Attributes
    ----------
    runs : list of ValidationRun
        The 300 K run and the run at the highest training temperature.
    test : RMSE or None
        The final model on the held-out test frames.
    checks : list of ValidationCheck
        Both runs, the test errors and the 300 K lattice.
    """

    runs: list[ValidationRun]
    test: RMSE | None
    checks: list[ValidationCheck]

    KIND = "learn-validation"
    VERSION = 1

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def verdict(self) -> str:
        """One line: ``validation passed`` or ``validation failed:`` and each failed check with its detail."""
        if self.passed:
            return "validation passed: " + "; ".join(f"{c.name}: {c.detail}" for c in self.checks)
        return "validation failed: " + "; ".join(f"{c.name}: {c.detail}" for c in self.checks if not c.passed)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Validation:
        """The validation of its :func:`dataclasses.asdict` dictionary."""
        return cls([ValidationRun.from_dict(r) for r in data["runs"]], _rmse_or_none(data["test"]),
                   [ValidationCheck(**c) for c in data["checks"]])


@dataclass(frozen=True)
class FinalRecord:
    """The final model, its errors and the learning curve.

    Attributes
    ----------
    model : str
        Prefix of the final model files.
    train : RMSE
        The final model on its training set.
    test : RMSE or None
        The final model on the test set (None when the ramp gave no test frame).
    learning_curve : list of CurvePoint
        Every generation's model on the test set (the last entry is the final model).
    """

    model: str
    train: RMSE
    test: RMSE | None
    learning_curve: list[CurvePoint] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinalRecord:
        """The record of its :func:`dataclasses.asdict` dictionary (without intervals if written before them)."""
        return cls(data["model"], RMSE(**data["train"]), _rmse_or_none(data["test"]),
                   [CurvePoint(p["generation"], p["n_train"], _rmse_or_none(p["test"]), p.get("test_interval"),
                               p.get("change_interval")) for p in data["learning_curve"]])


@dataclass(frozen=True)
class RefinementRound:
    """One round of learning from a failed validation (see ``LearnSettings.refine_rounds``).

    Attributes
    ----------
    round : int
        1 for the first round.
    generation : int
        The generation its labels and fit belong to (after the final fit's).
    learned_from : Validation
        The failed validation whose guard stops gave the frames.
    frames, labelled : int
        Frames taken before the stops, and labelled successfully.
    previous_model_on_new : RMSE
        The model that failed on these labels, before it learned them: near its test errors, it agreed with
        the reference on the approach to the failure (the reference itself goes there); far above them, the
        failure was the model's.
    train : RMSE
        The refitted model on its training set.
    test : RMSE or None
        The refitted model on the held-out test set.
    """

    round: int
    generation: int
    learned_from: Validation
    frames: int
    labelled: int
    previous_model_on_new: RMSE
    train: RMSE
    test: RMSE | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RefinementRound:
        """The round of its :func:`dataclasses.asdict` dictionary."""
        return cls(**{**data, "learned_from": Validation.from_dict(data["learned_from"]),
                      "previous_model_on_new": RMSE(**data["previous_model_on_new"]),
                      "train": RMSE(**data["train"]), "test": _rmse_or_none(data["test"])})


@dataclass(frozen=True)
class LearnSummary(ResultFile):
    """The result of a campaign (``summary.json`` of its work directory).

    Attributes
    ----------
    generations : list of GenerationRecord
        Generation 0 (perturbed copies) and one record per temperature.
    final : FinalRecord
        Final model, test errors, learning curve.
    validation : Validation
        The validation of the campaign's model, whose verdict is the campaign's.
    labels, failed_labels : int
        Labels in the store, and labelling attempts that failed.
    wall_seconds : float
        Wall time of the call that produced this summary (a resumed call skips finished work).
    refinements : list of RefinementRound
        The rounds of learning from failed validations, in order (empty when the first validation passed).
    """

    generations: list[GenerationRecord]
    final: FinalRecord
    validation: Validation
    labels: int
    failed_labels: int
    wall_seconds: float
    refinements: list[RefinementRound] = field(default_factory=list)

    KIND = "learn-summary"
    VERSION = 3

    @property
    def first_validation(self) -> Validation:
        """The validation of the model before any refinement."""
        return self.refinements[0].learned_from if self.refinements else self.validation

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearnSummary:
        """The summary of its :func:`dataclasses.asdict` dictionary."""
        return cls([GenerationRecord.from_dict(g) for g in data["generations"]], FinalRecord.from_dict(data["final"]),
                   Validation.from_dict(data["validation"]), data["labels"], data["failed_labels"], data["wall_seconds"],
                   [RefinementRound.from_dict(r) for r in data["refinements"]])


@dataclass(frozen=True)
class PoolResult(ResultFile):
    """The result of :func:`mofsnap.learn.learn_from_pool`.

    Attributes
    ----------
    offered, selected, labelled : int
        Frames in the trajectories, selected by CBAD, labelled successfully.
    model : str
        Prefix of the fitted model files.
    train : RMSE
        The model on its training set.
    validation : RMSE or None
        The model on the held-out labels (None when none were held out).
    """

    offered: int
    selected: int
    labelled: int
    model: str
    train: RMSE
    validation: RMSE | None

    KIND = "learn-pool-result"
    VERSION = 1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoolResult:
        """The result of its :func:`dataclasses.asdict` dictionary."""
        return cls(**{**data, "train": RMSE(**data["train"]), "validation": _rmse_or_none(data["validation"])})
