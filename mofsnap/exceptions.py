"""Exception types of mofsnap: one class per kind of failure, all deriving from :class:`MofsnapError`."""


class MofsnapError(Exception):
    """Base class of every error raised by mofsnap."""


class LammpsError(MofsnapError, RuntimeError):
    """LAMMPS rejected a command; the message is LAMMPS's own."""


class AtomTypingError(MofsnapError, ValueError):
    """A structure cannot be given atom types (isolated atoms, overlaps, unknown elements...)."""


class ModelError(MofsnapError, ValueError):
    """A SNAP model file or model/structure combination is invalid."""
