"""``xmatch notices``: IGWN gravitational-wave notices followed into watchmaps and ranked
candidates (docs/history.md), from files or a Kafka topic; and test notices built around
real sky maps."""

from __future__ import annotations

import argparse
import sys

from xmatch.cli import common


def add_parsers(commands) -> None:
    notices = commands.add_parser(
        "notices", help="gravitational-wave notices: watchmaps and ranked candidates",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Each IGWN notice (LVK's alerts on GCN Kafka: JSON or Avro, validated "
                    "against the igwn-gwalert-schema package) becomes the watchmap "
                    "gw.SUPEREVENT of its credible region (an update replaces it, a "
                    "retraction removes it) and two ranked candidate lists: the alert "
                    "history's detections inside the region since the event, by 2-D "
                    "probability density, and the galaxies of --galaxies, by 3-D probability "
                    "density (ligo.skymap's values). Files go to --out-dir as "
                    "SUPEREVENT.json, SUPEREVENT.alerts.FMT and SUPEREVENT.galaxies.FMT.",
        epilog="examples:\n"
               "  xmatch notices make MS170817a PRELIMINARY --skymap GW170817_skymap.fits.gz "
               "--event-time 2017-08-17T12:41:04.4Z --out prelim.json\n"
               "  xmatch notices ingest prelim.json --galaxies glade_gw170817 --out-dir gw/\n"
               "  xmatch notices listen --bootstrap kafka.example.org:9092 --topic "
               "igwn.gwalert --group my-broker --candidates-topic gw.candidates "
               "--galaxies glade_gw170817 --out-dir gw/")
    steps = notices.add_subparsers(dest="step", required=True, metavar="STEP")

    make = steps.add_parser(
        "make", help="build a test notice around a real sky map (JSON)",
        description="A notice laid out as LVK's gwcelery lays one out, around a real sky map "
                    "(a flat map is converted to the multi-order form notices carry): the "
                    "envelope is built, the map real. For rehearsals and tests.")
    make.add_argument("superevent_id", help="e.g. MS170817a (M: a mock event) or S170817a")
    make.add_argument("alert_type",
                      choices=["EARLYWARNING", "PRELIMINARY", "INITIAL", "UPDATE",
                               "RETRACTION"])
    make.add_argument("--skymap", metavar="FILE",
                      help="the LVK sky map (FITS, gzipped or not); not for a RETRACTION")
    make.add_argument("--event-time", metavar="ISO",
                      help="the event time, ISO 8601 UTC (default: the map's DATE-OBS)")
    make.add_argument("--out", metavar="FILE", help="write here (default: standard output)")

    ingest = steps.add_parser("ingest", help="follow notices from files, in order")
    ingest.add_argument("files", nargs="+", metavar="FILE",
                        help="notices (JSON or Avro container files)")
    listen = steps.add_parser("listen", help="follow notices from a Kafka topic until stopped")
    listen.add_argument("--bootstrap", required=True, metavar="HOST:PORT",
                        help="Kafka bootstrap servers")
    listen.add_argument("--topic", required=True, help="the notices' topic (igwn.gwalert)")
    listen.add_argument("--group", required=True,
                        help="consumer group (its committed offset is where a restart resumes)")
    listen.add_argument("--candidates-topic", metavar="TOPIC",
                        help="publish each notice's candidates here (JSON, exactly once)")
    listen.add_argument("--publish-limit", type=common.positive_int, default=100,
                        metavar="N",
                        help="candidates of each kind per published message (default 100; "
                             "the files hold all)")
    listen.add_argument("--kafka-config", action="append", default=[], metavar="KEY=VALUE",
                        help="a librdkafka setting for every client (repeatable)")
    for parser in (ingest, listen):
        parser.add_argument("--galaxies", metavar="CATALOG",
                            help="rank this galaxy catalog's rows in each region (it needs "
                                 "a distance column)")
        parser.add_argument("--level", type=float, default=None,
                            help="credible level of the watchmaps (default 0.9)")
        parser.add_argument("--out-dir", metavar="DIR", help="write the candidate files here")
        parser.add_argument("--format", default=None,
                            choices=["ecsv", "csv", "parquet", "fits", "votable"],
                            help="format of the candidate files (default ecsv)")
        common.add_server(parser, "following the notices in this process")
        common.add_data(parser)
    notices.set_defaults(run=run_notices)


def run_notices(args) -> int:
    if args.step == "make":
        return _make(args)
    if args.format and args.out_dir is None:
        from xmatch.errors import InputError

        raise InputError("--format is for the candidate files: give --out-dir")
    args.format = args.format or "ecsv"
    with _Follower(args) as follow:
        if args.step == "ingest":
            return _ingest(args, follow)
        return _listen(args, follow)


def _make(args) -> int:
    from pathlib import Path

    from xmatch.errors import InputError
    from xmatch.notices import build_notice, notice_json

    event_time, skymap = args.event_time, None
    if args.alert_type == "RETRACTION" and args.skymap:
        raise InputError("a RETRACTION carries no sky map: drop --skymap")
    if args.alert_type != "RETRACTION" and not (args.skymap or args.event_time):
        raise InputError(f"a {args.alert_type} notice needs --skymap (the event time is then "
                         "the map's DATE-OBS) or, for a notice without a map, --event-time")
    if args.skymap:
        from xmatch.sky.skymap import SkyMap

        read = SkyMap.read(args.skymap)
        event_time = event_time or _date_obs_of(args.skymap)
        if event_time is None:
            raise InputError(f"{args.skymap} has no DATE-OBS: give the event time with "
                             "--event-time")
        skymap = read.multiorder_fits(event_time.rstrip("Zz"))
    if event_time is not None and event_time[-1:] not in "Zz" and "+" not in event_time[10:]:
        event_time += "Z"  # the notices' times are UTC
    document = notice_json(build_notice(args.superevent_id, args.alert_type, skymap=skymap,
                                        event_time_iso=event_time))
    if args.out:
        Path(args.out).write_bytes(document + b"\n")
        print(f"{args.alert_type} notice of {args.superevent_id} -> {args.out}")
    else:
        sys.stdout.write(document.decode() + "\n")
    return 0


def _date_obs_of(path) -> str | None:
    """The DATE-OBS of a sky map file (in either header), if any."""
    from astropy.io import fits

    with fits.open(path) as hdus:
        for hdu in hdus[:2]:
            if hdu.header.get("DATE-OBS"):
                return str(hdu.header["DATE-OBS"])
    return None


class _Follower:
    """``follow(value, where) -> FollowUp``: in this process (the data directory's memory),
    or through a server's ``Notice`` RPC (the notice read here first, so a refusal names
    where it came from)."""

    def __init__(self, args):
        from xmatch.notices.follow import DEFAULT_LEVEL

        self.args = args
        self.level = DEFAULT_LEVEL if args.level is None else args.level
        self.client = self.memory = self.follower = None

    def __enter__(self):
        from xmatch.sky.skymap import check_level

        check_level(self.level)
        args = self.args
        if args.server:

            self.client = common.client_of(args)
            return self
        from xmatch.history.memory import AlertMemory
        from xmatch.history.store import HISTORY_DIR
        from xmatch.notices.follow import NoticeFollower

        data = common.data_of(args)
        galaxies = None
        if args.galaxies:
            from xmatch.store.catalog import open_catalog

            galaxies = open_catalog(args.galaxies, data)
        self.memory = AlertMemory(data, history=(data.root / HISTORY_DIR).is_dir())
        self.follower = NoticeFollower(self.memory, galaxies=galaxies,
                                       galaxy_catalog=args.galaxies, level=self.level)
        return self

    def __call__(self, value: bytes, where: str):
        from xmatch.notices import read_notice
        from xmatch.notices.follow import FollowUp

        notice = read_notice(value, where)
        if self.client is None:
            return self.follower.follow(notice)
        summary, alerts, galaxies = self.client.notice(
            value, galaxy_catalog=self.args.galaxies, level=self.level, arrow=True)
        return FollowUp(summary, alerts, galaxies)

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self.memory is not None:
            self.memory.close()


def _ingest(args, follow) -> int:
    from pathlib import Path

    from xmatch.errors import InputError
    from xmatch.notices.follow import write_follow_up

    refused = 0
    for name in args.files:
        path = Path(name)
        try:
            if not path.is_file():
                raise InputError(f"{name}: no such file")
            follow_up = follow(path.read_bytes(), name)
        except InputError as error:
            refused += 1
            print(f"xmatch notices: error: {error}", file=sys.stderr)
            continue
        written = write_follow_up(follow_up, args.out_dir, args.format) if args.out_dir else []
        print(_said(follow_up, written))
    if refused:
        print(f"xmatch notices: {refused} of {len(args.files)} notice(s) refused",
              file=sys.stderr)
    return 1 if refused else 0


def _said(follow_up, written) -> str:
    summary = follow_up.summary
    head = f"{summary['superevent_id']} {summary['alert_type']}"
    if follow_up.is_retraction:
        line = f"{head}: watchmap {summary['watch']} removed"
    else:
        history = (f"{summary['alerts']:,} alert candidate(s) since the event"
                   if summary["history"] else "no alert history kept here (no alert "
                   "candidates)")
        galaxies = ("" if summary["galaxies"] is None else
                    f"; {summary['galaxies']:,} galaxy candidate(s) of "
                    f"{summary['galaxy_catalog']}")
        line = (f"{head}: watchmap {summary['watch']} ({summary['area_deg2']:,.1f} deg2 at "
                f"{summary['level']:g}); {history}{galaxies}")
    if written:
        line += " -> " + ", ".join(str(p) for p in written)
    return line


def _listen(args, follow) -> int:
    import logging
    import signal
    import threading

    from xmatch.cli.stream import kafka_settings
    from xmatch.notices.listener import NoticeListener

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    listener = NoticeListener(args.bootstrap, args.topic, args.group, follow,
                              candidates_topic=args.candidates_topic, out_dir=args.out_dir,
                              fmt=args.format, publish_limit=args.publish_limit,
                              kafka=kafka_settings(args.kafka_config))
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())

    def said(follow_up, where, error):
        print(f"{where}: {_said(follow_up, [])}" if follow_up is not None
              else f"{where}: refused: {error}", flush=True)

    print(f"xmatch notices: listening to {args.topic} on {args.bootstrap}", flush=True)
    listener.run(stop, said)
    print(f"xmatch notices: stopped; {listener.followed} notice(s) followed, "
          f"{listener.refused} refused", flush=True)
    return 0
