"""The watches of a deployment (watchlists and watchmaps), kept on disk and answered together.

Layout: one Parquet file per watch, ``<directory>/<name>.parquet``, whatever its kind:

* a watchlist: :meth:`Watchlist.entries_table` (``entry``, ``ra_deg``, ``dec_deg``,
  ``radius_arcsec``, ``name``);
* a watchmap: its order-29 ranges, columns ``start`` and ``stop`` (int64, ``[start, stop)``);

each with the schema metadata key ``xmatch.watch``: JSON ``{"format": 1, "kind": "list" |
"map", "name", "source", "level", "added"}`` (``added``: UTC, ISO 8601). Maps are Parquet
rather than MOC FITS so that every watch is one file in one format: replacing a list by a
map of the same name is then a single rename, and a map's level and source travel with it.
:meth:`Watchmap.moc` gives the MOC to export.

Crash safety: a watch is written to ``.<name>.<pid>.<random>.tmp`` in the same directory,
fsync'd, then renamed into place (``rename(2)``, atomic) and the directory fsync'd; adding
without ``replace`` links instead (``link(2)`` fails if the name exists, atomically, so two
processes adding one name cannot both win). Removal is one unlink. A process killed at any
point leaves the old watch or the new one, never part of one; the temporary files of dead
processes are deleted when a store is opened. Files whose names start with ``.`` and files
that are not ``<watch name>.parquet`` are never read as watches.

Several processes may share a directory: each :class:`WatchStore` sees its own changes at
once and the others' after :meth:`WatchStore.refresh`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from xmatch.errors import CatalogNotFoundError, DamagedCatalogError, InputError
from xmatch.index.region_index import ROW_COLUMN, QueryPositions, RegionIndex
from xmatch.index.results import QUERY_COLUMN, SEPARATION_COLUMN
from xmatch.store.data_dir import _fsync_dir, _pid_alive
from xmatch.watch.lists import ENTRY_COLUMN, WATCH_NAME_PATTERN, Watchlist
from xmatch.watch.maps import Watchmap

SUFFIX = ".parquet"
TEMPORARY_SUFFIX = ".tmp"
METADATA_KEY = b"xmatch.watch"
FORMAT_VERSION = 1
LIST, MAP = "list", "map"

#: Columns of :meth:`WatchStore.hits`.
WATCH_COLUMN, KIND_COLUMN, ENTRY_NAME_COLUMN = "watch", "kind", "entry_name"
HITS_SCHEMA = pa.schema([
    pa.field(QUERY_COLUMN, pa.int64()),
    pa.field(WATCH_COLUMN, pa.string()),
    pa.field(KIND_COLUMN, pa.string()),
    pa.field(ENTRY_COLUMN, pa.int64()),
    pa.field(ENTRY_NAME_COLUMN, pa.string()),
    pa.field(SEPARATION_COLUMN, pa.float64(), metadata={b"unit": b"arcsec"}),
])
_KINDS = pa.array([LIST, MAP])


@dataclass(frozen=True)
class _Record:
    """A watch as the store holds it: the watch, when it was added, and the identity of its
    file (inode, size, modification time), so :meth:`WatchStore.refresh` sees changes."""

    watch: Watchlist | Watchmap
    added: str
    stamp: tuple

    @property
    def kind(self) -> str:
        return LIST if isinstance(self.watch, Watchlist) else MAP


class _ListsIndex:
    """One RegionIndex over the entries of all lists, built on first use: a position is
    looked up once, whatever the number of lists."""

    def __init__(self, lists: tuple[Watchlist, ...]):
        self.lists = lists
        self.names = [wl.name for wl in lists]
        self.offsets = np.r_[0, np.cumsum([len(wl) for wl in lists])].astype(np.int64)
        self._built = None
        self._lock = threading.Lock()

    def built(self) -> tuple[RegionIndex, pa.Array]:
        """(the index over every entry, every entry's name)."""
        with self._lock:
            if self._built is None:
                lists = self.lists
                index = RegionIndex.from_arrays(
                    np.concatenate([wl.ra_deg for wl in lists]),
                    np.concatenate([wl.dec_deg for wl in lists]),
                    np.concatenate([wl.radius_arcsec for wl in lists]), name="watchlists")
                names = pa.concat_arrays([
                    wl.entry_names if wl.entry_names is not None
                    else pa.nulls(len(wl), pa.string()) for wl in lists])
                self._built = (index, names)
            return self._built


@dataclass(frozen=True)
class _Snapshot:
    """The watches at one version. Never changed: a change makes a new snapshot, so
    :meth:`WatchStore.hits` reads a consistent set without a lock."""

    version: int
    records: dict = field(default_factory=dict)
    lists_index: _ListsIndex | None = None

    def changed(self, records: dict) -> _Snapshot:
        lists = tuple(records[name].watch for name in sorted(records)
                      if records[name].kind == LIST)
        index = self.lists_index
        same = index is not None and len(index.lists) == len(lists) and all(
            a is b for a, b in zip(index.lists, lists, strict=True))
        if not same:
            index = _ListsIndex(lists) if lists else None
        return _Snapshot(self.version + 1, records, index)


class WatchStore:
    """The watchlists and watchmaps of a deployment, persisted under ``directory``
    (created if absent), answered together by :meth:`hits`.

    Parameters
    ----------
    directory : str or pathlib.Path
        Where the watches live (a deployment keeps them in ``<data dir>/.watch``).

    Raises
    ------
    DamagedCatalogError
        A watch file that cannot be read back (damaged on disk, or edited by hand).
    """

    def __init__(self, directory):
        self.directory = Path(directory).expanduser()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._mutating = threading.Lock()
        self._clean_stale_temporaries()
        self._snapshot = _Snapshot(-1).changed(self._scan({}))

    def __repr__(self) -> str:
        return f"WatchStore({str(self.directory)!r})"

    # ------------------------------------------------------------------ reading

    @property
    def version(self) -> int:
        """A number bumped on every change of the watches this store sees (0 when
        opened): a server rebuilds what it derives from the watches when it changes."""
        return self._snapshot.version

    def names(self) -> list[str]:
        """The watch names, sorted."""
        return sorted(self._snapshot.records)

    def __len__(self) -> int:
        return len(self._snapshot.records)

    def __contains__(self, name) -> bool:
        return name in self._snapshot.records

    def get(self, name: str) -> Watchlist | Watchmap:
        """The watch ``name``. A watchlist builds its index on its first ``matches`` and
        keeps it (back-match with the list you added to keep the store lean)."""
        return self._record(name).watch

    def describe(self) -> list[dict]:
        """One dict per watch, by name: ``name``, ``kind`` (``"list"`` or ``"map"``),
        ``entries`` (lists; None for maps), ``sky_fraction`` and ``level`` (maps; None for
        lists and for MOCs' level), ``source``, ``added`` (UTC, ISO 8601)."""
        records = self._snapshot.records
        described = []
        for name in sorted(records):
            record = records[name]
            watch = record.watch
            is_list = record.kind == LIST
            described.append({
                "name": name, "kind": record.kind,
                "entries": len(watch) if is_list else None,
                "sky_fraction": None if is_list else watch.sky_fraction,
                "level": None if is_list else watch.level,
                "source": watch.source, "added": record.added})
        return described

    def hits(self, ra_deg, dec_deg=None) -> pa.Table:
        """Every watch each position falls in, over all watches at once.

        Columns: ``query_index`` (int64), ``watch`` (its name), ``kind`` (``"list"`` or
        ``"map"``), ``entry`` (int64, the entry's 0-based row; null for maps),
        ``entry_name`` (null for maps and unnamed entries) and ``separation_arcsec``
        (from the entry's centre; null for maps). Rows are grouped by ``query_index``
        ascending; within a position, list hits come first, closest first (ties by watch
        name, then entry), then map hits by watch name.

        Positions in any form :mod:`xmatch.sky.coords` reads, or a
        :class:`~xmatch.index.region_index.QueryPositions` shared with other lookups. Maps
        are tested on the order-29 pixels those compute (numba), which equal cdshealpix's
        (:meth:`Watchmap.contains`) except, rarely, for a position on a pixel's edge
        (pixels of 0.4 mas). The first call after a list changed builds the index of all
        lists' entries (about 6 s per million entries; :meth:`prepare` builds it ahead).
        """
        snapshot = self._snapshot
        queries = QueryPositions.of(ra_deg, dec_deg)
        names = sorted(snapshot.records)
        watch_id = {name: i for i, name in enumerate(names)}
        query, watch, kind, entry, row, separation = [], [], [], [], [], []
        if snapshot.lists_index is not None and len(queries):
            lists = snapshot.lists_index
            index, _ = lists.built()
            found = index.containing(queries)
            rows = found.column(ROW_COLUMN).to_numpy()
            of_list = np.searchsorted(lists.offsets, rows, side="right") - 1
            query.append(found.column(QUERY_COLUMN).to_numpy())
            watch.append(np.array([watch_id[n] for n in lists.names], np.int64)[of_list])
            kind.append(np.zeros(len(rows), np.int8))
            entry.append(rows - lists.offsets[of_list])
            row.append(rows)
            separation.append(found.column(SEPARATION_COLUMN).to_numpy())
        for name in names:
            record = snapshot.records[name]
            if record.kind != MAP or not len(queries):
                continue
            inside = record.watch.inside_sorted(queries.pixels)
            n = len(inside)
            query.append(queries.by_pixel[inside].astype(np.int64))
            watch.append(np.full(n, watch_id[name], np.int64))
            kind.append(np.ones(n, np.int8))
            entry.append(np.full(n, -1, np.int64))
            row.append(np.full(n, -1, np.int64))
            separation.append(np.zeros(n))
        if not query:
            return HITS_SCHEMA.empty_table()
        query, watch, kind, entry, row, separation = (
            np.concatenate(a) for a in (query, watch, kind, entry, row, separation))
        order = np.lexsort((entry, watch, separation, kind, query))
        query, watch, kind, entry, row, separation = (
            a[order] for a in (query, watch, kind, entry, row, separation))
        is_map = kind == 1
        entry_names = pa.nulls(len(order), pa.string())
        if snapshot.lists_index is not None and not is_map.all():
            _, all_names = snapshot.lists_index.built()
            entry_names = all_names.take(pa.array(row, mask=is_map))
        return pa.table([pa.array(query), pa.array(names, pa.string()).take(pa.array(watch)),
                         _KINDS.take(pa.array(kind)), pa.array(entry, mask=is_map),
                         entry_names, pa.array(separation, mask=is_map)], schema=HITS_SCHEMA)

    def prepare(self) -> None:
        """Build now what :meth:`hits` builds on first use (the index of all lists)."""
        if self._snapshot.lists_index is not None:
            self._snapshot.lists_index.built()

    # ------------------------------------------------------------------ changing

    def add_list(self, watchlist: Watchlist, replace: bool = False) -> None:
        """Add ``watchlist`` under its name; with ``replace``, in place of any watch of that
        name (a list or a map; an unknown name is simply added)."""
        if not isinstance(watchlist, Watchlist):
            raise InputError(f"add_list takes a Watchlist, not {type(watchlist).__name__}")
        # The store's own copy: an index the caller builds (back-matching) stays theirs.
        self._add(dataclasses.replace(watchlist), watchlist.entries_table(), replace)

    def add_map(self, watchmap: Watchmap, replace: bool = False) -> None:
        """Add ``watchmap`` under its name; ``replace`` as :meth:`add_list`."""
        if not isinstance(watchmap, Watchmap):
            raise InputError(f"add_map takes a Watchmap, not {type(watchmap).__name__}")
        ranges = watchmap.ranges29
        table = pa.table({"start": pa.array(ranges[:, 0], pa.int64()),
                          "stop": pa.array(ranges[:, 1], pa.int64())})
        self._add(watchmap, table, replace)

    def remove(self, name: str) -> None:
        """Remove the watch ``name`` (``CatalogNotFoundError`` if there is none)."""
        with self._mutating:
            path = self._path(name) if _is_watch_name(name) else None
            try:
                if path is None:
                    raise FileNotFoundError(name)
                path.unlink()
            except FileNotFoundError:
                raise CatalogNotFoundError(self._not_found(name)) from None
            _fsync_dir(self.directory)
            records = dict(self._snapshot.records)
            records.pop(name, None)
            self._snapshot = self._snapshot.changed(records)

    def refresh(self) -> bool:
        """See what other processes changed in the directory (a listing and one ``stat``
        per watch; only changed files are read). True if anything changed (and
        :attr:`version` was bumped)."""
        with self._mutating:
            records = self._scan(self._snapshot.records)
            if records == self._snapshot.records:
                return False
            self._snapshot = self._snapshot.changed(records)
            return True

    # ------------------------------------------------------------------ internals

    def _record(self, name: str) -> _Record:
        record = self._snapshot.records.get(name)
        if record is None:
            raise CatalogNotFoundError(self._not_found(name))
        return record

    def _not_found(self, name) -> str:
        known = ", ".join(self.names()) or "none"
        return f"no watch named {name!r} in {self.directory} (watches: {known})"

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}{SUFFIX}"

    def _add(self, watch, table: pa.Table, replace: bool) -> None:
        added = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        is_list = isinstance(watch, Watchlist)
        metadata = {"format": FORMAT_VERSION, "kind": LIST if is_list else MAP,
                    "name": watch.name, "source": watch.source,
                    "level": None if is_list else watch.level, "added": added}
        table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata).encode()})
        with self._mutating:
            stamp = self._write(watch.name, table, replace)
            records = dict(self._snapshot.records)
            records[watch.name] = _Record(watch, added, stamp)
            self._snapshot = self._snapshot.changed(records)

    def _write(self, name: str, table: pa.Table, replace: bool) -> tuple:
        """Write ``table`` as the watch ``name`` atomically (see the module docstring);
        the stamp of the file written."""
        path = self._path(name)
        temporary = self.directory / (f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
                                      f"{TEMPORARY_SUFFIX}")
        exists = InputError(f"a watch named {name!r} exists already in {self.directory}; "
                            "remove it first or add with replace")
        try:
            with open(temporary, "wb") as handle:
                pq.write_table(table, handle)
                handle.flush()
                os.fsync(handle.fileno())
                # The file's identity once published: rename and link keep the inode and
                # the modification time.
                stamp = _stamp(os.fstat(handle.fileno()))
            if replace:
                os.replace(temporary, path)  # the atomic step
            else:
                try:
                    os.link(temporary, path)  # the atomic step; fails if the name exists
                except FileExistsError:
                    raise exists from None
                except OSError:  # a file system without hard links: check, then rename
                    if path.exists():
                        raise exists from None
                    os.replace(temporary, path)
            _fsync_dir(self.directory)
        finally:
            temporary.unlink(missing_ok=True)
        return stamp

    def _scan(self, known: dict) -> dict:
        """The watches in the directory: ``known`` records kept where their file has not
        changed, the others read."""
        with os.scandir(self.directory) as listing:
            entries = list(listing)
        records = {}
        for entry in entries:
            if not entry.name.endswith(SUFFIX):
                continue
            name = entry.name[:-len(SUFFIX)]
            if not _is_watch_name(name):
                continue
            try:
                stamp = _stamp(entry.stat())
                record = known.get(name)
                if record is None or record.stamp != stamp:
                    record = _read_watch(Path(entry.path), name, stamp)
            except FileNotFoundError:  # removed by another process while we looked
                continue
            records[name] = record
        return records

    def _clean_stale_temporaries(self) -> None:
        """Delete the temporary files of processes that died writing them."""
        with os.scandir(self.directory) as listing:
            entries = list(listing)
        for entry in entries:
            if not (entry.name.startswith(".") and entry.name.endswith(TEMPORARY_SUFFIX)):
                continue
            try:
                pid = int(entry.name[1:].rsplit(".", 3)[-3])
            except (ValueError, IndexError):
                continue
            if not _pid_alive(pid):
                Path(entry.path).unlink(missing_ok=True)


def _is_watch_name(name) -> bool:
    return isinstance(name, str) and WATCH_NAME_PATTERN.fullmatch(name) is not None


def _stamp(stat: os.stat_result) -> tuple:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _read_watch(path: Path, name: str, stamp: tuple) -> _Record:
    """A watch file read back, checked as a new watch is."""
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as error:
        raise DamagedCatalogError(f"watch file {path} cannot be read: {error}") from None
    try:
        metadata = json.loads((table.schema.metadata or {})[METADATA_KEY])
        if metadata["name"] != name:
            raise ValueError(f"it holds the watch {metadata['name']!r}")
        if metadata["kind"] == LIST:
            names = table.column("name")
            watch = Watchlist(name, table.column("ra_deg").to_numpy(),
                              table.column("dec_deg").to_numpy(),
                              table.column("radius_arcsec").to_numpy(),
                              None if names.null_count == len(names) else names,
                              metadata["source"])
        elif metadata["kind"] == MAP:
            ranges = np.stack([table.column("start").to_numpy(),
                               table.column("stop").to_numpy()], axis=1)
            watch = Watchmap(name, ranges, metadata["source"], metadata["level"])
        else:
            raise ValueError(f"unknown kind {metadata['kind']!r}")
        return _Record(watch, metadata["added"], stamp)
    except (KeyError, ValueError, TypeError, pa.ArrowException) as error:
        # InputError is a ValueError: a file that fails the checks of a new watch.
        raise DamagedCatalogError(f"watch file {path} is not a watch xmatch wrote: "
                                  f"{error}") from None
