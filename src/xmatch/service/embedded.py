"""Embedded mode: one process serving every catalog of a data directory over gRPC.

``xmatch serve`` runs this. With an empty data directory it first loads the bundled
default catalogs, so a fresh installation answers at once.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import threading
import time
from contextlib import contextmanager

from xmatch.service.observe import serve_metrics
from xmatch.service.security import Exposure
from xmatch.service.server import (
    Limits,
    ServedCatalog,
    XmatchServicer,
    create_server,
    stop_server,
)

#: Seconds running calls get to finish on Ctrl-C / SIGTERM, after health turns NOT_SERVING.
GRACE_SECONDS = 5.0


def served_catalogs(data, load_defaults: bool = True,
                    names: list[str] | None = None) -> dict[str, ServedCatalog]:
    """The catalogs ``names`` (default: every one) of the data directory, indexed in
    memory (the defaults loaded first when the directory is empty). The name ``sso``
    stands for every nightly solar-system cache of the directory."""
    from xmatch.alerts.annotation import SSO_CATALOG
    from xmatch.loading import ensure_default_catalogs
    from xmatch.sso.nightly import is_night_cache
    from xmatch.store.catalog import open_catalog

    if load_defaults and not data.names():
        ensure_default_catalogs(data)
    catalogs = {name: open_catalog(name, data)
                for name in (names or data.names()) if name != SSO_CATALOG}
    if names and SSO_CATALOG in names:  # only then look at the others
        for name in data.names():
            if name not in catalogs and is_night_cache(candidate := open_catalog(name, data)):
                catalogs[name] = candidate
    return {name: ServedCatalog.from_catalog(catalog) for name, catalog in catalogs.items()}


async def serve_forever(make_servicer, address: str, what: str = "xmatch",
                        announce=print, stop: asyncio.Event | None = None,
                        exposure: Exposure | None = None, role: str = "embedded") -> None:
    """Serve the servicer ``make_servicer()`` makes (in this event loop) until SIGINT,
    SIGTERM or ``stop``, then drain gracefully. ``exposure``: TLS, tokens and metrics
    (None: plain text, no tokens, no metrics served)."""
    # Signals are handled before "serving" is said: whoever reads that line (a supervisor,
    # a test) may send SIGTERM at once, and must get a drain, not a kill.
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    exposure = exposure or Exposure()
    servicer = make_servicer()
    private = tempfile.mkdtemp(prefix="xmatch-") if exposure.http is not None else None
    socket = f"unix:{private}/grpc.sock" if private else None
    server, port = await create_server(servicer, address, exposure, role, socket)
    host = address.rsplit(":", 1)[0]
    catalogs = servicer.catalogs
    guard = ("TLS" + (", client certificates required" if exposure.tls.client_ca else "")
             if exposure.tls is not None else "plain text")
    guard += f", tokens of {exposure.tokens}" if exposure.tokens is not None else ", no tokens"
    announce(f"{what}: serving {len(catalogs)} catalog(s) ({', '.join(sorted(catalogs))}) "
             f"on {host}:{port} ({guard})")
    metrics = None
    if exposure.metrics is not None:
        metrics = serve_metrics(server.observer, exposure.metrics[1], exposure.metrics[0])
        announce(f"{what}: metrics at http://{exposure.metrics[0]}:"
                 f"{metrics.server_address[1]}/metrics")
    face = None
    if exposure.http is not None:
        try:
            face = await start_http_face(servicer, server, socket, exposure)
        except BaseException:  # its port taken: the gRPC server goes too, cleanly
            await stop_server(server, 0)
            await servicer.close()
            shutil.rmtree(private, ignore_errors=True)
            raise
        scheme = "https" if exposure.tls is not None else "http"
        announce(f"{what}: Virtual Observatory face (SCS, TAP, MOC) at "
                 f"{scheme}://{exposure.http[0]}:{face.port}/")
    await stop.wait()
    announce(f"{what}: stopping (health NOT_SERVING, {GRACE_SECONDS:g} s for running calls)")
    if face is not None:
        await face.stop()
        shutil.rmtree(private, ignore_errors=True)
    await stop_server(server, GRACE_SECONDS)
    await servicer.close()
    if metrics is not None:
        metrics.shutdown()
        metrics.server_close()
    announce(f"{what}: stopped")


async def start_http_face(servicer, server, socket: str, exposure: Exposure):
    """The HTTP face of ``server`` (answering through its private ``socket``), started on
    ``exposure.http`` with the server's TLS and limits."""
    from xmatch.vo.backend import Backend
    from xmatch.vo.http import FaceLimits, HttpFace

    limits = servicer.limits
    face = HttpFace(Backend(socket, limits.max_message_bytes), *exposure.http, exposure.tls,
                    FaceLimits(maxrec=limits.max_rows, upload_rows=limits.max_batch,
                               body_bytes=limits.max_message_bytes), server.observer)
    await face.start()
    return face


def serve(data, host: str = "127.0.0.1", port: int = 50051,
          limits: Limits | None = None, context=None, memory=None,
          exposure: Exposure | None = None) -> None:
    """Load (if needed), index and serve every catalog of ``data``; blocks until stopped.
    ``context``: the context configuration (default: the bundled one). ``memory``: the
    :class:`~xmatch.history.memory.AlertMemory` kept (alert history, watches), or None.
    ``exposure``: TLS, tokens and metrics (None: plain text, no tokens)."""
    from xmatch.service.server import check_address

    check_address(f"{host}:{port}")  # before minutes of indexing, not after
    if exposure is not None and exposure.http is not None:
        check_address("{}:{}".format(*exposure.http), "--http")
    started = time.perf_counter()
    catalogs = served_catalogs(data)
    rows = sum(len(c.index) for c in catalogs.values())
    print(f"xmatch: {rows:,} rows indexed in memory in {time.perf_counter() - started:.1f} s",
          flush=True)
    if context is not None:  # a configuration of the user's: checked before serving
        XmatchServicer(catalogs, limits, context=context).context_engine.check()
    asyncio.run(serve_forever(lambda: XmatchServicer(catalogs, limits, context=context,
                                                     memory=memory),
                              f"{host}:{port}", announce=lambda text: print(text, flush=True),
                              exposure=exposure))


@contextmanager
def running_server(catalogs: dict[str, ServedCatalog], address: str = "127.0.0.1:0",
                   limits: Limits | None = None, context=None, memory=None,
                   exposure: Exposure | None = None):
    """An embedded server on its own event-loop thread for the duration of a ``with``
    block; yields its ``host:port``. For the demo, tests and benchmarks in one process."""
    with running(lambda: XmatchServicer(catalogs, limits, context=context, memory=memory),
                 address, exposure) as bound:
        yield bound


@contextmanager
def running(make_servicer, address: str = "127.0.0.1:0", exposure: Exposure | None = None,
            role: str = "embedded"):
    """Serve ``make_servicer()`` (made in the server's event loop) on its own thread for
    the duration of a ``with`` block; yields the ``host:port`` bound."""
    with running_servicer(make_servicer, address, exposure, role) as (bound, _):
        yield bound


@contextmanager
def running_servicer(make_servicer, address: str = "127.0.0.1:0",
                     exposure: Exposure | None = None, role: str = "embedded"):
    """:func:`running`, yielding ``(host:port, servicer)``."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="xmatch-server", daemon=True)
    thread.start()

    private = (tempfile.mkdtemp(prefix="xmatch-")
               if exposure is not None and exposure.http is not None else None)
    socket = f"unix:{private}/grpc.sock" if private else None

    async def start():
        servicer = make_servicer()
        server, port = await create_server(servicer, address, exposure, role, socket)
        face = None
        if socket is not None:
            face = await start_http_face(servicer, server, socket, exposure)
            servicer.http_address = f"{exposure.http[0]}:{face.port}"
        return servicer, server, port, face

    try:
        servicer, server, port, face = asyncio.run_coroutine_threadsafe(start(), loop).result()
        metrics = None
        try:
            if exposure is not None and exposure.metrics is not None:
                metrics = serve_metrics(server.observer, exposure.metrics[1],
                                        exposure.metrics[0])
                servicer.metrics_address = "{}:{}".format(*metrics.server_address[:2])
            yield f"{address.rsplit(':', 1)[0]}:{port}", servicer
        finally:
            if metrics is not None:
                metrics.shutdown()
                metrics.server_close()
            if face is not None:
                asyncio.run_coroutine_threadsafe(face.stop(), loop).result()
            asyncio.run_coroutine_threadsafe(stop_server(server, 0), loop).result()
            asyncio.run_coroutine_threadsafe(servicer.close(), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
