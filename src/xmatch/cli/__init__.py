"""The ``xmatch`` command line: one module per group of commands, each importing what it
needs only when one of its commands runs, so ``xmatch --help`` stays quick.

Every command refuses bad input with one line, ``xmatch COMMAND: error: ...`` naming what
was wrong and where, and exits with status 2; anything else that goes wrong is a bug and
shows its traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from importlib import import_module

#: Command groups in the order ``--help`` lists them.
GROUPS = ("demo", "catalogs", "search", "regions", "coverage", "context", "alerts", "history",
          "notices", "stream", "service", "access", "config", "sso")

EPILOG = """examples:
  xmatch demo                                    load the bundled catalogs, try everything
  xmatch cone gaia_dr3 56.75 24.12 --radius 10arcmin
  xmatch crossmatch stars.csv --catalog gaia_dr3 --radius 1arcsec --out matched.parquet
  xmatch skymap GW170817_skymap.fits.gz --catalog glade_gw170817 --rank-by probdensity_vol

Run `xmatch COMMAND --help` for the options and examples of each command."""


class Parser(argparse.ArgumentParser):
    """argparse, with a bad option or value said in one line (no usage block): what was
    wrong; ``--help`` shows the rest. A negative sexagesimal declination (-16:42:58,
    -16d42m58s) is a value, as a negative number is, not an option."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(
            r"^-(\d+|\d*\.\d+)([:dhms'\"]\d*(\.\d*)?)*[dhms'\"]?$")

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from xmatch import __version__

    parser = Parser(
        prog="xmatch", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Spatial cross-match and catalog federation for time-domain astronomy.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"xmatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        import_module(f"xmatch.cli.{group}").add_parsers(commands)
    return parser


def _apply_config_option(parser, argv: list[str]) -> str | None:
    """``--config FILE`` of a command that takes it (``xmatch serve``, ``cluster up``...):
    the file's values become the defaults of the command's parser, so the options on the
    command line override them (docs/config.md). The file named (None: none); a file that
    is not read right exits with status 2, each of its problems on one line."""
    from xmatch.config import ConfigError, apply_config, configurable_commands, load_config

    words, sub = [], parser
    for token in argv:  # the command words: xmatch cluster up --config FILE ...
        steps = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        if not steps or token not in steps[0].choices:
            break
        words.append(token)
        sub = steps[0].choices[token]
    command = " ".join(words)
    if command not in configurable_commands(parser):
        return None  # argparse refuses a --config given here
    options = argv[:argv.index("--")] if "--" in argv else argv
    paths = [value for i, token in enumerate(options)
             for value in ([options[i + 1]] if token == "--config" and i + 1 < len(options)
                           else [token.partition("=")[2]] if token.startswith("--config=")
                           else [])]
    if not paths:
        return None
    try:
        if len(paths) > 1:
            raise ConfigError([f"--config is given {len(paths)} times; give one file"])
        apply_config(parser, load_config(paths[0]), command)
    except ConfigError as error:
        for message in error.messages:
            print(f"xmatch {command}: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    return paths[0]


def main(argv: list[str] | None = None) -> int:
    from xmatch.errors import XmatchError

    # gRPC's core logs refused TLS handshakes on standard error; the command says them.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        config = _apply_config_option(parser, argv)
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, --version, or a bad option (said in one line)
        return exit.code if isinstance(exit.code, int) else 2
    if getattr(args, "config", None) != config:  # an abbreviation argparse took (--conf)
        print(f"xmatch {args.command}: error: give the option in full: --config FILE",
              file=sys.stderr)
        return 2
    name = args.command + (f" {args.step}" if getattr(args, "step", None) else "")
    try:
        return args.run(args) or 0
    except XmatchError as error:
        print(f"xmatch {name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xmatch {name}: interrupted; nothing was published", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Whoever read our output stopped early (`xmatch ... | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:  # a file that cannot be read or written (the message names it)
        print(f"xmatch {name}: error: {error}", file=sys.stderr)
        return 2
