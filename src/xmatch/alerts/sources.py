"""Alert packets from files, directories, tarballs and bytes, one alert per packet.

Inputs are read in a fixed order (the order given; a directory's ``.avro`` files sorted by
path; a tarball's members in archive order), so a second run over the same inputs sees the
same alerts in the same order: what resuming an interrupted run relies on. A container file
holding several alerts is split into one single-alert container each.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from xmatch.alerts.avro import CONTAINER_MAGIC, PacketError, Schemas, container
from xmatch.errors import LoadError

AVRO_SUFFIXES = (".avro",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


@dataclass(frozen=True)
class Packet:
    """One alert as its producer framed it, and where it came from (for messages)."""

    origin: str
    data: bytes


def check_inputs(inputs: Iterable) -> None:
    """Refuse, before anything is read, paths that do not exist or are not alert inputs
    (:class:`~xmatch.errors.LoadError` naming the path)."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            continue
        if not path.exists():
            raise LoadError("no such file or directory", source=str(path))
        if not path.is_file():
            raise LoadError("not a regular file or directory", source=str(path))
        if not _is_input(path):
            raise LoadError("not an alert input: give ZTF or Rubin Avro packets as .avro "
                            f"files, directories of them or tarballs ({', '.join(TAR_SUFFIXES)})",
                            source=str(path))


def read_packets(inputs: Iterable, schemas: Schemas | None = None) -> Iterator[Packet]:
    """Packets from each input: a path (``.avro`` file, directory searched recursively,
    tarball) or ``bytes`` (one packet). A path that is missing, not an alert input, or
    unreadable (a truncated tarball) raises :class:`~xmatch.errors.LoadError` naming it
    (and the tar member)."""
    schemas = schemas or Schemas()
    for number, item in enumerate(inputs):
        if isinstance(item, bytes | bytearray | memoryview):
            yield from _split(f"<bytes #{number}>", bytes(item), schemas)
            continue
        path = Path(item)
        check_inputs([path])
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _is_input(p))
            for file in files:
                yield from _read_path(file, schemas)
        else:
            yield from _read_path(path, schemas)


def input_paths(inputs: Iterable) -> list[str]:
    """The inputs as resolved paths (what a resumed run checks it reads again)."""
    return [os.path.abspath(str(item)) for item in inputs]


def _is_input(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(AVRO_SUFFIXES + TAR_SUFFIXES)


def _read_path(path: Path, schemas: Schemas) -> Iterator[Packet]:
    name = path.name.lower()
    if name.endswith(TAR_SUFFIXES):
        member = None
        try:
            with tarfile.open(path) as archive:
                for member in archive:
                    if member.isfile() and member.name.lower().endswith(AVRO_SUFFIXES):
                        data = archive.extractfile(member).read()
                        yield from _split(f"{path}:{member.name}", data, schemas)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            after = f" at member {member.name}" if member is not None else ""
            raise LoadError(f"not a readable tarball{after} (truncated or corrupt?): "
                            f"{error or type(error).__name__}", source=str(path)) from None
        return
    try:
        data = path.read_bytes()
    except OSError as error:
        raise LoadError(f"cannot read: {error.strerror}", source=str(path)) from None
    yield from _split(str(path), data, schemas)


def _split(origin: str, data: bytes, schemas: Schemas) -> Iterator[Packet]:
    """A container with several alerts becomes one packet each; anything else (one alert,
    a Confluent message, or bytes too damaged to frame) passes as it is, so the damage is
    reported for that alert by whoever decodes it."""
    if data[:4] != CONTAINER_MAGIC:
        yield Packet(origin, data)
        return
    try:
        alerts = schemas.split(data)
    except PacketError:
        yield Packet(origin, data)
        return
    if len(alerts) == 1:
        yield Packet(origin, data)
        return
    for number, (schema, body) in enumerate(alerts):
        yield Packet(f"{origin}#{number}", container(schema.text, [body]))
