"""Avro framing of alert packets: object container files and Confluent wire-format messages.

An alert packet travels in one of two framings. ZTF (and brokers re-serializing Rubin
alerts) send an Avro *object container file* holding the alert: a header with the writer
schema, then data blocks. Rubin's Kafka stream sends *Confluent wire format*: a zero byte,
a 4-byte big-endian schema id, then the alert as schemaless Avro.

This module splits either framing into ``(schema, body)`` where ``body`` is the schemaless
Avro encoding of one alert record, without decoding the record. Parsing a writer schema
costs far more than decoding one alert, so schemas are parsed once per distinct header and
kept in :class:`Schemas`.

The encoding rules (zig-zag varints, the header map, 16-byte sync markers) are those of
the Avro 1.11 specification, "Object Container Files".
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zlib
from dataclasses import dataclass, field

import fastavro

CONTAINER_MAGIC = b"Obj\x01"
CONFLUENT_MAGIC = 0
SYNC_SIZE = 16


class PacketError(ValueError):
    """A packet that cannot be framed or decoded; the message says why."""


@dataclass(eq=False)
class Schema:
    """A writer schema: its JSON text (as the producer wrote it), the parsed form fastavro
    needs, and a short fingerprint that names it in messages and file names."""

    text: str
    parsed: dict
    fingerprint: str
    derived: dict = field(default_factory=dict)  # per-schema caches built by other modules

    @classmethod
    def from_text(cls, text: str) -> Schema:
        try:
            parsed = fastavro.parse_schema(json.loads(text))
        except (ValueError, TypeError, KeyError, fastavro.schema.SchemaParseException) as error:
            raise PacketError(f"the writer schema is not valid Avro: {error}") from None
        return cls(text, parsed, hashlib.sha256(text.encode()).hexdigest()[:16])

    @property
    def name(self) -> str:
        return self.parsed.get("name", "?") if isinstance(self.parsed, dict) else "?"


class Schemas:
    """Parsed writer schemas by container header and by Confluent schema id.

    Parameters
    ----------
    registry : dict[int, str], optional
        Schema JSON by Confluent schema id.
    lookup : callable, optional
        ``lookup(schema_id) -> JSON text or None`` for ids not in ``registry``: a schema
        registry's (:class:`xmatch.stream.registry.SchemaRegistry`). Without it, ids are
        looked up among Rubin's published alert schemas (id = 100 * major + minor, e.g. 1101
        for v11.1) when the ``lsst-alert-packet`` package is installed.
    """

    def __init__(self, registry: dict[int, str] | None = None, lookup=None):
        self._by_header: dict[bytes, tuple[Schema, str]] = {}
        self._by_id: dict[int, Schema] = {}
        self._registry = dict(registry or {})
        self._lookup = lookup or _rubin_schema_text
        self._where = ("the schema registry" if lookup else
                       "AnnotateOptions.avro_schemas, --schema ID=FILE, or lsst-alert-packet "
                       "for Rubin's")

    def by_id(self, schema_id: int) -> Schema:
        schema = self._by_id.get(schema_id)
        if schema is None:
            text = self._registry.get(schema_id) or self._lookup(schema_id)
            if text is None:
                raise PacketError(f"unknown Avro schema id {schema_id} (Confluent wire format): "
                                  f"not found in {self._where}")
            schema = self._by_id[schema_id] = Schema.from_text(text)
        return schema

    def split(self, packet: bytes) -> list[tuple[Schema, bytes]]:
        """The alerts of one packet as ``(writer schema, schemaless body)`` pairs (one for
        a Confluent message; one per record of a container file)."""
        if packet[:4] == CONTAINER_MAGIC:
            return self._split_container(packet)
        if len(packet) > 5 and packet[0] == CONFLUENT_MAGIC:
            return [(self.by_id(int.from_bytes(packet[1:5], "big")), packet[5:])]
        if not packet:
            raise PacketError("the packet is empty")
        raise PacketError("the packet is neither an Avro container file (magic 'Obj\\x01') nor "
                          f"a Confluent wire-format message (magic byte 0); it starts with "
                          f"{packet[:8]!r}")

    def _split_container(self, packet: bytes) -> list[tuple[Schema, bytes]]:
        buffer = memoryview(packet)
        try:
            meta_end, _ = _metadata(buffer, decode=False)
            # Producers write a new sync marker per file, so the cache key is the metadata
            # (schema and codec) alone and the marker is read from each packet.
            key = bytes(buffer[4:meta_end])
            cached = self._by_header.get(key)
            if cached is None:
                _, meta = _metadata(buffer, decode=True)
                if "avro.schema" not in meta:
                    raise PacketError("the container header has no avro.schema (not an Avro "
                                      "file?)")
                codec = meta.get("avro.codec", b"null").decode()
                cached = (Schema.from_text(meta["avro.schema"].decode()), codec)
                self._by_header[key] = cached
            schema, codec = cached
            sync = bytes(buffer[meta_end:meta_end + SYNC_SIZE])
            if len(sync) != SYNC_SIZE:
                raise PacketError("the container header is incomplete (the packet is truncated)")
            alerts = []
            position = meta_end + SYNC_SIZE
            while position < len(buffer):
                count, position = read_long(buffer, position)
                size, position = read_long(buffer, position)
                if count < 0 or size < 0 or position + size + SYNC_SIZE > len(buffer):
                    raise PacketError("a data block runs past the end of the packet "
                                      "(the packet is truncated)")
                data = _decompress(bytes(buffer[position:position + size]), codec)
                position += size
                if bytes(buffer[position:position + SYNC_SIZE]) != sync:
                    raise PacketError("a data block does not end with the file's sync marker "
                                      "(the packet is corrupt)")
                position += SYNC_SIZE
                alerts.extend((schema, body) for body in _records(data, count, schema))
        except (IndexError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PacketError(f"the container is truncated or damaged ({error})") from None
        if not alerts:
            raise PacketError("the container file holds no alert")
        return alerts


def read_long(buffer, position: int) -> tuple[int, int]:
    """One zig-zag varint ``long`` at ``position``: (value, next position)."""
    shift = result = 0
    while True:
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise PacketError("a varint is longer than 10 bytes (the packet is corrupt)")


def write_long(value: int) -> bytes:
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _metadata(buffer, decode: bool) -> tuple[int, dict[str, bytes]]:
    """Where the header's metadata map ends (the sync marker follows) and, with ``decode``,
    its entries; without, nothing is copied (the common case: a header seen before)."""
    position = 4
    meta: dict[str, bytes] = {}
    while True:
        count, position = read_long(buffer, position)
        if count == 0:
            return position, meta
        if count < 0:  # a negative count is followed by the block's size in bytes
            count = -count
            _, position = read_long(buffer, position)
        for _ in range(count):
            length, position = read_long(buffer, position)
            key = buffer[position:position + length]
            position += length
            length, position = read_long(buffer, position)
            if decode:
                meta[bytes(key).decode()] = bytes(buffer[position:position + length])
            position += length
        if position > len(buffer):
            raise PacketError("the container header is incomplete (the packet is truncated)")


def _decompress(data: bytes, codec: str) -> bytes:
    if codec == "null":
        return data
    if codec == "deflate":
        try:
            return zlib.decompress(data, -15)
        except zlib.error as error:
            raise PacketError(f"a deflate block does not decompress: {error}") from None
    raise PacketError(f"Avro codec {codec!r} is not supported (null and deflate are)")


def _records(data: bytes, count: int, schema: Schema) -> list[bytes]:
    """The bodies of a block's records. A one-record block (every per-alert file) is its
    record; otherwise the records are decoded to find where each one ends."""
    if count == 1:
        return [data]
    stream = io.BytesIO(data)
    bodies, start = [], 0
    for _ in range(count):
        try:
            fastavro.schemaless_reader(stream, schema.parsed, None)
        except Exception as error:  # noqa: BLE001 (fastavro raises many kinds on bad bytes)
            raise PacketError(f"a record does not decode: {type(error).__name__}: {error}") \
                from None
        end = stream.tell()
        bodies.append(data[start:end])
        start = end
    return bodies


def container(schema_text: str, bodies: list[bytes], sync: bytes | None = None) -> bytes:
    """An Avro object container file (codec null) holding ``bodies`` in one block."""
    sync = sync or os.urandom(SYNC_SIZE)
    return container_header(schema_text, sync) + container_block(bodies, sync)


def container_header(schema_text: str, sync: bytes) -> bytes:
    """The header of a container file (codec null): what stays the same for every file of
    one schema and sync marker."""
    header = bytearray(CONTAINER_MAGIC)
    header += write_long(2)
    for key, value in (("avro.schema", schema_text.encode()), ("avro.codec", b"null")):
        header += write_long(len(key)) + key.encode() + write_long(len(value)) + value
    header += write_long(0) + sync
    return bytes(header)


def container_block(bodies: list[bytes], sync: bytes) -> bytes:
    """One data block holding ``bodies`` (nothing for no body)."""
    if not bodies:
        return b""
    data = b"".join(bodies)
    return write_long(len(bodies)) + write_long(len(data)) + data + sync


def _rubin_schema_text(schema_id: int) -> str | None:
    """Rubin's alert schema for a Confluent id (100 * major + minor), from lsst-alert-packet
    (optional, GPL-3.0: installed by ``pip install 'xmatch[rubin]'``)."""
    try:
        from lsst.alert.packet import Schema as RubinSchema
        from lsst.alert.packet.schema import get_schema_path
    except ImportError:
        return None
    major, minor = divmod(schema_id, 100)
    path = os.path.join(get_schema_path(major, minor), f"lsst.v{major}_{minor}.alert.avsc")
    if not os.path.exists(path):
        return None
    schema = RubinSchema.from_file(path)
    return json.dumps(schema.definition)
