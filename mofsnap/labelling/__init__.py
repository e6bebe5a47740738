"""Label configurations with a reference method through a :class:`concurrent.futures.Executor` into ``ase.db``.

Three parts: :mod:`~mofsnap.labelling.store` (the :class:`LabelStore`: one row per request key, enforced by
the database, written under a lock), :mod:`~mofsnap.labelling.checks` (inputs refused before any reference
call, labels validated before they count: :class:`LabelChecks`) and :mod:`~mofsnap.labelling.driver`
(:func:`label`: executors, worker deaths, timeouts, and :func:`write_report`).

Command line: ``mofsnap label frames.extxyz -o labels/ --reference gfn1-xtb --workers 2`` (or
``python -m mofsnap.labelling``).
"""

from .checks import LabelChecks, check_configuration
from .driver import LabelSummary, label, write_report
from .store import PROVENANCE_KEYS, STATUSES, LabelStore, label_key

__all__ = ["LabelChecks", "LabelStore", "LabelSummary", "PROVENANCE_KEYS", "STATUSES", "check_configuration",
           "label", "label_key", "write_report"]
