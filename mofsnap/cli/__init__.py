"""The ``mofsnap`` command: one subcommand per module of this package, one logging set-up, one error handler.

Every subcommand lives in a module of its own here with three parts: a docstring whose first line is the
command's one-line help, ``add_arguments(parser)`` and ``run(args) -> int | None``. A failure inside a command
ends in one line on stderr and exit status 1 (``--traceback`` shows the whole traceback instead).

``python -m mofsnap.<module>`` forms call :func:`main` with the command's name (see :func:`run_as_module`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import import_module
from types import ModuleType

from ..exceptions import MofsnapError

#: Subcommand name -> module of :mod:`mofsnap.cli` that implements it.
COMMANDS: dict[str, str] = {
    "structures": "structures",
    "learn": "learn",
    "label": "label",
    "cbad": "cbad",
    "fit": "fit",
    "md": "md",
    "thermal-expansion": "thermal_expansion",
    "vdos": "vdos",
    "phonons": "phonons",
    "metadynamics": "metadynamics",
}

log = logging.getLogger("mofsnap")


def _command_module(name: str) -> ModuleType:
    return import_module(f".{COMMANDS[name]}", __name__)


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("output and diagnostics")
    group.add_argument("-q", "--quiet", action="store_true", help="print warnings and results only, no progress bars")
    group.add_argument("-v", "--verbose", action="store_true", help="log debugging details")
    group.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    group.add_argument("--traceback", action="store_true", help="on failure, show the whole Python traceback")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``mofsnap`` command with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="mofsnap", description="SNAP machine-learning potentials for metal-organic frameworks: build a "
        "structure, learn a model, run MD and analyse it. 'mofsnap COMMAND --help' explains each command.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"mofsnap {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common_options()
    for name in COMMANDS:
        module = _command_module(name)
        doc = (module.__doc__ or "").strip()
        summary = doc.splitlines()[0] if doc else name
        sub = commands.add_parser(name, help=summary, description=doc, parents=[common],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def configure_logging(quiet: bool = False, verbose: bool = False) -> None:
    """The one logging set-up of every command: messages of mofsnap's loggers on stderr."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"))
    root = logging.getLogger("mofsnap")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mofsnap`` command line and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when the command failed (one line on stderr), 130 when interrupted, 2 for usage errors
        (from argparse).
    """
    args = build_parser().parse_args(argv)
    args.progress = not (args.quiet or args.no_progress)
    configure_logging(args.quiet, args.verbose)
    try:
        status = args.handler(args)
    except KeyboardInterrupt:
        print(f"mofsnap {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001  (the one error handler of the command line)
        if args.traceback:
            raise
        what = str(error) if isinstance(error, MofsnapError) else f"{type(error).__name__}: {error}"
        hint = "" if isinstance(error, (MofsnapError, OSError)) else " (an unexpected error: rerun with --traceback "\
            "and report it)"
        print(f"mofsnap {args.command}: error: {what}{hint}", file=sys.stderr)
        return 1
    return int(status or 0)


def run_as_module(command: str) -> None:
    """Entry point of the ``python -m mofsnap.<module>`` shims: ``mofsnap COMMAND`` with the process arguments."""
    sys.exit(main([command, *sys.argv[1:]]))
