"""The router: a cluster's front door, serving ``xmatch.v1.Xmatch`` over shard servers.

For each request the router finds the partitions it may touch (a region's partitions,
:meth:`xmatch.sky.regions.Region.partitions`; for a batch, the same rule per position,
widened by how far proper motions can carry a row), asks one replica of each slice holding
them, all at once (``grpc.aio``), and merges the answers (:mod:`xmatch.index.results`):
closest first, limits applied, a left join rebuilt over the whole batch. Deadlines pass on
as the time the client has left; a cancelled call cancels its shard calls.

A replica that answers UNAVAILABLE (stopped, killed, unreachable) is marked down and the
next replica is asked; a marked replica is tried again after ``RETRY_DOWN_SECONDS`` or when
no other is left. With no replica left the request fails with UNAVAILABLE naming the
shards tried and the partitions it needed: never a silently partial answer.
"""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pyarrow as pa

from xmatch.errors import (
    CatalogNotFoundError,
    InputError,
    LimitExceededError,
    ServiceError,
    UnavailableError,
)
from xmatch.index.results import RANK_COLUMN, merge_matches, merge_rows, with_rows_found
from xmatch.service import validation
from xmatch.service.catalogs import SkyMaps, coverage_response
from xmatch.service.codec import ellipse_message, ipc_to_table, table_to_ipc
from xmatch.service.plan import Plan
from xmatch.service.routing import RoutedCatalog, ShardLink
from xmatch.service.security import Credentials
from xmatch.service.server import Boundary, rows_response
from xmatch.service.validation import Limits
from xmatch.sky.healpix import union_ranges29
from xmatch.sky.regions import Cone, Ellipse, Polygon, SkyMapRegion
from xmatch.store.paths import HEALPIX29_COLUMN
from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

#: Shard answers that send the router to the next replica.
FAILOVER_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
#: What grpc.aio answers, as INTERNAL, for a call whose request it could not send because
#: the connection broke under it (grpc/aio/_call.py, ``set_internal_error``): a shard's link
#: cut and found dead by keepalive while a cross-match batch was being written. Measured:
#: 225 of 1,582 streams to a shard across three 2.5 s cuts; passed on, it ended `xmatch
#: stream` in benchmarks/bench_chaos.py. No shard said it: it sends the router to the next
#: replica, as UNAVAILABLE does.
SEND_FAILED = "Internal error from Core"


def _shard_unreachable(error: grpc.aio.AioRpcError) -> bool:
    return error.code() in FAILOVER_CODES or (error.code() == grpc.StatusCode.INTERNAL
                                              and error.details() == SEND_FAILED)


class Router(Boundary, xmatch_pb2_grpc.XmatchServicer):
    """Answers ``xmatch.v1.Xmatch`` by fanning requests out to the shard servers of a plan.
    Create it inside the event loop that serves it (its channels belong to that loop)."""

    def __init__(self, plan: Plan, limits: Limits | None = None, context=None,
                 credentials: Credentials | None = None):
        from xmatch.store.catalog import open_catalog
        from xmatch.store.data_dir import DataDirectory

        self.limits = limits or Limits()
        self.context_config = context
        self._data = data = DataDirectory(plan.data)
        self.skymaps = SkyMaps(self.limits.skymaps_kept)
        self.links = [ShardLink(s.name, s.address, self.limits.max_message_bytes, credentials)
                      for s in plan.shards]
        self.catalogs = {name: RoutedCatalog.from_plan(open_catalog(name, data), slices,
                                                       self.links)
                         for name, slices in plan.catalogs.items()}

    def _context_catalog(self, name: str):
        """A context layer's catalog, read whole from the store on first use (shards hold
        slices; a halo or a galaxy reaches across them)."""
        from xmatch.context.engine import store_context_catalog
        from xmatch.store.catalog import open_catalog

        if name not in self.catalogs:
            raise CatalogNotFoundError(f"no catalog {name!r} here; catalogs served: "
                                       f"{', '.join(sorted(self.catalogs))}")
        return store_context_catalog(open_catalog(name, self._data))

    async def close(self) -> None:
        for link in self.links:
            await link.channel.close()

    async def _on_replicas(self, catalog: RoutedCatalog, s: int, attempt, needed):
        """``await attempt(link)`` on the replicas of slice ``s`` in turn until one answers.
        Shard errors other than unavailability are the client's answer; with no replica
        left, UNAVAILABLE names the shards tried and the partitions ``needed()`` lists."""
        tried = []
        for link in catalog.slices[s].candidates():
            try:
                answer = await attempt(link)
            except grpc.aio.AioRpcError as error:
                if not _shard_unreachable(error):
                    raise ServiceError(error.code(), error.details()) from None
                link.failed(error)
                if self.observer is not None:
                    self.observer.failover(link.name)
                tried.append(f"{link.name} at {link.address}")
                continue
            link.answered()
            return answer
        partitions = needed()
        raise UnavailableError(
            f"{catalog.name}: no replica answers for partition(s) "
            f"{', '.join(partitions) or '(none)'}: {'; '.join(tried)} "
            f"{'is' if len(tried) == 1 else 'are'} unreachable; restart "
            f"{'it' if len(tried) == 1 else 'them'} (xmatch cluster shard) or ask again later")

    # ------------------------------------------------------------------ searches

    async def Cone(self, request, context):
        catalog = self._catalog(request.catalog)
        validation.no_slice(request.slice)
        self.limits.radius(request.radius_arcsec)
        ra, dec = validation.cone_position(request)
        epoch = validation.epoch_of(request)
        catalog.check_columns(request.columns)
        limit = self.limits.limit(request.limit)
        cone = Cone(ra, dec, request.radius_arcsec)
        if catalog.motion is not None and epoch is not None:
            cone = cone.widened(catalog.motion.drift_arcsec(epoch))
        touched = cone.partitions(catalog.starts, catalog.stops)
        slices = np.unique(catalog.slice_of[touched]) if len(touched) else [0]
        timeout = context.time_remaining()

        async def ask(s):
            sub = xmatch_pb2.ConeRequest()
            sub.CopyFrom(request)
            sub.slice = catalog.slices[s].id
            return await self._on_replicas(
                catalog, s, lambda link: link.stub.Cone(sub, timeout=timeout),
                lambda: [catalog.partition_name(p) for p in touched
                         if catalog.slice_of[p] == s])

        # A cone touching no partition has no rows: any slice answers it (emptily).
        answers = await _all(ask(int(s)) for s in slices)
        if len(answers) == 1:
            return answers[0]
        table = merge_rows([with_rows_found(ipc_to_table(a.arrow_ipc), a.rows_found)
                            for a in answers], limit)
        self.limits.rows(table.num_rows, "this cone")
        return rows_response(table)

    async def Coverage(self, request, context):
        # Every slice holds rows: each is asked, on one replica, for the cells of its rows,
        # and the router takes the union (a cell can hold rows of partitions in several
        # slices when the order is coarser than theirs).
        catalog = self._catalog(request.catalog)
        validation.no_slice(request.slice)
        order = validation.coverage_order(request)
        timeout = context.time_remaining()

        async def ask(s):
            sub = xmatch_pb2.CoverageRequest(catalog=catalog.name, order=order,
                                             slice=catalog.slices[s].id)
            return await self._on_replicas(
                catalog, s, lambda link: link.stub.Coverage(sub, timeout=timeout),
                lambda: [catalog.partition_name(p)
                         for p in np.flatnonzero(catalog.slice_of == s)])

        answers = await _all(ask(s) for s in range(len(catalog.slices)))
        answer, size = await asyncio.to_thread(_coverage_union, answers, order)
        self.limits.message(size, f"the coverage of {catalog.name} at order {order}",
                            "ask a lower order")
        return answer

    async def SsoCone(self, request, context):
        validation.no_slice(request.slice)
        name, catalog, t_tdb = self._sso_request(request)
        ra, dec = validation.cone_position(request)
        touched = Cone(ra, dec, request.radius_arcsec).partitions(catalog.starts,
                                                                  catalog.stops)
        slices = np.unique(catalog.slice_of[touched]) if len(touched) else [0]
        timeout = context.time_remaining()

        async def ask(s):
            sub = xmatch_pb2.SsoConeRequest()
            sub.CopyFrom(request)
            sub.catalog = name
            sub.slice = catalog.slices[s].id
            sub.limit = 0  # the limit applies to the merged objects
            return await self._on_replicas(
                catalog, s, lambda link: link.stub.SsoCone(sub, timeout=timeout),
                lambda: [catalog.partition_name(p) for p in touched
                         if catalog.slice_of[p] == s])

        answers = await _all(ask(int(s)) for s in slices)
        # An object whose track crosses partitions of several slices is found by each.
        table = merge_rows([ipc_to_table(a.arrow_ipc) for a in answers],
                           self.limits.limit(request.limit), unique="designation")
        self.limits.rows(table.num_rows, "this cone")
        return rows_response(table)

    def _crossmatch_options(self, options) -> dict:
        catalog = self._catalog(options.catalog, night_cache=None)
        validation.no_slice(options.slice)
        radius = options.radius_arcsec or catalog.summary.default_radius_arcsec
        self.limits.radius(radius)
        keep = validation.crossmatch_keep(options)
        catalog.check_columns(options.columns)
        return {"catalog": catalog.name, "routed": catalog, "options": options,
                "radius": radius, "k": keep or None,
                **validation.night_options(options, catalog.night)}

    async def _crossmatch_batch(self, options: dict, batch, context):
        n = self.limits.batch(batch)
        ra, dec = validation.batch_positions(batch)
        epoch = validation.batch_epochs(batch, options["epoch"])
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
            if catalog.night is not None:
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
                raise ServiceError(grpc.StatusCode.INTERNAL,
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
        self.limits.rows(table.num_rows, f"batch {batch_id}")
        return table

    async def RegionSearch(self, request, context):
        # Partition by partition, in pixel order (the order an embedded server streams), each
        # from one replica of its slice; the token says where to pick up:
        # "region:<rows sent>:<partition>:<the shard's token within it>". For a sky map the
        # router adds each row's values from the map, having asked the shards for the
        # columns it needs; a ranked search gathers the region's rows, then ranks them.
        catalog = self._catalog(request.catalog)
        validation.no_slice(request.slice)
        if len(request.clip29):
            raise InputError("clip29 is set by a router for its shard servers; "
                                        "leave it empty")
        catalog.check_columns(request.columns)
        region, rank_by = await asyncio.to_thread(validation.region_of, request, self.skymaps)
        batch_rows = self.limits.batch_rows(request.batch_rows)
        shaper = _RowShaper(catalog, region, rank_by, list(request.columns))
        limit = self.limits.limit(request.limit)
        timeout = context.time_remaining()
        touched = region.partitions(catalog.starts, catalog.stops).tolist()
        if shaper.rank_by is not None:
            async for answer in self._ranked_region(catalog, region, touched, shaper, request,
                                                    batch_rows, limit, timeout):
                yield answer
            return
        sent, first, inner = _region_token(request.continuation_token)
        # With a limit, the rows found in all are counted first (one row asked of each
        # partition); without, they are the rows sent.
        found = (await self._count_region(catalog, region, touched, request.catalog, timeout)
                 if limit is not None and not request.continuation_token else 0)
        held = None   # the answer about to be sent: the last one must carry no token
        empty = None  # an empty answer (it carries the schema), sent if nothing else is
        for p in [p for p in touched if p >= first]:
            if limit is not None and sent >= limit:
                break
            before = sent - (validation.token_offset(inner) if p == first else 0)
            async for answer in self._region_partition(
                    catalog, p, region, request.catalog, shaper.asked, batch_rows,
                    None if limit is None else limit - before, inner if p == first else "",
                    timeout):
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
                answer.rows_found = 0
                held = answer
        if held is None and empty is None:  # no partition to ask: any slice answers
            async for answer in self._region_partition(
                    catalog, None, region, request.catalog, shaper.asked, batch_rows, None, "",
                    timeout):
                empty = answer
        final = held or await shaper.answer(empty)
        final.continuation_token = ""
        if not request.continuation_token:
            final.rows_found = found if limit is not None else sent
        yield final

    async def _count_region(self, catalog, region, touched, name, timeout) -> int:
        """The rows of the region in all, from the shards' counts."""
        async def count(p):
            async for answer in self._region_partition(catalog, p, region, name,
                                                       [catalog.column_names[0]], 1, 1, "",
                                                       timeout):
                return answer.rows_found
            return 0

        return sum(await _all(count(p) for p in touched))

    async def _ranked_region(self, catalog, region, touched, shaper, request, batch_rows,
                             limit, timeout):
        """A ranked sky-map search: every row of the region gathered (at most the server's
        row limit), ranked, and streamed from the offset of the continuation token."""
        start = validation.token_offset(request.continuation_token)
        pieces = []
        for p in touched or [None]:
            async for answer in self._region_partition(
                    catalog, p, region, request.catalog, shaper.asked, self.limits.max_rows,
                    self.limits.max_rows + 1, "", timeout):
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
            yield xmatch_pb2.RowsResponse(arrow_ipc=table_to_ipc(table.slice(0, 0)), rows=0,
                                          rows_found=table.num_rows)
            return
        for offset in range(start, end, batch_rows):
            stop = min(offset + batch_rows, end)
            yield xmatch_pb2.RowsResponse(
                arrow_ipc=table_to_ipc(table.slice(offset, stop - offset)), rows=stop - offset,
                rows_found=table.num_rows,
                continuation_token=f"offset:{stop}" if stop < end else "")

    async def _region_partition(self, catalog, p, region, name, columns, batch_rows, limit,
                                token, timeout):
        """Stream the rows of one partition inside the region (``None``: no partition, for
        an empty answer with the schema), from one replica of its slice."""
        s = 0 if p is None else int(catalog.slice_of[p])
        clip = None if p is None else np.array([[catalog.starts[p], catalog.stops[p]]],
                                               dtype=np.int64)
        sub = xmatch_pb2.RegionSearchRequest(
            catalog=name, columns=columns, limit=limit or 0, batch_rows=batch_rows,
            continuation_token=token, slice=catalog.slices[s].id)
        if p is None:
            pass  # no region at all: an empty MOC, answered with the schema alone
        elif isinstance(region, Polygon):
            sub.polygon.ra_deg.extend(region.ra_deg)
            sub.polygon.dec_deg.extend(region.dec_deg)
            sub.clip29.extend(clip.ravel())
        elif isinstance(region, Ellipse):
            ellipse_message(sub.ellipse, region)
            sub.clip29.extend(clip.ravel())
        else:
            ranges = region.cover29()
            inside = (ranges[:, 1] > clip[0, 0]) & (ranges[:, 0] < clip[0, 1])
            sub.ranges29.extend(np.clip(ranges[inside], clip[0, 0], clip[0, 1]).ravel())
        partition = [] if p is None else [catalog.partition_name(p)]

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

    def __init__(self, catalog: RoutedCatalog, region, rank_by: str | None,
                 columns: list[str]):
        from xmatch.sky.skymap import check_rank

        self.skymap = region.skymap if isinstance(region, SkyMapRegion) else None
        self.distance = catalog.description.distance_column or None
        self.rank_by = check_rank(rank_by, self.skymap, self.distance)
        self.columns = columns or list(catalog.column_names)
        needed = [HEALPIX29_COLUMN, self.distance] if self.skymap is not None else []
        self.asked = list(dict.fromkeys([*self.columns, *[c for c in needed if c]]))
        if not columns and self.skymap is None:
            self.asked = []  # every column, as the shards give them

    async def answer(self, answer):
        if self.skymap is None:
            return answer
        table = await asyncio.to_thread(self.with_values, ipc_to_table(answer.arrow_ipc))
        return xmatch_pb2.RowsResponse(arrow_ipc=table_to_ipc(table), rows=table.num_rows,
                                       continuation_token=answer.continuation_token)

    def with_values(self, table: pa.Table) -> pa.Table:
        from xmatch.sky.skymap import with_skymap_values

        distance = (np.asarray(table.column(self.distance).to_numpy(zero_copy_only=False),
                               dtype=np.float64) if self.distance else None)
        values = self.skymap.values_at(
            table.column(HEALPIX29_COLUMN).to_numpy(zero_copy_only=False), distance)
        return with_skymap_values(table.select(self.columns), values)

    def ranked(self, table: pa.Table) -> pa.Table:
        table = self.with_values(table)
        score = table.column(self.rank_by).to_numpy(zero_copy_only=False)
        return table.take(np.argsort(-score, kind="stable"))  # nulls (NaN) last


async def _all(coroutines):
    """``asyncio.gather``, cancelling the others when one fails."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


def _coverage_union(answers, order: int) -> tuple[xmatch_pb2.CoverageResponse, int]:
    """One Coverage answer from the slices' answers (the union of their ranges), and its
    size in bytes."""
    ranges = union_ranges29([np.asarray(a.ranges29, dtype=np.int64) for a in answers])
    answer = coverage_response(ranges, order, sum(a.rows_counted for a in answers))
    return answer, answer.ByteSize()


def _region_token(token: str) -> tuple[int, int, str]:
    """(rows sent, partition to resume at, the shard's token within it)."""
    if not token:
        return 0, 0, ""
    parts = token.split(":", 3)
    if len(parts) != 4 or parts[0] != "region" or not (parts[1].isdigit()
                                                       and parts[2].isdigit()):
        raise InputError(f"continuation_token {token!r} is not one this server "
                                    "issued")
    if parts[3]:
        validation.token_offset(parts[3])
    return int(parts[1]), int(parts[2]), parts[3]
