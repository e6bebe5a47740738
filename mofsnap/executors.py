"""The executors of mofsnap: where labelling, MD runs and descriptor rows fan out. No scheduler of our own.

- :func:`worker_pool`: a local forkserver process pool whose workers end as soon as the process that made it
  ends (each watches it through a pidfd), so a killed command leaves no worker behind.
- :func:`describe_executor`: an executor in a few words, for messages.
- :func:`open_executor`: the executor of the ``--workers N`` / ``--executor ADDRESS`` options: a Dask
  scheduler's executor, a :func:`worker_pool`, or None (run in this process).

Library functions that fan out take an ``executor`` argument and otherwise work in the calling process, so a
plain script without ``if __name__ == "__main__":`` keeps working (process pools re-import the main module).
Only :func:`mofsnap.label` and :class:`~mofsnap.learn.ActiveLearning`, whose references and MD must run
isolated (a crashing reference or LAMMPS must not take the caller down), make a local pool themselves; scripts
using them keep their work under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context


def _end_with(parent_pid: int) -> None:
    """Worker initializer: one OpenMP thread unless told otherwise (the pool's workers share the cores), and end
    this process as soon as the process ``parent_pid`` has ended."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
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


def describe_executor(executor: Executor) -> str:
    """The executor in a few words for messages: a local pool and its size, or a Dask scheduler's address."""
    if isinstance(executor, ProcessPoolExecutor):
        return f"the local pool of {executor._max_workers} worker processes"
    client = getattr(executor, "_client", None)  # a Dask client's executor (client.get_executor())
    if client is not None:
        return f"the Dask executor of the scheduler at {client.scheduler.address}"
    return f"the {type(executor).__name__}"


@contextmanager
def open_executor(workers: int | None = None, address: str | None = None,
                  ranks: int = 1) -> Iterator[Executor | None]:
    """The executor of the ``--workers N`` / ``--executor ADDRESS`` options, shut down at the end.

    A Dask scheduler at ``address`` if given; else a local process pool of ``workers`` processes (default:
    one per CPU divided by ``ranks``), or None (run in this process) for a single worker.
    """
    if address is not None:
        from distributed import Client

        client = Client(address)
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    count = workers or max(1, (os.cpu_count() or 1) // ranks)
    if count == 1:
        yield None
        return
    with worker_pool(count) as pool:
        yield pool
