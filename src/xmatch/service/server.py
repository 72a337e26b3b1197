"""The gRPC service (``xmatch.v1.Xmatch``) over in-memory sky indexes: a thin servicer.

One :class:`XmatchServicer` answers for a set of catalogs, each held as indexes over the
partitions assigned to it (all of them in embedded mode; a share of them on a shard server).
Each RPC reads its request through :mod:`xmatch.service.validation`, asks the index
(:meth:`xmatch.SkyIndex.search`, ``crossmatch``) and encodes the answer
(:mod:`xmatch.service.codec`). Searches run in a thread pool: the numba kernels release
the GIL, so the event loop keeps serving while they run. Failures are answered by the one
abort path, :class:`~xmatch.service.calls.CallInterceptor`, which also checks tokens and
keeps the metrics and logs (:mod:`xmatch.service.security`, :mod:`xmatch.service.observe`).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from xmatch.errors import CatalogNotFoundError, InputError, XmatchError
from xmatch.index.results import RANK_COLUMN, ROWS_FOUND_KEY, rows_found
from xmatch.service import validation
from xmatch.service.annotate import AnnotateService
from xmatch.service.calls import CallInterceptor
from xmatch.service.catalogs import ServedCatalog, SkyMaps
from xmatch.service.codec import table_to_ipc
from xmatch.service.context import ContextService
from xmatch.service.history import HistoryService
from xmatch.service.observe import Observer
from xmatch.service.security import Access, Exposure
from xmatch.service.validation import Limits
from xmatch.sky.regions import Cone
from xmatch.timescales import tdb_mjd
from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

SERVICE_NAME = xmatch_pb2.DESCRIPTOR.services_by_name["Xmatch"].full_name
#: Cones up to this radius are answered on the event loop itself (see ``Cone``).
INLINE_CONE_ARCSEC = 60.0
#: Cross-match batches of one stream being answered at once (later ones wait).
BATCHES_IN_FLIGHT = 4
#: Accept a router's keepalive pings every second, with or without calls (routing's
#: CHANNEL_OPTIONS); by default a server answers pings more often than every 5 minutes
#: with GOAWAY "too many pings", which would drop the router's calls.
KEEPALIVE_OPTIONS = [("grpc.http2.min_recv_ping_interval_without_data_ms", 500),
                     ("grpc.http2.max_ping_strikes", 0),
                     ("grpc.keepalive_permit_without_calls", 1)]

__all__ = ["Boundary", "Limits", "SERVICE_NAME", "ServedCatalog", "XmatchServicer",
           "create_server", "stop_server"]


def rows_response(table, **fields) -> xmatch_pb2.RowsResponse:
    """An answer of rows: their Arrow IPC (without the rows-found mark, which travels in
    the message) and counts."""
    found = rows_found(table)
    metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k != ROWS_FOUND_KEY}
    table = table.replace_schema_metadata(metadata or None)
    return xmatch_pb2.RowsResponse(arrow_ipc=table_to_ipc(table), rows=table.num_rows,
                                   rows_found=found, **fields)


class Boundary(AnnotateService, ContextService, HistoryService):
    """What every server of the service (embedded, shard, router) shares: the catalog
    listing, the cross-match and annotation streams, and the checks at the boundary.
    Subclasses answer searches, and one cross-match batch with ``_crossmatch_options``
    and ``_crossmatch_batch``."""

    catalogs: dict
    limits: Limits
    observer: Observer | None = None  # set by create_server

    def _catalog(self, name: str, night_cache: bool | None = False):
        """A served catalog by name: a sky catalog, or with ``night_cache`` a nightly
        solar-system ephemeris cache (the two answer different questions), or with None
        either (a cross-match answers both)."""
        served = self.catalogs.get(name)
        if served is None:
            raise CatalogNotFoundError(
                f"no catalog {name!r} here; catalogs served: {', '.join(sorted(self.catalogs))}")
        if night_cache is None:
            return served
        if night_cache and served.night is None:
            raise InputError(f"{name} is not a solar-system ephemeris cache; SsoCone serves "
                             f"{', '.join(self._night_caches()) or 'none here'}")
        if not night_cache and served.night is not None:
            raise InputError(f"{name} is a solar-system ephemeris cache: ask it with SsoCone "
                             "(Client.sso_cone, xmatch sso cone)")
        return served

    def _night_caches(self) -> list[str]:
        return sorted(name for name, c in self.catalogs.items() if c.night is not None)

    def _sso_request(self, request):
        """The cache, its night and the TDB instant of an SsoCone request, checked."""
        from xmatch.sso.nightly import cache_covering, no_cache_covers
        from xmatch.sso.observers import observatory
        from xmatch.timescales import check_scale

        self.limits.radius(request.radius_arcsec)
        validation.cone_position(request)
        t_tdb = float(tdb_mjd(request.mjd, check_scale(request.time_scale)))
        site = observatory(request.observatory).code if request.observatory.strip() else ""
        if request.catalog:
            served = self._catalog(request.catalog, night_cache=True)
            if site and site != served.night.observatory:
                raise InputError(f"{request.catalog} is the cache of observatory "
                                 f"{served.night.observatory}, not {site}")
            served.night.check(t_tdb, request.catalog)
            return request.catalog, served, t_tdb
        if not site:
            raise InputError("give the catalog (a nightly cache) or the observatory code")
        name, caches = cache_covering(
            {n: c.night for n, c in self.catalogs.items() if c.night is not None}, t_tdb, site)
        if name is None:
            raise CatalogNotFoundError(no_cache_covers(site, t_tdb, caches))
        return name, self.catalogs[name], t_tdb

    def _batch_times(self, options: dict, batch, n: int) -> np.ndarray | None:
        """The TDB instants of a cross-match batch against a nightly cache (None for a sky
        catalog), checked against the cache's night."""
        night, name = options["night"], options["catalog"]
        if night is None:
            if len(batch.mjd):
                raise InputError(f"batch {batch.batch_id}: mjd is for nightly solar-system "
                                 f"caches; {name} takes epoch_jyear")
            return None
        if len(batch.mjd) != n:
            raise InputError(f"batch {batch.batch_id}: {name} is a nightly solar-system "
                             f"cache: give one mjd per position ({n}), not {len(batch.mjd)}")
        try:
            t_tdb = np.atleast_1d(tdb_mjd(np.asarray(batch.mjd, np.float64),
                                          options["time_scale"]))
            night.check(t_tdb, name)
        except XmatchError as error:  # name the batch, keep the message
            raise InputError(f"batch {batch.batch_id}: {error}") from None
        return t_tdb

    async def ListCatalogs(self, request, context):
        return xmatch_pb2.ListCatalogsResponse(
            catalogs=[self.catalogs[name].summary for name in sorted(self.catalogs)])

    async def DescribeCatalog(self, request, context):
        return self._catalog(request.name, night_cache=None).description

    async def Crossmatch(self, request_iterator, context):
        async for answer in self._pipeline(request_iterator, context, self._crossmatch_options,
                                           self._crossmatch_batch, "catalog, radius, mode"):
            yield answer

    async def Annotate(self, request_iterator, context):
        async for answer in self._pipeline(request_iterator, context, self._annotate_options,
                                           self._annotate_batch, "catalogs, radii"):
            yield answer

    async def _pipeline(self, request_iterator, context, open_options, answer_batch,
                        options_hint: str):
        """A stream of options then batches: the batches are read by a task of their own and
        answered BATCHES_IN_FLIGHT at a time, in order (a client may send everything first
        or wait for each answer; a client that stops reading stops the reading here)."""
        pending: asyncio.Queue = asyncio.Queue(maxsize=BATCHES_IN_FLIGHT)

        async def read():
            options = None
            try:
                async for message in request_iterator:
                    kind = message.WhichOneof("item")
                    if kind == "options":
                        if options is not None:
                            raise InputError("options may be sent once, as the first message")
                        options = open_options(message.options)
                        continue
                    if kind != "batch":
                        raise InputError("each message carries options (first) or a batch")
                    if options is None:
                        raise InputError("the first message of the stream must carry the "
                                         f"options ({options_hint})")
                    await pending.put(asyncio.ensure_future(
                        answer_batch(options, message.batch, context)))
            except Exception as error:  # noqa: BLE001 (answered in order, after the batches)
                await pending.put(error)
            await pending.put(None)

        reader = asyncio.ensure_future(read())
        try:
            while (item := await pending.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield await item
        finally:
            reader.cancel()
            while not pending.empty():
                item = pending.get_nowait()
                if isinstance(item, asyncio.Future):
                    item.cancel()


class XmatchServicer(Boundary, xmatch_pb2_grpc.XmatchServicer):
    """Answers ``xmatch.v1.Xmatch`` from in-memory catalogs."""

    def __init__(self, catalogs: dict[str, ServedCatalog], limits: Limits | None = None,
                 workers: int | None = None, context=None, memory=None):
        self.catalogs = dict(catalogs)
        self.memory = memory
        self.limits = limits or Limits()
        self.context_config = context
        self.skymaps = SkyMaps(self.limits.skymaps_kept)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xmatch")
        self._empty_answers: dict[tuple, xmatch_pb2.RowsResponse] = {}
        if memory is not None and memory.history is not None:
            memory.history.on_compacted.append(self._serve_history)

    def _serve_history(self) -> None:
        """Serve the history's catalogs as its compaction just published them (cone,
        cross-match, region and sky-map searches see the history as of then)."""
        from xmatch.history.store import HISTORY_CATALOGS
        from xmatch.store.catalog import open_catalog

        data = self.memory.data
        self.serve_catalogs({name: ServedCatalog.from_catalog(open_catalog(name, data))
                             for name in HISTORY_CATALOGS if name in data.names()})

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def serve_catalogs(self, added: dict[str, ServedCatalog], removed=()) -> None:
        """Serve more catalogs, and stop serving others, while running (the nightly caches a
        stream keeps current). Calls already running keep the catalogs they started with."""
        catalogs = {n: c for n, c in self.catalogs.items() if n not in set(removed)}
        catalogs.update(added)
        self.catalogs = catalogs  # one assignment: every call sees the old or the new set

    def _context_catalog(self, name: str):
        from xmatch.context.engine import ContextCatalog
        from xmatch.service.annotate import coverage_of
        from xmatch.store.paths import ROW_ID_COLUMN

        served = self._catalog(name)
        return ContextCatalog(served.spec, served.description.id_column or ROW_ID_COLUMN,
                              coverage_of(served.description.coverage_moc),
                              lambda: served.slice_index(""))

    async def _run(self, function, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))

    # ------------------------------------------------------------------ searches

    async def Cone(self, request, context):
        index = self._catalog(request.catalog).slice_index(request.slice)
        self.limits.radius(request.radius_arcsec)
        ra, dec = validation.cone_position(request)
        region = Cone(ra, dec, request.radius_arcsec)
        limit = self.limits.limit(request.limit)
        epoch = validation.epoch_of(request)
        columns = validation.columns_of(request)

        def answer():
            table = index.search(region, columns=columns, limit=limit, epoch=epoch)
            self.limits.rows(table.num_rows, "this cone")
            if table.num_rows or rows_found(table):
                return rows_response(table)
            # Empty answers (most small cones) are encoded once per column choice.
            key = (request.catalog, request.slice, tuple(request.columns), epoch is None)
            empty = self._empty_answers.get(key)
            if empty is None:
                empty = self._empty_answers[key] = rows_response(table)
            return empty

        # A small cone takes tens of microseconds: answering it on the event loop costs
        # less than the hop to a worker thread and back.
        if request.radius_arcsec <= INLINE_CONE_ARCSEC:
            return answer()
        return await self._run(answer)

    async def Coverage(self, request, context):
        served = self._catalog(request.catalog)
        served.slice_index(request.slice)
        order = validation.coverage_order(request)
        answer, size = await self._run(served.coverage, request.slice, order)
        self.limits.message(size, f"the coverage of {request.catalog} at order {order}",
                            "ask a lower order")
        return answer

    async def SsoCone(self, request, context):
        name, served, t_tdb = self._sso_request(request)
        index = served.slice_index(request.slice)
        limit = self.limits.limit(request.limit)

        def answer():
            table = index.cone(request.ra_deg, request.dec_deg, request.radius_arcsec, t_tdb)
            found = table.num_rows
            table = table.slice(0, limit)
            self.limits.rows(table.num_rows, "this cone")
            return xmatch_pb2.RowsResponse(arrow_ipc=table_to_ipc(table), rows=table.num_rows,
                                           rows_found=found)

        return await self._run(answer)

    async def RegionSearch(self, request, context):
        from xmatch.index.sky_index import RegionRows

        index = self._catalog(request.catalog).slice_index(request.slice)
        region, rank_by = await self._run(validation.region_of, request, self.skymaps)
        clip = validation.clip_of(request)
        batch_rows = self.limits.batch_rows(request.batch_rows)
        start = validation.token_offset(request.continuation_token)
        limit = self.limits.limit(request.limit)
        columns = index.payload_columns(validation.columns_of(request))
        rows = await self._run(RegionRows, index, region, columns, rank_by=rank_by,
                               clip29=clip)
        end = rows.total if limit is None else min(rows.total, limit)
        if start >= end:  # nothing (left): one empty batch, so the schema arrives
            table = await self._run(rows.take, 0, 0)
            yield xmatch_pb2.RowsResponse(arrow_ipc=table_to_ipc(table), rows=0,
                                          rows_found=rows.total)
            return
        for offset in range(start, end, batch_rows):
            stop = min(offset + batch_rows, end)
            piece = await self._run(lambda a=offset, b=stop: table_to_ipc(rows.take(a, b)))
            yield xmatch_pb2.RowsResponse(arrow_ipc=piece, rows=stop - offset,
                                          rows_found=rows.total,
                                          continuation_token=f"offset:{stop}" if stop < end
                                          else "")

    def _crossmatch_options(self, options) -> dict:
        served = self._catalog(options.catalog, night_cache=None)
        index = served.slice_index(options.slice)
        radius = options.radius_arcsec or served.summary.default_radius_arcsec
        self.limits.radius(radius)
        keep = validation.crossmatch_keep(options)
        columns = validation.columns_of(options)
        index.payload_columns(columns)  # unknown columns: NOT_FOUND, before any batch
        return {"catalog": served.name, "index": index, "radius": radius, "keep": keep,
                "columns": columns, **validation.night_options(options, served.night)}

    async def _crossmatch_batch(self, options: dict, batch,
                                context) -> xmatch_pb2.CrossmatchResponse:
        n = self.limits.batch(batch)
        ra, dec = validation.batch_positions(batch)
        radius = options["radius"]
        if len(batch.radius_arcsec):
            radius = np.asarray(batch.radius_arcsec, dtype=np.float64)
        epoch = validation.batch_epochs(batch, options["epoch"])
        t_tdb = self._batch_times(options, batch, n)
        table, payload = await self._match_table(options, batch.batch_id, ra, dec, radius,
                                                 epoch, context, encode=True, t_tdb=t_tdb)
        matched = table.num_rows - table.column(RANK_COLUMN).null_count
        return xmatch_pb2.CrossmatchResponse(batch_id=batch.batch_id, arrow_ipc=payload,
                                             queries=n, matches=matched)

    async def _match_table(self, options: dict, batch_id: int, ra, dec, radius, epoch,
                           context, encode: bool = False, t_tdb=None):
        """The left join of one batch (and its Arrow IPC encoding, with ``encode``), worked
        out in the thread pool; a nightly cache places its objects at the TDB ``t_tdb``."""
        def match():
            index = options["index"]
            mode = validation.mode_name(options["keep"])
            k = options["keep"] if mode == "k" else 1
            if options["night"] is None:
                table = index.crossmatch(ra, dec, radius_arcsec=radius, mode=mode, k=k,
                                         epoch=epoch, columns=options["columns"])
            else:
                table = index.crossmatch(ra, dec, radius_arcsec=radius, t_tdb=t_tdb, mode=mode, k=k,
                                         columns=options["columns"])
            self.limits.rows(table.num_rows, f"batch {batch_id}")
            return (table, table_to_ipc(table)) if encode else table

        try:
            return await self._run(match)
        except InputError as error:  # name the batch, keep the message
            raise InputError(f"batch {batch_id}: {error}") from None


# ------------------------------------------------------------------------- the server


def check_address(address: str, option: str = "--port") -> None:
    """Refuse, before anything is loaded, an address this process cannot listen on: a port
    another process listens on (no silent sharing), or a host not of this machine.
    ``option``: the command-line option that chooses the port (named in the message)."""
    import errno
    import socket

    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise XmatchError(f"cannot listen on {address}: give HOST:PORT")
    if int(port) == 0:
        return
    try:
        family = socket.getaddrinfo(host.strip("[]") or None, int(port))[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As gRPC binds: a port left in TIME_WAIT by a stopped server is free; one a
            # process listens on is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host.strip("[]"), int(port)))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise XmatchError(f"cannot listen on {address}: the port is in use (another "
                              f"xmatch server?); choose another with {option} (0: any "
                              "free port)") from None
        raise XmatchError(f"cannot listen on {address}: {error.strerror or error}") from None


async def create_server(servicer, address: str = "127.0.0.1:0",
                        exposure: Exposure | None = None, role: str = "embedded",
                        private_socket: str | None = None):
    """A started ``grpc.aio`` server with the Xmatch service, standard health checking and
    server reflection; returns ``(server, port)`` (``address`` may end in ``:0``). A port
    another process listens on is refused: no silent sharing. ``exposure`` says how it
    faces the network: TLS, tokens and metrics (None: plain text, no tokens, metrics kept
    but not served); ``role`` (embedded, shard, router) labels its metrics.
    ``private_socket``: a Unix socket (``unix:PATH`` in a directory only this user can
    enter) also served, in plain text, for this process's own HTTP face; tokens and limits
    apply there as on the port."""
    exposure = exposure or Exposure()
    check_address(address)
    credentials = exposure.tls.server_credentials() if exposure.tls is not None else None
    access = Access(exposure.tokens) if exposure.tokens is not None else None
    observer = servicer.observer = Observer(role, servicer)
    limit = servicer.limits.max_message_bytes
    server = grpc.aio.server(
        interceptors=[CallInterceptor(observer, access)],
        options=[("grpc.max_send_message_length", limit),
                 ("grpc.max_receive_message_length", limit),
                 ("grpc.so_reuseport", 0), *KEEPALIVE_OPTIONS])
    xmatch_pb2_grpc.add_XmatchServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    try:
        port = (server.add_secure_port(address, credentials) if credentials is not None
                else server.add_insecure_port(address))
    except RuntimeError:  # grpc's way of saying the bind failed
        port = 0
    if port == 0:
        raise XmatchError(f"cannot listen on {address}: the port is in use (another xmatch "
                          "server?) or the address is not one of this machine's; choose "
                          "another with --port (0: any free port)")
    if private_socket is not None:
        server.add_insecure_port(private_socket)
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    server.health = health_servicer  # for graceful shutdown: set NOT_SERVING first
    server.observer = observer
    return server, port


async def stop_server(server, grace: float = 5.0) -> None:
    """Graceful stop: report NOT_SERVING, then let running calls finish for ``grace`` s."""
    for name in ("", SERVICE_NAME):
        await server.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.stop(grace)
