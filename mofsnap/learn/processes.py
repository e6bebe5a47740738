"""One learner per work directory: :class:`WorkdirLock`, an exclusive ``flock`` on ``WORKDIR/lock``.

The kernel releases the lock when its process ends in any way (SIGKILL included), so a stale lock never blocks
a resume, while a second live process gets a one-line error. (The campaign's workers come from
:func:`mofsnap.executors.worker_pool` and end with it.)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..exceptions import LearnError


class WorkdirLock:
    """An exclusive lock on a work directory, held until :meth:`release` or the end of the process.

    Parameters
    ----------
    workdir : path
        The (existing) work directory; the lock file is ``workdir/lock`` and holds the owner's pid.

    Raises
    ------
    LearnError
        Another live process holds the lock.
    """

    def __init__(self, workdir: str | Path) -> None:
        self.path = Path(workdir) / "lock"
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            self._fd = None
            raise LearnError(f"{Path(workdir)} is in use by another mofsnap learn process (pid {owner}); wait for it "
                             "to finish or use another work directory") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    @property
    def held(self) -> bool:
        """Whether this object still holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
