"""Service benchmark (embedded mode): cone latency, concurrent cones/s and streaming
cross-match positions/s through gRPC on loopback, against the bundled Gaia DR3 subset.

In the same run: the in-process kernel (``SkyIndex.cone``, one Python call per cone) as the
floor, and LSDB's ``cone_search`` on the same HATS catalog as the peer. The server runs in
this process on its own event-loop thread (as ``xmatch serve`` and ``xmatch demo`` run it);
clients use the synchronous gRPC stubs; the concurrent figure uses 16 client processes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RADII_ARCSEC = (5.0, 60.0, 1800.0)


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


def client_cones(address: str, worker: int, n: int = 2_000, start_at: float | None = None):
    """One client process: ``n`` 5" cones; returns (start, end, n) in wall-clock seconds."""
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


def summary(ms: np.ndarray) -> dict:
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "calls": int(len(ms))}


def main(argv=None):
    import bench_crossmatch
    import grpc

    from xmatch.service.embedded import running_server
    from xmatch.service.server import ServedCatalog
    from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cones", type=int, default=5_000, help="cones per latency figure")
    parser.add_argument("--positions", type=int, default=482_176,
                        help="positions streamed (default: every Gaia subset star)")
    parser.add_argument("--work-dir", type=Path, default=HERE / "_work")
    parser.add_argument("--json", type=Path, help="append results as one JSON line here")
    args = parser.parse_args(argv)

    catalog = bench_crossmatch.real_catalogs(args.work_dir)["gaia_dr3"]
    served = ServedCatalog.from_catalog(catalog)
    index = served.index
    ra, dec = cone_positions(args.cones + 200)
    results = {"catalog_rows": len(index)}
    with running_server({"gaia_dr3": served}) as address:
        channel = grpc.insecure_channel(address)
        stub = xmatch_pb2_grpc.XmatchStub(channel)

        def grpc_cone(radius):
            return lambda i: stub.Cone(xmatch_pb2.ConeRequest(
                catalog="gaia_dr3", ra_deg=ra[i], dec_deg=dec[i], radius_arcsec=radius))

        for radius in RADII_ARCSEC:
            results[f"cone_{radius:g}arcsec"] = {
                "embedded_grpc": summary(latencies(grpc_cone(radius), args.cones)),
                "in_process_kernel": summary(latencies(
                    lambda i, r=radius: index.cone(ra[i], dec[i], r), args.cones)),
            }

        # 16 client processes (not threads: they would share this process's GIL with the
        # server), each with its own channel, 5" cones; rate over the common busy period.
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(16, mp_context=get_context("spawn")) as pool:
            spans = list(pool.map(client_cones, [address] * 16, range(16)))
        busy = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
        results["concurrent_16_clients_cones_per_s"] = sum(n for _, _, n in spans) / busy

        # Streaming nearest match of every Gaia star position (1" radius).
        qra = index.table["ra"].to_numpy()[: args.positions]
        qdec = index.table["dec"].to_numpy()[: args.positions]

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
        channel.close()

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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        catalog = lsdb.open_catalog(root)
        for radius in RADII_ARCSEC:
            ms = latencies(lambda i, r=radius: catalog.cone_search(
                ra[i], dec[i], r).compute(), n, warmup=2)
            out[f"{radius:g}arcsec"] = summary(ms)
    return out


def report(results: dict) -> None:
    print(f"\nservice, embedded, Gaia DR3 subset ({results['catalog_rows']:,} rows)")
    for radius in RADII_ARCSEC:
        key = f"cone_{radius:g}arcsec"
        grpc_ms, kernel_ms = results[key]["embedded_grpc"], results[key]["in_process_kernel"]
        lsdb_ms = results["lsdb_cone_search"][f"{radius:g}arcsec"]
        print(f"  cone {radius:g}\": gRPC p50 {grpc_ms['p50_ms']:.3f} ms, p99 "
              f"{grpc_ms['p99_ms']:.3f} ms; in-process p50 {kernel_ms['p50_ms']:.3f} ms; "
              f"lsdb cone_search p50 {lsdb_ms['p50_ms']:.1f} ms")
    print(f"  16 concurrent clients, 5\" cones: "
          f"{results['concurrent_16_clients_cones_per_s']:,.0f} cones/s")
    print(f"  streaming nearest match (1\"): {results['stream_positions_per_s']:,.0f} "
          "positions/s")


if __name__ == "__main__":
    main()
