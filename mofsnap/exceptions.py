"""Exception types of mofsnap: one class per kind of failure, all deriving from :class:`MofsnapError`."""


class MofsnapError(Exception):
    """Base class of every error raised by mofsnap."""


class LammpsError(MofsnapError, RuntimeError):
    """LAMMPS rejected a command; the message is LAMMPS's own."""


class AtomTypingError(MofsnapError, ValueError):
    """A structure cannot be given atom types (isolated atoms, overlaps, unknown elements...)."""


class ModelError(MofsnapError, ValueError):
    """A SNAP model file or model/structure combination is invalid."""


class MetadynamicsError(MofsnapError, RuntimeError):
    """PLUMED is missing, or a run cannot start or resume."""


class RingSelectionError(MofsnapError, ValueError):
    """The structure has no such phenylene ring (or lacks the atom types to find one)."""


class HillsFileError(MofsnapError, ValueError):
    """A HILLS file is missing, empty or in a form that is not supported."""


class PhononError(MofsnapError, ValueError):
    """Settings or structures that phonopy cannot work with."""


class ThermalExpansionError(MofsnapError, ValueError):
    """Trajectories or settings that do not allow the analysis (too short, unknown T or P, too few points)."""


class VDOSError(MofsnapError, ValueError):
    """The trajectory or the settings do not allow a VDOS (no velocities, too few frames, bad band...)."""


class CBADError(MofsnapError, ValueError):
    """A frame or state file cannot be used by the CBAD filter (mismatched atoms, NaN, bad options...)."""


class DescriptorError(MofsnapError, ValueError):
    """A configuration cannot be described by the model (unknown type, too small a cell, bad values)."""


class FitError(MofsnapError, ValueError):
    """Training data or fit settings are unusable (missing labels, NaN, inconsistent sizes...)."""


class LabellingError(MofsnapError, RuntimeError):
    """Labelling could not proceed (store unusable, worker pool broken beyond repair...)."""


class ExecutorUnavailableError(MofsnapError, RuntimeError):
    """The executor refused work or no worker answered in time."""


class LabelTimeout(MofsnapError, TimeoutError):
    """A single calculation exceeded its time limit."""


class LearnError(MofsnapError, ValueError):
    """Invalid active-learning settings, or a work directory made with other settings."""


class MDError(MofsnapError, RuntimeError):
    """An MD run cannot be set up, resumed or continued."""


class ReferenceMethodError(MofsnapError, ValueError):
    """A reference is misconfigured, or cannot treat a given configuration (no cell, unknown element...)."""


class ReferenceUnavailableError(MofsnapError, RuntimeError):
    """The program behind a reference is not installed or cannot be started."""


class TopologyError(MofsnapError, ValueError):
    """A structure does not fit a topology (atom count, element order, cell), or cannot be given one."""


class ResultFileError(MofsnapError, ValueError):
    """A result file is missing, damaged, of another kind or of another format version."""


class StructureError(MofsnapError, ValueError):
    """An unknown built-in structure name, or a structure file that is missing or cannot be read."""


class LabelStoreError(LabellingError):
    """A label store is empty, damaged, not an SQLite file, or held by another process."""


class ConfigurationError(MofsnapError, ValueError):
    """A configuration refused before any reference call: overlapping atoms, Z = 0 or unknown elements,
    non-finite positions or cell, or atom types that disagree with its own geometry."""


class ValidationFailed(MofsnapError, RuntimeError):
    """An active-learning campaign ended, but its final model failed the closing validation (the message names
    the failed checks: the guard, the time and the atoms/types involved, or the errors and lattice)."""
