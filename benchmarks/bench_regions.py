"""Region benchmark: the rows of a synthetic PS1 catalog (100 M rows) inside the 90 %
credible region of each of three real LVK sky maps (GW170817, a flat HEALPix map; GW190814
and G361581, multi-order), in the same run:

* xmatch in-process: ``SkyIndex.skymap_search(skymap, level=0.9, columns)`` (the map read
  once, the region computed in the call) and ``SkyIndex.moc_search(ranges29, columns)``
  on the region's order-29 ranges; best of 3. The index (id, ra, dec) is built once and its
  build time reported apart, not in the rates.
* xmatch over gRPC on loopback: an embedded server in its own process (port 0) serving the
  same catalog indexed on the same columns; ``Client.skymap_search`` (the map given by its
  path), ``Client.moc_search`` (a mocpy MOC, and order-29 ranges), Arrow
  answers; best of 2, wall time of the whole call in the client. The first call is also
  reported: for ``skymap_search`` it includes the server reading the map (cached after).
* ``mocpy`` ``MOC.contains_lonlat`` over every catalog position (ra/dec loaded as numpy once,
  Longitude/Latitude built once; only the call timed); best of 3.
* ``lsdb`` ``moc_search(moc).compute()`` on the same HATS catalog opened on the same columns
  (opening not timed); dask's default threaded scheduler; best of 2.

Rates: catalog rows/s = catalog rows / seconds (the whole catalog is "searched"); for gRPC
also rows delivered/s = rows received / seconds. Ratios are xmatch's catalog rows/s over
the peer's. Every method's row count is checked against ``SkyIndex.moc_search``; any difference is
printed and recorded (mocpy and lsdb test positions with their own HEALPix code, so a
position on a pixel edge may fall on the other side).

Memory: one big structure at a time. The in-process index is freed before the server
process builds its own, and ra/dec for mocpy are read after the server has stopped; lsdb
runs last.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import time
import warnings
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_crossmatch  # noqa: E402

HERE = Path(__file__).resolve().parent
SKYMAPS = HERE.parent.parent / "shared" / "data" / "skymaps"
MAPS = ("GW170817_skymap.fits.gz", "GW190814_PublicationSamples.multiorder.fits.gz",
        "G361581_bayestar.multiorder.fits.gz")
LEVEL = 0.9
SQDEG_PER_SKY = 4 * np.pi * np.degrees(1.0) ** 2
REPEATS_LOCAL = 3   # in-process and mocpy
REPEATS_REMOTE = 2  # gRPC and lsdb

IN_PROCESS = ("xmatch_rows_in_skymap", "xmatch_rows_in_moc")
GRPC = ("xmatch_grpc_skymap_search", "xmatch_grpc_moc_search", "xmatch_grpc_region")
PEERS = ("mocpy_contains_lonlat", "lsdb_moc_search")


def peak_rss_mib(field: str = "VmHWM") -> float:
    """This process's peak resident memory (VmHWM: unlike ``ru_maxrss`` it does not carry
    the parent's peak into a spawned child), or its current one (``field="VmRSS"``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def release_memory() -> None:
    """Give freed memory back to the system: Arrow's allocator keeps freed pages otherwise,
    and the next phase (another process) needs them."""
    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()


# ---------------------------------------------------------------- inputs


def read_maps(directory: Path, names) -> list[dict]:
    """Each sky map read once, with its 90 % credible region as a MOC and order-29 ranges."""
    from xmatch.sky.skymap import SkyMap

    maps = []
    for name in names:
        path = directory / name
        started = time.perf_counter()
        skymap = SkyMap.read(path)
        read_s = time.perf_counter() - started
        moc = skymap.credible_region(LEVEL)
        maps.append({"map": name.split("_")[0].split(".")[0], "file": name, "path": path,
                     "skymap": skymap, "moc": moc, "ranges29": moc.to_depth29_ranges,
                     "area_deg2": float(moc.sky_fraction * SQDEG_PER_SKY),
                     "moc_max_order": int(moc.max_order), "read_s": read_s})
    return maps


def catalog_columns(catalog) -> list[str]:
    spec = catalog.spec
    return [spec.id, spec.ra, spec.dec]


def read_radec(catalog) -> tuple[np.ndarray, np.ndarray]:
    """Every position of the catalog as two float64 arrays (read once, for mocpy)."""
    spec = catalog.spec
    n = catalog.num_rows
    ra, dec = np.empty(n), np.empty(n)
    at = 0
    for partition in catalog.partitions:
        piece = catalog.read_partition(partition, [spec.ra, spec.dec])
        k = piece.num_rows
        ra[at:at + k] = piece[spec.ra].to_numpy()
        dec[at:at + k] = piece[spec.dec].to_numpy()
        at += k
    return ra[:at], dec[:at]


# ---------------------------------------------------------------- xmatch


def bench_in_process(catalog, maps, columns) -> tuple[float, dict]:
    """(index build seconds, {(map, method): (seconds, rows)}); the index dies on return."""
    from xmatch import SkyIndex

    index_s, index = bench_crossmatch.best_of(lambda: SkyIndex.from_catalog(catalog, columns),
                                              1)
    out = {}
    for m in maps:
        index.moc_search(m["ranges29"], columns=columns)  # warm the kernels
        index.skymap_search(m["skymap"], level=LEVEL, columns=columns)
        seconds, table = bench_crossmatch.best_of(
            lambda m=m: index.skymap_search(m["skymap"], level=LEVEL, columns=columns),
            REPEATS_LOCAL)
        out[m["map"], "xmatch_rows_in_skymap"] = (seconds, table.num_rows)
        seconds, table = bench_crossmatch.best_of(
            lambda m=m: index.moc_search(m["ranges29"], columns=columns), REPEATS_LOCAL)
        out[m["map"], "xmatch_rows_in_moc"] = (seconds, table.num_rows)
    return index_s, out


def _serve(data: str, name: str, columns: list[str], conn) -> None:
    """Server process: index ``name`` on ``columns``, serve it on a loopback port chosen by
    the system, send (address, index build s); on any message, stop and send the peak RSS."""
    from xmatch import SkyIndex, open_catalog
    from xmatch.service.catalogs import ServedCatalog, describe
    from xmatch.service.embedded import running_server

    catalog = open_catalog(name, data)
    started = time.perf_counter()
    index = SkyIndex.from_catalog(catalog, columns)
    index_s = time.perf_counter() - started
    release_memory()
    served = ServedCatalog(catalog.name, {"": index}, *describe(catalog))
    with running_server({catalog.name: served}, "127.0.0.1:0") as address:
        conn.send((address, index_s, peak_rss_mib("VmRSS")))
        while (command := conn.recv()) != "stop":
            if command == "reset peak":  # Linux: start VmHWM again from the current RSS
                Path("/proc/self/clear_refs").write_text("5")
                conn.send(peak_rss_mib("VmRSS"))
            else:
                conn.send(peak_rss_mib())
    conn.send(peak_rss_mib())


def bench_grpc(catalog, maps, columns) -> tuple[dict, dict]:
    """({(map, method): (seconds, rows)}, server facts) through an embedded server in a child
    process on a loopback port. The first call of each is also kept apart: for a sky map it
    includes the server reading the map, which later calls find in its cache."""
    from xmatch.service.client import Client

    parent, child = get_context("spawn").Pipe()
    server = get_context("spawn").Process(
        target=_serve, args=(str(catalog.root.parent), catalog.name, columns, child))
    server.start()
    server_rss = None
    try:
        while not parent.poll(1):
            if not server.is_alive():
                raise RuntimeError(f"the server process died (exit code {server.exitcode}) "
                                   "before serving: see its traceback above, or out of memory")
        address, index_s, serving_rss = parent.recv()
        out, first_call = {}, {}
        with Client(address, timeout=3600) as client:
            name = catalog.name
            client.moc_search(name, maps[0]["ranges29"], columns=columns)  # connect, warm up
            for m in maps:
                calls = {
                    "xmatch_grpc_region": lambda m=m: client.moc_search(
                        name, m["ranges29"], columns=columns, arrow=True),
                    "xmatch_grpc_moc_search": lambda m=m: client.moc_search(
                        name, m["moc"], columns=columns, arrow=True),
                    "xmatch_grpc_skymap_search": lambda m=m: client.skymap_search(
                        name, str(m["path"]), level=LEVEL, columns=columns, arrow=True),
                }
                for method, call in calls.items():
                    first, table = bench_crossmatch.best_of(call, 1)
                    seconds, table = bench_crossmatch.best_of(call, REPEATS_REMOTE - 1)
                    out[m["map"], method] = (min(first, seconds), table.num_rows)
                    first_call[m["map"], method] = first
            parent.send("peak")
            searches_peak = parent.recv()  # the stream restarts the count: keep this one
            parent.send("reset peak")
            whole_sky = {"server_rss_before_mib": parent.recv()}
            whole_sky.update(whole_sky_stream(client, name, columns))
            parent.send("peak")
            whole_sky["server_peak_rss_mib"] = parent.recv()
    finally:
        if server.is_alive():
            with contextlib.suppress(OSError, EOFError):
                parent.send("stop")
                server_rss = parent.recv() if parent.poll(120) else None
        server.join(120)
        if server.is_alive():
            server.terminate()
            server.join()
    if server_rss is not None:
        server_rss = max(server_rss, searches_peak)
    return out, {"server_index_build_s": index_s, "server_peak_rss_mib": server_rss,
                 "server_serving_rss_mib": serving_rss, "server_address": address,
                 "first_call_s": first_call, "whole_sky_stream": whole_sky}


def whole_sky_stream(client, name: str, columns: list[str]) -> dict:
    """Every row of the catalog streamed through RegionSearch (the whole sky as one range),
    each batch dropped on arrival: rows delivered per second, and (with the server's peak
    memory against its memory when it started serving) that a huge region streams in
    bounded memory rather than being gathered first."""
    import numpy as np

    from xmatch.sky.regions import Moc

    whole = Moc(np.array([[0, 12 * 4 ** 29]], dtype=np.int64))
    Path("/proc/self/clear_refs").write_text("5")  # this process's peak: from now on
    client_before = peak_rss_mib("VmRSS")
    started = time.perf_counter()
    rows = batches = 0
    for batch in client.search_batches(name, whole, columns=columns):
        rows += batch.num_rows
        batches += 1
    seconds = time.perf_counter() - started
    return {"rows": rows, "batches": batches, "seconds": seconds,
            "rows_per_s": rows / seconds, "client_rss_before_mib": client_before,
            "client_peak_rss_mib": peak_rss_mib()}


# ---------------------------------------------------------------- peers


def bench_mocpy(catalog, maps) -> dict:
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude

    ra, dec = read_radec(catalog)
    lon, lat = Longitude(ra, u.deg), Latitude(dec, u.deg)
    ra = dec = None  # Longitude and Latitude hold copies
    out = {}
    for m in maps:
        seconds, mask = bench_crossmatch.best_of(lambda m=m: m["moc"].contains_lonlat(lon, lat),
                                                 REPEATS_LOCAL)
        out[m["map"], "mocpy_contains_lonlat"] = (seconds, int(np.count_nonzero(mask)))
    return out


def bench_lsdb(catalog, maps, columns) -> dict:
    import lsdb

    out = {}
    with warnings.catch_warnings(), open(os.devnull, "w") as quiet, \
            contextlib.redirect_stderr(quiet):  # LSDB may print progress bars
        warnings.simplefilter("ignore")
        opened = lsdb.open_catalog(catalog.root, columns=columns)
        for m in maps:
            seconds, frame = bench_crossmatch.best_of(
                lambda m=m: opened.moc_search(m["moc"]).compute(), REPEATS_REMOTE)
            out[m["map"], "lsdb_moc_search"] = (seconds, len(frame))
    return out


# ---------------------------------------------------------------- results


def records(maps, catalog_rows: int, timings: dict, facts: dict) -> list[dict]:
    """One record per (map, method), with rates, the row-count check and ratios."""
    lines = []
    for m in maps:
        reference = timings[m["map"], "xmatch_rows_in_moc"][1]
        peers = {p: timings[m["map"], p][0] for p in PEERS if (m["map"], p) in timings}
        for method in (*IN_PROCESS, *GRPC, *PEERS):
            if (m["map"], method) not in timings:
                continue
            seconds, rows = timings[m["map"], method]
            line = {"benchmark": "regions", "map": m["map"], "file": m["file"],
                    "method": method, "level": LEVEL, "area_deg2": m["area_deg2"],
                    "moc_max_order": m["moc_max_order"], "catalog_rows": catalog_rows,
                    "rows": rows, "rows_minus_rows_in_moc": rows - reference,
                    "seconds": seconds,
                    "repeats": REPEATS_LOCAL if method in (IN_PROCESS + PEERS[:1])
                    else REPEATS_REMOTE,
                    "catalog_rows_per_s": catalog_rows / seconds}
            if method in GRPC:
                line["rows_delivered_per_s"] = rows / seconds
            if method in IN_PROCESS:
                line["index_build_s"] = facts["index_build_s"]
            if method in GRPC:
                line["server_index_build_s"] = facts["server_index_build_s"]
                line["first_call_s"] = facts["first_call_s"][m["map"], method]
            if method.startswith("xmatch"):
                line["ratio_to"] = {p: s / seconds for p, s in peers.items()}
            lines.append(line)
    return lines


def report(maps, lines: list[dict], facts: dict) -> None:
    first = lines[0]
    print(f"\n{first['catalog_rows']:,} synthetic PS1 rows ({facts['catalog']}), "
          f"{LEVEL:.0%} credible regions; xmatch index (id, ra, dec) built in "
          f"{facts['index_build_s']:.1f} s in process, {facts['server_index_build_s']:.1f} s "
          f"in the server process")
    for m in maps:
        print(f"\n{m['map']} ({m['file']}): {m['area_deg2']:.1f} deg^2, MOC order "
              f"{m['moc_max_order']}, map read in {m['read_s']:.2f} s")
        print(f"  {'method':<28}{'rows':>10}{'seconds':>11}{'catalog rows/s':>16}"
              f"{'delivered/s':>13}  vs mocpy   vs lsdb  first call s")
        for line in (x for x in lines if x["map"] == m["map"]):
            delivered = line.get("rows_delivered_per_s")
            ratios = line.get("ratio_to", {})
            print(f"  {line['method']:<28}{line['rows']:>10,}{line['seconds']:>11.5f}"
                  f"{line['catalog_rows_per_s']:>16.3g}{_fmt(delivered, '.3g'):>13}"
                  f"{_fmt(ratios.get('mocpy_contains_lonlat'), '.3g', 'x'):>10}"
                  f"{_fmt(ratios.get('lsdb_moc_search'), '.3g', 'x'):>10}"
                  f"{_fmt(line.get('first_call_s'), '.5f'):>14}")
        differ = [x for x in lines if x["map"] == m["map"] and x["rows_minus_rows_in_moc"]]
        for x in differ:
            print(f"  ROW COUNT DIFFERS: {x['method']} returned {x['rows']:,} rows, "
                  f"rows_in_moc {x['rows'] - x['rows_minus_rows_in_moc']:,} "
                  f"({x['rows_minus_rows_in_moc']:+,})")
        if not differ:
            print("  every method returned the same number of rows")
    sky = facts["whole_sky_stream"]
    print(f"\nwhole sky over gRPC, batches dropped on arrival: {sky['rows']:,} rows in "
          f"{sky['batches']:,} batches, {sky['seconds']:.1f} s, {sky['rows_per_s']:.3g} rows/s; "
          f"server memory {sky['server_rss_before_mib']:,.0f} MiB before, peak "
          f"{sky['server_peak_rss_mib']:,.0f} MiB during; client "
          f"{sky['client_rss_before_mib']:,.0f} MiB before, peak {sky['client_peak_rss_mib']:,.0f}"
          " MiB")
    print(f"\npeak RSS: benchmark process {facts['peak_rss_mib']:,.0f} MiB, server process "
          f"{_fmt(facts['server_peak_rss_mib'], ',.0f')} MiB; phases: "
          + ", ".join(f"{k} {v:.1f} s (then {facts['rss_after_phase_mib'][k]:,.0f} MiB)"
                      for k, v in facts["phase_s"].items()))


def _fmt(value, spec: str, suffix: str = "") -> str:
    return "" if value is None else f"{value:{spec}}{suffix}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000_000,
                        help="synthetic catalog rows (default 100 M)")
    parser.add_argument("--skymaps", type=Path, default=SKYMAPS,
                        help="directory of the three LVK sky maps")
    parser.add_argument("--work-dir", type=Path, default=HERE / "_work")
    parser.add_argument("--json", type=Path, help="append results as JSON lines here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    catalog = bench_crossmatch.synthetic_catalog(args.work_dir, args.rows)
    catalog_s = time.perf_counter() - started
    columns = catalog_columns(catalog)
    maps = read_maps(args.skymaps, MAPS)

    timings = {}
    facts = {"catalog": catalog.name, "catalog_ready_s": catalog_s, "phase_s": {},
             "rss_after_phase_mib": {}, "peak_rss_mib": 0.0}

    def phase(name, function, *args):
        """Run one phase; its big structures die with its frame, then go back to the OS."""
        started = time.perf_counter()
        result = function(*args)
        release_memory()
        facts["phase_s"][name] = time.perf_counter() - started
        facts["rss_after_phase_mib"][name] = peak_rss_mib("VmRSS")
        # The whole-sky stream restarts the peak count, so keep the running maximum.
        facts["peak_rss_mib"] = max(facts["peak_rss_mib"], peak_rss_mib())
        return result

    facts["index_build_s"], found = phase("in_process", bench_in_process, catalog, maps,
                                          columns)
    timings.update(found)
    found, server = phase("grpc", bench_grpc, catalog, maps, columns)
    timings.update(found)
    facts.update(server)
    timings.update(phase("mocpy", bench_mocpy, catalog, maps))
    timings.update(phase("lsdb", bench_lsdb, catalog, maps, columns))

    lines = records(maps, catalog.num_rows, timings, facts)
    report(maps, lines, facts)
    if args.json:
        with open(args.json, "a") as handle:
            for line in lines:
                handle.write(json.dumps(line) + "\n")
            setup = {k: v for k, v in facts.items() if k != "first_call_s"}  # in the lines
            handle.write(json.dumps({"benchmark": "regions", "method": "setup", **setup,
                                     "catalog_rows": catalog.num_rows,
                                     "maps": {m["map"]: {"area_deg2": m["area_deg2"],
                                                         "read_s": m["read_s"]}
                                              for m in maps}}) + "\n")
    return lines, facts


if __name__ == "__main__":
    main()
