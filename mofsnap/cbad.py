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
``python -m mofsnap.cbad pool.extxyz -o selected.extxyz --bond 0.05 ...`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import numpy as np
from ase import Atoms
from tqdm import tqdm

from .exceptions import CBADError, MofsnapError
from .topology import BOND_SCALE, BROKEN_BOND_TOLERANCE, Topology, TopologyError, cell_parameters, stack_frames

log = logging.getLogger(__name__)

STATE_FORMAT = "mofsnap-cbad-1"
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
    >>> f.save("cbad_state.json")                                  # doctest: +SKIP
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

    def select_per_run(self, runs: Iterable[Iterable[Atoms]], pick: str = "first",
                       seed: int | None = None) -> list[Atoms | None]:
        """At most one configuration per trajectory: the first, last or a random CBAD-new frame of each run.

        Runs are taken in order; "new" is judged against the bins at the start of each run (including frames
        picked from earlier runs). Frames with broken bonds are never picked.

        Parameters
        ----------
        runs : iterable of iterables of Atoms
            One frame iterable per MD run.
        pick : {"first", "last", "random"}
            Which CBAD-new frame of a run to take. ``"first"`` stops reading the run at that frame.
        seed : int
            Seed for ``pick="random"`` (required then).

        Returns
        -------
        list
            Per run, the picked Atoms (``info["cbad_index"]`` = frame index within its run, ``info["cbad_run"]``)
            or None if the run had no CBAD-new frame.
        """
        if pick not in ("first", "last", "random"):
            raise CBADError(f"pick must be 'first', 'last' or 'random', got {pick!r}")
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

    def _pick_one(self, run: Iterable[Atoms], pick: str, rng: np.random.Generator) -> Atoms | None:
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
        index, atoms, keys = candidates[-1] if pick == "last" else candidates[int(rng.integers(len(candidates)))]
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
    def save(self, path: str | Path) -> None:
        """Write the full state (resolutions, tolerance, topology, bins, counters) as JSON."""
        state = {"format": STATE_FORMAT, "resolutions": asdict(self.resolutions),
                 "bond_tolerance": self.bond_tolerance, "batch_size": self.batch_size,
                 "topology": self.topology.to_dict(),
                 "bins": {name: bins.tolist() for name, bins in self.bins().items()},
                 "stats": self.summary()}
        Path(path).write_text(json.dumps(state))

    @classmethod
    def load(cls, path: str | Path) -> CBADFilter:
        """Read a state written by :meth:`save`; the filter continues exactly where it stopped."""
        state = json.loads(Path(path).read_text())
        if state.get("format") != STATE_FORMAT:
            raise CBADError(f"{path} is not a CBAD state file ({STATE_FORMAT})")
        new = cls(Topology.from_dict(state["topology"]), Resolutions(**state["resolutions"]),
                  bond_tolerance=state["bond_tolerance"], batch_size=state["batch_size"])
        index = {name: t for t, name in enumerate(new.descriptor_types)}
        keys = [(index[name] << _BIN_BITS) | np.asarray(bins, dtype=np.int64) for name, bins in state["bins"].items()]
        new._known = np.unique(np.concatenate(keys)) if keys else new._known
        for key in new.stats:
            value = state["stats"][key]
            new.stats[key] = Counter(value) if isinstance(new.stats[key], Counter) else value
        return new



def plot_histograms(cbad: CBADFilter, training: Iterable[Atoms], pool: Iterable[Atoms], path: str | Path) -> dict:
    """Bond, angle and dihedral distributions of a training set against a candidate pool (one PNG, 3 panels).

    Histogram bins are the CBAD bins of ``cbad`` (its resolutions), so an empty training bar under a pool bar is
    a bin the training set does not cover; the density axis is logarithmic to show the tails. Both sets are
    streamed in batches; densities are normalised per set.

    Returns
    -------
    dict
        Per kind, ``{"edges": ..., "training": counts, "pool": counts}``.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topo, res = cbad.topology, cbad.resolutions
    low = np.floor(0.7 * topo.reference_bond_lengths.min() / res.bond) * res.bond
    high = np.ceil(cbad.bond_tolerance * topo.reference_bond_lengths.max() / res.bond) * res.bond
    edges = {"bond": np.arange(low, high + res.bond / 2, res.bond),
             "angle": np.arange(0.0, 180.0 + res.angle / 2, res.angle),
             "dihedral": np.arange(-180.0, 180.0 + res.dihedral / 2, res.dihedral)}
    units = {"bond": "bond length (Å)", "angle": "bond angle (°)", "dihedral": "dihedral (°)"}
    counts = {}
    for label, frames in (("training", training), ("pool", pool)):
        counts[label] = {kind: np.zeros(len(e) - 1, dtype=np.int64) for kind, e in edges.items()}
        for batch in _batches(frames, cbad.batch_size):
            measured = topo.measure(*stack_frames(batch))
            for kind, e in edges.items():
                counts[label][kind] += np.histogram(measured[kind], bins=e)[0]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (kind, e) in zip(axes, edges.items()):
        for label, colour in (("pool", "0.6"), ("training", "C0")):
            total = max(int(counts[label][kind].sum()), 1)
            ax.stairs(counts[label][kind] / (total * np.diff(e)), e, fill=label == "pool", color=colour, label=label)
        occupied = np.flatnonzero(counts["pool"][kind] + counts["training"][kind])
        if len(occupied):
            ax.set_xlim(e[occupied[0]], e[occupied[-1] + 1])
        ax.set_yscale("log")
        ax.set_xlabel(units[kind])
        ax.set_ylabel("density (log)")
    axes[0].legend()
    fig.suptitle("CBAD: training set vs candidate pool (bins = CBAD bins)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return {kind: {"edges": e.tolist(), "training": counts["training"][kind].tolist(),
                   "pool": counts["pool"][kind].tolist()} for kind, e in edges.items()}


def _reference_structure(path: str | Path) -> Atoms:
    """First frame of ``path``, typed: its own ``atom_types`` or, if missing, :func:`assign_atom_types`."""
    from ase.io import read
    atoms = read(path, index=0)
    if "atom_types" not in atoms.arrays:
        from .atomtypes import assign_atom_types
        assign_atom_types(atoms)
    return atoms


def _parser() -> argparse.ArgumentParser:
    defaults = Resolutions()
    parser = argparse.ArgumentParser(
        prog="python -m mofsnap.cbad",
        description="Select training configurations from MD frames with the CBAD filter: a frame is kept when one "
                    "of its cell/bond/angle/dihedral values falls in a bin not yet seen. Writes the selected "
                    "frames, a JSON report (counts, reasons, coverage) and a histogram PNG next to the output.")
    parser.add_argument("pool", nargs="+", help="candidate frames (extxyz or any ASE-readable trajectory); several "
                        "files are read in turn (with --per-run, each file is one MD run)")
    parser.add_argument("-o", "--output", required=True, help="selected frames are written here (extxyz); "
                        "<stem>.json and <stem>_histograms.png go next to it")
    parser.add_argument("--reference", help="typed reference structure fixing the topology (default: the first frame "
                        "of the first pool file; atom types from its 'atom_types' array, else assigned)")
    parser.add_argument("--train", nargs="*", default=[], help="existing training frames: their bins are seeded "
                        "first, they are not re-selected")
    parser.add_argument("--state", help="CBAD state file (JSON): loaded if it exists (resolutions and topology then "
                        "come from it), saved after the selection")
    parser.add_argument("--cell-length", type=float, default=defaults.cell_length, help="cell-length bin width, Å")
    parser.add_argument("--cell-angle", type=float, default=defaults.cell_angle,
                        help="cell-angle bin width, degrees (default 0.07 rad)")
    parser.add_argument("--bond", type=float, default=defaults.bond, help="bond-length bin width, Å")
    parser.add_argument("--angle", type=float, default=defaults.angle, help="bond-angle bin width, degrees")
    parser.add_argument("--dihedral", type=float, default=defaults.dihedral, help="dihedral bin width, degrees")
    parser.add_argument("--bond-tolerance", type=float, default=BROKEN_BOND_TOLERANCE, help="reject a frame as "
                        "broken when a bond exceeds this factor times its reference length")
    parser.add_argument("--bond-scale", type=float, default=BOND_SCALE, help="bond criterion of the topology: "
                        "distance < scale x sum of covalent radii")
    parser.add_argument("--per-run", choices=("first", "last", "random"), help="take at most one frame per pool "
                        "file: its first, last or a random CBAD-new frame")
    parser.add_argument("--shuffle", action="store_true", help="offer the frames in a random order (reads them all)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --shuffle and --per-run random")
    parser.add_argument("--batch-size", type=int, default=256, help="frames measured together")
    parser.add_argument("--no-plot", action="store_true", help="skip the histogram PNG (it reads the pool again)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``python -m mofsnap.cbad`` command."""
    from ase.io import iread, write

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        if args.state and Path(args.state).exists():
            cbad = CBADFilter.load(args.state)
            log.info("continuing from %s (%d bins)", args.state, sum(map(len, cbad.bins().values())))
        else:
            resolutions = Resolutions(args.cell_length, args.cell_angle, args.bond, args.angle, args.dihedral)
            cbad = CBADFilter(_reference_structure(args.reference or args.pool[0]), resolutions,
                              bond_tolerance=args.bond_tolerance, batch_size=args.batch_size, scale=args.bond_scale)
        log.info("%r", cbad.topology)
        for path in args.train:
            log.info("seeded %d bins from %s", cbad.include(iread(path)), path)
        if args.per_run:
            picked = cbad.select_per_run((iread(path) for path in args.pool), pick=args.per_run, seed=args.seed)
            selected = [atoms for atoms in picked if atoms is not None]
        else:
            selected = cbad.select((atoms for path in args.pool for atoms in iread(path)),
                                   shuffle=args.shuffle, seed=args.seed, progress=True)
    except MofsnapError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    write(output, selected, format="extxyz")
    summary = cbad.summary()
    report = {"selected": len(selected), "summary": summary, "resolutions": asdict(cbad.resolutions),
              "coverage": cbad.coverage(), "pool": args.pool, "train": args.train}
    if not args.no_plot:
        from itertools import chain
        training = chain(selected, *(iread(path) for path in args.train))
        plot_path = output.with_name(output.stem + "_histograms.png")
        report["histograms"] = plot_histograms(cbad, training, (a for p in args.pool for a in iread(p)), plot_path)
        log.info("histograms: %s", plot_path)
    output.with_suffix(".json").write_text(json.dumps(report, indent=1))
    if args.state:
        cbad.save(args.state)
    print(f"selected {len(selected)} of {summary['offered']} frames -> {output}")
    print(f"  rejected: {summary['rejected_known']} with no new bin, {summary['rejected_broken']} with broken bonds"
          + (f" ({', '.join(f'{k} x{v}' for k, v in summary['broken_bond_types'].items())})"
             if summary["rejected_broken"] else "")
          + (f", {summary['not_picked']} new but not picked (one per run)" if args.per_run else ""))
    kinds = summary["new_bins_by_kind"]
    print("  accepted frames with new bins per kind: " + ", ".join(f"{kind} {kinds[kind]}" for kind in KINDS))
    top = sorted(summary["new_bins_by_type"].items(), key=lambda item: -item[1])[:8]
    print("  most frequent new-bin types: " + ", ".join(f"{name} ({count})" for name, count in top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
