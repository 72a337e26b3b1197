"""Annotated alerts written to Parquet, JSON lines or Avro, crash-safe and resumable.

Every answered batch becomes one *segment*, written to a temporary name and renamed into
the staging directory ``OUT.partial/`` (with a ``manifest.json`` of the inputs and
options). A run that dies leaves whole segments only; the next run with the same inputs
and options counts the alerts they hold, skips that many and carries on (no alert lost,
none written twice). When every alert is in, the segments are joined into ``OUT`` by one
rename, and the staging directory goes: a half-written output is never visible as ``OUT``.

Formats:

``parquet``
    the annotation table, one row per alert (nested ``<catalog>_matches`` lists when asked).
``jsonl``
    one JSON object per alert: its fields and the ``xmatch`` annotation record.
``avro`` (a file)
    the original packets with the ``xmatch`` record appended to their schema
    (:data:`~xmatch.alerts.annotation.AVRO_ANNOTATION`); all alerts must share one writer
    schema.
``avro`` (a directory: ``OUT/`` or an existing directory)
    one annotated container file per alert, ``<alert_id>.avro``, any mix of schemas.

For Avro, packets that cannot be framed at all are listed in ``OUT.errors.jsonl``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

from xmatch.alerts.annotation import AVRO_ANNOTATION, annotation_records, finite_floats
from xmatch.alerts.avro import PacketError, Schema, Schemas, container, write_long
from xmatch.errors import InputError

FORMATS = ("parquet", "jsonl", "avro")
MANIFEST = "manifest.json"
ANNOTATION_FIELD = "xmatch"
_ANNOTATION_PARSED = fastavro.parse_schema(AVRO_ANNOTATION)
_SYNC = b"xmatch-annotate!"  # one sync marker for every segment of a file, so blocks join


def format_of(path: str, requested: str | None = None) -> str:
    """The output format: as requested, else from the name (a trailing slash or an
    existing directory means one Avro file per alert)."""
    if requested:
        if requested not in FORMATS:
            raise InputError(f"output format {requested!r} is not one of {', '.join(FORMATS)}")
        return requested
    name = str(path).lower()
    for suffix, kind in ((".parquet", "parquet"), (".jsonl", "jsonl"), (".json", "jsonl"),
                         (".avro", "avro")):
        if name.endswith(suffix):
            return kind
    if _names_directory(path):
        return "avro"
    raise InputError(f"cannot tell the output format of {path}: name it .parquet, .jsonl or "
                     ".avro, end it with / for one Avro file per alert, or pass --format")


class AnnotationWriter:
    """Writes annotated batches to ``out`` in ``fmt`` through a staging directory.

    Parameters
    ----------
    out : path
        The final output (a file, or a directory for per-alert Avro files).
    fmt : str
        One of :data:`FORMATS`.
    manifest : dict
        What the run reads and asks (inputs, catalogs, radii...): a staging directory left
        by a run with a different manifest is not resumed.
    """

    def __init__(self, out, fmt: str, manifest: dict):
        self.out = Path(out)
        self.fmt = fmt
        self.per_alert = fmt == "avro" and _names_directory(out)
        self.staging = self.out.parent / f"{self.out.name}.partial"
        self.manifest = json.loads(json.dumps(manifest))
        self.schemas = Schemas()
        self.errors: list[dict] = []
        self._segments = 0
        self._file_schema: Schema | None = None
        self._names: set[str] = set()  # per-alert files named so far (alerts may share ids)

    def resume(self) -> int:
        """Prepare the staging directory; the number of alerts already written by an
        interrupted run (0 for a fresh start)."""
        if not self.per_alert and self.out.is_dir():
            raise InputError(f"{self.out} is a directory; name an output file")
        if self.staging.exists():
            found = _read_json(self.staging / MANIFEST)
            if found != self.manifest:
                raise InputError(
                    f"{self.staging} holds an interrupted run with other inputs or options; "
                    "repeat that run to finish it, or delete the directory to start over")
        else:
            self.staging.mkdir(parents=True)
            _write_atomic(self.staging / MANIFEST, json.dumps(self.manifest).encode())
        done = 0
        for segment in self._segment_paths():
            done += int(segment.name.split("-")[1].split(".")[0])
            self._segments += 1
            if segment.is_dir():
                self._names.update(file.name for file in segment.iterdir())
        for leftover in self.staging.glob("*.tmp"):
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        errors = self.staging / "errors.jsonl"
        if errors.exists():
            self.errors = [json.loads(line) for line in errors.read_text().splitlines()]
        return done

    def _segment_paths(self) -> list[Path]:
        return sorted(p for p in self.staging.iterdir()
                      if p.name[:1].isdigit() and not p.name.endswith(".tmp"))

    def write(self, batch) -> None:
        """One answered batch (:class:`~xmatch.service.annotate_stream.AnnotatedBatch`),
        as one segment, atomically."""
        table, packets = batch.table, batch.packets
        name = f"{self._segments:08d}-{table.num_rows}"
        if self.fmt == "parquet":
            table = _with_origin(table, packets)
            sink = io.BytesIO()
            pq.write_table(table, sink)
            _write_atomic(self.staging / f"{name}.parquet", sink.getvalue())
        elif self.fmt == "jsonl":
            _write_atomic(self.staging / f"{name}.jsonl", _json_lines(table, packets))
        elif self.per_alert:
            self._write_alert_files(self.staging / name, table, packets)
        else:
            _write_atomic(self.staging / f"{name}.blocks", self._avro_block(table, packets))
        self._segments += 1

    def finish(self) -> Path:
        """Join the segments into the output and remove the staging directory."""
        segments = self._segment_paths()
        if self.per_alert:
            self.out.mkdir(parents=True, exist_ok=True)
            for segment in segments:
                for file in sorted(segment.iterdir()):
                    file.replace(self.out / file.name)
        else:
            temporary = self.out.parent / f".{self.out.name}.tmp"
            with open(temporary, "wb") as sink:
                if self.fmt == "parquet":
                    _join_parquet(segments, sink)
                elif self.fmt == "jsonl":
                    for segment in segments:
                        sink.write(segment.read_bytes())
                else:
                    header = self.staging / "header.avro"
                    if not header.exists():  # no alert at all: a file without a schema
                        raise InputError("no alert could be written as Avro; nothing to write "
                                         f"to {self.out}")
                    sink.write(header.read_bytes())
                    for segment in segments:
                        sink.write(segment.read_bytes())
            temporary.replace(self.out)
        if self.fmt == "avro" and self.errors:
            errors = self.out.parent / f"{self.out.name.rstrip('/')}.errors.jsonl"
            errors.write_text("".join(json.dumps(e) + "\n" for e in self.errors))
        shutil.rmtree(self.staging)
        return self.out

    # ------------------------------------------------------------------ Avro

    def annotated(self, table: pa.Table, packets) -> list[tuple[Schema, bytes] | None]:
        """Each alert of an answered batch as (writer schema, annotated body: the record
        under :func:`extended_schema_text`), None for packets that cannot be framed (listed
        in the errors)."""
        if packets is None:
            raise InputError("Avro output needs raw alert packets; compact alerts can be "
                             "written as Parquet or JSON lines")
        out = []
        new_errors = []
        for packet, record in zip(packets, annotation_records(table), strict=True):
            try:
                ((schema, body),) = self.schemas.split(packet.data)
            except (PacketError, ValueError) as error:
                new_errors.append({"origin": packet.origin, "error": str(error)})
                out.append(None)
                continue
            out.append((schema, annotated_body(body, record)))
        if new_errors:
            self.errors.extend(new_errors)
            _write_atomic(self.staging / "errors.jsonl",
                          "".join(json.dumps(e) + "\n" for e in self.errors).encode())
        return out

    def _avro_block(self, table: pa.Table, packets) -> bytes:
        bodies = []
        for item in self.annotated(table, packets):
            if item is None:
                continue
            schema, body = item
            if self._file_schema is None:
                self._file_schema = self._adopt_schema(schema)
            elif schema.text != self._file_schema.text:
                raise InputError(
                    f"the alerts mix Avro schemas ({self._file_schema.name} "
                    f"{self._file_schema.fingerprint} and {schema.name} {schema.fingerprint}); "
                    "one Avro file holds one schema: write to a directory (--out DIR/) for "
                    "one file per alert, or to Parquet / JSON lines")
            bodies.append(body)
        if not bodies:
            return b""
        data = b"".join(bodies)
        return write_long(len(bodies)) + write_long(len(data)) + data + _SYNC

    def _adopt_schema(self, schema: Schema) -> Schema:
        """The file's schema: that of the first alert (or of the header an interrupted run
        wrote), checked to be the same."""
        header = self.staging / "header.avro"
        expected = container(extended_schema_text(schema), [], _SYNC)
        if not header.exists():
            _write_atomic(header, expected)
        elif header.read_bytes() != expected:
            raise InputError(f"the alerts do not share the schema of {self.out}'s "
                             "first alerts; write to a directory (--out DIR/) instead")
        return schema

    def _write_alert_files(self, directory: Path, table: pa.Table, packets) -> None:
        temporary = directory.with_name(directory.name + ".tmp")
        temporary.mkdir()
        ids = table.column("alert_id").to_pylist()
        for number, item in enumerate(self.annotated(table, packets)):
            if item is None:
                continue
            schema, body = item
            name = self._free_name(f"{ids[number] if ids[number] is not None else 'alert'}")
            (temporary / name).write_bytes(container(extended_schema_text(schema), [body]))
        temporary.rename(directory)

    def _free_name(self, stem: str) -> str:
        """``stem.avro``, or ``stem-2.avro``... if this run named it already."""
        name, number = f"{stem}.avro", 2
        while name in self._names:
            name, number = f"{stem}-{number}.avro", number + 1
        self._names.add(name)
        return name


def annotated_body(body: bytes, record: dict) -> bytes:
    """An alert's schemaless body with its ``xmatch`` record appended: the body of the
    alert under :func:`extended_schema_text` (the original bytes are not re-encoded)."""
    sink = io.BytesIO()
    fastavro.schemaless_writer(sink, _ANNOTATION_PARSED, record)
    # The annotation is the record's last field, a union whose branch 1 is the Annotation:
    # appending its bytes to the body encodes the extended record.
    return body + write_long(1) + sink.getvalue()


def extended_schema_text(schema: Schema) -> str:
    """The writer schema with the ``xmatch`` annotation appended as its last field (worked
    out once per schema)."""
    text = schema.derived.get("extended")
    if text is not None:
        return text
    definition = json.loads(schema.text)
    if any(f["name"] == ANNOTATION_FIELD for f in definition["fields"]):
        raise InputError(f"schema {schema.name} already has an {ANNOTATION_FIELD!r} field "
                         "(an annotated packet?); annotate the original packets")
    definition["fields"].append({"name": ANNOTATION_FIELD, "type": ["null", AVRO_ANNOTATION],
                                 "default": None})
    schema.derived["extended"] = json.dumps(definition)
    return schema.derived["extended"]


def _names_directory(path) -> bool:
    """An output path naming a directory: a trailing slash, or an existing directory."""
    return str(path).endswith(("/", os.sep)) or Path(path).is_dir()


def _with_origin(table: pa.Table, packets) -> pa.Table:
    if packets is None:
        return table
    return table.append_column("origin", pa.array([p.origin for p in packets], pa.string()))


def json_objects(table: pa.Table, records: list[dict] | None = None) -> list[dict]:
    """Each alert of an annotation table as a JSON-ready object: its fields and its
    ``xmatch`` record (``records``, if worked out already); NaN as null."""
    records = annotation_records(table) if records is None else records
    columns = {name: table.column(name).to_pylist()
               for name in ("alert_id", "object_id", "survey", "band")}
    columns.update({name: finite_floats(table.column(name))
                    for name in ("ra_deg", "dec_deg", "mag")})
    names = ("alert_id", "object_id", "survey", "ra_deg", "dec_deg", "band", "mag")
    return [{**{name: columns[name][row] for name in names}, ANNOTATION_FIELD: record}
            for row, record in enumerate(records)]


def _json_lines(table: pa.Table, packets) -> bytes:
    lines = []
    for number, row in enumerate(json_objects(table)):
        if packets is not None:
            row = {**row, "origin": packets[number].origin}
        lines.append(json.dumps(row))
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _join_parquet(segments: list[Path], sink) -> None:
    writer = None
    for segment in segments:
        table = pq.read_table(segment)
        if writer is None:
            writer = pq.ParquetWriter(sink, table.schema)
        writer.write_table(table.cast(writer.schema))
    if writer is None:
        raise InputError("no alert to write")
    writer.close()


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as sink:
        sink.write(data)
        sink.flush()
        os.fsync(sink.fileno())
    temporary.replace(path)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


