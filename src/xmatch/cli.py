"""The ``xmatch`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from xmatch import __version__
from xmatch.errors import XmatchError
from xmatch.store import paths
from xmatch.tables import OUTPUT_FORMATS, select_present, write_table

DEMO_CONES = [
    # (catalog, label, ra_deg, dec_deg, radius_arcsec, epoch_jyear)
    ("gaia_dr3", "Vega", 279.234735, 38.783689, 60.0, None),
    ("hipparcos2", "Vega", 279.234735, 38.783689, 60.0, None),
    ("gaia_dr3", "Pleiades core (Alcyone)", 56.871152, 24.105136, 1800.0, None),
    ("gcvs", "RR Lyrae", 291.365880, 42.784363, 30.0, None),
    # Barnard's star where Gaia saw it in 2016: 4 arcmin from its Hipparcos (J1991.25)
    # position, found there because Hipparcos rows are moved to the epoch asked for.
    ("hipparcos2", "Barnard's star at its Gaia J2016.0 position", 269.448503, 4.739420, 5.0,
     2016.0),
]


def positive_int(text: str) -> int:
    """A count that must be at least 1 (a row limit)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; give 1 or more")
    return value


def parse_angle_arcsec(text: str) -> float:
    """'5arcsec', '1.5 arcmin', '0.1deg', '3"' or a bare number of arcsec -> arcsec."""
    import astropy.units as u

    cleaned = text.strip().replace('"', "arcsec").replace("'", "arcmin")
    try:
        return float(cleaned)
    except ValueError:
        pass
    try:
        return float(u.Quantity(cleaned).to_value(u.arcsec))
    except (ValueError, TypeError, u.UnitsError):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an angle; write e.g. 5arcsec, 1.5arcmin, 0.1deg") from None


def parse_epoch_jyear(text: str) -> float:
    """'2016.0', 'J2016.0' or an ISO time ('2026-11-21T03:00:00', UTC) -> Julian year."""
    cleaned = text.strip().removeprefix("J")
    try:
        return float(cleaned)
    except ValueError:
        pass
    from astropy.time import Time

    try:
        return float(Time(text.strip(), scale="utc").tdb.jyear)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an epoch; write a Julian year (2016.0, J2016.0) or an ISO time "
            "(2026-11-21T03:00:00, UTC)") from None


def _data_arg(parser):
    parser.add_argument("--data", metavar="DIR", default=None,
                        help=f"data directory (default: ${paths.DATA_ENV_VAR} or "
                             "~/.local/share/xmatch)")


def _region_args(parser):
    """The options ``xmatch skymap`` and ``xmatch moc`` share."""
    parser.add_argument("--catalog", required=True, help="catalog to search")
    parser.add_argument("--columns", default=None,
                        help="comma-separated catalog columns to return (default: all)")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="at most this many rows (the first in their order)")
    parser.add_argument("--out", metavar="FILE", help="write to FILE instead of the terminal")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default=None,
                        help="output format (default: from the --out suffix, else table)")
    parser.add_argument("--plot", metavar="PNG",
                        help="draw the region and the rows found into PNG (needs matplotlib: "
                             "pip install 'xmatch[plots]')")
    parser.add_argument("--server", metavar="HOST:PORT",
                        help="ask a running xmatch server instead of reading the data directory")
    _data_arg(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xmatch",
        description="Spatial cross-match and catalog federation for time-domain astronomy.",
        epilog="Run `xmatch COMMAND --help` for the options of each command.")
    parser.add_argument("--version", action="version", version=f"xmatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="load the bundled catalogs (first run only) and answer sample cone searches",
        description="Loads Gaia DR3 (G<10), Hipparcos 2, GCVS and the GLADE galaxies around "
                    "GW170817 into the data directory if they are not there yet, then answers "
                    "a few cone searches, a cross-match, an alert annotation and a sky-map "
                    "search.")
    _data_arg(demo)

    load = commands.add_parser(
        "load", help="load a catalog into the data directory",
        description="Load catalog NAME (a bundled spec: see `xmatch specs`) from its default "
                    "source, or from the given files, or register an existing HATS catalog "
                    "directory. The new version is published atomically: until the load "
                    "succeeds, the previous version stays in place.")
    load.add_argument("name", nargs="?", help="catalog name (bundled spec, or the name to "
                                              "publish under with --spec or a HATS directory)")
    load.add_argument("--from", dest="sources", nargs="+", metavar="FILE",
                      help="input files (CSV, ECSV, Parquet, FITS, VOTable, ...) or one HATS "
                           "directory; default: the spec's default source")
    load.add_argument("--spec", metavar="FILE.toml", help="catalog spec of your own")
    load.add_argument("--loader", help="loader to use (see `xmatch loaders`)")
    load.add_argument("--workers", type=int, default=None,
                      help="worker processes (default: number of cores)")
    load.add_argument("--chunk-rows", type=int, default=1_000_000,
                      help="rows per map task (default: 1000000)")
    load.add_argument("--threshold-rows", type=int, default=None,
                      help="maximum rows per partition (default: from the spec)")
    load.add_argument("--highest-order", type=int, default=None,
                      help="highest HEALPix order a partition may have (default: from the spec)")
    load.add_argument("--skip-invalid", action="store_true",
                      help="drop rows with bad coordinates or values (counted in the "
                           "provenance) instead of failing")
    load.add_argument("--no-progress", action="store_true", help="no progress bars")
    _data_arg(load)

    listing = commands.add_parser("list", help="list the catalogs in the data directory")
    _data_arg(listing)

    info = commands.add_parser("info", help="describe a loaded catalog")
    info.add_argument("name")
    info.add_argument("--json", action="store_true", help="print JSON")
    _data_arg(info)

    verify = commands.add_parser("verify",
                                 help="check every file of a catalog against its manifest")
    verify.add_argument("name")
    _data_arg(verify)

    remove = commands.add_parser("remove", help="remove a catalog from the data directory")
    remove.add_argument("name")
    _data_arg(remove)

    cone = commands.add_parser("cone", help="cone search in a loaded catalog",
                               description="Rows of catalog NAME within RADIUS of (RA, DEC), "
                                           "closest first, with separation_arcsec and "
                                           "position_angle_deg. With --epoch, rows with proper "
                                           "motions are first moved to that epoch.")
    cone.add_argument("name")
    cone.add_argument("ra", type=float, help="right ascension, ICRS degrees")
    cone.add_argument("dec", type=float, help="declination, ICRS degrees")
    cone.add_argument("--radius", type=parse_angle_arcsec, default=None,
                      help="e.g. 5arcsec, 1arcmin, 0.1deg (default: the catalog's match radius)")
    cone.add_argument("--limit", type=positive_int, default=None, help="at most this many rows")
    cone.add_argument("--epoch", type=parse_epoch_jyear, default=None,
                      help="epoch of the position: Julian year (2016.0) or ISO time (UTC); "
                           "catalog rows with proper motions are moved there")
    cone.add_argument("--columns", default=None, help="comma-separated columns to return")
    cone.add_argument("--format", choices=OUTPUT_FORMATS, default="table")
    cone.add_argument("--out", metavar="FILE", help="write to FILE instead of the terminal")
    cone.add_argument("--server", metavar="HOST:PORT",
                      help="ask a running xmatch server instead of reading the data directory")
    _data_arg(cone)

    crossmatch = commands.add_parser(
        "crossmatch", help="match a table of positions against a catalog",
        description="Every row of FILE (CSV, ECSV, FITS, VOTable or Parquet, with ra/dec in "
                    "degrees) with its counterparts in catalog NAME: a left join with "
                    "separation_arcsec and position_angle_deg.")
    crossmatch.add_argument("file", help="table of positions")
    crossmatch.add_argument("--catalog", required=True, help="catalog to match against")
    crossmatch.add_argument("--radius", type=parse_angle_arcsec, default=None,
                            help="e.g. 1arcsec (default: the catalog's match radius)")
    crossmatch.add_argument("--mode", choices=["nearest", "k", "all"], default="nearest")
    crossmatch.add_argument("--k", type=int, default=1, help="matches per position (mode k)")
    crossmatch.add_argument("--ra-column", default="ra")
    crossmatch.add_argument("--dec-column", default="dec")
    crossmatch.add_argument("--epoch", type=parse_epoch_jyear, default=None,
                            help="epoch of the positions (Julian year or ISO time, UTC)")
    crossmatch.add_argument("--columns", default=None,
                            help="comma-separated catalog columns to return (default: all)")
    crossmatch.add_argument("--out", metavar="FILE", help="write to FILE instead of the terminal")
    crossmatch.add_argument("--format", choices=OUTPUT_FORMATS, default=None,
                            help="output format (default: from the --out suffix, else table)")
    crossmatch.add_argument("--server", metavar="HOST:PORT",
                            help="ask a running xmatch server instead of matching in process")
    _data_arg(crossmatch)

    skymap = commands.add_parser(
        "skymap", help="rows of a catalog inside the credible region of a GW sky map",
        description="Rows of catalog --catalog inside the credible region at --level of an "
                    "LVK sky map (multi-order or flat FITS, gzipped or not), each with the "
                    "map's probdensity (sr-1), searched_prob, searched_area (deg2) and, for a "
                    "catalog with distances, probdensity_vol (Mpc-3), as ligo.skymap's "
                    "crossmatch gives them. In pixel order, or ranked with --rank-by. A "
                    "summary (region area, probability covered, sources found) goes to "
                    "standard error, or to standard output with --out.",
        epilog="example: xmatch skymap GW170817_skymap.fits.gz --catalog glade_gw170817 "
               "--rank-by probdensity_vol --limit 10 --plot gw170817.png")
    skymap.add_argument("file", help="the sky map (FITS)")
    skymap.add_argument("--level", type=float, default=0.9,
                        help="credible level of the region, in (0, 1] (default 0.9)")
    skymap.add_argument("--rank-by", default=None, metavar="COLUMN",
                        help="rank the rows, highest first, by probdensity or probdensity_vol "
                             "(the latter for a catalog with distances)")
    _region_args(skymap)

    moc = commands.add_parser(
        "moc", help="rows of a catalog inside a MOC",
        description="Rows of catalog --catalog inside a MOC (IVOA MOC 2.0), in pixel order. "
                    "The MOC is an ASCII string ('3/1-5 4/120'), JSON text ('{\"3\": [1, "
                    "2]}') or the path of a FITS, ASCII or JSON MOC file. A summary (area, "
                    "maximum order, sources found) goes to standard error, or to standard "
                    "output with --out.",
        epilog="example: xmatch moc '5/1200-1210 6/4900' --catalog gaia_dr3 --out rows.csv")
    moc.add_argument("moc", metavar="MOC", help="MOC string or file")
    _region_args(moc)

    annotate = commands.add_parser(
        "annotate", help="annotate ZTF / Rubin alert packets with their counterparts",
        description="Reads alert packets (ZTF and Rubin/LSST Avro: .avro files, directories "
                    "of them, tarballs), annotates each with its counterparts in the catalogs "
                    "(nearest source: id, separation, position angle, key columns; number "
                    "within the radius; proper motions moved to the alert's time) and writes "
                    "Parquet, JSON lines or annotated Avro. Without --server it serves the "
                    "data directory's catalogs itself. An interrupted run resumes where it "
                    "stopped when run again with the same inputs and options.",
        epilog="examples: xmatch annotate alerts/ --out annotated.parquet;  xmatch annotate "
               "night.tar.gz --catalogs gaia_dr3,gcvs --radius gaia_dr3=1.5arcsec "
               "--server localhost:50051 --out night/")
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
    annotate.add_argument("--batch-size", type=int, default=None,
                          help="alerts per streamed batch (default 5000)")
    annotate.add_argument("--server", metavar="HOST:PORT",
                          help="a running xmatch server or router (default: serve in process)")
    annotate.add_argument("--no-progress", action="store_true", help="no progress bar")
    _data_arg(annotate)

    serve = commands.add_parser(
        "serve", help="serve every catalog of the data directory over gRPC (embedded mode)",
        description="Loads the bundled default catalogs if the data directory is empty, "
                    "indexes every catalog in memory and serves the xmatch.v1 gRPC API (with "
                    "health checking and reflection) until Ctrl-C or SIGTERM, then drains.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=50051, help="port (0: any free port)")
    _data_arg(serve)

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
    plan.add_argument("--shards", type=int, required=True, help="number of shard servers")
    plan.add_argument("--replicas", type=int, default=1,
                      help="shard servers holding each partition (default 1)")
    plan.add_argument("--host", default="127.0.0.1", help="host of every server")
    plan.add_argument("--port", type=int, default=50051,
                      help="router port; shard i listens on port + 1 + i (default 50051)")
    plan.add_argument("--catalogs", metavar="A,B", help="catalogs to serve (default: all)")
    plan.add_argument("--out", default="cluster.json", help="plan file (default cluster.json)")
    _data_arg(plan)
    up = steps.add_parser(
        "up", help="start the shard servers and the router of a plan",
        description="Starts one process per shard, waits until each is SERVING, serves the "
                    "router in this process and restarts shards that die. Ctrl-C or SIGTERM "
                    "stops the router, then the shards, each draining running calls.")
    up.add_argument("--plan", required=True, metavar="FILE", help="the plan file")
    shard = steps.add_parser("shard", help="serve one shard of a plan")
    shard.add_argument("--plan", required=True, metavar="FILE", help="the plan file")
    shard.add_argument("--name", required=True, help="the shard's name in the plan (shard-0...)")
    router = steps.add_parser("router", help="serve the router of a plan")
    router.add_argument("--plan", required=True, metavar="FILE", help="the plan file")

    sso = commands.add_parser(
        "sso", help="solar-system objects: nightly ephemeris caches and their cones",
        description="Known asteroids and comets: build the ephemeris cache of a night at an "
                    "MPC observatory from MPC orbit files (`build`), then ask which objects "
                    "are inside a cone at an instant of that night (`cone`), or compute "
                    "every object's place at one instant (`positions`).")
    sso_steps = sso.add_subparsers(dest="step", required=True, metavar="STEP")
    build = sso_steps.add_parser(
        "build", help="build the ephemeris cache of a night at an observatory",
        description="Reads the orbits (MPCORB.DAT or an excerpt, NEA.txt, CometEls.txt, "
                    "gzipped or not), integrates them to the middle of the night under the "
                    "Sun and the planets (DE421), samples every track over the night (local "
                    "noon to local noon at the site) and publishes the cache as catalog "
                    "sso_<code>_<yyyymmdd> in the data directory.")
    build.add_argument("--orbits", required=True, nargs="+", metavar="FILE",
                       help="MPC orbit file(s)")
    build.add_argument("--night", required=True, metavar="YYYY-MM-DD",
                       help="local date at the start of the night")
    build.add_argument("--observatory", required=True, metavar="CODE",
                       help="MPC observatory code (I41 ZTF, X05 Rubin, 500 geocentre ...)")
    build.add_argument("--name", help="catalog name (default sso_<code>_<yyyymmdd>)")
    build.add_argument("--no-progress", action="store_true", help="no progress bars")
    _data_arg(build)
    sso_cone = sso_steps.add_parser(
        "cone", help="known objects inside a cone at an instant",
        description="Objects of the nightly cache of --observatory whose night holds --time "
                    "inside RADIUS of (RA, DEC), closest first: designation, predicted "
                    "position, separation, V magnitude, sky-plane rates, distances.")
    sso_cone.add_argument("ra", type=float, help="right ascension, ICRS degrees")
    sso_cone.add_argument("dec", type=float, help="declination, ICRS degrees")
    sso_cone.add_argument("--radius", type=parse_angle_arcsec, required=True,
                          help="e.g. 30arcsec, 5arcmin, 0.4deg")
    sso_cone.add_argument("--time", required=True,
                          help="ISO time (2025-11-22T04:30:00) or MJD, in --scale")
    sso_cone.add_argument("--scale", choices=("utc", "tai", "tt", "tdb"), default="utc",
                          help="time scale of --time (default utc)")
    sso_cone.add_argument("--observatory", default=None, metavar="CODE",
                          help="MPC observatory code")
    sso_cone.add_argument("--catalog", default=None, help="the cache to ask (default: the one "
                                                          "of --observatory holding --time)")
    sso_cone.add_argument("--limit", type=positive_int, default=None,
                          help="at most this many objects")
    sso_cone.add_argument("--format", choices=OUTPUT_FORMATS, default="table")
    sso_cone.add_argument("--out", metavar="FILE", help="write to FILE instead of the terminal")
    sso_cone.add_argument("--server", metavar="HOST:PORT",
                          help="ask a running xmatch server instead of the data directory")
    _data_arg(sso_cone)

    commands.add_parser("specs", help="list the bundled catalog specs")
    commands.add_parser("loaders", help="list the installed loaders (built in and plug-ins)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except (XmatchError, ValueError) as exc:
        print(f"xmatch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        reason = (f"cannot reach the server at {args.server}"
                  if exc.code() == grpc.StatusCode.UNAVAILABLE else exc.details())
        print(f"xmatch {args.command}: error: {exc.code().name}: {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xmatch {args.command}: interrupted; nothing was published", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Whoever read our output stopped early (`xmatch ... | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a file that cannot be read or written (the message names it)
        print(f"xmatch {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _data(args):
    from xmatch.store.data_dir import DataDirectory

    return DataDirectory(args.data)


def cmd_demo(args) -> int:
    from xmatch.index import propagate
    from xmatch.loading import ensure_default_catalogs
    from xmatch.service.client import Client
    from xmatch.service.embedded import running_server, served_catalogs

    data = _data(args)
    print(f"data directory: {data.root}")
    loaded = ensure_default_catalogs(data)
    if loaded:
        print(f"loaded: {', '.join(loaded)}")
    catalogs = served_catalogs(data)
    for name, served in sorted(catalogs.items()):
        print(f"  {name}: {served.summary.rows:,} rows in "
              f"{len(served.description.partitions)} partitions")
    with running_server(catalogs) as address, Client(address) as client:
        print(f"\nembedded gRPC server on {address}; sample queries through xmatch.Client:")
        for name, label, ra, dec, radius, epoch in DEMO_CONES:
            result = client.cone(name, ra, dec, radius=radius, limit=5, epoch=epoch, arrow=True)
            at = f", epoch J{epoch}" if epoch else ""
            print(f"\ncone {name} around {label} (ra={ra}, dec={dec}, r={radius:g}\"{at}): "
                  f"{len(result)} shown")
            write_table(select_present(result, _demo_columns(catalogs[name].description)),
                        "table")
        # Hipparcos stars move between J1991.25 and Gaia's J2016.0: propagate, then match.
        hip = catalogs["hipparcos2"].index.table.slice(0, 8)
        ra, dec = propagate(hip["ra"].to_numpy(), hip["dec"].to_numpy(),
                            hip["pmra"].to_numpy(zero_copy_only=False),
                            hip["pmdec"].to_numpy(zero_copy_only=False), 1991.25, 2016.0,
                            parallax=hip["parallax"].to_numpy(zero_copy_only=False))
        matches = client.crossmatch(ra, dec, catalog="gaia_dr3", radius=1.0,
                                    columns=["source_id", "phot_g_mean_mag"], arrow=True)
        matches = matches.add_column(1, "hip", hip["hip"].take(matches["query_index"]))
        print("\ncross-match of 8 Hipparcos 2 stars, moved to J2016.0, with Gaia DR3 "
              "within 1\":")
        write_table(matches, "table")
        demo_annotation(client)
        demo_skymap(client)
    return 0


def demo_annotation(client) -> None:
    """Annotate the bundled real ZTF and Rubin alerts; print the summary and the alerts
    with a counterpart."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from xmatch.alerts.pipeline import Summary
    from xmatch.alerts.samples import sample_paths

    paths = sample_paths()
    summary = Summary()
    tables = []
    started = time.perf_counter()
    for batch in client.annotate(paths, radius={"gaia_dr3": 5.0, "gcvs": 2.0,
                                                "hipparcos2": 5.0}):
        summary.add(batch.table)
        tables.append(batch.table)
    summary.seconds = time.perf_counter() - started
    print(f"\nannotation of {summary.alerts} real alerts ({', '.join(p.name for p in paths)}):")
    print_annotation_summary(summary)
    table = pa.concat_tables(tables)
    found = pc.greater(pc.add(table["gaia_dr3_count"], table["gcvs_count"]), 0)
    shown = ["alert_id", "survey", "ra_deg", "dec_deg", "gaia_dr3_source_id",
             "gaia_dr3_separation_arcsec", "gaia_dr3_phot_g_mean_mag", "gcvs_VarType",
             "gcvs_separation_arcsec"]
    print("\nalerts with a counterpart:")
    write_table(table.filter(found).select(shown), "table")


def demo_skymap(client) -> None:
    """Rank the GLADE galaxies inside the 90% credible region of GW170817's sky map by their
    3-D probability density: NGC 4993, its host, comes first."""
    from xmatch.specs import bundled_resource

    skymap = bundled_resource("data/GW170817_skymap.fits.gz")
    galaxies = client.skymap_search(
        "glade_gw170817", skymap, 0.9, rank_by="probdensity_vol", limit=5, arrow=True,
        columns=["xmatch_row", "RAJ2000", "DEJ2000", "Dist", "Bmag"])
    print(f"\nsky-map search: GLADE galaxies in the 90% credible region of GW170817 "
          f"({skymap.name}), most probable host first by 3-D probability density "
          f"({galaxies.num_rows} inside; NGC 4993, the host, is at ra=197.4488, "
          "dec=-23.3838):")
    write_table(galaxies, "table")


def _demo_columns(description):
    wanted = [description.id_column or "xmatch_row", description.ra_column,
              description.dec_column, *description.key_columns, "separation_arcsec",
              "position_angle_deg"]
    return [c for c in dict.fromkeys(wanted) if c]


def cmd_load(args) -> int:
    from xmatch.loading import load_catalog
    from xmatch.store.writer import LoadOptions

    if args.name is None and args.spec is None:
        raise XmatchError("give a catalog NAME or --spec FILE.toml")
    options = LoadOptions(chunk_rows=args.chunk_rows, skip_invalid=args.skip_invalid,
                          threshold_rows=args.threshold_rows, highest_order=args.highest_order,
                          progress=False if args.no_progress else None,
                          **({"workers": args.workers} if args.workers else {}))
    catalog = load_catalog(args.name, args.sources, spec=args.spec, data=args.data,
                           loader=args.loader, options=options)
    prov = catalog.provenance
    skipped = prov.get("rows_skipped", 0)
    print(f"{catalog.name}: {catalog.num_rows:,} rows in {len(catalog.partitions)} partitions"
          + (f", {skipped:,} invalid rows skipped" if skipped else "")
          + (f" in {prov['seconds']['total']:.1f} s" if "seconds" in prov else "")
          + (" [SYNTHETIC]" if prov.get("synthetic") else "")
          + (" [registered in place]" if catalog.registered else "")
          + f" -> {catalog.root}")
    return 0


def cmd_list(args) -> int:
    from xmatch.store.catalog import open_catalog

    data = _data(args)
    names = data.names()
    if not names:
        print(f"no catalogs in {data.root}; try `xmatch demo` or `xmatch load gaia_dr3`")
        return 0
    print(f"{'name':<16}{'rows':>14}{'partitions':>12}  {'epoch':<8} notes")
    for name in names:
        try:
            catalog = open_catalog(name, data)
        except XmatchError as exc:
            print(f"{name:<16}{'?':>14}{'?':>12}  {'':<8} DAMAGED: {exc}")
            continue
        notes = []
        if catalog.provenance.get("synthetic"):
            notes.append("synthetic")
        if catalog.registered:
            notes.append("registered")
        epoch = catalog.spec.epoch_jyear
        print(f"{name:<16}{catalog.num_rows:>14,}{len(catalog.partitions):>12}  "
              f"{'' if epoch is None else f'J{epoch:g}':<8} {', '.join(notes)}")
    return 0


def cmd_info(args) -> int:
    from xmatch.store.catalog import open_catalog

    info = open_catalog(args.name, _data(args)).info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    prov = info.pop("provenance")
    columns = info.pop("columns")
    for key, value in info.items():
        print(f"{key:<30}{value}")
    print(f"{'columns':<30}{len(columns)}")
    for name, kind in columns.items():
        print(f"  {name:<28}{kind}")
    print("provenance")
    for key, value in prov.items():
        print(f"  {key:<28}{value}")
    return 0


def cmd_verify(args) -> int:
    from xmatch.store.catalog import open_catalog

    catalog = open_catalog(args.name, _data(args), verify="none")
    problems = catalog.verify(checksums=True)
    if problems:
        for problem in problems:
            print(f"{catalog.name}: {problem}", file=sys.stderr)
        return 1
    print(f"{catalog.name}: {len(catalog.manifest['files'])} files intact")
    return 0


def cmd_remove(args) -> int:
    _data(args).remove(args.name)
    print(f"removed {args.name}")
    return 0


def cmd_cone(args) -> int:
    columns = args.columns.split(",") if args.columns else None
    if args.server:
        from xmatch.service.client import Client

        with Client(args.server) as client:
            radius = args.radius if args.radius is not None else client.describe(
                args.name)["default_radius_arcsec"]
            result = client.cone(args.name, args.ra, args.dec, radius=radius, columns=columns,
                                 limit=args.limit, epoch=args.epoch, arrow=True)
    else:
        from xmatch.store.catalog import open_catalog

        catalog = open_catalog(args.name, _data(args))
        radius = args.radius if args.radius is not None else catalog.spec.default_radius_arcsec
        result = catalog.cone(args.ra, args.dec, radius, columns=columns, limit=args.limit,
                              epoch=args.epoch)
    write_table(result, args.format, args.out)
    return 0


def cmd_crossmatch(args) -> int:
    import pyarrow as pa
    from astropy.table import Table

    try:
        queries = Table.read(args.file)
    except Exception as exc:  # astropy raises many kinds for unreadable input
        raise XmatchError(f"{args.file}: cannot read a table ({type(exc).__name__}: {exc})") \
            from None
    for column in (args.ra_column, args.dec_column):
        if column not in queries.colnames:
            raise XmatchError(f"{args.file}: no column '{column}' (columns: "
                              f"{', '.join(queries.colnames)}); name them with --ra-column "
                              "and --dec-column")
    ra = np.asarray(queries[args.ra_column], dtype=np.float64)
    dec = np.asarray(queries[args.dec_column], dtype=np.float64)
    columns = args.columns.split(",") if args.columns else None
    options = {"mode": args.mode, "k": args.k, "columns": columns, "epoch": args.epoch}
    if args.server:
        from xmatch.service.client import Client

        with Client(args.server) as client:
            result = client.crossmatch(ra, dec, catalog=args.catalog, radius=args.radius,
                                       arrow=True, **options)
    else:
        from xmatch.index import SkyIndex
        from xmatch.store.catalog import open_catalog

        catalog = open_catalog(args.catalog, _data(args))
        radius = args.radius if args.radius is not None else catalog.spec.default_radius_arcsec
        result = SkyIndex.from_catalog(catalog, columns).crossmatch(ra, dec, radius=radius,
                                                                    **options)
    inputs = pa.table({name: np.asarray(queries[name]) for name in queries.colnames})
    joined = inputs.take(result["query_index"])
    for name in result.column_names[1:]:  # after query_index
        out_name = name if name not in joined.column_names else f"{name}_{args.catalog}"
        joined = joined.append_column(out_name, result[name])
    fmt = args.format or _format_of(args.out)
    write_table(joined, fmt, args.out)
    if args.out:
        matched = result.num_rows - result["match_rank"].null_count
        print(f"{len(ra):,} positions, {matched:,} matches -> {args.out}", file=sys.stderr)
    return 0


def _format_of(path: str | None) -> str:
    suffixes = {".csv": "csv", ".ecsv": "ecsv", ".json": "json", ".parquet": "parquet",
                ".vot": "votable", ".xml": "votable", ".votable": "votable"}
    return suffixes.get(Path(path).suffix.lower(), "table") if path else "table"


#: Ranked rows listed in the summary of ``xmatch skymap --rank-by``.
TOP_SHOWN = 5


@dataclass(frozen=True)
class PositionColumns:
    """A catalog's identifier and position columns: what the summary and the plot show."""

    id: str | None
    ra: str
    dec: str


def cmd_skymap(args) -> int:
    import astropy.units as u

    from xmatch.regions import SkyMap, check_level

    level = check_level(args.level)
    _check_plotting(args)
    skymap = SkyMap.read(args.file)
    columns = args.columns.split(",") if args.columns else None
    if args.server:
        from xmatch.service.client import Client

        with Client(args.server) as client:
            positions = _served_positions(client, args.catalog)
            rows = client.skymap_search(args.catalog, args.file, level,
                                        columns=_with_positions(columns, positions),
                                        limit=args.limit, rank_by=args.rank_by, arrow=True)
    else:
        from xmatch.store.catalog import open_catalog

        catalog = open_catalog(args.catalog, _data(args))
        positions = _stored_positions(catalog)
        asked = _with_positions(columns, positions)
        index = _region_index(catalog, skymap.region_ranges(level), asked)
        rows = index.rows_in_skymap(skymap, level, asked, rank_by=args.rank_by)
        rows = rows.slice(0, args.limit)
    pixels = skymap.region_pixels(level)
    area_deg2 = (skymap.area[pixels].sum() * u.sr).to_value(u.deg ** 2)
    name = Path(args.file).name
    summary = [f"{name}: {100 * level:g}% credible region, {_area(area_deg2)} deg2, probability "
               f"{skymap.prob[pixels].sum():.4f}; {_found(rows, args.catalog, args.limit)}"]
    if args.rank_by and rows.num_rows:
        summary.append(f"top {min(TOP_SHOWN, rows.num_rows)} by {args.rank_by}:")
        summary += _top_rows(rows, positions, args.rank_by)
    if args.plot:
        _plot(args.plot, skymap.credible_region(level), rows, positions,
              f"{name}: {100 * level:g}% credible region, {_area(area_deg2)} deg²\n"
              f"{rows.num_rows:,} {args.catalog} rows")
        summary.append(f"plot -> {args.plot}")
    _write_region_rows(args, rows, columns, summary)
    return 0


def cmd_moc(args) -> int:
    import astropy.units as u

    from xmatch.regions import moc_from

    region = moc_from(args.moc)
    _check_plotting(args)
    columns = args.columns.split(",") if args.columns else None
    if args.server:
        from xmatch.service.client import Client

        with Client(args.server) as client:
            positions = _served_positions(client, args.catalog)
            rows = client.moc_search(args.catalog, region,
                                     columns=_with_positions(columns, positions),
                                     limit=args.limit, arrow=True)
    else:
        from xmatch.store.catalog import open_catalog

        catalog = open_catalog(args.catalog, _data(args))
        positions = _stored_positions(catalog)
        asked = _with_positions(columns, positions)
        ranges = np.asarray(region.to_depth29_ranges, dtype=np.int64)
        rows = _region_index(catalog, ranges, asked).rows_in_moc(ranges, asked)
        rows = rows.slice(0, args.limit)
    area_deg2 = (region.sky_fraction * 4 * np.pi * u.sr).to_value(u.deg ** 2)
    name = Path(args.moc).name if Path(args.moc).is_file() else _shortened(args.moc)
    summary = [f"MOC {name}: {_area(area_deg2)} deg2, max order {region.max_order}; "
               f"{_found(rows, args.catalog, args.limit)}"]
    if args.plot:
        _plot(args.plot, region, rows, positions,
              f"MOC {name}: {_area(area_deg2)} deg², max order {region.max_order}\n"
              f"{rows.num_rows:,} {args.catalog} rows")
        summary.append(f"plot -> {args.plot}")
    _write_region_rows(args, rows, columns, summary)
    return 0


def _positions(id_column: str | None, ra: str, dec: str, names) -> PositionColumns:
    """The position columns and the identifier: the spec's, else the row number the
    loader adds (if the catalog, say a registered HATS one, has it; else none)."""
    from xmatch.store.writer import ROW_ID_COLUMN

    identifier = id_column or ROW_ID_COLUMN
    return PositionColumns(identifier if identifier in names else None, ra, dec)


def _stored_positions(catalog) -> PositionColumns:
    return _positions(catalog.spec.id, catalog.spec.ra, catalog.spec.dec, catalog.schema.names)


def _served_positions(client, catalog: str) -> PositionColumns:
    described = client.describe(catalog)
    return _positions(described["id_column"], described["ra_column"], described["dec_column"],
                      described["schema"].names)


def _with_positions(columns: list[str] | None, positions: PositionColumns):
    """The columns to ask for: the summary and the plot need the identifier and position
    even when --columns leaves them out (they are dropped again from the output)."""
    if columns is None:
        return None
    wanted = [*columns, positions.id, positions.ra, positions.dec]
    return [c for c in dict.fromkeys(wanted) if c is not None]


def _region_index(catalog, ranges29: np.ndarray, columns: list[str] | None):
    """An index of only the partitions of ``catalog`` that overlap the region (sorted,
    disjoint order-29 ranges): a region search reads a small part of a big catalog."""
    from xmatch.index import SkyIndex, ranges_overlapping

    partitions = list(catalog.partitions)
    bounds = np.array([p.range29() for p in partitions], dtype=np.int64).reshape(-1, 2)
    touched = ranges_overlapping(bounds[:, 0], bounds[:, 1], ranges29)
    return SkyIndex.from_catalog(catalog, columns, partitions=[partitions[i] for i in touched])


def _found(rows, catalog: str, limit: int | None) -> str:
    found = f"{rows.num_rows:,} {catalog} row(s) inside"
    return f"{found} (--limit {limit} reached)" if rows.num_rows == limit else found


def _top_rows(rows, positions: PositionColumns, rank_by: str) -> list[str]:
    """One line per best-ranked row: identifier, position, score and credible level."""
    top = rows.slice(0, TOP_SHOWN).to_pylist()
    return [("  " if positions.id is None else f"  {positions.id}={row[positions.id]}  ")
            + f"ra={row[positions.ra]:.5f}  dec={row[positions.dec]:.5f}  "
            f"{rank_by}={_number(row[rank_by])}  "
            f"searched_prob={_number(row['searched_prob'])}" for row in top]


def _area(deg2: float) -> str:
    return f"{deg2:,.2f}" if deg2 >= 0.01 else f"{deg2:.3g}"  # a deep MOC can be tiny


def _number(value) -> str:
    return "null" if value is None else f"{value:.4g}"


def _shortened(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _check_plotting(args) -> None:
    if args.plot:
        from xmatch.plots import require_matplotlib

        require_matplotlib()


def _plot(path: str, region, rows, positions: PositionColumns, title: str) -> None:
    from xmatch.plots import plot_region

    searched_prob = (rows.column("searched_prob").to_numpy(zero_copy_only=False)
                     if "searched_prob" in rows.column_names else None)
    plot_region(path, region, rows.column(positions.ra).to_numpy(zero_copy_only=False),
                rows.column(positions.dec).to_numpy(zero_copy_only=False), title=title,
                searched_prob=searched_prob)


def _write_region_rows(args, rows, columns: list[str] | None, summary: list[str]) -> None:
    """Write the rows (only the asked columns and the sky-map ones), then the summary: to
    standard error when the rows went to the terminal, else to standard output."""
    from xmatch.regions import SKYMAP_COLUMNS

    if columns is not None:
        rows = rows.select([c for c in rows.column_names
                            if c in columns or c in SKYMAP_COLUMNS])
    write_table(rows, args.format or _format_of(args.out), args.out)
    if args.out:
        summary.append(f"rows -> {args.out}")
    for line in summary:
        print(line, file=sys.stdout if args.out else sys.stderr)


def cmd_annotate(args) -> int:
    from contextlib import ExitStack

    from xmatch.alerts.pipeline import annotate_files
    from xmatch.service.client import Client

    catalogs = args.catalogs.split(",") if args.catalogs else None
    radius = {}
    for item in args.radius:
        name, sep, angle = item.partition("=")
        if not sep or not name:
            raise XmatchError(f"--radius {item!r}: give NAME=ANGLE, e.g. gaia_dr3=1.5arcsec")
        radius[name] = parse_angle_arcsec(angle)
    schemas = {}
    for item in args.schema:
        number, sep, path = item.partition("=")
        if not sep or not number.isdigit():
            raise XmatchError(f"--schema {item!r}: give ID=FILE.avsc, e.g. 1101=alert.avsc")
        try:
            schemas[int(number)] = Path(path).read_text()
        except OSError as exc:
            raise XmatchError(f"--schema {item!r}: cannot read {path}: {exc.strerror}") from None
    with ExitStack() as stack:
        address = args.server
        if address is None:
            from xmatch.service.embedded import running_server, served_catalogs

            data = _data(args)
            served = served_catalogs(data, names=catalogs)
            address = stack.enter_context(running_server(served))
        client = stack.enter_context(Client(address, timeout=None))
        summary = annotate_files(client, args.inputs, args.out, fmt=args.format,
                                 catalogs=catalogs, radius=radius or None,
                                 all_matches=args.all_matches, schemas=schemas,
                                 observatory=args.observatory, batch_size=args.batch_size,
                                 progress=not args.no_progress)
    print_annotation_summary(summary)
    return 0


def print_annotation_summary(summary) -> None:
    resumed = f" ({summary.resumed:,} written by an earlier run)" if summary.resumed else ""
    out = f" -> {summary.out}" if summary.out else ""
    print(f"{summary.alerts + summary.resumed:,} alerts{resumed}: {summary.annotated:,} "
          f"annotated, {summary.errors:,} with errors, {summary.rate:,.0f} alerts/s{out}")
    for example in summary.error_examples:
        print(f"  error: {example}")
    print(f"\n{'catalog':<14}{'radius':>9}{'matched':>10}{'fraction':>10}{'median sep':>12}")
    for name, radius, matched, fraction, median in summary.rows():
        median = f"{median:.3f}\"" if matched else "-"
        print(f"{name:<14}{radius:>8.2f}\"{matched:>10,}{fraction:>10.1%}{median:>12}")


def cmd_serve(args) -> int:
    from xmatch.service.embedded import serve

    serve(_data(args), host=args.host, port=args.port)
    return 0


def cmd_cluster(args) -> int:
    from xmatch.service import cluster
    from xmatch.service.plan import Plan, make_plan

    if args.step == "plan":
        plan = make_plan(_data(args), args.shards, args.replicas, args.host, args.port,
                         catalogs=args.catalogs.split(",") if args.catalogs else None)
        plan.write(args.out)
        total = sum(s.rows for slices in plan.catalogs.values() for s in slices)
        print(f"{args.out}: {total:,} rows of {len(plan.catalogs)} catalog(s) on "
              f"{len(plan.shards)} shard(s), {plan.replicas} replica(s) each; router at "
              f"{plan.router}")
        for i, shard in enumerate(plan.shards):
            print(f"  {shard.name} at {shard.address}: {plan.rows_held_by(i):,} rows")
    elif args.step == "up":
        cluster.cluster_up(args.plan)
    elif args.step == "shard":
        cluster.serve_shard(Plan.read(args.plan), args.name)
    else:
        cluster.serve_router(Plan.read(args.plan))
    return 0


def _time_arg(text: str):
    """An MJD number or an ISO time, as given."""
    try:
        return float(text)
    except ValueError:
        return text


def cmd_sso(args) -> int:
    if args.step == "build":
        import pyarrow as pa

        from xmatch.sso.nightly import build_night
        from xmatch.sso.orbits import read_orbits

        orbits = pa.concat_tables([read_orbits(path) for path in args.orbits])
        started = time.perf_counter()
        catalog = build_night(orbits, args.night, args.observatory, data=_data(args),
                              name=args.name, source=",".join(Path(p).name for p in args.orbits),
                              progress=not args.no_progress)
        print(f"{catalog.name}: {orbits.num_rows:,} objects, night {args.night} at "
              f"{args.observatory.upper()}, {catalog.num_rows:,} rows in "
              f"{len(catalog.partitions)} partitions, built in "
              f"{time.perf_counter() - started:.1f} s")
        return 0
    when = _time_arg(args.time)
    if args.server:
        from xmatch.service.client import Client

        with Client(args.server) as client:
            result = client.sso_cone(args.ra, args.dec, radius=args.radius, time=when,
                                     scale=args.scale, observatory=args.observatory,
                                     catalog=args.catalog, limit=args.limit, arrow=True)
    else:
        from xmatch.sso.nightly import NightIndex, find_cache
        from xmatch.sso.observers import tdb_mjd

        t_tdb = float(tdb_mjd(when, args.scale))
        catalog = find_cache(_data(args), t_tdb, args.observatory, args.catalog)
        result = NightIndex.from_catalog(catalog).cone(args.ra, args.dec, args.radius, t_tdb)
        result = result.slice(0, args.limit)
    write_table(result, args.format, args.out)
    return 0


def cmd_specs(args) -> int:
    from xmatch.specs import bundled_spec, bundled_spec_names

    for name in bundled_spec_names():
        spec = bundled_spec(name)
        print(f"{name:<14}{spec.title}  (default source: {spec.default_source})")
    return 0


def cmd_loaders(args) -> int:
    from xmatch.loaders import available_loaders

    for name, entry in sorted(available_loaders().items()):
        try:
            description = entry.load().description
        except Exception as exc:  # a broken plug-in must not hide the others
            description = f"BROKEN: {type(exc).__name__}: {exc}"
        print(f"{name:<16}{description}  [{entry.value}]")
    return 0


COMMANDS = {"demo": cmd_demo, "load": cmd_load, "list": cmd_list, "info": cmd_info,
            "verify": cmd_verify, "remove": cmd_remove, "cone": cmd_cone,
            "crossmatch": cmd_crossmatch, "skymap": cmd_skymap, "moc": cmd_moc,
            "annotate": cmd_annotate, "serve": cmd_serve,
            "cluster": cmd_cluster, "sso": cmd_sso, "specs": cmd_specs,
            "loaders": cmd_loaders}
