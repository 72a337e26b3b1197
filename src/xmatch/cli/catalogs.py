"""Catalogs in the data directory: ``load``, ``list``, ``info``, ``verify``, ``remove``,
``specs``, ``loaders``."""

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
               "  xmatch load lsdb_cat --from /path/to/hats_catalog")
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
    load.add_argument("--workers", type=common.positive_int, default=None,
                      help="worker processes (default: number of cores)")
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


def run_load(args) -> int:
    from xmatch.errors import XmatchError
    from xmatch.loading import load_catalog
    from xmatch.store.writer import LoadOptions

    if args.name is None and args.spec is None:
        raise XmatchError("give a catalog NAME or --spec FILE.toml")
    options = LoadOptions(chunk_rows=args.chunk_rows, skip_invalid=args.skip_invalid,
                          threshold_rows=args.threshold_rows, highest_order=args.highest_order,
                          progress=False if args.no_progress else None,
                          **({"workers": args.workers} if args.workers else {}))
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
