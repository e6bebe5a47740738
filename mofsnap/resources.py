"""Where mofsnap's package data lives: the top-level ``data/`` folder of the source tree.

A source checkout (``pip install -e .``, the README's set-up) reads ``data/`` in place; a wheel installs the same
files under ``<prefix>/share/mofsnap/data`` (``[options.data_files]`` of setup.cfg), which is used when there is
no source tree beside the package.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .exceptions import MofsnapError

_CANDIDATES = (Path(__file__).resolve().parent.parent / "data", Path(sys.prefix) / "share" / "mofsnap" / "data")

#: The package data folder in use.
DATA_DIR: Path = next((path for path in _CANDIDATES if (path / "structures").is_dir()), _CANDIDATES[0])


def data_path(*parts: str) -> Path:
    """The path of a file or folder in the package data, e.g. ``data_path("structures", "zif8.json")``.

    Raises
    ------
    MofsnapError
        The file is not part of this installation.
    """
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        raise MofsnapError(f"package data {'/'.join(parts)} is missing from {DATA_DIR}; reinstall mofsnap")
    return path
