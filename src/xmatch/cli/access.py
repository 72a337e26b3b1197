"""``xmatch token add|list|revoke``: the bearer tokens a server accepts (``--tokens FILE``);
``xmatch tls-rehearsal``: a private CA and certificates to try TLS with."""

from __future__ import annotations

import argparse
import sys

from xmatch.cli import common

EPILOG = """examples:
  xmatch token add broker-a --tokens tokens.json --permissions query,annotate --rps 200 \\
      --streams 4 --rows 100000
  xmatch token add router --tokens tokens.json --permissions query,stream,annotate
  xmatch token list --tokens tokens.json
  xmatch token revoke broker-a --tokens tokens.json
  xmatch serve --tls-cert server.pem --tls-key server.key --tokens tokens.json
  XMATCH_TOKEN=xmt_... xmatch cone gaia_dr3 56.75 24.12 --server host:50051 --tls-ca ca.pem"""


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not allowed; give a rate > 0 "
                                         "(leave the option out for no limit)")
    return value


def add_parsers(commands) -> None:
    from xmatch.service.security import PERMISSIONS

    token = commands.add_parser(
        "token", help="manage the bearer tokens a server accepts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A token file (--tokens) keeps each token's SHA-256, never the token, "
                    "with its name, permissions and limits. Servers started with --tokens "
                    "re-read it when it changes: a revoked token is refused within a "
                    "second. Permissions: " + "; ".join(
                        f"{name}: {', '.join(methods)}" for name, methods in PERMISSIONS.items()),
        epilog=EPILOG)
    steps = token.add_subparsers(dest="step", required=True, metavar="STEP")
    add = steps.add_parser(
        "add", help="create a token and print it (once: the file keeps only its hash)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    add.add_argument("name", help="who the token is for (letters, digits, - _ .)")
    add.add_argument("--permissions", required=True, metavar="P,Q",
                     help=f"comma-separated, among {', '.join(PERMISSIONS)}")
    add.add_argument("--rps", type=_rate, default=0.0, metavar="N",
                     help="requests per second at most (default: no limit)")
    add.add_argument("--streams", type=common.positive_int, default=0, metavar="N",
                     help="streams open at once at most: Crossmatch, Annotate, RegionSearch "
                          "(default: no limit)")
    add.add_argument("--rows", type=common.positive_int, default=0, metavar="N",
                     help="rows in one answer at most (default: the server's limit)")
    listing = steps.add_parser("list", help="the tokens of the file (names, never tokens)")
    revoke = steps.add_parser("revoke", help="refuse a token from now on")
    revoke.add_argument("name", help="the token's name")
    for parser in (add, listing, revoke):
        parser.add_argument("--tokens", required=True, metavar="FILE",
                            help="the token file (created by the first `add`)")
    token.set_defaults(run=run_token)

    rehearsal = commands.add_parser(
        "tls-rehearsal", help="make a private CA and certificates to try TLS with",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Writes a CA (ca.pem), a server certificate for --hosts (server.pem, "
                    "server.key) and client certificates for mutual TLS (NAME.pem, NAME.key) "
                    "into DIR, for rehearsals and tests. In production, use your own PKI.",
        epilog="examples:\n"
               "  xmatch tls-rehearsal pki --hosts 127.0.0.1,localhost --clients broker-a\n"
               "  xmatch serve --tls-cert pki/server.pem --tls-key pki/server.key "
               "--tls-client-ca pki/ca.pem\n"
               "  xmatch cone gaia_dr3 56.75 24.12 --server 127.0.0.1:50051 --tls-ca pki/ca.pem "
               "--tls-cert pki/broker-a.pem --tls-key pki/broker-a.key")
    rehearsal.add_argument("directory", metavar="DIR", help="where to write the files")
    rehearsal.add_argument("--hosts", required=True, metavar="H1,H2",
                           help="names and IP addresses clients reach the servers by")
    rehearsal.add_argument("--clients", default="", metavar="A,B",
                           help="names of client certificates to issue (default: none)")
    rehearsal.add_argument("--days", type=common.positive_int, default=30,
                           help="validity in days (default 30)")
    rehearsal.set_defaults(run=run_rehearsal)


def run_rehearsal(args) -> int:
    from pathlib import Path

    from xmatch.errors import InputError
    from xmatch.service.pki import Authority

    hosts = [h.strip() for h in args.hosts.split(",")]
    clients = [c.strip() for c in args.clients.split(",")] if args.clients else []
    if not all(hosts) or not all(clients):
        raise InputError("--hosts and --clients are comma-separated names without empty items")
    if "server" in clients or "ca" in clients:
        raise InputError("client names 'server' and 'ca' are taken by the server's files")
    directory = Path(args.directory)
    if directory.exists() and any(directory.iterdir()):
        raise InputError(f"{directory} is not empty; give a new directory (nothing is "
                         "overwritten)")
    authority = Authority(directory, "ca", days=args.days)
    authority.issue("server", hosts, days=args.days)
    for name in clients:
        authority.issue(name, client=True, days=args.days)
    print(f"{directory}: ca.pem (the CA clients and servers trust), server.pem/.key for "
          f"{', '.join(hosts)}" + "".join(f", {n}.pem/.key" for n in clients)
          + f"; valid {args.days} days")
    return 0


def run_token(args) -> int:
    from xmatch.service.security import TokenFile

    tokens = TokenFile(args.tokens)
    if args.step == "add":
        secret = tokens.add(args.name, args.permissions.split(","), args.rps, args.streams,
                            args.rows)
        entry = next(e for e in tokens.read() if e.name == args.name and not e.revoked)
        print(secret)
        print(f"token {args.name!r} added to {args.tokens}: may {', '.join(entry.permissions)}"
              f"; {entry.limits_text()}. It is shown only now: keep it (XMATCH_TOKEN or "
              "--token-file)", file=sys.stderr)
    elif args.step == "list":
        entries = tokens.read()
        if not entries:
            print(f"{args.tokens}: no tokens")
        for e in entries:
            state = f"revoked {e.revoked}" if e.revoked else "live"
            print(f"{e.name:20s} {state:28s} {','.join(e.permissions):28s} {e.limits_text()}"
                  f"  (created {e.created})")
    else:
        entry = tokens.revoke(args.name)
        print(f"token {entry.name!r} revoked at {entry.revoked}; servers reading "
              f"{args.tokens} refuse it within a second")
    return 0
