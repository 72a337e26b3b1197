"""The router: a cluster's front door, serving ``xmatch.v1.Xmatch`` over shard servers.

For each request the router finds the partitions it may touch (for a cone, every partition
its seed pixels overlap, so cones near partition edges reach the neighbours; for a batch,
the same per position, widened by how far proper motions can carry a row), asks one replica
of each slice holding them, all at once (``grpc.aio``), and merges the answers: closest
first, limits applied, a left join rebuilt over the whole batch. Deadlines pass on as the
time the client has left; a cancelled call cancels its shard calls.

A replica that answers UNAVAILABLE (stopped, killed, unreachable) is marked down and the
next replica is asked; a marked replica is tried again after ``RETRY_DOWN_SECONDS`` or when
no other is left. With no replica left the request fails with UNAVAILABLE naming the
partitions it needed: never a silently partial answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.errors import LimitExceededError
from xmatch.index import (
    ARCSEC_TO_RAD,
    RANK_COLUMN,
    SEPARATION_COLUMN,
    catalog_motion,
    check_cone_arguments,
    match_ranks,
    ranges_overlapping,
)
from xmatch.kernels.routing import cone_groups_kernel
from xmatch.regions import with_skymap_values
from xmatch.service.plan import Plan
from xmatch.service.server import (
    Boundary,
    Limits,
    SkyMaps,
    StatusError,
    _abort,
    _token_offset,
    crossmatch_mode,
    describe,
    ipc_to_table,
    night_options,
    table_to_ipc,
)
from xmatch.sky import coords
from xmatch.sso.nightly import PAYLOAD_COLUMNS, Night, night_of
from xmatch.store.catalog import HealpixPixel, open_catalog
from xmatch.store.data_dir import DataDirectory
from xmatch.store.paths import HEALPIX29_COLUMN
from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

log = logging.getLogger(__name__)

#: Shard answers that send the router to the next replica.
FAILOVER_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
#: A replica marked down is asked again (before the others) after this long.
RETRY_DOWN_SECONDS = 1.0
#: Reconnect quickly to a restarted shard (gRPC's default backoff grows to 2 minutes).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000)]


class ShardLink:
    """The router's channel to one shard server, and whether it last answered."""

    def __init__(self, name: str, address: str, max_message_bytes: int):
        self.name = name
        self.address = address
        self.channel = grpc.aio.insecure_channel(address, options=[
            *CHANNEL_OPTIONS, ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes)])
        self.stub = xmatch_pb2_grpc.XmatchStub(self.channel)
        self.down_since: float | None = None

    def usable(self) -> bool:
        return self.down_since is None or time.monotonic() - self.down_since > RETRY_DOWN_SECONDS

    def failed(self, error: grpc.aio.AioRpcError) -> None:
        if self.down_since is None:
            log.warning("shard %s at %s is down: %s", self.name, self.address, error.details())
        self.down_since = time.monotonic()

    def answered(self) -> None:
        if self.down_since is not None:
            log.warning("shard %s at %s is back", self.name, self.address)
        self.down_since = None


@dataclass
class RoutedSlice:
    id: str
    replicas: list[ShardLink]
    turn: int = 0  # replicas take turns, spreading the load

    def candidates(self) -> list[ShardLink]:
        """Replicas in the order to ask them: usable ones first, in turn."""
        self.turn = (self.turn + 1) % len(self.replicas)
        rotated = self.replicas[self.turn:] + self.replicas[:self.turn]
        return [r for r in rotated if r.usable()] + [r for r in rotated if not r.usable()]


@dataclass
class RoutedCatalog:
    """A catalog as the router sees it: metadata, partitions and where they are held."""

    name: str
    summary: xmatch_pb2.CatalogSummary
    description: xmatch_pb2.CatalogDescription
    column_names: list[str]
    partitions: list[HealpixPixel]     # in order-29 range order
    starts: np.ndarray                 # their order-29 ranges
    stops: np.ndarray
    slice_of: np.ndarray               # slice index of each partition
    slices: list[RoutedSlice]
    motion: object = field(default=None, repr=False)
    night: Night | None = None  # set for a nightly solar-system ephemeris cache

    @classmethod
    def from_plan(cls, catalog, slices, links: list[ShardLink]) -> RoutedCatalog:
        summary, description = describe(catalog)
        where = {p: s for s, entry in enumerate(slices) for p in entry.partitions}
        partitions = sorted(catalog.partitions, key=lambda p: p.range29()[0])
        planned = {(p.order, p.pixel) for p in partitions}
        if planned != set(where):
            raise ValueError(f"the plan does not match catalog {catalog.name} as stored "
                             f"({len(where)} partitions planned, {len(planned)} stored); "
                             "write a new plan with `xmatch cluster plan`")
        ranges = np.array([p.range29() for p in partitions], dtype=np.int64).reshape(-1, 2)
        night = night_of(catalog)
        columns = list(PAYLOAD_COLUMNS) if night is not None else catalog.schema.names
        return cls(catalog.name, summary, description, columns, partitions,
                   np.ascontiguousarray(ranges[:, 0]), np.ascontiguousarray(ranges[:, 1]),
                   np.array([where[(p.order, p.pixel)] for p in partitions], dtype=np.int64),
                   [RoutedSlice(s.id, [links[i] for i in s.shards]) for s in slices],
                   catalog_motion(catalog) if summary.proper_motions else None, night)

    def check_columns(self, columns) -> None:
        from xmatch.errors import UnknownColumnError, unknown_columns

        unknown = [c for c in columns if c not in self.column_names]
        if unknown:
            raise UnknownColumnError(unknown_columns(unknown, self.name, self.column_names))

    def partitions_in(self, ranges: np.ndarray) -> list[int]:
        """Indexes of the partitions that overlap sorted, disjoint order-29 ranges."""
        return ranges_overlapping(self.starts, self.stops, ranges).tolist()

    def route(self, ra_deg, dec_deg, radius_arcsec, epoch_jyear, by_partition: bool = False):
        """The slices (or partitions) each cone may touch, as ``(offsets, indexes)``
        (see :func:`~xmatch.kernels.routing.cone_groups_kernel`), with every radius widened
        by how far proper motions can move a row to the cone's epoch."""
        reach = np.broadcast_to(np.asarray(radius_arcsec, dtype=np.float64) * ARCSEC_TO_RAD,
                                np.shape(ra_deg))
        if self.motion is not None and epoch_jyear is not None:
            reach = reach + self.motion.drift_rad(epoch_jyear, self.motion.epoch0_range)
        groups = (np.arange(len(self.partitions), dtype=np.int64) if by_partition
                  else self.slice_of)
        return cone_groups_kernel(np.radians(ra_deg), np.radians(dec_deg),
                                  np.ascontiguousarray(reach, dtype=np.float64),
                                  self.starts, self.stops, groups,
                                  len(groups) if by_partition else len(self.slices))

    def partitions_of(self, s: int, ra_deg, dec_deg, radius_arcsec, epoch_jyear) -> list[str]:
        """Names ("order/pixel") of the partitions of slice ``s`` the cones may touch."""
        _, touched = self.route(ra_deg, dec_deg, radius_arcsec, epoch_jyear, by_partition=True)
        return [f"{self.partitions[p].order}/{self.partitions[p].pixel}"
                for p in np.unique(touched) if self.slice_of[p] == s]


class Router(Boundary, xmatch_pb2_grpc.XmatchServicer):
    """Answers ``xmatch.v1.Xmatch`` by fanning requests out to the shard servers of a plan.
    Create it inside the event loop that serves it (its channels belong to that loop)."""

    def __init__(self, plan: Plan, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.skymaps = SkyMaps(self.limits.skymaps_kept)
        self.links = [ShardLink(s.name, s.address, self.limits.max_message_bytes)
                      for s in plan.shards]
        data = DataDirectory(plan.data)
        self.catalogs = {name: RoutedCatalog.from_plan(open_catalog(name, data), slices,
                                                       self.links)
                         for name, slices in plan.catalogs.items()}

    async def close(self) -> None:
        for link in self.links:
            await link.channel.close()

    async def _on_replicas(self, catalog: RoutedCatalog, s: int, attempt, needed):
        """``await attempt(link)`` on the replicas of slice ``s`` in turn until one answers.
        Shard errors other than unavailability are the client's answer; with no replica
        left, UNAVAILABLE names the partitions ``needed()`` lists."""
        tried = []
        for link in catalog.slices[s].candidates():
            try:
                answer = await attempt(link)
            except grpc.aio.AioRpcError as error:
                if error.code() not in FAILOVER_CODES:
                    raise StatusError(error.code(), error.details()) from None
                link.failed(error)
                tried.append(f"{link.name} at {link.address}: {error.code().name}")
                continue
            link.answered()
            return answer
        raise StatusError(grpc.StatusCode.UNAVAILABLE,
                          f"{catalog.name}: no replica of partition(s) {', '.join(needed())} "
                          f"is available (tried {'; '.join(tried)})")

    # ------------------------------------------------------------------ searches

    async def Cone(self, request, context):
        try:
            catalog = self._catalog(request.catalog)
            _no_slice(request.slice)
            self._check_radius(request.radius_arcsec)
            epoch = request.epoch_jyear if request.HasField("epoch_jyear") else None
            ra, dec, radius, epochs = check_cone_arguments(request.ra_deg, request.dec_deg,
                                                           request.radius_arcsec, None, epoch)
            catalog.check_columns(request.columns)
            _, touched = catalog.route(ra, dec, radius, epochs)
            timeout = context.time_remaining()

            async def ask(s):
                sub = xmatch_pb2.ConeRequest()
                sub.CopyFrom(request)
                sub.slice = catalog.slices[s].id
                return await self._on_replicas(
                    catalog, s, lambda link: link.stub.Cone(sub, timeout=timeout),
                    lambda: catalog.partitions_of(s, ra, dec, radius, epochs))

            # A cone touching no partition has no rows: any slice answers it (emptily).
            answers = await _all(ask(int(s)) for s in (touched if len(touched) else [0]))
            if len(answers) == 1:
                return answers[0]
            table = merge_cones([ipc_to_table(a.arrow_ipc) for a in answers],
                                self._limit(request.limit))
            self._check_rows(table.num_rows, "this cone")
            return xmatch_pb2.RowsResponse(arrow_ipc=table_to_ipc(table), rows=table.num_rows)
        except Exception as error:  # noqa: BLE001 (every error becomes a status)
            await _abort(context, error)

    async def SsoCone(self, request, context):
        try:
            _no_slice(request.slice)
            name, catalog, t_tdb = self._sso_request(request)
            _, touched = catalog.route(np.array([request.ra_deg]), np.array([request.dec_deg]),
                                       np.array([request.radius_arcsec]), None)
            timeout = context.time_remaining()
            ra, dec, radius = [request.ra_deg], [request.dec_deg], [request.radius_arcsec]

            async def ask(s):
                sub = xmatch_pb2.SsoConeRequest()
                sub.CopyFrom(request)
                sub.catalog = name
                sub.slice = catalog.slices[s].id
                return await self._on_replicas(
                    catalog, s, lambda link: link.stub.SsoCone(sub, timeout=timeout),
                    lambda: catalog.partitions_of(s, ra, dec, radius, None))

            answers = await _all(ask(int(s)) for s in (touched if len(touched) else [0]))
            # An object whose track crosses partitions of several slices is found by each.
            table = merge_cones([ipc_to_table(a.arrow_ipc) for a in answers], None)
            first = np.unique(table.column("designation").to_numpy(zero_copy_only=False),
                              return_index=True)[1] if table.num_rows else np.empty(0, int)
            table = table.take(np.sort(first)[:self._limit(request.limit)])
            self._check_rows(table.num_rows, "this cone")
            return xmatch_pb2.RowsResponse(arrow_ipc=table_to_ipc(table), rows=table.num_rows)
        except Exception as error:  # noqa: BLE001 (every error becomes a status)
            await _abort(context, error)

    def _crossmatch_options(self, options) -> dict:
        catalog = self._catalog(options.catalog, night_cache=None)
        _no_slice(options.slice)
        radius = options.radius_arcsec or catalog.summary.default_radius_arcsec
        self._check_radius(radius)
        mode = crossmatch_mode(options)
        catalog.check_columns(options.columns)
        k = {"nearest": 1, "k": int(options.k), "all": None}[mode]
        return {"catalog": catalog.name, "routed": catalog, "options": options,
                "radius": radius, "k": k, **night_options(options, catalog.night)}

    async def _crossmatch_batch(self, options: dict, batch, context):
        n = self._check_batch(batch)
        try:
            ra, dec, _ = coords.positions(np.asarray(batch.ra_deg, dtype=np.float64),
                                          np.asarray(batch.dec_deg, dtype=np.float64))
            epoch = (coords.epochs(np.asarray(batch.epoch_jyear), n) if len(batch.epoch_jyear)
                     else options["epoch"])
        except ValueError as error:  # name the batch, keep the message
            raise ValueError(f"batch {batch.batch_id}: {error}") from None
        radius = (np.asarray(batch.radius_arcsec, dtype=np.float64) if len(batch.radius_arcsec)
                  else options["radius"])
        t_tdb = self._batch_times(options, batch, n)
        table = await self._match_table(options, batch.batch_id, ra, dec, radius, epoch,
                                        context, t_tdb=t_tdb)
        return xmatch_pb2.CrossmatchResponse(
            batch_id=batch.batch_id, arrow_ipc=table_to_ipc(table), queries=n,
            matches=table.num_rows - table.column(RANK_COLUMN).null_count)

    async def _match_table(self, options: dict, batch_id: int, ra, dec, radius, epoch,
                           context, t_tdb=None) -> pa.Table:
        """The left join of one batch of checked positions: each slice is asked for the
        positions that may reach it, and the answers merged. A nightly cache places its
        objects at the TDB instants ``t_tdb``."""
        catalog: RoutedCatalog = options["routed"]
        timeout = context.time_remaining()
        n = len(ra)
        offsets, touched = catalog.route(ra, dec, radius, epoch)
        if len(touched):
            position = np.repeat(np.arange(n), np.diff(offsets))
            by_slice = np.argsort(touched, kind="stable")
            slices, firsts = np.unique(touched[by_slice], return_index=True)
            groups = np.split(position[by_slice], firsts[1:])
        else:  # nothing near any position (or no position): one slice answers the shape
            slices, groups = [0], [np.arange(n)]

        def subset(values, rows):
            return values if np.ndim(values) == 0 else np.asarray(values)[rows]

        async def ask(s, rows):
            sub_options = xmatch_pb2.CrossmatchOptions()
            sub_options.CopyFrom(options["options"])
            sub_options.slice = catalog.slices[s].id
            sub_options.time_scale = "tdb"
            messages = [
                xmatch_pb2.CrossmatchRequest(options=sub_options),
                xmatch_pb2.CrossmatchRequest(batch=xmatch_pb2.PositionBatch(
                    batch_id=batch_id, ra_deg=ra[rows], dec_deg=dec[rows],
                    radius_arcsec=[] if np.ndim(radius) == 0 else radius[rows],
                    epoch_jyear=[] if epoch is None or np.ndim(epoch) == 0 else epoch[rows],
                    mjd=[] if t_tdb is None else t_tdb[rows]))]

            async def attempt(link):
                async for answer in link.stub.Crossmatch(iter(messages), timeout=timeout):
                    return ipc_to_table(answer.arrow_ipc)
                raise StatusError(grpc.StatusCode.INTERNAL,
                                  f"shard {link.name} ended a cross-match without answering")

            table = await self._on_replicas(
                catalog, s, attempt,
                lambda: catalog.partitions_of(s, ra[rows], dec[rows], subset(radius, rows),
                                              subset(epoch, rows)))
            return table, rows

        pieces = await _all(ask(int(s), rows) for s, rows in zip(slices, groups, strict=True))
        # An object whose track crosses partitions of several slices is found by each.
        table = merge_matches(pieces, n, options["k"],
                              "designation" if catalog.night is not None else None)
        self._check_rows(table.num_rows, f"batch {batch_id}")
        return table

    async def RegionSearch(self, request, context):
        # Partition by partition, in pixel order (the order an embedded server streams), each
        # from one replica of its slice; the token says where to pick up:
        # "region:<rows sent>:<partition>:<the shard's token within it>". For a sky map the
        # router adds each row's values from the map, having asked the shards for the
        # columns it needs; a ranked search gathers the region's rows, then ranks them.
        try:
            catalog = self._catalog(request.catalog)
            _no_slice(request.slice)
            catalog.check_columns(request.columns)
            region = await self._region(request, catalog.description.distance_column)
            shaper = _RowShaper(catalog, region, list(request.columns))
            limit = self._limit(request.limit)
            timeout = context.time_remaining()
            if region.rank_by is not None:
                async for answer in self._ranked_region(catalog, region, shaper, request,
                                                        limit, timeout):
                    yield answer
                return
            ranges, batch_rows = region.ranges, region.batch_rows
            sent, first, inner = _region_token(request.continuation_token)
            touched = [p for p in catalog.partitions_in(ranges) if p >= first]
            held = None   # the answer about to be sent: the last one must carry no token
            empty = None  # an empty answer (it carries the schema), sent if nothing else is
            for p in touched:
                if limit is not None and sent >= limit:
                    break
                before = sent - (_token_offset(inner) if p == first else 0)
                async for answer in self._region_partition(
                        catalog, p, ranges, request.catalog, shaper.asked, batch_rows,
                        None if limit is None else limit - before,
                        inner if p == first else "", timeout):
                    if answer.rows == 0:
                        empty = empty or answer
                        continue
                    if held is not None:
                        yield held
                    sent += answer.rows
                    more = answer.continuation_token
                    answer = await shaper.answer(answer)
                    answer.continuation_token = (f"region:{sent}:{p}:{more}" if more
                                                 else f"region:{sent}:{p + 1}:")
                    held = answer
            if held is None and empty is None:  # no partition to ask: any slice answers
                async for answer in self._region_partition(
                        catalog, None, ranges, request.catalog, shaper.asked, batch_rows, None,
                        "", timeout):
                    empty = answer
            final = held or await shaper.answer(empty)
            final.continuation_token = ""
            yield final
        except Exception as error:  # noqa: BLE001
            await _abort(context, error)

    async def _ranked_region(self, catalog, region, shaper, request, limit, timeout):
        """A ranked sky-map search: every row of the region gathered (at most the server's
        row limit), ranked, and streamed from the offset of the continuation token."""
        start = _token_offset(request.continuation_token)
        touched = catalog.partitions_in(region.ranges) or [None]
        pieces = []
        for p in touched:
            async for answer in self._region_partition(
                    catalog, p, region.ranges, request.catalog, shaper.asked,
                    self.limits.max_rows, self.limits.max_rows + 1, "", timeout):
                pieces.append(ipc_to_table(answer.arrow_ipc))
                gathered = sum(t.num_rows for t in pieces)
                if gathered > self.limits.max_rows:
                    raise LimitExceededError(
                        f"a ranked search holds every row of its region in the router, and "
                        f"this region has over {self.limits.max_rows:,}, its limit: use a "
                        "lower credible level, or no ranking")
        table = await asyncio.to_thread(shaper.ranked, pa.concat_tables(pieces))
        end = table.num_rows if limit is None else min(table.num_rows, limit)
        if start >= end:
            yield xmatch_pb2.RowsResponse(arrow_ipc=table_to_ipc(table.slice(0, 0)), rows=0)
            return
        for offset in range(start, end, region.batch_rows):
            stop = min(offset + region.batch_rows, end)
            yield xmatch_pb2.RowsResponse(
                arrow_ipc=table_to_ipc(table.slice(offset, stop - offset)), rows=stop - offset,
                continuation_token=f"offset:{stop}" if stop < end else "")

    async def _region_partition(self, catalog, p, ranges, name, columns, batch_rows, limit,
                                token, timeout):
        """Stream the rows of one partition inside the region (``None``: no partition, for
        an empty answer with the schema), from one replica of its slice."""
        if p is None:
            s, clipped = 0, ranges[:0]
        else:
            s = int(catalog.slice_of[p])
            lo, hi = catalog.starts[p], catalog.stops[p]
            inside = (ranges[:, 1] > lo) & (ranges[:, 0] < hi)
            clipped = np.clip(ranges[inside], lo, hi)
        partition = [] if p is None else [f"{catalog.partitions[p].order}/"
                                          f"{catalog.partitions[p].pixel}"]
        sub = xmatch_pb2.RegionSearchRequest(
            catalog=name, ranges29=clipped.ravel(), columns=columns, limit=limit or 0,
            batch_rows=batch_rows, continuation_token=token, slice=catalog.slices[s].id)

        async def attempt(link):
            answers = []
            async for answer in link.stub.RegionSearch(sub, timeout=timeout):
                answers.append(answer)
            return answers

        # A failure part-way through retries from the start of the partition: answers are
        # only released once the whole partition arrived (at most one partition in memory).
        for answer in await self._on_replicas(catalog, s, attempt, lambda: partition):
            yield answer


class _RowShaper:
    """What the router asks the shards for in a region search, and how it turns their rows
    into the answer: for a sky map, the columns asked plus the order-29 pixel and distance
    the map's values need, which are dropped again unless asked for."""

    def __init__(self, catalog: RoutedCatalog, region, columns: list[str]):
        self.region = region
        self.columns = columns or list(catalog.column_names)
        self.distance = catalog.description.distance_column or None
        needed = [HEALPIX29_COLUMN, self.distance] if region.skymap is not None else []
        self.asked = list(dict.fromkeys([*self.columns, *[c for c in needed if c]]))
        if not columns and region.skymap is None:
            self.asked = []  # every column, as the shards give them

    async def answer(self, answer):
        if self.region.skymap is None:
            return answer
        table = await asyncio.to_thread(self.with_values, ipc_to_table(answer.arrow_ipc))
        return xmatch_pb2.RowsResponse(arrow_ipc=table_to_ipc(table), rows=table.num_rows,
                                       continuation_token=answer.continuation_token)

    def with_values(self, table: pa.Table) -> pa.Table:
        distance = (np.asarray(table.column(self.distance).to_numpy(zero_copy_only=False),
                               dtype=np.float64) if self.distance else None)
        values = self.region.skymap.values_at(
            table.column(HEALPIX29_COLUMN).to_numpy(zero_copy_only=False), distance)
        return with_skymap_values(table.select(self.columns), values)

    def ranked(self, table: pa.Table) -> pa.Table:
        table = self.with_values(table)
        score = table.column(self.region.rank_by).to_numpy(zero_copy_only=False)
        return table.take(np.argsort(-score, kind="stable"))  # nulls (NaN) last


def _no_slice(value: str) -> None:
    if value:
        raise ValueError("slice is set by a router for its shard servers; leave it empty")


async def _all(coroutines):
    """``asyncio.gather``, cancelling the others when one fails."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


def _region_token(token: str) -> tuple[int, int, str]:
    """(rows sent, partition to resume at, the shard's token within it)."""
    if not token:
        return 0, 0, ""
    parts = token.split(":", 3)
    if len(parts) != 4 or parts[0] != "region" or not (parts[1].isdigit()
                                                       and parts[2].isdigit()):
        raise ValueError(f"continuation_token {token!r} is not one this server issued")
    if parts[3]:
        _token_offset(parts[3])
    return int(parts[1]), int(parts[2]), parts[3]


# ------------------------------------------------------------------------- merging


def merge_cones(tables: list[pa.Table], limit: int | None) -> pa.Table:
    """Rows of several slices' cone answers, closest first, at most ``limit``."""
    table = pa.concat_tables(tables).unify_dictionaries()
    order = np.argsort(table.column(SEPARATION_COLUMN).to_numpy(), kind="stable")
    return table.take(order[:limit])


def merge_matches(pieces: list[tuple[pa.Table, np.ndarray]], n: int,
                  k: int | None, unique: str | None = None) -> pa.Table:
    """One left join over ``n`` positions from the left joins of several slices, each over
    the positions ``rows`` it was sent: per position the ``k`` closest matches of all
    (every match when ``k`` is None), ranked again. ``unique``: a column naming the same
    source when several slices find it (each is then kept once per position)."""
    from xmatch.index import QUERY_COLUMN

    if len(pieces) == 1 and len(pieces[0][1]) == n:
        return pieces[0][0]  # one slice saw every position, in order
    schema = pieces[0][0].schema
    matched, query = [], []
    for table, rows in pieces:
        found = table.filter(pc.is_valid(table.column(RANK_COLUMN)))
        matched.append(found)
        query.append(rows[found.column(QUERY_COLUMN).to_numpy()])
    table = pa.concat_tables(matched).unify_dictionaries()
    query = np.concatenate(query)
    order = np.lexsort((table.column(SEPARATION_COLUMN).to_numpy(), query))
    if unique is not None and len(order):
        names = pc.index_in(table.column(unique), value_set=pc.unique(table.column(unique)))
        pairs = query * table.num_rows + names.to_numpy(zero_copy_only=False)
        _, first = np.unique(pairs[order], return_index=True)
        order = order[np.sort(first)]
    query = query[order]
    rank = match_ranks(query)
    if k is not None:
        keep = rank <= k
        order, query, rank = order[keep], query[keep], rank[keep]
    table = table.take(order)
    table = table.set_column(schema.get_field_index(QUERY_COLUMN), schema.field(QUERY_COLUMN),
                             pa.array(query, pa.int64()))
    table = table.set_column(schema.get_field_index(RANK_COLUMN), schema.field(RANK_COLUMN),
                             pa.array(rank, pa.int32()))
    unmatched = np.setdiff1d(np.arange(n), query, assume_unique=False)
    empty = pa.table({f.name: pa.nulls(len(unmatched), f.type) for f in schema}, schema=schema)
    empty = empty.set_column(schema.get_field_index(QUERY_COLUMN), schema.field(QUERY_COLUMN),
                             pa.array(unmatched, pa.int64()))
    table = pa.concat_tables([table, empty]).unify_dictionaries()
    return table.take(np.argsort(table.column(QUERY_COLUMN).to_numpy(), kind="stable"))

