"""``xmatch cone`` and ``xmatch crossmatch``."""

from __future__ import annotations

import argparse

from xmatch.cli import common


def add_parsers(commands) -> None:
    cone = commands.add_parser(
        "cone", help="rows of a catalog within a radius of a position",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Rows of catalog NAME within --radius of (RA, DEC), closest first, with "
                    "separation_arcsec and position_angle_deg. RA and DEC are degrees or "
                    "sexagesimal (RA 03:47:00 in hours, DEC -24:07:00 or -24d07m in "
                    "degrees). With --epoch, rows with proper "
                    "motions are moved to that epoch first (ra_at_epoch, dec_at_epoch).",
        epilog="examples:\n"
               "  xmatch cone gaia_dr3 56.75 24.12 --radius 10arcmin --out pleiades.fits\n"
               "  xmatch cone gaia_dr3 03:47:00 +24:07:00 --radius 1arcmin --limit 5\n"
               "  xmatch cone hipparcos2 269.448503 4.739420 --radius 5arcsec --epoch 2016.0")
    cone.add_argument("name", help="catalog to search")
    cone.add_argument("ra", type=common.ra, help="right ascension, ICRS (degrees or hh:mm:ss)")
    cone.add_argument("dec", type=common.dec, help="declination, ICRS (degrees or dd:mm:ss)")
    cone.add_argument("--radius", type=common.radius, default=None,
                      help="with its unit: 5arcsec, 1arcmin, 0.1deg (default: the catalog's "
                           "match radius)")
    cone.add_argument("--limit", type=common.positive_int, default=None,
                      help="at most this many rows, the closest (the total is reported)")
    cone.add_argument("--epoch", type=common.epoch, default=None,
                      help="epoch of the position: Julian year (2016.0) or ISO time (UTC); "
                           "catalog rows with proper motions are moved there")
    common.add_columns(cone)
    common.add_output(cone)
    common.add_server(cone)
    common.add_data(cone)
    cone.set_defaults(run=run_cone)

    crossmatch = commands.add_parser(
        "crossmatch", help="match a table of positions against a catalog",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Every row of FILE (CSV, TSV, whitespace ASCII, ECSV, FITS, Parquet, "
                    "VOTable or HDF5, optionally gzipped) with its counterparts in catalog "
                    "--catalog: a left join with separation_arcsec and position_angle_deg. "
                    "Positions are degrees or sexagesimal; their columns are found by UCD "
                    "or name (ra/dec, RAJ2000/DEJ2000, raMean/decMean, ...) unless given. A "
                    "row without a usable position is an error naming it, unless "
                    "--skip-invalid.",
        epilog="examples:\n"
               "  xmatch crossmatch alerts.csv --catalog gaia_dr3 --radius 1arcsec "
               "--out matched.parquet\n"
               "  xmatch crossmatch targets.fits --catalog gaia_dr3 --mode k --k 3 "
               "--radius 5arcsec --out k3.ecsv\n"
               "  xmatch crossmatch list.txt --catalog gcvs --ra-column RA_hms --dec-column "
               "DE_dms --radius 2arcsec\n"
               "  xmatch crossmatch radio.csv --catalog gaia_dr3 --error-columns "
               "emaj,emin,epa --completeness 0.9973 --out matched.parquet")
    crossmatch.add_argument("file", help="table of positions")
    crossmatch.add_argument("--catalog", required=True, help="catalog to match against")
    crossmatch.add_argument("--radius", type=common.radius, default=None,
                            help="with its unit: 1arcsec (default: the catalog's match "
                                 "radius)")
    crossmatch.add_argument("--mode", choices=["nearest", "k", "all"], default="nearest",
                            help="the nearest match, the k nearest, or all within the radius")
    crossmatch.add_argument("--k", type=common.positive_int, default=None,
                            help="matches per position, with --mode k")
    crossmatch.add_argument("--epoch", type=common.epoch, default=None,
                            help="epoch of the positions (Julian year or ISO time, UTC)")
    crossmatch.add_argument("--input-format", choices=common.INPUT_FORMATS, default=None,
                            help="format of FILE (default: from its name)")
    common.add_position_columns(crossmatch)
    crossmatch.add_argument("--skip-invalid", action="store_true",
                            help="skip rows without a usable position (counted) instead of "
                                 "failing")
    crossmatch.add_argument("--error-columns", metavar="A[,B,PA]", default=None,
                            help="match by sigma-distance, as CDS XMatch: the columns of each "
                                 "position's 1-sigma error ellipse (semi-major and semi-minor "
                                 "axes in arcsec, position angle in deg east of north), or "
                                 "one column of circular errors")
    crossmatch.add_argument("--completeness", type=float, default=None,
                            help="with --error-columns: the fraction of true counterparts "
                                 "kept (default 0.9973, 3.44 sigma)")
    crossmatch.add_argument("--catalog-error", type=common.error_angle, default=None,
                            metavar="ANGLE",
                            help="with --error-columns: the catalog's 1-sigma circular "
                                 "error (default: its spec's positional_error_arcsec)")
    common.add_columns(crossmatch)
    common.add_output(crossmatch)
    common.add_server(crossmatch, "matching in process")
    common.add_data(crossmatch)
    crossmatch.set_defaults(run=run_crossmatch)


def run_cone(args) -> int:
    from xmatch.errors import no_epoch_motion
    from xmatch.sky.regions import Cone

    columns = common.columns_of(args)
    if args.server:

        with common.client_of(args) as client:
            described = client.describe(args.name)
            radius = args.radius or described["default_radius_arcsec"]
            positions = common.CatalogColumns.of_description(described)
            moving = described["proper_motions"]
            result = client.search(args.name, Cone(args.ra, args.dec, radius),
                                   columns=columns, limit=args.limit, epoch=args.epoch,
                                   arrow=True)
    else:
        from xmatch.store.catalog import open_catalog

        catalog = open_catalog(args.name, common.data_of(args))
        radius = args.radius or catalog.spec.default_radius_arcsec
        positions = common.CatalogColumns.of_catalog(catalog)
        moving = catalog.has_proper_motions
        result = catalog.search(Cone(args.ra, args.dec, radius), columns=columns,
                                limit=args.limit, epoch=args.epoch)
    if args.epoch is not None and not moving:
        common.note(no_epoch_motion(args.name))
    common.write_result(result, args, positions=positions, asked=columns, limit=args.limit)
    return 0


def sigma_match(args, searcher, queries, columns, catalog_error_arcsec: float):
    """The sigma cross-match of ``--error-columns`` against ``searcher`` (see
    :func:`xmatch.index.region_index.sigma_crossmatch`)."""
    import numpy as np

    from xmatch.errors import InputError, LoadError
    from xmatch.index.region_index import sigma_crossmatch

    names = [c.strip() for c in args.error_columns.split(",")]
    if len(names) not in (1, 3) or not all(names):
        raise InputError(f"--error-columns {args.error_columns!r}: give one column (circular "
                         "errors) or three (semi-major, semi-minor, position angle)")
    values = []
    for name in names:
        if name not in queries.table.column_names:
            raise LoadError("has no such column (--error-columns)", source=args.file,
                            column=name)
        column = queries.table.column(name)
        try:
            data = np.asarray(column.to_numpy(zero_copy_only=False), np.float64)
        except (TypeError, ValueError):
            raise LoadError("holds no numbers", source=args.file, column=name) from None
        bad = ~np.isfinite(data)
        if bad.any():
            row = int(queries.rows[np.flatnonzero(bad)[0]])
            raise LoadError("has no value here (an error ellipse needs every axis)",
                            source=args.file, row=row, column=name)
        values.append(data)
    semi_minor, angle = (values[1], values[2]) if len(values) == 3 else (None, None)
    return sigma_crossmatch(searcher, queries.ra, queries.dec, values[0], semi_minor, angle,
                            catalog_error_arcsec=catalog_error_arcsec,
                            completeness=args.completeness
                            if args.completeness is not None else 0.9973,
                            mode=args.mode, epoch=args.epoch, columns=columns)


def run_crossmatch(args) -> int:
    import pyarrow as pa

    from xmatch.errors import InputError, no_epoch_motion
    from xmatch.index.results import QUERY_COLUMN, RANK_COLUMN
    from xmatch.io.tables import read_positions

    if args.k is not None and args.mode != "k":
        raise InputError(f"--k {args.k} applies to --mode k; this is --mode {args.mode}")
    if args.mode == "k" and args.k is None:
        raise InputError("--mode k needs --k N, the number of matches per position")
    sigma_options = [f"--{name.replace('_', '-')}" for name in ("completeness", "catalog_error")
                     if getattr(args, name) is not None]
    if sigma_options and not args.error_columns:
        raise InputError(f"{' and '.join(sigma_options)} "
                         f"{'applies' if len(sigma_options) == 1 else 'apply'} with "
                         "--error-columns")
    if args.error_columns and (args.mode == "k" or args.radius):
        raise InputError("a sigma cross-match (--error-columns) keeps all matches or the "
                         "nearest (smallest sigma-distance) and takes its radius from the "
                         "errors; drop --mode k and --radius")
    queries = read_positions(args.file, format=args.input_format, ra_column=args.ra_column,
                             dec_column=args.dec_column, skip_invalid=args.skip_invalid)
    columns = common.columns_of(args)
    options = {"mode": args.mode, "k": args.k or 1, "columns": columns, "epoch": args.epoch}
    if args.server:

        with common.client_of(args, timeout=None) as client:
            described = client.describe(args.catalog)
            positions = common.CatalogColumns.of_description(described)
            moving = described["proper_motions"]
            if args.error_columns:
                from xmatch.index.region_index import CatalogSearch

                if args.catalog_error is None:
                    raise InputError("with --server, give the catalog's 1-sigma error with "
                                     "--catalog-error (0arcsec for positions taken as exact)")
                result = sigma_match(args, CatalogSearch.of(client, args.catalog), queries,
                                     columns, args.catalog_error)
            else:
                result = client.crossmatch(args.catalog, queries.ra, queries.dec,
                                           radius_arcsec=args.radius, arrow=True, **options)
    else:
        from xmatch.store.catalog import open_catalog

        catalog = open_catalog(args.catalog, common.data_of(args))
        positions = common.CatalogColumns.of_catalog(catalog)
        moving = catalog.has_proper_motions
        if args.error_columns:
            from xmatch.index import SkyIndex

            error = args.catalog_error
            if error is None:
                error = catalog.spec.positional_error_arcsec
                if error is None:
                    raise InputError(f"{catalog.name} states no positional error; give it "
                                     "with --catalog-error (0arcsec for positions taken as "
                                     "exact)")
            result = sigma_match(args, SkyIndex.from_catalog(catalog, columns=columns),
                                 queries, columns, error)
        else:
            result = catalog.crossmatch(queries.ra, queries.dec, radius_arcsec=args.radius,
                                        **options)
    if args.epoch is not None and not moving:
        common.note(no_epoch_motion(args.catalog))
    joined = queries.table.take(result[QUERY_COLUMN])
    renamed = {}
    for name in result.column_names[1:]:  # after query_index
        renamed[name] = name if name not in joined.column_names else f"{name}_{args.catalog}"
        joined = joined.append_column(result.schema.field(name).with_name(renamed[name]),
                                      result[name])
    joined = joined.add_column(0, "row", pa.array(queries.rows[result[QUERY_COLUMN]
                                                               .to_numpy()], pa.int64()))
    matched = result.num_rows - result[RANK_COLUMN].null_count
    summary = [f"{len(queries.ra):,} positions, {matched:,} matches"
               + (f"; {queries.skipped:,} rows skipped (no usable position), e.g. row "
                  f"{queries.examples[0]['row']}: {queries.examples[0]['problem']}"
                  if queries.skipped else "")]
    query_positions = common.CatalogColumns(None, queries.ra_column, queries.dec_column, ())
    catalog_positions = tuple((renamed[ra], renamed[dec]) for ra, dec in
                              [(positions.ra, positions.dec)] if ra in renamed and dec in renamed)
    common.write_result(joined, args, positions=query_positions, asked=columns, what="rows",
                        summary=summary if args.out or queries.skipped else (),
                        secondary=catalog_positions)
    return 0
