"""Loaders: one module per source format, turning raw input into Arrow tables.

A loader is any object with a ``name``, a one-line ``description`` and a method
``chunks(source, spec, chunk_rows)`` that yields :class:`Chunk` s. A chunk is a small,
picklable recipe (a module-level function and its arguments) that a worker process (or a
Dask worker) turns into one Arrow table; loaders never hold the whole input in memory.

Loaders are found through the ``xmatch.loaders`` entry-point group, so a third-party
package adds one by declaring, in its own ``pyproject.toml``::

    [project.entry-points."xmatch.loaders"]
    my_format = "my_package.my_module:LOADER"
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Protocol

import pyarrow as pa

ENTRY_POINT_GROUP = "xmatch.loaders"


@dataclass(frozen=True)
class Chunk:
    """One piece of one source: ``read(*args)`` gives its rows.

    ``first_row`` is the 1-based number of the chunk's first data row in ``source``, so
    errors can name the row in the user's file.
    """

    source: str
    first_row: int
    n_rows: int | None
    read: Callable[..., pa.Table]
    args: tuple

    def load(self) -> pa.Table:
        return self.read(*self.args)


class Loader(Protocol):
    name: str
    description: str
    synthetic: bool

    def chunks(self, source: str, spec, chunk_rows: int) -> Iterator[Chunk]: ...


def passthrough_table(table: pa.Table) -> pa.Table:
    """Chunk reader for rows that were already parsed when the chunk was made."""
    return table


def inline_chunks(table: pa.Table, source: str, chunk_rows: int) -> Iterator[Chunk]:
    """Chunks of a table already parsed in full (formats without random access)."""
    for start in range(0, table.num_rows, chunk_rows):
        piece = table.slice(start, chunk_rows)
        yield Chunk(source, start + 1, piece.num_rows, passthrough_table, (piece,))


def read_source_bytes(path: str, size: int = -1) -> bytes:
    """The first ``size`` bytes of ``path`` (all by default), as a LoadError if unreadable."""
    from xmatch.errors import LoadError

    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror}", source=path) from None


def available_loaders() -> dict[str, object]:
    """Every loader registered in the ``xmatch.loaders`` entry-point group, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def get_loader(name: str):
    """The loader registered as ``name``; ``KeyError`` lists the known ones."""
    found = available_loaders()
    if name not in found:
        raise KeyError(f"no loader named '{name}'; installed loaders: {', '.join(sorted(found))}")
    return found[name].load()
