"""Catalogs in the data directory: ``load``, ``join``, ``list``, ``info``, ``verify``,
``remove``, ``specs``, ``loaders``."""

from __future__ import annotations

import argparse
import json

from xmatch.cli import common


def add_parsers(commands) -> None:
    load = commands.add_parser(
        "load", help="load a catalog into the data directory",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Load catalog NAME: a bundled spec (see `xmatch specs`) from its default "
                    "source or from --from files; any table of yours with --from (its "
                    "position columns found by UCD or name, or given with --ra-column and "
                    "--dec-column; the spec is derived and shown by `xmatch info`) or with "
                    "--spec; or an existing HATS catalog directory, registered in place. The "
                    "new version is published atomically: until the load succeeds, the "
                    "previous version stays in place.",
        epilog="examples:\n"
               "  xmatch load gaia_dr3                           the bundled G<10 subset\n"
               "  xmatch load gaia_dr3 --from gaia_export.vot    a Gaia archive export\n"
               "  xmatch load mystars --from stars.csv           any table with ra/dec\n"
               "  xmatch load mine --spec mine.toml --from a.fits b.fits\n"
               "  xmatch load lsdb_cat --from /path/to/hats_catalog\n"
               "  xmatch load ps1 --from ps1/*.csv --scheduler tcp://head:8786   on Dask")
    load.add_argument("name", nargs="?", help="catalog name (bundled spec, or the name to "
                                              "publish under)")
    load.add_argument("--from", dest="sources", nargs="+", metavar="FILE",
                      help="input files (CSV, TSV, whitespace ASCII, ECSV, FITS, Parquet, "
                           "VOTable, HDF5, optionally gzipped) or one HATS directory; "
                           "default: the spec's default source")
    load.add_argument("--spec", metavar="FILE.toml", help="catalog spec of your own")
    common.add_position_columns(load)
    load.add_argument("--id-column", default=None, metavar="NAME",
                      help="identifier column of a table loaded without a spec (default: "
                           "the column with UCD meta.id;meta.main, else a row number, "
                           "xmatch_row)")
    load.add_argument("--loader", help="loader to use (see `xmatch loaders`)")
    add_cluster(load)
    load.add_argument("--chunk-rows", type=common.positive_int, default=1_000_000,
                      help="rows per map task (default: 1000000)")
    load.add_argument("--threshold-rows", type=common.positive_int, default=None,
                      help="maximum rows per partition (default: from the spec)")
    load.add_argument("--highest-order", type=int, default=None,
                      help="highest HEALPix order a partition may have (default: from the spec)")
    load.add_argument("--skip-invalid", action="store_true",
                      help="drop rows with bad coordinates or values (counted in the "
                           "provenance) instead of failing")
    load.add_argument("--no-progress", action="store_true", help="no progress bars")
    common.add_data(load)
    load.set_defaults(run=run_load)

    join = commands.add_parser(
        "join", help="cross-match two catalogs of the data directory into a new one, on Dask",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Cross-match every row of catalog LEFT with catalog RIGHT, partition by "
                    "partition on a Dask cluster, and publish the result as catalog --out: "
                    "a HATS catalog partitioned like LEFT (lsdb.open_catalog and "
                    "hats.read_hats open it), every LEFT row kept (with null RIGHT columns "
                    "when nothing matched), with separation_arcsec and position_angle_deg. "
                    "Rows across partition boundaries are matched; no margin cache is "
                    "needed. Right rows with proper motions are moved to the left rows' "
                    "epoch.",
        epilog="examples:\n"
               "  xmatch join ps1 gaia_dr3 --out ps1_gaia --radius 1arcsec\n"
               "  xmatch join ps1 gaia_dr3 --out ps1_gaia --epoch 2012.0 "
               "--columns objID,source_id,phot_g_mean_mag\n"
               "  xmatch join ztf gaia_dr3 --out ztf_gaia --mode all --radius 2arcsec "
               "--scheduler tcp://head:8786")
    join.add_argument("left", help="catalog whose every row is kept (the output is "
                                   "partitioned like it)")
    join.add_argument("right", help="catalog matched against it")
    join.add_argument("--out", required=True, metavar="NAME",
                      help="name of the output catalog in the data directory")
    join.add_argument("--radius", type=common.radius, default=None,
                      help="match radius with its unit, e.g. 1arcsec (default: the right "
                           "catalog's match radius)")
    join.add_argument("--mode", choices=["nearest", "k", "all"], default="nearest",
                      help="the nearest match, the k nearest, or all within the radius "
                           "(default: nearest)")
    join.add_argument("--k", type=common.positive_int, default=None,
                      help="matches per left row, with --mode k")
    join.add_argument("--epoch", type=common.epoch, default=None,
                      help="epoch of the LEFT positions (e.g. 2012.0, J2012.5, "
                           "2012-06-01), for a left catalog without one matched against a "
                           "right catalog with proper motions")
    join.add_argument("--columns", default=None, metavar="A,B",
                      help="columns to keep, from either catalog; a name both have is "
                           "written CATALOG.NAME (default: all; the left positions are "
                           "always kept)")
    add_cluster(join)
    join.add_argument("--no-progress", action="store_true", help="no progress bar")
    common.add_data(join)
    join.set_defaults(run=run_join)

    listing = commands.add_parser("list", help="list the catalogs in the data directory")
    common.add_data(listing)
    listing.set_defaults(run=run_list)

    info = commands.add_parser(
        "info", help="describe a loaded catalog",
        description="Rows, partitions, orders, coverage, columns, epoch, proper motions, "
                    "spec and provenance of catalog NAME.")
    info.add_argument("name")
    info.add_argument("--json", action="store_true", help="print JSON")
    common.add_data(info)
    info.set_defaults(run=run_info)

    verify = commands.add_parser("verify",
                                 help="check every file of a catalog against its manifest")
    verify.add_argument("name")
    common.add_data(verify)
    verify.set_defaults(run=run_verify)

    remove = commands.add_parser("remove", help="remove a catalog from the data directory")
    remove.add_argument("name")
    common.add_data(remove)
    remove.set_defaults(run=run_remove)

    specs = commands.add_parser("specs", help="list the bundled catalog specs")
    specs.set_defaults(run=run_specs)
    loaders = commands.add_parser("loaders",
                                  help="list the installed loaders (built in and plug-ins)")
    loaders.set_defaults(run=run_loaders)


def add_cluster(parser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=common.positive_int, default=None,
                       help="worker processes on this machine (default: one per core)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on the Dask cluster of this scheduler (tcp://host:8786); "
                            "its workers must see the data directory at the same path")


def run_load(args) -> int:
    from xmatch.errors import XmatchError
    from xmatch.loading import load_catalog
    from xmatch.store.writer import LoadOptions

    if args.name is None and args.spec is None:
        raise XmatchError("give a catalog NAME or --spec FILE.toml")
    options = LoadOptions(chunk_rows=args.chunk_rows, skip_invalid=args.skip_invalid,
                          threshold_rows=args.threshold_rows, highest_order=args.highest_order,
                          progress=False if args.no_progress else None,
                          workers=args.workers, scheduler=args.scheduler)
    catalog = load_catalog(args.name, args.sources, spec=args.spec, data=args.data,
                           loader=args.loader, options=options, ra_column=args.ra_column,
                           dec_column=args.dec_column, id_column=args.id_column)
    prov = catalog.provenance
    skipped = prov.get("rows_skipped", 0)
    print(f"{catalog.name}: {catalog.num_rows:,} rows in {len(catalog.partitions)} partitions"
          + (f", {skipped:,} invalid rows skipped" if skipped else "")
          + (f" in {prov['seconds']['total']:.1f} s" if "seconds" in prov else "")
          + (" [SYNTHETIC]" if prov.get("synthetic") else "")
          + (" [registered in place]" if catalog.registered else "")
          + f" -> {catalog.root}")
    from xmatch.loading import DERIVED_NOTE

    if catalog.spec.note == DERIVED_NOTE:
        spec = catalog.spec
        print(f"  positions from columns {spec.ra}, {spec.dec}; identifier "
              f"{spec.id or 'xmatch_row (row number)'}; see `xmatch info {catalog.name}`")
    return 0


def run_join(args) -> int:
    from xmatch.errors import InputError
    from xmatch.join import crossmatch_catalogs
    from xmatch.store.catalog import open_catalog

    if args.k is not None and args.mode != "k":
        raise InputError(f"--k applies to --mode k; this join's mode is {args.mode}")
    if args.mode == "k" and args.k is None:
        raise InputError("--mode k needs --k N (matches per left row)")
    data = common.data_of(args)
    left, right = open_catalog(args.left, data), open_catalog(args.right, data)
    left_columns, right_columns = _join_columns(common.columns_of(args), left, right)
    joined = crossmatch_catalogs(
        args.left, args.right, args.out, radius_arcsec=args.radius, mode=args.mode,
        k=args.k or 1, epoch=args.epoch, left_columns=left_columns,
        right_columns=right_columns, scheduler=args.scheduler, workers=args.workers,
        data=data, progress=False if args.no_progress else None)
    join = joined.provenance["join"]
    print(f"{joined.name}: {join['left_rows']:,} {left.name} rows, "
          f"{join['left_rows_matched']:,} matched in {right.name} within "
          f"{join['radius_arcsec']:g} arcsec; {joined.num_rows:,} rows in "
          f"{len(joined.partitions)} partitions in {joined.provenance['seconds']['total']:.1f} s "
          f"-> {joined.root}")
    return 0


def _join_columns(asked, left, right):
    """``--columns`` split between the two catalogs: a name one of them has, or
    ``CATALOG.NAME``."""
    from xmatch.errors import InputError

    if asked is None:
        return None, None
    sides = {"left": [], "right": []}
    for name in asked:
        qualifier, _, bare = name.rpartition(".")
        if qualifier:
            if left.name == right.name:
                raise InputError(f"--columns {name}: both catalogs are {left.name}; join a "
                                 "catalog with itself without --columns")
            if qualifier not in (left.name, right.name):
                raise InputError(f"--columns {name}: {qualifier!r} is neither {left.name} "
                                 f"nor {right.name}")
            side, catalog = ("left", left) if qualifier == left.name else ("right", right)
            catalog.check_columns([bare])
            sides[side].append(bare)
            continue
        owners = [side for side, catalog in (("left", left), ("right", right))
                  if name in catalog.schema.names]
        if len(owners) == 2:
            raise InputError(f"--columns {name}: both {left.name} and {right.name} have it; "
                             f"write {left.name}.{name} or {right.name}.{name}")
        if not owners:
            raise InputError(f"--columns {name}: neither {left.name} nor {right.name} has "
                             f"it; {left.name}: {', '.join(left.schema.names)}; "
                             f"{right.name}: {', '.join(right.schema.names)}")
        sides[owners[0]].append(name)
    return sides["left"], sides["right"]


def run_list(args) -> int:
    from xmatch.errors import XmatchError
    from xmatch.store.catalog import open_catalog

    data = common.data_of(args)
    names = data.names()
    if not names:
        print(f"no catalogs in {data.root}; try `xmatch demo` or `xmatch load gaia_dr3`")
        return 0
    width = max(16, max(len(n) for n in names) + 2)
    print(f"{'name':<{width}}{'rows':>14}{'partitions':>12}  {'epoch':<8} notes")
    for name in names:
        try:
            catalog = open_catalog(name, data)
        except XmatchError as exc:
            print(f"{name:<{width}}{'?':>14}{'?':>12}  {'':<8} DAMAGED: {exc}")
            continue
        notes = []
        if catalog.provenance.get("synthetic"):
            notes.append("synthetic")
        if catalog.registered:
            notes.append("registered")
        if catalog.has_proper_motions:
            notes.append("proper motions")
        epoch = catalog.spec.epoch_jyear
        print(f"{name:<{width}}{catalog.num_rows:>14,}{len(catalog.partitions):>12}  "
              f"{'' if epoch is None else f'J{epoch:g}':<8} {', '.join(notes)}")
    return 0


def run_info(args) -> int:
    from xmatch.store.catalog import open_catalog

    info = open_catalog(args.name, common.data_of(args)).info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    prov = info.pop("provenance")
    columns = info.pop("columns")
    spec = info.pop("spec")
    for key, value in info.items():
        print(f"{key:<30}{value}")
    print(f"{'columns':<30}{len(columns)}")
    for name, kind in columns.items():
        print(f"  {name:<28}{kind}")
    print("spec (roles of columns)")
    for key, value in spec.items():
        print(f"  {key:<28}{value}")
    print("provenance")
    for key, value in prov.items():
        print(f"  {key:<28}{value}")
    return 0


def run_verify(args) -> int:
    from xmatch.store.catalog import open_catalog

    catalog = open_catalog(args.name, common.data_of(args), verify="none")
    problems = catalog.verify(checksums=True)
    if problems:
        import sys

        for problem in problems:
            print(f"{catalog.name}: {problem}", file=sys.stderr)
        return 1
    print(f"{catalog.name}: {len(catalog.manifest['files'])} files intact")
    return 0


def run_remove(args) -> int:
    common.data_of(args).remove(args.name)
    print(f"removed {args.name}")
    return 0


def run_specs(args) -> int:
    from xmatch.specs import bundled_spec, bundled_spec_names

    names = bundled_spec_names()
    width = max(len(name) for name in names) + 2
    for name in names:
        spec = bundled_spec(name)
        print(f"{name:<{width}}{spec.title}  (default source: {spec.default_source})")
    return 0


def run_loaders(args) -> int:
    from xmatch.loaders import available_loaders

    found = available_loaders()
    width = max(len(name) for name in found) + 2
    for name, entry in sorted(found.items()):
        try:
            description = entry.load().description
        except Exception as exc:  # noqa: BLE001 (a broken plug-in must not hide the others)
            description = f"BROKEN: {type(exc).__name__}: {exc}"
        print(f"{name:<{width}}{description}  [{entry.value}]")
    return 0
