"""``xmatch skymap`` and ``xmatch moc``: the rows of a catalog inside a region."""

from __future__ import annotations

import argparse
from pathlib import Path

from xmatch.cli import common

#: Ranked rows listed in the summary of ``xmatch skymap --rank-by``.
TOP_SHOWN = 5


def _region_args(parser) -> None:
    """The options ``xmatch skymap`` and ``xmatch moc`` share."""
    parser.add_argument("--catalog", required=True, help="catalog to search")
    common.add_columns(parser)
    parser.add_argument("--limit", type=common.positive_int, default=None,
                        help="at most this many rows, the first in their order (the total "
                             "is reported)")
    common.add_output(parser)
    parser.add_argument("--plot", metavar="PNG",
                        help="draw the region and the rows found into PNG (needs matplotlib: "
                             "pip install 'xmatch[plots]')")
    common.add_server(parser)
    common.add_data(parser)


def add_parsers(commands) -> None:
    skymap = commands.add_parser(
        "skymap", help="rows of a catalog inside the credible region of a GW sky map",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Rows of catalog --catalog inside the credible region at --level of an "
                    "LVK sky map (multi-order or flat FITS, gzipped or not), each with the "
                    "map's probdensity (sr-1), searched_prob, searched_area (deg2) and, for a "
                    "catalog with distances, probdensity_vol (Mpc-3), as ligo.skymap's "
                    "crossmatch gives them. In pixel order, or ranked with --rank-by. A "
                    "summary (region area, probability covered, sources found) goes to "
                    "standard error, or to standard output with --out.",
        epilog="example:\n  xmatch skymap GW170817_skymap.fits.gz --catalog glade_gw170817 "
               "--rank-by probdensity_vol --limit 10 --plot gw170817.png")
    skymap.add_argument("file", help="the sky map (FITS)")
    skymap.add_argument("--level", type=float, default=0.9,
                        help="credible level of the region, in (0, 1] (default 0.9)")
    skymap.add_argument("--rank-by", default=None, choices=("probdensity", "probdensity_vol"),
                        help="rank the rows, highest first (probdensity_vol for a catalog "
                             "with distances)")
    _region_args(skymap)
    skymap.set_defaults(run=run_skymap)

    moc = commands.add_parser(
        "moc", help="rows of a catalog inside a MOC",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Rows of catalog --catalog inside a MOC (IVOA MOC 2.0), in pixel order. "
                    "The MOC is an ASCII string ('3/1-5 4/120'), JSON text ('{\"3\": [1, "
                    "2]}') or the path of a FITS, ASCII or JSON MOC file. A summary (area, "
                    "maximum order, sources found) goes to standard error, or to standard "
                    "output with --out.",
        epilog="example:\n  xmatch moc '5/1200-1210 6/4900' --catalog gaia_dr3 --out rows.csv")
    moc.add_argument("moc", metavar="MOC", help="MOC string or file")
    _region_args(moc)
    moc.set_defaults(run=run_moc)


def run_skymap(args) -> int:
    import astropy.units as u

    from xmatch.sky.regions import SkyMapRegion
    from xmatch.sky.skymap import SkyMap, check_level

    level = check_level(args.level)
    _check_plotting(args)
    region = SkyMapRegion(SkyMap.read(args.file), level)
    rows, positions = _search(args, region, rank_by=args.rank_by)
    skymap = region.skymap
    pixels = skymap.region_pixels(level)
    area_deg2 = (skymap.area[pixels].sum() * u.sr).to_value(u.deg ** 2)
    name = Path(args.file).name
    summary = [f"{name}: {100 * level:g}% credible region, {_area(area_deg2)} deg2, probability "
               f"{skymap.prob[pixels].sum():.4f}; {_found(rows, args.catalog)}"]
    if args.rank_by and rows.num_rows:
        summary.append(f"top {min(TOP_SHOWN, rows.num_rows)} by {args.rank_by}:")
        summary += _top_rows(rows, positions, args.rank_by)
    if args.plot:
        _plot(args.plot, skymap.credible_region(level), rows, positions,
              f"{name}: {100 * level:g}% credible region, {_area(area_deg2)} deg²\n"
              f"{rows.num_rows:,} {args.catalog} rows")
        summary.append(f"plot -> {args.plot}")
    _write(args, rows, positions, summary)
    return 0


def run_moc(args) -> int:
    import astropy.units as u
    import numpy as np

    from xmatch.sky.moc import moc_from
    from xmatch.sky.regions import Moc

    _check_plotting(args)
    found = moc_from(args.moc)
    region = Moc(np.ascontiguousarray(found.to_depth29_ranges, dtype=np.int64),
                 int(found.max_order))
    rows, positions = _search(args, region)
    area_deg2 = (region.sky_fraction * 4 * np.pi * u.sr).to_value(u.deg ** 2)
    name = Path(args.moc).name if Path(args.moc).is_file() else _shortened(args.moc)
    summary = [f"MOC {name}: {_area(area_deg2)} deg2, max order {region.max_order}; "
               f"{_found(rows, args.catalog)}"]
    if args.plot:
        _plot(args.plot, found, rows, positions,
              f"MOC {name}: {_area(area_deg2)} deg², max order {region.max_order}\n"
              f"{rows.num_rows:,} {args.catalog} rows")
        summary.append(f"plot -> {args.plot}")
    _write(args, rows, positions, summary)
    return 0


def _search(args, region, rank_by=None):
    """The rows of the region (with the columns the summary and plot need), and the
    catalog's identifier and position columns."""
    columns = common.columns_of(args)
    if args.server:

        with common.client_of(args, timeout=None) as client:
            positions = common.CatalogColumns.of_description(client.describe(args.catalog))
            rows = client.search(args.catalog, region,
                                 columns=positions.with_positions(columns), limit=args.limit,
                                 rank_by=rank_by, arrow=True)
    else:
        from xmatch.store.catalog import open_catalog

        catalog = open_catalog(args.catalog, common.data_of(args))
        positions = common.CatalogColumns.of_catalog(catalog)
        rows = catalog.search(region, columns=positions.with_positions(columns),
                              limit=args.limit, rank_by=rank_by)
    args.asked_columns = columns
    return rows, positions


def _write(args, rows, positions, summary: list[str]) -> None:
    """Write the rows (only the asked columns and the sky-map ones), then the summary."""
    from xmatch.sky.skymap import SKYMAP_COLUMNS

    columns = args.asked_columns
    if columns is not None:
        rows = rows.select([c for c in rows.column_names
                            if c in columns or c in SKYMAP_COLUMNS])
    common.write_result(rows, args, positions=positions, asked=columns, limit=args.limit,
                        summary=summary)


def _found(rows, catalog: str) -> str:
    from xmatch.index.results import rows_found

    return f"{rows_found(rows):,} {catalog} row(s) inside"


def _top_rows(rows, positions, rank_by: str) -> list[str]:
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


def _plot(path: str, region, rows, positions, title: str) -> None:
    from xmatch.plots import plot_region

    searched_prob = (rows.column("searched_prob").to_numpy(zero_copy_only=False)
                     if "searched_prob" in rows.column_names else None)
    plot_region(path, region, rows.column(positions.ra).to_numpy(zero_copy_only=False),
                rows.column(positions.dec).to_numpy(zero_copy_only=False), title=title,
                searched_prob=searched_prob)
