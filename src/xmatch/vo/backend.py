"""The gRPC API behind the HTTP face: the process's own server (embedded or router), called
over a private Unix socket with each HTTP request's own token, so that the same search
model, permissions, limits and metrics answer every face."""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
import numpy as np
import pyarrow as pa

from xmatch.service.client import (
    CrossmatchStream,
    channel_options,
    region_table,
    rows_table,
)
from xmatch.service.codec import ipc_to_table
from xmatch.sky.regions import Cone, Moc, Polygon
from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

#: Seconds the catalogs' descriptions are kept (a server may serve new catalogs).
DESCRIPTIONS_KEPT_SECONDS = 10.0
#: The whole sky, as order-29 ranges (a search of a catalog with no positional constraint).
WHOLE_SKY = np.array([0, 12 * 4**29], dtype=np.int64)


@dataclass(frozen=True)
class CatalogInfo:
    """What the face needs to know of a catalog: its rows' schema (with units, UCDs and
    descriptions in field metadata) and its identifier and position columns."""

    name: str
    title: str
    rows: int
    schema: pa.Schema
    id_column: str
    ra_column: str
    dec_column: str

    @property
    def columns(self) -> list[str]:
        return self.schema.names


class BackendError(Exception):
    """A gRPC call of the face failed: its status code and detail."""

    def __init__(self, code: grpc.StatusCode, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


class Backend:
    """Calls of the xmatch.v1 API at ``target`` (``unix:PATH`` or ``HOST:PORT``, plain text:
    a socket only this process's user can reach)."""

    def __init__(self, target: str, max_message_bytes: int):
        self._channel = grpc.aio.insecure_channel(target,
                                                  options=channel_options(max_message_bytes))
        self._stub = xmatch_pb2_grpc.XmatchStub(self._channel)
        self._described: tuple[float, dict[str, CatalogInfo]] | None = None

    async def close(self) -> None:
        await self._channel.close()

    async def _unary(self, method: str, request, metadata):
        try:
            return await getattr(self._stub, method)(request, metadata=metadata)
        except grpc.aio.AioRpcError as error:
            raise BackendError(error.code(), error.details() or "") from None

    async def catalogs(self, metadata) -> dict[str, CatalogInfo]:
        """The served catalogs (kept for :data:`DESCRIPTIONS_KEPT_SECONDS`)."""
        if self._described and time.monotonic() - self._described[0] < \
                DESCRIPTIONS_KEPT_SECONDS:
            return self._described[1]
        listing = await self._unary("ListCatalogs", xmatch_pb2.ListCatalogsRequest(), metadata)
        described = {}
        for summary in listing.catalogs:
            d = await self._unary("DescribeCatalog",
                                  xmatch_pb2.DescribeCatalogRequest(name=summary.name),
                                  metadata)
            schema = pa.ipc.read_schema(pa.py_buffer(d.arrow_schema))
            described[summary.name] = CatalogInfo(
                name=summary.name, title=summary.title, rows=summary.rows, schema=schema,
                id_column=d.id_column, ra_column=d.ra_column, dec_column=d.dec_column)
        self._described = (time.monotonic(), described)
        return described

    async def cone(self, catalog: str, cone: Cone, columns, limit: int, metadata) -> pa.Table:
        """The rows within ``cone``, closest first (at most ``limit``; 0: all), with
        ``separation_arcsec``; the schema's metadata says how many were found."""
        request = xmatch_pb2.ConeRequest(
            catalog=catalog, ra_deg=cone.ra_deg, dec_deg=cone.dec_deg,
            radius_arcsec=cone.radius_arcsec, columns=columns or [], limit=limit)
        answer = await self._unary("Cone", request, metadata)
        return rows_table([ipc_to_table(answer.arrow_ipc)], answer.rows_found, arrow=True)

    async def region(self, catalog: str, region: Polygon | Moc, columns, limit: int,
                     metadata) -> pa.Table:
        request = xmatch_pb2.RegionSearchRequest(catalog=catalog, columns=columns or [],
                                                 limit=limit)
        if isinstance(region, Polygon):
            request.polygon.ra_deg.extend(region.ra_deg)
            request.polygon.dec_deg.extend(region.dec_deg)
        else:
            request.ranges29.extend(region.ranges.ravel())
        answers = []
        try:
            while True:
                async for answer in self._stub.RegionSearch(request, metadata=metadata):
                    answers.append(answer)
                if not answers or not answers[-1].continuation_token:
                    break
                request.continuation_token = answers[-1].continuation_token
        except grpc.aio.AioRpcError as error:
            raise BackendError(error.code(), error.details() or "") from None
        return region_table(answers, arrow=True)

    async def crossmatch(self, catalog: str, ra, dec, radius_arcsec, columns,
                         metadata) -> pa.Table:
        """Every row of ``catalog`` within ``radius_arcsec`` of each position, as the left
        join the cross-match answers (``query_index``, ``match_rank``, the columns,
        ``separation_arcsec``)."""
        stream = CrossmatchStream(catalog, ra, dec, radius_arcsec, "all", 1, columns or None,
                                  None, 50_000)
        try:
            async for answer in self._stub.Crossmatch(stream.requests(), metadata=metadata):
                stream.add(answer)
        except grpc.aio.AioRpcError as error:
            raise BackendError(error.code(), error.details() or "") from None
        return stream.result(arrow=True)

    async def coverage(self, catalog: str, order: int, metadata):
        """The MOC of the cells at ``order`` holding rows of ``catalog`` (a mocpy MOC)."""
        from xmatch.service.client import coverage_moc

        answer = await self._unary("Coverage", xmatch_pb2.CoverageRequest(
            catalog=catalog, order=order), metadata)
        return coverage_moc(answer)

