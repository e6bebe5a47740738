"""Atom types: element + coordination number + letter (``C3a``, ``H1b``, ``Zn4a``)."""

from __future__ import annotations

import re

from .exceptions import AtomTypingError

TYPE_LABEL = re.compile(r"^([A-Z][a-z]?)(\d+)([a-z]+)$")


def element_of(label: str) -> str:
    """Chemical symbol of an atom-type label, e.g. ``"Zn4a" -> "Zn"``.

    Raises
    ------
    AtomTypingError
        If ``label`` is not element + coordination number + letters.
    """
    match = TYPE_LABEL.match(label)
    if match is None:
        raise AtomTypingError(f"{label!r} is not an atom-type label (element + coordination + letter, e.g. 'C3a')")
    return match.group(1)
