"""Learning curves: errors of fits on growing (or ready-made) training sets."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from .. import plotting
from ..exceptions import FitError
from ..results import read_result, write_result
from .leastsquares import KINDS, REPORT_UNITS
from .training import fit_snap

#: Kind and format version of the JSON file of a :class:`LearningCurve`.
CURVE_KIND, CURVE_VERSION = "learning-curve", 1


@dataclass
class LearningCurve:
    """Errors of fits on growing training sets; ``metrics[i]`` is the :class:`FitReport` metrics of fit i."""

    sizes: list[int]
    labels: list[str]
    metrics: list[dict]

    def plot(self, path: str | Path) -> Path:
        """RMSE of energy, forces and stress versus training-set size (train and validation) as PNG."""
        curves = {kind: {name: [m[name][f"{kind}_rmse"] for m in self.metrics]
                         for name in ("train", "validation") if name in self.metrics[0]} for kind in KINDS}
        units = {kind: REPORT_UNITS[kind][0] for kind in KINDS}
        plain = self.labels == [str(n) for n in self.sizes]  # random subsets: the labels are the sizes
        return plotting.learning_curve_figure(self.sizes, curves, units, path, labels=None if plain else self.labels)

    def write(self, path: str | Path) -> Path:
        """Write sizes, labels and metrics as a versioned JSON file."""
        return write_result(path, CURVE_KIND, CURVE_VERSION,
                            {"sizes": self.sizes, "labels": self.labels, "metrics": self.metrics})

    @classmethod
    def read(cls, path: str | Path) -> LearningCurve:
        """The learning curve written by :meth:`write`, equal to the one written."""
        data = read_result(path, CURVE_KIND, CURVE_VERSION)
        return cls(data["sizes"], data["labels"], data["metrics"])


def learning_curve(train: Sequence[Atoms] | dict[str, Sequence[Atoms]], validation: Sequence[Atoms],
                   sizes: Sequence[int] | None = None, *, seed: int = 0, cache_dir: str | Path | None = None,
                   progress: bool = True, **fit_kwargs) -> LearningCurve:
    """Fit on growing training sets and collect the errors.

    Parameters
    ----------
    train : sequence of Atoms, or dict label -> sequence of Atoms
        With ``sizes``: one pool from which nested random subsets (seeded) of each size are drawn.
        Without: ready-made training sets, e.g. ``{"0.10 Å": ..., "0.05 Å": ...}`` from different CBAD
        resolutions, plotted against their sizes and annotated with their labels.
    validation : sequence of Atoms
        Held-out set on which every fit is scored (and alpha chosen, unless given in ``fit_kwargs``).
    sizes : sequence of int, optional
        Training-set sizes to draw from the pool.
    seed : int
        Seed of the subset order.
    cache_dir : path, optional
        Descriptor cache shared by all fits (a temporary one if omitted), so each configuration's
        descriptors are computed once.
    **fit_kwargs
        Passed to :func:`fit_snap` (``model``, weights, ``alpha``...).
    """
    if sizes is not None:
        pool = list(train)
        if max(sizes) > len(pool):
            raise FitError(f"size {max(sizes)} exceeds the {len(pool)} configurations available")
        order = np.random.default_rng(seed).permutation(len(pool))
        sets = {f"{n}": [pool[i] for i in order[:n]] for n in sorted(sizes)}
    elif isinstance(train, dict):
        sets = {str(k): list(v) for k, v in train.items()}
    else:
        raise FitError("give sizes with one pool of configurations, or a dict of training sets")
    metrics = []
    with tempfile.TemporaryDirectory(prefix="mofsnap-descriptors-") as tmp:
        for label, images in tqdm(sets.items(), desc="learning curve", disable=not progress):
            _, report = fit_snap(images, validation, cache_dir=cache_dir or tmp, progress=False, **fit_kwargs)
            metrics.append(report.metrics)
    return LearningCurve([len(v) for v in sets.values()], list(sets), metrics)
