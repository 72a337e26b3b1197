"""``xmatch annotate``: alert packets annotated with their counterparts."""

from __future__ import annotations

import argparse
from pathlib import Path

from xmatch.cli import common
from xmatch.cli.context import add_context, context_config_of


def add_parsers(commands) -> None:
    annotate = commands.add_parser(
        "annotate", help="annotate ZTF / Rubin alert packets with their counterparts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reads alert packets (ZTF and Rubin/LSST Avro: .avro files, directories "
                    "of them, tarballs), annotates each with its counterparts in the catalogs "
                    "(nearest source: id, separation, position angle, key columns; number "
                    "within the radius; proper motions moved to the alert's time) and writes "
                    "Parquet, JSON lines or annotated Avro. Without --server it serves the "
                    "data directory's catalogs itself. An interrupted run resumes where it "
                    "stopped when run again with the same inputs and options. A packet that "
                    "cannot be read gets an error row naming its file (and tar member); an "
                    "input that cannot be read at all stops the run, naming it.",
        epilog="examples:\n"
               "  xmatch annotate alerts/ --out annotated.parquet\n"
               "  xmatch annotate night.tar.gz --catalogs gaia_dr3,gcvs --radius "
               "gaia_dr3=1.5arcsec --server localhost:50051 --out night/")
    annotate.add_argument("inputs", nargs="+", metavar="INPUT",
                          help=".avro files, directories (searched recursively) or tarballs")
    annotate.add_argument("--out", required=True, metavar="PATH",
                          help="output: FILE.parquet, FILE.jsonl, FILE.avro (one schema), or "
                               "DIR/ (one annotated .avro per alert)")
    annotate.add_argument("--format", choices=["parquet", "jsonl", "avro"], default=None,
                          help="output format (default: from --out)")
    annotate.add_argument("--catalogs", metavar="A,B",
                          help="catalogs to annotate with, in this order (default: all; "
                               "sso: known solar-system objects at each alert's time, from "
                               "the nightly caches of `xmatch sso build`)")
    annotate.add_argument("--radius", action="append", default=[], metavar="NAME=ANGLE",
                          help="radius for one catalog, e.g. gaia_dr3=1.5arcsec (repeatable; "
                               "default: each catalog's own)")
    annotate.add_argument("--observatory", metavar="CODE",
                          help="MPC site code for sso of alerts whose survey has no known "
                               "site (ZTF is I41, LSST is X05)")
    annotate.add_argument("--all-matches", action="store_true",
                          help="also list every source within the radius, not only the nearest")
    annotate.add_argument("--schema", action="append", default=[], metavar="ID=FILE.avsc",
                          help="writer schema of Confluent wire-format packets with that id "
                               "(repeatable; Rubin's are known with lsst-alert-packet)")
    annotate.add_argument("--batch-size", type=common.positive_int, default=None,
                          help="alerts per streamed batch (default 5000)")
    add_context(annotate)
    common.add_memory(annotate)
    common.add_server(annotate, "serving the data directory in process")
    annotate.add_argument("--no-progress", action="store_true", help="no progress bar")
    common.add_data(annotate)
    annotate.set_defaults(run=run_annotate)


def radii_of(items: list[str]) -> dict[str, float]:
    """``--radius NAME=ANGLE`` options as {catalog: arcsec}."""
    from xmatch.errors import InputError
    from xmatch.sky.coords import radius_of_text

    radius = {}
    for item in items:
        name, sep, angle = item.partition("=")
        if not sep or not name:
            raise InputError(f"--radius {item!r}: give NAME=ANGLE, e.g. gaia_dr3=1.5arcsec")
        if name in radius:
            raise InputError(f"--radius names {name} twice")
        try:
            radius[name] = radius_of_text(angle)
        except InputError as error:
            raise InputError(f"--radius {item!r}: {error}") from None
    return radius


def run_annotate(args) -> int:
    from contextlib import ExitStack

    from xmatch.alerts.pipeline import annotate_files
    from xmatch.alerts.sources import check_inputs
    from xmatch.errors import InputError

    check_inputs(args.inputs)  # before a server is started or a catalog loaded
    context = context_config_of(args)
    catalogs = args.catalogs.split(",") if args.catalogs else None
    radius = radii_of(args.radius)
    schemas = {}
    for item in args.schema:
        number, sep, path = item.partition("=")
        if not sep or not number.isdigit():
            raise InputError(f"--schema {item!r}: give ID=FILE.avsc, e.g. 1101=alert.avsc")
        try:
            schemas[int(number)] = Path(path).read_text()
        except OSError as exc:
            raise InputError(f"--schema {item!r}: cannot read {path}: {exc.strerror}") from None
    with ExitStack() as stack:
        address = args.server
        if address is None:
            from xmatch.service.embedded import running_server

            data, served = served_for_annotation(args, catalogs, context)
            memory = common.memory_of(args, data)
            if memory is not None:
                stack.enter_context(memory)
            address = stack.enter_context(running_server(served, context=context,
                                                         memory=memory))
        client = stack.enter_context(common.client_of(args, address, timeout=None))
        summary = annotate_files(client, args.inputs, args.out, fmt=args.format,
                                 catalogs=catalogs, radius_arcsec=radius or None,
                                 all_matches=args.all_matches, schemas=schemas,
                                 observatory=args.observatory, context=args.context,
                                 history=args.history, watches=args.watches,
                                 batch_size=args.batch_size, progress=not args.no_progress)
    print_annotation_summary(summary)
    return 0


def served_for_annotation(args, catalogs: list[str] | None, config):
    """The data directory and the catalogs to serve in process for an annotation: those
    asked for (None: every one), and with ``--context`` the ones its layers read that the
    directory has (a layer without its catalog fails, saying so)."""
    from xmatch.context.config import read_context_config
    from xmatch.service.embedded import served_catalogs

    data = common.data_of(args)
    names = catalogs
    if catalogs is not None and args.context:
        held = set(data.names())
        layers = [name for name in (config or read_context_config()).catalogs if name in held]
        names = list(dict.fromkeys([*catalogs, *layers]))
    return data, served_catalogs(data, names=names)


def print_annotation_summary(summary) -> None:
    resumed = f" ({summary.resumed:,} written by an earlier run)" if summary.resumed else ""
    out = f" -> {summary.out}" if summary.out else ""
    print(f"{summary.alerts + summary.resumed:,} alerts{resumed}: {summary.annotated:,} "
          f"annotated, {summary.errors:,} with errors, {summary.rate:,.0f} alerts/s{out}")
    for example in summary.error_examples:
        print(f"  error: {example}")
    print(f"\n{'catalog':<14}{'radius':>9}{'matched':>10}{'fraction':>10}{'median sep':>12}"
          f"{'outside':>9}{'failed':>8}")
    for name, radius, matched, fraction, median, outside, failed in summary.rows():
        median = f"{median:.3f}\"" if matched else "-"
        print(f"{name:<14}{radius:>8.2f}\"{matched:>10,}{fraction:>10.1%}{median:>12}"
              f"{outside:>9,}{failed:>8,}")
    for label, counts in (("context classes", summary.classes),
                          ("history", summary.history_states),
                          ("alerts hitting each watch", summary.watch_hits)):
        if counts:
            print(f"\n{label}: " + ", ".join(
                f"{name} {count:,}" for name, count in sorted(counts.items(),
                                                              key=lambda item: -item[1])))
