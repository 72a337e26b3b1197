"""``xmatch history`` (the alert history) and ``xmatch watch`` (watchlists, watchmaps)."""

from __future__ import annotations

import argparse
import json

from xmatch.cli import common


def add_parsers(commands) -> None:
    history = commands.add_parser(
        "history", help="the alert history: objects, their detections, compaction",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Alerts annotated with --history (xmatch annotate, xmatch stream, the "
                    "Annotate RPC) are recorded as detections on objects, in the data "
                    "directory's alert history (docs/history.md).",
        epilog="examples:\n"
               "  xmatch annotate night/ --history --out night.parquet\n"
               "  xmatch history info\n"
               "  xmatch history object 42 --out object42.csv\n"
               "  xmatch history compact\n"
               "  xmatch cone history_objects 150.1 2.2 --radius 5arcsec   (after compaction)")
    steps = history.add_subparsers(dest="step", required=True, metavar="STEP")
    info = steps.add_parser("info", help="how many objects and detections, memory, association")
    common.add_data(info)
    obj = steps.add_parser("object", help="one object: its summary and every detection")
    obj.add_argument("object_id", type=common.positive_int, help="the xmatch object id")
    common.add_output(obj)
    common.add_server(obj)
    common.add_data(obj)
    compact = steps.add_parser(
        "compact", help="publish the history as HATS catalogs (history_objects, "
                        "history_detections) and trim its log")
    compact.add_argument("--no-progress", action="store_true", help="no progress bar")
    common.add_data(compact)
    history.set_defaults(run=run_history)

    watch = commands.add_parser(
        "watch", help="watchlists and watchmaps: what alerts are checked against",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A watchlist is a table of positions, each with its own radius (up to "
                    "3600 arcsec) and optionally a name; a watchmap is a region (a MOC, or a "
                    "sky map's credible region). Alerts annotated with --watches report their "
                    "hits; adding or replacing a watch matches it against every detection of "
                    "the alert history at once (back-matching) and writes those hits.",
        epilog="examples:\n"
               "  xmatch watch add my-targets --from targets.csv --radius-column r_arcsec "
               "--name-column name --out backmatch.csv\n"
               "  xmatch watch add bright-agn --from agn.fits --radius 5arcsec --replace\n"
               "  xmatch watch map field-1 --moc field1.fits\n"
               "  xmatch watch map S200129m --skymap bayestar.multiorder.fits --level 0.9\n"
               "  xmatch watch list\n"
               "  xmatch watch remove field-1")
    steps = watch.add_subparsers(dest="step", required=True, metavar="STEP")
    add = steps.add_parser("add", help="add (or replace) a watchlist from a table")
    add.add_argument("name", help="the watch's name (letters, digits, _ . -)")
    add.add_argument("--from", dest="source", required=True, metavar="FILE",
                     help="the table (CSV, ECSV, FITS, Parquet, VOTable ...)")
    add.add_argument("--radius-column", metavar="COLUMN",
                     help="the column of each entry's radius in arcsec (default: a column "
                          "named radius_arcsec)")
    add.add_argument("--radius", type=common.radius, metavar="ANGLE",
                     help="one radius for every entry, with its unit (e.g. 5arcsec)")
    add.add_argument("--name-column", metavar="COLUMN", help="the column of entry names")
    add.add_argument("--ra-column", metavar="COLUMN", help="right ascension column")
    add.add_argument("--dec-column", metavar="COLUMN", help="declination column")
    watchmap = steps.add_parser("map", help="add (or replace) a watchmap: a MOC or a sky map")
    watchmap.add_argument("name", help="the watch's name (letters, digits, _ . -)")
    region = watchmap.add_mutually_exclusive_group(required=True)
    region.add_argument("--moc", metavar="MOC",
                        help="a MOC file (FITS, ASCII, JSON) or an ASCII MOC such as "
                             "'5/100-120'")
    region.add_argument("--skymap", metavar="FILE", help="an LVK sky map (FITS)")
    watchmap.add_argument("--level", type=float, default=None,
                          help="the sky map's credible level (default 0.9)")
    for parser in (add, watchmap):
        parser.add_argument("--replace", action="store_true",
                            help="replace the watch of that name")
        common.add_output(parser)
        common.add_server(parser)
        common.add_data(parser)
    listing = steps.add_parser("list", help="every watch")
    common.add_server(listing)
    common.add_data(listing)
    remove = steps.add_parser("remove", help="remove a watch")
    remove.add_argument("name")
    common.add_server(remove)
    common.add_data(remove)
    watch.set_defaults(run=run_watch)


def run_history(args) -> int:
    from xmatch.history.store import AlertHistory

    if args.step == "object" and args.server:

        with common.client_of(args) as client:
            summary, detections = client.object_history(args.object_id, arrow=True)
        _print_object(summary, detections, args)
        return 0
    with AlertHistory(common.data_of(args), compact_every=0) as history:
        if args.step == "info":
            sizes = history.nbytes()
            live = history.live
            per_object = sizes["objects"] / max(live.n_objects, 1)
            per_detection = sizes["alert_ids"] / max(live.n_detections, 1)
            print(f"alert history in {history.root}")
            print(f"  {live.n_objects:,} objects, {live.n_detections:,} detections "
                  f"({history.pending:,} not yet compacted); surveys: "
                  f"{', '.join(live.surveys) or 'none yet'}")
            print(f"  association: {json.dumps(history.association.to_dict())}")
            print(f"  memory: {sizes['objects'] / 2**20:,.1f} MiB for objects "
                  f"({per_object:,.0f} B each), {sizes['alert_ids'] / 2**20:,.1f} MiB for "
                  f"alert ids ({per_detection:,.0f} B per detection)")
        elif args.step == "object":
            _print_object(history.objects([args.object_id]),
                          history.detections([args.object_id]), args)
        else:
            history.compact(progress=False if args.no_progress else None)
            print(f"published history_objects ({history.live.n_objects:,} objects) and "
                  f"history_detections ({history.live.n_detections:,} detections) in "
                  f"{history.data.root}")
    return 0


def _print_object(summary, detections, args) -> None:
    row = summary.to_pylist()[0]
    print(f"object {row['object_id']}: {row['detections']} detection(s) by "
          f"{row['surveys']} from MJD {row['first_mjd_tai']:.5f} to {row['last_mjd_tai']:.5f} "
          f"(TAI); at {row['ra_deg']:.6f} {row['dec_deg']:+.6f} deg (mean of its "
          f"detections; first at {row['ra_first_deg']:.6f} {row['dec_first_deg']:+.6f})")
    detections = detections.drop_columns(["wal_seq"])
    common.write_result(detections, args, what="detections", positions=common.CatalogColumns(
        "detection_id", "ra_deg", "dec_deg", detections.column_names))


def run_watch(args) -> int:
    from xmatch.errors import InputError

    if args.step == "add" and args.radius is not None and args.radius_column:
        raise InputError("give --radius (one for every entry) or --radius-column, not both")
    if args.step == "map" and args.level is not None and not args.skymap:
        raise InputError("--level is for --skymap (a sky map's credible region)")
    if args.server:
        return _watch_on_server(args)
    from xmatch.history.memory import AlertMemory

    with AlertMemory(common.data_of(args), history=_has_history(args)) as memory:
        if args.step == "list":
            _print_watches(memory.watches.describe())
        elif args.step == "remove":
            memory.remove_watch(args.name)
            print(f"removed watch {args.name}")
        else:
            described, found = memory.add_watch(_watch_of(args), replace=args.replace)
            _print_added(described, found, args)
    return 0


def _has_history(args) -> bool:
    from xmatch.history.store import HISTORY_DIR

    return (common.data_of(args).root / HISTORY_DIR).is_dir()


def _watch_of(args):
    from xmatch.watch import Watchlist, Watchmap

    if args.step == "add":
        from xmatch.io.tables import read_table

        table = read_table(args.source)
        return Watchlist.from_table(args.name, table, args.source, ra_column=args.ra_column,
                                    dec_column=args.dec_column,
                                    radius_column=args.radius_column,
                                    radius_arcsec=args.radius, name_column=args.name_column)
    if args.skymap:
        return Watchmap.from_skymap(args.name, args.skymap,
                                    0.9 if args.level is None else args.level)
    return Watchmap.from_moc(args.name, args.moc)


def _watch_on_server(args) -> int:
    from pathlib import Path


    with common.client_of(args) as client:
        if args.step == "list":
            _print_watches(client.list_watches())
        elif args.step == "remove":
            client.remove_watch(args.name)
            print(f"removed watch {args.name}")
        elif args.step == "add":
            from xmatch.io.tables import read_table

            if args.ra_column or args.dec_column:
                from xmatch.errors import InputError

                raise InputError("--ra-column and --dec-column are read in process; through "
                                 "--server the table needs ra_deg and dec_deg columns")
            described, found = client.add_watch(
                args.name, watchlist=read_table(args.source), radius_column=args.radius_column,
                radius_arcsec=args.radius, name_column=args.name_column,
                replace=args.replace, arrow=True)
            _print_added(described, found, args)
        else:
            region = {"skymap": Path(args.skymap).read_bytes()} if args.skymap else {
                "moc": Path(args.moc).read_bytes() if Path(args.moc).suffix.lower()
                in (".fits", ".fit") else (Path(args.moc).read_text()
                                           if Path(args.moc).is_file() else args.moc)}
            described, found = client.add_watch(args.name, level=args.level, arrow=True,
                                                replace=args.replace, **region)
            _print_added(described, found, args)
    return 0


def _print_watches(described: list[dict]) -> None:
    if not described:
        print("no watches (add one with `xmatch watch add` or `xmatch watch map`)")
        return
    for watch in described:
        size = (f"{watch['entries']:,} entries" if watch["kind"] == "list"
                else f"{watch['sky_fraction']:.3%} of the sky")
        print(f"{watch['name']:<24} {watch['kind']:<5} {size:<24} {watch['source']}")


def _print_added(described: dict, found, args) -> None:
    print(f"watch {described['name']} ({described['kind']}) stored; "
          f"{found.num_rows:,} hit(s) among the detections recorded so far")
    if found.num_rows or args.out:
        common.write_result(found, args, what="hits", positions=common.CatalogColumns(
            "detection_id", "ra_deg", "dec_deg", found.column_names))
