"""Embedded mode: one process serving every catalog of a data directory over gRPC.

``xmatch serve`` runs this. With an empty data directory it first loads the bundled
default catalogs, so a fresh installation answers at once.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from contextlib import contextmanager

from xmatch.service.server import (
    Limits,
    ServedCatalog,
    XmatchServicer,
    create_server,
    stop_server,
)

#: Seconds running calls get to finish on Ctrl-C / SIGTERM, after health turns NOT_SERVING.
GRACE_SECONDS = 5.0


def served_catalogs(data, load_defaults: bool = True) -> dict[str, ServedCatalog]:
    """Every catalog of the data directory, indexed in memory (the defaults loaded first
    when the directory is empty)."""
    from xmatch.loading import ensure_default_catalogs
    from xmatch.store.catalog import open_catalog

    if load_defaults and not data.names():
        ensure_default_catalogs(data)
    return {name: ServedCatalog.from_catalog(open_catalog(name, data)) for name in data.names()}


async def serve_forever(catalogs: dict[str, ServedCatalog], address: str,
                        limits: Limits | None = None, announce=print) -> None:
    """Serve until SIGINT or SIGTERM, then drain gracefully."""
    server, port = await create_server(XmatchServicer(catalogs, limits), address)
    host = address.rsplit(":", 1)[0]
    announce(f"xmatch: serving {len(catalogs)} catalog(s) ({', '.join(sorted(catalogs))}) "
             f"on {host}:{port}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    announce(f"xmatch: stopping (health NOT_SERVING, {GRACE_SECONDS:g} s for running calls)")
    await stop_server(server, GRACE_SECONDS)
    announce("xmatch: stopped")


def serve(data, host: str = "127.0.0.1", port: int = 50051,
          limits: Limits | None = None) -> None:
    """Load (if needed), index and serve every catalog of ``data``; blocks until stopped."""
    started = time.perf_counter()
    catalogs = served_catalogs(data)
    rows = sum(len(c.index) for c in catalogs.values())
    print(f"xmatch: {rows:,} rows indexed in memory in {time.perf_counter() - started:.1f} s",
          flush=True)
    asyncio.run(serve_forever(catalogs, f"{host}:{port}", limits,
                              announce=lambda text: print(text, flush=True)))


@contextmanager
def running_server(catalogs: dict[str, ServedCatalog], address: str = "127.0.0.1:0",
                   limits: Limits | None = None):
    """A server on its own event-loop thread for the duration of a ``with`` block; yields
    its ``host:port``. For the demo, tests and benchmarks in one process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="xmatch-server", daemon=True)
    thread.start()
    try:
        server, port = asyncio.run_coroutine_threadsafe(
            create_server(XmatchServicer(catalogs, limits), address), loop).result()
        try:
            yield f"{address.rsplit(':', 1)[0]}:{port}"
        finally:
            asyncio.run_coroutine_threadsafe(stop_server(server, 0), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
