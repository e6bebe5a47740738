"""The processes of a campaign: one learner per work directory, and workers that die with their campaign.

- :class:`WorkdirLock`: an exclusive ``flock`` on ``WORKDIR/lock``. The kernel releases it when its process
  ends in any way (SIGKILL included), so a stale lock never blocks a resume, while a second live process gets
  a one-line error.
- :func:`worker_pool`: the local process pool of the loop (forkserver). Each worker watches the campaign's
  main process through a pidfd and ends itself as soon as that process is gone, so a killed campaign leaves
  no worker behind (the forkserver and the resource tracker end once their clients are gone).
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
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


def _end_with(parent_pid: int) -> None:
    """Worker initializer: end this process as soon as the process ``parent_pid`` has ended."""
    try:
        pidfd = os.pidfd_open(parent_pid)
    except ProcessLookupError:  # already gone
        os.kill(os.getpid(), signal.SIGKILL)
        return

    def watch() -> None:
        select.select([pidfd], [], [])  # a pidfd becomes readable when its process ends
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="end-with-campaign", daemon=True).start()


def worker_pool(max_workers: int) -> ProcessPoolExecutor:
    """A forkserver process pool of ``max_workers`` whose workers end when this process ends."""
    return ProcessPoolExecutor(max_workers, mp_context=get_context("forkserver"), initializer=_end_with,
                               initargs=(os.getpid(),))
