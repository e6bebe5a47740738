"""Where mofsnap's package data lives: the top-level ``data/`` folder, installed as ``mofsnap/data``."""

from __future__ import annotations

from pathlib import Path

from .exceptions import MofsnapError

#: ``data/`` of a source checkout (editable install) or ``mofsnap/data`` of an installed wheel.
DATA_DIR: Path = next((p for p in (Path(__file__).resolve().parent / "data",
                                   Path(__file__).resolve().parent.parent / "data") if p.is_dir()),
                      Path(__file__).resolve().parent.parent / "data")


def data_path(*parts: str) -> Path:
    """The path of a file in the package data, e.g. ``data_path("structures", "zif8.json")``.

    Raises
    ------
    MofsnapError
        The file is not part of this installation.
    """
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        raise MofsnapError(f"package data {'/'.join(parts)} is missing from {DATA_DIR}; reinstall mofsnap")
    return path
