"""The firehose simulator: real alert packets published to a topic at a steady rate or in
Rubin-like visit bursts, amplified with fresh ids and jittered positions.

Each published alert is a real packet (all its fields, history and cutouts) whose alert id
(ZTF ``candid``; Rubin ``alertId`` / ``diaSourceId``, and the detection's own) is replaced by
a fresh one and whose position is moved by up to ``jitter_deg``. Only the packet's prefix up
to the detection record is re-encoded (an Avro record is its fields in order), so the
cutouts behind it are copied, not decoded: amplification costs tens of microseconds a packet.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import fastavro
import numpy as np

from xmatch.alerts.avro import Schemas, container_block, container_header
from xmatch.alerts.fields import layout_of
from xmatch.errors import InputError

#: A Rubin visit: about 10,000 alerts every 39 s (30 s exposure and overheads).
VISIT_ALERTS = 10_000
VISIT_SECONDS = 39.0
_SYNC = b"xmatch-replay-v1"


@dataclass
class _Template:
    """One real packet, taken apart: its writer schema, the decoded prefix record, the
    bytes after the prefix, and where the survey keeps the id and the position."""

    schema: object
    prefix: dict
    rest: bytes
    detection: str          # "candidate" or "diaSource"
    top_id: str | None      # the top-level alert id field
    dec: str                # "dec" (or "decl" before Rubin v5)


def templates(packets: list, schemas: Schemas | None = None) -> list[_Template]:
    """The packets (bytes, or :class:`~xmatch.alerts.Packet` naming where they come from),
    taken apart for amplification (InputError naming one that cannot be read)."""
    schemas = schemas or Schemas()
    out = []
    for number, packet in enumerate(packets):
        where = getattr(packet, "origin", f"packet {number + 1}")
        try:
            ((schema, body),) = schemas.split(getattr(packet, "data", packet))
            layout = layout_of(schema)
            stream = io.BytesIO(body)
            record = fastavro.schemaless_reader(stream, layout.prefix, None)
        except Exception as error:  # noqa: BLE001 (fastavro raises many kinds on bad bytes)
            raise InputError(f"{where}: cannot be replayed: {error}") from None
        detection = "candidate" if "candidate" in record else "diaSource"
        top_id = next((n for n in ("candid", "alertId", "diaSourceId") if n in record), None)
        dec = "decl" if "decl" in record[detection] else "dec"
        out.append(_Template(schema, record, body[stream.tell():], detection, top_id, dec))
    if not out:
        raise InputError("no alert packet to replay")
    return out


def amplified(packets: list, first_id: int, *, jitter_deg: float = 1.0,
              seed: int = 0, framing: str = "container", registry=None,
              topic: str = "") -> Iterator[tuple[int, bytes]]:
    """Endless ``(alert id, packet)``: the packets in turn, each with a fresh id (``first_id``
    and up) and its position moved by up to ``jitter_deg``; framed as container files or,
    with a ``registry``, in Confluent wire format (the writer schema registered under
    ``{topic}-value``)."""
    if framing == "confluent" and registry is None:
        raise InputError("Confluent wire format needs a schema registry (--schema-registry)")
    pool = templates(packets)
    rng = np.random.default_rng(seed)
    headers: dict[int, bytes] = {}
    identifier = first_id
    while True:
        jitter = rng.uniform(-jitter_deg, jitter_deg, size=(len(pool), 2))
        for template, (d_ra, d_dec) in zip(pool, jitter, strict=True):
            record = dict(template.prefix)
            detection = dict(record[template.detection])
            dec = float(np.clip(detection[template.dec] + d_dec, -90.0, 90.0))
            cos_dec = max(math.cos(math.radians(dec)), 1e-3)
            detection["ra"] = (detection["ra"] + d_ra / cos_dec) % 360.0
            detection[template.dec] = dec
            for name in ("candid", "diaSourceId"):
                if name in detection:
                    detection[name] = identifier
            record[template.detection] = detection
            if template.top_id:
                record[template.top_id] = identifier
            sink = io.BytesIO()
            fastavro.schemaless_writer(sink, layout_of(template.schema).prefix, record)
            body = sink.getvalue() + template.rest
            key = id(template.schema)
            if framing == "container":
                if key not in headers:
                    headers[key] = container_header(template.schema.text, _SYNC)
                packet = headers[key] + container_block([body], _SYNC)
            else:
                schema_id = registry.register(f"{topic}-value", template.schema.text)
                packet = b"\x00" + schema_id.to_bytes(4, "big") + body
            yield identifier, packet
            identifier += 1


@dataclass
class ReplayReport:
    sent: int = 0
    seconds: float = 0.0
    visits: int = 0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def replay(source: Iterator[tuple[int, bytes]], producer, topic: str, count: int, *,
           rate: float | None = None, visit_alerts: int | None = None,
           visit_seconds: float = VISIT_SECONDS, progress=None) -> ReplayReport:
    """Publish ``count`` packets of ``source`` to ``topic`` with ``producer`` (keyed by
    alert id), at ``rate`` per second, or in bursts of ``visit_alerts`` every
    ``visit_seconds``, or as fast as the broker takes them (neither)."""
    report = ReplayReport()
    started = time.monotonic()
    burst = visit_alerts or 0
    while report.sent < count:
        now = time.monotonic() - started
        if burst:
            due = min(count, (int(now // visit_seconds) + 1) * burst)
        elif rate:
            due = min(count, int(now * rate) + 1)
        else:
            due = count
        if report.sent >= due:
            wait = (visit_seconds - now % visit_seconds) if burst else 1.0 / rate
            producer.poll(min(wait, 0.05))
            continue
        for identifier, packet in _take(source, min(due - report.sent, 1000)):
            while True:
                try:
                    producer.produce(topic, packet, str(identifier).encode())
                    break
                except BufferError:
                    producer.poll(0.01)
            report.sent += 1
        producer.poll(0)
        if progress is not None:
            progress(report.sent)
        if burst and report.sent == due:
            report.visits += 1
    producer.flush()
    report.seconds = time.monotonic() - started
    return report


def _take(source, n: int):
    for _ in range(n):
        yield next(source)
