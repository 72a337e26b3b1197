"""``xmatch sso build`` and ``xmatch sso cone``: known solar-system objects."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from xmatch.cli import common


def add_parsers(commands) -> None:
    sso = commands.add_parser(
        "sso", help="solar-system objects: nightly ephemeris caches and their cones",
        description="Known asteroids and comets: build the ephemeris cache of a night at an "
                    "MPC observatory from MPC orbit files (`build`), then ask which objects "
                    "are inside a cone at an instant of that night (`cone`).")
    steps = sso.add_subparsers(dest="step", required=True, metavar="STEP")
    # The sites' conventions restate xmatch.sso.nightly.SURVEY_NIGHTS, which the help does not
    # import (the numba kernels load only when a command runs); a test keeps them equal.
    build = steps.add_parser(
        "build", help="build the ephemeris cache of a night at an observatory",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="\n".join([
            "Reads the orbits (MPCORB.DAT or an excerpt, NEA.txt, CometEls.txt, gzipped or",
            "not), integrates them to the middle of the night under the Sun and the planets",
            "(DE421), samples every track over the night and publishes the cache as catalog",
            "sso_<code>_<yyyymmdd> in the data directory.",
            "",
            "--night is the night's date as the site's survey names it (--night-convention",
            "overrides that):",
            "  I41 (ZTF)    utc     the UTC date of the night's local midnight, as ZTF's",
            "                       archive does (ztf_public_20231012: evening of 11 Oct.)",
            "  X05 (Rubin)  dayobs  Rubin's dayObs: 12:00 UTC on the date to 12:00 UTC next day",
            "  other sites  local   the local date at the night's start",
            "A night runs from local noon to local noon (local mean time from the MPC",
            "longitude), a dayObs from 12:00 to 12:00 UTC."]),
        epilog="examples:\n"
               "  xmatch sso build --orbits MPCORB.DAT.gz --night 2023-10-12 --observatory I41\n"
               "      ZTF night 2023-10-12, the local evening of 11 October at Palomar:\n"
               "      2023-10-11T19:47 to 2023-10-12T19:47 UTC\n"
               "  xmatch sso build --orbits MPCORB.DAT.gz --night 2023-10-11 --observatory I41 "
               "--night-convention local\n"
               "      the same night, named by its local date\n"
               "  xmatch sso build --orbits MPCORB.DAT.gz --night 2025-09-05 --observatory X05\n"
               "      Rubin dayObs 2025-09-05: 2025-09-05T12:00 to 2025-09-06T12:00 UTC")
    build.add_argument("--orbits", required=True, nargs="+", metavar="FILE",
                       help="MPC orbit file(s)")
    build.add_argument("--night", required=True, metavar="YYYY-MM-DD",
                       help="the night's date, in its naming convention (see above)")
    build.add_argument("--observatory", required=True, metavar="CODE",
                       help="MPC observatory code (I41 ZTF, X05 Rubin, 500 geocentre ...)")
    build.add_argument("--night-convention", choices=("local", "utc", "dayobs"), default=None,
                       help="how --night names the night (default by site: utc at I41, dayobs "
                            "at X05, local elsewhere)")
    build.add_argument("--name", help="catalog name (default sso_<code>_<yyyymmdd>)")
    build.add_argument("--no-progress", action="store_true", help="no progress bars")
    common.add_data(build)
    cone = steps.add_parser(
        "cone", help="known objects inside a cone at an instant",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Objects of the nightly cache of --observatory whose night holds --time "
                    "inside --radius of (RA, DEC), closest first: designation, predicted "
                    "position, separation, V magnitude, sky-plane rates, distances.",
        epilog="example:\n  xmatch sso cone 45.2 12.1 --radius 30arcsec --time "
               "2025-11-29T06:00:00 --observatory I41")
    cone.add_argument("ra", type=common.ra, help="right ascension, ICRS (degrees or hh:mm:ss)")
    cone.add_argument("dec", type=common.dec, help="declination, ICRS (degrees or dd:mm:ss)")
    cone.add_argument("--radius", type=common.radius, required=True,
                      help="with its unit: 30arcsec, 5arcmin, 0.4deg")
    cone.add_argument("--time", required=True,
                      help="ISO time (2025-11-22T04:30:00) or MJD, in --scale")
    cone.add_argument("--scale", choices=("utc", "tai", "tt", "tdb"), default="utc",
                      help="time scale of --time (default utc)")
    cone.add_argument("--observatory", default=None, metavar="CODE",
                      help="MPC observatory code")
    cone.add_argument("--catalog", default=None, help="the cache to ask (default: the one "
                                                      "of --observatory holding --time)")
    cone.add_argument("--limit", type=common.positive_int, default=None,
                      help="at most this many objects, the closest (the total is reported)")
    common.add_output(cone)
    common.add_server(cone)
    common.add_data(cone)
    sso.set_defaults(run=run_sso)


def _time_arg(text: str):
    """An MJD number or an ISO time, as given."""
    try:
        return float(text)
    except ValueError:
        return text


def run_sso(args) -> int:
    if args.step == "build":
        return _build(args)
    when = _time_arg(args.time)
    if args.server:

        with common.client_of(args) as client:
            result = client.sso_cone(args.ra, args.dec, radius_arcsec=args.radius, time=when,
                                     scale=args.scale, observatory=args.observatory,
                                     catalog=args.catalog, limit=args.limit, arrow=True)
    else:
        from xmatch.index.results import with_rows_found
        from xmatch.sso.nightly import NightIndex, find_cache
        from xmatch.timescales import tdb_mjd

        t_tdb = float(tdb_mjd(when, args.scale))
        catalog = find_cache(common.data_of(args), t_tdb, args.observatory, args.catalog)
        result = NightIndex.from_catalog(catalog).cone(args.ra, args.dec, args.radius, t_tdb)
        result = with_rows_found(result.slice(0, args.limit), result.num_rows)
    positions = common.CatalogColumns("designation", "ra_deg", "dec_deg", result.column_names)
    common.write_result(result, args, positions=positions, limit=args.limit, what="objects")
    return 0


def _build(args) -> int:
    import pyarrow as pa

    from xmatch.sso.mpc.readers import read_orbits
    from xmatch.sso.nightly import build_night, night_of

    orbits = pa.concat_tables([read_orbits(path) for path in args.orbits])
    started = time.perf_counter()
    catalog = build_night(orbits, args.night, args.observatory, data=common.data_of(args),
                          name=args.name, source=",".join(Path(p).name for p in args.orbits),
                          progress=not args.no_progress, night_convention=args.night_convention)
    print(f"{catalog.name}: {orbits.num_rows:,} objects, {night_of(catalog).describe()}; "
          f"{catalog.num_rows:,} rows in {len(catalog.partitions)} partitions, built in "
          f"{time.perf_counter() - started:.1f} s")
    return 0
