"""``xmatch serve`` and ``xmatch cluster``: the gRPC service, embedded or sharded."""

from __future__ import annotations

import argparse
import textwrap

from xmatch.cli import common
from xmatch.cli.context import add_context_config, context_config_of


def _address(text: str) -> str:
    """``HOST:PORT`` of a server, as in a plan."""
    from xmatch.errors import InputError
    from xmatch.service.plan import address_of

    try:
        return address_of(text, "address")
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _addresses(text: str) -> list[str]:
    """``H1:P1,H2:P2,...``: one ``HOST:PORT`` per shard, in order."""
    items = [item.strip() for item in text.split(",")]
    if "" in items:
        raise argparse.ArgumentTypeError(f"{text!r} has an empty item; give H1:P1,H2:P2,...")
    return [_address(item) for item in items]


CLUSTER_EPILOG = """\
examples, one host:
  xmatch cluster plan --shards 3 --replicas 2 --out cluster.json
  xmatch cluster up --plan cluster.json

examples, across hosts (every host reads the plan's data directory at the same path):
  xmatch cluster plan --shards 3 --replicas 2 --router 10.0.0.1:50051 \\
      --shard-addresses 10.0.0.2:50051,10.0.0.3:50051,10.0.0.4:50051 --out cluster.json
  xmatch cluster shard --plan cluster.json --name shard-0     # on 10.0.0.2
  xmatch cluster shard --plan cluster.json --name shard-1     # on 10.0.0.3
  xmatch cluster shard --plan cluster.json --name shard-2 --listen 0.0.0.0:50051
  xmatch cluster router --plan cluster.json                   # on 10.0.0.1
  xmatch cone gaia_dr3 56.75 24.12 --radius 1arcmin --server 10.0.0.1:50051"""


def add_parsers(commands) -> None:
    serve = commands.add_parser(
        "serve", help="serve every catalog of the data directory over gRPC (embedded mode)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Loads the bundled default catalogs if the data directory is empty, "
                    "indexes every catalog in memory and serves the xmatch.v1 gRPC API (with "
                    "health checking and reflection) until Ctrl-C or SIGTERM, then drains. "
                    "A port another process listens on is refused.",
        epilog="examples:\n  xmatch serve --port 50051\n"
               "  xmatch cone gaia_dr3 56.75 24.12 --radius 1arcmin --server localhost:50051")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=common.port, default=50051, help="port (0: any free port)")
    add_context_config(serve, "the bundled default")
    serve.add_argument("--history", action="store_true",
                       help="keep the data directory's alert history: Annotate with history "
                            "records alerts; ObjectHistory answers (docs/history.md). "
                            "Watchlists and watchmaps are served either way")
    common.add_data(serve)
    common.add_exposure(serve)
    common.add_http(serve)
    common.add_config(serve)
    serve.set_defaults(run=run_serve)

    cluster = commands.add_parser(
        "cluster", help="run a cluster: shard servers behind a router, on one host or many",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Plan how the catalogs of a data directory are spread over shard servers "
            "(`plan`), then run them all on this host (`up`), or run one shard or the "
            "router on its own host (`shard`, `router`).", 79),
        epilog=CLUSTER_EPILOG)
    steps = cluster.add_subparsers(dest="step", required=True, metavar="STEP")
    plan = steps.add_parser(
        "plan", help="write a cluster plan balanced by rows",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Places every partition of every catalog on --replicas of --shards shard "
            "servers, largest partitions first on the least loaded shards, and writes the "
            "plan (JSON) for `xmatch cluster up`, `shard` and `router`. The servers are all "
            "on one host (--host, --port) or each on its own (--router, --shard-addresses: "
            "the addresses the others reach them by).", 79),
        epilog=CLUSTER_EPILOG)
    plan.add_argument("--shards", type=common.positive_int, required=True,
                      help="number of shard servers")
    plan.add_argument("--replicas", type=common.positive_int, default=1,
                      help="shard servers holding each partition (default 1)")
    plan.add_argument("--host", help="one host for every server (default 127.0.0.1)")
    plan.add_argument("--port", type=common.port,
                      help="router port on --host; shard i on port + 1 + i (default 50051)")
    plan.add_argument("--router", type=_address, metavar="HOST:PORT",
                      help="servers on several hosts: the router's address (with "
                           "--shard-addresses, instead of --host and --port)")
    plan.add_argument("--shard-addresses", type=_addresses, metavar="H1:P1,H2:P2,...",
                      help="servers on several hosts: each shard's address, shard-0 first, "
                           "one per shard")
    plan.add_argument("--catalogs", metavar="A,B", help="catalogs to serve (default: all)")
    plan.add_argument("--out", default="cluster.json", help="plan file (default cluster.json)")
    common.add_data(plan)
    up = steps.add_parser(
        "up", help="start the shard servers and the router of a plan",
        description="Starts one process per shard, waits until each is SERVING, serves the "
                    "router in this process and restarts shards that die. Ctrl-C or SIGTERM "
                    "stops the router, then the shards, each draining running calls.")
    up.add_argument("--plan", required=True, metavar="FILE", help="the plan file")
    add_context_config(up, "the bundled default; the router answers context")
    _add_router_options(up)
    common.add_config(up)
    shard = steps.add_parser("shard", help="serve one shard of a plan (on its own host)")
    shard.add_argument("--plan", required=True, metavar="FILE", help="the plan file")
    shard.add_argument("--name", required=True, help="the shard's name in the plan (shard-0...)")
    common.add_exposure(shard)
    common.add_config(shard)
    shard.add_argument("--listen", type=_address, metavar="HOST:PORT",
                       help="address to listen on, where it differs from the shard's address "
                            "in the plan (behind NAT; 0.0.0.0:PORT for every interface)")
    router = steps.add_parser("router", help="serve the router of a plan (on its own host)")
    router.add_argument("--plan", required=True, metavar="FILE", help="the plan file")
    router.add_argument("--listen", type=_address, metavar="HOST:PORT",
                        help="address to listen on, where it differs from the router's "
                             "address in the plan (behind NAT; 0.0.0.0:PORT for every "
                             "interface)")
    add_context_config(router, "the bundled default")
    _add_router_options(router)
    common.add_config(router)
    cluster.set_defaults(run=run_cluster)


def _add_router_options(parser) -> None:
    """A router serves (TLS, tokens, limits, metrics) and calls its shards: over TLS when it
    serves TLS, checking their certificates against --tls-ca, with its own token."""
    common.add_exposure(parser)
    common.add_http(parser)
    group = parser.add_argument_group("calling the shards")
    group.add_argument("--tls-ca", metavar="FILE", dest="tls_ca",
                       help="with TLS: the CA (PEM) that signed the shards' certificates "
                            "(default: the system's); the router shows its own certificate "
                            "to shards that require client certificates")
    group.add_argument("--token", dest="auth_token", metavar="TOKEN",
                       help="the router's token for shards that require tokens (default: "
                            "$XMATCH_TOKEN; `xmatch token add router --permissions "
                            "query,stream,annotate`)")
    group.add_argument("--token-file", dest="auth_token_file", metavar="FILE",
                       help="read the router's token from this file")


def _router_security(args, address: str):
    """The router's exposure, and the credentials it shows its shards (TLS when it serves
    TLS: one cluster, one transport)."""
    from xmatch.service.security import Credentials, Tls, read_token

    exposure = common.exposure_of(args, address)
    tls = None
    if exposure.tls is not None:
        tls = Tls.from_files(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca)
    return exposure, Credentials(tls, read_token(args.auth_token, args.auth_token_file))


def _shard_arguments(args):
    """The command-line arguments `cluster up` gives shard ``i``: its own TLS, tokens,
    limits and logs; metrics on --metrics-port + 1 + i (any free port with 0)."""
    def arguments(i: int) -> list[str]:
        given = []
        for option, dest in (("--tls-cert", "tls_cert"), ("--tls-key", "tls_key"),
                             ("--tls-client-ca", "tls_client_ca"), ("--tokens", "auth_tokens"),
                             ("--max-rows", "limits_max_rows"),
                             ("--max-radius", "limits_max_radius_arcsec"),
                             ("--max-batch", "limits_max_batch"),
                             ("--max-message-bytes", "limits_max_message_bytes"),
                             ("--log-format", "logging_format"),
                             ("--log-level", "logging_level"), ("--log-file", "logging_file"),
                             ("--metrics-host", "metrics_host")):
            value = getattr(args, dest)
            if value is not None:
                given += [option, f"{value}arcsec" if dest == "limits_max_radius_arcsec"
                          else str(value)]
        if args.tls_plaintext:
            given.append("--plaintext")
        if args.metrics_port is not None:
            given += ["--metrics-port", str(args.metrics_port and args.metrics_port + 1 + i)]
        return given

    return arguments


def run_serve(args) -> int:
    from xmatch.history.memory import AlertMemory
    from xmatch.service.embedded import serve

    exposure = common.exposure_of(args, f"{args.host}:{args.port}")
    data = common.data_of(args)
    with AlertMemory(data, history=args.history) as memory:
        serve(data, host=args.host, port=args.port, limits=common.limits_of(args),
              context=context_config_of(args), memory=memory, exposure=exposure)
    return 0


def run_cluster(args) -> int:
    from xmatch.service import cluster
    from xmatch.service.plan import Plan, make_plan

    if args.step == "plan":
        plan = make_plan(common.data_of(args), args.shards, args.replicas,
                         catalogs=args.catalogs.split(",") if args.catalogs else None,
                         **_plan_addresses(args))
        plan.write(args.out)
        total = sum(s.rows for slices in plan.catalogs.values() for s in slices)
        print(f"{args.out}: {total:,} rows of {len(plan.catalogs)} catalog(s) on "
              f"{len(plan.shards)} shard(s), {plan.replicas} replica(s) each; router at "
              f"{plan.router}")
        for i, shard in enumerate(plan.shards):
            print(f"  {shard.name} at {shard.address}: {plan.rows_held_by(i):,} rows")
    elif args.step == "up":
        plan = Plan.read(args.plan)
        exposure, credentials = _router_security(args, plan.router)
        cluster.cluster_up(args.plan, context_config_of(args), _shard_arguments(args),
                           common.limits_of(args), exposure, credentials)
    elif args.step == "shard":
        plan = Plan.read(args.plan)
        listen = args.listen or plan.shards[plan.shard_index(args.name)].address
        cluster.serve_shard(plan, args.name, common.limits_of(args), listen,
                            common.exposure_of(args, listen))
    else:
        plan = Plan.read(args.plan)
        exposure, credentials = _router_security(args, args.listen or plan.router)
        cluster.serve_router(plan, common.limits_of(args), context_config_of(args),
                             args.listen, exposure, credentials)
    return 0


def _plan_addresses(args) -> dict:
    """The address arguments of ``make_plan``: one host, or each server's own address."""
    from xmatch.errors import InputError

    if args.router is None and args.shard_addresses is None:
        return {"host": args.host, "router_port": args.port}
    if args.host is not None or args.port is not None:
        raise InputError("--host and --port put every server on one host; --router and "
                         "--shard-addresses give each its own address: use one form")
    if args.router is None or args.shard_addresses is None:
        raise InputError("--router and --shard-addresses go together: the router's "
                         "HOST:PORT and one HOST:PORT per shard")
    if len(args.shard_addresses) != args.shards:
        raise InputError(f"--shard-addresses gives {len(args.shard_addresses)} address(es) "
                         f"for --shards {args.shards}; give one HOST:PORT per shard")
    return {"router": args.router, "shard_addresses": args.shard_addresses}
