"""The SNAP model: atom types, hyperparameters and linear coefficients, with LAMMPS file I/O.

A model is written as the two files LAMMPS ``pair_style snap`` reads: ``<prefix>.snapcoeff`` (per type:
label, cutoff radius, neighbour weight, then the coefficients) and ``<prefix>.snapparam`` (``key value``
lines). Files written by other programs load too: ``#`` comments, blank lines and optional keys are
accepted, and unknown keys are kept and written back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase.data import atomic_numbers, covalent_radii

from .atomtypes import element_of
from .exceptions import ModelError
from .model_card import packaged_model, packaged_models
from .resources import data_path

#: The reference ZIF-8 SNAP settings as stored in ``data/hyperparameters/zif8.json``: ``snap`` (the SNAP keys,
#: which are the defaults of :class:`SNAPModel`), ``types`` (per-type radius and weight) and ``zbl`` (pairs and
#: switching radii of the repulsion).
ZIF8_REFERENCE: dict[str, Any] = json.loads(data_path("hyperparameters", "zif8.json").read_text())

#: Per-type (radius, weight) of the reference ZIF-8 SNAP model.
ZIF8_HYPERPARAMETERS: dict[str, tuple[float, float]] = {
    label: (values["radius"], values["weight"]) for label, values in ZIF8_REFERENCE["types"].items()
}

#: The rule for per-element radii and weights of ``data/hyperparameters/elements.json`` (see
#: :func:`element_hyperparameters`).
ELEMENT_RULE: dict[str, Any] = json.loads(data_path("hyperparameters", "elements.json").read_text())

_SNAP_DEFAULTS: dict[str, Any] = ZIF8_REFERENCE["snap"]
_INT_KEYS = ("twojmax", "bzeroflag", "quadraticflag", "switchflag")
_FLOAT_KEYS = ("rcutfac", "rfac0", "rmin0")
#: Further ``snapparam`` keys LAMMPS's ``pair_style snap`` reads, kept in :attr:`SNAPModel.extra` as text.
#: ``chemflag`` is absent: its explicit multi-element descriptors need other coefficient counts.
_EXTRA_KEYS = ("bnormflag", "wselfallflag", "switchinnerflag", "sinner", "dinner", "chunksize", "parallelthresh")


#: The allowed range of each SNAP parameter: (test, what the message asks for).
_PARAMETER_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "twojmax": (lambda v: v >= 0, ">= 0"), "rcutfac": (lambda v: v > 0, "> 0"),
    "rfac0": (lambda v: 0 < v <= 1, "in (0, 1]"), "rmin0": (lambda v: v >= 0, ">= 0"),
    **{flag: (lambda v: v in (0, 1), "0 or 1") for flag in ("bzeroflag", "quadraticflag", "switchflag")},
}


def check_snap_parameters(values: dict[str, float]) -> None:
    """Refuse SNAP parameters out of range (``twojmax`` >= 0, ``rcutfac`` > 0, ``rfac0`` in (0, 1], ``rmin0``
    >= 0, flags 0 or 1), naming the first one."""
    for key, value in values.items():
        test, rule = _PARAMETER_RULES[key]
        if not test(value):
            raise ModelError(f"SNAP parameter {key} = {value} must be {rule}")


def model_prefix(prefix: str | Path) -> Path:
    """The file prefix of a model named by ``prefix``: a prefix or ``.snapcoeff`` path whose ``.snapcoeff``
    file exists, else the ready model of that name in ``data/models`` (if there is one), else the prefix as
    given (for messages about the missing file)."""
    prefix = Path(prefix)
    if prefix.suffix == ".snapcoeff":
        prefix = prefix.with_suffix("")
    if not prefix.with_name(prefix.name + ".snapcoeff").exists() and prefix.name in packaged_models():
        return packaged_model(prefix.name)
    return prefix


def _read_snapparam(path: Path) -> dict[str, str]:
    """The ``key value`` pairs of a snapparam file, keys checked against those LAMMPS knows."""
    params: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 2:
            raise ModelError(f"{path}, line {number}: expected 'key value', got {line.strip()!r}")
        if words[0] not in (*_INT_KEYS, *_FLOAT_KEYS, *_EXTRA_KEYS):
            raise ModelError(f"{path}, line {number}: unknown SNAP parameter {words[0]!r}; known are "
                             f"{', '.join((*_INT_KEYS, *_FLOAT_KEYS, *_EXTRA_KEYS))}")
        params[words[0]] = words[1]
    if "rcutfac" not in params or "twojmax" not in params:
        raise ModelError(f"{path}: rcutfac and twojmax are required")
    return params


def _read_snapcoeff(path: Path, ncoeff: int, source: str) -> tuple[list[str], list[float], list[float],
                                                                  list[list[float]]]:
    """Types, radii, weights and coefficient rows of a snapcoeff file of ``ncoeff`` numbers per type (as
    ``source`` requires)."""
    tokens = [w for line in path.read_text().splitlines() for w in line.split("#", 1)[0].split()]
    try:
        ntypes, per_type = int(tokens[0]), int(tokens[1])
    except (IndexError, ValueError):
        raise ModelError(f"{path}: the first line must be 'ntypes ncoeff'") from None
    if per_type != ncoeff:
        raise ModelError(f"{path}: {per_type} coefficients per type, but {source} needs {ncoeff}; "
                         f"use the snapparam file the model was fitted with")
    expected = 2 + ntypes * (3 + ncoeff)
    if len(tokens) != expected:
        raise ModelError(f"{path}: {len(tokens) - 2} entries after the header, but {ntypes} types of "
                         f"{ncoeff} coefficients need {expected - 2} (type, radius, weight and the coefficients "
                         f"of each); the file is truncated or has extra numbers")
    types, radii, weights, rows = [], [], [], []
    try:
        for k in range(ntypes):
            entry = tokens[2 + k * (3 + ncoeff):2 + (k + 1) * (3 + ncoeff)]
            types.append(entry[0])
            radii.append(float(entry[1]))
            weights.append(float(entry[2]))
            rows.append([float(t) for t in entry[3:]])
    except ValueError as error:
        raise ModelError(f"{path}, type {types[-1]}: {error}") from None
    return types, radii, weights, rows


def n_bispectrum(twojmax: int) -> int:
    """Number of bispectrum components B_{j1 j2 j} for a given 2J_max (55 for 2J_max = 8)."""
    count = 0
    for j1 in range(twojmax + 1):
        for j2 in range(j1 + 1):
            for j in range(j1 - j2, min(twojmax, j1 + j2) + 1, 2):
                if j >= j1:
                    count += 1
    return count


def n_descriptors(twojmax: int, quadratic: bool) -> int:
    """Descriptor columns per type: the bispectrum components, and their products when ``quadratic``."""
    nb = n_bispectrum(twojmax)
    return nb + nb * (nb + 1) // 2 if quadratic else nb


def element_hyperparameters(symbol: str) -> tuple[float, float]:
    """SNAP (radius, weight) of an element by the rule of ``data/hyperparameters/elements.json``.

    Radius: ``0.28 + 0.4 (r_cov - r_cov,H)`` clipped to [0.28, 0.45] (Cordero covalent radii in Å, as in
    :data:`ase.data.covalent_radii`): 0.28 for H, 0.42-0.45 for C, N, O, 0.45 for metals, so the pair cutoff
    ``rcutfac (R_i + R_j)`` stays within 3.6 Å with ``rcutfac`` 4. Weight: the Pauling electronegativity over
    that of carbon, clipped to [0.25, 1.5] (1 where the element has none): 0.86 for H, 1 for C, 1.19 for N,
    1.35 for O, 0.52 for Zr, 0.65 for Zn.
    """
    radius, weight = ELEMENT_RULE["radius"], ELEMENT_RULE["weight"]
    r_cov = covalent_radii[atomic_numbers[symbol]] - covalent_radii[atomic_numbers["H"]]
    r = float(np.clip(radius["base"] + radius["slope"] * r_cov, radius["min"], radius["max"]))
    chi = ELEMENT_RULE["electronegativity"]
    w = chi[symbol] / chi[weight["reference_element"]] if symbol in chi else weight["missing"]
    return round(r, 4), round(float(np.clip(w, weight["min"], weight["max"])), 4)


def default_hyperparameters(types: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-type (radii, weights): the published ZIF-8 values when ``types`` are exactly the ZIF-8 types, else
    per element by :func:`element_hyperparameters` (a label name alone says nothing about the chemistry: the
    ``H1a`` of UiO-66 is an OH hydrogen, the ``C3a`` of MOF-5 a carboxylate carbon)."""
    if sorted(types) == sorted(ZIF8_HYPERPARAMETERS):
        values = [ZIF8_HYPERPARAMETERS[label] for label in types]
    else:
        values = [element_hyperparameters(element_of(label)) for label in types]
    return np.array([r for r, _ in values], dtype=float), np.array([w for _, w in values], dtype=float)


@dataclass(eq=False)
class SNAPModel:
    """A linear SNAP potential.

    Parameters
    ----------
    types : list of str
        Atom-type labels in model order (e.g. ``["C3a", "C3b", ...]``).
    radii, weights : array of float, optional
        Per-type cutoff radius (scaled by ``rcutfac``) and neighbour weight; see
        :func:`default_hyperparameters` for the defaults.
    coefficients : (ntypes, n_coefficients) array, optional
        Constant term then one coefficient per bispectrum component, per type (zeros if omitted).
    twojmax, rcutfac, rfac0, rmin0, bzeroflag, quadraticflag, switchflag
        The LAMMPS SNAP hyperparameters; the defaults are the ``snap`` entries of :data:`ZIF8_REFERENCE`.
    extra : dict
        Further ``snapparam`` keys, passed to LAMMPS as they are.
    """

    types: list[str]
    radii: np.ndarray | None = None
    weights: np.ndarray | None = None
    coefficients: np.ndarray | None = None
    twojmax: int = _SNAP_DEFAULTS["twojmax"]
    rcutfac: float = _SNAP_DEFAULTS["rcutfac"]
    rfac0: float = _SNAP_DEFAULTS["rfac0"]
    rmin0: float = _SNAP_DEFAULTS["rmin0"]
    bzeroflag: int = _SNAP_DEFAULTS["bzeroflag"]
    quadraticflag: int = _SNAP_DEFAULTS["quadraticflag"]
    switchflag: int = _SNAP_DEFAULTS["switchflag"]
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.types = [str(t) for t in self.types]
        if len(set(self.types)) != len(self.types):
            raise ModelError(f"duplicate atom types in {self.types}")
        for label in self.types:
            element_of(label)
        default_r, default_w = default_hyperparameters(self.types)
        self.radii = default_r if self.radii is None else np.asarray(self.radii, dtype=float)
        self.weights = default_w if self.weights is None else np.asarray(self.weights, dtype=float)
        if self.coefficients is None:
            self.coefficients = np.zeros((len(self.types), self.n_coefficients))
        self.coefficients = np.asarray(self.coefficients, dtype=float)
        expected = (len(self.types), self.n_coefficients)
        if self.radii.shape != (len(self.types),) or self.weights.shape != (len(self.types),):
            raise ModelError("radii and weights need one value per atom type")
        if self.coefficients.shape != expected:
            raise ModelError(f"coefficients have shape {self.coefficients.shape}, expected {expected}")
        for name in ("radii", "weights", "coefficients"):
            values = getattr(self, name)
            if not np.isfinite(values).all():
                where = np.argwhere(~np.isfinite(values))[0]
                column = f" column {where[1]}" if values.ndim == 2 else ""
                raise ModelError(f"{name} of type {self.types[where[0]]}{column} is {values[tuple(where)]}; "
                                 f"a model needs finite numbers (refit it or restore its file)")
        if np.any(self.radii <= 0) or np.any(self.weights <= 0):
            raise ModelError("per-type radii and weights must be positive")
        check_snap_parameters({key: getattr(self, key) for key in (*_INT_KEYS, *_FLOAT_KEYS)})

    def __eq__(self, other: object) -> bool:
        """Equal types, hyperparameters and coefficients (arrays compared element by element)."""
        if not isinstance(other, SNAPModel):
            return NotImplemented
        return (self.types == other.types and self.params() == other.params()
                and all(np.array_equal(getattr(self, name), getattr(other, name))
                        for name in ("radii", "weights", "coefficients")))

    def todict(self) -> dict[str, Any]:
        """The model as plain Python values; ``SNAPModel(**model.todict())`` equals ``model``."""
        return {"types": list(self.types), "radii": self.radii.tolist(), "weights": self.weights.tolist(),
                "coefficients": self.coefficients.tolist(), "twojmax": int(self.twojmax),
                "rcutfac": float(self.rcutfac), "rfac0": float(self.rfac0), "rmin0": float(self.rmin0),
                "bzeroflag": int(self.bzeroflag), "quadraticflag": int(self.quadraticflag),
                "switchflag": int(self.switchflag), "extra": dict(self.extra)}

    @property
    def n_bispectrum(self) -> int:
        """Number of descriptor columns per type (bispectrum components, with quadratic terms if on)."""
        return n_descriptors(self.twojmax, bool(self.quadraticflag))

    @property
    def n_coefficients(self) -> int:
        """Coefficients per type: the constant term plus one per descriptor column."""
        return 1 + self.n_bispectrum

    @property
    def elements(self) -> list[str]:
        """Chemical symbol of each type."""
        return [element_of(t) for t in self.types]

    @property
    def cutoff(self) -> float:
        """Largest pair cutoff of the model in Å (``rcutfac * (R_i + R_j)``)."""
        return float(2 * self.rcutfac * self.radii.max())

    def params(self) -> dict[str, str]:
        """The ``snapparam`` keys and values."""
        out = {"rcutfac": repr(float(self.rcutfac)), "twojmax": str(int(self.twojmax)),
               "rfac0": repr(float(self.rfac0)), "rmin0": repr(float(self.rmin0)),
               "bzeroflag": str(int(self.bzeroflag)), "quadraticflag": str(int(self.quadraticflag)),
               "switchflag": str(int(self.switchflag))}
        out.update(self.extra)
        return out

    def compute_snap_args(self) -> str:
        """Arguments of LAMMPS ``compute snap`` matching this model (after the group and style)."""
        radii = " ".join(repr(float(r)) for r in self.radii)
        weights = " ".join(repr(float(w)) for w in self.weights)
        return (f"{self.rcutfac!r} {self.rfac0!r} {self.twojmax} {radii} {weights} rmin0 {self.rmin0!r} "
                f"bzeroflag {self.bzeroflag} quadraticflag {self.quadraticflag} switchflag {self.switchflag}")

    def write(self, prefix: str | Path) -> tuple[Path, Path]:
        """Write ``<prefix>.snapcoeff`` and ``<prefix>.snapparam``; return their paths."""
        prefix = Path(prefix)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        coeff, param = prefix.with_name(prefix.name + ".snapcoeff"), prefix.with_name(prefix.name + ".snapparam")
        lines = ["# SNAP coefficients written by mofsnap", "", f"{len(self.types)} {self.n_coefficients}"]
        for label, r, w, row in zip(self.types, self.radii, self.weights, self.coefficients):
            lines.append(f"{label} {float(r)!r} {float(w)!r}")
            lines.extend(repr(float(c)) for c in row)
        coeff.write_text("\n".join(lines) + "\n")
        param.write_text("# SNAP parameters written by mofsnap\n"
                         + "".join(f"{k} {v}\n" for k, v in self.params().items()))
        return coeff, param

    @classmethod
    def read(cls, prefix: str | Path, snapparam: str | Path | None = None) -> "SNAPModel":
        """Read a model from ``<prefix>.snapcoeff`` and ``<prefix>.snapparam``.

        Parameters
        ----------
        prefix : path
            Either the common prefix, the ``.snapcoeff`` file itself, or the name of a ready model of
            ``data/models`` (``"mof5-gfn1"``; files of that prefix in the working directory come first).
        snapparam : path, optional
            The parameter file, if it does not share the prefix.
        """
        prefix = model_prefix(prefix)
        coeff = prefix.with_name(prefix.name + ".snapcoeff")
        param = Path(snapparam) if snapparam else prefix.with_name(prefix.name + ".snapparam")
        for path in (coeff, param):
            if not path.exists():
                raise ModelError(f"SNAP file {path} does not exist; give the prefix of PREFIX.snapcoeff and "
                                 f"PREFIX.snapparam or a ready model ({', '.join(packaged_models()) or 'none'})")
        params = _read_snapparam(param)
        kwargs: dict[str, Any] = {}
        for keys, kind in ((_INT_KEYS, int), (_FLOAT_KEYS, float)):
            for key in (k for k in keys if k in params):
                value = params.pop(key)
                try:
                    kwargs[key] = kind(value)
                except ValueError:
                    raise ModelError(f"{param}: {key} is {value!r}, not a number") from None
        try:
            check_snap_parameters(kwargs)
        except ModelError as error:
            raise ModelError(f"{param}: {error}") from None
        ncoeff = 1 + n_descriptors(kwargs["twojmax"], bool(kwargs.get("quadraticflag")))
        types, radii, weights, rows = _read_snapcoeff(coeff, ncoeff, f"twojmax {kwargs['twojmax']} in {param}")
        try:
            model = cls(types, np.array(radii), np.array(weights), np.array(rows), extra=params, **kwargs)
        except ModelError as error:
            raise ModelError(f"{coeff}: {error}") from None
        return model
