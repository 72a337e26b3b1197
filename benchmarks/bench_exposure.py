"""Exposure benchmark: what TLS and bearer tokens cost a server, against the same server
without them, in one run.

The Gaia DR3 subset is served by five servers, each in its own process, all up for the whole
run:

* ``bare``: no interceptor at all (built here as ``create_server`` builds a server, minus
  ``CallInterceptor``): what request ids, access checks, metrics and the call log cost;
* ``plain``: today's server, plain text, no tokens (the reference of the targets);
* ``tokens``: plain text with a token file (loopback), to tell the token check from TLS;
* ``tls``: TLS with a token file;
* ``mtls``: mutual TLS (client certificates required) with a token file.

The token has every permission and limits (requests/s, streams, rows per answer) high
enough never to refuse, so each check runs. Clients keep their connections open, as real
ones do; the handshake is measured apart. Each round measures every variant, the variants
interleaved (their order rotated each round) so that the load of a shared machine falls on
all alike:

* 5" cones, sequential from one client, 100 to each variant in turn: p50, p99 and the
  server's CPU time per cone;
* 5" cones from several client processes at once, one call in flight each, one variant
  after the other: cones/s and p50;
* a cross-match stream (positions near Gaia stars, in 50,000-position batches, through
  the stubs as ``bench_service`` does) and an annotation stream (compact alerts through
  ``Client.annotate``) to each variant in turn, repeated: positions/s and alerts/s, and
  the CPU seconds of server and client together per stream (steadier than wall time when
  other work shares the machine);
* a new connection (channel, TLS handshake, first cone).

Before the rounds, gRPC alone (an echo stream of 1 MB messages, plain text and TLS) gives
the CPU TLS costs per megabyte moved. With the bytes each stream moves, that is the floor
no change to xmatch's own code can lower.

Each figure is the median over rounds with its range. Each variant is compared with
``plain`` round by round (the ratio of throughputs, the difference of p50s), and the
median of those paired comparisons is the cost.

    python benchmarks/bench_exposure.py [--rounds 9] [--positions 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_alerts  # noqa: E402
import bench_service  # noqa: E402

HERE = Path(__file__).resolve().parent
VARIANTS = ("bare", "plain", "tokens", "tls", "mtls")
REFERENCE = "plain"
CATALOG = "gaia_dr3"
CONE_ARCSEC = 5.0
#: The issue's targets: throughput cost of TLS and tokens, and p50 added to a 5" cone.
TARGET_THROUGHPUT_COST = 0.10
TARGET_ADDED_P50_MS = 0.1
JITTER_ARCSEC = 0.5  # cross-match positions: Gaia stars moved by up to this
#: gRPC alone, plain text and TLS: what TLS costs per megabyte moved.
ECHOES = ("echo_plain", "echo_tls")
ECHO_MESSAGE_BYTES = 1_000_000


# ------------------------------------------------------------------------- servers


def serve_variant(variant: str, root: str, files: dict, pipe) -> None:
    """A server process: serve the Gaia subset as ``variant`` says until told to stop."""
    asyncio.run(_serve(variant, root, files, pipe))


async def _serve(variant: str, root: str, files: dict, pipe) -> None:
    if variant in ECHOES:
        return await _echo(variant == "echo_tls", files, pipe)
    from xmatch import DataDirectory
    from xmatch.service.security import Exposure, Tls
    from xmatch.service.server import ServedCatalog, XmatchServicer, create_server
    from xmatch.store.catalog import open_catalog

    catalogs = {CATALOG: ServedCatalog.from_catalog(open_catalog(CATALOG,
                                                                 DataDirectory(root)))}
    servicer = XmatchServicer(catalogs)
    if variant == "bare":
        server, port = await _bare_server(servicer)
    else:
        tls = None
        if variant in ("tls", "mtls"):
            tls = Tls.from_files(files["server_cert"], files["server_key"],
                                 client_ca=files["ca"] if variant == "mtls" else None)
        tokens = None if variant == "plain" else files["tokens"]
        server, port = await create_server(servicer, "127.0.0.1:0", Exposure(tls, tokens))
    pipe.send(port)
    await asyncio.to_thread(pipe.recv)
    await server.stop(0)
    await servicer.close()


async def _bare_server(servicer):
    """The Xmatch service without any interceptor (no request ids, access, metrics, log or
    status mapping): only for timing the interceptor."""
    import grpc

    from xmatch.service.observe import Observer
    from xmatch.v1 import xmatch_pb2_grpc

    servicer.observer = Observer("embedded", servicer)  # annotation counts its states
    limit = servicer.limits.max_message_bytes
    server = grpc.aio.server(options=[("grpc.max_send_message_length", limit),
                                      ("grpc.max_receive_message_length", limit),
                                      ("grpc.so_reuseport", 0)])
    xmatch_pb2_grpc.add_XmatchServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def _echo(tls: bool, files: dict, pipe) -> None:
    """gRPC alone: a stream answering each message with itself, plain text or TLS (the
    floor TLS sets on a stream's cost, per megabyte moved)."""
    import grpc

    async def echo(requests, context):
        async for message in requests:
            yield message

    server = grpc.aio.server(options=[("grpc.max_send_message_length", 64 * 2**20),
                                      ("grpc.max_receive_message_length", 64 * 2**20)])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.stream_stream_rpc_method_handler(echo)})])
    if tls:
        credentials = grpc.ssl_server_credentials([(Path(files["server_key"]).read_bytes(),
                                                    Path(files["server_cert"]).read_bytes())])
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    pipe.send(port)
    await asyncio.to_thread(pipe.recv)
    await server.stop(0)


@contextmanager
def servers(root: Path, files: dict, variants=VARIANTS):
    """A server process per variant; yields ``{variant: (address, psutil.Process)}``."""
    import psutil

    context = get_context("spawn")
    started = {}
    try:
        for variant in variants:
            parent, child = context.Pipe()
            process = context.Process(target=serve_variant, name=f"xmatch-{variant}",
                                      args=(variant, str(root), files, child), daemon=True)
            process.start()
            started[variant] = (process, parent)
        yield {variant: (f"127.0.0.1:{_port(variant, process, pipe)}",
                         psutil.Process(process.pid))
               for variant, (process, pipe) in started.items()}
    finally:
        for process, pipe in started.values():
            if process.is_alive():
                pipe.send("stop")
        for process, _ in started.values():
            process.join(30)
            if process.is_alive():
                process.kill()


def _port(variant: str, process, pipe) -> int:
    while not pipe.poll(1.0):
        if not process.is_alive():
            raise RuntimeError(f"the {variant} server exited ({process.exitcode}) before "
                               "serving; its error is above")
    return pipe.recv()


def credentials_of(variant: str, files: dict, token: str):
    """What a client of ``variant`` shows: TLS (the CA; mutual TLS: a client certificate
    too) and the token."""
    from xmatch.service.security import Credentials, Tls

    tls = None
    if variant == "tls":
        tls = Tls.from_files(ca=files["ca"])
    elif variant == "mtls":
        tls = Tls.from_files(files["client_cert"], files["client_key"], ca=files["ca"])
    return Credentials(tls, None if variant in ("bare", "plain") else token)


def pki_and_tokens(directory: Path) -> tuple[dict, str]:
    """Test certificates and a token file holding one token that is never refused."""
    from xmatch.service.pki import Authority
    from xmatch.service.security import TokenFile

    authority = Authority(directory)
    server = authority.issue("server", ["127.0.0.1", "localhost"])
    client = authority.issue("client", client=True)
    tokens = directory / "tokens.json"
    token = TokenFile(tokens).add("bench", ["query", "stream", "annotate"], rps=1e9,
                                  streams=1_000, rows=10**9)
    files = {"ca": str(authority.cert), "server_cert": str(server.cert),
             "server_key": str(server.key), "client_cert": str(client.cert),
             "client_key": str(client.key), "tokens": str(tokens)}
    return files, token


# ------------------------------------------------------------------------- clients


def cone_request(ra: float, dec: float):
    from xmatch.v1 import xmatch_pb2

    return xmatch_pb2.ConeRequest(catalog=CATALOG, ra_deg=ra, dec_deg=dec,
                                  radius_arcsec=CONE_ARCSEC)


def cone_latencies(stub, ra, dec, warmup: int = 100) -> np.ndarray:
    """Milliseconds of each sequential cone at (ra, dec)."""
    for i in range(warmup):
        stub.Cone(cone_request(ra[i], dec[i]))
    out = np.empty(len(ra))
    clock = time.perf_counter
    for i in range(len(ra)):
        request = cone_request(ra[i], dec[i])
        start = clock()
        stub.Cone(request)
        out[i] = clock() - start
    return out * 1e3


_CHANNELS: dict = {}


def client_cones(address: str, credentials, n: int, seed: int):
    """One client process, one call in flight: ``n`` 5" cones; returns (start, end,
    latencies in ms). Its channel to ``address`` stays open between calls of this."""
    if address not in _CHANNELS:
        channel = credentials.channel(address, [])
        _CHANNELS[address] = (channel, credentials.stub(channel))
    stub = _CHANNELS[address][1]
    ra, dec = bench_service.cone_positions(n + 50, seed)
    ms = cone_latencies(stub, ra[:50], dec[:50], warmup=50)  # connect, warm
    start = time.time()
    ms = cone_latencies(stub, ra[50:], dec[50:], warmup=0)
    return start, time.time(), ms


def crossmatch_requests(ra, dec, batch: int):
    from xmatch.v1 import xmatch_pb2

    yield xmatch_pb2.CrossmatchRequest(options=xmatch_pb2.CrossmatchOptions(
        catalog=CATALOG, radius_arcsec=1.0, columns=["source_id"]))
    for b, first in enumerate(range(0, len(ra), batch)):
        yield xmatch_pb2.CrossmatchRequest(batch=xmatch_pb2.PositionBatch(
            batch_id=b, ra_deg=ra[first:first + batch], dec_deg=dec[first:first + batch]))


def new_connection_ms(address: str, credentials, n: int) -> np.ndarray:
    """Milliseconds to open a channel (TLS: the handshake) and answer its first cone."""
    out = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        channel = credentials.channel(address, [])
        credentials.stub(channel).Cone(cone_request(1.0 + i, 2.0))
        out[i] = time.perf_counter() - start
        channel.close()
    return out * 1e3


def cpu_seconds(process) -> float:
    times = process.cpu_times()
    return times.user + times.system


# ------------------------------------------------------------------------- measuring


def sequential_cones(order, running, clients, cones: int, seed: int,
                     block: int = 100) -> dict:
    """Sequential 5" cones from one client, ``block`` at a time to each variant in turn
    (the same positions to each), so that drift falls on every variant alike; per variant
    the p50, p99 and the server's CPU time per cone."""
    ra, dec = bench_service.cone_positions(cones, seed)
    for variant in order:  # warm each channel
        cone_latencies(clients[variant][1], ra[:100], dec[:100], warmup=0)
    cpu = {variant: cpu_seconds(running[variant][1]) for variant in order}
    ms = {variant: [] for variant in order}
    for first in range(0, cones, block):
        for variant in order:
            ms[variant].append(cone_latencies(clients[variant][1], ra[first:first + block],
                                              dec[first:first + block], warmup=0))
    out = {}
    for variant in order:
        cpu[variant] = cpu_seconds(running[variant][1]) - cpu[variant]
        every = np.concatenate(ms[variant])
        out[variant] = {"cone_p50_ms": float(np.percentile(every, 50)),
                        "cone_p99_ms": float(np.percentile(every, 99)),
                        "cone_server_cpu_us": cpu[variant] / len(every) * 1e6}
    return out


def concurrent_cones(order, running, clients, pool, args, seed: int) -> dict:
    """``args.clients`` client processes, one call in flight each, at one variant after
    the other: cones/s, p50 and the server's CPU time per cone."""
    out = {}
    for variant in order:
        address, server = running[variant]
        credentials = clients[variant][0]
        before = cpu_seconds(server)
        spans = list(pool.map(client_cones, [address] * args.clients,
                              [credentials] * args.clients, [args.client_cones] * args.clients,
                              [seed * 100 + k for k in range(args.clients)]))
        cpu = cpu_seconds(server) - before
        out[variant] = {
            "concurrent_cones_per_s": bench_service.rate(
                [(start, end, len(ms)) for start, end, ms in spans]),
            "concurrent_p50_ms": float(np.percentile(np.concatenate(
                [ms for _, _, ms in spans]), 50)),
            "concurrent_server_cpu_us": cpu / (args.clients * (args.client_cones + 50)) * 1e6}
    return out


def streams(order, running, clients, args, data) -> dict:
    """A cross-match stream, then an annotation stream, to each variant in turn,
    ``args.repeats`` times: per variant the throughput over its streams (items over
    seconds, summed) and the CPU seconds of one stream, the server's and this process's
    (the client's) together."""
    import psutil

    this = psutil.Process()
    qra, qdec = data["positions"]
    alerts = data["alerts"]
    kinds = {
        "crossmatch_positions": (len(qra), lambda stub, client: sum(
            a.queries for a in stub.Crossmatch(crossmatch_requests(qra, qdec, args.batch)))),
        "annotate_alerts": (alerts.num_rows, lambda stub, client: sum(
            b.table.num_rows for b in client.annotate(alerts, catalogs=[CATALOG],
                                                      batch_size=args.alert_batch)))}
    out = {variant: {} for variant in order}
    for kind, (items, run) in kinds.items():
        seconds = dict.fromkeys(order, 0.0)
        cpu = dict.fromkeys(order, 0.0)
        for _ in range(args.repeats):
            for variant in order:
                _, stub, client = clients[variant]
                server = running[variant][1]
                before = cpu_seconds(server) + cpu_seconds(this)
                start = time.perf_counter()
                done = run(stub, client)
                seconds[variant] += time.perf_counter() - start
                cpu[variant] += cpu_seconds(server) + cpu_seconds(this) - before
                assert done == items, (variant, kind, done)
        for variant in order:
            out[variant][f"{kind}_per_s"] = items * args.repeats / seconds[variant]
            out[variant][f"{kind.split('_')[0]}_cpu_s"] = cpu[variant] / args.repeats
    return out


def new_connections(order, running, clients, n: int) -> dict:
    """Median ms of a new connection and its first cone, one to each variant in turn."""
    ms = {variant: [] for variant in order}
    for _ in range(n):
        for variant in order:
            ms[variant].append(new_connection_ms(running[variant][0], clients[variant][0], 1))
    return {variant: {"new_connection_ms": float(np.median(np.concatenate(ms[variant])))}
            for variant in order}


def tls_floor(running, files: dict, rounds: int, messages: int = 100) -> dict:
    """CPU milliseconds (server and client) per megabyte moved through a gRPC stream,
    plain text and TLS, alternating; the difference is what TLS itself costs."""
    import grpc
    import psutil

    this = psutil.Process()
    options = [("grpc.max_send_message_length", 64 * 2**20),
               ("grpc.max_receive_message_length", 64 * 2**20)]
    message = b"x" * ECHO_MESSAGE_BYTES
    calls, channels = {}, []
    for variant in ECHOES:
        address = running[variant][0]
        channel = (grpc.secure_channel(address, grpc.ssl_channel_credentials(
            Path(files["ca"]).read_bytes()), options=options) if variant == "echo_tls"
                   else grpc.insecure_channel(address, options=options))
        channels.append(channel)
        calls[variant] = channel.stream_stream("/bench.Echo/Echo")
        sum(1 for _ in calls[variant](iter([message] * 10)))  # connect, warm
    cpu = {variant: [] for variant in ECHOES}
    for r in range(rounds):
        for variant in ECHOES if r % 2 == 0 else ECHOES[::-1]:
            before = cpu_seconds(running[variant][1]) + cpu_seconds(this)
            sum(1 for _ in calls[variant](iter([message] * messages)))
            cpu[variant].append(cpu_seconds(running[variant][1]) + cpu_seconds(this) - before)
    for channel in channels:
        channel.close()
    megabytes = 2 * messages * ECHO_MESSAGE_BYTES / 1e6  # each message there and back
    plain, tls = (float(np.median(cpu[v])) * 1e3 / megabytes for v in ECHOES)
    return {"plain_cpu_ms_per_mb": plain, "tls_cpu_ms_per_mb": tls,
            "tls_added_cpu_ms_per_mb": tls - plain}


def wire_megabytes(stub, args, data) -> dict:
    """Megabytes a cross-match stream and an annotation stream move (requests and answers,
    as protobuf messages)."""
    from xmatch.service.annotate_stream import alert_batches, annotate_options
    from xmatch.v1 import xmatch_pb2

    qra, qdec = data["positions"]
    sent = sum(r.ByteSize() for r in crossmatch_requests(qra, qdec, args.batch))
    received = sum(a.ByteSize() for a in stub.Crossmatch(crossmatch_requests(qra, qdec,
                                                                             args.batch)))
    requests = [xmatch_pb2.AnnotateRequest(options=annotate_options([CATALOG], None, False,
                                                                    None))]
    for number, (batch, _) in enumerate(alert_batches(data["alerts"], args.alert_batch)):
        batch.batch_id = number
        requests.append(xmatch_pb2.AnnotateRequest(batch=batch))
    annotated = sum(a.ByteSize() for a in stub.Annotate(iter(requests)))
    return {"crossmatch_mb": (sent + received) / 1e6,
            "annotate_mb": (sum(r.ByteSize() for r in requests) + annotated) / 1e6}


def positions(index, n: int, seed: int = 3):
    """``n`` positions: Gaia stars (repeated as needed) moved by up to JITTER_ARCSEC."""
    rng = np.random.default_rng(seed)
    stars = rng.integers(0, len(index), n)
    ra = index.table["ra"].to_numpy()[stars]
    dec = index.table["dec"].to_numpy()[stars]
    step = JITTER_ARCSEC / 3600.0
    dec = np.clip(dec + rng.uniform(-step, step, n), -90, 90)
    ra = (ra + rng.uniform(-step, step, n) / np.maximum(np.cos(np.radians(dec)), 1e-3)) % 360
    return ra, dec


def main(argv=None):
    from xmatch import SkyIndex
    from xmatch.service.client import Client

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="rounds (each variant once)")
    parser.add_argument("--cones", type=int, default=3_000,
                        help="sequential cones per variant and round")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--client-cones", type=int, default=1_000,
                        help="cones per concurrent client and round")
    parser.add_argument("--positions", type=int, default=1_000_000,
                        help="positions per cross-match stream")
    parser.add_argument("--batch", type=int, default=50_000, help="positions per batch")
    parser.add_argument("--alerts", type=int, default=1_000_000,
                        help="compact alerts per annotation stream")
    parser.add_argument("--alert-batch", type=int, default=10_000, help="alerts per batch")
    parser.add_argument("--repeats", type=int, default=2,
                        help="streams of each kind per variant and round")
    parser.add_argument("--connections", type=int, default=10,
                        help="new connections per variant and round")
    parser.add_argument("--work-dir", type=Path, default=HERE / "_work")
    parser.add_argument("--json", type=Path, help="append results as one JSON line here")
    args = parser.parse_args(argv)

    data_dir, catalog = bench_service.service_data(args.work_dir)
    index = SkyIndex.from_catalog(catalog)
    data = {"positions": positions(index, args.positions),
            "alerts": bench_alerts.amplified(args.alerts)}
    del index
    rounds = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="xmatch-exposure-") as temporary, \
            ExitStack() as stack:
        files, token = pki_and_tokens(Path(temporary))
        with servers(data_dir.root, files, ECHOES) as echoes:
            floor = tls_floor(echoes, files, args.rounds)
        running = stack.enter_context(servers(data_dir.root, files))
        pool = stack.enter_context(ProcessPoolExecutor(args.clients,
                                                       mp_context=get_context("spawn")))
        clients = {}
        for variant, (address, _) in running.items():
            credentials = credentials_of(variant, files, token)
            channel = stack.enter_context(credentials.channel(address, []))
            client = stack.enter_context(Client(address, timeout=None, tls=credentials.tls,
                                                token=credentials.token or None))
            clients[variant] = (credentials, credentials.stub(channel), client)
            # Warm every path once: connections of the pool's processes, a stream, a batch.
            list(pool.map(client_cones, [address] * args.clients,
                          [credentials] * args.clients, [10] * args.clients,
                          range(args.clients)))
            qra, qdec = data["positions"]
            sum(a.queries for a in clients[variant][1].Crossmatch(
                crossmatch_requests(qra[:args.batch], qdec[:args.batch], args.batch)))
            list(client.annotate(data["alerts"].slice(0, args.alert_batch),
                                 catalogs=[CATALOG]))
        wire = wire_megabytes(clients[REFERENCE][1], args, data)
        for r in range(args.rounds):
            order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
            phases = [sequential_cones(order, running, clients, args.cones, r),
                      concurrent_cones(order, running, clients, pool, args, r),
                      streams(order, running, clients, args, data),
                      new_connections(order, running, clients, args.connections)]
            for variant in order:
                rounds[variant].append({k: v for phase in phases
                                        for k, v in phase[variant].items()})
            print(f"  round {r + 1}/{args.rounds}: " + ", ".join(
                f"{v} {rounds[v][-1]['cone_p50_ms']:.3f} ms "
                f"{rounds[v][-1]['crossmatch_positions_per_s'] / 1e6:.2f} M pos/s "
                f"{rounds[v][-1]['annotate_alerts_per_s'] / 1e3:.0f} k alerts/s"
                for v in VARIANTS), flush=True)
    results = summarise(rounds, args)
    results["tls_floor"] = floor
    results["wire_mb"] = wire
    # What gRPC's TLS alone would add to each stream's CPU, from the bytes it moves.
    results["tls_floor_predicted_cpu_cost"] = {
        kind: floor["tls_added_cpu_ms_per_mb"] * wire[f"{kind}_mb"]
        / (results["figures"][REFERENCE][f"{kind}_cpu_s"]["median"] * 1e3)
        for kind in ("crossmatch", "annotate")}
    report(results)
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps({"benchmark": "exposure", **results}) + "\n")
    return results


# ------------------------------------------------------------------------- summary

THROUGHPUTS = ("concurrent_cones_per_s", "crossmatch_positions_per_s",
               "annotate_alerts_per_s")
#: Server plus client CPU seconds of one stream: compared as ratios, like throughputs.
CPU_TIMES = ("crossmatch_cpu_s", "annotate_cpu_s")
LATENCIES = ("cone_p50_ms", "cone_p99_ms", "concurrent_p50_ms", "new_connection_ms",
             "cone_server_cpu_us", "concurrent_server_cpu_us")


def spread(values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"median": float(np.median(values)), "min": float(values.min()),
            "max": float(values.max())}


def summarise(rounds: dict, args) -> dict:
    figures = {variant: {key: spread([r[key] for r in rows]) for key in rows[0]}
               for variant, rows in rounds.items()}
    compared = {}
    for variant in VARIANTS:
        if variant == REFERENCE:
            continue
        pairs = list(zip(rounds[variant], rounds[REFERENCE], strict=True))
        entry = {}
        for key in THROUGHPUTS:  # < 1: slower than plain
            entry[f"{key}_ratio"] = spread([a[key] / b[key] for a, b in pairs])
        for key in CPU_TIMES:  # > 1: more CPU than plain
            entry[f"{key}_ratio"] = spread([a[key] / b[key] for a, b in pairs])
        for key in LATENCIES:  # > 0: slower than plain
            entry[f"{key}_added"] = spread([a[key] - b[key] for a, b in pairs])
        compared[f"{variant}_vs_{REFERENCE}"] = entry
    targets = {}
    for variant in ("tokens", "tls", "mtls"):
        entry = compared[f"{variant}_vs_{REFERENCE}"]
        targets[variant] = {
            "crossmatch_cost": 1 - entry["crossmatch_positions_per_s_ratio"]["median"],
            "annotate_cost": 1 - entry["annotate_alerts_per_s_ratio"]["median"],
            "cone_p50_added_ms": entry["cone_p50_ms_added"]["median"]}
        targets[variant]["met"] = bool(
            targets[variant]["crossmatch_cost"] <= TARGET_THROUGHPUT_COST
            and targets[variant]["annotate_cost"] <= TARGET_THROUGHPUT_COST
            and targets[variant]["cone_p50_added_ms"] <= TARGET_ADDED_P50_MS)
    return {"rounds": args.rounds, "cones": args.cones, "clients": args.clients,
            "client_cones": args.client_cones, "positions": args.positions,
            "batch": args.batch, "alerts": args.alerts, "alert_batch": args.alert_batch,
            "repeats": args.repeats, "connections": args.connections,
            "figures": figures, "compared": compared, "targets": targets,
            "per_round": rounds}


def report(results: dict) -> None:
    figures, compared = results["figures"], results["compared"]
    print(f"\nexposure: Gaia DR3 subset, gRPC on loopback, {results['rounds']} rounds "
          "interleaved; median [min-max] over rounds")
    rows = [("cone 5\" p50 (ms)", "cone_p50_ms", 1, ".3f"),
            ("cone 5\" p99 (ms)", "cone_p99_ms", 1, ".3f"),
            ("server CPU per cone (µs)", "cone_server_cpu_us", 1, ".0f"),
            (f"{results['clients']} clients: cones/s", "concurrent_cones_per_s", 1, ",.0f"),
            (f"{results['clients']} clients: p50 (ms)", "concurrent_p50_ms", 1, ".3f"),
            ("cross-match (M positions/s)", "crossmatch_positions_per_s", 1e-6, ".3f"),
            ("cross-match CPU, server + client (s)", "crossmatch_cpu_s", 1, ".2f"),
            ("annotation (k alerts/s)", "annotate_alerts_per_s", 1e-3, ".1f"),
            ("annotation CPU, server + client (s)", "annotate_cpu_s", 1, ".2f"),
            ("new connection + 1 cone (ms)", "new_connection_ms", 1, ".2f")]
    for label, key, scale, form in rows:
        cells = []
        for variant in VARIANTS:
            s = figures[variant][key]
            cells.append(f"{variant} {s['median'] * scale:{form}} "
                         f"[{s['min'] * scale:{form}}-{s['max'] * scale:{form}}]")
        print(f"  {label}: " + "; ".join(cells))
    print(f"  paired with {REFERENCE} round by round (median [min-max]):")
    for name, entry in compared.items():
        parts = [f"cone p50 {entry['cone_p50_ms_added']['median'] * 1e3:+.0f} µs "
                 f"[{entry['cone_p50_ms_added']['min'] * 1e3:+.0f}, "
                 f"{entry['cone_p50_ms_added']['max'] * 1e3:+.0f}]",
                 f"server CPU/cone {entry['cone_server_cpu_us_added']['median']:+.0f} µs"]
        for key, short in (("concurrent_cones_per_s", "concurrent cones"),
                           ("crossmatch_positions_per_s", "cross-match"),
                           ("annotate_alerts_per_s", "annotation")):
            s = entry[f"{key}_ratio"]
            parts.append(f"{short} × {s['median']:.3f} [{s['min']:.3f}-{s['max']:.3f}]")
        for key in CPU_TIMES:
            s = entry[f"{key}_ratio"]
            parts.append(f"{key.split('_')[0]} CPU × {s['median']:.3f} "
                         f"[{s['min']:.3f}-{s['max']:.3f}]")
        print(f"    {name}: " + ", ".join(parts))
    floor, wire = results["tls_floor"], results["wire_mb"]
    predicted = results["tls_floor_predicted_cpu_cost"]
    print(f"  gRPC alone (an echo stream of 1 MB messages): plain text "
          f"{floor['plain_cpu_ms_per_mb']:.2f} ms CPU per MB moved, TLS "
          f"{floor['tls_cpu_ms_per_mb']:.2f} (+{floor['tls_added_cpu_ms_per_mb']:.2f}); a "
          f"cross-match stream moves {wire['crossmatch_mb']:.1f} MB, an annotation stream "
          f"{wire['annotate_mb']:.1f} MB: TLS alone adds {predicted['crossmatch']:.1%} and "
          f"{predicted['annotate']:.1%} to their CPU")
    for variant, t in results["targets"].items():
        print(f"  target ({variant}): cross-match cost {t['crossmatch_cost']:+.1%}, annotation "
              f"cost {t['annotate_cost']:+.1%} (≤ {TARGET_THROUGHPUT_COST:.0%}), cone p50 "
              f"{t['cone_p50_added_ms'] * 1e3:+.0f} µs (≤ {TARGET_ADDED_P50_MS * 1e3:.0f} µs): "
              f"{'met' if t['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
