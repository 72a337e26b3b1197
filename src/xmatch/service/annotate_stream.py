"""The client side of an ``Annotate`` stream: batching, flow control and resumption.

Alerts are cut into batches (at most ``batch_size`` alerts and about
:data:`BATCH_BYTES` of packets each). At most ``window`` batches are unanswered at any time:
the producer waits for answers, so a slow consumer slows the reading of alerts and memory
stays bounded. Every answer acknowledges one batch, in order. If the server goes away
(UNAVAILABLE, or CANCELLED as it stops and restarts), the stream is reopened and the
unacknowledged batches are sent again, so each alert is answered exactly once.

Alert inputs are read on the client, while the stream runs: an input that cannot be read (a
missing file, a truncated tarball, a file that is not an alert input) ends the stream with
the :class:`~xmatch.errors.LoadError` naming it, never as a gRPC error. Inputs are checked
before the stream opens, so most such errors come before anything is sent.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pyarrow as pa

from xmatch.alerts.sources import Packet, check_inputs, read_packets
from xmatch.errors import InputError
from xmatch.service.codec import client_error, ipc_to_table, table_to_ipc
from xmatch.sky import coords
from xmatch.v1 import xmatch_pb2

#: Alerts per batch, and the packet bytes a batch stops growing at (under gRPC's limit).
BATCH_ALERTS = 5_000
BATCH_BYTES = 16 * 2**20
#: Batches sent and not yet answered.
WINDOW = 4
#: Reconnection attempts in a row before the stream gives up, and the first wait.
RETRIES = 5
RETRY_SECONDS = 0.5
#: What a server that went away looks like: unreachable, or its calls cancelled as it stops.
RECONNECT_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


@dataclass(frozen=True)
class AnnotatedBatch:
    """The answer to one batch: the annotation table (one row per alert) and, for raw
    packets, the packets themselves (for annotated Avro output, and to name where each
    alert came from)."""

    table: pa.Table
    packets: list[Packet] | None


def annotate_options(catalogs, radius_arcsec, all_matches: bool, schemas,
                     observatory: str | None = None, context: bool = False,
                     history: bool = False, watches: bool = False
                     ) -> xmatch_pb2.AnnotateOptions:
    """The stream's options. ``radius_arcsec``: one radius for every catalog, or by catalog
    name; arcsec or angle Quantities. ``schemas``: JSON text of Confluent schemas by id.
    ``observatory``: MPC site of alerts without a known survey (for ``sso``). ``context``:
    add each alert's context (docs/context.md). ``history``: record each alert in the
    server's alert history and add its history; ``watches``: add its watch hits
    (docs/history.md)."""
    if isinstance(catalogs, str):
        catalogs = [catalogs]
    options = xmatch_pb2.AnnotateOptions(catalogs=list(catalogs or []),
                                         all_matches=all_matches,
                                         avro_schemas=dict(schemas or {}),
                                         observatory=observatory or "",
                                         context=bool(context), history=bool(history),
                                         watches=bool(watches))
    if radius_arcsec is not None:
        if not isinstance(radius_arcsec, dict):
            if not catalogs:
                raise InputError("one radius for every catalog needs the catalogs named; "
                                 "or give radius_arcsec as {catalog: radius}")
            radius_arcsec = dict.fromkeys(catalogs, radius_arcsec)
        for name, value in radius_arcsec.items():
            options.radius_arcsec[name] = coords.radius_arcsec(value)
    return options


def alert_batches(alerts, batch_size: int) -> Iterator[tuple[xmatch_pb2.AlertBatch, list]]:
    """``(AlertBatch without its id, packets or None)`` for compact alerts (a table with
    ra_deg, dec_deg and optionally alert_id, object_id, mjd_tai) or for packets (paths,
    bytes or :class:`Packet`). Paths are checked now; packets are read as batches are
    taken."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size = {batch_size!r} is not allowed; give an integer >= 1")
    table = _as_table(alerts)
    if table is not None:
        return _compact_batches(table, batch_size)
    if isinstance(alerts, str | bytes | Path):
        alerts = [alerts]
    if isinstance(alerts, list | tuple):  # paths to check now (an iterator is read lazily)
        check_inputs(item for item in alerts if not isinstance(item, Packet | bytes))
    return _packet_batches(alerts, batch_size)


def _compact_batches(table: pa.Table, batch_size: int):
    for start in range(0, max(table.num_rows, 1), batch_size):
        piece = table.slice(start, batch_size)
        yield xmatch_pb2.AlertBatch(compact_ipc=table_to_ipc(piece)), None


def _packet_batches(alerts: list, batch_size: int):
    packets, size = [], 0
    for packet in _packets(alerts):
        packets.append(packet)
        size += len(packet.data)
        if len(packets) >= batch_size or size >= BATCH_BYTES:
            yield _packet_batch(packets), packets
            packets, size = [], 0
    if packets:
        yield _packet_batch(packets), packets


def _packet_batch(packets: list[Packet]) -> xmatch_pb2.AlertBatch:
    return xmatch_pb2.AlertBatch(packets=xmatch_pb2.PacketList(
        packets=[p.data for p in packets]))


def _as_table(alerts) -> pa.Table | None:
    if isinstance(alerts, pa.Table):
        return alerts
    if isinstance(alerts, dict) and "ra_deg" in alerts:
        return pa.table(alerts)
    if hasattr(alerts, "colnames"):  # an astropy Table
        from xmatch.io.tables import arrow_of_astropy

        return arrow_of_astropy(alerts)
    return None


def _packets(alerts) -> Iterator[Packet]:
    pending = []
    for item in alerts:
        if isinstance(item, Packet):
            if pending:
                yield from read_packets(pending)
                pending = []
            yield item
        else:
            pending.append(item)
    if pending:
        yield from read_packets(pending)


class StreamLedger:
    """What both forms of the stream (this module's, and the asyncio one of
    :mod:`xmatch.service.aio_client`) keep: the batches sent and not yet answered (sent
    again on a new call), whether the alerts ran out, and an error met reading them."""

    def __init__(self, options, batches: Iterable, retries: int, address: str):
        self.options = xmatch_pb2.AnnotateRequest(options=options)
        self.source = enumerate(batches)
        self.retries = retries
        self.address = address
        self.unanswered: collections.deque = collections.deque()
        self.exhausted = False
        self.failed: BaseException | None = None  # raised while reading the alerts
        self.failures = 0  # reconnections in a row

    def take(self):
        """The request of the next batch (None once the alerts ran out or cannot be read:
        the error is raised again where the answers are read)."""
        try:
            item = next(self.source, None)
        except Exception as error:  # noqa: BLE001 (raised again in the caller's thread)
            self.failed = error  # an input that cannot be read: a LoadError naming it
            return None
        if item is None:
            self.exhausted = True
            return None
        batch_id, (batch, packets) = item
        batch.batch_id = batch_id
        request = xmatch_pb2.AnnotateRequest(batch=batch)
        self.unanswered.append((batch_id, request, packets))
        return request

    def resend(self) -> list:
        """The unacknowledged batches of an earlier call, in order."""
        return [request for _, request, _ in self.unanswered]

    def answered(self, answer) -> AnnotatedBatch:
        batch_id, _, packets = self.unanswered.popleft()
        if answer.batch_id != batch_id:
            raise RuntimeError(f"answer to batch {answer.batch_id} arrived where batch "
                               f"{batch_id} was due")
        self.failures = 0
        return AnnotatedBatch(ipc_to_table(answer.arrow_ipc), packets)

    def ended(self) -> None:
        """The call ended without error: every batch answered, or say what went wrong."""
        if self.failed is not None:
            raise self.failed
        if self.unanswered or not self.exhausted:
            raise RuntimeError("the server ended the stream with "
                               f"{len(self.unanswered)} batch(es) unanswered")

    def broken(self, error) -> float:
        """A call that failed with ``error``: the seconds to wait before calling again, or
        the exception to raise (reading the alerts failed, or not worth retrying)."""
        if self.failed is not None:  # the call was ended by the reading of alerts
            raise self.failed from None
        if error.code() not in RECONNECT_CODES or self.failures >= self.retries:
            raise client_error(error, self.address) from None
        self.failures += 1
        return RETRY_SECONDS * 2 ** (self.failures - 1)


class AnnotateStream:
    """One logical stream of batches over as many gRPC calls as reconnections need."""

    def __init__(self, stub, options, batches: Iterable, window: int = WINDOW,
                 retries: int = RETRIES, address: str = ""):
        self._stub = stub
        self._window = window
        self._ledger = StreamLedger(options, batches, retries, address)
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[AnnotatedBatch]:
        ledger = self._ledger
        while True:
            credit = threading.Semaphore(max(self._window - len(ledger.unanswered), 0))
            closed = threading.Event()
            call = self._stub.Annotate(self._requests(credit, closed))
            try:
                for answer in call:
                    batch = ledger.answered(answer)
                    credit.release()
                    yield batch
                ledger.ended()
                return
            except grpc.RpcError as error:
                time.sleep(ledger.broken(error))
            finally:
                closed.set()
                call.cancel()

    def _requests(self, credit: threading.Semaphore, closed: threading.Event):
        ledger = self._ledger
        yield ledger.options
        with self._lock:
            resend = ledger.resend()
        yield from resend
        while not closed.is_set():
            if not credit.acquire(timeout=0.1):
                continue
            with self._lock:
                if closed.is_set():
                    return
                request = ledger.take()
            if request is None:
                return
            yield request
