"""Python client of the xmatch service: ``xmatch.Client("host:port")``.

:class:`AsyncClient` offers the same methods as coroutines, for asyncio programs.
Answers come back as astropy Tables (``.to_pandas()`` works on them); pass ``arrow=True``
for the pyarrow Table as received. Positions may be a ``SkyCoord`` or ra/dec in degrees
(numbers, arrays or angle Quantities); radii arcsec or angle Quantities.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import numpy as np
import pyarrow as pa

from xmatch.regions import check_level, moc_from
from xmatch.service.annotate_stream import (
    BATCH_ALERTS,
    RETRIES,
    RETRY_SECONDS,
    WINDOW,
    AnnotatedBatch,
    AnnotateStream,
    alert_batches,
    annotate_options,
)
from xmatch.service.server import ipc_to_table
from xmatch.sky import coords
from xmatch.tables import to_astropy
from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

MODES = {"nearest": xmatch_pb2.MATCH_MODE_NEAREST, "k": xmatch_pb2.MATCH_MODE_K_NEAREST,
         "all": xmatch_pb2.MATCH_MODE_ALL}

#: Positions per streamed cross-match batch.
BATCH_SIZE = 50_000


class Client:
    """A connection to an xmatch server (embedded, or a cluster's router)."""

    def __init__(self, address: str, *, timeout: float | None = 60.0,
                 max_message_bytes: int = 64 * 2**20):
        self.address = address
        self.timeout = timeout
        self._channel = grpc.insecure_channel(address, options=_channel_options(
            max_message_bytes))
        self._stub = xmatch_pb2_grpc.XmatchStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def catalogs(self) -> list[dict]:
        """One summary per served catalog (name, title, rows, epoch, default radius...)."""
        answer = self._stub.ListCatalogs(xmatch_pb2.ListCatalogsRequest(), timeout=self.timeout)
        return [_summary(c) for c in answer.catalogs]

    def describe(self, name: str) -> dict:
        """Everything the server knows of one catalog, with its Arrow schema."""
        return _description(self._stub.DescribeCatalog(
            xmatch_pb2.DescribeCatalogRequest(name=name), timeout=self.timeout))

    def cone(self, catalog: str, position, dec=None, *, radius, columns=None, limit=None,
             epoch=None, arrow: bool = False):
        """Rows of ``catalog`` within ``radius`` of one position, closest first."""
        request = _cone_request(catalog, position, dec, radius, columns, limit, epoch)
        answer = self._stub.Cone(request, timeout=self.timeout)
        return _rows([ipc_to_table(answer.arrow_ipc)], arrow)

    def crossmatch(self, positions, dec=None, *, catalog: str, radius=None,
                   mode: str = "nearest", k: int = 1, columns=None, epoch=None,
                   batch_size: int = BATCH_SIZE, arrow: bool = False):
        """Match many positions against ``catalog`` over one stream of batches.

        The result is a left join (see :meth:`xmatch.SkyIndex.crossmatch`), with
        ``query_index`` counting over all positions given.
        """
        stream = _CrossmatchStream(positions, dec, catalog, radius, mode, k, columns, epoch,
                                   batch_size)
        for answer in self._stub.Crossmatch(stream.requests(), timeout=self.timeout):
            stream.add(answer)
        return stream.result(arrow)

    def region(self, catalog: str, ranges29, *, columns=None, limit=None, arrow: bool = False):
        """Rows inside a MOC given as order-29 ranges (``mocpy``'s ``to_depth29_ranges``)."""
        return _rows(self.region_batches(_region_request(catalog, ranges29, columns, limit)),
                     arrow)

    def moc_search(self, catalog: str, moc, *, columns=None, limit=None,
                   arrow: bool = False):
        """Rows of ``catalog`` inside ``moc``, in pixel order: a ``mocpy.MOC``, an IVOA MOC
        2.0 ASCII string (``"3/1-5 4/120"``) or JSON text, FITS bytes, or the path of a MOC
        file (see :func:`xmatch.regions.moc_from`)."""
        return self.region(catalog, moc_from(moc).to_depth29_ranges, columns=columns,
                           limit=limit, arrow=arrow)

    def skymap_search(self, catalog: str, skymap, level: float = 0.9, *, columns=None,
                      limit=None, rank_by: str | None = None, arrow: bool = False):
        """Rows of ``catalog`` inside the credible region at ``level`` of an LVK sky map (a
        path, or the file's bytes; multi-order or flat, gzipped or not), each with
        ``probdensity`` (sr-1), ``searched_prob``, ``searched_area`` (deg2) and, for a
        catalog with distances and a map with distance layers, ``probdensity_vol``
        (Mpc-3), as ``ligo.skymap.postprocess.crossmatch`` computes them. In pixel order,
        or ranked by ``rank_by`` (``"probdensity"`` or ``"probdensity_vol"``), highest
        first; ``limit`` keeps the first rows."""
        request = _skymap_request(catalog, skymap, level, columns, limit, rank_by)
        return _rows(self.region_batches(request), arrow)

    def region_batches(self, request: xmatch_pb2.RegionSearchRequest,
                       retries: int = RETRIES) -> Iterator[pa.Table]:
        """The batches of a RegionSearch as they arrive; if the stream breaks (UNAVAILABLE)
        it is resumed after the last batch received, up to ``retries`` times in a row."""
        request = _copy(request)
        failures = 0
        while True:
            try:
                for answer in self._stub.RegionSearch(request, timeout=self.timeout):
                    failures = 0
                    yield ipc_to_table(answer.arrow_ipc)
                    if not answer.continuation_token:
                        return
                    request.continuation_token = answer.continuation_token
                return
            except grpc.RpcError as error:
                failures += 1
                if error.code() != grpc.StatusCode.UNAVAILABLE or failures > retries:
                    raise
                time.sleep(RETRY_SECONDS * 2 ** (failures - 1))

    def sso_cone(self, position, dec=None, *, radius, time, observatory: str | None = None,
                 catalog: str | None = None, scale: str = "utc", limit=None,
                 arrow: bool = False):
        """Known solar-system objects inside a cone at an instant, seen from an MPC site,
        closest first (designation, predicted position, separation, V, rates, distances).

        ``time`` is an astropy ``Time``, an ISO string or an MJD in ``scale``; the server
        answers from the nightly cache of ``observatory`` whose night holds it (or from
        ``catalog``).
        """
        answer = self._stub.SsoCone(
            _sso_cone_request(position, dec, radius, time, observatory, catalog, scale, limit),
            timeout=self.timeout)
        return _rows([ipc_to_table(answer.arrow_ipc)], arrow)

    def annotate(self, alerts, *, catalogs=None, radius=None, all_matches: bool = False,
                 schemas: dict[int, str] | None = None, observatory: str | None = None,
                 batch_size: int = BATCH_ALERTS, window: int = WINDOW,
                 retries: int = RETRIES) -> Iterator[AnnotatedBatch]:
        """Annotate alerts with their counterparts in ``catalogs`` (default: all served).

        ``alerts`` are raw packets (paths of ``.avro`` files, directories or tarballs;
        ``bytes``; :class:`~xmatch.alerts.Packet`) or compact alerts (a table with ``ra_deg``,
        ``dec_deg`` and optionally ``alert_id``, ``object_id``, ``mjd_tai``). Yields one
        :class:`AnnotatedBatch` per batch, in order: a pyarrow annotation table with one row
        per alert (docs/alerts.md) and the batch's packets. ``radius``: one for every
        catalog, or ``{catalog: radius}``; arcsec or angle Quantities. The catalog ``sso``
        (default when the server has nightly caches) holds the known solar-system objects
        where they are at each alert's time, seen from its survey's site (ZTF: I41, LSST:
        X05; others: ``observatory``, an MPC code). Alerts are read as
        answers come back (at most ``window`` batches ahead); on UNAVAILABLE the stream is
        reopened up to ``retries`` times in a row and unanswered batches are sent again.
        """
        options = annotate_options(catalogs, radius, all_matches, schemas, observatory)
        return iter(AnnotateStream(self._stub, options, alert_batches(alerts, batch_size),
                                   window, retries))


class AsyncClient:
    """The asyncio form of :class:`Client`: the same methods, as coroutines.

    ``async with xmatch.AsyncClient("host:port") as client:`` then
    ``await client.cone(...)``; many requests may run at once on one client.
    """

    def __init__(self, address: str, *, timeout: float | None = 60.0,
                 max_message_bytes: int = 64 * 2**20):
        self.address = address
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(address, options=_channel_options(
            max_message_bytes))
        self._stub = xmatch_pb2_grpc.XmatchStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def catalogs(self) -> list[dict]:
        answer = await self._stub.ListCatalogs(xmatch_pb2.ListCatalogsRequest(),
                                               timeout=self.timeout)
        return [_summary(c) for c in answer.catalogs]

    async def describe(self, name: str) -> dict:
        return _description(await self._stub.DescribeCatalog(
            xmatch_pb2.DescribeCatalogRequest(name=name), timeout=self.timeout))

    async def cone(self, catalog: str, position, dec=None, *, radius, columns=None,
                   limit=None, epoch=None, arrow: bool = False):
        request = _cone_request(catalog, position, dec, radius, columns, limit, epoch)
        answer = await self._stub.Cone(request, timeout=self.timeout)
        return _rows([ipc_to_table(answer.arrow_ipc)], arrow)

    async def crossmatch(self, positions, dec=None, *, catalog: str, radius=None,
                         mode: str = "nearest", k: int = 1, columns=None, epoch=None,
                         batch_size: int = BATCH_SIZE, arrow: bool = False):
        stream = _CrossmatchStream(positions, dec, catalog, radius, mode, k, columns, epoch,
                                   batch_size)
        async for answer in self._stub.Crossmatch(stream.requests(), timeout=self.timeout):
            stream.add(answer)
        return stream.result(arrow)

    async def region(self, catalog: str, ranges29, *, columns=None, limit=None,
                     arrow: bool = False):
        return await self._region(_region_request(catalog, ranges29, columns, limit), arrow)

    async def moc_search(self, catalog: str, moc, *, columns=None, limit=None,
                         arrow: bool = False):
        return await self.region(catalog, moc_from(moc).to_depth29_ranges, columns=columns,
                                 limit=limit, arrow=arrow)

    async def skymap_search(self, catalog: str, skymap, level: float = 0.9, *, columns=None,
                            limit=None, rank_by: str | None = None, arrow: bool = False):
        request = _skymap_request(catalog, skymap, level, columns, limit, rank_by)
        return await self._region(request, arrow)

    async def _region(self, request, arrow: bool):
        call = self._stub.RegionSearch(request, timeout=self.timeout)
        return _rows([ipc_to_table(answer.arrow_ipc) async for answer in call], arrow)


# ------------------------------------------------------------------------- requests, answers


def _channel_options(max_message_bytes: int) -> list:
    return [("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes)]


def _cone_request(catalog, position, dec, radius, columns, limit, epoch):
    ra_deg, dec_deg, coord_epoch = coords.positions(position, dec)
    if len(ra_deg) != 1:
        raise ValueError("cone takes one position; use crossmatch for many")
    epochs = coords.epochs(epoch, 1) if epoch is not None else coord_epoch
    request = xmatch_pb2.ConeRequest(
        catalog=catalog, ra_deg=float(ra_deg[0]), dec_deg=float(dec_deg[0]),
        radius_arcsec=float(coords.radii_arcsec(radius, 1)[0]), columns=columns or [],
        limit=limit or 0)
    if epochs is not None:
        request.epoch_jyear = float(epochs[0])
    return request


def _sso_cone_request(position, dec, radius, time, observatory, catalog, scale, limit):
    from astropy.time import Time

    ra_deg, dec_deg, _ = coords.positions(position, dec)
    if len(ra_deg) != 1:
        raise ValueError("sso_cone takes one position")
    if isinstance(time, Time):
        mjd, scale = float(time.utc.mjd), "utc"
    elif isinstance(time, str):
        mjd = float(Time(time, scale=scale).mjd)
    else:
        mjd = float(time)
    return xmatch_pb2.SsoConeRequest(
        catalog=catalog or "", ra_deg=float(ra_deg[0]), dec_deg=float(dec_deg[0]),
        radius_arcsec=float(coords.radii_arcsec(radius, 1)[0]), mjd=mjd, time_scale=scale,
        observatory=observatory or "", limit=limit or 0)


def _region_request(catalog, ranges29, columns, limit):
    return xmatch_pb2.RegionSearchRequest(
        catalog=catalog, ranges29=np.asarray(ranges29, dtype=np.int64).ravel(),
        columns=columns or [], limit=limit or 0)


def _skymap_request(catalog, skymap, level, columns, limit, rank_by):
    from pathlib import Path

    if not isinstance(skymap, bytes):
        path = Path(skymap)
        if not path.is_file():
            raise ValueError(f"sky map {path} does not exist")
        skymap = path.read_bytes()
    return xmatch_pb2.RegionSearchRequest(
        catalog=catalog, columns=columns or [], limit=limit or 0,
        skymap=xmatch_pb2.SkyMapRegion(fits=skymap, credible_level=check_level(level),
                                       rank_by=rank_by or ""))


def _copy(request):
    copy = type(request)()
    copy.CopyFrom(request)
    return copy


def _rows(tables, arrow: bool):
    table = pa.concat_tables(list(tables))
    return table if arrow else to_astropy(table)


class _CrossmatchStream:
    """The requests of one cross-match stream, and its answers put back together."""

    def __init__(self, positions, dec, catalog, radius, mode, k, columns, epoch, batch_size):
        self.ra, self.dec, coord_epoch = coords.positions(positions, dec)
        n = len(self.ra)
        if mode not in MODES:
            raise ValueError(f"mode = {mode!r} is not allowed; mode must be one of "
                             f"{', '.join(MODES)}")
        self.options = xmatch_pb2.CrossmatchOptions(
            catalog=catalog, mode=MODES[mode], k=k if mode == "k" else 0, columns=columns or [])
        self.radii = None if radius is None else coords.radii_arcsec(radius, n)
        self.epochs = coords.epochs(epoch, n) if epoch is not None else coord_epoch
        self.batch_size = batch_size
        # With no position, one empty batch: its answer carries the schema.
        self.starts = list(range(0, n, batch_size)) or [0]
        self.pieces = []

    def requests(self):
        yield xmatch_pb2.CrossmatchRequest(options=self.options)
        for batch_id, start in enumerate(self.starts):
            part = slice(start, start + self.batch_size)
            yield xmatch_pb2.CrossmatchRequest(batch=xmatch_pb2.PositionBatch(
                batch_id=batch_id, ra_deg=self.ra[part], dec_deg=self.dec[part],
                radius_arcsec=[] if self.radii is None else self.radii[part],
                epoch_jyear=[] if self.epochs is None else self.epochs[part]))

    def add(self, answer) -> None:
        table = ipc_to_table(answer.arrow_ipc)
        query = pa.compute.add(table["query_index"], self.starts[answer.batch_id])
        self.pieces.append(table.set_column(0, "query_index", query))

    def result(self, arrow: bool):
        table = pa.concat_tables(self.pieces)
        return table if arrow else to_astropy(table)


def _summary(summary) -> dict:
    return {"name": summary.name, "title": summary.title, "rows": summary.rows,
            "epoch_jyear": summary.epoch_jyear if summary.HasField("epoch_jyear") else None,
            "default_radius_arcsec": summary.default_radius_arcsec,
            "proper_motions": summary.proper_motions, "synthetic": summary.synthetic}


def _description(d) -> dict:
    return {**_summary(d.summary), "schema": pa.ipc.read_schema(pa.py_buffer(d.arrow_schema)),
            "id_column": d.id_column, "ra_column": d.ra_column, "dec_column": d.dec_column,
            "key_columns": list(d.key_columns), "coverage_moc": d.coverage_moc,
            "partitions": [(p.order, p.pixel, p.rows) for p in d.partitions]}
