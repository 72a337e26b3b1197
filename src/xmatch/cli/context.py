"""``xmatch context``: what is known at a position, without an alert."""

from __future__ import annotations

import argparse
import sys

from xmatch.cli import common


def add_parsers(commands) -> None:
    context = commands.add_parser(
        "context", help="what is known at a position: bright stars, variables, AGN, host "
                        "galaxies, error regions, and a class",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The context of (RA, DEC), or of every row of --from FILE: for each layer "
                    "of the context configuration (bright-star halos, variable stars, AGN, "
                    "host galaxies by directional light radius, error regions) its state "
                    "(matched, no_match, outside_coverage, failed) and nearest candidate, "
                    "then one class (variable_star, agn, bright_star, nuclear, supernova, "
                    "orphan, unclear) with the evidence that decided it. The rules and "
                    "every default are in docs/context.md. With --time, bright stars with "
                    "proper motions are moved to that instant.",
        epilog="examples:\n"
               "  xmatch context 197.450374 -23.381483 --time 2017-08-17T23:00:00\n"
               "  xmatch context 06:45:08.9 -16:42:58 --context-config my_context.toml\n"
               "  xmatch context --from candidates.csv --out context.parquet\n"
               "  xmatch context 10.684 41.269 --server localhost:50051")
    context.add_argument("ra", type=common.ra, nargs="?", default=None,
                         help="right ascension, ICRS (degrees or hh:mm:ss)")
    context.add_argument("dec", type=common.dec, nargs="?", default=None,
                         help="declination, ICRS (degrees or dd:mm:ss)")
    context.add_argument("--from", dest="table", metavar="FILE",
                         help="a table of positions instead of RA DEC (columns found by UCD "
                              "or name, as for crossmatch)")
    common.add_position_columns(context)
    context.add_argument("--time", default=None,
                         help="time of the position(s): ISO (UTC) or MJD (UTC)")
    add_context_config(context, "the bundled default")
    common.add_output(context)
    common.add_server(context)
    common.add_data(context)
    context.set_defaults(run=run_context)


def add_context_config(parser, default: str) -> None:
    parser.add_argument("--context-config", metavar="FILE.toml", default=None,
                        help=f"context configuration (layers and rules; default: {default}; "
                             "see docs/context.md)")


def add_context(parser) -> None:
    """``--context`` and ``--context-config`` of the commands that annotate alerts."""
    parser.add_argument("--context", action="store_true",
                        help="add each alert's context and class (bright stars, variables, "
                             "AGN, host galaxies, error regions; docs/context.md)")
    add_context_config(parser, "the bundled default; in process only")


def context_config_of(args):
    """The configuration ``--context-config`` names, read and checked (None: the default).
    Given without ``--context`` (where that exists) or with ``--server``, it would be
    ignored: an error."""
    from xmatch.context.config import read_context_config
    from xmatch.errors import InputError

    if not args.context_config:
        return None
    if getattr(args, "context", True) is False:
        raise InputError("--context-config applies with --context")
    if getattr(args, "server", None):
        raise InputError("--context-config applies to context computed here; a server uses "
                         "its own (start it with `xmatch serve --context-config FILE`)")
    return read_context_config(args.context_config)


def run_context(args) -> int:
    from xmatch.errors import InputError
    from xmatch.io.tables import read_positions

    if args.table is None and (args.ra is None or args.dec is None):
        raise InputError("give RA DEC, or --from FILE with a table of positions")
    if args.table is not None and args.ra is not None:
        raise InputError("give RA DEC or --from FILE, not both")
    if args.table is None and (args.ra_column or args.dec_column):
        raise InputError("--ra-column and --dec-column name the columns of --from FILE")
    if args.table is not None:
        positions = read_positions(args.table, ra_column=args.ra_column,
                                   dec_column=args.dec_column)
        ra, dec = positions.ra, positions.dec
    else:
        ra, dec = [args.ra], [args.dec]
    time = _time_of(args.time)
    if args.server:

        context_config_of(args)  # refuses a configuration that would be ignored
        with common.client_of(args, timeout=None) as client:
            table = client.context(ra, dec, time=time, arrow=True)
    else:
        from xmatch.context.engine import data_context_engine
        from xmatch.timescales import jyear_of_tai_mjd, tai_mjd

        engine = data_context_engine(common.data_of(args), context_config_of(args))
        epoch = None if time is None else float(jyear_of_tai_mjd(tai_mjd(time))[0])
        table = engine.context(ra, dec, epoch)
    if args.table is not None:
        table = _with_positions(positions, table)
    if args.out or args.format or args.table is not None:
        common.write_result(table, args, what="positions")
        return 0
    print_context(table)
    return 0


def _time_of(text: str | None):
    if text is None:
        return None
    from xmatch.timescales import to_time

    try:
        return to_time(float(text), "utc")
    except ValueError:
        return to_time(text, "utc")


def _with_positions(positions, table):
    import pyarrow as pa

    out = positions.table
    for name in table.column_names:
        out = out.append_column(name if name not in out.column_names else f"context_{name}",
                                table.column(name))
    return out.add_column(0, "row", pa.array(positions.rows, pa.int64()))


def print_context(table) -> None:
    """One position's context, readable: the class and its evidence, then each layer."""
    from xmatch.context.engine import layer_columns

    row = {name: table.column(name)[0].as_py() for name in table.column_names}
    print(f"class     {row['class']}")
    print(f"why       {row['class_reason']}")
    if row["class_id"] is not None:
        print(f"evidence  {row['class_catalog']} {row['class_id']} at "
              f"{row['class_separation_arcsec']:.3f}\" (distance {row['class_distance']:.3f})")
    print()
    print(f"{'layer':<18}{'state':<18}{'count':>6}  nearest")
    for name, columns in layer_columns(table).items():
        state = row[f"{name}_state"]
        count = row[f"{name}_count"]
        nearest = "-"
        if row[f"{name}_id"] is not None:
            extras = [f"{key}={_shown(row[f'{name}_{key}'])}" for key in columns
                      if key not in ("state", "failure", "count", "id", "separation_arcsec",
                                     "distance", "hostless")]
            nearest = (f"{row[f'{name}_id']} at {row[f'{name}_separation_arcsec']:.3f}\", "
                       f"distance {row[f'{name}_distance']:.3f}"
                       + (f" ({', '.join(extras)})" if extras else ""))
        elif state == "failed":
            nearest = row[f"{name}_failure"]
        print(f"{name:<18}{state:<18}{'-' if count is None else count:>6}  {nearest}")
    sys.stdout.flush()


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
