"""Catalog × catalog cross-match at any size, on Dask: two catalogs of the store in, a new
HATS catalog of the store out.

One task per partition of the left catalog (:func:`join_partition`): it reads that
partition, works out which right partitions its rows' searches reach (each left row's
radius, widened by how far the right rows' proper motions carry them between the two
epochs), reads only those, matches with the in-memory kernels
(:func:`xmatch.index.sky_index.crossmatch`) and writes the output partition, which has the
left partition's order and pixel. No margin cache is needed: a right row just across a
partition boundary is read with the partition that holds it. A task holds one left
partition and its right neighbourhood, whatever the size of the catalogs.

The driver (:func:`crossmatch_catalogs`) runs the tasks on a Dask cluster
(:mod:`xmatch.scheduling`), writes the HATS metadata, and publishes the catalog in one
atomic step, like a load: a failed or killed join leaves nothing visible.
"""

from __future__ import annotations

import functools
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch import __version__
from xmatch.errors import InputError
from xmatch.index import results
from xmatch.sky import coords, healpix
from xmatch.store import paths
from xmatch.store.catalog import Catalog, HealpixPixel, open_catalog
from xmatch.store.data_dir import DataDirectory
from xmatch.store.partitioning import add_sparse_counts, sparse_histogram
from xmatch.store.writer import (
    ROW_GROUP_ROWS,
    ReduceResult,
    unified_schema,
    write_catalog_metadata,
    write_partition,
)

#: Order of the output's count maps (point_map.fits), as a load's default highest order.
HISTOGRAM_ORDER = 10


@dataclass(frozen=True)
class JoinPlan:
    """What every join task needs: the two catalogs' directories, the match, the columns,
    and where the output partitions go (all checked by :func:`plan_join`)."""

    left_root: str
    right_root: str
    radius_arcsec: float
    mode: str
    k: int
    left_epoch: float | None
    left_columns: tuple[str, ...]
    right_columns: tuple[str, ...]
    output_root: str
    output_spec: object
    histogram_order: int
    compression: str = "snappy"


@dataclass
class JoinedPartition:
    """What a task hands back: the written file, the left rows it matched, and the output's
    counts per pixel at the plan's histogram order."""

    written: ReduceResult
    left_rows: int
    matched_rows: int
    pixels: np.ndarray
    counts: np.ndarray
    schema: pa.Schema


# ---------------------------------------------------------------- the task


@functools.lru_cache(maxsize=8)
def _opened(root: str) -> Catalog:
    """A worker opens each catalog once, however many of its partitions it joins."""
    return open_catalog(Path(root), verify="none")


def join_partition(plan: JoinPlan, order: int, pixel: int) -> JoinedPartition:
    """Join one left partition: its rows against the right rows their searches reach, and
    write the output partition (same order and pixel)."""
    from xmatch.index.sky_index import SkyIndex, crossmatch

    left, right = _opened(plan.left_root), _opened(plan.right_root)
    index = SkyIndex.from_catalog(left, list(plan.left_columns),
                                  partitions=[HealpixPixel(order, pixel)])
    table = crossmatch(index, right, radius_arcsec=plan.radius_arcsec, mode=plan.mode,
                       k=plan.k, left_columns=list(plan.left_columns),
                       right_columns=list(plan.right_columns), left_epoch=plan.left_epoch)
    left_rows = len(index)
    del index
    table = table.drop_columns([results.QUERY_COLUMN])
    # Left rows with a match: their closest match has rank 1 (rank is null without one).
    matched = pc.sum(pc.equal(table.column(results.RANK_COLUMN), 1)).as_py() or 0
    pixels, counts = sparse_histogram(healpix.degrade(
        table.column(paths.HEALPIX29_COLUMN).to_numpy(), plan.histogram_order))
    schema = table.schema
    written = write_partition(table, order, pixel, plan.output_root, plan.compression,
                              ROW_GROUP_ROWS, plan.output_spec)
    return JoinedPartition(written, left_rows, matched, pixels, counts, schema)


# ---------------------------------------------------------------- checking the request


def _columns(asked, catalog: Catalog, always: list[str], side: str) -> tuple[str, ...]:
    if asked is None:
        names = [c for c in catalog.schema.names
                 if side == "left" or c != paths.HEALPIX29_COLUMN]
    else:
        if isinstance(asked, str):
            raise InputError(f"{side}_columns must be a list of names, not the string "
                             f"{asked!r}")
        names = list(asked)
        catalog.check_columns(names)
    return tuple(dict.fromkeys([*names, *always]))


def plan_join(left: Catalog, right: Catalog, out: str, output_root: Path, *,
              radius_arcsec=None, mode: str = "nearest", k: int = 1, epoch=None,
              left_columns=None, right_columns=None) -> JoinPlan:
    """Check a join request against its two catalogs, and plan it."""
    from xmatch.index.sky_index import check_mode
    from xmatch.specs import CatalogSpec

    CatalogSpec(name=out, ra="ra", dec="dec")  # checks the name, with the load's message
    if out in (left.name, right.name):
        raise InputError(f"the output catalog {out!r} would replace an input while it is "
                         "read; choose another name")
    check_mode(mode, k)
    radius = right.spec.default_radius_arcsec if radius_arcsec is None else radius_arcsec
    radius = float(coords.radii_arcsec(radius, 1)[0])
    left_has_epoch = (left.has_proper_motions or left.spec.epoch_jyear is not None
                      or left.spec.epoch_column is not None)
    left_epoch = None
    if epoch is not None:
        if left_has_epoch:
            raise InputError(f"{left.name} has the epochs of its positions; epoch is the "
                             "epoch of a left catalog without them")
        if not right.has_proper_motions:
            raise InputError(f"epoch moves the rows of the right catalog to the left "
                             f"positions' epoch, and {right.name} has no proper motions")
        left_epoch = float(coords.epochs(epoch, 1)[0])
    elif right.has_proper_motions and not left_has_epoch:
        raise InputError(f"{right.name} has proper motions and {left.name} has no epoch: give "
                         f"the epoch of {left.name}'s positions (a Julian year, e.g. 2012.0) "
                         "to move the right rows there")
    spec = left.spec
    always = [spec.ra, spec.dec, paths.HEALPIX29_COLUMN]
    left_kept = _columns(left_columns, left, always, "left")
    right_kept = _columns(right_columns, right, [], "right")
    output_spec = spec.with_overrides(
        name=out, title=f"{left.name} × {right.name}",
        description=f"Cross-match of {left.name} with {right.name} within {radius:g} arcsec "
                    f"({mode}{f', k={k}' if mode == 'k' else ''}), every {left.name} "
                    "row kept.",
        keep=None, key=(), optional=(), loader=None, file_loader=None, default_source=None,
        loader_options={}, context={}, synthetic=bool(left.provenance.get("synthetic")
                                                      or right.provenance.get("synthetic")))
    return JoinPlan(str(left.root.resolve()), str(right.root.resolve()), radius, mode, k,
                    left_epoch, left_kept, right_kept, str(output_root), output_spec,
                    HISTOGRAM_ORDER)


# ---------------------------------------------------------------- the driver


def crossmatch_catalogs(left: str, right: str, out: str, *, radius_arcsec=None,
                        mode: str = "nearest", k: int = 1, epoch=None, left_columns=None,
                        right_columns=None, scheduler: str | None = None,
                        workers: int | None = None, data=None,
                        progress: bool | None = None) -> Catalog:
    """Cross-match every row of catalog ``left`` with catalog ``right`` on Dask, and publish
    the result as catalog ``out`` of the data directory.

    Parameters
    ----------
    left, right
        Names of catalogs in the data directory (or paths of catalog directories).
    out
        Name of the output catalog: a HATS catalog partitioned like ``left``, one row per
        match (``nearest``: one per left row), a left row without a match kept once with
        null right columns. Its columns: the left columns asked for (its positions and
        ``_healpix_29`` always), ``match_rank``, the right columns asked for (a name the
        left side has too gets the suffix ``_RIGHTNAME``), ``separation_arcsec`` and
        ``position_angle_deg`` (east of north, from the left row to the right one), and
        ``ra_at_epoch``, ``dec_at_epoch`` where right rows were moved by proper motions.
    radius_arcsec
        Match radius (default: the right catalog's).
    mode, k
        ``"nearest"``, ``"k"`` (the ``k`` closest) or ``"all"`` within the radius.
    epoch
        Julian year of the left positions, for a left catalog without an epoch matched
        against a right catalog with proper motions (refused otherwise).
    left_columns, right_columns
        Columns to keep from each side (default: all).
    scheduler, workers
        The Dask scheduler's address, or the number of worker processes of a local cluster
        started for the join (default: one per core).
    progress
        Progress bar (default: on a terminal only).

    A script that starts a local cluster must call this under ``if __name__ ==
    "__main__":`` (Dask starts its workers with 'spawn', which re-imports the script).
    """
    from xmatch.scheduling import check_choice

    started = time.time()
    directory = data if isinstance(data, DataDirectory) else DataDirectory(data)
    left_catalog, right_catalog = open_catalog(left, directory), open_catalog(right, directory)
    check_choice(scheduler, workers)
    directory.clean_stale_staging()
    staging = directory.new_staging(out)
    output_root = staging / "catalog"
    try:
        plan = plan_join(left_catalog, right_catalog, out, output_root,
                         radius_arcsec=radius_arcsec, mode=mode, k=k, epoch=epoch,
                         left_columns=left_columns, right_columns=right_columns)
        joined, cluster = _run(plan, left_catalog, scheduler, workers, progress)
        finished = time.time()
        histogram = np.zeros(healpix.npix_at(plan.histogram_order), np.int64)
        for part in joined:
            add_sparse_counts(histogram, part.pixels, part.counts)
        schema = unified_schema([part.schema for part in joined])
        provenance = {
            "loader": "join",
            "join": {
                "left": left_catalog.name, "right": right_catalog.name,
                "left_rows": left_catalog.num_rows, "right_rows": right_catalog.num_rows,
                "radius_arcsec": plan.radius_arcsec, "mode": plan.mode,
                **({"k": plan.k} if plan.mode == "k" else {}),
                "left_epoch_jyear": plan.left_epoch,
                "left_rows_matched": sum(p.matched_rows for p in joined),
                "cluster": cluster,
            },
            "rows": int(histogram.sum()),
            "synthetic": plan.output_spec.synthetic,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": {"join": round(finished - started, 3),
                        "total": round(time.time() - started, 3)},
            "xmatch_version": __version__,
        }
        write_catalog_metadata(output_root, plan.output_spec, schema,
                               [p.written for p in joined], histogram, plan.histogram_order,
                               left_catalog.spec.threshold_rows, provenance)
        directory.publish(out, output_root, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return open_catalog(out, directory)


def _run(plan: JoinPlan, left: Catalog, scheduler, workers, progress):
    """Run one task per left partition on the cluster; their results, and what the cluster
    was."""
    from distributed import as_completed

    from xmatch.scheduling import (
        TASK_RETRIES,
        dask_client,
        lost_with_workers,
        worker_threads,
    )
    from xmatch.store.writer import progress_bar

    with dask_client(scheduler, workers) as client:
        cluster = {"scheduler": scheduler or "local", "workers": len(client.nthreads()),
                   "threads": worker_threads(client)}
        token = Path(plan.output_root).parent.name  # the staging directory: unique
        futures = [client.submit(join_partition, plan, p.order, p.pixel, pure=False,
                                 retries=TASK_RETRIES, key=f"xmatch-join-{token}-{p.order}-"
                                                           f"{p.pixel}")
                   for p in left.partitions]
        joined = []
        try:
            with progress_bar(left.num_rows, f"join {left.name}", "rows", progress) as bar:
                for future in as_completed(futures, loop=client.loop):
                    part = future.result()
                    joined.append(part)
                    bar.update(part.left_rows)
        except Exception as exc:
            lost = lost_with_workers(exc, "join")
            if lost is None:
                raise
            raise lost from None
        finally:
            client.cancel(futures)
    return joined, cluster
