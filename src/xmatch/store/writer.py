"""Bulk loading: any loader's chunks in, a published HATS catalog out.

The work is split like a map-reduce so it runs on the local cores or, unchanged, on a Dask
cluster (``LoadOptions(scheduler=ADDRESS)``, :mod:`xmatch.scheduling`):

* **map** (:func:`map_chunk`, one task per chunk): read the chunk, validate and convert
  the columns, compute ``_healpix_29``, sort the chunk by it and spill it as an Arrow IPC
  file; return a sparse histogram of the chunk at ``highest_order``.
* **plan** (driver): sum the histograms and choose adaptive partitions
  (:func:`~xmatch.store.partitioning.plan_partitions`).
* **reduce** (:func:`reduce_partition`, one task per partition): since every spill is
  sorted, a partition is one contiguous slice of each spill; concatenate the slices,
  sort, write ``Npix=N.parquet`` and its checksum.

Memory stays bounded by ``chunk_rows`` (map) and ``threshold_rows`` (reduce) per worker,
whatever the input size. Everything is written in a staging directory and published by
one atomic rename (:meth:`~xmatch.store.data_dir.DataDirectory.publish`).
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xmatch import __version__
from xmatch.errors import LoadError, XmatchError, missing_column, no_rows, not_numeric
from xmatch.io.tables import position_problem
from xmatch.scheduling import (
    TASK_RETRIES,
    check_choice,
    dask_client,
    lost_with_workers,
    worker_threads,
)
from xmatch.sky import healpix
from xmatch.store import paths
from xmatch.store.data_dir import DataDirectory
from xmatch.store.manifest import write_manifest
from xmatch.store.partitioning import add_sparse_counts, plan_partitions, sparse_histogram

SKYMAP_ORDER = 8
MAX_SKIPPED_EXAMPLES = 20
NUMERIC_ROLES = ("ra", "dec", "epoch", "pmra", "pmdec", "parallax", "radial_velocity",
                 "positional_error", "distance")
ROW_GROUP_ROWS = 200_000
ROW_ID_SOURCE_SHIFT = 40  # row ids of generated keys: source index << 40 | row number


@dataclass(frozen=True)
class LoadOptions:
    """How a load runs; the partitioning defaults come from the spec.

    ``workers`` processes run the map and reduce tasks (default: one per core; 1 runs them in
    this process), or the workers of the Dask cluster whose scheduler is at ``scheduler``
    (every worker must see the data directory at the same path). ``skip_invalid`` drops
    rows with bad coordinates or values instead of failing, and counts them in the
    catalog's provenance.
    """

    chunk_rows: int = 1_000_000
    workers: int | None = None
    skip_invalid: bool = False
    threshold_rows: int | None = None
    highest_order: int | None = None
    compression: str = "snappy"
    progress: bool | None = None  # None: show bars only on a terminal
    scheduler: str | None = None


@dataclass
class MapResult:
    spill: str
    source_index: int
    rows: int
    skipped: int
    examples: list
    pixels: np.ndarray | None
    counts: np.ndarray | None
    schema: pa.Schema


@dataclass
class ReduceResult:
    order: int
    pixel: int
    rows: int
    relpath: str
    metadata: object
    sha256: str
    motion_bounds: dict | None = None  # how fast the partition's rows move (proper motions)


# ---------------------------------------------------------------- map


def _release_memory() -> None:
    """Hand freed Arrow buffers back to the OS between tasks; Arrow's allocator keeps
    them otherwise, and a long load would hold its high-water mark in every worker."""
    pa.default_memory_pool().release_unused()


def _first_bad_cast(values: pa.Array, target: pa.DataType) -> int:
    """Index of the first element of ``values`` that does not cast (bisection)."""
    lo, hi = 0, len(values)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(values.slice(lo, mid - lo), target)
            lo = mid
        except pa.ArrowInvalid:
            hi = mid
    return lo


def _to_float64(values, source: str, first_row: int, column: str) -> pa.Array:
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    kind = values.type
    if pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        return pc.cast(values, pa.float64())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        try:
            return pc.cast(values, pa.float64())
        except pa.ArrowInvalid:
            bad = _first_bad_cast(values, pa.float64())
            raise LoadError(not_numeric(values[bad].as_py()), source=source,
                            row=first_row + bad, column=column) from None
    raise LoadError(f"has type {kind}, a number was expected", source=source, column=column)


def _angles_to_float64(values, kind: str, source: str, column: str,
                       unit: str | None) -> pa.Array:
    """A position column as float64 degrees: numbers in degrees, or in the column's angle
    unit when it has one (hours, radians...); text read as degrees or sexagesimal (astropy
    ``Angle``); missing or unreadable values as nulls, which the caller reports or skips."""
    from xmatch.sky.coords import parse_angles

    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    kind_of = values.type
    if pa.types.is_floating(kind_of) or pa.types.is_integer(kind_of) or \
            pa.types.is_decimal(kind_of):
        degrees = pc.cast(values, pa.float64())
        scale = _degrees_per(unit, source, column)
        return degrees if scale == 1.0 else pc.multiply(degrees, scale)
    if not (pa.types.is_string(kind_of) or pa.types.is_large_string(kind_of)
            or pa.types.is_null(kind_of)):
        raise LoadError(f"has type {kind_of}, an angle was expected", source=source,
                        column=column)
    degrees, bad, _ = parse_angles(values, kind)
    return pa.array(degrees, pa.float64(), mask=bad)


def _degrees_per(unit: str | None, source: str, column: str) -> float:
    """Degrees in one ``unit`` of a position column (1 without a unit: degrees)."""
    if unit is None or unit in ("deg", "degree", "degrees"):
        return 1.0
    import astropy.units as u

    try:
        return float(u.Unit(unit).to(u.deg))
    except (ValueError, u.UnitsError):
        raise LoadError(f"has unit {unit!r}, not an angle", source=source,
                        column=column) from None


def standardize(raw: pa.Table, spec, source: str, first_row: int, source_index: int,
                skip_invalid: bool) -> tuple[pa.Table, int, list]:
    """Select, convert and validate the columns of one chunk.

    Returns the clean table (roles first, then kept columns, then ``_healpix_29``), the
    number of rows dropped and a few examples of why (only with ``skip_invalid``).
    """
    available = raw.column_names
    roles = spec.role_columns
    missing = spec.first_missing_column(available)
    if missing is not None:
        raise LoadError(missing_column(missing, available), source=source, column=missing)
    ordered = list(dict.fromkeys(
        [c for c in roles.values() if c in available]
        + ([c for c in spec.keep if c in available] if spec.keep is not None else available)))
    ordered = [c for c in ordered if c != paths.HEALPIX29_COLUMN]
    columns = {name: raw.column(name) for name in ordered}
    written = {}  # the position values as the source has them, for messages
    for kind in ("ra", "dec"):
        name = roles[kind]
        written[kind] = columns[name]
        unit = (raw.schema.field(name).metadata or {}).get(b"unit")
        columns[name] = _angles_to_float64(columns[name], kind, source, name,
                                           unit.decode() if unit else None)
    for role in NUMERIC_ROLES:
        name = roles.get(role)
        if name in columns and role not in ("ra", "dec"):
            values = _to_float64(columns[name], source, first_row, name)
            if role not in ("ra", "dec"):
                # FITS has no null for floats: NaN is how an absent proper motion,
                # parallax or epoch arrives; store it as the null it means.
                values = pc.if_else(pc.is_nan(values), pa.scalar(None, pa.float64()), values)
            columns[name] = values
    if spec.strip_whitespace:
        for name, values in columns.items():
            if pa.types.is_string(values.type):
                columns[name] = pc.utf8_rtrim_whitespace(values)

    ra = np.asarray(columns[spec.ra].to_numpy(zero_copy_only=False), dtype=np.float64)
    dec = np.asarray(columns[spec.dec].to_numpy(zero_copy_only=False), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad_ra = ~((ra >= 0) & (ra <= 360))  # also catches NaN and nulls (NaN after to_numpy)
        bad_dec = ~((dec >= -90) & (dec <= 90))
    bad_id = np.zeros(len(ra), bool)
    if spec.id is not None:
        bad_id = np.asarray(columns[spec.id].is_null().to_numpy(zero_copy_only=False))
    bad = bad_ra | bad_dec | bad_id
    skipped, examples = 0, []
    if bad.any():
        index = np.flatnonzero(bad)
        for i in index[: MAX_SKIPPED_EXAMPLES if skip_invalid else 1]:
            if bad_id[i]:
                column, message = spec.id, "identifier is missing (null)"
            else:
                kind = "ra" if bad_ra[i] else "dec"
                column, message = roles[kind], position_problem(kind, written[kind][i].as_py())
            if not skip_invalid:
                raise LoadError(message, source=source, row=first_row + int(i), column=column)
            examples.append({"source": source, "row": first_row + int(i), "column": column,
                             "problem": message})
        keep = pa.array(~bad)
        columns = {name: pc.filter(values, keep) for name, values in columns.items()}
        skipped = len(index)
        ra, dec = ra[~bad], dec[~bad]

    if spec.id is None:
        rows = np.flatnonzero(~bad) + first_row
        ids = (np.int64(source_index) << ROW_ID_SOURCE_SHIFT) | rows.astype(np.int64)
        columns = {paths.ROW_ID_COLUMN: pa.array(ids), **columns}
    columns[paths.HEALPIX29_COLUMN] = pa.array(healpix.radec_to_healpix29(ra, dec))
    fields = [pa.field(name, values.type) for name, values in columns.items()]
    for i, f in enumerate(fields):
        if f.name in raw.schema.names and raw.schema.field(f.name).metadata:
            fields[i] = f.with_metadata(raw.schema.field(f.name).metadata)
        if f.name in (spec.ra, spec.dec):  # converted to degrees above, whatever they were
            fields[i] = fields[i].with_metadata({**(fields[i].metadata or {}), b"unit": b"deg"})
    return pa.table(list(columns.values()), schema=pa.schema(fields)), skipped, examples


def _argsort_keeping_ties(keys: np.ndarray) -> np.ndarray:
    """Stable argsort at the speed of numpy's vectorised (unstable) quicksort.

    Only runs of equal keys (duplicate positions: rare) are re-sorted by input index, so
    rows with equal ``_healpix_29`` stay in input order however the input is chunked.
    """
    order = np.argsort(keys)
    ordered = keys[order]
    equal_next = ordered[1:] == ordered[:-1]
    if equal_next.any():
        in_run = np.zeros(len(keys), bool)
        in_run[:-1] |= equal_next
        in_run[1:] |= equal_next
        where = np.flatnonzero(in_run)
        order[where] = order[where][np.lexsort((order[where], ordered[where]))]
    return order


def map_chunk(chunk, spec, source_index: int, spill_path: str, histogram_order: int,
              skip_invalid: bool) -> MapResult:
    """Map task: one chunk in, one sorted spill file and a sparse histogram out."""
    table, skipped, examples = standardize(chunk.load(), spec, chunk.source, chunk.first_row,
                                           source_index, skip_invalid)
    hp29 = table.column(paths.HEALPIX29_COLUMN).to_numpy()
    by_pixel = _argsort_keeping_ties(hp29)
    table = table.take(by_pixel).combine_chunks()
    with pa.OSFile(spill_path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    pixels, counts = sparse_histogram(healpix.degrade(hp29[by_pixel], histogram_order))
    rows, schema = table.num_rows + skipped, table.schema
    del table
    _release_memory()
    return MapResult(spill_path, source_index, rows, skipped, examples, pixels, counts, schema)


# ---------------------------------------------------------------- reduce


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary-encoding: strings, booleans and narrow integers (flags,
    counts, types). Floats and 64-bit identifiers rarely repeat; trying a dictionary on
    them doubles the time to write a partition for nothing."""
    return [f.name for f in schema
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_boolean(f.type)
            or (pa.types.is_integer(f.type) and f.type.bit_width < 64)]


def _read_spill_range(path: str, lo: int, hi: int, schema: pa.Schema) -> pa.Table | None:
    """Rows of a sorted spill with ``lo <= _healpix_29 < hi``, copied out of the file.

    The spill is memory-mapped only for the duration of this call: the kernel maps whole
    large pages around every touched slice, so keeping a hundred spills mapped while a
    partition is assembled would count gigabytes of file pages in the worker's memory.
    """
    with pa.memory_map(path) as source:
        table = pa.ipc.open_file(source).read_all()
        hp29 = table.column(paths.HEALPIX29_COLUMN).chunk(0).to_numpy()
        start, stop = (int(i) for i in np.searchsorted(hp29, [lo, hi]))
        piece = None
        if stop > start:
            # take() with a sequential index forces a private copy of just the slice.
            piece = table.slice(start, stop - start).cast(schema).take(
                np.arange(stop - start))
        del table, hp29
    return piece


def reduce_partition(order: int, pixel: int, spills: list[str], schema: pa.Schema,
                     catalog_root: str, compression: str, row_group_rows: int,
                     spec=None) -> ReduceResult:
    """Reduce task: gather one partition's rows from every spill and write its file (and,
    for a catalog with proper motions, work out how fast its rows move)."""
    lo, hi = healpix.pixel_range29(order, pixel)
    pieces = [p for p in (_read_spill_range(s, lo, hi, schema) for s in spills) if p is not None]
    merged = pa.concat_tables(pieces)
    del pieces
    hp29 = merged.column(paths.HEALPIX29_COLUMN)
    # Each piece is sorted, so the stable sort only merges runs.
    order_rows = np.argsort(hp29.to_numpy(), kind="stable") if hp29.num_chunks > 1 else None
    del hp29
    return write_partition(merged, order, pixel, catalog_root, compression, row_group_rows,
                           spec, order_rows)


def write_partition(table: pa.Table, order: int, pixel: int, catalog_root: str,
                    compression: str, row_group_rows: int, spec=None,
                    order_rows: np.ndarray | None = None) -> ReduceResult:
    """Write one partition's rows (in ``_healpix_29`` order, or in the order ``order_rows``
    gives) as ``Norder=/Dir=/Npix=.parquet`` under ``catalog_root``, with its checksum and,
    for rows with the spec's proper motions, how fast they move.

    The file appears under its name in one rename, so a task run twice (a Dask retry after
    a worker died) never leaves a half-written partition.
    """
    bounds = None
    if spec is not None and spec.pmra in table.column_names and spec.pmdec in table.column_names:
        from xmatch.store.catalog import partition_motion_bounds

        bounds = partition_motion_bounds(table, spec).to_dict()
    # Encoded in memory one row group at a time, hashed there, then written with one
    # call: no sorted copy of the whole partition, and no second read to checksum it.
    sink = pa.BufferOutputStream()
    collector = []
    with pq.ParquetWriter(sink, table.schema, compression=compression,
                          use_dictionary=_dictionary_columns(table.schema),
                          metadata_collector=collector, write_page_index=False) as writer:
        for start in range(0, table.num_rows, row_group_rows):
            stop = min(start + row_group_rows, table.num_rows)
            group = (table.slice(start, stop - start) if order_rows is None
                     else table.take(order_rows[start:stop]))
            writer.write_table(group, row_group_size=row_group_rows)
    rows = table.num_rows
    del table
    encoded = sink.getvalue()
    relpath = paths.partition_file(order, pixel)
    target = Path(catalog_root) / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    with open(partial, "wb") as handle:
        handle.write(encoded)
    os.replace(partial, target)
    digest = hashlib.sha256(encoded).hexdigest()
    del encoded
    collector[0].set_file_path(relpath.removeprefix(paths.DATASET_DIR + "/"))
    _release_memory()
    return ReduceResult(order, pixel, rows, relpath, collector[0], digest, bounds)


# ---------------------------------------------------------------- driver


class _InlineExecutor(concurrent.futures.Executor):
    """Runs tasks at submission, for ``workers=1`` and for debugging."""

    def submit(self, fn, /, *args, **kwargs):
        future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, like a pool would
            future.set_exception(exc)
        return future


def progress_bar(total, desc, unit, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True,
                disable=None if enabled is None else not enabled, dynamic_ncols=True)


def _run_bounded(executor, tasks: Iterable[tuple], in_flight: int):
    """Submit ``(fn, *args)`` tasks keeping at most ``in_flight`` pending; yield results."""
    try:
        yield from _submit_bounded(executor, tasks, in_flight)
    except concurrent.futures.process.BrokenProcessPool:
        raise XmatchError(
            "a load worker process died. If you called xmatch from a script, put the call "
            "under `if __name__ == \"__main__\":` (worker processes are started with "
            "'spawn' and re-import the script); otherwise the machine may be out of memory "
            "(lower chunk_rows or workers)") from None
    except Exception as exc:
        lost = lost_with_workers(exc, "load")
        if lost is None:
            raise
        raise lost from None


def _submit_bounded(executor, tasks, in_flight):
    pending = set()
    for task in tasks:
        pending.add(executor.submit(*task))
        if len(pending) >= in_flight:
            done, pending = concurrent.futures.wait(
                pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                yield future.result()
    for future in concurrent.futures.as_completed(pending):
        yield future.result()


def build_catalog(spec, sources: list[str], loader, data: DataDirectory,
                  options: LoadOptions | None = None) -> Path:
    """Load ``sources`` with ``loader`` into a new version of catalog ``spec.name``.

    Returns the path of the published catalog. On any error nothing becomes visible and
    a previously published version stays as it was.
    """
    options = options or LoadOptions()
    threshold = options.threshold_rows or spec.threshold_rows
    highest_order = options.highest_order or spec.highest_order
    started = time.time()
    data.clean_stale_staging()
    staging = data.new_staging(spec.name)
    catalog_root = staging / "catalog"
    spill_dir = staging / paths.SPILL_DIR
    spill_dir.mkdir(parents=True)
    check_choice(options.scheduler, options.workers)
    cluster = contextlib.ExitStack()
    if options.scheduler is not None:
        client = cluster.enter_context(dask_client(options.scheduler))
        executor = client.get_executor(retries=TASK_RETRIES, pure=False)
        workers = worker_threads(client)
    else:
        workers = options.workers or os.cpu_count() or 1
        executor = (cluster.enter_context(concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"))) if workers > 1
            else _InlineExecutor())
    try:
        histogram = np.zeros(healpix.npix_at(highest_order), np.int64)
        results: list[MapResult] = []
        per_source = [{"source": source, "rows_read": 0, "rows_skipped": 0} for source in sources]

        def map_tasks():
            sequence = 0
            for source_index, source in enumerate(sources):
                for chunk in loader.chunks(source, spec, options.chunk_rows):
                    spill = str(spill_dir / f"{sequence:08d}.arrow")
                    sequence += 1
                    yield (map_chunk, chunk, spec, source_index, spill, highest_order,
                           options.skip_invalid)

        with progress_bar(None, f"load {spec.name}: map", "rows", options.progress) as bar:
            for result in _run_bounded(executor, map_tasks(), 2 * workers):
                results.append(result)
                add_sparse_counts(histogram, result.pixels, result.counts)
                result.pixels = result.counts = None  # summed: keep the driver small
                per_source[result.source_index]["rows_read"] += result.rows
                per_source[result.source_index]["rows_skipped"] += result.skipped
                bar.update(result.rows)
        map_done = time.time()
        for entry in per_source:
            if entry["rows_read"] == 0:
                raise LoadError(no_rows(entry["source"]), source=entry["source"])
        total_rows = int(histogram.sum())
        if total_rows == 0:
            raise LoadError("no valid rows were loaded (every row was skipped)")

        schema = unified_schema([r.schema for r in results if r.rows > r.skipped])
        orders, pixels, counts = plan_partitions(histogram, highest_order, threshold,
                                                 spec.lowest_order)
        # Input order decides the order of rows that share a _healpix_29 value.
        spills = sorted(r.spill for r in results)
        reduce_tasks = [
            (reduce_partition, int(o), int(p), spills, schema, str(catalog_root),
             options.compression, ROW_GROUP_ROWS, spec)
            for o, p in zip(orders, pixels, strict=True)
        ]
        written: list[ReduceResult] = []
        with progress_bar(total_rows, f"load {spec.name}: reduce", "rows", options.progress) as bar:
            for result in _run_bounded(executor, reduce_tasks, 2 * workers):
                written.append(result)
                bar.update(result.rows)
        shutil.rmtree(spill_dir)
        reduce_done = time.time()

        synthetic = bool(spec.synthetic or getattr(loader, "synthetic", False))
        skipped_examples = [e for r in results for e in r.examples][:MAX_SKIPPED_EXAMPLES]
        provenance = {
            "loader": loader.name,
            "sources": per_source,
            "rows": total_rows,
            "rows_skipped": sum(r.skipped for r in results),
            "skipped_examples": skipped_examples,
            "synthetic": synthetic,
            "reference": spec.reference,
            "license": spec.license,
            "note": spec.note,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": {"map": round(map_done - started, 3),
                        "reduce": round(reduce_done - map_done, 3),
                        "total": round(time.time() - started, 3)},
            "xmatch_version": __version__,
        }
        write_catalog_metadata(catalog_root, spec, schema, written, histogram, highest_order,
                               threshold, provenance)
        return data.publish(spec.name, catalog_root, staging)
    finally:
        cluster.close()
        shutil.rmtree(staging, ignore_errors=True)


def write_catalog_metadata(catalog_root: Path, spec, schema: pa.Schema,
                           written: list[ReduceResult], histogram: np.ndarray,
                           histogram_order: int, threshold: int, provenance: dict) -> None:
    """Everything of a catalog beside its partition files: the HATS metadata, properties
    and count maps, the xmatch sidecar (spec, provenance, motion bounds) and the manifest.
    ``histogram`` counts the rows per pixel at ``histogram_order``."""
    written = sorted(written, key=lambda r: (r.order, r.pixel))
    _write_hats_metadata(catalog_root, spec, schema, written, histogram, histogram_order,
                         threshold, bool(provenance.get("synthetic")))
    motion = {f"{r.order}/{r.pixel}": r.motion_bounds for r in written
              if r.motion_bounds is not None}
    _write_sidecar(catalog_root, spec.present_in(schema.names), provenance, threshold,
                   histogram_order, histogram, motion or None)
    write_manifest(catalog_root, known={r.relpath: r.sha256 for r in written})


def unified_schema(schemas: list[pa.Schema]) -> pa.Schema:
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise LoadError(
            f"chunks disagree on column types and cannot be reconciled: {exc}") from None


def _write_hats_metadata(root: Path, spec, schema, written, histogram, histogram_order,
                         threshold, synthetic: bool):
    dataset = paths.dataset_dir(root)
    dataset.mkdir(parents=True, exist_ok=True)
    pq.write_metadata(schema, dataset / paths.COMMON_METADATA_FILE)
    pq.write_metadata(schema, dataset / paths.METADATA_FILE,
                      metadata_collector=[r.metadata for r in written])
    with open(root / paths.PARTITION_INFO_FILE, "w") as handle:
        handle.write(f"{paths.PARTITION_ORDER},{paths.PARTITION_PIXEL}\n")
        handle.writelines(f"{r.order},{r.pixel}\n" for r in written)

    skymap_order = min(SKYMAP_ORDER, histogram_order)
    skymap = histogram.reshape(healpix.npix_at(skymap_order), -1).sum(axis=1)
    _write_count_map(root / paths.SKYMAP_FILE, skymap)
    # point_map.fits at the histogram order is where hats and LSDB read a catalog's MOC.
    _write_count_map(root / paths.POINT_MAP_FILE, histogram)
    max_order = max(r.order for r in written)
    area_fraction = sum(4.0 ** -r.order for r in written) / 12
    size_kib = sum((root / r.relpath).stat().st_size for r in written) // 1024
    properties = {
        "obs_collection": spec.name,
        "dataproduct_type": "object",
        "hats_nrows": int(histogram.sum()),
        "hats_col_ra": spec.ra,
        "hats_col_dec": spec.dec,
        "hats_col_healpix": paths.HEALPIX29_COLUMN,
        "hats_col_healpix_order": paths.HEALPIX29_ORDER,
        "hats_npix_suffix": ".parquet",
        "hats_max_rows": threshold,
        "hats_order": max_order,
        "hats_skymap_order": skymap_order,
        "moc_sky_fraction": f"{area_fraction:.5f}",
        "hats_builder": f"xmatch v{__version__}",
        "hats_creation_date": time.strftime("%Y-%m-%dT%H:%MUTC", time.gmtime()),
        "hats_estsize": size_kib,
        "hats_version": paths.HATS_VERSION,
        "obs_title": spec.title or spec.name,
        "xmatch_epoch_jyear": "" if spec.epoch_jyear is None else spec.epoch_jyear,
        "xmatch_default_radius_arcsec": spec.default_radius_arcsec,
        "xmatch_synthetic": str(synthetic).lower(),
    }
    text = "#HATS catalog\n" + "".join(
        f"{key}={value}\n" for key, value in properties.items() if value != "")
    for name in (paths.PROPERTIES_FILE, paths.LEGACY_PROPERTIES_FILE):
        (root / name).write_text(text)


def _write_count_map(path: Path, counts: np.ndarray) -> None:
    """Row counts per NESTED pixel as a sparse (EXPLICIT) HEALPix FITS table, the form
    hats and LSDB write and read for ``skymap.fits`` and ``point_map.fits``."""
    from astropy.io import fits

    order = healpix.order_of_npix(len(counts))
    pixels = np.flatnonzero(counts)
    header = fits.Header([("PIXTYPE", "HEALPIX"), ("INDXSCHM", "EXPLICIT"),
                          ("ORDERING", "NESTED"), ("COORDSYS", "C"), ("NSIDE", 1 << order),
                          ("OBS_NPIX", len(pixels)), ("CREATOR", f"xmatch {__version__}")])
    columns = [fits.Column(name="PIXEL", format="K", array=pixels.astype(np.int64)),
               fits.Column(name="VALUE", format="K", array=counts[pixels].astype(np.int64))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns, header=header)]
                 ).writeto(path)


def _write_sidecar(root: Path, spec, provenance: dict, threshold: int, histogram_order: int,
                   histogram: np.ndarray, motion_bounds: dict | None) -> None:
    """``xmatch.json``: the spec as loaded (roles the sources lacked dropped, so the
    metadata tells the truth), the provenance, and per-partition proper-motion bounds."""
    sidecar = {
        "xmatch_catalog_format": 1,
        "name": spec.name,
        "spec": spec.to_dict(),
        "provenance": provenance,
        "partitioning": {"threshold_rows": threshold, "highest_order": histogram_order,
                         "lowest_order": spec.lowest_order},
        "point_coverage": {"order": histogram_order,
                           "fraction": float(np.count_nonzero(histogram) / len(histogram))},
    }
    if motion_bounds is not None:
        sidecar["motion_bounds"] = motion_bounds
    (root / paths.SIDECAR_FILE).write_text(json.dumps(sidecar, indent=2, default=str) + "\n")
