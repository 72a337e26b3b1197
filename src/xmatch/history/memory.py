"""What a deployment remembers of alerts and what its users watch for: the alert history,
the watchlists and watchmaps, and the gravitational-wave notices that become watchmaps.

:class:`AlertMemory` is the one owner of their consistency. An annotation batch is
recorded and matched with the watches under one lock, and a watch added while alerts
stream is back-matched in two steps: the history as it was when the addition began
(without the lock: it may take a minute), then, under the lock, the few batches recorded
meanwhile, and only then is the watch stored. Every detection is thus matched exactly
once, by back-matching or live; a process killed before the watch is stored leaves
nothing of it behind.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xmatch.alerts.annotation import WATCH_HITS_COLUMN
from xmatch.errors import InputError
from xmatch.history.store import DETECTION_SCHEMA, DETECTIONS_CATALOG, AlertHistory
from xmatch.store.data_dir import DataDirectory

WATCH_DIR = ".watch"

#: One hit of an alert in a watch, as annotations carry it.
HIT_TYPE = pa.struct([("watch", pa.string()), ("kind", pa.string()), ("entry", pa.int64()),
                      ("entry_name", pa.string()), ("separation_arcsec", pa.float64())])
#: Detections matched at once when back-matching (a chunk's arrays take ~100 MB).
BACK_MATCH_CHUNK = 2_000_000
#: Back-matches: the detection, then the hit.
BACK_MATCH_COLUMNS = ("detection_id", "object_id", "alert_id", "survey", "mjd_tai", "ra_deg",
                      "dec_deg")


class AlertMemory:
    """The alert history (optional) and the watches of a data directory.

    Parameters
    ----------
    data : DataDirectory or path
    history : bool
        Keep the alert history (record every annotated alert).
    history_options : dict
        Passed to :class:`~xmatch.history.store.AlertHistory` (``association``,
        ``compact_every``).
    """

    def __init__(self, data, *, history: bool = True, history_options: dict | None = None):
        from xmatch.watch import WatchStore

        self.data = data if isinstance(data, DataDirectory) else DataDirectory(data)
        self.history = (AlertHistory(self.data, **(history_options or {}))
                        if history else None)
        self.watches = WatchStore(self.data.root / WATCH_DIR)
        self._lock = threading.Lock()

    def close(self) -> None:
        if self.history is not None:
            self.history.close()

    def __enter__(self) -> AlertMemory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ alerts

    def annotate(self, alerts: pa.Table, *, history: bool, watches: bool
                 ) -> tuple[pa.Table | None, pa.Array | None]:
        """Record ``alerts`` (rows of ALERT_SCHEMA) in the history and find their watch
        hits, as asked: the ``history_`` columns and the ``watch_hits`` list column."""
        if history and self.history is None:
            raise InputError("this server keeps no alert history; start it with --history "
                             "to record alerts")
        with self._lock:
            recorded = self.history.record(alerts) if history else None
            hits = self.hits_of(alerts) if watches else None
        return recorded, hits

    def hits_of(self, alerts: pa.Table) -> pa.Array:
        """Each alert's hits in every watch (null for an alert without a position)."""
        usable = pc.is_null(alerts.column("error")).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(usable)
        ra = alerts.column("ra_deg").to_numpy(zero_copy_only=False)[rows]
        dec = alerts.column("dec_deg").to_numpy(zero_copy_only=False)[rows]
        found = self.watches.hits(ra, dec)
        query = found.column("query_index").to_numpy()
        counts = np.zeros(alerts.num_rows, np.int64)
        counts[rows] = np.bincount(query, minlength=len(rows))
        offsets = np.r_[0, np.cumsum(counts)].astype(np.int32)
        structs = pa.StructArray.from_arrays(
            [found.column(f.name).combine_chunks().cast(f.type) for f in HIT_TYPE],
            fields=list(HIT_TYPE))
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), structs,
                                        mask=pa.array(~usable))

    # ------------------------------------------------------------------ watches

    def add_watch(self, watch, *, replace: bool = False) -> tuple[dict, pa.Table]:
        """Store a :class:`~xmatch.watch.Watchlist` or :class:`~xmatch.watch.Watchmap`
        and answer its hits among the detections recorded so far (back-matching)."""
        from xmatch.watch import Watchlist

        if not replace and watch.name in self.watches.names():
            raise InputError(f"a watch named {watch.name!r} exists; replace it, or remove "
                             "it first")
        parts = []
        through = 0
        # No compaction meanwhile: it would replace the catalog and drop log records
        # being read (a compaction that wants to start waits for the back-match).
        with self.history.no_compaction() if self.history is not None else nullcontext():
            if self.history is not None:
                through = self.history.log.next_sequence - 1
                parts.append(self._back_match(watch, self._detections_through(through)))
            with self._lock:
                if self.history is not None:
                    parts.append(self._back_match(watch, self._detections_after(through)))
                if isinstance(watch, Watchlist):
                    self.watches.add_list(watch, replace=replace)
                else:
                    self.watches.add_map(watch, replace=replace)
        found = pa.concat_tables(parts) if parts else _empty_back_matches()
        described = next(d for d in self.watches.describe() if d["name"] == watch.name)
        return described, found.sort_by([("mjd_tai", "ascending"),
                                          ("detection_id", "ascending")])

    def remove_watch(self, name: str) -> None:
        with self._lock:
            self.watches.remove(name)

    def _detections_through(self, sequence: int):
        """Detections with a log sequence at or below ``sequence``, in pieces: the
        compacted catalog partition by partition, then the logged ones (the caller holds
        the history's compaction lock: the catalog and the log stay as they are)."""
        from xmatch.store.catalog import open_catalog

        history = self.history
        compacted = history.snapshot_seq
        if DETECTIONS_CATALOG in self.data.names():
            catalog = open_catalog(DETECTIONS_CATALOG, self.data)
            for partition in catalog.partitions:
                table = pq.read_table(catalog.partition_path(partition),
                                      columns=DETECTION_SCHEMA.names)
                seq = table.column("wal_seq")
                yield table.filter(pc.less_equal(seq, min(compacted, sequence)))
        yield from history.logged_detections(compacted, sequence)

    def _detections_after(self, sequence: int):
        yield from self.history.logged_detections(sequence,
                                                  self.history.log.next_sequence - 1)

    @staticmethod
    def _back_match(watch, pieces) -> pa.Table:
        from xmatch.watch import Watchlist

        found = []
        for table in _chunks(pieces, BACK_MATCH_CHUNK):
            ra = table.column("ra_deg").to_numpy()
            dec = table.column("dec_deg").to_numpy()
            if isinstance(watch, Watchlist):
                hits = watch.matches(ra, dec)
                rows = hits.column("query_index").to_numpy()
                entries = hits.column("entry").to_numpy()
                names = (pa.nulls(len(entries), pa.string()) if watch.entry_names is None
                         else watch.entry_names.take(pa.array(entries)))
                extra = {"watch": pa.array([watch.name] * len(rows), pa.string()),
                         "kind": pa.array(["list"] * len(rows), pa.string()),
                         "entry": pa.array(entries, pa.int64()), "entry_name": names,
                         "separation_arcsec": hits.column("separation_arcsec")}
            else:
                rows = np.flatnonzero(watch.contains(ra, dec))
                extra = {"watch": pa.array([watch.name] * len(rows), pa.string()),
                         "kind": pa.array(["map"] * len(rows), pa.string()),
                         "entry": pa.nulls(len(rows), pa.int64()),
                         "entry_name": pa.nulls(len(rows), pa.string()),
                         "separation_arcsec": pa.nulls(len(rows), pa.float64())}
            taken = table.select(list(BACK_MATCH_COLUMNS)).take(pa.array(rows, pa.int64()))
            for name, values in extra.items():
                taken = taken.append_column(name, values)
            found.append(taken)
        return pa.concat_tables(found) if found else _empty_back_matches()


def _chunks(pieces, rows: int):
    """The tables of ``pieces`` joined into chunks of at least ``rows`` rows (the last
    smaller): each match call has a fixed cost, and the log's pieces are one batch each."""
    waiting, count = [], 0
    for table in pieces:
        if table.num_rows:
            waiting.append(table)
            count += table.num_rows
        if count >= rows:
            yield pa.concat_tables(waiting).combine_chunks()
            waiting, count = [], 0
    if waiting:
        yield pa.concat_tables(waiting).combine_chunks()


def _empty_back_matches() -> pa.Table:
    fields = [DETECTION_SCHEMA.field(c) for c in BACK_MATCH_COLUMNS] + list(HIT_TYPE)
    return pa.schema(fields).empty_table()


__all__ = ["AlertMemory", "HIT_TYPE", "WATCH_HITS_COLUMN"]
