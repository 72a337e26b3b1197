"""Python client of the xmatch service: ``xmatch.Client("host:port")``.

The searches are those of :class:`xmatch.SkyIndex` and :class:`xmatch.Catalog`
(:mod:`xmatch.index.protocol`) with the catalog's name first: ``search``, ``cone_search``,
``polygon_search``, ``moc_search``, ``skymap_search``, ``crossmatch``; then ``sso_cone`` and
``annotate``. :class:`~xmatch.service.aio_client.AsyncClient` offers exactly the same
methods as coroutines. Answers come back as astropy Tables (``.to_pandas()`` works on them;
``meta["rows_found"]`` says how many rows the search found before ``limit``); pass
``arrow=True`` for the pyarrow Table as received. A failed call raises
:class:`~xmatch.errors.ServiceError` with the gRPC ``code`` and the server's message (for
UNAVAILABLE: the shards and partitions a router could not reach, or that no server answers
at the address).
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Iterator

import grpc
import pyarrow as pa

from xmatch.errors import InputError
from xmatch.index.protocol import MODES
from xmatch.index.results import QUERY_COLUMN, with_rows_found
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
from xmatch.service.codec import client_error, ellipse_message, ipc_to_table
from xmatch.service.security import Credentials, Tls, read_token
from xmatch.sky import coords
from xmatch.sky.moc import check_coverage_order, moc_of_ranges29
from xmatch.sky.regions import Cone, Ellipse, Moc, Polygon, SkyMapRegion
from xmatch.v1 import xmatch_pb2

PROTO_MODES = {"nearest": xmatch_pb2.MATCH_MODE_NEAREST, "k": xmatch_pb2.MATCH_MODE_K_NEAREST,
               "all": xmatch_pb2.MATCH_MODE_ALL}

#: Positions per streamed cross-match batch.
BATCH_SIZE = 50_000
#: Seconds a call may take before the client gives up (None: no limit).
DEFAULT_TIMEOUT = 60.0


class Client:
    """A connection to an xmatch server (embedded, or a cluster's router).

    ``tls``: a :class:`~xmatch.service.security.Tls` to connect over TLS (its ``ca``: the
    CA that signed the server's certificate, default the system's; its ``cert``/``key``:
    the client certificate of mutual TLS); None: plain text. ``token``: the bearer token
    (default: ``$XMATCH_TOKEN``), sent over plain text only to a loopback address.
    """

    def __init__(self, address: str, *, timeout: float | None = DEFAULT_TIMEOUT,
                 max_message_bytes: int = 64 * 2**20, tls: Tls | None = None,
                 token: str | None = None):
        self.address = address
        self.timeout = timeout
        credentials = Credentials(tls, read_token(token))
        self._channel = credentials.channel(address, channel_options(max_message_bytes))
        self._stub = credentials.stub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, request):
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise client_error(error, self.address) from None

    def _stream(self, method: str, request) -> Iterator:
        try:
            yield from getattr(self._stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise client_error(error, self.address) from None

    # ------------------------------------------------------------------ catalogs

    def catalogs(self) -> list[dict]:
        """One summary per served catalog (name, title, rows, epoch, default radius...)."""
        return [summary_dict(c) for c in self._call(
            "ListCatalogs", xmatch_pb2.ListCatalogsRequest()).catalogs]

    def describe(self, catalog: str) -> dict:
        """Everything the server knows of one catalog, with its Arrow schema."""
        return description_dict(self._call("DescribeCatalog",
                                           xmatch_pb2.DescribeCatalogRequest(name=catalog)))

    def coverage(self, catalog: str, order: int):
        """The coverage of ``catalog``'s rows: a :class:`mocpy.MOC` of the HEALPix cells at
        ``order`` (0 to 13; required) that hold at least one row, max order ``order``.
        Write it as an IVOA MOC 2.0 document with :func:`xmatch.sky.moc.moc_bytes`."""
        return coverage_moc(self._call("Coverage", coverage_request(catalog, order)))

    # ------------------------------------------------------------------ searches

    def search(self, catalog: str, region, *, columns=None, limit=None, epoch=None,
               rank_by=None, arrow: bool = False):
        """Rows of ``catalog`` inside ``region`` (see
        :meth:`xmatch.index.protocol.Searches.search`)."""
        if isinstance(region, Cone):
            answer = self._call("Cone", cone_request(catalog, region, columns, limit, epoch,
                                                     rank_by))
            return rows_table([ipc_to_table(answer.arrow_ipc)], answer.rows_found, arrow)
        request = region_request(catalog, region, columns, limit, epoch, rank_by)
        return region_table(self._region_answers(request), arrow)

    def cone_search(self, catalog: str, ra, dec=None, radius_arcsec=None, *, columns=None,
                    limit=None, epoch=None, arrow: bool = False):
        """Rows of ``catalog`` within ``radius_arcsec`` of one position, closest first."""
        return self.search(catalog, Cone.of(ra, dec, radius_arcsec), columns=columns,
                           limit=limit, epoch=epoch, arrow=arrow)

    def polygon_search(self, catalog: str, ra, dec=None, *, columns=None, limit=None,
                       arrow: bool = False):
        """Rows of ``catalog`` inside the polygon with these vertices."""
        return self.search(catalog, Polygon.of(ra, dec), columns=columns, limit=limit,
                           arrow=arrow)

    def moc_search(self, catalog: str, moc, *, columns=None, limit=None, arrow: bool = False):
        """Rows of ``catalog`` inside a MOC (any form :meth:`xmatch.sky.regions.Moc.of`
        reads), in pixel order."""
        return self.search(catalog, Moc.of(moc), columns=columns, limit=limit, arrow=arrow)

    def skymap_search(self, catalog: str, skymap, level: float = 0.9, *, columns=None,
                      limit=None, rank_by: str | None = None, arrow: bool = False):
        """Rows of ``catalog`` inside the credible region at ``level`` of an LVK sky map (a
        path, the file's bytes or a ``SkyMap``: the server reads the file), with the map's
        values at each row (see :meth:`xmatch.SkyIndex.skymap_search`)."""
        request = skymap_request(catalog, skymap, level, columns, limit, rank_by)
        return region_table(self._region_answers(request), arrow)

    def search_batches(self, catalog: str, region, *, columns=None, limit=None, rank_by=None,
                       batch_rows: int | None = None,
                       retries: int = RETRIES) -> Iterator[pa.Table]:
        """The rows of a (non-cone) region search batch by batch as they arrive, for
        regions too large to hold at once; a broken stream (UNAVAILABLE) is resumed after
        the last batch received, up to ``retries`` times in a row."""
        request = region_request(catalog, region, columns, limit, None, rank_by)
        request.batch_rows = batch_rows or 0
        for answer in self._region_answers(request, retries):
            yield ipc_to_table(answer.arrow_ipc)

    def _region_answers(self, request, retries: int = RETRIES):
        failures = 0
        while True:
            try:
                for answer in self._stub.RegionSearch(request, timeout=self.timeout):
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
                _time.sleep(RETRY_SECONDS * 2 ** (failures - 1))

    def crossmatch(self, catalog: str, ra, dec=None, *, radius_arcsec=None,
                   mode: str = "nearest", k: int = 1, epoch=None, columns=None,
                   batch_size: int = BATCH_SIZE, arrow: bool = False):
        """Match many positions against ``catalog`` over one stream of batches: a left join
        (see :meth:`xmatch.SkyIndex.crossmatch`), ``query_index`` counting over all the
        positions given."""
        stream = CrossmatchStream(catalog, ra, dec, radius_arcsec, mode, k, columns, epoch,
                                  batch_size)
        for answer in self._stream("Crossmatch", stream.requests()):
            stream.add(answer)
        return stream.result(arrow)

    def sso_cone(self, ra, dec=None, *, radius_arcsec, time, observatory: str | None = None,
                 catalog: str | None = None, scale: str = "utc", limit=None,
                 arrow: bool = False):
        """Known solar-system objects inside a cone at an instant, seen from an MPC site,
        closest first (designation, predicted position, separation, V, rates, distances).

        ``time`` is an astropy ``Time``, an ISO string or an MJD in ``scale``; the server
        answers from the nightly cache of ``observatory`` whose night holds it (or from
        ``catalog``).
        """
        answer = self._call("SsoCone", sso_cone_request(ra, dec, radius_arcsec, time,
                                                        observatory, catalog, scale, limit))
        return rows_table([ipc_to_table(answer.arrow_ipc)], answer.rows_found, arrow)

    def context(self, ra, dec=None, *, time=None, scale: str = "utc", arrow: bool = False):
        """What is known at positions (any form :mod:`xmatch.sky.coords` reads), without an
        alert: one row per position with each context layer's state and nearest candidate,
        and the class with its evidence (docs/context.md). ``time`` (an astropy ``Time``,
        ISO string or MJD in ``scale``; one, or one per position) moves bright stars with
        proper motions to it."""
        answer = self._call("Context", context_request(ra, dec, time, scale))
        table = ipc_to_table(answer.arrow_ipc)
        return table if arrow else astropy_table(table)

    # ------------------------------------------------------------------ history, watches

    def object_history(self, object_id: int, arrow: bool = False) -> tuple:
        """An object of the server's alert history: ``(object, detections)`` tables (one
        row; its detections by time)."""
        answer = self._call("ObjectHistory",
                            xmatch_pb2.ObjectHistoryRequest(object_id=int(object_id)))
        return history_tables(answer, arrow)

    def add_watch(self, name: str, *, watchlist=None, moc=None, skymap=None,
                  level: float | None = None, radius_column: str | None = None,
                  radius_arcsec: float | None = None, name_column: str | None = None,
                  replace: bool = False, arrow: bool = False) -> tuple[dict, object]:
        """Add (or ``replace``) a watchlist (``watchlist``: a table with ra_deg, dec_deg and
        radius_arcsec, or the radius options) or a watchmap (``moc``: text or FITS bytes;
        ``skymap``: FITS bytes with ``level``). Returns its description and its hits among
        the detections already recorded (back-matching)."""
        answer = self._call("AddWatch", add_watch_request(
            name, watchlist, moc, skymap, level, radius_column, radius_arcsec, name_column,
            replace))
        return watch_answer(answer, arrow)

    def list_watches(self) -> list[dict]:
        """The server's watchlists and watchmaps."""
        return json.loads(self._call("ListWatches",
                                     xmatch_pb2.ListWatchesRequest()).watches_json)

    def remove_watch(self, name: str) -> None:
        self._call("RemoveWatch", xmatch_pb2.RemoveWatchRequest(name=name))

    def notice(self, notice, *, galaxy_catalog: str | None = None,
               level: float | None = None, arrow: bool = False) -> tuple:
        """Follow an IGWN notice (JSON bytes or text, a dict, Avro bytes, or a ``Path``):
        the server replaces the superevent's watchmap (removes it on a retraction) and
        answers ``(summary, alert candidates, galaxy candidates)``, the galaxies of
        ``galaxy_catalog`` ranked by 3-D probability (None without one); docs/history.md."""
        return notice_answer(self._call("Notice", notice_request(notice, galaxy_catalog,
                                                                 level)), arrow)

    def annotate(self, alerts, *, catalogs=None, radius_arcsec=None, all_matches: bool = False,
                 schemas: dict[int, str] | None = None, observatory: str | None = None,
                 context: bool = False, history: bool = False, watches: bool = False,
                 batch_size: int = BATCH_ALERTS, window: int = WINDOW,
                 retries: int = RETRIES) -> Iterator[AnnotatedBatch]:
        """Annotate alerts with their counterparts in ``catalogs`` (default: all served).

        ``alerts`` are raw packets (paths of ``.avro`` files, directories or tarballs;
        ``bytes``; :class:`~xmatch.alerts.Packet`) or compact alerts (a table with ``ra_deg``,
        ``dec_deg`` and optionally ``alert_id``, ``object_id``, ``mjd_tai``). Yields one
        :class:`AnnotatedBatch` per batch, in order: a pyarrow annotation table with one row
        per alert (docs/alerts.md) and the batch's packets. ``radius_arcsec``: one for every
        catalog, or ``{catalog: radius}``; arcsec or angle Quantities. The catalog ``sso``
        (default when the server has nightly caches) holds the known solar-system objects
        where they are at each alert's time, seen from its survey's site (ZTF: I41, LSST:
        X05; others: ``observatory``, an MPC code). Alerts are read as answers come back
        (at most ``window`` batches ahead); on UNAVAILABLE the stream is reopened up to
        ``retries`` times in a row and unanswered batches are sent again. Inputs that
        cannot be read raise :class:`~xmatch.errors.LoadError` naming the file (and tar
        member); a packet that cannot be decoded gets a row with its ``error``. ``context``:
        add each alert's context and class (``context_*`` columns; docs/context.md).
        ``history``: record each alert in the server's alert history and add its object's
        history (``history_*`` columns); ``watches``: add its hits in the server's
        watchlists and watchmaps (``watch_hits``; docs/history.md).
        """
        options = annotate_options(catalogs, radius_arcsec, all_matches, schemas, observatory,
                                   context, history, watches)
        batches = alert_batches(alerts, batch_size)
        return iter(AnnotateStream(self._stub, options, batches, window, retries,
                                   self.address))


# ------------------------------------------------------------------------- requests, answers


def channel_options(max_message_bytes: int) -> list:
    return [("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes)]


def check_limit(limit) -> int:
    from xmatch.index.sky_index import check_limit as checked

    return checked(limit) or 0


def cone_request(catalog: str, cone: Cone, columns, limit, epoch, rank_by=None):
    if rank_by:
        raise InputError("rank_by ranks the rows of a sky-map search; a cone's rows come "
                         "closest first")
    request = xmatch_pb2.ConeRequest(
        catalog=catalog, ra_deg=cone.ra_deg, dec_deg=cone.dec_deg,
        radius_arcsec=cone.radius_arcsec, columns=column_list(columns),
        limit=check_limit(limit))
    if epoch is not None:
        request.epoch_jyear = float(coords.epochs(epoch, 1)[0])
    return request


def coverage_request(catalog: str, order) -> xmatch_pb2.CoverageRequest:
    return xmatch_pb2.CoverageRequest(catalog=catalog, order=check_coverage_order(order))


def coverage_moc(answer):
    """The mocpy MOC of a Coverage answer."""
    return moc_of_ranges29(answer.ranges29, answer.order)


def column_list(columns) -> list[str]:
    if columns is None:
        return []
    if isinstance(columns, str):
        raise InputError(f"columns must be a list of names, not the string {columns!r}")
    return list(columns)


def region_request(catalog: str, region, columns, limit, epoch, rank_by):
    """The RegionSearch request of a (non-cone) region."""
    if epoch is not None:
        raise InputError(f"epoch applies to cones and cross-matches; the rows of a "
                         f"{region.describe()} are searched where the catalog has them")
    if isinstance(region, SkyMapRegion):
        return skymap_request(catalog, region.skymap, region.level, columns, limit, rank_by)
    if rank_by:
        raise InputError("rank_by ranks the rows of a sky-map search by the map's values")
    request = xmatch_pb2.RegionSearchRequest(catalog=catalog, columns=column_list(columns),
                                             limit=check_limit(limit))
    if isinstance(region, Polygon):
        request.polygon.ra_deg.extend(region.ra_deg)
        request.polygon.dec_deg.extend(region.dec_deg)
    elif isinstance(region, Ellipse):
        ellipse_message(request.ellipse, region)
    elif isinstance(region, Moc):
        request.ranges29.extend(region.ranges.ravel())
    else:
        raise InputError(f"a region is a Cone, Polygon, Ellipse, Moc or SkyMapRegion, not "
                         f"{type(region).__name__}")
    return request


def skymap_request(catalog, skymap, level, columns, limit, rank_by):
    from xmatch.sky.skymap import SkyMap, check_level, skymap_bytes

    data = skymap.file_bytes if isinstance(skymap, SkyMap) else skymap_bytes(skymap)
    if data is None:
        raise InputError("this SkyMap was not read from a file; send the file (a path or "
                         "its bytes)")
    return xmatch_pb2.RegionSearchRequest(
        catalog=catalog, columns=column_list(columns), limit=check_limit(limit),
        skymap=xmatch_pb2.SkyMapRegion(fits=data, credible_level=check_level(level),
                                       rank_by=rank_by or ""))


def history_tables(answer, arrow: bool) -> tuple:
    tables = (ipc_to_table(answer.object_ipc), ipc_to_table(answer.detections_ipc))
    return tables if arrow else tuple(astropy_table(t) for t in tables)


def add_watch_request(name, watchlist, moc, skymap, level, radius_column, radius_arcsec,
                      name_column, replace) -> xmatch_pb2.AddWatchRequest:
    from xmatch.service.codec import table_to_ipc

    given = [kind for kind, value in (("watchlist", watchlist), ("moc", moc),
                                      ("skymap", skymap)) if value is not None]
    if len(given) != 1:
        raise InputError("give one of watchlist, moc or skymap")
    request = xmatch_pb2.AddWatchRequest(
        name=name, replace=replace, level=level or 0.0, radius_column=radius_column or "",
        radius_arcsec=radius_arcsec or 0.0, name_column=name_column or "")
    if watchlist is not None:
        if not isinstance(watchlist, pa.Table):
            from xmatch.io.tables import arrow_of_astropy

            watchlist = arrow_of_astropy(watchlist)
        request.list_ipc = table_to_ipc(watchlist)
    elif moc is not None:
        if isinstance(moc, bytes):
            request.moc_fits = moc
        else:
            request.moc = str(moc)
    else:
        request.skymap_fits = skymap
    return request


def notice_request(notice, galaxy_catalog, level) -> xmatch_pb2.NoticeRequest:
    from pathlib import Path

    from xmatch.notices import notice_json

    if isinstance(notice, Path):
        notice = notice.read_bytes()
    elif isinstance(notice, dict):
        notice = notice_json(notice)
    elif isinstance(notice, str):
        notice = notice.encode()
    elif not isinstance(notice, bytes):
        raise InputError(f"a notice is JSON bytes or text, a dict, Avro bytes or a Path, not "
                         f"{type(notice).__name__}")
    return xmatch_pb2.NoticeRequest(notice=notice, galaxy_catalog=galaxy_catalog or "",
                                    level=level or 0.0)


def notice_answer(answer, arrow: bool) -> tuple:
    alerts = ipc_to_table(answer.alerts_ipc)
    galaxies = ipc_to_table(answer.galaxies_ipc) if answer.galaxies_ipc else None
    if not arrow:
        alerts = astropy_table(alerts)
        galaxies = None if galaxies is None else astropy_table(galaxies)
    return json.loads(answer.summary_json), alerts, galaxies


def watch_answer(answer, arrow: bool) -> tuple[dict, object]:
    found = ipc_to_table(answer.back_matches_ipc)
    return json.loads(answer.description_json), found if arrow else astropy_table(found)


def context_request(ra, dec, time, scale) -> xmatch_pb2.ContextRequest:
    from xmatch.timescales import tai_mjd

    ra_deg, dec_deg, _ = coords.positions(ra, dec)
    request = xmatch_pb2.ContextRequest(ra_deg=ra_deg, dec_deg=dec_deg)
    if time is not None:
        request.mjd_tai.extend(tai_mjd(time, scale))
    return request


def sso_cone_request(ra, dec, radius_arcsec, time, observatory, catalog, scale, limit):
    from astropy.time import Time

    from xmatch.timescales import check_scale

    cone = Cone.of(ra, dec, radius_arcsec)
    scale = check_scale(scale)
    if isinstance(time, Time):
        mjd, scale = float(time.utc.mjd), "utc"
    elif isinstance(time, str):
        from xmatch.timescales import to_time

        mjd = float(to_time(time, scale).mjd)
    else:
        try:
            mjd = float(time)
        except (TypeError, ValueError):
            raise InputError(f"time {time!r} is not an astropy Time, an ISO string or an "
                             "MJD") from None
    return xmatch_pb2.SsoConeRequest(
        catalog=catalog or "", ra_deg=cone.ra_deg, dec_deg=cone.dec_deg,
        radius_arcsec=cone.radius_arcsec, mjd=mjd, time_scale=scale,
        observatory=observatory or "", limit=check_limit(limit))


def rows_table(tables, rows_found: int, arrow: bool):
    """The answer of a search: its batches as one table, marked with the rows found."""
    table = with_rows_found(pa.concat_tables(list(tables)), rows_found)
    return table if arrow else astropy_table(table)


def region_table(answers, arrow: bool):
    tables, found = [], None
    for answer in answers:
        if found is None:
            found = answer.rows_found
        tables.append(ipc_to_table(answer.arrow_ipc))
    return rows_table(tables, found or 0, arrow)


def astropy_table(table):
    from xmatch.io.tables import to_astropy

    return to_astropy(table)


class CrossmatchStream:
    """The requests of one cross-match stream, and its answers put back together."""

    def __init__(self, catalog, ra, dec, radius_arcsec, mode, k, columns, epoch, batch_size):
        from xmatch.index.sky_index import check_mode

        self.ra, self.dec, coord_epoch = coords.positions(ra, dec)
        n = len(self.ra)
        if mode not in MODES:
            raise InputError(f"mode = {mode!r} is not allowed; mode must be one of "
                             f"{', '.join(MODES)}")
        check_mode(mode, k)
        self.options = xmatch_pb2.CrossmatchOptions(
            catalog=catalog, mode=PROTO_MODES[mode], k=k if mode == "k" else 0,
            columns=column_list(columns))
        self.radii = None if radius_arcsec is None else coords.radii_arcsec(radius_arcsec, n)
        self.epochs = coords.epochs(epoch, n) if epoch is not None else coord_epoch
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size = {batch_size!r} is not allowed; give an integer "
                             ">= 1")
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
        query = pa.compute.add(table[QUERY_COLUMN], self.starts[answer.batch_id])
        self.pieces.append(table.set_column(0, QUERY_COLUMN, query))

    def result(self, arrow: bool):
        table = pa.concat_tables(self.pieces)
        return table if arrow else astropy_table(table)


def summary_dict(summary) -> dict:
    return {"name": summary.name, "title": summary.title, "rows": summary.rows,
            "epoch_jyear": summary.epoch_jyear if summary.HasField("epoch_jyear") else None,
            "default_radius_arcsec": summary.default_radius_arcsec,
            "proper_motions": summary.proper_motions, "synthetic": summary.synthetic}


def description_dict(d) -> dict:
    return {**summary_dict(d.summary),
            "schema": pa.ipc.read_schema(pa.py_buffer(d.arrow_schema)),
            "id_column": d.id_column, "ra_column": d.ra_column, "dec_column": d.dec_column,
            "key_columns": list(d.key_columns), "coverage_moc": d.coverage_moc,
            "distance_column": d.distance_column or None,
            "partitions": [(p.order, p.pixel, p.rows) for p in d.partitions]}


