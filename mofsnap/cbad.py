"""CBAD selection: keep a configuration only if it visits a new bin of some Cell/Bond/Angle/Dihedral descriptor.

A configuration is described by its 6 cell parameters and the value of every bond, angle and dihedral of a fixed
:class:`~mofsnap.topology.Topology`, grouped by descriptor type (``"cell:a"`` ... ``"cell:gamma"``,
``"bond:C3a-N3a"``, ``"angle:C3a-N3a-Zn4a"``, ``"dihedral:..."``). Each value is binned as
``int(value / resolution)``. :class:`CBADFilter` keeps, per descriptor type, the set of bins already seen in the
training set; a configuration is accepted when at least one of its bins is new, and its bins are then added.

Units and bins
--------------
Cell lengths and bonds in Å; cell angles, bond angles and dihedrals in degrees (the reference cell-angle
resolution 0.07 rad is 4.01°). Dihedrals, measured in (-180°, 180°], are mapped to [0°, 360°) before binning
(negative values get +360°). So every value binned is non-negative, ``int(value / Δ)`` is the floor, every bin
has width Δ, and the two sides of the ±180° wrap land in the neighbouring bins ``int(180 / Δ) - 1`` and
``int(180 / Δ)`` rather than in bins at opposite ends of a range; the same geometry always gives the same bin.

Bad input
---------
A frame with another atom count or element order than the reference, or with NaN/infinite positions or cell,
raises :class:`CBADError` naming the frame. A frame with a bond longer than ``bond_tolerance`` times its
reference length is rejected and counted (``stats["rejected_broken"]``, and per bond type in
``stats["broken_bond_types"]``); it never enters the bins.

Command
-------
``mofsnap cbad pool.extxyz -o selection/ --bond 0.05 ...`` (or ``python -m mofsnap.cbad``; see ``--help``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import numpy as np
from ase import Atoms
from tqdm import tqdm

from . import plotting
from .exceptions import CBADError
from .results import read_result, write_result
from .topology import BOND_SCALE, BROKEN_BOND_TOLERANCE, Topology, TopologyError, cell_parameters, stack_frames

log = logging.getLogger(__name__)

#: Kind and format version of the state file of a :class:`CBADFilter`.
STATE_KIND, STATE_VERSION = "cbad-state", 1
CELL_NAMES = ("a", "b", "c", "alpha", "beta", "gamma")
KINDS = ("cell", "bond", "angle", "dihedral")
_BIN_BITS = 32


@dataclass(frozen=True)
class Resolutions:
    """Bin widths per descriptor kind (defaults from the reference work).

    Attributes
    ----------
    cell_length : float
        Cell lengths a, b, c (Å).
    cell_angle : float
        Cell angles α, β, γ (degrees; default 0.07 rad).
    bond : float
        Bond lengths (Å).
    angle : float
        Bond angles (degrees).
    dihedral : float
        Dihedral angles (degrees).
    """

    cell_length: float = 0.05
    cell_angle: float = float(np.degrees(0.07))
    bond: float = 0.05
    angle: float = 5.0
    dihedral: float = 10.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (np.isfinite(value) and value > 0):
                raise CBADError(f"resolution {name} must be a positive number, got {value}")


def _batches(frames: Iterable[Atoms], size: int) -> Iterator[list[Atoms]]:
    iterator = iter(frames)
    while batch := list(islice(iterator, size)):
        yield batch


class CBADFilter:
    """Order-dependent CBAD filter over ASE Atoms of one fixed topology.

    Parameters
    ----------
    reference : Atoms or Topology
        Typed reference structure (``atoms.arrays["atom_types"]``) or a ready topology.
    resolutions : Resolutions, dict or None
        Bin widths; a dict overrides some of the defaults, e.g. ``{"bond": 0.02}``.
    bond_tolerance : float
        A frame is rejected as broken when a bond exceeds this factor times its reference length.
    batch_size : int
        Frames measured together (vectorised) when filtering an iterable.
    scale : float
        Bond criterion used to build the topology from ``reference`` Atoms.

    Attributes
    ----------
    topology : Topology
    descriptor_types : list of str
        ``"cell:a"`` ... ``"cell:gamma"``, then ``"bond:..."``, ``"angle:..."``, ``"dihedral:..."`` type keys.
    stats : dict
        Counters: frames offered, accepted, rejected with no new bin (``rejected_known``) or with broken bonds
        (``rejected_broken``, per bond type in ``broken_bond_types``), new but not picked (per-run mode),
        included training frames, and per descriptor type how many accepted frames had a new bin there.

    Examples
    --------
    >>> f = CBADFilter(reference_atoms)                            # doctest: +SKIP
    >>> selected = [a for a in ase.io.iread("md.extxyz") if f.accept(a)]  # doctest: +SKIP
    >>> f.write("cbad_state.json")                                 # doctest: +SKIP
    """

    def __init__(self, reference: Atoms | Topology, resolutions: Resolutions | dict | None = None,
                 bond_tolerance: float = BROKEN_BOND_TOLERANCE, batch_size: int = 256,
                 scale: float = BOND_SCALE) -> None:
        if bond_tolerance <= 1.0:
            raise CBADError(f"bond_tolerance must exceed 1 (a factor on reference bond lengths), got {bond_tolerance}")
        if batch_size < 1:
            raise CBADError(f"batch_size must be at least 1, got {batch_size}")
        self.topology = reference if isinstance(reference, Topology) else Topology.from_atoms(reference, scale)
        if isinstance(resolutions, dict):
            resolutions = Resolutions(**resolutions)
        self.resolutions = resolutions or Resolutions()
        self.bond_tolerance = float(bond_tolerance)
        self.batch_size = int(batch_size)

        topo, res = self.topology, self.resolutions
        self.descriptor_types: list[str] = (
            [f"cell:{name}" for name in CELL_NAMES] + [f"bond:{key}" for key in topo.bond_types]
            + [f"angle:{key}" for key in topo.angle_types] + [f"dihedral:{key}" for key in topo.dihedral_types])
        offsets = np.cumsum([0, 6, len(topo.bond_types), len(topo.angle_types)])
        self._column_type = np.concatenate([
            np.arange(6), offsets[1] + topo.bond_type_index, offsets[2] + topo.angle_type_index,
            offsets[3] + topo.dihedral_type_index]).astype(np.int64)
        self._type_resolution = np.concatenate([
            np.repeat([res.cell_length, res.cell_angle], 3), np.full(len(topo.bond_types), res.bond),
            np.full(len(topo.angle_types), res.angle), np.full(len(topo.dihedral_types), res.dihedral)])
        self._column_resolution = self._type_resolution[self._column_type]
        self._known = np.zeros(0, dtype=np.int64)
        self.stats: dict = {"offered": 0, "accepted": 0, "rejected_known": 0, "rejected_broken": 0,
                            "not_picked": 0, "included": 0,
                            "new_bins_by_type": Counter(), "broken_bond_types": Counter()}

    # ------------------------------------------------------------------ descriptors
    def descriptors(self, positions: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Descriptor values of a batch of frames, in binning units.

        Parameters
        ----------
        positions : (nframe, natom, 3) array
        cells : (nframe, 3, 3) array

        Returns
        -------
        values : (nframe, ncolumn) array
            Cell parameters, bonds, angles, dihedrals mapped to [0, 360), in this order.
        broken : (nframe, nbond) bool array
            Bonds beyond ``bond_tolerance`` times their reference length.
        """
        measured = self.topology.measure(positions, cells)
        broken_bonds = measured["bond"] > self.bond_tolerance * self.topology.reference_bond_lengths
        values = np.concatenate([cell_parameters(cells), measured["bond"], measured["angle"],
                                 np.mod(measured["dihedral"], 360.0)], axis=1)
        return values, broken_bonds

    def bin_indices(self, values: np.ndarray) -> np.ndarray:
        """``int(value / resolution)`` of every column of :meth:`descriptors` (values are >= 0: the floor)."""
        return np.floor(values / self._column_resolution).astype(np.int64)

    def _keys(self, values: np.ndarray) -> np.ndarray:
        """One int64 per value: descriptor type in the high bits, its bin index in the low bits."""
        return (self._column_type << _BIN_BITS) | self.bin_indices(values)

    def _describe(self, frames: list[Atoms], first_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Validate a batch and return (keys, broken bond mask)."""
        for n, atoms in enumerate(frames):
            try:
                self.topology.check(atoms)
            except TopologyError as error:
                raise CBADError(f"frame {first_index + n}: {error}") from None
        positions, cells = stack_frames(frames)
        bad = ~(np.isfinite(positions).all(axis=(1, 2)) & np.isfinite(cells).all(axis=(1, 2)))
        if bad.any():
            raise CBADError(f"frame {first_index + int(np.argmax(bad))}: positions or cell contain NaN or inf")
        try:
            values, broken = self.descriptors(positions, cells)
        except TopologyError as error:
            raise CBADError(f"frames {first_index}..{first_index + len(frames) - 1}: {error}") from None
        return self._keys(values), broken

    # ------------------------------------------------------------------ state updates
    def _is_known(self, keys: np.ndarray) -> np.ndarray:
        """Elementwise: is the key among the known (sorted) keys."""
        if len(self._known) == 0:
            return np.zeros(keys.shape, dtype=bool)
        position = np.minimum(np.searchsorted(self._known, keys), len(self._known) - 1)
        return self._known[position] == keys

    def _add(self, keys: np.ndarray) -> np.ndarray:
        """Add one frame's keys; return the descriptor-type ids that got a new bin."""
        new = np.unique(keys[~self._is_known(keys)])
        self._known = np.union1d(self._known, new)
        return np.unique(new >> _BIN_BITS)

    def _count_broken(self, broken: np.ndarray) -> None:
        self.stats["rejected_broken"] += 1
        types = np.unique(self.topology.bond_type_index[broken])
        self.stats["broken_bond_types"].update(self.topology.bond_types[t] for t in types)

    def _accept(self, keys: np.ndarray) -> None:
        self.stats["accepted"] += 1
        self.stats["new_bins_by_type"].update(self.descriptor_types[t] for t in self._add(keys))

    def _offer(self, keys: np.ndarray, broken: np.ndarray, stop_after_first: bool = False) -> np.ndarray:
        """Greedy pass over a described batch; returns the accepted mask (frames after a stop stay unoffered)."""
        broken_any = broken.any(axis=1)
        maybe_new = ~self._is_known(keys).all(axis=1)
        accepted = np.zeros(len(keys), dtype=bool)
        for n in range(len(keys)):
            self.stats["offered"] += 1
            if broken_any[n]:
                self._count_broken(broken[n])
            elif maybe_new[n] and not self._is_known(keys[n]).all():
                self._accept(keys[n])
                accepted[n] = True
                if stop_after_first:
                    break
            else:
                self.stats["rejected_known"] += 1
        return accepted

    # ------------------------------------------------------------------ public filtering
    def accept(self, atoms: Atoms) -> bool:
        """Offer one configuration: True (and its bins are added) if it has a new bin and no broken bond."""
        return bool(self._offer(*self._describe([atoms], self.stats["offered"]))[0])

    def select(self, frames: Iterable[Atoms], shuffle: bool = False, seed: int | None = None,
               progress: bool = False) -> list[Atoms]:
        """Offer every frame in turn (in batches) and return the accepted ones.

        Parameters
        ----------
        frames : iterable of Atoms
            A list, a generator, ``ase.io.iread(...)``; streamed unless ``shuffle``.
        shuffle : bool
            Offer the frames in a random order (this reads them all into memory first).
        seed : int
            Seed of the shuffle; required when ``shuffle`` is True.
        progress : bool
            Show a tqdm progress bar.

        Returns
        -------
        list of Atoms
            Accepted frames in the order they were accepted, each with ``info["cbad_index"]``, its position in
            ``frames``.
        """
        if shuffle:
            if seed is None:
                raise CBADError("shuffle=True needs a seed (the selection depends on the order)")
            frames = list(frames)
            order = np.random.default_rng(seed).permutation(len(frames))
            indexed = ((int(k), frames[k]) for k in order)
        else:
            indexed = enumerate(frames)
        selected = []
        with tqdm(total=len(frames) if shuffle else None, unit="frame", desc="CBAD", disable=not progress) as bar:
            for batch in _batches(indexed, self.batch_size):
                accepted = self._offer(*self._describe([atoms for _, atoms in batch], self.stats["offered"]))
                for (index, atoms), keep in zip(batch, accepted):
                    if keep:
                        atoms.info["cbad_index"] = index
                        selected.append(atoms)
                bar.update(len(batch))
                bar.set_postfix(selected=len(selected), refresh=False)
        return selected

    def select_per_run(self, runs: Iterable[Iterable[Atoms]], pick: str | Callable[[list[Atoms]], int] = "first",
                       seed: int | None = None) -> list[Atoms | None]:
        """At most one configuration per trajectory: the first, last, a random or a chosen CBAD-new frame of each
        run.

        Runs are taken in order; "new" is judged against the bins at the start of each run (including frames
        picked from earlier runs). Frames with broken bonds are never picked.

        Parameters
        ----------
        runs : iterable of iterables of Atoms
            One frame iterable per MD run.
        pick : {"first", "last", "random"} or callable
            Which CBAD-new frame of a run to take. ``"first"`` stops reading the run at that frame. A callable
            gets the run's CBAD-new frames and returns the index of the one to take (e.g. the most
            extrapolating one).
        seed : int
            Seed for ``pick="random"`` (required then).

        Returns
        -------
        list
            Per run, the picked Atoms (``info["cbad_index"]`` = frame index within its run, ``info["cbad_run"]``)
            or None if the run had no CBAD-new frame.
        """
        if not callable(pick) and pick not in ("first", "last", "random"):
            raise CBADError(f"pick must be 'first', 'last', 'random' or a function, got {pick!r}")
        if pick == "random" and seed is None:
            raise CBADError("pick='random' needs a seed")
        rng = np.random.default_rng(seed)
        picked: list[Atoms | None] = []
        for run_index, run in enumerate(runs):
            choice = self._pick_first(run) if pick == "first" else self._pick_one(run, pick, rng)
            if choice is not None:
                choice.info["cbad_run"] = run_index
            picked.append(choice)
        return picked

    def _pick_first(self, run: Iterable[Atoms]) -> Atoms | None:
        start = 0
        for batch in _batches(run, self.batch_size):
            accepted = self._offer(*self._describe(batch, start), stop_after_first=True)
            if accepted.any():
                index = int(np.argmax(accepted))
                batch[index].info["cbad_index"] = start + index
                return batch[index]
            start += len(batch)
        return None

    def _pick_one(self, run: Iterable[Atoms], pick: str | Callable[[list[Atoms]], int],
                  rng: np.random.Generator) -> Atoms | None:
        candidates: list[tuple[int, Atoms, np.ndarray]] = []
        start = 0
        for batch in _batches(run, self.batch_size):
            keys, broken = self._describe(batch, start)
            broken_any = broken.any(axis=1)
            new = ~self._is_known(keys).all(axis=1) & ~broken_any
            for n in np.flatnonzero(broken_any):
                self._count_broken(broken[n])
            self.stats["rejected_known"] += int((~new & ~broken_any).sum())
            candidates += [(start + int(n), batch[n], keys[n]) for n in np.flatnonzero(new)]
            start += len(batch)
        self.stats["offered"] += start
        if not candidates:
            return None
        if callable(pick):
            chosen = int(pick([atoms for _, atoms, _ in candidates]))
        else:
            chosen = len(candidates) - 1 if pick == "last" else int(rng.integers(len(candidates)))
        index, atoms, keys = candidates[chosen]
        self._accept(keys)
        self.stats["not_picked"] += len(candidates) - 1
        atoms.info["cbad_index"] = index
        return atoms

    def include(self, frames: Iterable[Atoms]) -> int:
        """Seed the bins with an existing training set (every frame is added, none is tested).

        Returns
        -------
        int
            Number of bins that were new.
        """
        before = len(self._known)
        for batch in _batches(frames, self.batch_size):
            keys, _ = self._describe(batch, self.stats["included"])
            self._known = np.union1d(self._known, keys.ravel())
            self.stats["included"] += len(batch)
        return len(self._known) - before

    # ------------------------------------------------------------------ reports
    def bins(self) -> dict[str, np.ndarray]:
        """Occupied bin indices (sorted) per descriptor type."""
        types = self._known >> _BIN_BITS
        values = self._known & ((1 << _BIN_BITS) - 1)
        return {name: values[types == t] for t, name in enumerate(self.descriptor_types)}

    def coverage(self) -> dict[str, dict]:
        """Per descriptor type: occupied bins and the value range they cover, ``[low, high)`` in binning units
        (dihedrals in [0, 360))."""
        report = {}
        for t, (name, bins) in enumerate(self.bins().items()):
            width = float(self._type_resolution[t])
            entry = {"bins": int(len(bins)), "resolution": width}
            if len(bins):
                entry["range"] = [float(bins.min() * width), float((bins.max() + 1) * width)]
            report[name] = entry
        return report

    def summary(self) -> dict:
        """Counters (offered, accepted, rejections by reason, new bins per descriptor type and per kind)."""
        stats = {key: dict(value) if isinstance(value, Counter) else value for key, value in self.stats.items()}
        per_kind = Counter()
        for name, count in self.stats["new_bins_by_type"].items():
            per_kind[name.split(":")[0]] += count
        stats["new_bins_by_kind"] = {kind: per_kind[kind] for kind in KINDS}
        return stats

    # ------------------------------------------------------------------ state file
    def write(self, path: str | Path) -> Path:
        """Write the full state (resolutions, tolerance, topology, bins, counters) as a versioned JSON file."""
        return write_result(path, STATE_KIND, STATE_VERSION, {
            "resolutions": asdict(self.resolutions), "bond_tolerance": self.bond_tolerance,
            "batch_size": self.batch_size, "topology": self.topology.to_dict(),
            "bins": self.bins(), "stats": self.summary()})

    @classmethod
    def read(cls, path: str | Path) -> CBADFilter:
        """The filter written by :meth:`write`; it continues exactly where it stopped.

        Raises
        ------
        ResultFileError
            The file is missing or is not a CBAD state of this format version.
        """
        state = read_result(path, STATE_KIND, STATE_VERSION)
        new = cls(Topology.from_dict(state["topology"]), Resolutions(**state["resolutions"]),
                  bond_tolerance=state["bond_tolerance"], batch_size=state["batch_size"])
        index = {name: t for t, name in enumerate(new.descriptor_types)}
        keys = [(index[name] << _BIN_BITS) | np.asarray(bins, dtype=np.int64) for name, bins in state["bins"].items()]
        new._known = np.unique(np.concatenate(keys)) if keys else new._known
        for key in new.stats:
            value = state["stats"][key]
            new.stats[key] = Counter(value) if isinstance(new.stats[key], Counter) else value
        return new


def histograms(cbad: CBADFilter, training: Iterable[Atoms], pool: Iterable[Atoms]) -> dict:
    """Bond, angle and dihedral counts of a training set and of a candidate pool on the CBAD bins of ``cbad``.

    Both sets are streamed in batches. Bond bins span 0.7 times the shortest to ``bond_tolerance`` times the
    longest reference bond; dihedrals are counted in [-180°, 180°].

    Returns
    -------
    dict
        Per kind, ``{"edges": ..., "training": counts, "pool": counts}`` (lists).
    """
    topo, res = cbad.topology, cbad.resolutions
    low = np.floor(0.7 * topo.reference_bond_lengths.min() / res.bond) * res.bond
    high = np.ceil(cbad.bond_tolerance * topo.reference_bond_lengths.max() / res.bond) * res.bond
    edges = {"bond": np.arange(low, high + res.bond / 2, res.bond),
             "angle": np.arange(0.0, 180.0 + res.angle / 2, res.angle),
             "dihedral": np.arange(-180.0, 180.0 + res.dihedral / 2, res.dihedral)}
    counts = {}
    for label, frames in (("training", training), ("pool", pool)):
        counts[label] = {kind: np.zeros(len(e) - 1, dtype=np.int64) for kind, e in edges.items()}
        for batch in _batches(frames, cbad.batch_size):
            measured = topo.measure(*stack_frames(batch))
            for kind, e in edges.items():
                counts[label][kind] += np.histogram(measured[kind], bins=e)[0]
    return {kind: {"edges": e.tolist(), "training": counts["training"][kind].tolist(),
                   "pool": counts["pool"][kind].tolist()} for kind, e in edges.items()}


def plot_histograms(cbad: CBADFilter, training: Iterable[Atoms], pool: Iterable[Atoms], path: str | Path) -> dict:
    """Write the :func:`histograms` of a training set against a candidate pool as one PNG of 3 panels.

    An empty training bar under a pool bar is a bin the training set does not cover; the density axis is
    logarithmic to show the tails; densities are normalised per set.

    Returns
    -------
    dict
        The :func:`histograms`.
    """
    counts = histograms(cbad, training, pool)
    plotting.cbad_histograms_figure(
        {kind: np.asarray(c["edges"]) for kind, c in counts.items()},
        {name: {kind: c[name] for kind, c in counts.items()} for name in ("training", "pool")},
        {"bond": "bond length (Å)", "angle": "bond angle (°)", "dihedral": "dihedral (°)"}, path)
    return counts


def reference_structure(path: str | Path) -> Atoms:
    """First frame of ``path``, typed: its own ``atom_types`` or, if missing, :func:`assign_atom_types`."""
    from ase.io import read

    atoms = read(path, index=0)
    if "atom_types" not in atoms.arrays:
        from .atomtypes import assign_atom_types

        assign_atom_types(atoms)
    return atoms


if __name__ == "__main__":
    from mofsnap.cli import run_as_module

    run_as_module("cbad")
