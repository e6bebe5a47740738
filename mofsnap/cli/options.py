"""Option groups shared by several commands, with defaults read from the library's own signatures."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any

from ase.calculators.calculator import Calculator

from ..exceptions import MDError
from ..units import ATMOSPHERE_MPA


def default_of(function: Callable[..., Any], parameter: str) -> Any:
    """The default value of ``parameter`` in the signature of ``function`` (or of a dataclass's ``__init__``)."""
    value = inspect.signature(function).parameters[parameter].default
    if value is inspect.Parameter.empty:
        raise TypeError(f"{function.__qualname__}() has no default for {parameter!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number greater than 0")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number greater than 0")
    return value


def add_output(parser: argparse.ArgumentParser, default: str | None, what: str = "output directory") -> None:
    """``-o/--output DIR``: where a command writes its results (required when ``default`` is None)."""
    if default is None:
        parser.add_argument("-o", "--output", required=True, metavar="DIR", help=what)
    else:
        parser.add_argument("-o", "--output", default=default, metavar="DIR", help=f"{what} (default {default})")


def add_executor(parser: argparse.ArgumentParser) -> None:
    """``--workers N`` (local processes) and ``--executor ADDRESS`` (a Dask scheduler)."""
    group = parser.add_argument_group("executor")
    group.add_argument("--workers", type=positive_int, metavar="N",
                       help="local worker processes (default: one per CPU); ignored with --executor")
    group.add_argument("--executor", metavar="ADDRESS",
                       help="Dask scheduler address (e.g. tcp://10.0.0.5:8786) that receives the work")


CALCULATORS = ("snap", "gfn1-xtb", "gfn2-xtb", "emt")


def add_unpaired_electrons(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--unpaired-electrons N``, the spin state of the reference (every command that builds a reference)."""
    from ..reference import reference_by_name

    parser.add_argument("--unpaired-electrons", type=int, default=default_of(reference_by_name, "unpaired_electrons"),
                        metavar="N", help="unpaired electrons per cell (default: 0 without open-shell metals, the "
                        "metal's usual count for one open-shell metal atom, else you must choose)")


def add_calculator(parser: argparse.ArgumentParser) -> None:
    """The options choosing a calculator (every command that runs MD)."""
    group = parser.add_argument_group("calculator")
    group.add_argument("--model", metavar="PREFIX",
                       help="SNAP model: PREFIX.snapcoeff and PREFIX.snapparam (uses SNAPCalculator)")
    group.add_argument("--d3", action="store_true", help="add Grimme D3(BJ)/PBE dispersion to the SNAP model")
    group.add_argument("--zbl", metavar="T1-T2,...|card",
                       help="add ZBL repulsion on these atom-type pairs, e.g. H1a-H1b,H1a-N3a (inner 1.8 Å, "
                            "outer 2.3 Å), or 'card': the pairs the model's card (PREFIX.json) says to use")
    group.add_argument("--calculator", choices=CALCULATORS, default="snap",
                       help="snap (needs --model; default), tblite GFN1-xTB or GFN2-xTB, or ASE EMT (metals, "
                            "for quick tests)")


def calculator_from_args(args: argparse.Namespace) -> Calculator:
    """The calculator chosen by the :func:`add_calculator` options.

    Raises
    ------
    MDError
        ``--calculator snap`` without ``--model``.
    """
    if args.calculator == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if args.calculator in ("gfn1-xtb", "gfn2-xtb"):
        from tblite.ase import TBLite

        return TBLite(method="GFN1-xTB" if args.calculator == "gfn1-xtb" else "GFN2-xTB", verbosity=0)
    if args.model is None:
        raise MDError("the SNAP calculator needs --model PREFIX (PREFIX.snapcoeff, PREFIX.snapparam)")
    from ..calculator import ZBL, SNAPCalculator

    zbl = None
    if args.zbl == "card":
        zbl = _card_zbl(args.model)
    elif args.zbl:
        zbl = ZBL(pairs=tuple(tuple(pair.split("-")) for pair in args.zbl.split(",")))
    return SNAPCalculator(args.model, d3=bool(args.d3), zbl=zbl)


def _card_zbl(model: str):
    """The ZBL repulsion of a model's card (``PREFIX.json`` beside its files, a ready model's included)."""
    from ..calculator import ZBL
    from ..model import model_prefix
    from ..model_card import ModelCard

    prefix = model_prefix(model)
    card = prefix.with_name(prefix.name + ".json")
    if not card.is_file():
        raise MDError(f"--zbl card needs the model's card {card} (mofsnap learn writes it); give the pairs instead")
    settings = ModelCard.read(card).use_with.get("zbl")
    return None if settings is None else ZBL(**settings)


def add_md(parser: argparse.ArgumentParser, ensemble: bool = True) -> None:
    """The thermostat/barostat options of :func:`mofsnap.md.run_md`, with its defaults."""
    from ..md import CELL_MODES, ENSEMBLES, run_md

    group = parser.add_argument_group("molecular dynamics")
    if ensemble:
        group.add_argument("--ensemble", choices=ENSEMBLES, default="nvt",
                           help="nve (velocity Verlet), nvt (Nose-Hoover chain), langevin, npt (MTK); default nvt")
    cell = default_of(run_md, "cell")
    group.add_argument("--cell", choices=CELL_MODES, default=cell,
                       help=f"NPT cell fluctuations: lengths with angles fixed, volume only, full cell "
                            f"(default {cell})")
    for flag, parameter, what in (("--timestep", "timestep_fs", "time step"),
                                  ("--tdamp", "tdamp_fs", "thermostat time constant"),
                                  ("--pdamp", "pdamp_fs", "barostat time constant")):
        value = default_of(run_md, parameter)
        group.add_argument(flag, type=positive_float, default=value, metavar="FS",
                           help=f"{what} in fs (default {value:g})")
    chain = default_of(run_md, "chain")
    group.add_argument("--chain", type=positive_int, default=chain,
                       help=f"Nose-Hoover chain length (default {chain})")
    group.add_argument("--seed", type=int, default=default_of(run_md, "seed"),
                       help="seed of the initial velocities and noise (default %(default)s)")


def add_pressure(parser: argparse.ArgumentParser) -> None:
    """``-P/--pressure MPA`` (default 1 atm)."""
    parser.add_argument("-P", "--pressure", type=float, default=ATMOSPHERE_MPA, metavar="MPA",
                        help="NPT pressure in MPa (default 1 atm)")


def add_engine(parser: argparse.ArgumentParser) -> None:
    """``--engine ase|lammps`` and ``--np N``: how the MD runs of an analysis are integrated."""
    from ..md.native import ENGINES, run_native

    group = parser.add_argument_group("MD engine")
    group.add_argument("--engine", choices=ENGINES, default=ENGINES[0],
                       help="ase: ASE drives the calculator (default); lammps: native LAMMPS decks run by the lmp "
                            "executable (SNAP models only), resumed from their restart files")
    group.add_argument("--np", type=positive_int, default=default_of(run_native, "ranks"), metavar="N",
                       help="MPI ranks of each --engine lammps run (mpirun -np N; default %(default)s)")


def add_relax(parser: argparse.ArgumentParser) -> None:
    """``--no-relax`` and ``--relax-fmax``: the relaxation of positions and cell before an analysis."""
    from ..analysis.runs import relax_start

    group = parser.add_argument_group("relaxation (on by default: FIRE on positions and cell with the calculator)")
    group.add_argument("--no-relax", dest="relax", action="store_false",
                       help="start from the structure as given (e.g. already relaxed with this calculator)")
    fmax = default_of(relax_start, "fmax")
    group.add_argument("--relax-fmax", type=positive_float, default=fmax, metavar="EV/Å",
                       help=f"convergence of the relaxation: largest force in eV/Å (default {fmax:g})")


def add_samples(parser: argparse.ArgumentParser) -> None:
    """``--samples N`` and ``--samples-seed S``: a model spread from SNAP models drawn from the fit's posterior."""
    from ..analysis.phonons import compute_phonons

    group = parser.add_argument_group("model spread (SNAP models with PREFIX.snapfit.npz, written by mofsnap fit)")
    group.add_argument("--samples", type=positive_int,
                       metavar="N", help="recompute with N >= 2 models drawn from the posterior of --model and report "
                                         "mean ± model spread (costs N times the calculation)")
    group.add_argument("--samples-seed", type=int, default=default_of(compute_phonons, "seed"), metavar="S",
                       help="seed of the posterior draw (default %(default)s)")
