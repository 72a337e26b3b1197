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
GROUPS = ("demo", "catalogs", "search", "regions", "context", "alerts", "history", "notices",
          "stream", "service", "sso")

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


def main(argv: list[str] | None = None) -> int:
    from xmatch.errors import XmatchError

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # --help, --version, or a bad option (said in one line)
        return exit.code if isinstance(exit.code, int) else 2
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
