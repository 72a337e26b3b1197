"""Catalog x catalog cross-match benchmark on Dask: xmatch ``crossmatch_catalogs`` against
LSDB ``crossmatch``, on the same cluster and the same catalogs.

Catalogs (made once under ``benchmarks/_work/catalogs``, reused when present):

* left: a positions-only synthetic PS1 catalog of ``--left-rows`` rows (``objID``,
  ``raMean``, ``decMean``; ``bench_memory.positions_catalog``). PS1 has no epoch in its
  spec: its positions are taken at J2012.0.
* right: a Gaia-like catalog with proper motions that genuinely overlaps the left one:
  every ``1 / --right-fraction``-th left row, given a ``source_id``, proper motions (normal,
  sigma 5 mas/yr; 1 % high-proper-motion stars at 100-500 mas/yr), a parallax, and its PS1
  position carried from J2012.0 to J2016.0 by its proper motion, plus 20 mas of Gaussian
  jitter per axis.

Measured, in one run, on a ``distributed.LocalCluster`` of two worker processes with one
thread each (the 2-core machine):

* xmatch: ``crossmatch_catalogs`` nearest within 1 arcsec, left epoch J2012.0 (right rows
  moved by their proper motions), end to end to a published HATS catalog: wall time, left
  rows/s, left rows matched, and the peak resident memory of each worker (psutil, the worker
  process and its children, sampled every 0.2 s; target <= 4 GiB);
* LSDB on the same cluster (the default client): the right catalog's margin cache built
  with hats-import (5 arcsec; timed apart, as a one-off cost), then
  ``lsdb.open_catalog(left).crossmatch(right, n_neighbors=1, radius_arcsec=1)`` written
  with ``to_hats``, end to end; its peak memory per worker. LSDB's cross-match is an inner
  join and ignores proper motions: its matched count is reported beside ours, not checked
  equal (high-proper-motion stars move out of the 1 arcsec circle between the epochs);
* the ratio LSDB / xmatch end to end (target >= 5, without the margin cache; with it too);
* xmatch again on a one-worker cluster: the speed-up from one worker to two.

Before each timed run every input file is read once (``warm_inputs``): this machine's disk
reads cold files at ~40 MB/s and its page cache is reclaimed between runs, so without it
whichever contender ran first on a cold cache would pay for the disk, not its cross-match.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import bench_memory
import numpy as np
from bench_load import tree_rss

HERE = Path(__file__).resolve().parent
SEED = 42
RADIUS_ARCSEC = 1.0
LEFT_EPOCH = 2012.0    # PS1 DR2 mean epoch, roughly (its spec has none)
RIGHT_EPOCH = 2016.0   # Gaia DR3
MARGIN_ARCSEC = 5.0    # LSDB's margin cache (hats-import's default threshold)
PM_SIGMA_MAS_YR = 5.0
HIGH_PM_FRACTION = 0.01
HIGH_PM_MAS_YR = (100.0, 500.0)
JITTER_MAS = 20.0
SAMPLE_S = 0.2
OUTPUT = "bench_join_out"


# ---------------------------------------------------------------- catalogs


def offset(ra_deg, dec_deg, east_mas, north_mas):
    """Positions moved by ``east_mas`` and ``north_mas`` on the sky (tangent-plane step,
    renormalised on the sphere: right at the poles and across RA 0/360)."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    east = np.radians(np.asarray(east_mas) / 3.6e6)
    north = np.radians(np.asarray(north_mas) / 3.6e6)
    sin_ra, cos_ra, sin_dec, cos_dec = np.sin(ra), np.cos(ra), np.sin(dec), np.cos(dec)
    x = cos_dec * cos_ra - east * sin_ra - north * sin_dec * cos_ra
    y = cos_dec * sin_ra + east * cos_ra - north * sin_dec * sin_ra
    z = sin_dec + north * cos_dec
    new_ra = np.degrees(np.arctan2(y, x)) % 360.0
    new_dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return new_ra, np.clip(new_dec, -90.0, 90.0)


def moving_table(piece, rng):
    """The right rows for one left partition's sample: proper motions, parallaxes, and
    positions at J2016.0."""
    import pyarrow as pa

    n = piece.num_rows
    pmra = rng.normal(0.0, PM_SIGMA_MAS_YR, n)
    pmdec = rng.normal(0.0, PM_SIGMA_MAS_YR, n)
    fast = rng.random(n) < HIGH_PM_FRACTION
    speed = rng.uniform(*HIGH_PM_MAS_YR, int(fast.sum()))
    angle = rng.uniform(0.0, 2 * np.pi, len(speed))
    pmra[fast], pmdec[fast] = speed * np.sin(angle), speed * np.cos(angle)
    years = RIGHT_EPOCH - LEFT_EPOCH
    east = pmra * years + rng.normal(0.0, JITTER_MAS, n)  # pmra is mu_alpha* (cos dec in)
    north = pmdec * years + rng.normal(0.0, JITTER_MAS, n)
    ra, dec = offset(piece["raMean"].to_numpy(), piece["decMean"].to_numpy(), east, north)
    return pa.table({"source_id": piece["objID"], "ra": ra, "dec": dec, "pmra": pmra,
                     "pmdec": pmdec, "parallax": rng.exponential(0.7, n)})


def moving_catalog(work: Path, left, stride: int, workers: int = 2):
    """The right catalog: every ``stride``-th row of catalog ``left``, moved to J2016.0 by
    its proper motion (made once: reused when present)."""
    import pyarrow.parquet as pq

    from xmatch import CatalogSpec, LoadOptions, load_catalog, open_catalog

    data = work / "catalogs"
    name = f"moving_{left.num_rows}_every{stride}"
    if (data / name).exists():
        return open_catalog(name, data)
    started = time.perf_counter()
    directory = work / name
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, partition in enumerate(left.partitions):
        path = directory / f"part-{number:05d}.parquet"
        paths.append(str(path))
        if path.exists():
            continue
        piece = left.read_partition(partition, list(bench_memory.COLUMNS))
        piece = piece.take(np.arange(0, piece.num_rows, stride))
        table = moving_table(piece, np.random.default_rng([SEED, number]))
        pq.write_table(table, str(path) + ".tmp")
        os.replace(str(path) + ".tmp", path)
    spec = CatalogSpec(name=name, id="source_id", ra="ra", dec="dec",
                       epoch_jyear=RIGHT_EPOCH, pmra="pmra", pmdec="pmdec",
                       parallax="parallax", threshold_rows=bench_memory.THRESHOLD_ROWS,
                       highest_order=bench_memory.HIGHEST_ORDER, synthetic=True)
    catalog = load_catalog(spec=spec, sources=paths, data=data,
                           options=LoadOptions(workers=workers, progress=False))
    print(f"  made {name}: {catalog.num_rows:,} rows "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    return catalog


# ---------------------------------------------------------------- cluster and memory


@contextmanager
def local_cluster(n_workers: int, work: Path):
    """A LocalCluster of ``n_workers`` processes with one thread each, and the default
    client on it."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR,
                      local_directory=str(work / "dask")) as cluster, Client(cluster) as client:
        client.run(_import_xmatch)
        yield cluster, client


def _import_xmatch() -> None:
    """What xmatch's tasks import (not what is measured)."""
    import pyarrow.parquet  # noqa: F401

    import xmatch.join  # noqa: F401


def _import_lsdb() -> None:
    """What LSDB's tasks import (not what is measured), once xmatch has run: its memory is
    not counted in xmatch's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hats_import.margin_cache.margin_cache_map_reduce  # noqa: F401
        import lsdb  # noqa: F401


@contextmanager
def worker_memory(client):
    """Sample each worker's resident memory (with its children) every 0.2 s, and this
    process's; yields a dict of each worker's resident memory at the start, filled on exit
    with the peak GiB per worker and of the driver."""
    import psutil

    pids = client.run(os.getpid)
    processes = {address: psutil.Process(pid) for address, pid in pids.items()}
    driver = psutil.Process()
    peaks = dict.fromkeys(processes, 0)
    driver_peak = 0
    stop = threading.Event()

    def sample():
        nonlocal driver_peak
        while not stop.is_set():
            for address, process in processes.items():
                peaks[address] = max(peaks[address], tree_rss(process))
            driver_peak = max(driver_peak, driver.memory_info().rss)
            stop.wait(SAMPLE_S)

    result = {"rss_gib_per_worker_before": [round(tree_rss(processes[a]) / 2**30, 3)
                                            for a in sorted(processes)]}
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        result["peak_rss_gib_per_worker"] = [round(peaks[a] / 2**30, 3) for a in sorted(peaks)]
        result["peak_rss_gib_driver"] = round(driver_peak / 2**30, 3)


def warm_inputs(*roots: Path) -> None:
    """Read every file under ``roots`` once, so each contender starts on a warm page cache."""
    for root in roots:
        for path in sorted(Path(root).resolve().rglob("*")):
            if path.is_file():
                with open(path, "rb") as handle:
                    while handle.read(1 << 24):
                        pass


# ---------------------------------------------------------------- xmatch


def matched_rows(root: Path) -> int:
    """Rows of a join's output with a match (non-null ``separation_arcsec``)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(root.resolve() / "dataset"), format="parquet")
    return dataset.count_rows(filter=pc.field("separation_arcsec").is_valid())


def run_xmatch(cluster, client, left, right, data: Path) -> dict:
    from xmatch import crossmatch_catalogs

    warm_inputs(left.root, right.root)
    with worker_memory(client) as memory:
        started = time.perf_counter()
        out = crossmatch_catalogs(left.name, right.name, OUTPUT, radius_arcsec=RADIUS_ARCSEC,
                                  mode="nearest", epoch=LEFT_EPOCH,
                                  scheduler=cluster.scheduler_address, data=data,
                                  progress=False)
        seconds = time.perf_counter() - started
    return {"workers": len(client.nthreads()), "seconds": round(seconds, 2),
            "rows_per_s": round(left.num_rows / seconds), "output_rows": out.num_rows,
            "matched": matched_rows(out.root), **memory}


# ---------------------------------------------------------------- LSDB


def build_margin(client, right_root: Path, work: Path) -> tuple[Path, dict]:
    """The right catalog's margin cache, built with hats-import on ``client``'s cluster."""
    from hats_import.margin_cache.margin_cache_arguments import MarginCacheArguments
    from hats_import.pipeline import pipeline_with_client

    output = work / "lsdb"
    name = f"{right_root.name}_margin"
    shutil.rmtree(output / name, ignore_errors=True)
    warm_inputs(right_root)
    with warnings.catch_warnings(), worker_memory(client) as memory:
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        args = MarginCacheArguments(
            input_catalog_path=str(right_root), output_path=str(output),
            output_artifact_name=name, margin_threshold=MARGIN_ARCSEC,
            progress_bar=False, resume=False, tmp_dir=str(output / "tmp"))
        pipeline_with_client(args, client)
        seconds = time.perf_counter() - started
    shutil.rmtree(output / "tmp", ignore_errors=True)
    import hats

    rows = hats.read_hats(output / name).catalog_info.total_rows
    return output / name, {"seconds": round(seconds, 2), "rows": int(rows),
                           "margin_order": int(args.margin_order), **memory}


def run_lsdb(client, left_root: Path, right_root: Path, margin: Path, work: Path,
             left_rows: int) -> dict:
    """LSDB's cross-match, nearest within 1 arcsec, written as a HATS catalog (end to end:
    open, match, write)."""
    import hats
    import lsdb

    output = work / "lsdb" / "bench_join_lsdb"
    shutil.rmtree(output, ignore_errors=True)
    warm_inputs(left_root, right_root, margin)
    with warnings.catch_warnings(), worker_memory(client) as memory:
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        left = lsdb.open_catalog(left_root)
        right = lsdb.open_catalog(right_root, margin_cache=margin)
        joined = left.crossmatch(right, radius_arcsec=RADIUS_ARCSEC, n_neighbors=1,
                                 suffixes=("_l", "_r"))
        joined.to_hats(output, catalog_name="bench_join_lsdb", as_collection=False,
                       progress_bar=False)
        seconds = time.perf_counter() - started
    rows = hats.read_hats(output).catalog_info.total_rows
    shutil.rmtree(output, ignore_errors=True)
    return {"seconds": round(seconds, 2), "rows_per_s": round(left_rows / seconds),
            "matched": int(rows), **memory}


# ---------------------------------------------------------------- report


def _gib(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values) + " GiB"


def _peaks(measured: dict) -> str:
    """Peak resident memory per worker, and what each held before the run."""
    return (f"peak per worker {_gib(measured['peak_rss_gib_per_worker'])} (from "
            f"{_gib(measured['rss_gib_per_worker_before'])} before)")


def report(r: dict) -> None:
    x2, x1 = r["xmatch_2workers"], r.get("xmatch_1worker")
    print(f"\n{r['left_rows']:,} synthetic PS1 rows (J{LEFT_EPOCH:g}) x {r['right_rows']:,} "
          f"moving rows (J{RIGHT_EPOCH:g}, proper motions), nearest within "
          f"{RADIUS_ARCSEC:g}\", LocalCluster of 2 workers x 1 thread:")
    print(f"  xmatch crossmatch_catalogs: {x2['seconds']:.1f} s = {x2['rows_per_s']:,} rows/s; "
          f"{x2['matched']:,} left rows matched of {x2['output_rows']:,}; {_peaks(x2)} "
          f"(target <= 4), driver {x2['peak_rss_gib_driver']:.2f} GiB")
    lsdb = r.get("lsdb")
    if lsdb:
        margin = r["lsdb_margin"]
        print(f"  LSDB margin cache ({MARGIN_ARCSEC:g}\", hats-import, order "
              f"{margin['margin_order']}): {margin['seconds']:.1f} s, {margin['rows']:,} rows "
              f"(a one-off, reported apart); {_peaks(margin)}")
        print(f"  LSDB crossmatch + to_hats: {lsdb['seconds']:.1f} s = {lsdb['rows_per_s']:,} "
              f"rows/s; {lsdb['matched']:,} rows (inner join, no proper motions); {_peaks(lsdb)}")
        print(f"  -> xmatch is {r['lsdb_over_xmatch']:.1f}x faster end to end (target >= 5); "
              f"{r['lsdb_with_margin_over_xmatch']:.1f}x counting the margin cache")
    if x1:
        print(f"  xmatch on 1 worker: {x1['seconds']:.1f} s = {x1['rows_per_s']:,} rows/s, "
              f"{_peaks(x1)} -> speed-up 1 -> 2 workers {r['speedup_2_over_1']:.2f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--left-rows", type=int, default=100_000_000,
                        help="synthetic PS1 rows (default 100 M; made once, ~10 min)")
    parser.add_argument("--right-fraction", type=float, default=0.2,
                        help="the right catalog takes every 1/fraction-th left row "
                             "(default 0.2: 20 M rows for 100 M)")
    parser.add_argument("--work-dir", type=Path, default=HERE / "_work")
    parser.add_argument("--skip-lsdb", action="store_true", help="xmatch only")
    parser.add_argument("--json", type=Path, help="append results as one JSON line here")
    args = parser.parse_args(argv)
    if not 0 < args.right_fraction <= 1:
        parser.error("--right-fraction must be in (0, 1]")
    stride = max(1, round(1 / args.right_fraction))
    work = args.work_dir
    data = work / "catalogs"
    left = bench_memory.positions_catalog(work, args.left_rows)
    right = moving_catalog(work, left, stride)
    results = {"benchmark": "join", "left_rows": left.num_rows, "right_rows": right.num_rows,
               "radius_arcsec": RADIUS_ARCSEC, "left_epoch": LEFT_EPOCH,
               "right_epoch": RIGHT_EPOCH, "high_pm_fraction": HIGH_PM_FRACTION}
    with local_cluster(2, work) as (cluster, client):
        results["xmatch_2workers"] = run_xmatch(cluster, client, left, right, data)
        print(f"  xmatch, 2 workers: {json.dumps(results['xmatch_2workers'])}", flush=True)
        if not args.skip_lsdb:
            client.run(_import_lsdb)
            left_root, right_root = left.root.resolve(), right.root.resolve()
            margin, results["lsdb_margin"] = build_margin(client, right_root, work)
            print(f"  LSDB margin cache: {json.dumps(results['lsdb_margin'])}", flush=True)
            results["lsdb"] = run_lsdb(client, left_root, right_root, margin, work,
                                       left.num_rows)
            print(f"  LSDB crossmatch: {json.dumps(results['lsdb'])}", flush=True)
            shutil.rmtree(margin, ignore_errors=True)
            xmatch_s = results["xmatch_2workers"]["seconds"]
            results["lsdb_over_xmatch"] = round(results["lsdb"]["seconds"] / xmatch_s, 3)
            results["lsdb_with_margin_over_xmatch"] = round(
                (results["lsdb"]["seconds"] + results["lsdb_margin"]["seconds"]) / xmatch_s, 3)
    with local_cluster(1, work) as (cluster, client):
        results["xmatch_1worker"] = run_xmatch(cluster, client, left, right, data)
    results["speedup_2_over_1"] = round(results["xmatch_1worker"]["seconds"]
                                        / results["xmatch_2workers"]["seconds"], 3)
    report(results)
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps(results) + "\n")
    return results


if __name__ == "__main__":
    main()
