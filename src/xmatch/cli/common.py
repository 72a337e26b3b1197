"""What the commands share: argument types that refuse bad values at parse time, the data
directory, output options, and writing a result (format from the suffix, units and UCDs,
the ``--limit`` note)."""

from __future__ import annotations

import argparse
import sys

DATA_ENV_VAR = "XMATCH_DATA"
INPUT_FORMATS = ("csv", "tsv", "ascii", "ecsv", "fits", "parquet", "votable", "hdf5")
OUTPUT_FORMATS = ("table", "csv", "tsv", "ecsv", "fits", "parquet", "votable", "json",
                  "jsonl")


def _typed(parse):
    """An argparse type from a parser raising InputError: its message, one line."""
    def convert(text: str):
        from xmatch.errors import InputError

        try:
            return parse(text)
        except InputError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = parse.__name__
    return convert


@_typed
def radius(text: str) -> float:
    """An angle with its unit: '5arcsec', '1.5arcmin', '0.1deg' -> arcsec."""
    from xmatch.sky.coords import radius_of_text

    return radius_of_text(text)


@_typed
def error_angle(text: str) -> float:
    """A positional error with its unit, 0 allowed ('0.1arcsec', '0arcsec') -> arcsec."""
    import astropy.units as u

    from xmatch.sky.coords import radius_of_text

    try:
        quantity = u.Quantity(text.strip().replace('"', "arcsec").replace("'", "arcmin"))
        if quantity.unit.physical_type == "angle" and quantity.value == 0:
            return 0.0
    except (ValueError, TypeError):
        pass
    return radius_of_text(text)  # the checks and messages of any other angle


@_typed
def epoch(text: str) -> float:
    from xmatch.timescales import epoch_jyear_of_text

    return epoch_jyear_of_text(text)


@_typed
def ra(text: str) -> float:
    from xmatch.sky import coords

    value = coords.angles(text, "ra")
    coords.check_radec(value, value * 0)
    return float(value[0])


@_typed
def dec(text: str) -> float:
    from xmatch.sky import coords

    value = coords.angles(text, "dec")
    coords.check_radec(value * 0, value)
    return float(value[0])


def positive_int(text: str) -> int:
    """A count that must be at least 1 (a row limit, k)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; give 1 or more")
    return value


def add_data(parser) -> None:
    parser.add_argument("--data", metavar="DIR", default=None,
                        help=f"data directory (default: ${DATA_ENV_VAR} or "
                             "~/.local/share/xmatch)")


def add_server(parser, what: str = "reading the data directory") -> None:
    parser.add_argument("--server", metavar="HOST:PORT",
                        help=f"ask a running xmatch server or router instead of {what}")
    add_credentials(parser)


def add_credentials(parser, to: str = "the server") -> None:
    """What a process shows the servers it calls: TLS and a token."""
    group = parser.add_argument_group(f"connecting to {to}")
    group.add_argument("--tls-ca", metavar="FILE", dest="tls_ca",
                       help=f"connect over TLS, trusting {to}'s certificate if this CA (PEM) "
                            "signed it")
    group.add_argument("--tls", action="store_true", dest="tls_system",
                       help="connect over TLS, trusting the system's CAs")
    if not any(a.dest == "tls_cert" for a in parser._actions):
        group.add_argument("--tls-cert", metavar="FILE", dest="tls_cert",
                           help="client certificate (PEM) for a server that requires one "
                                "(mutual TLS); with --tls-key")
        group.add_argument("--tls-key", metavar="FILE", dest="tls_key",
                           help="the client certificate's private key (PEM)")
    group.add_argument("--token", dest="auth_token", metavar="TOKEN",
                       help="bearer token to send (default: $XMATCH_TOKEN; sent over plain "
                            "text only to a loopback address)")
    group.add_argument("--token-file", dest="auth_token_file", metavar="FILE",
                       help="read the bearer token from this file (keeps it out of the "
                            "process list)")


def add_exposure(parser) -> None:
    """How a server faces its network: TLS, tokens, limits, metrics and logs."""
    tls = parser.add_argument_group("transport security (one of --tls-cert/--tls-key or "
                                    "--plaintext is required)")
    tls.add_argument("--tls-cert", metavar="FILE", dest="tls_cert",
                     help="serve over TLS with this certificate chain (PEM)")
    tls.add_argument("--tls-key", metavar="FILE", dest="tls_key",
                     help="the certificate's private key (PEM, unencrypted)")
    tls.add_argument("--tls-client-ca", metavar="FILE", dest="tls_client_ca",
                     help="require client certificates signed by this CA (mutual TLS)")
    tls.add_argument("--plaintext", action="store_true", dest="tls_plaintext",
                     help="serve without TLS (anyone who reaches the port can read every "
                          "answer: use on a trusted network only)")
    access = parser.add_argument_group("access and limits")
    access.add_argument("--tokens", metavar="FILE", dest="auth_tokens",
                        help="require a bearer token from this token file (`xmatch token "
                             "add`); re-read when it changes")
    access.add_argument("--max-rows", type=positive_int, dest="limits_max_rows", default=None,
                        metavar="N",
                        help="rows in one answer at most (default 1,000,000)")
    access.add_argument("--max-radius", type=radius, dest="limits_max_radius_arcsec",
                        default=None, metavar="ANGLE",
                        help="largest search radius (default 10deg)")
    access.add_argument("--max-batch", type=positive_int, dest="limits_max_batch",
                        default=None, metavar="N", help="positions or alerts in one batch at most "
                                           "(default 1,000,000)")
    access.add_argument("--max-message-bytes", type=positive_int,
                        dest="limits_max_message_bytes", default=None, metavar="BYTES",
                        help="largest gRPC message (default 64 MiB)")
    observe = parser.add_argument_group("metrics and logs")
    observe.add_argument("--metrics-port", type=port, dest="metrics_port", default=None,
                         metavar="PORT",
                         help="serve Prometheus metrics at http://HOST:PORT/metrics (0: any "
                              "free port)")
    observe.add_argument("--metrics-host", dest="metrics_host", default="127.0.0.1",
                         metavar="HOST",
                         help="address of the metrics endpoint (default 127.0.0.1)")
    add_logging(observe)


def add_http(parser) -> None:
    """``--http``: the Virtual Observatory face (Simple Cone Search, TAP, MOC) of a server."""
    group = parser.add_argument_group(
        "Virtual Observatory face (HTTP: Simple Cone Search, TAP, coverage MOCs; docs/vo.md)")
    group.add_argument("--http", type=port, dest="http_port", default=None, metavar="PORT",
                       help="also serve SCS, TAP and MOC over HTTP on PORT (0: any free "
                            "port), with the same TLS, tokens and limits as gRPC")
    group.add_argument("--http-host", dest="http_host", default=None, metavar="HOST",
                       help="address of the HTTP face (default: the gRPC server's)")


def add_logging(parser) -> None:
    """``--log-format``, ``--log-level``, ``--log-file`` of the long-running commands."""
    from xmatch.service.observe import LOG_FORMATS, LOG_LEVELS

    parser.add_argument("--log-format", choices=LOG_FORMATS, dest="logging_format",
                        default="text", help="log lines as text (default) or JSON")
    parser.add_argument("--log-level", choices=LOG_LEVELS, dest="logging_level",
                        default="info", help="debug logs every call (default info)")
    parser.add_argument("--log-file", metavar="FILE", dest="logging_file", default=None,
                        help="write the log to FILE (default: standard error)")


def logging_of(args) -> None:
    """Set up the log as the command's --log-* options say."""
    from xmatch.service.observe import configure_logging

    configure_logging(args.logging_format, args.logging_level, args.logging_file)


def port(text: str) -> int:
    """A TCP port, 0 (any free port) allowed."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port; give 0..65535 (0: any free)")
    return value


def tls_of(args, serving: bool):
    """The :class:`~xmatch.service.security.Tls` of a command's options (None: plain text).
    A server without --plaintext must have a certificate; a client uses TLS when given a CA
    or --tls."""
    from xmatch.errors import InputError
    from xmatch.service.security import Tls, check_options

    problems = check_options(args)
    if problems:
        raise InputError("; ".join(problems))
    secure = bool(args.tls_cert) if serving else bool(
        getattr(args, "tls_ca", None) or getattr(args, "tls_system", False))
    if not secure:
        if not serving and getattr(args, "tls_cert", None):
            raise InputError("a client certificate (--tls-cert) is shown over TLS only: give "
                             "--tls-ca or --tls")
        return None
    return Tls.from_files(cert=args.tls_cert, key=args.tls_key,
                          client_ca=getattr(args, "tls_client_ca", None) if serving else None,
                          ca=getattr(args, "tls_ca", None))


def credentials_of(args, tls=None):
    """What the command shows the servers it calls (``tls``: given, e.g. a router's own)."""
    from xmatch.service.security import Credentials, read_token

    if tls is None:
        tls = tls_of(args, serving=False)
    return Credentials(tls, read_token(args.auth_token, args.auth_token_file))


def client_of(args, in_process: str | None = None, **kwargs):
    """A :class:`~xmatch.Client` of ``--server`` with the command's TLS and token, or of
    the server this process runs at ``in_process`` (plain text on loopback)."""
    from xmatch.service.client import Client

    if args.server is None and in_process is not None:
        return Client(in_process, **kwargs)
    credentials = credentials_of(args)
    return Client(args.server, tls=credentials.tls, token=credentials.token, **kwargs)


def exposure_of(args, address: str):
    """The :class:`~xmatch.service.security.Exposure` of a server command listening on
    ``address``; sets up its logging."""
    from xmatch.errors import InputError
    from xmatch.service.security import Access, Exposure, is_loopback

    logging_of(args)
    tls = tls_of(args, serving=True)
    if args.auth_tokens is not None:
        Access(args.auth_tokens)  # a missing or damaged file: said now, not at first call
        if tls is None and not is_loopback(address):
            raise InputError("tokens over plain text can be read off the network: serve "
                             "with TLS (--tls-cert, --tls-key), or on a loopback address")
    metrics = None if args.metrics_port is None else (args.metrics_host, args.metrics_port)
    http = None
    if getattr(args, "http_port", None) is not None:
        http = (args.http_host or address.rsplit(":", 1)[0], args.http_port)
        if args.auth_tokens is not None and tls is None and not is_loopback(http[0]):
            raise InputError("tokens over plain-text HTTP can be read off the network: serve "
                             "with TLS (--tls-cert, --tls-key), or on a loopback address")
    return Exposure(tls, args.auth_tokens, metrics, http)


def limits_of(args):
    """The server's :class:`~xmatch.service.validation.Limits`, defaults where not given."""
    from dataclasses import fields

    from xmatch.service.validation import Limits

    given = {f.name: getattr(args, f"limits_{f.name}") for f in fields(Limits)
             if getattr(args, f"limits_{f.name}", None) is not None}
    return Limits(**given)


def add_output(parser, formats=OUTPUT_FORMATS) -> None:
    parser.add_argument("--out", metavar="FILE",
                        help="write to FILE instead of the terminal; its suffix picks the "
                             f"format ({', '.join(f for f in formats if f != 'table')})")
    parser.add_argument("--format", choices=formats, default=None,
                        help="output format (default: from the --out suffix, else a table "
                             "on the terminal)")


def add_columns(parser) -> None:
    parser.add_argument("--columns", default=None, metavar="A,B",
                        help="comma-separated catalog columns to return (default: all but "
                             "_healpix_29)")


def add_position_columns(parser) -> None:
    parser.add_argument("--ra-column", default=None, metavar="NAME",
                        help="the right ascension column (default: found by UCD or name: "
                             "ra, RAJ2000, raMean, objra...)")
    parser.add_argument("--dec-column", default=None, metavar="NAME",
                        help="the declination column (default: dec, DEJ2000, decMean...)")


def columns_of(args) -> list[str] | None:
    if not args.columns:
        return None
    columns = [c.strip() for c in args.columns.split(",")]
    if not all(columns):
        from xmatch.errors import InputError

        raise InputError(f"--columns {args.columns!r} has an empty name")
    return columns


def data_of(args):
    from xmatch.store.data_dir import DataDirectory

    return DataDirectory(args.data)


def write_result(table, args, *, positions=None, asked=None, limit: int | None = None,
                 what: str = "rows", summary=(), secondary=()) -> None:
    """Write a search's rows as ``--out``/``--format`` say, described (units, UCDs) by the
    ``positions`` (id, ra, dec) of its rows and ``secondary`` ones (:func:`described`);
    ``_healpix_29`` only when ``asked`` for. Then the summary lines and, when ``--limit``
    cut the rows, how many there were: on standard error when the rows went to the
    terminal, on standard output otherwise."""
    from xmatch.index.results import rows_found
    from xmatch.io.tables import described, output_format, write_table
    from xmatch.store.paths import HEALPIX29_COLUMN

    fmt = output_format(args.out, args.format)
    found = rows_found(table)
    if HEALPIX29_COLUMN in table.column_names and HEALPIX29_COLUMN not in (asked or ()):
        table = table.drop_columns([HEALPIX29_COLUMN])
    if positions is not None:
        table = described(table, ra=positions.ra, dec=positions.dec,
                          identifier=positions.id, secondary=secondary)
    write_table(table, fmt, args.out)
    lines = list(summary)
    count = f"{table.num_rows:,} {what}"
    if limit is not None and found > table.num_rows:
        count = f"{table.num_rows:,} of {found:,} {what} (cut by --limit {limit})"
    if args.out:
        lines.append(f"{count} -> {args.out}")
    elif count != f"{table.num_rows:,} {what}":
        lines.append(count)
    for line in lines:
        print(line, file=sys.stdout if args.out else sys.stderr)


def note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


class CatalogColumns:
    """A catalog's identifier and position columns: what outputs are described by and what
    summaries and plots show."""

    def __init__(self, identifier: str | None, ra: str, dec: str, names):
        from xmatch.store.paths import ROW_ID_COLUMN

        identifier = identifier or ROW_ID_COLUMN  # the row number a load adds, if kept
        self.id = identifier if identifier in names else None
        self.ra, self.dec = ra, dec

    @classmethod
    def of_catalog(cls, catalog) -> CatalogColumns:
        return cls(catalog.spec.id, catalog.spec.ra, catalog.spec.dec, catalog.schema.names)

    @classmethod
    def of_description(cls, described: dict) -> CatalogColumns:
        return cls(described["id_column"], described["ra_column"], described["dec_column"],
                   described["schema"].names)

    def with_positions(self, columns: list[str] | None) -> list[str] | None:
        """The columns to ask for: summaries and plots need the identifier and position
        even when --columns leaves them out (they are dropped again from the output)."""
        if columns is None:
            return None
        wanted = [*columns, self.id, self.ra, self.dec]
        return [c for c in dict.fromkeys(wanted) if c is not None]


def add_memory(parser) -> None:
    """``--history`` and ``--watches`` of the commands that annotate."""
    parser.add_argument("--history", action="store_true",
                        help="record every alert in the alert history (the data directory's, "
                             "or the server's) and add each alert's object and light-curve "
                             "summary (history_* columns; docs/history.md)")
    parser.add_argument("--watches", action="store_true",
                        help="add each alert's hits in the watchlists and watchmaps "
                             "(watch_hits; `xmatch watch --help`)")


def memory_of(args, data):
    """The :class:`~xmatch.history.memory.AlertMemory` an in-process server keeps for
    ``--history``/``--watches`` (None without either)."""
    if not (args.history or args.watches):
        return None
    from xmatch.history.memory import AlertMemory

    return AlertMemory(data, history=args.history)


def add_config(parser) -> None:
    """``--config FILE``: option values from a TOML file. ``xmatch.cli.main`` reads it before
    parsing (:func:`xmatch.config.apply_config`), so the command line overrides it."""
    parser.add_argument("--config", metavar="FILE.toml", default=None,
                        help="take option values from this configuration file; options given "
                             "here override it (docs/config.md; check it with `xmatch config "
                             "check FILE`)")
