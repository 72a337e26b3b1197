"""Kafka message values in and out.

In: alert packets, an Avro container file per message (ZTF) or Confluent wire format
(Rubin: byte 0, a 4-byte schema id, the schemaless alert), and compact alerts, a JSON
object per message (``{"alert_id": 1, "ra_deg": 10.5, "dec_deg": -3.2, "mjd_tai":
60923.1}``; ``object_id`` and ``survey`` optional), mixed freely on one topic.

Out: the annotated packet in the framing asked for (a container file, or Confluent wire
format under the id the registry gives the annotated schema); a compact alert's annotation
as a JSON object; and the compact annotation records of the annotation-only topic (JSON,
or Avro :data:`~xmatch.alerts.annotation.AVRO_ALERT_ANNOTATION`).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import fastavro
import numpy as np
import pyarrow as pa

from xmatch.alerts.annotation import AVRO_ALERT_ANNOTATION
from xmatch.alerts.avro import PacketError, Schema, Schemas, container_block, container_header
from xmatch.alerts.fields import decode_split, packet_row
from xmatch.alerts.outputs import ANNOTATION_FIELD, extended_schema_text
from xmatch.errors import InputError

FRAMINGS = ("container", "confluent")
ANNOTATION_FORMATS = ("json", "avro")
#: Compact alerts: field -> (accepted JSON types, what to say when it is something else).
COMPACT_FIELDS = {"alert_id": (int, "an integer"), "object_id": (str, "a string"),
                  "survey": (str, "a string"), "ra_deg": ((int, float), "a number"),
                  "dec_deg": ((int, float), "a number"), "mjd_tai": ((int, float), "a number"),
                  "band": (str, "a string"), "mag": ((int, float), "a number"),
                  "mag_err": ((int, float), "a number")}
_SYNC = b"xmatch-stream-v2"  # the sync marker of every container xmatch stream writes
_ALERT_ANNOTATION = fastavro.parse_schema(AVRO_ALERT_ANNOTATION)
_ALERT_ANNOTATION_TEXT = json.dumps(AVRO_ALERT_ANNOTATION)


@dataclass
class Decoded:
    """The messages of a batch read: one row per message (ALERT_SCHEMA, ``error`` saying
    why a message cannot be read), each packet's ``(schema, body)`` (None for compact
    alerts and unreadable messages), and which messages are compact alerts."""

    alerts: pa.Table
    splits: list
    compact: np.ndarray


def decode_values(values: list[bytes], schemas: Schemas) -> Decoded:
    """Read a batch of message values (a registry that does not answer raises
    :class:`~xmatch.stream.registry.RegistryUnavailable`: nothing is read wrong)."""
    compact = np.array([_is_compact(v) for v in values], bool)
    table, splits = decode_split(values, schemas, _message_row)
    return Decoded(table, splits, compact)


def _is_compact(value: bytes | None) -> bool:
    return value is not None and value[:1] in (b"{", b" ", b"\n")


def _message_row(value: bytes | None, schemas: Schemas) -> tuple:
    """The row of one message value, and its packet's ``(schema, body)`` (None for a
    compact alert)."""
    if value is None:
        raise PacketError("the message has no value (a tombstone?)")
    if _is_compact(value):
        return compact_row(value), None
    return packet_row(value, schemas)


def compact_row(value: bytes) -> tuple:
    """The :func:`~xmatch.alerts.fields.alert_table` row of a compact alert (JSON)."""
    try:
        alert = json.loads(value)
    except (ValueError, UnicodeDecodeError) as error:
        raise PacketError(f"the message starts like a JSON compact alert but is not JSON: "
                          f"{error}") from None
    if not isinstance(alert, dict):
        raise PacketError("a compact alert is a JSON object")
    unknown = sorted(set(alert) - set(COMPACT_FIELDS))
    if unknown:
        raise PacketError(f"a compact alert has no field {', '.join(unknown)}; its fields are "
                          f"{', '.join(COMPACT_FIELDS)}")
    for name in ("ra_deg", "dec_deg"):
        if alert.get(name) is None:
            raise PacketError(f"the compact alert has no {name}")
    for name, value in alert.items():
        kinds, what = COMPACT_FIELDS[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise PacketError(f"the compact alert's {name} must be {what}, not {value!r}")
    time = alert.get("mjd_tai")
    return (alert.get("survey"), alert.get("alert_id"), alert.get("object_id"),
            alert["ra_deg"], alert["dec_deg"], None, None, time, alert.get("band"),
            alert.get("mag"), alert.get("mag_err"), "tai-mjd")


class Framing:
    """How annotated packets and annotation records are framed on the output topics.

    Parameters
    ----------
    kind : {"container", "confluent"}
        An Avro container file per message (as ZTF publishes), or Confluent wire format,
        the annotated schema registered under ``SUBJECT`` (``{topic}-value``) in ``registry``.
    registry : SchemaRegistry, optional
        Needed for ``confluent``.
    """

    def __init__(self, kind: str, registry=None):
        if kind not in FRAMINGS:
            raise InputError(f"output framing {kind!r} is not one of {', '.join(FRAMINGS)}")
        if kind == "confluent" and registry is None:
            raise InputError("Confluent wire-format output needs a schema registry to give the "
                             "annotated schema its id: give --schema-registry URL, or write "
                             "container files (--output-format container)")
        self.kind = kind
        self.registry = registry

    def packet(self, topic: str, schema: Schema, body: bytes) -> bytes:
        """An annotated alert (``body`` under the extended schema of ``schema``)."""
        return self._framed(topic, extended_schema_text(schema), schema.derived, body)

    def annotation(self, topic: str, alert: dict, fmt: str) -> bytes:
        """A compact annotation record (a :func:`~xmatch.alerts.outputs.json_objects` row)
        in ``fmt``: a JSON object or an :data:`AVRO_ALERT_ANNOTATION` record."""
        if fmt == "json":
            return compact_json(alert)
        sink = io.BytesIO()
        fastavro.schemaless_writer(sink, _ALERT_ANNOTATION, {
            "alert_id": alert["alert_id"], "object_id": alert["object_id"],
            "survey": alert["survey"], "ra_deg": alert["ra_deg"], "dec_deg": alert["dec_deg"],
            ANNOTATION_FIELD: alert[ANNOTATION_FIELD]})
        return self._framed(topic, _ALERT_ANNOTATION_TEXT, _ANNOTATION_CACHE, sink.getvalue())

    def _framed(self, topic: str, text: str, cache: dict, body: bytes) -> bytes:
        if self.kind == "container":
            header = cache.get("stream_header")
            if header is None:
                header = cache["stream_header"] = container_header(text, _SYNC)
            return header + container_block([body], _SYNC)
        schema_id = self.registry.register(f"{topic}-value", text)
        return b"\x00" + schema_id.to_bytes(4, "big") + body


_ANNOTATION_CACHE: dict = {}


def compact_json(alert: dict) -> bytes:
    """A compact alert's annotation (a :func:`~xmatch.alerts.outputs.json_objects` row) as
    one JSON object."""
    return json.dumps(alert).encode()
