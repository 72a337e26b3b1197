"""The server side of the alert history and the watches: ``ObjectHistory``, ``AddWatch``,
``ListWatches``, ``RemoveWatch`` and ``Notice``, over the server's
:class:`~xmatch.history.memory.AlertMemory` (none: these RPCs say how to start one)."""

from __future__ import annotations

import asyncio
import json

import pyarrow as pa

from xmatch.errors import InputError
from xmatch.service.codec import ipc_to_table, table_to_ipc
from xmatch.v1 import xmatch_pb2


class HistoryService:
    """Mixed into :class:`xmatch.service.server.Boundary`; ``memory`` is set by the
    server (None: no history, no watches)."""

    memory = None

    def _memory(self, history: bool = False):
        if self.memory is None or (history and self.memory.history is None):
            raise InputError("this server keeps no alert history; start it with --history "
                             "(xmatch serve --history)")
        return self.memory

    async def ObjectHistory(self, request, context):
        history = self._memory(history=True).history
        objects = await asyncio.to_thread(history.objects, [request.object_id])
        detections = await asyncio.to_thread(history.detections, [request.object_id])
        return xmatch_pb2.ObjectHistoryResponse(object_ipc=table_to_ipc(objects),
                                                detections_ipc=table_to_ipc(detections))

    async def AddWatch(self, request, context):
        watch = watch_of_request(request)
        described, found = await asyncio.to_thread(self._memory().add_watch, watch,
                                                   replace=request.replace)
        return xmatch_pb2.AddWatchResponse(description_json=json.dumps(described),
                                           back_matches_ipc=table_to_ipc(found))

    async def ListWatches(self, request, context):
        return xmatch_pb2.ListWatchesResponse(
            watches_json=json.dumps(self._memory().watches.describe()))

    async def RemoveWatch(self, request, context):
        await asyncio.to_thread(self._memory().remove_watch, request.name)
        return xmatch_pb2.RemoveWatchResponse()

    async def Notice(self, request, context):
        from xmatch.notices import read_notice
        from xmatch.notices.follow import DEFAULT_LEVEL, NoticeFollower

        memory = self._memory()
        galaxies = None
        if request.galaxy_catalog:
            galaxies = self._catalog(request.galaxy_catalog).slice_index("")
        follower = NoticeFollower(memory, galaxies=galaxies,
                                  galaxy_catalog=request.galaxy_catalog or None,
                                  level=request.level or DEFAULT_LEVEL)
        notice = await asyncio.to_thread(read_notice, request.notice)
        done = await asyncio.to_thread(follower.follow, notice)
        return xmatch_pb2.NoticeResponse(
            summary_json=json.dumps(done.summary), alerts_ipc=table_to_ipc(done.alerts),
            galaxies_ipc=b"" if done.galaxies is None else table_to_ipc(done.galaxies))


def watch_of_request(request):
    """The watchlist or watchmap an ``AddWatchRequest`` describes, checked."""
    from xmatch.watch import Watchlist, Watchmap

    kind = request.WhichOneof("watch")
    if kind is None:
        raise InputError("AddWatch needs a watch: list_ipc (a watchlist), moc or moc_fits, "
                         "or skymap_fits with level (a watchmap)")
    if kind == "list_ipc":
        if request.level:
            raise InputError("level is for a sky map's credible region, not a watchlist")
        try:
            table = ipc_to_table(request.list_ipc)
        except (pa.ArrowInvalid, OSError) as error:
            raise InputError(f"list_ipc is not an Arrow IPC stream: {error}") from None
        return Watchlist.from_table(
            request.name, table, f"watchlist {request.name}",
            radius_column=request.radius_column or None,
            radius_arcsec=request.radius_arcsec or None,
            name_column=request.name_column or None)
    if request.radius_column or request.radius_arcsec or request.name_column:
        raise InputError("radius_column, radius_arcsec and name_column are for watchlists, "
                         "not watchmaps")
    if kind == "skymap_fits":
        return Watchmap.from_skymap(request.name, request.skymap_fits, request.level or 0.9)
    if request.level:
        raise InputError("level is for a sky map's credible region, not a MOC")
    return Watchmap.from_moc(request.name, request.moc if kind == "moc" else
                             request.moc_fits)
