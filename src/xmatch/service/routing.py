"""What the router knows of its cluster: a channel per shard server with its health, the
replicas of each slice, and each catalog's partitions and where they are held.

The router holds no rows: per catalog, its metadata, the order-29 ranges of its partitions
and the proper-motion bounds the load stored (:class:`~xmatch.index.MotionBounds`), never
a per-row array. A region names the partitions it touches (:meth:`Region.partitions`); the
cones of a batch are routed by the same rule, many at once
(:func:`~xmatch.kernels.routing.cone_groups_kernel`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import grpc
import numpy as np

from xmatch.errors import UnknownColumnError, unknown_columns
from xmatch.index.motion import MotionBounds
from xmatch.kernels.routing import cone_groups_kernel
from xmatch.service.catalogs import describe, partition_ranges
from xmatch.service.security import Credentials
from xmatch.sky.regions import ARCSEC_TO_RAD
from xmatch.v1 import xmatch_pb2

log = logging.getLogger("xmatch.service")

#: A replica marked down is asked again (before the others) after this long.
RETRY_DOWN_SECONDS = 1.0
#: Reconnect quickly to a restarted shard (gRPC's default backoff grows to 2 minutes), and
#: ping each shard every second, giving it 2 s to answer: a cut link sends back nothing at
#: all (no reset, no ICMP), and without pings a call to a shard behind it waits out the
#: client's whole deadline instead of failing over (seen in tests/service/test_hosts.py
#: with the link down). The shards accept pings this often (server.KEEPALIVE_OPTIONS).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000),
                   ("grpc.keepalive_time_ms", 1000),
                   ("grpc.keepalive_timeout_ms", 2000),
                   ("grpc.keepalive_permit_without_calls", 1),
                   ("grpc.http2.max_pings_without_data", 0)]


class ShardLink:
    """The router's channel to one shard server, and whether it last answered."""

    def __init__(self, name: str, address: str, max_message_bytes: int,
                 credentials: Credentials | None = None):
        credentials = credentials or Credentials()
        self.name = name
        self.address = address
        self.channel = credentials.channel(address, [
            *CHANNEL_OPTIONS, ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes)], aio=True)
        # Each call carries the router's token and the request id it is answering.
        self.stub = credentials.stub(self.channel, request_ids=True)
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
    partitions: list               # HealpixPixel, in order-29 range order
    starts: np.ndarray             # their order-29 ranges
    stops: np.ndarray
    slice_of: np.ndarray           # slice index of each partition
    slices: list[RoutedSlice]
    motion: MotionBounds | None = None
    night: object = None  # the Night of a nightly solar-system ephemeris cache

    @classmethod
    def from_plan(cls, catalog, slices, links: list[ShardLink]) -> RoutedCatalog:
        from xmatch.errors import XmatchError
        from xmatch.sso.nightly import PAYLOAD_COLUMNS, night_of

        summary, description = describe(catalog)
        where = {p: s for s, entry in enumerate(slices) for p in entry.partitions}
        partitions = sorted(catalog.partitions, key=lambda p: p.range29()[0])
        planned = {(p.order, p.pixel) for p in partitions}
        if planned != set(where):
            raise XmatchError(f"the plan does not match catalog {catalog.name} as stored "
                              f"({len(where)} partitions planned, {len(planned)} stored); "
                              "write a new plan with `xmatch cluster plan`")
        starts, stops = partition_ranges(partitions)
        night = night_of(catalog)
        columns = list(PAYLOAD_COLUMNS) if night is not None else catalog.schema.names
        return cls(catalog.name, summary, description, columns, partitions, starts, stops,
                   np.array([where[(p.order, p.pixel)] for p in partitions], dtype=np.int64),
                   [RoutedSlice(s.id, [links[i] for i in s.shards]) for s in slices],
                   catalog.motion_bounds(), night)

    def check_columns(self, columns) -> None:
        unknown = [c for c in columns if c not in self.column_names]
        if unknown:
            raise UnknownColumnError(unknown_columns(unknown, self.name, self.column_names))

    def partition_name(self, p: int) -> str:
        return f"{self.partitions[p].order}/{self.partitions[p].pixel}"

    def route(self, ra_deg, dec_deg, radius_arcsec, epoch_jyear, by_partition: bool = False):
        """The slices (or partitions) each cone may touch, as ``(offsets, indexes)``
        (see :func:`~xmatch.kernels.routing.cone_groups_kernel`), with every radius widened
        by how far proper motions can move a row to the cone's epoch."""
        reach = np.broadcast_to(np.asarray(radius_arcsec, dtype=np.float64) * ARCSEC_TO_RAD,
                                np.shape(ra_deg))
        if self.motion is not None and epoch_jyear is not None:
            reach = reach + self.motion.drift_rad(epoch_jyear)
        groups = (np.arange(len(self.partitions), dtype=np.int64) if by_partition
                  else self.slice_of)
        return cone_groups_kernel(np.radians(ra_deg), np.radians(dec_deg),
                                  np.ascontiguousarray(reach, dtype=np.float64),
                                  self.starts, self.stops, groups,
                                  len(groups) if by_partition else len(self.slices))

    def partitions_of(self, s: int, ra_deg, dec_deg, radius_arcsec, epoch_jyear) -> list[str]:
        """Names ("order/pixel") of the partitions of slice ``s`` the cones may touch."""
        _, touched = self.route(ra_deg, dec_deg, radius_arcsec, epoch_jyear, by_partition=True)
        return [self.partition_name(p) for p in np.unique(touched) if self.slice_of[p] == s]
