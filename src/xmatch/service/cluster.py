"""A local cluster: shard server processes and the router, run from a plan.

``xmatch cluster shard`` serves one shard's slices; ``xmatch cluster router`` serves the
router; ``xmatch cluster up`` starts one process per shard, waits until each reports
SERVING, runs the router, restarts a shard process that dies, and on Ctrl-C / SIGTERM stops
the router first (health NOT_SERVING, running calls drained) and then the shards the same
way.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from xmatch.errors import XmatchError
from xmatch.service.embedded import GRACE_SECONDS, serve_forever
from xmatch.service.plan import Plan
from xmatch.service.security import Credentials, Exposure
from xmatch.service.server import Limits, ServedCatalog, XmatchServicer

#: How long `cluster up` waits for a shard to load its partitions and report SERVING.
START_TIMEOUT_SECONDS = 600.0


def _say(text: str) -> None:
    print(text, flush=True)


def shard_catalogs(plan: Plan, name: str) -> dict[str, ServedCatalog]:
    """The slices shard ``name`` holds, indexed in memory."""
    from xmatch.store.catalog import HealpixPixel, open_catalog
    from xmatch.store.data_dir import DataDirectory

    data = DataDirectory(plan.data)
    held = plan.slices_held_by(plan.shard_index(name))
    return {catalog: ServedCatalog.from_catalog(
                open_catalog(catalog, data),
                {slice_id: [HealpixPixel(o, p) for o, p in partitions]
                 for slice_id, partitions in slices.items()})
            for catalog, slices in held.items()}


def serve_shard(plan: Plan, name: str, limits: Limits | None = None,
                listen: str | None = None, exposure: Exposure | None = None) -> None:
    """Load and serve one shard of the plan until SIGINT / SIGTERM, listening on ``listen``
    (``host:port``; default the shard's address in the plan); ``exposure``: its TLS,
    tokens and metrics."""
    from xmatch.service.server import check_address

    listen = listen or plan.shards[plan.shard_index(name)].address
    check_address(listen)  # before loading, not after
    started = time.perf_counter()
    catalogs = shard_catalogs(plan, name)
    rows = sum(len(index) for c in catalogs.values() for index in c.slices.values())
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _say(f"{name}: {rows:,} rows of {len(catalogs)} catalog(s) loaded in "
         f"{time.perf_counter() - started:.1f} s; peak RSS {rss_mib:,.0f} MiB")
    asyncio.run(serve_forever(lambda: XmatchServicer(catalogs, limits), listen,
                              what=name, announce=_say, exposure=exposure, role="shard"))


def serve_router(plan: Plan, limits: Limits | None = None, context=None,
                 listen: str | None = None, exposure: Exposure | None = None,
                 credentials: Credentials | None = None) -> None:
    """Serve the router of the plan until SIGINT / SIGTERM (``context``: its context
    configuration, default the bundled one), listening on ``listen`` (``host:port``; default
    the router's address in the plan). ``exposure``: its TLS, tokens and metrics;
    ``credentials``: what it shows the shards."""
    from xmatch.service.router import Router

    asyncio.run(serve_forever(lambda: Router(plan, limits, context, credentials),
                              listen or plan.router, what="router", announce=_say,
                              exposure=exposure, role="router"))


def wait_serving(address: str, timeout: float, process: subprocess.Popen | None = None,
                 credentials: Credentials | None = None) -> None:
    """Block until the server at ``address`` reports SERVING (or fail clearly); health
    checks need TLS where the server has it, never a token."""
    deadline = time.monotonic() + timeout
    with Credentials(credentials.tls if credentials else None).channel(address, []) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if process is not None and process.poll() is not None:
                raise XmatchError(f"the server for {address} exited with code "
                                  f"{process.returncode} before serving")
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise XmatchError(f"no server answered SERVING at {address} within "
                                  f"{timeout:g} s")
            time.sleep(0.1)


def start_shard(plan_path: str, name: str, arguments=()) -> subprocess.Popen:
    """A shard server process (with the command-line ``arguments`` of its TLS, tokens,
    limits and logs), in its own session: Ctrl-C in the terminal reaches only ``cluster
    up``, which stops the router before the shards."""
    return subprocess.Popen([sys.executable, "-m", "xmatch", "cluster", "shard",
                             "--plan", str(plan_path), "--name", name, *arguments],
                            start_new_session=True)


def cluster_up(plan_path: str, context=None, shard_arguments=None, limits=None,
               exposure: Exposure | None = None,
               credentials: Credentials | None = None) -> None:
    """Run a whole cluster from a plan until Ctrl-C / SIGTERM (``context``: the router's
    context configuration, default the bundled one). ``shard_arguments(i)``: the extra
    command-line arguments of shard ``i``; ``exposure`` and ``credentials``: the router's
    (see :func:`serve_router`)."""
    plan = Plan.read(plan_path)

    def start(i: int, name: str) -> subprocess.Popen:
        return start_shard(plan_path, name, shard_arguments(i) if shard_arguments else ())

    processes = {s.name: start(i, s.name) for i, s in enumerate(plan.shards)}
    try:
        for shard in plan.shards:
            wait_serving(shard.address, START_TIMEOUT_SECONDS, processes[shard.name],
                         credentials)
        _say(f"cluster: {len(plan.shards)} shard(s) serving; starting the router")

        async def supervise(stop: asyncio.Event):
            while not stop.is_set():  # restart a shard process that died
                for i, shard in enumerate(plan.shards):
                    process = processes[shard.name]
                    if process.poll() is not None:
                        _say(f"cluster: {shard.name} exited with code {process.returncode}; "
                             "restarting it")
                        processes[shard.name] = start(i, shard.name)
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except TimeoutError:
                    pass

        async def run():
            stop = asyncio.Event()
            watcher = asyncio.ensure_future(supervise(stop))
            from xmatch.service.router import Router

            await serve_forever(lambda: Router(plan, limits, context, credentials),
                                plan.router, what="router", announce=_say, stop=stop,
                                exposure=exposure, role="router")
            stop.set()
            await watcher

        asyncio.run(run())
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()  # SIGTERM: NOT_SERVING, then drain
        for name, process in processes.items():
            try:
                process.wait(GRACE_SECONDS + 10)
            except subprocess.TimeoutExpired:
                _say(f"cluster: {name} did not stop; killing it")
                process.kill()
                process.wait()
        _say("cluster: stopped")
