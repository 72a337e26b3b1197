"""The write-ahead log of the alert history: one record per recorded batch, fsync'd before
the batch is answered.

A segment file ``<first sequence>.wal`` holds records one after another, each a header
(magic ``XMWL``, the batch sequence number, the payload length, the payload's CRC-32) and
the payload: the batch's detections as an Arrow IPC stream. Segments roll over at
:data:`SEGMENT_BYTES`. A crash can leave only the last record of the last segment torn
(its batch was never answered, so its alerts come again): a record cut short, or the
file's last record failing its CRC, or zeros past the end. Reopening cuts it off. A bad
record anywhere else is damage, refused with the file and offset.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from xmatch.errors import DamagedCatalogError

MAGIC = b"XMWL"
HEADER = struct.Struct("<4sQQI")
SEGMENT_BYTES = 64 * 2**20
SUFFIX = ".wal"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segments(directory: Path) -> list[Path]:
    """The segments in sequence order."""
    return sorted(directory.glob(f"*{SUFFIX}"))


def first_sequence(segment: Path) -> int:
    return int(segment.stem)


def read_segment(segment: Path, last: bool, repair: bool = True
                 ) -> Iterator[tuple[int, pa.Table]]:
    """The (sequence, detections) records of a segment. A torn record at the end of the
    ``last`` segment is cut off the file (without ``repair``, while the log is being
    written, reading stops there); anywhere else it is damage."""
    data = segment.read_bytes()
    offset = 0
    while offset < len(data):
        problem, torn = None, True
        if offset + HEADER.size > len(data):
            problem = "a record header is cut short"
        else:
            magic, sequence, length, crc = HEADER.unpack_from(data, offset)
            start = offset + HEADER.size
            if magic != MAGIC:
                problem = "a record does not start with the log's magic bytes"
                torn = not any(data[offset:])  # zeros a crash left past the end
            elif start + length > len(data):
                problem = "a record is cut short"
            elif zlib.crc32(data[start:start + length]) != crc:
                problem = "a record fails its CRC-32"
                torn = start + length == len(data)
        if problem is not None:
            if last and torn:  # the batch being written when the process died: unanswered
                if repair:
                    with open(segment, "r+b") as handle:
                        handle.truncate(offset)
                        os.fsync(handle.fileno())
                return
            raise DamagedCatalogError(f"history log {segment} at byte {offset}: {problem}; "
                                      "the log is damaged")
        with pa.ipc.open_stream(data[start:start + length]) as reader:
            yield sequence, reader.read_all()
        offset = start + length


def read_log(directory: Path, after: int, through: int | None = None, *,
             repair: bool = True) -> Iterator[tuple[int, pa.Table]]:
    """Every record with a sequence above ``after`` (and at most ``through``), in order;
    ``repair`` as :func:`read_segment` (False: the log is being written meanwhile)."""
    found = segments(directory)
    for number, segment in enumerate(found):
        following = found[number + 1] if number + 1 < len(found) else None
        if following is not None and first_sequence(following) <= after + 1:
            continue  # every record of this segment is at or below ``after``
        if through is not None and first_sequence(segment) > through:
            return
        for sequence, table in read_segment(segment, last=following is None, repair=repair):
            if through is not None and sequence > through:
                return
            if sequence > after:
                yield sequence, table


class WriteAheadLog:
    """Appends records to the newest segment; ``fsync`` per record."""

    def __init__(self, directory: Path, next_sequence: int):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.next_sequence = next_sequence
        self._handle = None
        found = segments(directory)
        if found and found[-1].stat().st_size < SEGMENT_BYTES:
            self._handle = open(found[-1], "ab")

    def append(self, detections: pa.Table) -> int:
        """Write one batch's detections; returns its sequence number once on disk."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, detections.schema) as writer:
            writer.write_table(detections)
        payload = sink.getvalue().to_pybytes()
        sequence = self.next_sequence
        if self._handle is None or self._handle.tell() >= SEGMENT_BYTES:
            self.roll()
        self._handle.write(HEADER.pack(MAGIC, sequence, len(payload), zlib.crc32(payload)))
        self._handle.write(payload)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.next_sequence += 1
        return sequence

    def roll(self) -> None:
        """Start a new segment (the next record goes there)."""
        if self._handle is not None:
            self._handle.close()
        path = self.directory / f"{self.next_sequence:016d}{SUFFIX}"
        self._handle = open(path, "ab")
        _fsync_dir(self.directory)

    def drop_through(self, sequence: int) -> None:
        """Delete segments whose records are all at or below ``sequence`` (never the one
        being written)."""
        found = segments(self.directory)
        for segment, following in zip(found, found[1:], strict=False):
            if first_sequence(following) <= sequence + 1 and (
                    self._handle is None or Path(self._handle.name) != segment):
                segment.unlink()
        _fsync_dir(self.directory)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
