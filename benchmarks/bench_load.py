"""Load benchmark: synthetic PS1 rows from Parquet into a HATS catalog.

xmatch (`load_catalog`, map-reduce on the local cores) against the paths a user would
otherwise take, on the same input in the same run:

* ``lsdb``: ``pandas.read_parquet`` + ``lsdb.from_dataframe(...).write_catalog(...)``
  (``write_catalog`` is the current name of ``to_hats``); needs the whole table in memory.
* ``hats-import``: the hats-import pipeline (dask, 2 workers x 1 thread).

Each tool runs in its own process; the parent samples the resident memory of that process
and all its children every 50 ms and reports the peak, with wall time and rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
THRESHOLD_ROWS = 1_000_000
HIGHEST_ORDER = 10
SEED = 42


# ---------------------------------------------------------------- input


def _write_part(path: str, n_total: int, first_chunk: int, n_chunks: int, chunk_rows: int):
    import pyarrow.parquet as pq

    from xmatch.loaders import ps1

    writer = None
    for index in range(first_chunk, first_chunk + n_chunks):
        table = ps1.synthetic_chunk(n_total, index, chunk_rows, SEED)
        if writer is None:
            writer = pq.ParquetWriter(path + ".tmp", table.schema)
        writer.write_table(table, row_group_size=chunk_rows)
    writer.close()
    os.replace(path + ".tmp", path)


def make_input(directory: Path, n_rows: int, files: int, workers: int = 2) -> list[str]:
    """Synthetic PS1 Parquet parts (cached: reused when present)."""
    chunk_rows = 1_000_000
    n_chunks = -(-n_rows // chunk_rows)
    per_file = -(-n_chunks // files)
    directory.mkdir(parents=True, exist_ok=True)
    jobs, paths = [], []
    for part, first in enumerate(range(0, n_chunks, per_file)):
        path = directory / f"part-{part:04d}.parquet"
        paths.append(str(path))
        if not path.exists():
            jobs.append((str(path), n_rows, first, min(per_file, n_chunks - first), chunk_rows))
    if jobs:
        started = time.perf_counter()
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_part, *zip(*jobs, strict=True)))
        print(f"  generated {n_rows:,} synthetic PS1 rows in {len(paths)} files "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    return paths


# ---------------------------------------------------------------- tools (child processes)


def run_xmatch(inputs, out, workers):
    from xmatch import LoadOptions, bundled_spec, load_catalog

    spec = bundled_spec("ps1_dr2").with_overrides(
        name="ps1_bench", threshold_rows=THRESHOLD_ROWS, highest_order=HIGHEST_ORDER)
    catalog = load_catalog(spec=spec, sources=inputs, data=out,
                           options=LoadOptions(workers=workers, progress=False))
    return catalog.num_rows


def run_lsdb(inputs, out, workers):
    import lsdb
    import pandas as pd

    frame = pd.concat([pd.read_parquet(p) for p in inputs], ignore_index=True)
    catalog = lsdb.from_dataframe(frame, catalog_name="ps1_bench", ra_column="raMean",
                                  dec_column="decMean", partition_rows=THRESHOLD_ROWS,
                                  highest_order=HIGHEST_ORDER)
    catalog.write_catalog(Path(out) / "ps1_bench")
    return len(frame)


def run_hats_import(inputs, out, workers):
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline

    args = ImportArguments(
        output_artifact_name="ps1_bench", output_path=out, input_file_list=inputs,
        file_reader="parquet", ra_column="raMean", dec_column="decMean",
        pixel_threshold=THRESHOLD_ROWS, highest_healpix_order=HIGHEST_ORDER,
        dask_n_workers=workers, dask_threads_per_worker=1, progress_bar=False,
        dask_tmp=str(Path(out) / "dask_tmp"), resume=False)
    pipeline(args)
    import hats

    return hats.read_hats(Path(out) / "ps1_bench").catalog_info.total_rows


TOOLS = {"xmatch": run_xmatch, "lsdb": run_lsdb, "hats-import": run_hats_import}


# ---------------------------------------------------------------- measuring


def tree_rss(process) -> int:
    import psutil

    total = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(tool: str, inputs: list[str], out: Path, workers: int, timeout_s: float) -> dict:
    import psutil

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    command = [sys.executable, str(Path(__file__)), "child", tool, str(out), str(workers),
               *inputs]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process = psutil.Process(child.pid)
    peak = 0
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss(process))
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        stdout, stderr = child.communicate()
        stop.set()
        return {"tool": tool, "error": f"timed out after {timeout_s:.0f} s"}
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    shutil.rmtree(out, ignore_errors=True)
    if child.returncode != 0:
        return {"tool": tool, "error": stderr.strip().splitlines()[-1] if stderr else "failed"}
    rows = json.loads(stdout.strip().splitlines()[-1])["rows"]
    return {"tool": tool, "rows": rows, "seconds": round(elapsed, 2),
            "rows_per_s": round(rows / elapsed), "peak_rss_gib": round(peak / 2**30, 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 100_000_000])
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=list(TOOLS))
    parser.add_argument("--lsdb-max-rows", type=int, default=10_000_000,
                        help="run lsdb only up to this many rows (lsdb.from_dataframe holds "
                             "the whole table in pandas; 100 M PS1 rows do not fit in 24 GiB)")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--work-dir", type=Path, default=HERE / "_work")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", type=Path, help="append results as JSON lines here")
    args = parser.parse_args(argv)
    results = []
    for n_rows in args.rows:
        inputs = make_input(args.work_dir / f"ps1_{n_rows}", n_rows,
                            files=max(1, n_rows // 10_000_000))
        for tool in args.tools:
            if tool == "lsdb" and n_rows > args.lsdb_max_rows:
                continue
            result = measure(tool, inputs, args.work_dir / "out", args.workers, args.timeout)
            result["input_rows"] = n_rows
            results.append(result)
            print(json.dumps(result), flush=True)
            if args.json:
                with open(args.json, "a") as handle:
                    handle.write(json.dumps(result) + "\n")
        by_tool = {r["tool"]: r for r in results if r["input_rows"] == n_rows and "seconds" in r}
        if "xmatch" in by_tool:
            for peer in ("lsdb", "hats-import"):
                if peer in by_tool:
                    ratio = by_tool[peer]["seconds"] / by_tool["xmatch"]["seconds"]
                    print(f"  {n_rows:,} rows: xmatch is {ratio:.1f}x faster than {peer}")
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        _, _, tool, out, workers, *inputs = sys.argv
        rows = TOOLS[tool](inputs, out, int(workers))
        print(json.dumps({"rows": int(rows)}))
    else:
        main()
