"""``xmatch coverage``: the MOC of the HEALPix cells that hold a catalog's rows."""

from __future__ import annotations

import argparse
import sys

from xmatch.cli import common

#: What ``--format`` takes, and the suffixes of ``--out`` that name each.
FORMATS = ("fits", "ascii", "json")
SUFFIXES = {".fits": "fits", ".fit": "fits", ".json": "json", ".txt": "ascii",
            ".moc": "ascii", ".ascii": "ascii"}


def order(text: str) -> int:
    """A coverage's HEALPix order (0 to 13)."""
    from xmatch.errors import InputError
    from xmatch.sky.moc import check_coverage_order

    try:
        value = int(text)
    except ValueError:
        value = text  # not an integer: said by the same check, with what is allowed
    try:
        return check_coverage_order(value)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_parsers(commands) -> None:
    coverage = commands.add_parser(
        "coverage", help="the MOC of the HEALPix cells holding a catalog's rows",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The coverage of catalog NAME: an IVOA MOC 2.0 of the HEALPix cells at "
                    "--order that hold at least one of its rows (at their catalog "
                    "positions), as CDS's MOCServer serves catalog coverages; finer than the "
                    "coverage `xmatch info` shows, which is the catalog's partitions. "
                    "Written as FITS (ORDERING RANGE, for TOPCAT, Aladin and mocpy), ASCII "
                    "('3/1-5 4/120 10/') or JSON; the format is --format, else the suffix "
                    "of --out (.fits, .txt or .moc, .json); without --out, ASCII or JSON "
                    "on standard output. A summary (cells, area) goes to standard error.",
        epilog="examples:\n"
               "  xmatch coverage gaia_dr3 --order 10 --out gaia_dr3_coverage.fits\n"
               "  xmatch coverage hipparcos2 --order 6 --format json --server "
               "localhost:50051\n"
               "  xmatch coverage gcvs --order 8 --format ascii --out gcvs.txt")
    coverage.add_argument("name", help="catalog")
    coverage.add_argument("--order", type=order, required=True, metavar="N",
                          help="HEALPix order of the cells, 0 to 13, required (10: cells "
                               "of 3.4 arcmin; 13: 25.8 arcsec)")
    coverage.add_argument("--format", choices=FORMATS, default=None,
                          help="MOC serialisation (default: from the --out suffix; ascii on "
                               "standard output)")
    coverage.add_argument("--out", metavar="FILE", help="write the MOC to FILE")
    common.add_server(coverage)
    common.add_data(coverage)
    coverage.set_defaults(run=run_coverage)


def output_format(out: str | None, requested: str | None) -> str:
    """The MOC format to write: ``--format``, else ``--out``'s suffix, else ASCII (on
    standard output)."""
    from pathlib import Path

    from xmatch.errors import InputError

    if requested is not None:
        fmt = requested
    elif out is None:
        fmt = "ascii"
    else:
        fmt = SUFFIXES.get(Path(out).suffix.lower())
        if fmt is None:
            raise InputError(f"cannot tell the MOC format of {out} from its suffix; name it "
                             f"{', '.join(SUFFIXES)} or give --format ({', '.join(FORMATS)})")
    if fmt == "fits" and out is None:
        raise InputError("a FITS MOC is binary: write it to a file with --out FILE")
    return fmt


def run_coverage(args) -> int:
    import numpy as np

    from xmatch.sky.healpix import MAX_ORDER
    from xmatch.sky.moc import moc_bytes

    fmt = output_format(args.out, args.format)
    if args.server:
        with common.client_of(args, timeout=None) as client:
            moc = client.coverage(args.name, args.order)
    else:
        moc = _local_coverage(args)
    data = moc_bytes(moc, fmt, {"MOCTYPE": "CATALOG"} if fmt == "fits" else None)
    ranges = np.asarray(moc.to_depth29_ranges, dtype=np.int64).reshape(-1, 2)
    cells = int(((ranges[:, 1] - ranges[:, 0]) >> (2 * (MAX_ORDER - args.order))).sum())
    area_deg2 = moc.sky_fraction * 4 * np.pi * (180 / np.pi) ** 2
    summary = (f"{args.name}: {cells:,} cells at order {args.order}, {area_deg2:,.6g} deg2 "
               f"({100 * moc.sky_fraction:.4g}% of the sky)")
    if args.out:
        with open(args.out, "wb") as handle:
            handle.write(data)
        print(f"{summary} -> {args.out}")
    else:
        sys.stdout.write(data.decode())
        print(summary, file=sys.stderr)
    return 0


def _local_coverage(args):
    """The coverage from the data directory: the same cells a server finds, from the
    catalog's order-29 pixels."""
    from xmatch.errors import InputError
    from xmatch.index import SkyIndex
    from xmatch.sky.healpix import occupied_ranges29
    from xmatch.sky.moc import moc_of_ranges29
    from xmatch.sso.nightly import is_night_cache
    from xmatch.store.catalog import open_catalog

    catalog = open_catalog(args.name, common.data_of(args))
    if is_night_cache(catalog):
        raise InputError(f"{args.name} is a solar-system ephemeris cache: its objects move, "
                         "so it has no fixed coverage")
    index = SkyIndex.from_catalog(catalog, columns=[])
    return moc_of_ranges29(occupied_ranges29(index.h29, args.order), args.order)
