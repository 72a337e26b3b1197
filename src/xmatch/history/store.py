"""The alert history of a data directory: every recorded alert a detection, every detection
on an object, durable, and queryable while it grows.

Layout under ``<data>/.history/``:

``history.json``
    how detections join objects (:class:`~xmatch.history.live.Association`), fixed when
    the history is made: a different one later is refused, since it would change objects.
``wal/``
    the write-ahead log (:mod:`xmatch.history.wal`): each recorded batch's detections,
    fsync'd before the batch is answered.
``snapshots/<sequence>/``
    the in-memory state (objects, alert ids seen) as of a log sequence, written by
    compaction into a temporary directory and renamed into place.

Compaction writes a snapshot, then publishes two HATS catalogs in the data directory
through the bulk writer (atomically, as every load): ``history_detections`` (the previous
version's rows and the log's newer records; each row carries its log sequence
``wal_seq``, so a record is never added twice whatever was interrupted) and
``history_objects`` (from the snapshot). Only then are log segments at or below both the
snapshot and the catalog deleted.

Reopening loads the newest snapshot and replays the log records after it through the
same association: the objects equal those of a run that never stopped, and an alert id
already recorded is recognised (``duplicate``), never recorded twice.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xmatch.errors import DamagedCatalogError, InputError, UnavailableError
from xmatch.history import wal
from xmatch.history.live import Association, LiveObjects, band_codes
from xmatch.kernels import history as kernels
from xmatch.loaders import Chunk
from xmatch.store.data_dir import DataDirectory

log = logging.getLogger(__name__)

HISTORY_DIR = ".history"
OBJECTS_CATALOG = "history_objects"
DETECTIONS_CATALOG = "history_detections"
HISTORY_CATALOGS = (OBJECTS_CATALOG, DETECTIONS_CATALOG)
#: Compact when this many detections wait in the log.
COMPACT_EVERY = 5_000_000
#: Logged detections not yet compacted kept in memory at most (the older are read back).
TAIL_ROWS_IN_MEMORY = 2_000_000
#: A detection's id: its log sequence, then its row in the batch.
BATCH_ROW_BITS = 24

DETECTION_SCHEMA = pa.schema([
    ("detection_id", pa.int64()), ("object_id", pa.int64()), ("alert_id", pa.int64()),
    ("survey", pa.string()), ("survey_object_id", pa.string()), ("mjd_tai", pa.float64()),
    ("ra_deg", pa.float64()), ("dec_deg", pa.float64()), ("band", pa.string()),
    ("mag", pa.float64()), ("mag_err", pa.float64()), ("wal_seq", pa.int64()),
])

#: The history of an alert, as the annotation carries it (docs/history.md).
STATES = ("new", "known", "duplicate", "failed")
HISTORY_SCHEMA = pa.schema([
    ("history_state", pa.string()), ("history_failure", pa.string()),
    ("history_object_id", pa.int64()), ("history_separation_arcsec", pa.float64()),
    ("history_detections", pa.int32()), ("history_first_mjd_tai", pa.float64()),
    ("history_last_mjd_tai", pa.float64()), ("history_surveys", pa.string()),
    ("history_peak_mag", pa.float64()), ("history_peak_band", pa.string()),
    ("history_previous_mag", pa.float64()), ("history_previous_mjd_tai", pa.float64()),
    ("history_rate_mag_per_day", pa.float64()),
])

_SNAPSHOT_ARRAYS = ("obj_xyz", "obj_sum", "obj_home", "obj_surveys", "obj_count",
                    "obj_first", "obj_last", "obj_peak_mag", "obj_peak_mjd",
                    "obj_peak_band", "obj_band_mag", "obj_band_mjd")


def _claim(root: Path):
    """The open lock file of the history at ``root``, locked for this process: one writer
    of a log at a time (a second process would interleave its records)."""
    handle = open(root / "owner.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise InputError(f"the alert history in {root} is in use by {owner}; stop it, or go "
                         "through its server (--server)") from None
    handle.truncate(0)
    handle.write(f"process {os.getpid()}")
    handle.flush()
    return handle


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AlertHistory:
    """The alert history of a data directory (see the module's description).

    Parameters
    ----------
    data : DataDirectory or path
    association : Association, optional
        How detections join objects; default: the one the history was made with (or, for
        a new history, 1.5" for every pair of surveys).
    compact_every : int
        Compact (in a background thread) once this many detections wait in the log;
        0: only when :meth:`compact` is called.
    """

    def __init__(self, data, association: Association | None = None, *,
                 compact_every: int = COMPACT_EVERY):
        self.data = data if isinstance(data, DataDirectory) else DataDirectory(data)
        self.root = self.data.root / HISTORY_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        self._owner = _claim(self.root)
        try:
            self._open(association, compact_every)
        except BaseException:
            self._owner.close()
            raise

    def _open(self, association: Association | None, compact_every: int) -> None:
        self.association = self._settled_association(association)
        self.compact_every = compact_every
        self._lock = threading.RLock()       # recording, in arrival order
        self._compacting = threading.Lock()  # one compaction at a time
        self._compactor: threading.Thread | None = None
        self._broken: str | None = None
        #: Called (without arguments) after each compaction has published the catalogs.
        self.on_compacted: list = []
        # Detections logged since the snapshot: (sequence, rows) of each record, and the
        # newest records' tables, up to TAIL_ROWS_IN_MEMORY rows (older ones are read back
        # from the log when asked for: memory stays bounded when compaction lags).
        self._pending: list[tuple[int, int]] = []
        self._pending_rows = 0
        self._tail: list[tuple[int, pa.Table]] = []
        self._tail_rows = 0
        self.live, self.snapshot_seq = self._load_snapshot()
        last = self.snapshot_seq
        for sequence, table in wal.read_log(self.root / "wal", self.snapshot_seq):
            self._replay(table)
            self._keep(sequence, table)
            last = sequence
        self.log = wal.WriteAheadLog(self.root / "wal", last + 1)

    # ------------------------------------------------------------------ opening

    def _settled_association(self, association: Association | None) -> Association:
        path = self.root / "history.json"
        if path.is_file():
            kept = json.loads(path.read_text())["association"]
            stored = Association(kept["radius_arcsec"], kept["pair_radius_arcsec"])
            if association is not None and association != stored:
                raise InputError(
                    f"the history in {self.root} associates with {stored.to_dict()}; "
                    f"{association.to_dict()} would change its objects (remove the history "
                    "to start another)")
            return stored
        association = association or Association()
        temporary = path.with_suffix(f".tmp-{uuid.uuid4().hex[:8]}")
        temporary.write_text(json.dumps({"association": association.to_dict()}, indent=1))
        os.replace(temporary, path)
        _fsync_dir(self.root)
        return association

    def _snapshot_dirs(self) -> list[Path]:
        folder = self.root / "snapshots"
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.name.isdigit())

    def _load_snapshot(self) -> tuple[LiveObjects, int]:
        found = self._snapshot_dirs()
        if not found:
            return LiveObjects(self.association), 0
        folder = found[-1]
        meta = json.loads((folder / "meta.json").read_text())
        live = LiveObjects(self.association, meta["surveys"])
        n = meta["objects"]
        live._ensure(max(n, meta["alerts"]))
        for name in _SNAPSHOT_ARRAYS:
            getattr(live, name)[:n] = np.load(folder / f"{name}.npy")
        live.counts[0] = n
        live.counts[1] = kernels.refile_kernel(live.grid_order, n, live.obj_sum, live.obj_next,
                                               live.grid_keys, live.grid_head)
        seen = np.load(folder / "seen.npy")
        kernels.reseen_kernel(seen["id"], seen["survey"], seen["object"], live.seen_id,
                              live.seen_survey, live.seen_object)
        live.counts[2] = len(seen)
        return live, int(meta["sequence"])

    # ------------------------------------------------------------------ recording

    def record(self, alerts: pa.Table) -> pa.Table:
        """Record alerts (rows of :data:`xmatch.alerts.fields.ALERT_SCHEMA`, in arrival
        order) and answer each one's history (:data:`HISTORY_SCHEMA`). The batch is on disk
        before this returns."""
        with self._lock:
            if self._broken:
                raise UnavailableError(f"the alert history cannot record: {self._broken}; "
                                       "restart to recover it from its log")
            failure = _failures(alerts)
            usable = np.equal(failure, None)
            survey = alerts.column("survey").to_numpy(zero_copy_only=False)
            codes = np.zeros(alerts.num_rows, np.int8)
            if usable.any():
                codes[usable] = self.live.survey_codes(survey[usable])
            arrays = _alert_arrays(alerts)
            recorded = self.live.record(arrays["ra"], arrays["dec"], codes, arrays["id"],
                                        arrays["mjd"], arrays["band"], arrays["mag"], usable)
            fresh = recorded.status <= kernels.KNOWN
            fresh &= recorded.status >= 0
            detections = _detections(alerts, recorded.objects, fresh, self.log.next_sequence)
            if detections.num_rows:
                try:
                    sequence = self.log.append(detections)
                except OSError as error:  # the state is ahead of the log: stop recording
                    self._broken = f"writing its log failed: {error}"
                    raise UnavailableError(f"the alert history cannot record: {self._broken}"
                                           ) from None
                self._keep(sequence, detections)
            answer = self._answer(alerts, recorded, failure)
        self._maybe_compact()
        return answer

    def _keep(self, sequence: int, detections: pa.Table) -> None:
        """Note a logged record; keep its table while the tail in memory allows."""
        self._pending.append((sequence, detections.num_rows))
        self._pending_rows += detections.num_rows
        self._tail.append((sequence, detections))
        self._tail_rows += detections.num_rows
        while self._tail_rows > TAIL_ROWS_IN_MEMORY and len(self._tail) > 1:
            self._tail_rows -= self._tail.pop(0)[1].num_rows

    def _forget_through(self, sequence: int) -> None:
        """Records at or below ``sequence`` are compacted."""
        self._pending = [p for p in self._pending if p[0] > sequence]
        self._pending_rows = sum(rows for _, rows in self._pending)
        self._tail = [t for t in self._tail if t[0] > sequence]
        self._tail_rows = sum(t.num_rows for _, t in self._tail)

    def no_compaction(self):
        """A context in which no compaction runs (one running is waited for): the
        published detections and the log stay as they are while they are read."""
        return self._compacting

    def logged_detections(self, after: int, through: int):
        """The detections of log records in (``after``, ``through``] that are not yet
        compacted, record by record: read back from the log, then from memory."""
        with self._lock:
            after = max(after, self.snapshot_seq)
            kept = [t for t in self._tail if after < t[0] <= through]
        first_kept = kept[0][0] if kept else through + 1
        if after + 1 < first_kept:
            for _, table in wal.read_log(self.root / "wal", after,
                                         min(through, first_kept - 1), repair=False):
                yield table
        for _, table in kept:
            yield table

    def _replay(self, detections: pa.Table) -> None:
        """Re-associate logged detections (the same order gives the same objects)."""
        n = detections.num_rows
        codes = self.live.survey_codes(detections.column("survey").to_numpy(
            zero_copy_only=False))
        recorded = self.live.record(
            detections.column("ra_deg").to_numpy(), detections.column("dec_deg").to_numpy(),
            codes, detections.column("alert_id").to_numpy(),
            detections.column("mjd_tai").to_numpy(),
            band_codes(detections.column("band").to_numpy(zero_copy_only=False)),
            detections.column("mag").to_numpy(zero_copy_only=False), np.ones(n, bool))
        logged = detections.column("object_id").to_numpy() - 1
        if not np.array_equal(recorded.objects, logged):
            raise DamagedCatalogError(
                f"history log in {self.root}: replaying gives other objects than were "
                "logged; the log does not belong to this snapshot")

    def _answer(self, alerts: pa.Table, recorded, failure: np.ndarray) -> pa.Table:
        live = self.live
        objects = recorded.objects
        found = objects >= 0
        at = np.where(found, objects, 0)
        status = np.array([*STATES[:3], STATES[3]], dtype=object)[
            np.where(found, recorded.status, 3)]
        peak_band = live.obj_peak_band[at]
        bands = np.array([*kernels.BANDS, None], dtype=object)
        mjd = alerts.column("mjd_tai").to_numpy(zero_copy_only=False)
        mag = alerts.column("mag").to_numpy(zero_copy_only=False)
        previous_mag = recorded.previous_mag.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(mjd > recorded.previous_mjd,
                            (mag - previous_mag) / (mjd - recorded.previous_mjd), np.nan)
        missing = ~found

        def floats(values):
            values = np.asarray(values, np.float64)
            return pa.array(values, pa.float64(), mask=missing | np.isnan(values))

        return pa.table([
            pa.array(status, pa.string()), pa.array(failure, pa.string()),
            pa.array(objects + 1, pa.int64(), mask=missing),
            floats(recorded.separation_arcsec),
            pa.array(live.obj_count[at], pa.int32(), mask=missing),
            floats(live.obj_first[at]), floats(live.obj_last[at]),
            pa.array(live.survey_names(live.obj_surveys[at]), pa.string(), mask=missing),
            floats(live.obj_peak_mag[at]),
            pa.array(bands[np.where(peak_band < 0, len(kernels.BANDS), peak_band)],
                     pa.string(), mask=missing),
            floats(previous_mag), floats(recorded.previous_mjd), floats(rate),
        ], schema=HISTORY_SCHEMA)

    # ------------------------------------------------------------------ compaction

    @property
    def pending(self) -> int:
        """Detections recorded since the last snapshot."""
        return self._pending_rows

    def _maybe_compact(self) -> None:
        if not self.compact_every or self.pending < self.compact_every:
            return
        if self._compactor is not None and self._compactor.is_alive():
            return
        self._compactor = threading.Thread(target=self._compact_logged, daemon=True,
                                           name="xmatch-history-compaction")
        self._compactor.start()

    def _compact_logged(self) -> None:
        try:
            self.compact()
        except Exception:  # noqa: BLE001 (a background failure is logged; the log is intact)
            log.exception("compaction of the alert history failed; it is retried later")

    def compact(self, *, progress: bool | None = False) -> None:
        """Snapshot the state, publish ``history_detections`` and ``history_objects``, then
        drop the log segments both cover. Recording goes on meanwhile."""
        with self._compacting:
            with self._lock:
                sequence = self.log.next_sequence - 1
                self.log.roll()
                state = self._state_copy(sequence)
            snapshot = self._write_snapshot(sequence, state)
            self._publish_detections(sequence, progress)
            if state["meta"]["objects"]:
                self._publish_objects(snapshot, progress)
            with self._lock:
                self.snapshot_seq = sequence
                self._forget_through(sequence)
                self.log.drop_through(sequence)
            for old in self._snapshot_dirs():
                if old != snapshot:
                    shutil.rmtree(old, ignore_errors=True)
        for listener in self.on_compacted:
            try:
                listener()
            except Exception:  # noqa: BLE001 (the history is compacted; a listener's failure is its own)
                log.exception("a listener of the history's compaction failed")

    def _state_copy(self, sequence: int) -> dict:
        """The state to snapshot, copied (recording goes on while it is written)."""
        live = self.live
        n = live.n_objects
        arrays = {name: getattr(live, name)[:n].copy() for name in _SNAPSHOT_ARRAYS}
        used = live.seen_survey != 0
        seen = np.empty(int(used.sum()), [("id", np.int64), ("survey", np.int8),
                                          ("object", np.int32)])
        seen["id"], seen["survey"], seen["object"] = (
            live.seen_id[used], live.seen_survey[used], live.seen_object[used])
        arrays["seen"] = seen
        meta = {"sequence": sequence, "objects": n, "alerts": len(seen),
                "surveys": list(live.surveys), "association": self.association.to_dict()}
        return {"arrays": arrays, "meta": meta}

    def _write_snapshot(self, sequence: int, state: dict) -> Path:
        folder = self.root / "snapshots"
        folder.mkdir(exist_ok=True)
        final = folder / f"{sequence:016d}"
        if final.is_dir():
            return final
        temporary = folder / f".tmp-{uuid.uuid4().hex[:8]}"
        temporary.mkdir()
        for name, values in state["arrays"].items():
            np.save(temporary / f"{name}.npy", values)
        (temporary / "meta.json").write_text(json.dumps(state["meta"]))
        for path in temporary.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(temporary)
        os.rename(temporary, final)
        _fsync_dir(folder)
        return final

    def _published_through(self) -> int:
        """The highest log sequence in the published detections (0: none)."""
        if DETECTIONS_CATALOG not in self.data.names():
            return 0
        from xmatch.store.catalog import open_catalog

        catalog = open_catalog(DETECTIONS_CATALOG, self.data)
        highest = 0
        for partition in catalog.partitions:  # from the row groups' statistics
            metadata = pq.ParquetFile(catalog.partition_path(partition)).metadata
            column = metadata.schema.names.index("wal_seq")
            for group in range(metadata.num_row_groups):
                statistics = metadata.row_group(group).column(column).statistics
                highest = max(highest, int(statistics.max))
        return highest

    def _publish_detections(self, sequence: int, progress) -> None:
        from xmatch.store.catalog import open_catalog
        from xmatch.store.writer import LoadOptions, build_catalog

        published = self._published_through()
        if published >= sequence:
            return
        sources = []
        if DETECTIONS_CATALOG in self.data.names():
            catalog = open_catalog(DETECTIONS_CATALOG, self.data)
            sources += [str(catalog.partition_path(p)) for p in catalog.partitions]
        found = wal.segments(self.root / "wal")
        for segment, following in zip(found, [*found[1:], None], strict=True):
            last = (wal.first_sequence(following) - 1 if following is not None
                    else self.log.next_sequence - 1)
            if wal.first_sequence(segment) <= sequence and last > published:
                sources.append(f"{segment}#{published}-{sequence}")
        build_catalog(detections_spec(), sources, HistoryLoader(), self.data,
                      LoadOptions(workers=1, progress=progress))

    def _publish_objects(self, snapshot: Path, progress) -> None:
        from xmatch.store.writer import LoadOptions, build_catalog

        build_catalog(objects_spec(), [str(snapshot)], HistoryLoader(), self.data,
                      LoadOptions(workers=1, progress=progress))

    def close(self) -> None:
        if self._compactor is not None:
            self._compactor.join()
        self.log.close()
        self._owner.close()  # releases the claim

    def __enter__(self) -> AlertHistory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    def objects(self, object_ids=None) -> pa.Table:
        """The objects as they are now (all, or those of ``object_ids``)."""
        with self._lock:
            if object_ids is None:
                return self.live.objects_table()
            ids = np.asarray(object_ids, np.int64).reshape(-1)
            bad = (ids < 1) | (ids > self.live.n_objects)
            if bad.any():
                raise InputError(f"object {int(ids[bad][0])} is not in the history (ids run "
                                 f"from 1 to {self.live.n_objects})")
            return self.live.objects_table(ids - 1)

    def detections(self, object_ids=None) -> pa.Table:
        """Every detection (of ``object_ids``, if given), compacted and recent, by time."""
        wanted = None if object_ids is None else pa.array(
            np.asarray(object_ids, np.int64).reshape(-1))
        for _ in range(3):  # a compaction that ends while reading moves what is read
            try:
                parts = self._detection_parts(wanted)
            except FileNotFoundError:
                continue
            if parts is not None:
                break
        else:
            with self.no_compaction():
                parts = self._detection_parts(wanted)
        if not parts:
            return DETECTION_SCHEMA.empty_table()
        table = pa.concat_tables([p.cast(DETECTION_SCHEMA) for p in parts])
        return table.sort_by([("object_id", "ascending"), ("mjd_tai", "ascending"),
                              ("detection_id", "ascending")])

    def _detection_parts(self, wanted) -> list[pa.Table] | None:
        """The pieces of :meth:`detections`; None if a compaction ended meanwhile (what
        was read may then miss the records it published)."""
        from xmatch.store.catalog import open_catalog

        with self._lock:
            through = self.snapshot_seq
            last = self.log.next_sequence - 1
        parts = []
        if DETECTIONS_CATALOG in self.data.names():
            catalog = open_catalog(DETECTIONS_CATALOG, self.data)
            flt = None if wanted is None else pc.field("object_id").isin(wanted)
            for partition in catalog.partitions:
                table = pq.read_table(catalog.partition_path(partition),
                                      columns=DETECTION_SCHEMA.names, filters=flt)
                parts.append(table.filter(pc.less_equal(table.column("wal_seq"), through)))
        for table in self.logged_detections(through, last):
            if wanted is not None:
                table = table.filter(pc.is_in(table.column("object_id"), wanted))
            parts.append(table)
        return parts if self.snapshot_seq == through else None

    def nbytes(self) -> dict:
        return self.live.nbytes()


# ---------------------------------------------------------------------- batches


def _failures(alerts: pa.Table) -> np.ndarray:
    """Why each alert cannot be recorded (None where it can)."""
    failure = alerts.column("error").to_numpy(zero_copy_only=False).copy()
    for column, reason in (("alert_id", "the history needs the alert's alert_id"),
                           ("survey", "the history needs the alert's survey"),
                           ("mjd_tai", "the history needs the alert's time (mjd_tai)")):
        missing = pc.is_null(alerts.column(column), nan_is_null=True).to_numpy(
            zero_copy_only=False)
        failure[missing & np.equal(failure, None)] = reason
    return failure


def _alert_arrays(alerts: pa.Table) -> dict:
    def floats(name):
        return alerts.column(name).to_numpy(zero_copy_only=False).astype(np.float64)

    return {"ra": floats("ra_deg"), "dec": floats("dec_deg"), "mjd": floats("mjd_tai"),
            "mag": floats("mag"),
            "id": alerts.column("alert_id").fill_null(0).to_numpy(),
            "band": band_codes(alerts.column("band").to_numpy(zero_copy_only=False))}


def _detections(alerts: pa.Table, objects: np.ndarray, fresh: np.ndarray,
                sequence: int) -> pa.Table:
    rows = np.flatnonzero(fresh)
    taken = alerts.take(pa.array(rows, pa.int64()))
    mag_err = (taken.column("mag_err") if "mag_err" in taken.column_names
               else pa.nulls(len(rows), pa.float64()))
    return pa.table([
        pa.array((np.int64(sequence) << BATCH_ROW_BITS) + np.arange(len(rows))),
        pa.array(objects[rows] + 1, pa.int64()), taken.column("alert_id"),
        taken.column("survey"), taken.column("object_id"), taken.column("mjd_tai"),
        taken.column("ra_deg"), taken.column("dec_deg"), taken.column("band"),
        taken.column("mag"), mag_err, pa.array(np.full(len(rows), sequence, np.int64)),
    ], schema=DETECTION_SCHEMA)


# ---------------------------------------------------------------------- publishing


def detections_spec():
    from xmatch.specs import CatalogSpec

    return CatalogSpec(
        name=DETECTIONS_CATALOG, ra="ra_deg", dec="dec_deg", id="detection_id",
        title="Alert history: detections",
        description="Every alert recorded by xmatch's alert history, with its object",
        key=("object_id", "alert_id", "survey", "mjd_tai", "band", "mag"),
        default_radius_arcsec=1.5)


def objects_spec():
    from xmatch.specs import CatalogSpec

    return CatalogSpec(
        name=OBJECTS_CATALOG, ra="ra_deg", dec="dec_deg", id="object_id",
        title="Alert history: objects",
        description="The objects of xmatch's alert history (position of the first "
                    "detection; mean position; light-curve summary)",
        key=("detections", "surveys", "first_mjd_tai", "last_mjd_tai", "peak_mag"),
        default_radius_arcsec=1.5)


def _read_log_slice(path: str, after: int, through: int) -> pa.Table:
    parts = [table for sequence, table in wal.read_segment(Path(path), last=False)
             if after < sequence <= through]
    return (pa.concat_tables(parts) if parts else DETECTION_SCHEMA.empty_table())


def _read_partition(path: str) -> pa.Table:
    return pq.read_table(path, columns=DETECTION_SCHEMA.names)


def _read_snapshot(path: str) -> pa.Table:
    folder = Path(path)
    meta = json.loads((folder / "meta.json").read_text())
    live = LiveObjects(Association(**{
        "radius_arcsec": meta["association"]["radius_arcsec"],
        "pair_radius_arcsec": meta["association"]["pair_radius_arcsec"]}), meta["surveys"])
    n = meta["objects"]
    live._ensure(n)
    for name in _SNAPSHOT_ARRAYS:
        getattr(live, name)[:n] = np.load(folder / f"{name}.npy")
    live.counts[0] = n
    return live.objects_table()


@dataclass(frozen=True)
class HistoryLoader:
    """The bulk writer's loader for compaction: log segments (``path#after-through``),
    partitions of the previous detections catalog, and snapshots (for the objects)."""

    name: str = "history"
    description: str = "the alert history's log, snapshots and previous catalog"
    synthetic: bool = False

    def chunks(self, source: str, spec, chunk_rows: int):
        if "#" in source:
            path, bounds = source.rsplit("#", 1)
            after, through = (int(v) for v in bounds.split("-"))
            yield Chunk(path, 1, None, _read_log_slice, (path, after, through))
        elif source.endswith(".parquet"):
            yield Chunk(source, 1, None, _read_partition, (source,))
        else:
            yield Chunk(source, 1, None, _read_snapshot, (source,))
