"""Temperature-driven active learning of a SNAP model, as one call and one command (``mofsnap learn``).

- :mod:`~mofsnap.learn.settings`: :class:`LearnSettings` (the TOML config file) and the :data:`DEMO` schedule;
- :mod:`~mofsnap.learn.loop`: :class:`ActiveLearning`, the resumable loop (MOF-5 route);
- :mod:`~mofsnap.learn.pool`: :func:`learn_from_pool`, select-label-fit from existing trajectories (ZIF-8 route);
- :mod:`~mofsnap.learn.md_tasks`: the loop's MD runs as crash-safe tasks;
- :mod:`~mofsnap.learn.validation`: :func:`validate`, the guarded closing runs and checks that end a campaign;
- :mod:`~mofsnap.learn.replay`: whose failure a validation's stop is, replayed with the model and the reference;
- :mod:`~mofsnap.learn.processes`: the work-directory lock and worker processes that end with the campaign;
- :mod:`~mofsnap.learn.summary`: :class:`LearnSummary`, :class:`Validation` and the other results;
- :mod:`~mofsnap.learn.scoring`: a model's errors on labelled configurations, and which rises of the learning
  curve are beyond the noise of the test frames;
- :mod:`~mofsnap.learn.package`: the campaign's model card and :func:`export_model`.
"""

from .loop import DEFAULT_WORKDIR, ActiveLearning, load_structure, perturbed_copies
from .md_tasks import EXPLOSIONS, MDTask, read_run, run_md_task, run_tasks
from .package import campaign_card, export_model
from .pool import learn_from_pool
from .processes import WorkdirLock
from .replay import StopReplay, StopReplays
from .scoring import prediction_errors
from .settings import CBAD_PICKS, DEMO, SELECTIONS, LearnSettings
from .summary import (RMSE, CurvePoint, FinalRecord, GenerationRecord, LearnSummary, PoolResult, RefinementRound,
                      Validation, ValidationCheck, ValidationRun)
from .validation import VALIDATION_TEMPERATURE_K, ValidationGuard, frames_before_failure, validate

__all__ = ["CBAD_PICKS", "DEFAULT_WORKDIR", "DEMO", "EXPLOSIONS", "RMSE", "SELECTIONS", "VALIDATION_TEMPERATURE_K",
           "ActiveLearning", "CurvePoint", "FinalRecord", "GenerationRecord", "LearnSettings", "LearnSummary",
           "MDTask", "PoolResult", "RefinementRound", "StopReplay", "StopReplays", "Validation", "ValidationCheck", "ValidationGuard", "ValidationRun",
           "WorkdirLock",
           "campaign_card", "export_model", "frames_before_failure", "learn_from_pool", "load_structure", "perturbed_copies", "prediction_errors", "read_run", "run_md_task",
           "run_tasks", "validate"]
