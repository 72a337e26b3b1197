"""The gRPC service (``xmatch.v1.Xmatch``) over in-memory sky indexes.

One :class:`XmatchServicer` answers for a set of catalogs, each held as a
:class:`~xmatch.index.SkyIndex` over the partitions assigned to it (all of them in embedded
mode; a share of them on a shard server). Searches run in a thread pool: the numba kernels
release the GIL, so the event loop keeps serving while they run.

Every request is validated at the boundary; domain errors become gRPC status codes with the
message of the error (:func:`status_of`), and the server keeps serving after any of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from xmatch.alerts.annotation import (
    SSO_CATALOG,
    SSO_KEY_COLUMNS,
    SURVEY_OBSERVATORIES,
    Target,
    annotation_table,
)
from xmatch.alerts.avro import Schemas
from xmatch.alerts.fields import compact_alerts, decode, epoch_jyear
from xmatch.errors import (
    CatalogNotFoundError,
    LimitExceededError,
    UnknownColumnError,
    XmatchError,
)
from xmatch.index import QUERY_COLUMN, RegionRows, SkyIndex, moc_ranges
from xmatch.regions import SkyMap, check_level, check_rank
from xmatch.sso.nightly import (
    Night,
    NightIndex,
    cache_covering,
    is_night_cache,
    night_of,
    no_cache_covers,
)
from xmatch.sso.observers import MJD_RANGE, TIME_SCALES, observatory, tdb_mjd
from xmatch.store.writer import ROW_ID_COLUMN
from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = xmatch_pb2.DESCRIPTOR.services_by_name["Xmatch"].full_name
#: Cones up to this radius are answered on the event loop itself (see ``Cone``).
INLINE_CONE_ARCSEC = 60.0
#: Cross-match batches of one stream being answered at once (later ones wait).
BATCHES_IN_FLIGHT = 4

MODES = {xmatch_pb2.MATCH_MODE_UNSPECIFIED: "nearest", xmatch_pb2.MATCH_MODE_NEAREST: "nearest",
         xmatch_pb2.MATCH_MODE_K_NEAREST: "k", xmatch_pb2.MATCH_MODE_ALL: "all"}


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. Over a limit: RESOURCE_EXHAUSTED."""

    max_radius_arcsec: float = 10 * 3600.0
    max_rows: int = 1_000_000            # rows in one answer (cone, batch, region batch)
    max_batch: int = 1_000_000           # positions in one cross-match batch
    max_message_bytes: int = 64 * 2**20  # gRPC send and receive limit
    region_batch_rows: int = 100_000     # default rows per RegionSearch batch
    skymaps_kept: int = 4                # sky maps kept read, for the pages of a search


@dataclass(frozen=True)
class ServedCatalog:
    """A catalog as served: its metadata and in-memory indexes of the partitions held here,
    one per slice (embedded mode holds one slice, ``""``, with every partition)."""

    name: str
    slices: dict[str, SkyIndex | NightIndex]
    summary: xmatch_pb2.CatalogSummary
    description: xmatch_pb2.CatalogDescription
    night: Night | None = None  # set for a nightly solar-system ephemeris cache

    @classmethod
    def from_catalog(cls, catalog, slices: dict[str, list] | None = None) -> ServedCatalog:
        """Index each slice's partitions of a store catalog (default: one slice ``""``
        holding every partition) and describe the catalog."""
        started = time.perf_counter()
        slices = {"": catalog.partitions} if slices is None else slices
        index_type = NightIndex if is_night_cache(catalog) else SkyIndex
        indexes = {name: index_type.from_catalog(catalog, partitions=partitions)
                   for name, partitions in slices.items()}
        summary, description = describe(catalog)
        log.info("serving %s: %d rows in %d slice(s) indexed in %.2f s", catalog.name,
                 sum(len(index) for index in indexes.values()), len(indexes),
                 time.perf_counter() - started)
        return cls(catalog.name, indexes, summary, description, night_of(catalog))

    @property
    def index(self) -> SkyIndex:
        """The index of a catalog served whole (embedded mode)."""
        return self.slices[""]

    def slice_index(self, name: str) -> SkyIndex:
        index = self.slices.get(name)
        if index is not None:
            return index
        if name:
            raise CatalogNotFoundError(f"slice {name!r} of {self.name} is not held here; "
                                       f"this server holds {', '.join(sorted(self.slices))}")
        raise ValueError(f"this shard server holds slices {', '.join(sorted(self.slices))} of "
                         f"{self.name}, not the whole catalog: ask the cluster's router")


def describe(catalog) -> tuple[xmatch_pb2.CatalogSummary, xmatch_pb2.CatalogDescription]:
    """The summary and full description of a store catalog (from its metadata, the Parquet
    footers and, for proper motions, its schema)."""
    from mocpy import MOC

    spec = catalog.spec
    names = catalog.schema.names
    summary = xmatch_pb2.CatalogSummary(
        name=catalog.name, title=spec.title, rows=catalog.num_rows,
        default_radius_arcsec=spec.default_radius_arcsec,
        proper_motions=bool(spec.pmra in names and spec.pmdec in names),
        synthetic=bool(catalog.provenance.get("synthetic", spec.synthetic)))
    if spec.epoch_jyear is not None:
        summary.epoch_jyear = spec.epoch_jyear
    counts = partition_rows(catalog)
    moc = MOC.from_healpix_cells(np.array([p.pixel for p in catalog.partitions], np.uint64),
                                 np.array([p.order for p in catalog.partitions], np.uint8),
                                 29) if catalog.partitions else None
    description = xmatch_pb2.CatalogDescription(
        summary=summary, arrow_schema=catalog.schema.serialize().to_pybytes(),
        id_column=spec.id or "", ra_column=spec.ra, dec_column=spec.dec,
        key_columns=list(spec.key),
        partitions=[xmatch_pb2.Partition(order=p.order, pixel=p.pixel, rows=counts[p])
                    for p in catalog.partitions],
        coverage_moc=moc.to_string(format="ascii").strip() if moc is not None else "",
        provenance_json=json.dumps(catalog.provenance, default=str),
        distance_column=spec.distance if spec.distance in names else "")
    return summary, description


def partition_rows(catalog) -> dict:
    """Rows of each partition, from the Parquet footers (HATS' partition_info has none)."""
    import pyarrow.parquet as pq

    return {p: pq.read_metadata(catalog.partition_path(p)).num_rows for p in catalog.partitions}


# ------------------------------------------------------------------------- Arrow IPC


def table_to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def ipc_to_table(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


# ------------------------------------------------------------------------- errors


class StatusError(Exception):
    """An answer with a given status: a shard's error relayed by the router, or a
    partition without a healthy replica (UNAVAILABLE)."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(details)
        self.code = code


def status_of(error: Exception) -> grpc.StatusCode:
    """The gRPC status for a domain error."""
    if isinstance(error, StatusError):
        return error.code
    if isinstance(error, CatalogNotFoundError | UnknownColumnError):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(error, LimitExceededError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(error, ValueError | TypeError | XmatchError):
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


async def _abort(context, error: Exception):
    code = status_of(error)
    if code is grpc.StatusCode.INTERNAL:
        log.exception("internal error", exc_info=error)
        await context.abort(code, f"internal error: {type(error).__name__}: {error}")
    await context.abort(code, str(error))


# ------------------------------------------------------------------------- the service


class Boundary:
    """What every server of the service (embedded, shard, router) shares: the catalog
    listing, the cross-match stream and the checks at the boundary. Subclasses answer
    searches, and one cross-match batch with ``_crossmatch_options`` and
    ``_crossmatch_batch``."""

    catalogs: dict
    limits: Limits

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
            raise ValueError(f"{name} is not a solar-system ephemeris cache; SsoCone serves "
                             f"{', '.join(self._night_caches()) or 'none here'}")
        if not night_cache and served.night is not None:
            raise ValueError(f"{name} is a solar-system ephemeris cache: ask it with SsoCone "
                             "(Client.sso_cone, xmatch sso cone)")
        return served

    def _night_caches(self) -> list[str]:
        return sorted(name for name, c in self.catalogs.items() if c.night is not None)

    def _sso_request(self, request):
        """The cache, its night and the TDB instant of an SsoCone request, checked."""
        self._check_radius(request.radius_arcsec)
        if not (np.isfinite(request.ra_deg) and np.isfinite(request.dec_deg)
                and -90.0 <= request.dec_deg <= 90.0):
            raise ValueError(f"position ({request.ra_deg!r}, {request.dec_deg!r}) is not "
                             "allowed: ra_deg and dec_deg must be finite, |dec_deg| <= 90")
        t_tdb = float(tdb_mjd(request.mjd, time_scale(request.time_scale)))
        site = observatory(request.observatory).code if request.observatory.strip() else ""
        if request.catalog:
            served = self._catalog(request.catalog, night_cache=True)
            if site and site != served.night.observatory:
                raise ValueError(f"{request.catalog} is the cache of observatory "
                                 f"{served.night.observatory}, not {site}")
            served.night.check(t_tdb, request.catalog)
            return request.catalog, served, t_tdb
        if not site:
            raise ValueError("give the catalog (a nightly cache) or the observatory code")
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
                raise ValueError(f"batch {batch.batch_id}: mjd is for nightly solar-system "
                                 f"caches; {name} takes epoch_jyear")
            return None
        if len(batch.mjd) != n:
            raise ValueError(f"batch {batch.batch_id}: {name} is a nightly solar-system "
                             f"cache: give one mjd per position ({n}), not {len(batch.mjd)}")
        try:
            t_tdb = np.atleast_1d(tdb_mjd(np.asarray(batch.mjd, np.float64),
                                          options["time_scale"]))
            night.check(t_tdb, name)
        except ValueError as error:  # name the batch, keep the message
            raise ValueError(f"batch {batch.batch_id}: {error}") from None
        return t_tdb

    async def ListCatalogs(self, request, context):
        return xmatch_pb2.ListCatalogsResponse(
            catalogs=[self.catalogs[name].summary for name in sorted(self.catalogs)])

    async def DescribeCatalog(self, request, context):
        try:
            return self._catalog(request.name, night_cache=None).description
        except Exception as error:  # noqa: BLE001 (every error becomes a status)
            await _abort(context, error)

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
                            raise ValueError("options may be sent once, as the first message")
                        options = open_options(message.options)
                        continue
                    if kind != "batch":
                        raise ValueError("each message carries options (first) or a batch")
                    if options is None:
                        raise ValueError("the first message of the stream must carry the "
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
        except Exception as error:  # noqa: BLE001
            await _abort(context, error)
        finally:
            reader.cancel()
            while not pending.empty():
                item = pending.get_nowait()
                if isinstance(item, asyncio.Future):
                    item.cancel()

    # ------------------------------------------------------------------ annotation

    def _annotate_options(self, options) -> dict:
        names = list(options.catalogs) or sorted(
            name for name, c in self.catalogs.items() if c.night is None) + (
            [SSO_CATALOG] if self._night_caches() else [])
        if len(set(names)) != len(names):
            raise ValueError(f"catalogs {names} name a catalog twice")
        unknown = sorted(set(options.radius_arcsec) - set(names))
        if unknown:
            raise ValueError(f"radius_arcsec names {', '.join(unknown)}, which "
                             f"{'is' if len(unknown) == 1 else 'are'} not among the catalogs "
                             f"asked for ({', '.join(names)})")
        targets, matching = [], []
        for name in names:
            if name == SSO_CATALOG:
                target, match = self._sso_target(options)
                targets.append(target)
                matching.append(match)
                continue
            served = self._catalog(name)
            radius = options.radius_arcsec.get(name) or served.summary.default_radius_arcsec
            self._check_radius(float(radius), f"{name}: ")
            description = served.description
            target = Target(name, float(radius), description.id_column or ROW_ID_COLUMN,
                            list(description.key_columns))
            targets.append(target)
            matching.append(self._crossmatch_options(xmatch_pb2.CrossmatchOptions(
                catalog=name, radius_arcsec=radius, mode=xmatch_pb2.MATCH_MODE_ALL,
                columns=target.columns)))
        return {"targets": targets, "matching": matching, "all_matches": options.all_matches,
                "schemas": Schemas(dict(options.avro_schemas))}

    async def _annotate_batch(self, options: dict, batch, context) -> xmatch_pb2.AnnotateResponse:
        kind = batch.WhichOneof("alerts")
        if kind == "packets":
            packets = list(batch.packets.packets)
            self._check_count(len(packets), "alerts")
            # Avro decoding is Python work: off the event loop, which keeps serving.
            alerts = await asyncio.to_thread(decode, packets, options["schemas"])
        elif kind == "compact_ipc":
            try:
                alerts = compact_alerts(ipc_to_table(batch.compact_ipc))
            except (pa.ArrowInvalid, ValueError) as error:
                raise ValueError(f"batch {batch.batch_id}: compact_ipc: {error}") from None
            self._check_count(alerts.num_rows, "alerts")
        else:
            alerts = compact_alerts(pa.table({"ra_deg": pa.array([], pa.float64()),
                                              "dec_deg": pa.array([], pa.float64())}))
        usable = pc.is_null(alerts.column("error"))
        found = alerts.filter(usable)
        ra = found.column("ra_deg").to_numpy()
        dec = found.column("dec_deg").to_numpy()
        times = found.column("mjd_tai")
        epoch = (epoch_jyear(times.to_numpy(zero_copy_only=False))
                 if found.num_rows and times.null_count == 0 else None)
        async def catalog_table(match):
            """A catalog's left join, and the alerts it could answer (None: all of them)."""
            if match.get("sites"):
                return await self._sso_table(match, batch.batch_id, found, context)
            return await self._match_table(match, batch.batch_id, ra, dec, match["radius"],
                                           epoch, context), None

        results = await asyncio.gather(*(catalog_table(m) for m in options["matching"]))
        answered = {target.name: rows for target, (_, rows) in
                    zip(options["targets"], results, strict=True) if rows is not None}
        table = annotation_table(alerts, options["targets"], [t for t, _ in results],
                                 options["all_matches"], answered)
        return xmatch_pb2.AnnotateResponse(
            batch_id=batch.batch_id, arrow_ipc=table_to_ipc(table), alerts=alerts.num_rows,
            errors=alerts.num_rows - found.num_rows)

    def _sso_target(self, options) -> tuple[Target, dict]:
        """The ``sso`` catalog of an annotation: each alert is matched with the nightly cache
        of its site whose night holds the alert's time."""
        caches = self._night_caches()
        if not caches:
            raise CatalogNotFoundError(
                "no solar-system ephemeris cache is served here, so alerts cannot be annotated "
                "with sso; build one per night and site with `xmatch sso build --orbits FILE "
                "--night DATE --observatory CODE`")
        radius = options.radius_arcsec.get(SSO_CATALOG) or max(
            self.catalogs[name].summary.default_radius_arcsec for name in caches)
        self._check_radius(float(radius), f"{SSO_CATALOG}: ")
        sites = dict(SURVEY_OBSERVATORIES)
        if options.observatory.strip():
            sites[None] = observatory(options.observatory).code
        target = Target(SSO_CATALOG, float(radius), "designation", list(SSO_KEY_COLUMNS))
        return target, {"radius": float(radius), "sites": sites, "columns": target.columns}

    async def _sso_table(self, match: dict, batch_id: int, alerts: pa.Table, context
                         ) -> tuple[pa.Table, np.ndarray]:
        """The ``sso`` left join of usable alerts, and which alerts a cache could answer
        (a known site, a time, and a cache of that site for its night)."""
        n = alerts.num_rows
        survey = alerts.column("survey")
        site = np.full(n, match["sites"].get(None, ""), dtype=object)
        for name, code in match["sites"].items():
            if name is not None:
                site[pc.fill_null(pc.equal(survey, name), False).to_numpy(
                    zero_copy_only=False)] = code
        mjd_tai = alerts.column("mjd_tai").to_numpy(zero_copy_only=False).astype(np.float64)
        timed = (mjd_tai >= MJD_RANGE[0]) & (mjd_tai <= MJD_RANGE[1])  # NaN (no time): False
        t_tdb = np.full(n, np.nan)
        if timed.any():
            t_tdb[timed] = tdb_mjd(mjd_tai[timed], "tai")
        ra = alerts.column("ra_deg").to_numpy(zero_copy_only=False)
        dec = alerts.column("dec_deg").to_numpy(zero_copy_only=False)
        answered = np.zeros(n, bool)
        groups = []  # (cache, the alerts it answers)
        for name in self._night_caches():
            night = self.catalogs[name].night
            rows = np.flatnonzero((site == night.observatory) & timed & ~answered
                                  & (t_tdb >= night.start_tdb) & (t_tdb <= night.end_tdb))
            answered[rows] = True
            if len(rows):
                groups.append((name, rows))
        # No alert in any cache: one cache answers an empty join, for the columns.
        pieces = []
        for name, rows in groups or [(self._night_caches()[0], np.empty(0, np.int64))]:
            options = self._crossmatch_options(xmatch_pb2.CrossmatchOptions(
                catalog=name, radius_arcsec=match["radius"], mode=xmatch_pb2.MATCH_MODE_ALL,
                columns=match["columns"], time_scale="tdb"))
            table = await self._match_table(options, batch_id, ra[rows], dec[rows],
                                            match["radius"], None, context, t_tdb=t_tdb[rows])
            query = pa.array(rows[table.column(QUERY_COLUMN).to_numpy()], pa.int64())
            pieces.append(table.set_column(0, QUERY_COLUMN, query))
        return pa.concat_tables(pieces), answered

    def _check_radius(self, radius_arcsec, where: str = "") -> None:
        """One radius or one per position: finite, >= 0 and within the limit."""
        if isinstance(radius_arcsec, float) and 0 <= radius_arcsec <= \
                self.limits.max_radius_arcsec:
            return  # the common case, without numpy's per-call cost
        values = np.atleast_1d(np.asarray(radius_arcsec, dtype=np.float64))
        bad = ~(np.isfinite(values) & (values >= 0))
        if bad.any():
            raise ValueError(f"{where}radius_arcsec = {float(values[bad][0])!r} is not allowed; "
                             "it must be finite and >= 0")
        if values.size and values.max() > self.limits.max_radius_arcsec:
            raise LimitExceededError(
                f"{where}radius_arcsec = {values.max():g} is over this server's limit of "
                f"{self.limits.max_radius_arcsec:g} arcsec")

    def _limit(self, requested: int) -> int | None:
        """A request's row limit (0: none). Limits past the server's own answer alike (too
        many rows), so they are capped there: numbers up to 2**64 - 1 stay in range."""
        return min(int(requested), self.limits.max_rows + 1) or None

    def _check_rows(self, rows: int, what: str) -> None:
        if rows > self.limits.max_rows:
            raise LimitExceededError(
                f"{what} would return {rows:,} rows; this server returns at most "
                f"{self.limits.max_rows:,} per answer: set a limit or a smaller region")

    def _check_count(self, n: int, what: str) -> None:
        if n > self.limits.max_batch:
            raise LimitExceededError(f"a batch of {n:,} {what} is over this server's "
                                     f"limit of {self.limits.max_batch:,}")

    def _check_batch(self, batch) -> int:
        """The number of positions of a cross-match batch, checked against the limit."""
        n = len(batch.ra_deg)
        self._check_count(n, "positions")
        if len(batch.dec_deg) != n:
            raise ValueError(f"batch {batch.batch_id}: {n} ra_deg but {len(batch.dec_deg)} "
                             "dec_deg values; they must pair up")
        if len(batch.radius_arcsec):
            self._check_radius(batch.radius_arcsec, f"batch {batch.batch_id}: ")
        return n

    async def _region(self, request, distance_column: str | None) -> Region:
        """The region of a RegionSearch request (its ranges, or a sky map's credible
        region), checked."""
        skymap = rank_by = None
        if request.HasField("skymap"):
            if len(request.ranges29):
                raise ValueError("give ranges29 or skymap, not both")
            wanted = request.skymap
            level = check_level(wanted.credible_level if wanted.HasField("credible_level")
                                else DEFAULT_CREDIBLE_LEVEL)
            if not wanted.fits:
                raise ValueError("skymap.fits is empty; send the bytes of the sky map file")
            skymap = await asyncio.get_running_loop().run_in_executor(
                None, self.skymaps.read, wanted.fits)
            rank_by = check_rank(wanted.rank_by, skymap, distance_column or None)
            ranges = skymap.region_ranges(level)
        else:
            ranges = np.asarray(request.ranges29, dtype=np.int64)
            if ranges.size % 2:
                raise ValueError("ranges29 must hold start/stop pairs (an even count), got "
                                 f"{ranges.size} values")
            ranges = ranges.reshape(-1, 2)
            moc_ranges(ranges)  # sorted, disjoint, within the sphere
        batch_rows = int(request.batch_rows) or self.limits.region_batch_rows
        if batch_rows > self.limits.max_rows:
            raise LimitExceededError(f"batch_rows = {batch_rows:,} is over this server's "
                                     f"limit of {self.limits.max_rows:,}")
        return Region(ranges, batch_rows, skymap, rank_by)


#: The credible level of a sky-map search that does not give one.
DEFAULT_CREDIBLE_LEVEL = 0.9


@dataclass(frozen=True)
class Region:
    """A RegionSearch request's region: order-29 ranges (n, 2), rows per streamed batch
    and, for a sky map, the map and what to rank by."""

    ranges: np.ndarray
    batch_rows: int
    skymap: SkyMap | None = None
    rank_by: str | None = None


class SkyMaps:
    """Sky maps read from request bytes, kept by digest: each page of a search resends its
    map, which is then read once."""

    def __init__(self, kept: int):
        self.kept = kept
        self._maps: OrderedDict[bytes, SkyMap] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, data: bytes) -> SkyMap:
        key = hashlib.sha256(data).digest()
        with self._lock:
            if key in self._maps:
                self._maps.move_to_end(key)
                return self._maps[key]
        skymap = SkyMap.read(data, name="skymap.fits")
        with self._lock:
            self._maps[key] = skymap
            while len(self._maps) > self.kept:
                self._maps.popitem(last=False)
        return skymap


def crossmatch_mode(options) -> str:
    if options.mode not in MODES:
        raise ValueError(f"mode = {options.mode} is not allowed; use one of "
                         f"{', '.join(xmatch_pb2.MatchMode.keys())}")
    mode = MODES[options.mode]
    if mode == "k" and options.k < 1:
        raise ValueError("k must be >= 1 for MATCH_MODE_K_NEAREST")
    return mode


class XmatchServicer(Boundary, xmatch_pb2_grpc.XmatchServicer):
    """Answers ``xmatch.v1.Xmatch`` from in-memory catalogs."""

    def __init__(self, catalogs: dict[str, ServedCatalog], limits: Limits | None = None,
                 workers: int | None = None):
        self.catalogs = dict(catalogs)
        self.limits = limits or Limits()
        self.skymaps = SkyMaps(self.limits.skymaps_kept)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xmatch")
        self._empty_answers: dict[tuple, xmatch_pb2.RowsResponse] = {}

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, function, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))

    # ------------------------------------------------------------------ searches

    async def Cone(self, request, context):
        try:
            index = self._catalog(request.catalog).slice_index(request.slice)
            self._check_radius(request.radius_arcsec)
            limit = self._limit(request.limit)
            epoch = request.epoch_jyear if request.HasField("epoch_jyear") else None
            columns = list(request.columns) or None

            def answer():
                table = index.cone(request.ra_deg, request.dec_deg,
                                          request.radius_arcsec, limit=limit, epoch=epoch,
                                          columns=columns)
                self._check_rows(table.num_rows, "this cone")
                if table.num_rows:
                    return xmatch_pb2.RowsResponse(arrow_ipc=table_to_ipc(table),
                                                   rows=table.num_rows)
                # Empty answers (most small cones) are encoded once per column choice.
                key = (request.catalog, request.slice, tuple(request.columns))
                empty = self._empty_answers.get(key)
                if empty is None:
                    empty = xmatch_pb2.RowsResponse(arrow_ipc=table_to_ipc(table), rows=0)
                    self._empty_answers[key] = empty
                return empty

            # A small cone takes tens of microseconds: answering it on the event loop costs
            # less than the hop to a worker thread and back.
            if request.radius_arcsec <= INLINE_CONE_ARCSEC:
                return answer()
            return await self._run(answer)
        except Exception as error:  # noqa: BLE001
            await _abort(context, error)

    async def SsoCone(self, request, context):
        try:
            name, served, t_tdb = self._sso_request(request)
            index = served.slice_index(request.slice)
            limit = self._limit(request.limit)

            def answer():
                table = index.cone(request.ra_deg, request.dec_deg, request.radius_arcsec,
                                   t_tdb).slice(0, limit)
                self._check_rows(table.num_rows, "this cone")
                return xmatch_pb2.RowsResponse(arrow_ipc=table_to_ipc(table),
                                               rows=table.num_rows)

            return await self._run(answer)
        except Exception as error:  # noqa: BLE001
            await _abort(context, error)

    async def RegionSearch(self, request, context):
        try:
            index = self._catalog(request.catalog).slice_index(request.slice)
            region = await self._region(request, index.distance_column)
            start = _token_offset(request.continuation_token)
            limit = self._limit(request.limit)
            rows = await self._run(RegionRows, index, region.ranges,
                                   list(request.columns) or None, skymap=region.skymap,
                                   rank_by=region.rank_by)
            end = rows.total if limit is None else min(rows.total, limit)
            if start >= end:  # nothing (left): one empty batch, so the schema arrives
                yield xmatch_pb2.RowsResponse(
                    arrow_ipc=await self._run(lambda: table_to_ipc(rows.take(0, 0))), rows=0)
                return
            for offset in range(start, end, region.batch_rows):
                stop = min(offset + region.batch_rows, end)
                piece = await self._run(lambda a=offset, b=stop: table_to_ipc(rows.take(a, b)))
                yield xmatch_pb2.RowsResponse(arrow_ipc=piece, rows=stop - offset,
                                              continuation_token=f"offset:{stop}"
                                              if stop < end else "")
        except Exception as error:  # noqa: BLE001
            await _abort(context, error)

    def _crossmatch_options(self, options) -> dict:
        served = self._catalog(options.catalog, night_cache=None)
        index = served.slice_index(options.slice)
        radius = options.radius_arcsec or served.summary.default_radius_arcsec
        self._check_radius(radius)
        mode = crossmatch_mode(options)
        columns = list(options.columns) or None
        index.payload_columns(columns)  # unknown columns: NOT_FOUND, before any batch
        return {"catalog": served.name, "index": index, "radius": radius, "mode": mode,
                "k": int(options.k or 1), "columns": columns,
                **night_options(options, served.night)}

    async def _crossmatch_batch(self, options: dict, batch,
                                context) -> xmatch_pb2.CrossmatchResponse:
        n = self._check_batch(batch)
        radius = options["radius"]
        if len(batch.radius_arcsec):
            radius = np.asarray(batch.radius_arcsec, dtype=np.float64)
        epoch = np.asarray(batch.epoch_jyear) if len(batch.epoch_jyear) else options["epoch"]
        t_tdb = self._batch_times(options, batch, n)
        ra = np.asarray(batch.ra_deg, dtype=np.float64)
        dec = np.asarray(batch.dec_deg, dtype=np.float64)
        table, payload = await self._match_table(options, batch.batch_id, ra, dec, radius,
                                                 epoch, context, encode=True, t_tdb=t_tdb)
        matched = table.num_rows - table.column("match_rank").null_count
        return xmatch_pb2.CrossmatchResponse(batch_id=batch.batch_id, arrow_ipc=payload,
                                             queries=n, matches=matched)

    async def _match_table(self, options: dict, batch_id: int, ra, dec, radius, epoch,
                           context, encode: bool = False, t_tdb=None):
        """The left join of one batch (and its Arrow IPC encoding, with ``encode``), worked
        out in the thread pool; a nightly cache places its objects at the TDB ``t_tdb``."""
        def match():
            index = options["index"]
            if options["night"] is None:
                table = index.crossmatch(ra, dec, radius=radius, mode=options["mode"],
                                         k=options["k"], epoch=epoch,
                                         columns=options["columns"])
            else:
                table = index.crossmatch(ra, dec, radius=radius, t_tdb=t_tdb,
                                         mode=options["mode"], k=options["k"],
                                         columns=options["columns"])
            self._check_rows(table.num_rows, f"batch {batch_id}")
            return (table, table_to_ipc(table)) if encode else table

        try:
            return await self._run(match)
        except ValueError as error:  # name the batch, keep the message
            raise type(error)(f"batch {batch_id}: {error}") from None


def time_scale(name: str) -> str:
    """A request's time scale (empty: UTC), checked."""
    scale = name.strip().lower() or "utc"
    if scale not in TIME_SCALES:
        raise ValueError(f"time_scale {name!r} is not allowed; use one of "
                         f"{', '.join(TIME_SCALES)}")
    return scale


def night_options(options, night: Night | None) -> dict:
    """What a cross-match stream needs to know of its catalog's time: the proper-motion
    epoch of a sky catalog, or the night and the time scale of a nightly cache."""
    epoch = options.epoch_jyear if options.HasField("epoch_jyear") else None
    if night is not None and epoch is not None:
        raise ValueError(f"{options.catalog} is a nightly solar-system cache: epoch_jyear does "
                         "not apply; give each position's time in PositionBatch.mjd")
    return {"epoch": epoch, "night": night, "time_scale": time_scale(options.time_scale)}


def _token_offset(token: str) -> int:
    if not token:
        return 0
    kind, _, value = token.partition(":")
    if kind != "offset" or not value.isdigit():
        raise ValueError(f"continuation_token {token!r} is not one this server issued")
    return int(value)


# ------------------------------------------------------------------------- the server


async def create_server(servicer: XmatchServicer, address: str = "127.0.0.1:0"):
    """A started ``grpc.aio`` server with the Xmatch service, standard health checking and
    server reflection; returns ``(server, port)`` (``address`` may end in ``:0``)."""
    limit = servicer.limits.max_message_bytes
    server = grpc.aio.server(options=[("grpc.max_send_message_length", limit),
                                      ("grpc.max_receive_message_length", limit)])
    xmatch_pb2_grpc.add_XmatchServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:  # grpc's way of saying the bind failed
        port = 0
    if port == 0:
        raise XmatchError(f"cannot listen on {address}: the address is in use or not "
                          "available here")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    server.health = health_servicer  # for graceful shutdown: set NOT_SERVING first
    return server, port


async def stop_server(server, grace: float = 5.0) -> None:
    """Graceful stop: report NOT_SERVING, then let running calls finish for ``grace`` s."""
    for name in ("", SERVICE_NAME):
        await server.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.stop(grace)
