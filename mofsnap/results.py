"""Versioned JSON files of mofsnap's result types: one writer, one reader.

Every result class (``FitReport``, ``PhononResult``, ``FreeEnergy``, ...) has ``write(path)`` and
``read(path)``; both go through :func:`write_result` and :func:`read_result`, which stamp and check the kind
of result and the format version, so a file of another kind or of a newer mofsnap is refused with a clear
message instead of being misread. Arrays are stored as (nested) lists; floats keep their full precision, so
a result read back equals the one written.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import ResultFileError

FORMAT_KEY = "mofsnap_result"
VERSION_KEY = "version"


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python numbers and lists (NaN/inf kept)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def write_result(path: str | Path, kind: str, version: int, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as a result file of ``kind`` and format ``version``.

    Parameters
    ----------
    path : path
        The JSON file to write (its folder is created).
    kind : str
        The result type, e.g. ``"fit-report"``.
    version : int
        The format version the reader of ``kind`` expects.
    payload : dict
        JSON-able values, numpy arrays and scalars included.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {FORMAT_KEY: kind, VERSION_KEY: version, **_plain(payload)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=1, allow_nan=True))
    os.replace(tmp, path)  # a reader never sees a half-written file
    return path


def read_result(path: str | Path, kind: str, version: int) -> dict[str, Any]:
    """The payload of a result file written by :func:`write_result` with this ``kind`` and ``version``.

    Raises
    ------
    ResultFileError
        The file is missing, is not JSON, holds another kind of result or another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultFileError(f"{path}: no such result file; give the JSON file a mofsnap command wrote")
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ResultFileError(f"{path}: not a JSON result file ({error}); give the JSON file a mofsnap "
                              "command wrote") from None
    if not isinstance(document, dict) or document.get(FORMAT_KEY) != kind:
        found = document.get(FORMAT_KEY) if isinstance(document, dict) else None
        raise ResultFileError(f"{path}: holds {found or 'no mofsnap result'!s}, not a {kind}; give a {kind} file")
    if document.get(VERSION_KEY) != version:
        raise ResultFileError(f"{path}: {kind} format version {document.get(VERSION_KEY)}, this mofsnap reads "
                              f"version {version}; write it again with this version")
    return {k: v for k, v in document.items() if k not in (FORMAT_KEY, VERSION_KEY)}


def as_float(value: Any) -> float:
    """A JSON number (or ``None`` from an older writer) as a float, NaN for missing."""
    return math.nan if value is None else float(value)


def write_arrays(path: str | Path, kind: str, version: int, arrays: dict[str, Any]) -> Path:
    """Write ``arrays`` as a versioned NPZ file of ``kind``, replacing any older file atomically.

    For array-heavy results (checkpoints, posteriors): every value is stored exactly as numpy holds it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **{FORMAT_KEY: kind, VERSION_KEY: version}, **arrays)
    os.replace(tmp, path)
    return path


def read_arrays(path: str | Path, kind: str, version: int, fix: str) -> dict[str, np.ndarray]:
    """The arrays of a file written by :func:`write_arrays` with this ``kind`` and ``version``.

    Parameters
    ----------
    fix : str
        What the user can do about a file that cannot be used (ends the error message).

    Raises
    ------
    ResultFileError
        Missing, unreadable, of another kind or of another format version.
    """
    path = Path(path)
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise ResultFileError(f"{path}: not a readable {kind} file ({error}); {fix}") from None
    if str(arrays.get(FORMAT_KEY)) != kind or int(arrays.get(VERSION_KEY, -1)) != version:
        raise ResultFileError(f"{path}: not a {kind} file of format version {version}; {fix}")
    return {k: v for k, v in arrays.items() if k not in (FORMAT_KEY, VERSION_KEY)}
