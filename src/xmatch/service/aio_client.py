"""The asyncio form of :class:`xmatch.Client`: exactly the same methods, as coroutines
(``annotate`` and ``search_batches`` as asynchronous iterators).

``async with xmatch.AsyncClient("host:port") as client:`` then
``await client.cone_search("gaia_dr3", 56.75, 24.12, 60)``; many requests may run at once on
one client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pyarrow as pa

from xmatch.service.annotate_stream import (
    BATCH_ALERTS,
    RETRIES,
    RETRY_SECONDS,
    WINDOW,
    AnnotatedBatch,
    StreamLedger,
    alert_batches,
    annotate_options,
)
from xmatch.service.client import (
    BATCH_SIZE,
    DEFAULT_TIMEOUT,
    CrossmatchStream,
    add_watch_request,
    astropy_table,
    channel_options,
    cone_request,
    context_request,
    coverage_moc,
    coverage_request,
    description_dict,
    history_tables,
    notice_answer,
    notice_request,
    region_request,
    region_table,
    rows_table,
    skymap_request,
    sso_cone_request,
    summary_dict,
    watch_answer,
)
from xmatch.service.codec import client_error, ipc_to_table
from xmatch.service.security import Credentials, Tls, read_token
from xmatch.sky.regions import Cone, Moc, Polygon
from xmatch.v1 import xmatch_pb2


class AsyncClient:
    """The asyncio form of :class:`~xmatch.Client`: the same methods, as coroutines."""

    def __init__(self, address: str, *, timeout: float | None = DEFAULT_TIMEOUT,
                 max_message_bytes: int = 64 * 2**20, tls: Tls | None = None,
                 token: str | None = None):
        self.address = address
        self.timeout = timeout
        credentials = Credentials(tls, read_token(token))
        self._channel = credentials.channel(address, channel_options(max_message_bytes),
                                            aio=True)
        self._stub = credentials.stub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _call(self, method: str, request):
        try:
            return await getattr(self._stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise client_error(error, self.address) from None

    async def catalogs(self) -> list[dict]:
        answer = await self._call("ListCatalogs", xmatch_pb2.ListCatalogsRequest())
        return [summary_dict(c) for c in answer.catalogs]

    async def describe(self, catalog: str) -> dict:
        return description_dict(await self._call(
            "DescribeCatalog", xmatch_pb2.DescribeCatalogRequest(name=catalog)))

    async def coverage(self, catalog: str, order: int):
        return coverage_moc(await self._call("Coverage", coverage_request(catalog, order)))

    async def search(self, catalog: str, region, *, columns=None, limit=None, epoch=None,
                     rank_by=None, arrow: bool = False):
        if isinstance(region, Cone):
            answer = await self._call("Cone", cone_request(catalog, region, columns, limit,
                                                           epoch, rank_by))
            return rows_table([ipc_to_table(answer.arrow_ipc)], answer.rows_found, arrow)
        request = region_request(catalog, region, columns, limit, epoch, rank_by)
        return region_table([a async for a in self._region_answers(request)], arrow)

    async def cone_search(self, catalog: str, ra, dec=None, radius_arcsec=None, *,
                          columns=None, limit=None, epoch=None, arrow: bool = False):
        return await self.search(catalog, Cone.of(ra, dec, radius_arcsec), columns=columns,
                                 limit=limit, epoch=epoch, arrow=arrow)

    async def polygon_search(self, catalog: str, ra, dec=None, *, columns=None, limit=None,
                             arrow: bool = False):
        return await self.search(catalog, Polygon.of(ra, dec), columns=columns, limit=limit,
                                 arrow=arrow)

    async def moc_search(self, catalog: str, moc, *, columns=None, limit=None,
                         arrow: bool = False):
        return await self.search(catalog, Moc.of(moc), columns=columns, limit=limit,
                                 arrow=arrow)

    async def skymap_search(self, catalog: str, skymap, level: float = 0.9, *, columns=None,
                            limit=None, rank_by: str | None = None, arrow: bool = False):
        request = skymap_request(catalog, skymap, level, columns, limit, rank_by)
        return region_table([a async for a in self._region_answers(request)], arrow)

    async def search_batches(self, catalog: str, region, *, columns=None, limit=None,
                             rank_by=None, batch_rows: int | None = None,
                             retries: int = RETRIES) -> AsyncIterator[pa.Table]:
        request = region_request(catalog, region, columns, limit, None, rank_by)
        request.batch_rows = batch_rows or 0
        async for answer in self._region_answers(request, retries):
            yield ipc_to_table(answer.arrow_ipc)

    async def _region_answers(self, request, retries: int = RETRIES):
        failures = 0
        while True:
            try:
                async for answer in self._stub.RegionSearch(request, timeout=self.timeout):
                    failures = 0
                    yield answer
                    if not answer.continuation_token:
                        return
                    request.continuation_token = answer.continuation_token
                return
            except grpc.RpcError as error:
                failures += 1
                if error.code() != grpc.StatusCode.UNAVAILABLE or failures > retries:
                    raise client_error(error, self.address) from None
                await asyncio.sleep(RETRY_SECONDS * 2 ** (failures - 1))

    async def crossmatch(self, catalog: str, ra, dec=None, *, radius_arcsec=None,
                         mode: str = "nearest", k: int = 1, epoch=None, columns=None,
                         batch_size: int = BATCH_SIZE, arrow: bool = False):
        stream = CrossmatchStream(catalog, ra, dec, radius_arcsec, mode, k, columns, epoch,
                                  batch_size)
        try:
            async for answer in self._stub.Crossmatch(stream.requests(), timeout=self.timeout):
                stream.add(answer)
        except grpc.RpcError as error:
            raise client_error(error, self.address) from None
        return stream.result(arrow)

    async def sso_cone(self, ra, dec=None, *, radius_arcsec, time,
                       observatory: str | None = None, catalog: str | None = None,
                       scale: str = "utc", limit=None, arrow: bool = False):
        answer = await self._call("SsoCone", sso_cone_request(
            ra, dec, radius_arcsec, time, observatory, catalog, scale, limit))
        return rows_table([ipc_to_table(answer.arrow_ipc)], answer.rows_found, arrow)

    async def object_history(self, object_id: int, arrow: bool = False) -> tuple:
        answer = await self._call("ObjectHistory",
                                  xmatch_pb2.ObjectHistoryRequest(object_id=int(object_id)))
        return history_tables(answer, arrow)

    async def add_watch(self, name: str, *, watchlist=None, moc=None, skymap=None,
                        level: float | None = None, radius_column: str | None = None,
                        radius_arcsec: float | None = None, name_column: str | None = None,
                        replace: bool = False, arrow: bool = False) -> tuple[dict, object]:
        answer = await self._call("AddWatch", add_watch_request(
            name, watchlist, moc, skymap, level, radius_column, radius_arcsec, name_column,
            replace))
        return watch_answer(answer, arrow)

    async def list_watches(self) -> list[dict]:
        answer = await self._call("ListWatches", xmatch_pb2.ListWatchesRequest())
        return json.loads(answer.watches_json)

    async def remove_watch(self, name: str) -> None:
        await self._call("RemoveWatch", xmatch_pb2.RemoveWatchRequest(name=name))

    async def notice(self, notice, *, galaxy_catalog: str | None = None,
                     level: float | None = None, arrow: bool = False) -> tuple:
        answer = await self._call("Notice", notice_request(notice, galaxy_catalog, level))
        return notice_answer(answer, arrow)

    async def context(self, ra, dec=None, *, time=None, scale: str = "utc",
                      arrow: bool = False):
        answer = await self._call("Context", context_request(ra, dec, time, scale))
        table = ipc_to_table(answer.arrow_ipc)
        return table if arrow else astropy_table(table)

    async def annotate(self, alerts, *, catalogs=None, radius_arcsec=None,
                       all_matches: bool = False, schemas: dict[int, str] | None = None,
                       observatory: str | None = None, context: bool = False,
                       history: bool = False, watches: bool = False,
                       batch_size: int = BATCH_ALERTS, window: int = WINDOW,
                       retries: int = RETRIES) -> AsyncIterator[AnnotatedBatch]:
        options = annotate_options(catalogs, radius_arcsec, all_matches, schemas, observatory,
                                   context, history, watches)
        stream = _AsyncAnnotateStream(self._stub, options, alert_batches(alerts, batch_size),
                                      window, retries, self.address)
        async for batch in stream:
            yield batch


class _AsyncAnnotateStream:
    """:class:`~xmatch.service.annotate_stream.AnnotateStream` on asyncio: alerts are read in
    a worker thread, at most ``window`` batches ahead of the answers."""

    def __init__(self, stub, options, batches, window: int, retries: int, address: str):
        self._stub = stub
        self._window = window
        self._ledger = StreamLedger(options, batches, retries, address)

    async def __aiter__(self):
        ledger = self._ledger
        while True:
            credit = asyncio.Semaphore(max(self._window - len(ledger.unanswered), 0))
            call = self._stub.Annotate(self._requests(credit))
            try:
                async for answer in call:
                    batch = ledger.answered(answer)
                    credit.release()
                    yield batch
                ledger.ended()
                return
            except grpc.RpcError as error:
                await asyncio.sleep(ledger.broken(error))
            finally:
                call.cancel()

    async def _requests(self, credit: asyncio.Semaphore):
        ledger = self._ledger
        yield ledger.options
        for request in ledger.resend():
            yield request
        while True:
            await credit.acquire()
            request = await asyncio.to_thread(ledger.take)
            if request is None:
                return
            yield request
