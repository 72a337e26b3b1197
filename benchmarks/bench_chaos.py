"""Chaos and load: a secured cluster under faults, and a secured server under 64 clients.

(a) kill: ``--alerts`` ZTF-like compact alerts (default 1,000,000) on a Kafka topic (tansu),
    annotated by ``xmatch stream`` through the router of a cluster (three shard processes,
    every partition on two of them; TLS everywhere, client certificates and tokens at the
    shards, tokens at the router, all processes of their own), once without faults and once
    while a shard process is killed -9 every ``--kill-every`` s (10) and restarted. Each
    alert must appear exactly once on the output topic (read_committed) and carry the same
    annotation in both runs. Alerts/s of each run, kills, restarts and the router's calls
    by status and failovers.
(b) link: the same cluster across hosts (network namespaces joined by a bridge:
    tests/service/netns.py; the broker and the stream on a host of their own), while every
    ``--kill-every`` s a shard host's link is cut (``ip link set eth0 down``) for
    ``--cut-seconds`` and restored; exactly once, and the same annotations as (a)'s run
    without faults. Needs root (namespaces); skipped, saying why, elsewhere.
(c) load: ``--clients`` (64) clients for ``--load-seconds`` (600) against a secured server
    process (TLS, tokens with limits): cones (one in ten over its token's rows limit),
    cross-match streams and annotation streams, from 4 client processes; p50/p99 per RPC,
    calls by status (anything but OK and the configured limits' RESOURCE_EXHAUSTED is an
    error), the server's RSS at the start, after warm-up, at most and at the end.

    python benchmarks/bench_chaos.py [--alerts 1000000] [--kill-every 10] [--cut-seconds 4]
                                     [--load-seconds 600] [--clients 64] [--parts kill,link,load]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NETNS = HERE.parent / "tests" / "service"  # netns.py, the namespace harness of the tests
CATALOGS = ["gaia_dr3", "hipparcos2", "gcvs"]
SHARDS = ["shard-0", "shard-1", "shard-2"]
PARTITIONS = 4
PORT = 50051  # on hosts of their own (link), every server listens on this port
ALERT_COLUMNS = ["alert_id", "object_id", "survey", "ra_deg", "dec_deg", "mjd_tai", "band",
                 "mag", "mag_err"]
#: The load's tokens: kind -> (token name, permissions, limits), and what a refusal by that
#: limit says.
CONE_ROWS, FLOOD_RPS, STREAMS = 300, 5, 6
LOAD_TOKENS = {"cones": ("cones", ["query"], {"rows": CONE_ROWS}),
               "flood": ("flood", ["query"], {"rps": FLOOD_RPS}),
               "crossmatch": ("matcher", ["stream"], {"streams": STREAMS}),
               "annotate": ("annotator", ["annotate"], {"streams": STREAMS})}
LIMIT_MESSAGES = {
    "cones": f"token 'cones' may receive at most {CONE_ROWS} per answer",
    "flood": f"token 'flood' is over its limit of {FLOOD_RPS} requests per second",
    "crossmatch": f"token 'matcher' has {STREAMS} streams open, its limit",
    "annotate": f"token 'annotator' has {STREAMS} streams open, its limit"}
#: Share of each kind among the clients (64: 24 cones, 8 flood, 16 + 16 streams).
LOAD_SHARES = {"cones": 24, "flood": 8, "crossmatch": 16, "annotate": 16}
#: Dense: the bright Gaia stars around the Galactic centre (a 2 deg cone holds hundreds).
BIG_CONE = ("gaia_dr3", 266.4, -29.0, 7200.0)


def say(text: str) -> None:
    print(text, flush=True)


# ------------------------------------------------------------------------------ inputs


def ensure_data(work: Path):
    from xmatch import DataDirectory, LoadOptions, load_catalog

    data = DataDirectory(work / "chaos_data")
    for name in CATALOGS:
        if name not in data.names():
            load_catalog(name, data=data, options=LoadOptions(progress=False))
    return data


def make_alerts(data, n: int, seed: int = 17) -> list[bytes]:
    """``n`` compact alerts as ZTF's brokers pass them on (alert and object ids, survey,
    position, TAI time of one night, band, magnitude and error): a quarter within 0.8" of a
    row of each catalog, the rest anywhere; objects seen in 1 to 3 alerts each (the
    alerts of tests/service/test_chaos.py, at any size)."""
    from xmatch import open_catalog

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
    codes = letters[rng.integers(0, 26, (objects, 7))]
    names = ["ZTF" + str(18 + i % 7) + "".join(row) for i, row in enumerate(codes)]
    which = np.sort(rng.integers(0, objects, n))
    mjd = 60310.15 + np.sort(rng.uniform(0, 0.3, n))
    band = rng.choice(["g", "r", "i"], n)
    mag = rng.uniform(14, 21, n)
    jitter = rng.normal(0, 0.1 / 3600, (n, 2))
    return [json.dumps({
        "alert_id": 2_400_000_000_000 + i, "object_id": names[o], "survey": "ZTF",
        "ra_deg": float(ra[o] + jitter[i, 0]) % 360,
        "dec_deg": float(np.clip(dec[o] + jitter[i, 1], -90, 90)),
        "mjd_tai": float(mjd[i]), "band": str(band[i]), "mag": round(float(mag[i]), 3),
        "mag_err": round(float(0.01 + 0.05 * (mag[i] - 14) / 7), 4)}).encode()
        for i, o in enumerate(which)]


@dataclass
class Secrets:
    """The CA, one certificate for every server (its hosts), and the token file."""

    root: Path
    ca: Path
    cert: Path
    key: Path
    tokens: Path
    router_token: Path   # files: kept out of process lists
    stream_token: Path
    load: dict           # kind -> token


def make_secrets(root: Path, hosts: list[str]) -> Secrets:
    from xmatch.service.pki import Authority
    from xmatch.service.security import TokenFile

    root.mkdir(parents=True, exist_ok=True)
    ca = Authority(root)
    server = ca.issue("server", hosts)
    tokens = TokenFile(root / "tokens.json")
    if tokens.path.exists():
        tokens.path.unlink()
    files = {}
    for name, permissions in (("router", ["query", "stream", "annotate"]),
                              ("streamer", ["annotate"])):
        files[name] = root / f"{name}.token"
        files[name].write_text(tokens.add(name, permissions))
    load = {kind: tokens.add(name, permissions, **limits)
            for kind, (name, permissions, limits) in LOAD_TOKENS.items()}
    return Secrets(root, ca.cert, server.cert, server.key, tokens.path, files["router"],
                   files["streamer"], load)


def serving_options(s: Secrets, client_ca: bool) -> list[str]:
    return ["--tls-cert", str(s.cert), "--tls-key", str(s.key), "--tokens", str(s.tokens),
            *(["--tls-client-ca", str(s.ca)] if client_ca else [])]


def client_tls(s: Secrets):
    """What the benchmark shows the servers: the CA, and the servers' certificate as its
    client certificate (shards require one)."""
    from xmatch.service.security import Tls

    return Tls.from_files(s.cert, s.key, ca=s.ca)


# ------------------------------------------------------------------------------ kafka


def new_topic(bootstrap: str, name: str) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, PARTITIONS, 1)]).values():
        future.result(30)
    return name


def publish(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 20})
    for value in values:
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def committed(bootstrap: str, group: str, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    offsets = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], 30)
    consumer.close()
    return sum(max(tp.offset, 0) for tp in offsets)


#: Of every SAMPLE_EVERY alerts (by id) the record itself is kept, to say what differs
#: when digests do.
SAMPLE_EVERY = 100


def topic_digests(bootstrap: str, topic: str) -> tuple[dict, int, dict]:
    """alert id -> 64-bit digest of its record, as a ``read_committed`` reader sees the
    topic to its end; the number of records (a repeated alert counts twice); and the
    records of a sample of alerts (id -> JSON text)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"digest-{topic}",
                         "isolation.level": "read_committed", "enable.partition.eof": True,
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    digests, records, ended, sample = {}, 0, set(), {}
    deadline = time.monotonic() + 600
    while len(ended) < PARTITIONS and time.monotonic() < deadline:
        for message in consumer.consume(10_000, 1.0):
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    ended.add(message.partition())
                    continue
                raise RuntimeError(message.error().str())
            records += 1
            key = int(message.key())
            digests[key] = int.from_bytes(hashlib.blake2b(message.value(),
                                                          digest_size=8).digest(), "little")
            if key % SAMPLE_EVERY == 0:
                sample[key] = message.value().decode()
    consumer.close()
    return digests, records, sample


# ------------------------------------------------------------------------------ a stream run


def stream_run(label: str, bootstrap: str, router: str, s: Secrets, values: list[bytes],
               work: Path, batch_size: int, faults=None, router_metrics: str | None = None
               ) -> tuple[dict, dict]:
    """Publish ``values`` to a new topic, run `xmatch stream` through ``router`` until every
    alert is committed (``faults(stop, t0)`` running meanwhile on a thread, returning its
    record), check exactly once; returns the figures and the output's digests."""
    source = new_topic(bootstrap, f"{label}-in")
    out = new_topic(bootstrap, f"{label}-out")
    started = time.perf_counter()
    publish(bootstrap, source, values)
    say(f"  {label}: {len(values):,} alerts published in {time.perf_counter() - started:.1f} s")
    group = f"{label}-group"
    command = [sys.executable, "-m", "xmatch", "stream", "--bootstrap", bootstrap,
               "--input-topic", source, "--output-topic", out, "--group", group,
               "--server", router, "--catalogs", ",".join(CATALOGS), "--batch-size",
               str(batch_size), "--tls-ca", str(s.ca), "--token-file", str(s.stream_token),
               "--no-progress"]
    log = work / f"{label}-stream.log"
    before = router_codes(router_metrics) if router_metrics else None
    with open(log, "wb") as sink:
        stream = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink)
    t0 = time.perf_counter()
    stop, record, chaos = threading.Event(), {}, None
    if faults is not None:
        chaos = threading.Thread(target=lambda: record.update(faults(stop, t0)), daemon=True)
        chaos.start()
    first = None
    try:
        while True:
            done = committed(bootstrap, group, source)
            if first is None and done:
                first = (time.perf_counter(), done)
            if done >= len(values):
                break
            if stream.poll() is not None:
                raise RuntimeError(f"{label}: the stream exited with {stream.returncode}:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(0.5)
    finally:
        ended = time.perf_counter()
        stop.set()
        if chaos is not None:
            chaos.join(300)
        stream.send_signal(signal.SIGTERM)
        try:
            stream.wait(120)
        except subprocess.TimeoutExpired:
            stream.kill()
            stream.wait()
    n = len(values)
    figures = {"alerts": n, "seconds": round(ended - t0, 1),
               "alerts_per_s": round(n / (ended - t0)),
               "alerts_per_s_from_first_commit": round((n - first[1]) / (ended - first[0]))}
    started = time.perf_counter()
    digests, records, sample = topic_digests(bootstrap, out)
    (work / f"{label}-sample.json").write_text(json.dumps(sample))
    figures["exactly_once"] = records == n and len(digests) == n
    figures["records_read"], figures["distinct_alerts"] = records, len(digests)
    figures["read_seconds"] = round(time.perf_counter() - started, 1)
    retries = re.findall(r"annotation failed \((.*?)\); nothing committed", log.read_text())
    figures["stream_retries"] = len(retries)
    if retries:
        figures["stream_retry_reasons"] = dict(collections.Counter(
            r.split(":")[0][:80] for r in retries))
    if router_metrics:
        after = router_codes(router_metrics)
        change = {key: after[key] - before.get(key, 0) for key in after
                  if after[key] != before.get(key, 0)}
        figures["router_failovers"] = int(change.pop(("failovers", ""), 0))
        figures["router_calls_by_code"] = {f"{method} {code}": int(calls) for
                                           (method, code), calls in change.items()
                                           if method != "Check"}
    figures.update(record)
    say(f"  {label}: {figures}")
    return figures, digests


def router_codes(metrics_url: str) -> dict:
    """(method, code) -> calls, and ("failovers", "") -> failovers, from /metrics."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    with urlopen(metrics_url, timeout=10) as answer:
        text = answer.read().decode()
    counts = collections.Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "xmatch_requests_total":
                counts[sample.labels["method"], sample.labels["code"]] += sample.value
            elif sample.name == "xmatch_failovers_total":
                counts["failovers", ""] += sample.value
    return counts


def compare(reference: dict, digests: dict, samples: tuple[Path, Path]) -> dict:
    """How many alerts' records differ between two runs; for those of the samples (the
    reference's, the run's), which fields differ."""
    differing = [key for key, value in digests.items() if reference.get(key) != value]
    result = {"alerts_compared": len(digests), "annotations_differing": len(differing),
              "equal_to_the_run_without_faults": not differing
              and set(digests) == set(reference)}
    if differing:
        before, after = (json.loads(path.read_text()) for path in samples)
        shown = [key for key in differing if str(key) in before and str(key) in after][:5]
        result["differences_seen_in_the_sample"] = {
            key: list(_differences(json.loads(before[str(key)]), json.loads(after[str(key)])))
            for key in shown}
    return result


def _differences(a, b, path: str = ""):
    """(field path, reference value, run value) of each difference of two records."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in dict.fromkeys([*a, *b]):
            yield from _differences(a.get(key), b.get(key), f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _differences(x, y, f"{path}[{i}]")
    elif a != b:
        yield path, a, b


# ------------------------------------------------------------------------------ (a) kill


class LocalCluster:
    """Three shard processes and a router process on loopback ports, all secured."""

    def __init__(self, data, s: Secrets, work: Path):
        from xmatch.service.plan import make_plan
        from xmatch.stream.broker import free_port

        ports = [free_port() for _ in range(5)]
        self.plan = make_plan(data, shards=3, replicas=2, router_port=ports[0],
                              shard_ports=ports[1:4], catalogs=CATALOGS)
        self.plan_path = work / "chaos_plan.json"
        self.plan.write(self.plan_path)
        self.s, self.work = s, work
        self.metrics_port = ports[4]
        self.metrics = f"http://127.0.0.1:{ports[4]}/metrics"
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs = {}

    def start(self, name: str, wait: bool = True) -> float:
        from xmatch.service.cluster import wait_serving

        started = time.perf_counter()
        log = open(self.work / f"{name}.log", "ab")
        if name == "router":
            arguments = ["cluster", "router", "--plan", str(self.plan_path),
                         *serving_options(self.s, client_ca=False), "--tls-ca", str(self.s.ca),
                         "--token-file", str(self.s.router_token), "--metrics-port",
                         str(self.metrics_port)]
            address = self.plan.router
        else:
            arguments = ["cluster", "shard", "--plan", str(self.plan_path), "--name", name,
                         *serving_options(self.s, client_ca=True)]
            address = self.plan.shards[self.plan.shard_index(name)].address
        self.processes[name] = subprocess.Popen([sys.executable, "-m", "xmatch", *arguments],
                                                stdout=log, stderr=log,
                                                start_new_session=True)
        log.close()
        if wait:
            wait_serving(address, 600, self.processes[name], client_tls_credentials(self.s))
        return time.perf_counter() - started

    def kill(self, name: str) -> None:
        self.processes[name].kill()
        self.processes[name].wait()

    def __enter__(self):
        for name in SHARDS:
            self.start(name, wait=False)
        for name in SHARDS:
            self.start_wait(name)
        self.start("router")
        return self

    def start_wait(self, name: str) -> None:
        from xmatch.service.cluster import wait_serving

        shard = self.plan.shards[self.plan.shard_index(name)]
        wait_serving(shard.address, 600, self.processes[name], client_tls_credentials(self.s))

    def __exit__(self, *exc):
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def client_tls_credentials(s: Secrets):
    from xmatch.service.security import Credentials

    return Credentials(client_tls(s))


def kill_every(cluster: LocalCluster, period: float):
    """``faults`` for :func:`stream_run`: every ``period`` s a shard process, in turn,
    killed -9 and restarted (the next kill waits until it serves again: one shard down at
    a time, as replicas 2 allow)."""
    def faults(stop: threading.Event, t0: float) -> dict:
        kills, turn = [], 0
        next_kill = time.perf_counter() + period
        while not stop.wait(max(next_kill - time.perf_counter(), 0)):
            name = SHARDS[turn % len(SHARDS)]
            turn += 1
            killed = time.perf_counter()
            cluster.kill(name)
            restart = cluster.start(name)
            kills.append({"shard": name, "at_s": round(killed - t0, 1),
                          "serving_again_after_s": round(restart, 1)})
            next_kill = killed + period
        restarts = [k["serving_again_after_s"] for k in kills]
        return {"kills": len(kills), "kill_times_s": [k["at_s"] for k in kills],
                "restart_seconds_median": float(np.median(restarts)) if restarts else None,
                "restart_seconds_max": max(restarts) if restarts else None}

    return faults


def kill_case(data, values, work: Path, args) -> tuple[dict, dict]:
    from xmatch.stream.broker import running_broker

    s = make_secrets(work / "chaos_pki", ["127.0.0.1", "localhost"])
    results = {}
    with LocalCluster(data, s, work) as cluster:
        say(f"  cluster up: router {cluster.plan.router}, shards "
            f"{', '.join(sh.address for sh in cluster.plan.shards)}")
        with running_broker() as bootstrap:
            results["without_faults"], reference = stream_run(
                "calm", bootstrap, cluster.plan.router, s, values, work, args.batch_size,
                router_metrics=cluster.metrics)
        with running_broker() as bootstrap:
            results[f"shard_killed_every_{args.kill_every:g}s"], digests = stream_run(
                "kills", bootstrap, cluster.plan.router, s, values, work, args.batch_size,
                faults=kill_every(cluster, args.kill_every), router_metrics=cluster.metrics)
    results["comparison"] = compare(reference, digests, (work / "calm-sample.json",
                                                         work / "kills-sample.json"))
    faulted = results[f"shard_killed_every_{args.kill_every:g}s"]
    results["rate_ratio_with_faults"] = round(
        faulted["alerts_per_s"] / results["without_faults"]["alerts_per_s"], 3)
    say(f"  comparison: {results['comparison']}")
    return results, reference


# ------------------------------------------------------------------------------ (b) link


def link_case(data, values, work: Path, args, reference: dict | None) -> dict:
    """The cluster across namespaces; the stream, broker and checks run by
    :func:`link_driver` inside the "client" host (the root namespace reaches no host)."""
    sys.path.insert(0, str(NETNS))
    from netns import hosts, netns_available

    from xmatch.service.plan import make_plan

    reason = netns_available()
    if reason is not None:
        say(f"  link: skipped: network namespaces unavailable here: {reason}")
        return {"skipped": reason}
    values_path = work / "link_alerts.bin"
    with open(values_path, "wb") as sink:
        for value in values:
            sink.write(len(value).to_bytes(4, "big") + value)
    with hosts(["client", "router", *SHARDS]) as network:
        s = make_secrets(work / "link_pki", [network[h].address for h in ["router", *SHARDS]])
        plan = make_plan(data, shards=3, replicas=2, catalogs=CATALOGS,
                         router=f"{network['router'].address}:{PORT}",
                         shard_addresses=[f"{network[h].address}:{PORT}" for h in SHARDS])
        plan_path = work / "link_plan.json"
        plan.write(plan_path)
        for host in [*SHARDS, "router"]:
            if host == "router":
                command = ["cluster", "router", "--plan", str(plan_path),
                           *serving_options(s, client_ca=False), "--tls-ca", str(s.ca),
                           "--token-file", str(s.router_token), "--metrics-port", "9100",
                           "--metrics-host", network["router"].address]
            else:
                command = ["cluster", "shard", "--plan", str(plan_path), "--name", host,
                           *serving_options(s, client_ca=True)]
            with open(work / f"link-{host}.log", "wb") as log:
                network.popen(host, [sys.executable, "-m", "xmatch", *command], stdout=log,
                              stderr=log)
        config = {"work": str(work), "values": str(values_path), "router": plan.router,
                  "shards": [sh.address for sh in plan.shards],
                  "netns": {h: network[h].netns for h in SHARDS},
                  "metrics": f"http://{network['router'].address}:9100/metrics",
                  "secrets": {k: str(v) for k, v in s.__dict__.items() if k != "load"},
                  "kill_every": args.kill_every, "cut_seconds": args.cut_seconds,
                  "batch_size": args.batch_size, "calm_run": reference is None}
        config_path = work / "link_config.json"
        config_path.write_text(json.dumps(config))
        driver = network.popen("client", [sys.executable, str(Path(__file__).resolve()),
                                          "--link-driver", str(config_path)])
        if driver.wait() != 0:
            raise RuntimeError(f"the link driver failed (exit {driver.returncode})")
    results = json.loads((work / "link_results.json").read_text())
    ids = np.load(work / "link_ids.npy")
    codes = np.load(work / "link_digests.npy")
    digests = dict(zip(ids.tolist(), codes.tolist(), strict=True))
    calm_here = reference is None  # no run without faults on loopback: one in the hosts
    if calm_here:
        calm_ids, calm_codes = np.load(work / "link_calm_ids.npy"), np.load(
            work / "link_calm_digests.npy")
        reference = dict(zip(calm_ids.tolist(), calm_codes.tolist(), strict=True))
    results["comparison"] = compare(reference, digests, (
        work / ("link-calm-sample.json" if calm_here else "calm-sample.json"),
        work / "link-cut-sample.json"))
    say(f"  comparison: {results['comparison']}")
    return results


def link_driver(config_path: str) -> None:
    """Inside the "client" host: a broker, the stream through the router at its host's
    address, the links cut in turn; results to files of the work directory."""
    from xmatch.service.cluster import wait_serving
    from xmatch.stream.broker import running_broker

    config = json.loads(Path(config_path).read_text())
    work = Path(config["work"])
    s = Secrets(**{k: Path(v) for k, v in config["secrets"].items()}, load={})
    raw = Path(config["values"]).read_bytes()
    values, at = [], 0
    while at < len(raw):
        size = int.from_bytes(raw[at:at + 4], "big")
        values.append(raw[at + 4:at + 4 + size])
        at += 4 + size
    for address in [*config["shards"], config["router"]]:
        wait_serving(address, 600, None, client_tls_credentials(s))
    say(f"  link: cluster serving across hosts, router at {config['router']}")

    def cut_every(stop: threading.Event, t0: float) -> dict:
        cuts, turn = [], 0
        period, down = config["kill_every"], config["cut_seconds"]
        next_cut = time.perf_counter() + period
        while not stop.wait(max(next_cut - time.perf_counter(), 0)):
            shard = SHARDS[turn % len(SHARDS)]
            turn += 1
            netns = config["netns"][shard]
            next_cut = time.perf_counter() + period
            cuts.append({"shard": shard, "at_s": round(time.perf_counter() - t0, 1)})
            subprocess.run(["ip", "-n", netns, "link", "set", "eth0", "down"], check=True)
            stop.wait(down)  # restored even when the stream ends meanwhile
            subprocess.run(["ip", "-n", netns, "link", "set", "eth0", "up"], check=True)
        return {"cuts": len(cuts), "cut_times_s": [c["at_s"] for c in cuts],
                "link_down_seconds_each": down}

    results = {}
    if config["calm_run"]:
        with running_broker() as bootstrap:
            results["without_faults"], calm = stream_run(
                "link-calm", bootstrap, config["router"], s, values, work,
                config["batch_size"], router_metrics=config["metrics"])
        save_digests(calm, work / "link_calm_ids.npy", work / "link_calm_digests.npy")
    with running_broker() as bootstrap:
        label = f"link_cut_every_{config['kill_every']:g}s"
        results[label], digests = stream_run(
            "link-cut", bootstrap, config["router"], s, values, work, config["batch_size"],
            faults=cut_every, router_metrics=config["metrics"])
    save_digests(digests, work / "link_ids.npy", work / "link_digests.npy")
    (work / "link_results.json").write_text(json.dumps(results))


def save_digests(digests: dict, ids_path: Path, codes_path: Path) -> None:
    ids = np.fromiter(digests, dtype=np.int64, count=len(digests))
    np.save(ids_path, ids)
    # Digests as integers: an "S8" array would drop a digest's trailing zero bytes.
    np.save(codes_path, np.array([digests[i] for i in ids.tolist()], dtype=np.uint64))


# ------------------------------------------------------------------------------ (c) load


def load_client_process(address: str, ca: str, tokens: dict, kinds: list[str], seconds: float,
                        seed: int, sky_path: str) -> list:
    """One client process: a thread per entry of ``kinds``, each making its kind's calls
    until ``seconds`` are over; returns ``(kind, what, status, seconds, message, ended)``
    per call (``ended``: wall-clock time)."""
    from xmatch.errors import ServiceError
    from xmatch.service.client import Client
    from xmatch.service.security import Tls

    sky = np.load(sky_path)
    tls = Tls.from_files(ca=ca)
    deadline = time.time() + seconds
    outcomes = []

    def client(kind: str, number: int):
        import pyarrow as pa

        rng = np.random.default_rng(seed * 1000 + number)

        def positions(n):
            rows = rng.integers(0, len(sky), n // 2)
            ra = np.concatenate([sky[rows, 0] + rng.normal(0, 2e-4, len(rows)),
                                 rng.uniform(0, 360, n - len(rows))]) % 360
            dec = np.concatenate([sky[rows, 1],
                                  np.degrees(np.arcsin(rng.uniform(-1, 1, n - len(rows))))])
            return ra, np.clip(dec, -90, 90)

        def call(c):
            catalog = CATALOGS[rng.integers(0, len(CATALOGS))]
            if kind == "cones" and rng.random() < 0.1:
                return "Cone over the rows limit", lambda: c.cone_search(*BIG_CONE, arrow=True)
            if kind in ("cones", "flood"):
                (ra,), (dec,) = positions(1)
                radius = float(rng.choice([2.0, 10.0, 60.0, 300.0]))
                return "Cone", lambda: c.cone_search(catalog, ra, dec, radius, arrow=True)
            if kind == "crossmatch":
                ra, dec = positions(2_000)
                return "Crossmatch", lambda: c.crossmatch(catalog, ra, dec, radius_arcsec=2.0,
                                                          batch_size=1_000, arrow=True)
            ra, dec = positions(1_000)
            alerts = pa.table({"alert_id": np.arange(1_000), "ra_deg": ra, "dec_deg": dec,
                               "mjd_tai": np.full(1_000, 60310.2)})
            return "Annotate", lambda: list(c.annotate(alerts, catalogs=CATALOGS,
                                                       batch_size=500, retries=0))

        with Client(address, tls=tls, token=tokens[kind], timeout=60) as c:
            while time.time() < deadline:
                what, ask = call(c)
                started = time.perf_counter()
                try:
                    ask()
                    status, message = "OK", ""
                except ServiceError as error:
                    status, message = error.code.name, error.details
                except Exception as error:  # noqa: BLE001 (reported as it is)
                    status, message = type(error).__name__, str(error)
                outcomes.append((kind, what, status, time.perf_counter() - started,
                                 message[:200], time.time()))
                if status == "RESOURCE_EXHAUSTED":
                    time.sleep(0.02)

    threads = [threading.Thread(target=client, args=(kind, n)) for n, kind in enumerate(kinds)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def load_case(data, work: Path, args) -> dict:
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    from urllib.request import urlopen

    import psutil

    from xmatch import open_catalog
    from xmatch.service.cluster import wait_serving
    from xmatch.service.security import Credentials, Tls
    from xmatch.stream.broker import free_port

    s = make_secrets(work / "load_pki", ["127.0.0.1", "localhost"])
    rows = [open_catalog(name, data).read(columns=["ra", "dec"]) for name in CATALOGS]
    sky_path = work / "load_sky.npy"
    np.save(sky_path, np.column_stack([np.concatenate([r["ra"].to_numpy() for r in rows]),
                                       np.concatenate([r["dec"].to_numpy() for r in rows])]))
    port, metrics_port = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    with open(work / "load-server.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "xmatch", "serve", "--data", str(data.root), "--port",
             str(port), *serving_options(s, client_ca=False), "--metrics-port",
             str(metrics_port)], stdout=log, stderr=log)
    try:
        wait_serving(address, 600, server, Credentials(Tls.from_files(ca=s.ca)))
        total = sum(LOAD_SHARES.values())
        kinds = [kind for kind, share in LOAD_SHARES.items()
                 for _ in range(round(share * args.clients / total))]
        processes = 4
        watched = psutil.Process(server.pid)
        samples = []  # (time, RSS)
        cpu_before = sum(watched.cpu_times()[:2])
        started = time.time()
        with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(load_client_process, address, str(s.ca), s.load,
                                   kinds[p::processes], args.load_seconds, p, str(sky_path))
                       for p in range(processes)]
            while not all(f.done() for f in futures):
                samples.append((time.time(), watched.memory_info().rss))
                time.sleep(1.0)
            outcomes = [o for f in futures for o in f.result()]
        seconds = time.time() - started
        cpu = (sum(watched.cpu_times()[:2]) - cpu_before) / seconds
        samples.append((time.time(), watched.memory_info().rss))
        with urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as answer:
            served = answer.read().decode()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    return load_report(outcomes, samples, started, seconds, cpu, served, len(kinds))


def load_report(outcomes, samples, started, seconds, cpu, served_text, clients) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    by = collections.defaultdict(list)
    for _, what, status, took, _, _ in outcomes:
        by[what, status].append(took)
    per_rpc = {}
    for (what, status), values in sorted(by.items()):
        ms = np.array(values) * 1e3
        per_rpc[f"{what} {status}"] = {"calls": len(ms),
                                       "p50_ms": round(float(np.percentile(ms, 50)), 2),
                                       "p99_ms": round(float(np.percentile(ms, 99)), 2)}
    unexpected = [o for o in outcomes if o[2] not in ("OK", "RESOURCE_EXHAUSTED")
                  or (o[2] == "RESOURCE_EXHAUSTED" and LIMIT_MESSAGES[o[0]] not in o[4])]
    rss = np.array([r for _, r in samples]) / 2**20
    # Warm-up: until a third of the calls were made (a count of calls, not a time).
    ends = np.sort([o[5] for o in outcomes])
    warm_until = ends[len(ends) // 3] if len(ends) else started
    warm = max(1, int(np.searchsorted([t for t, _ in samples], warm_until)))
    server_codes = collections.Counter()
    for family in text_string_to_metric_families(served_text):
        for sample in family.samples:
            if sample.name == "xmatch_requests_total" and sample.labels["method"] != "Check":
                server_codes[f"{sample.labels['method']} {sample.labels['code']}"] += int(
                    sample.value)
    report = {"clients": clients, "seconds": round(seconds, 1), "calls": len(outcomes),
              "calls_per_s": round(len(outcomes) / seconds, 1), "per_rpc": per_rpc,
              "calls_by_status": dict(collections.Counter(o[2] for o in outcomes)),
              "refusals_by_limit": dict(collections.Counter(
                  o[0] for o in outcomes if o[2] == "RESOURCE_EXHAUSTED")),
              "unexpected_errors": len(unexpected),
              "unexpected_examples": [o[:3] + (o[4],) for o in unexpected[:5]],
              "server_calls_by_code": dict(server_codes),
              "server_cpu_cores": round(cpu, 2),
              "rss_mib_start": round(float(rss[0]), 1),
              "rss_mib_after_warmup": round(float(rss[:warm].max()), 1),
              "rss_mib_max_after_warmup": round(float(rss[warm:].max()), 1),
              "rss_mib_end": round(float(rss[-1]), 1),
              "rss_mib_by_tenth": [round(float(r), 1)
                                   for r in rss[::max(1, len(rss) // 10)]]}
    say(f"  load: {json.dumps(report, indent=1)}")
    return report


# ------------------------------------------------------------------------------ main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=1_000_000,
                        help="compact alerts per stream run (default 1000000)")
    parser.add_argument("--kill-every", type=float, default=10.0,
                        help="seconds between shard kills, and between link cuts (default 10)")
    parser.add_argument("--cut-seconds", type=float, default=4.0,
                        help="how long a cut link stays down (default 4)")
    parser.add_argument("--batch-size", type=int, default=2000,
                        help="xmatch stream --batch-size (default 2000)")
    parser.add_argument("--load-seconds", type=float, default=600.0,
                        help="length of the load (default 600)")
    parser.add_argument("--clients", type=int, default=64, help="clients of the load")
    parser.add_argument("--parts", default="kill,link,load",
                        help="which cases to run (default kill,link,load)")
    parser.add_argument("--work-dir", type=Path, default=HERE / "_work")
    parser.add_argument("--json", help="append the figures to this JSON-lines file")
    parser.add_argument("--link-driver", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.link_driver:
        return link_driver(args.link_driver)
    parts = args.parts.split(",")
    unknown = set(parts) - {"kill", "link", "load"}
    if unknown:
        parser.error(f"--parts: {', '.join(sorted(unknown))} unknown; choose among kill, "
                     "link, load")
    work = args.work_dir / "chaos"
    work.mkdir(parents=True, exist_ok=True)
    data = ensure_data(args.work_dir)
    figures = {"benchmark": "chaos", "catalogs": CATALOGS, "cpus": os.cpu_count()}
    reference = None
    if "kill" in parts or "link" in parts:
        started = time.perf_counter()
        values = make_alerts(data, args.alerts)
        say(f"{len(values):,} alerts made in {time.perf_counter() - started:.1f} s")
    if "kill" in parts:
        say("== (a) a shard process killed -9 and restarted every "
            f"{args.kill_every:g} s ==")
        figures["kill"], reference = kill_case(data, values, work, args)
    if "link" in parts:
        say(f"== (b) a shard host's link cut for {args.cut_seconds:g} s every "
            f"{args.kill_every:g} s ==")
        figures["link"] = link_case(data, values, work, args, reference)
    if "load" in parts:
        say(f"== (c) {args.clients} clients for {args.load_seconds:g} s ==")
        figures["load"] = load_case(data, work, args)
    print(json.dumps(figures))
    if args.json:
        with open(args.json, "a") as sink:
            sink.write(json.dumps(figures) + "\n")
    return figures


if __name__ == "__main__":
    main()
