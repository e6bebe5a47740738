"""Spin state of a configuration: how many unpaired electrons a reference calculation should carry.

Default rule (used when a reference is given no ``unpaired_electrons``): the metals of
:data:`CLOSED_SHELL_METALS` and all non-metals count 0; a cell with exactly one metal atom of
:data:`UNPAIRED_ELECTRONS` takes that metal's count (the high-spin ion in the oxidation state usual in
MOFs); a cell with two or more such atoms, or any other transition metal or f-element, is refused, because
the coupling of several spins (high-spin ferromagnetic, antiferromagnetic singlet...) or the oxidation state
is a choice the user has to make.
"""

from __future__ import annotations

from collections import Counter

from ase import Atoms
from ase.data import chemical_symbols

from ..exceptions import ReferenceMethodError

#: Unpaired electrons of one open-shell metal ion as found in MOFs (high spin): Cu²⁺ d9, Co²⁺ d7, Ni²⁺ d8,
#: Cr³⁺ d3, V⁴⁺ d1, Mn²⁺ d5. (Cu⁺, d10, is closed-shell: a cell of Cu(I) takes ``unpaired_electrons=0``.)
UNPAIRED_ELECTRONS: dict[str, int] = {"Cu": 1, "Co": 3, "Ni": 2, "Cr": 3, "V": 1, "Mn": 5}
#: Metals taken as closed-shell: s-block, Al, Ga, In, and the d0 / d10 ions Sc³⁺, Y³⁺, La³⁺, Ti⁴⁺, Zr⁴⁺,
#: Hf⁴⁺, Zn²⁺, Cd²⁺, Hg²⁺, Ag⁺.
CLOSED_SHELL_METALS = frozenset(
    "Li Na K Rb Cs Be Mg Ca Sr Ba Al Ga In Sc Y La Ti Zr Hf Zn Cd Hg Ag".split())
_D_AND_F_BLOCK = frozenset(chemical_symbols[z] for z in (*range(21, 31), *range(39, 49), *range(57, 81),
                                                         *range(89, 104)))


def unpaired_electrons(atoms: Atoms, requested: int | None, charge: int = 0) -> int:
    """Unpaired electrons for ``atoms``: ``requested`` when given, else the module's default rule.

    Parameters
    ----------
    atoms
        The configuration.
    requested
        Number chosen by the user (``None``: the default rule).
    charge
        Total charge of the cell (for the parity check).

    Raises
    ------
    ReferenceMethodError
        A negative count; a count whose parity disagrees with the number of electrons; or, with the default
        rule, several open-shell metal atoms or a metal without a default (the message asks for a choice).
    """
    counts = Counter(atoms.get_chemical_symbols())
    if requested is None:
        unknown = sorted(el for el in counts if el in _D_AND_F_BLOCK
                         and el not in UNPAIRED_ELECTRONS and el not in CLOSED_SHELL_METALS)
        if unknown:
            raise ReferenceMethodError(
                f"no default spin state for {', '.join(unknown)} (oxidation and spin state vary); choose the "
                "number of unpaired electrons of the cell: unpaired_electrons=N (--unpaired-electrons N)")
        open_shell = {el: n for el, n in counts.items() if el in UNPAIRED_ELECTRONS}
        total = sum(open_shell.values())
        if total > 1:
            listed = ", ".join(f"{n} {el} ({UNPAIRED_ELECTRONS[el]} unpaired each)" for el, n in open_shell.items())
            high = sum(n * UNPAIRED_ELECTRONS[el] for el, n in open_shell.items())
            copper = " (Cu(I), d10, as in copper halide clusters, counts 0)" if "Cu" in open_shell else ""
            raise ReferenceMethodError(
                f"the cell has {total} open-shell metal atoms ({listed}): how their spins couple is a choice; "
                f"set unpaired_electrons=N (--unpaired-electrons N), e.g. {high} for high-spin ferromagnetic "
                f"or {high % 2} for antiferromagnetic coupling{copper}")
        requested = sum(n * UNPAIRED_ELECTRONS[el] for el, n in open_shell.items())
    if requested < 0:
        raise ReferenceMethodError(f"unpaired_electrons must be >= 0, got {requested}")
    electrons = int(atoms.numbers.sum()) - charge
    if (electrons - requested) % 2:
        raise ReferenceMethodError(
            f"{requested} unpaired electron(s) is impossible with {electrons} electrons "
            f"({atoms.get_chemical_formula()}, charge {charge}): the parity differs; check the charge, the "
            "hydrogens, or unpaired_electrons")
    return requested
