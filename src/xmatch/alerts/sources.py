"""Alert packets from files, directories, tarballs and bytes, one alert per packet.

Inputs are read in a fixed order (the order given; a directory's ``.avro`` files sorted by
path; a tarball's members in archive order), so a second run over the same inputs sees the
same alerts in the same order: what resuming an interrupted run relies on. A container file
holding several alerts is split into one single-alert container each.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from xmatch.alerts.avro import CONTAINER_MAGIC, PacketError, Schemas, container

AVRO_SUFFIXES = (".avro",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


@dataclass(frozen=True)
class Packet:
    """One alert as its producer framed it, and where it came from (for messages)."""

    origin: str
    data: bytes


def read_packets(inputs: Iterable, schemas: Schemas | None = None) -> Iterator[Packet]:
    """Packets from each input: a path (``.avro`` file, directory searched recursively,
    tarball) or ``bytes`` (one packet). A missing or unsupported path raises
    FileNotFoundError / ValueError naming it before anything is read from it."""
    schemas = schemas or Schemas()
    for number, item in enumerate(inputs):
        if isinstance(item, bytes | bytearray | memoryview):
            yield from _split(f"<bytes #{number}>", bytes(item), schemas)
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _is_input(p))
            for file in files:
                yield from _read_path(file, schemas)
        elif path.is_file():
            yield from _read_path(path, schemas)
        elif not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
        else:
            raise ValueError(f"{path}: not a regular file or directory")


def input_paths(inputs: Iterable) -> list[str]:
    """The inputs as resolved paths (what a resumed run checks it reads again)."""
    return [os.path.abspath(str(item)) for item in inputs]


def _is_input(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(AVRO_SUFFIXES + TAR_SUFFIXES)


def _read_path(path: Path, schemas: Schemas) -> Iterator[Packet]:
    name = path.name.lower()
    if name.endswith(TAR_SUFFIXES):
        try:
            with tarfile.open(path) as archive:
                for member in archive:
                    if member.isfile() and member.name.lower().endswith(AVRO_SUFFIXES):
                        data = archive.extractfile(member).read()
                        yield from _split(f"{path}:{member.name}", data, schemas)
        except (tarfile.TarError, EOFError, OSError) as error:
            raise ValueError(f"{path}: not a readable tarball ({error})") from None
        return
    if not name.endswith(AVRO_SUFFIXES):
        raise ValueError(f"{path}: not an alert input; give .avro files, directories of them "
                         f"or tarballs ({', '.join(TAR_SUFFIXES)})")
    yield from _split(str(path), path.read_bytes(), schemas)


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
