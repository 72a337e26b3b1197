"""The one owner of Dask: the cluster a load or a catalog join runs on.

Work that outgrows one process runs on ``dask.distributed``, the engine the field already
runs (LSDB, hats-import), not on a scheduler of our own: a scheduler a user names by its
address (``--scheduler tcp://host:8786``), or a ``LocalCluster`` of worker processes with
one thread each started for the job and stopped after it. Every worker must see the data
directory at the same path (one machine, or a shared file system).
"""

from __future__ import annotations

import contextlib
import os

from xmatch.errors import InputError, XmatchError

#: How long to wait for a named scheduler to answer before giving up.
CONNECT_TIMEOUT_S = 10
#: How many times Dask runs a task again after it raised on a worker that failed (a lost
#: file handle, memory); a worker that dies is handled by the scheduler itself
#: (``distributed.scheduler.allowed-failures``).
TASK_RETRIES = 2


def check_choice(scheduler: str | None, workers: int | None) -> None:
    """One of ``scheduler`` (an address) or ``workers`` (a local cluster's size), not both."""
    if scheduler is not None and workers is not None:
        raise InputError("give a scheduler address or a number of local workers, not both "
                         "(the scheduler's cluster has its own workers)")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise InputError(f"workers must be a whole number >= 1, not {workers!r}")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise InputError(f"the scheduler address must be a non-empty string such as "
                         f"tcp://host:8786, not {scheduler!r}")


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None):
    """A ``distributed.Client`` to the scheduler at ``scheduler``, else to a ``LocalCluster``
    of ``workers`` processes (default: one per core) with one thread each, which is stopped
    on exit."""
    import logging

    from distributed import Client, LocalCluster

    check_choice(scheduler, workers)
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise XmatchError(f"cannot reach the Dask scheduler at {scheduler} within "
                              f"{CONNECT_TIMEOUT_S} s: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    # The local cluster's start-up chatter (ports, dashboard) is not the user's business.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                           processes=True, dashboard_address=":0")
    client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def worker_threads(client) -> int:
    """How many tasks the client's cluster runs at once (at least 1)."""
    return max(1, sum(client.nthreads().values()))


def lost_with_workers(exc: BaseException, what: str) -> XmatchError | None:
    """The error to raise for ``exc`` when it is Dask's ``KilledWorker``: a task lost with
    the workers that ran it more often than the scheduler allows; None otherwise."""
    import sys

    scheduler = sys.modules.get("distributed.scheduler")
    if scheduler is None or not isinstance(exc, scheduler.KilledWorker):
        return None
    return XmatchError(f"a {what} task was lost with the workers that ran it, again and again "
                       f"({exc}); the workers may be running out of memory")
