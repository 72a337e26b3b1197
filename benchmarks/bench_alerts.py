"""Alert annotation: the real ZTF and Rubin alerts amplified to 1 M with jittered
positions, annotated with Gaia DR3 (subset), synthetic PS1 and GCVS through an embedded
server and a 2-shard cluster, against astropy's match_to_catalog_sky per batch; and raw
Avro packets in -> annotated Avro out against fastavro's decode + encode alone.

    python benchmarks/bench_alerts.py [--alerts 1000000] [--ps1-rows 50000000]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_crossmatch  # noqa: E402
import bench_service  # noqa: E402

HERE = Path(__file__).resolve().parent
SHARED_ALERTS = HERE.parent.parent / "shared" / "data" / "alerts"
VISIT = 10_000          # alerts of one Rubin visit
JITTER_DEG = 1.0        # amplified alerts scatter this far around the real ones


def alerts_data(work: Path, ps1_rows: int):
    """A data directory with the Gaia DR3 subset, synthetic PS1 and GCVS."""
    from xmatch import DataDirectory, LoadOptions, load_catalog

    data = DataDirectory(work / f"alerts_data_{ps1_rows}")
    options = LoadOptions(progress=False)
    if "gaia_dr3" not in data.names():
        gaia = bench_crossmatch.real_catalogs(work)["gaia_dr3"]
        load_catalog("gaia_dr3", [str(gaia.root)], data=data, options=options)
    if "gcvs" not in data.names():
        load_catalog("gcvs", data=data, options=options)
    ps1 = f"ps1_synthetic_{ps1_rows}"
    if ps1 not in data.names():
        source = bench_crossmatch.synthetic_catalog(work, ps1_rows)
        load_catalog(ps1, [str(source.root)], data=data, options=options)
    return data, ps1


def real_packets():
    from xmatch.alerts import read_packets

    return list(read_packets([SHARED_ALERTS]))


def amplified(n: int, seed: int = 7):
    """``n`` compact alerts: the real ones repeated, each moved by up to JITTER_DEG."""
    import pyarrow as pa

    from xmatch.alerts import Schemas, decode

    real = decode([p.data for p in real_packets()], Schemas())
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, real.num_rows, n)
    ra = real["ra_deg"].to_numpy()[pick] + rng.uniform(-JITTER_DEG, JITTER_DEG, n) / np.cos(
        np.radians(real["dec_deg"].to_numpy()[pick]))
    dec = np.clip(real["dec_deg"].to_numpy()[pick] + rng.uniform(-JITTER_DEG, JITTER_DEG, n),
                  -90, 90)
    return pa.table({"alert_id": np.arange(n, dtype=np.int64), "ra_deg": ra % 360,
                     "dec_deg": dec, "mjd_tai": real["mjd_tai"].to_numpy()[pick]})


def amplified_packets(n: int, seed: int = 8) -> list:
    """``n`` raw packets: real ones re-encoded by fastavro with jittered positions."""
    import fastavro

    from xmatch.alerts import Packet

    rng = np.random.default_rng(seed)
    real = [(p, list(fastavro.reader(io.BytesIO(p.data)))[0],
             fastavro.reader(io.BytesIO(p.data)).writer_schema) for p in real_packets()]
    out = []
    for number in range(n):
        packet, record, schema = real[number % len(real)]
        record = dict(record)
        key = "candidate" if "candidate" in record else "diaSource"
        inner = dict(record[key])
        inner["ra"] = (inner["ra"] + rng.uniform(-JITTER_DEG, JITTER_DEG)) % 360
        inner["dec"] = float(np.clip(inner["dec"] + rng.uniform(-JITTER_DEG, JITTER_DEG),
                                     -90, 90))
        record[key] = inner
        sink = io.BytesIO()
        fastavro.writer(sink, schema, [record])
        out.append(Packet(f"{packet.origin}~{number}", sink.getvalue()))
    return out


def compact_figures(address: str, alerts, catalogs: list[str]) -> dict:
    """Alerts/s over the whole amplified set, and per-visit latency (one batch of VISIT
    alerts answered at a time on an open stream)."""
    from xmatch.service.client import Client

    with Client(address, timeout=None) as client:
        list(client.annotate(alerts.slice(0, VISIT), catalogs=catalogs))  # warm-up
        start = time.perf_counter()
        done = sum(b.table.num_rows for b in client.annotate(alerts, catalogs=catalogs,
                                                             batch_size=VISIT))
        seconds = time.perf_counter() - start
        stamps = [time.perf_counter()]
        for _ in client.annotate(alerts.slice(0, VISIT * 60), catalogs=catalogs,
                                 batch_size=VISIT, window=1):
            stamps.append(time.perf_counter())
    visits = np.diff(stamps)[1:] * 1000  # the first includes opening the stream
    return {"alerts": done, "seconds": seconds, "alerts_per_s": done / seconds,
            "visit_ms_p50": float(np.percentile(visits, 50)),
            "visit_ms_p99": float(np.percentile(visits, 99)), "visits": len(visits)}


def avro_figures(address: str, packets: list, catalogs: list[str]) -> dict:
    """Raw packets in -> annotated Avro containers out, against fastavro decode + encode."""
    import fastavro

    from xmatch.alerts.avro import container
    from xmatch.alerts.outputs import AnnotationWriter, extended_schema_text
    from xmatch.service.client import Client

    def bare():
        for packet in packets:
            reader = fastavro.reader(io.BytesIO(packet.data))
            records = list(reader)
            sink = io.BytesIO()
            fastavro.writer(sink, reader.writer_schema, records)

    def annotated(client):
        writer = AnnotationWriter("unused.avro", "avro", {})
        for batch in client.annotate(packets, catalogs=catalogs, batch_size=2_000):
            for schema, body in writer.annotated(batch.table, batch.packets):
                container(extended_schema_text(schema), [body])

    bare()  # warm caches
    start = time.perf_counter()
    bare()
    bare_s = time.perf_counter() - start
    with Client(address, timeout=None) as client:
        annotated(client)
        start = time.perf_counter()
        annotated(client)
        ours_s = time.perf_counter() - start
    return {"packets": len(packets), "fastavro_decode_encode_s": bare_s,
            "annotate_raw_to_annotated_avro_s": ours_s,
            "ratio_to_bare": ours_s / bare_s,
            "bare_packets_per_s": len(packets) / bare_s,
            "annotated_packets_per_s": len(packets) / ours_s}


def astropy_figures(data, catalogs: list[str], alerts) -> dict:
    """What brokers do today: SkyCoord catalogs in memory, match_to_catalog_sky (nearest
    only) per batch of VISIT alerts, for every catalog."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    from xmatch.store import open_catalog

    start = time.perf_counter()
    coords = []
    for name in catalogs:
        catalog = open_catalog(name, data)
        table = catalog.read(columns=[catalog.spec.ra, catalog.spec.dec])
        coords.append(SkyCoord(table[catalog.spec.ra].to_numpy() * u.deg,
                               table[catalog.spec.dec].to_numpy() * u.deg))
        coords[-1][:1].match_to_catalog_sky(coords[-1])  # builds and caches the KD-tree
    setup_s = time.perf_counter() - start
    visits = []
    n = min(alerts.num_rows, VISIT * 20)
    for first in range(0, n, VISIT):
        piece = alerts.slice(first, VISIT)
        start = time.perf_counter()
        query = SkyCoord(piece["ra_deg"].to_numpy() * u.deg, piece["dec_deg"].to_numpy() * u.deg)
        for catalog in coords:
            query.match_to_catalog_sky(catalog)
        visits.append(time.perf_counter() - start)
    visits = np.array(visits)
    return {"setup_s": setup_s, "alerts": n, "alerts_per_s": n / visits.sum(),
            "visit_ms_p50": float(np.percentile(visits, 50) * 1000),
            "visit_ms_p99": float(np.percentile(visits, 99) * 1000)}


def main(argv=None):
    from xmatch.service.plan import make_plan

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--packets", type=int, default=10_000,
                        help="raw packets for the Avro figures (ZTF ones weigh ~65 KB)")
    parser.add_argument("--ps1-rows", type=int, default=50_000_000)
    parser.add_argument("--work-dir", type=Path, default=HERE / "_work")
    parser.add_argument("--json", type=Path, help="append results as one JSON line here")
    parser.add_argument("--skip-astropy", action="store_true")
    args = parser.parse_args(argv)

    data, ps1 = alerts_data(args.work_dir, args.ps1_rows)
    catalogs = ["gaia_dr3", ps1, "gcvs"]
    alerts = amplified(args.alerts)
    packets = amplified_packets(args.packets)
    results = {"alerts": args.alerts, "ps1_rows": args.ps1_rows, "catalogs": catalogs}

    address = f"127.0.0.1:{bench_service.free_port()}"
    server = bench_service.start_server(["serve", "--data", str(data.root), "--port",
                                         address.rsplit(":", 1)[1]], address)
    try:
        results["embedded_compact"] = compact_figures(address, alerts, catalogs)
        results["embedded_avro"] = avro_figures(address, packets, catalogs)
    finally:
        bench_service.stop_server(server)

    ports = [bench_service.free_port() for _ in range(3)]
    plan = make_plan(data, shards=2, replicas=1, router_port=ports[0], shard_ports=ports[1:])
    plan_path = args.work_dir / "alerts_plan.json"
    plan.write(plan_path)
    cluster = bench_service.start_server(["cluster", "up", "--plan", str(plan_path)],
                                         plan.router)
    try:
        results["router_2_shards_compact"] = compact_figures(plan.router, alerts, catalogs)
        results["router_2_shards_avro"] = avro_figures(plan.router, packets, catalogs)
    finally:
        bench_service.stop_server(cluster)

    if not args.skip_astropy:
        results["astropy_match_to_catalog_sky"] = astropy_figures(data, catalogs, alerts)
    report(results)
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps({"benchmark": "alerts", **results}) + "\n")
    return results


def report(results: dict) -> None:
    print(f"\n{results['alerts']:,} alerts against {', '.join(results['catalogs'])} "
          f"(PS1: {results['ps1_rows']:,} synthetic rows)")
    print(f"{'':<34}{'alerts/s':>12}{'visit p50 ms':>14}{'visit p99 ms':>14}")
    for key in ("embedded_compact", "router_2_shards_compact", "astropy_match_to_catalog_sky"):
        if key in results:
            r = results[key]
            print(f"{key:<34}{r['alerts_per_s']:>12,.0f}{r['visit_ms_p50']:>14.1f}"
                  f"{r['visit_ms_p99']:>14.1f}")
    for key in ("embedded_avro", "router_2_shards_avro"):
        r = results[key]
        print(f"{key}: {r['packets']:,} packets; fastavro decode+encode "
              f"{r['fastavro_decode_encode_s']:.2f} s, raw -> annotated Avro "
              f"{r['annotate_raw_to_annotated_avro_s']:.2f} s (x{r['ratio_to_bare']:.2f})")


if __name__ == "__main__":
    main()
