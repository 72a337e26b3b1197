"""``xmatch serve`` and ``xmatch cluster``: the gRPC service, embedded or sharded."""

from __future__ import annotations

import argparse

from xmatch.cli import common
from xmatch.cli.context import add_context_config, context_config_of


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port; give 0..65535 (0: any free)")
    return value


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
    serve.add_argument("--port", type=_port, default=50051, help="port (0: any free port)")
    add_context_config(serve, "the bundled default")
    serve.add_argument("--history", action="store_true",
                       help="keep the data directory's alert history: Annotate with history "
                            "records alerts; ObjectHistory answers (docs/history.md). "
                            "Watchlists and watchmaps are served either way")
    common.add_data(serve)
    serve.set_defaults(run=run_serve)

    cluster = commands.add_parser(
        "cluster", help="run a local cluster: shard servers behind a router",
        description="Plan how the catalogs of a data directory are spread over shard "
                    "servers (`plan`), then run them (`up`), or run one shard or the router "
                    "on its own (`shard`, `router`).")
    steps = cluster.add_subparsers(dest="step", required=True, metavar="STEP")
    plan = steps.add_parser(
        "plan", help="write a cluster plan balanced by rows",
        description="Places every partition of every catalog on --replicas of --shards shard "
                    "servers, largest partitions first on the least loaded shards, and writes "
                    "the plan (JSON) for `xmatch cluster up`.")
    plan.add_argument("--shards", type=common.positive_int, required=True,
                      help="number of shard servers")
    plan.add_argument("--replicas", type=common.positive_int, default=1,
                      help="shard servers holding each partition (default 1)")
    plan.add_argument("--host", default="127.0.0.1", help="host of every server")
    plan.add_argument("--port", type=_port, default=50051,
                      help="router port; shard i listens on port + 1 + i (default 50051)")
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
    shard = steps.add_parser("shard", help="serve one shard of a plan")
    shard.add_argument("--plan", required=True, metavar="FILE", help="the plan file")
    shard.add_argument("--name", required=True, help="the shard's name in the plan (shard-0...)")
    router = steps.add_parser("router", help="serve the router of a plan")
    router.add_argument("--plan", required=True, metavar="FILE", help="the plan file")
    add_context_config(router, "the bundled default")
    cluster.set_defaults(run=run_cluster)


def run_serve(args) -> int:
    from xmatch.history.memory import AlertMemory
    from xmatch.service.embedded import serve

    data = common.data_of(args)
    with AlertMemory(data, history=args.history) as memory:
        serve(data, host=args.host, port=args.port, context=context_config_of(args),
              memory=memory)
    return 0


def run_cluster(args) -> int:
    from xmatch.service import cluster
    from xmatch.service.plan import Plan, make_plan

    if args.step == "plan":
        plan = make_plan(common.data_of(args), args.shards, args.replicas, args.host,
                         args.port, catalogs=args.catalogs.split(",") if args.catalogs
                         else None)
        plan.write(args.out)
        total = sum(s.rows for slices in plan.catalogs.values() for s in slices)
        print(f"{args.out}: {total:,} rows of {len(plan.catalogs)} catalog(s) on "
              f"{len(plan.shards)} shard(s), {plan.replicas} replica(s) each; router at "
              f"{plan.router}")
        for i, shard in enumerate(plan.shards):
            print(f"  {shard.name} at {shard.address}: {plan.rows_held_by(i):,} rows")
    elif args.step == "up":
        cluster.cluster_up(args.plan, context_config_of(args))
    elif args.step == "shard":
        cluster.serve_shard(Plan.read(args.plan), args.name)
    else:
        cluster.serve_router(Plan.read(args.plan), context=context_config_of(args))
    return 0
