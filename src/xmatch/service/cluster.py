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


def serve_shard(plan: Plan, name: str, limits: Limits | None = None) -> None:
    """Load and serve one shard of the plan until SIGINT / SIGTERM."""
    shard = plan.shards[plan.shard_index(name)]
    started = time.perf_counter()
    catalogs = shard_catalogs(plan, name)
    rows = sum(len(index) for c in catalogs.values() for index in c.slices.values())
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _say(f"{name}: {rows:,} rows of {len(catalogs)} catalog(s) loaded in "
         f"{time.perf_counter() - started:.1f} s; peak RSS {rss_mib:,.0f} MiB")
    asyncio.run(serve_forever(lambda: XmatchServicer(catalogs, limits), shard.address,
                              what=name, announce=_say))


def serve_router(plan: Plan, limits: Limits | None = None, context=None) -> None:
    """Serve the router of the plan until SIGINT / SIGTERM (``context``: its context
    configuration, default the bundled one)."""
    from xmatch.service.router import Router

    asyncio.run(serve_forever(lambda: Router(plan, limits, context), plan.router,
                              what="router", announce=_say))


def wait_serving(address: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Block until the server at ``address`` reports SERVING (or fail clearly)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
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


def start_shard(plan_path: str, name: str) -> subprocess.Popen:
    """A shard server process, in its own session: Ctrl-C in the terminal reaches only
    ``cluster up``, which stops the router before the shards."""
    return subprocess.Popen([sys.executable, "-m", "xmatch", "cluster", "shard",
                             "--plan", str(plan_path), "--name", name],
                            start_new_session=True)


def cluster_up(plan_path: str, context=None) -> None:
    """Run a whole cluster from a plan until Ctrl-C / SIGTERM (``context``: the router's
    context configuration, default the bundled one)."""
    plan = Plan.read(plan_path)
    processes = {s.name: start_shard(plan_path, s.name) for s in plan.shards}
    try:
        for shard in plan.shards:
            wait_serving(shard.address, START_TIMEOUT_SECONDS, processes[shard.name])
        _say(f"cluster: {len(plan.shards)} shard(s) serving; starting the router")

        async def supervise(stop: asyncio.Event):
            while not stop.is_set():  # restart a shard process that died
                for shard in plan.shards:
                    process = processes[shard.name]
                    if process.poll() is not None:
                        _say(f"cluster: {shard.name} exited with code {process.returncode}; "
                             "restarting it")
                        processes[shard.name] = start_shard(plan_path, shard.name)
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except TimeoutError:
                    pass

        async def run():
            stop = asyncio.Event()
            watcher = asyncio.ensure_future(supervise(stop))
            from xmatch.service.router import Router

            await serve_forever(lambda: Router(plan, context=context), plan.router,
                                what="router",
                                announce=_say, stop=stop)
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
