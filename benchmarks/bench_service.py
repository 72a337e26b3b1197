"""Service benchmark: cone latency, concurrent cones/s and streaming cross-match
positions/s over gRPC on loopback against the bundled Gaia DR3 subset, for the embedded
server (`xmatch serve`) and for a local cluster (`xmatch cluster up`: three shard processes,
every partition on two of them, behind the router process).

In the same run: the in-process kernel (``SkyIndex.cone``, one Python call per cone) as the
floor, and LSDB's ``cone_search`` on the same HATS catalog as the peer. Servers run as their
own processes; the latency client uses the synchronous stubs. Concurrency is measured two
ways: 16 client processes with one synchronous call in flight each, and 16 asyncio client
tasks (two processes of eight, one channel per process).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RADII_ARCSEC = (5.0, 60.0, 1800.0)
CLIENTS = 16


def cone_positions(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def latencies(call, n: int, warmup: int = 200) -> np.ndarray:
    for i in range(warmup):
        call(i)
    out = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        call(i)
        out[i] = time.perf_counter() - start
    return out * 1e3


def client_cones(address: str, worker: int, n: int = 2_000):
    """One client process, one synchronous call in flight: ``n`` 5" cones; returns
    (start, end, n) in wall-clock seconds."""
    import grpc

    from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

    stub = xmatch_pb2_grpc.XmatchStub(grpc.insecure_channel(address))
    ra, dec = cone_positions(n, seed=worker + 1)
    stub.Cone(xmatch_pb2.ConeRequest(catalog="gaia_dr3", ra_deg=1.0, dec_deg=1.0,
                                     radius_arcsec=5.0))  # connect before timing
    start = time.time()
    for i in range(n):
        stub.Cone(xmatch_pb2.ConeRequest(catalog="gaia_dr3", ra_deg=ra[i], dec_deg=dec[i],
                                         radius_arcsec=5.0))
    return start, time.time(), n


def async_client_cones(address: str, worker: int, tasks: int, n: int = 2_000):
    """One client process running ``tasks`` asyncio clients of ``n`` 5" cones each."""
    import asyncio

    import grpc

    from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

    async def run():
        async with grpc.aio.insecure_channel(address) as channel:
            stub = xmatch_pb2_grpc.XmatchStub(channel)
            ra, dec = cone_positions(n * tasks, seed=100 + worker)
            await stub.Cone(xmatch_pb2.ConeRequest(catalog="gaia_dr3", ra_deg=1.0, dec_deg=1.0,
                                                   radius_arcsec=5.0))

            async def client(t):
                for i in range(t * n, (t + 1) * n):
                    await stub.Cone(xmatch_pb2.ConeRequest(
                        catalog="gaia_dr3", ra_deg=ra[i], dec_deg=dec[i], radius_arcsec=5.0))

            start = time.time()
            await asyncio.gather(*(client(t) for t in range(tasks)))
            return start, time.time(), n * tasks

    return asyncio.run(run())


def summary(ms: np.ndarray) -> dict:
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "calls": int(len(ms))}


def rate(spans) -> float:
    busy = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
    return sum(n for _, _, n in spans) / busy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(command: list[str], address: str) -> subprocess.Popen:
    from xmatch.service.cluster import wait_serving

    process = subprocess.Popen([sys.executable, "-m", "xmatch", *command],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_serving(address, 600, process)
    return process


def stop_server(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=120)
    return out


def measure(address: str, index, ra, dec, cones: int, qra, qdec) -> dict:
    """Latency per radius, concurrent cones/s and streaming positions/s at ``address``."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    import grpc

    from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

    results = {}
    with grpc.insecure_channel(address) as channel:
        stub = xmatch_pb2_grpc.XmatchStub(channel)
        for radius in RADII_ARCSEC:
            def cone(i, r=radius):
                return stub.Cone(xmatch_pb2.ConeRequest(
                    catalog="gaia_dr3", ra_deg=ra[i], dec_deg=dec[i], radius_arcsec=r))
            results[f"cone_{radius:g}arcsec"] = summary(latencies(cone, cones))

        with ProcessPoolExecutor(CLIENTS, mp_context=get_context("spawn")) as pool:
            list(pool.map(client_cones, [address] * CLIENTS, range(CLIENTS), [20] * CLIENTS))
            results["concurrent_16_sync_processes_cones_per_s"] = rate(
                list(pool.map(client_cones, [address] * CLIENTS, range(CLIENTS))))
            results["concurrent_16_async_clients_cones_per_s"] = rate(
                list(pool.map(async_client_cones, [address] * 2, range(2), [CLIENTS // 2] * 2)))

        def requests(batch=50_000):
            yield xmatch_pb2.CrossmatchRequest(options=xmatch_pb2.CrossmatchOptions(
                catalog="gaia_dr3", radius_arcsec=1.0, columns=["source_id"]))
            for b, first in enumerate(range(0, len(qra), batch)):
                yield xmatch_pb2.CrossmatchRequest(batch=xmatch_pb2.PositionBatch(
                    batch_id=b, ra_deg=qra[first:first + batch],
                    dec_deg=qdec[first:first + batch]))

        sum(a.queries for a in stub.Crossmatch(requests()))  # warm-up
        start = time.perf_counter()
        streamed = sum(a.queries for a in stub.Crossmatch(requests()))
        results["stream_positions_per_s"] = streamed / (time.perf_counter() - start)
    return results


def service_data(work: Path):
    """A data directory holding only the Gaia DR3 subset (what the servers load)."""
    import bench_crossmatch

    from xmatch import DataDirectory, LoadOptions, load_catalog, open_catalog

    data = DataDirectory(work / "service_data")
    if "gaia_dr3" not in data.names():
        source = bench_crossmatch.real_catalogs(work)["gaia_dr3"]
        load_catalog("gaia_dr3", [str(source.root)], data=data,
                     options=LoadOptions(progress=False))
    return data, open_catalog("gaia_dr3", data)


def main(argv=None):
    from xmatch import SkyIndex
    from xmatch.service.plan import make_plan

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cones", type=int, default=5_000, help="cones per latency figure")
    parser.add_argument("--positions", type=int, default=482_176,
                        help="positions streamed (default: every Gaia subset star)")
    parser.add_argument("--work-dir", type=Path, default=HERE / "_work")
    parser.add_argument("--json", type=Path, help="append results as one JSON line here")
    args = parser.parse_args(argv)

    data, catalog = service_data(args.work_dir)
    index = SkyIndex.from_catalog(catalog)
    ra, dec = cone_positions(args.cones + 200)
    qra = index.table["ra"].to_numpy()[: args.positions]
    qdec = index.table["dec"].to_numpy()[: args.positions]
    results = {"catalog_rows": len(index), "in_process_kernel": {
        f"cone_{r:g}arcsec": summary(latencies(lambda i, r=r: index.cone_search(ra[i], dec[i], r),
                                               args.cones)) for r in RADII_ARCSEC}}

    address = f"127.0.0.1:{free_port()}"
    server = start_server(["serve", "--plaintext", "--data", str(data.root), "--port",
                           address.rsplit(":", 1)[1]], address)
    try:
        results["embedded"] = measure(address, index, ra, dec, args.cones, qra, qdec)
    finally:
        stop_server(server)

    ports = [free_port() for _ in range(4)]
    plan = make_plan(data, shards=3, replicas=2, router_port=ports[0], shard_ports=ports[1:])
    plan_path = args.work_dir / "service_plan.json"
    plan.write(plan_path)
    cluster = start_server(["cluster", "up", "--plaintext", "--plan", str(plan_path)], plan.router)
    try:
        results["cluster_3_shards_2_replicas"] = measure(plan.router, index, ra, dec,
                                                         args.cones, qra, qdec)
    finally:
        log = stop_server(cluster)
    results["shard_loads"] = re.findall(r"(shard-\d): ([\d,]+) rows .* loaded in ([\d.]+) s; "
                                        r"peak RSS ([\d,]+) MiB", log)

    results["lsdb_cone_search"] = lsdb_cones(catalog.root, ra, dec)
    report(results)
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps({"benchmark": "service", **results}) + "\n")
    return results


def lsdb_cones(root: Path, ra, dec, n: int = 20) -> dict:
    """LSDB's cone_search + compute per cone (few: each takes about a second)."""
    import warnings

    import lsdb

    out = {}
    with warnings.catch_warnings(), open(os.devnull, "w") as quiet, \
            contextlib.redirect_stderr(quiet):  # LSDB prints a progress bar per cone
        warnings.simplefilter("ignore")
        catalog = lsdb.open_catalog(root)
        for radius in RADII_ARCSEC:
            ms = latencies(lambda i, r=radius: catalog.cone_search(
                ra[i], dec[i], r).compute(), n, warmup=2)
            out[f"{radius:g}arcsec"] = summary(ms)
    return out


def report(results: dict) -> None:
    print(f"\nservice, Gaia DR3 subset ({results['catalog_rows']:,} rows), gRPC on loopback")
    for radius in RADII_ARCSEC:
        key = f"cone_{radius:g}arcsec"
        kernel = results["in_process_kernel"][key]
        lsdb_ms = results["lsdb_cone_search"][f"{radius:g}arcsec"]
        print(f"  cone {radius:g}\": in-process p50 {kernel['p50_ms']:.3f} ms; "
              f"lsdb cone_search p50 {lsdb_ms['p50_ms']:.1f} ms")
        for mode in ("embedded", "cluster_3_shards_2_replicas"):
            ms = results[mode][key]
            print(f"    {mode}: p50 {ms['p50_ms']:.3f} ms, p99 {ms['p99_ms']:.3f} ms")
    for mode in ("embedded", "cluster_3_shards_2_replicas"):
        r = results[mode]
        print(f"  {mode}: 16 sync client processes "
              f"{r['concurrent_16_sync_processes_cones_per_s']:,.0f} cones/s, 16 asyncio "
              f"clients {r['concurrent_16_async_clients_cones_per_s']:,.0f} cones/s; streaming "
              f"nearest match (1\"): {r['stream_positions_per_s']:,.0f} positions/s")
    for name, rows, seconds, rss in results["shard_loads"]:
        print(f"  {name}: {rows} rows loaded in {seconds} s, peak RSS {rss} MiB")


if __name__ == "__main__":
    main()
