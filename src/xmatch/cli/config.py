"""``xmatch config check FILE`` and ``xmatch config example``: the configuration file of
``serve``, ``cluster`` and ``stream`` (docs/config.md)."""

from __future__ import annotations

import argparse
import sys

EPILOG = """examples:
  xmatch config example > xmatch.toml          every key, commented out, with its help
  xmatch config check xmatch.toml
  xmatch serve --config xmatch.toml --port 50052   the command line overrides the file"""


def add_parsers(commands) -> None:
    config = commands.add_parser(
        "config", help="check a configuration file of serve, cluster and stream",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="One TOML file gives the options of `xmatch serve`, `xmatch cluster "
                    "up|shard|router` and `xmatch stream` (`--config FILE`); options on the "
                    "command line override it. `check` reads it as those commands would "
                    "and says every problem, one line each, or what each command takes "
                    "from it; `example` writes a commented file with every key.",
        epilog=EPILOG)
    steps = config.add_subparsers(dest="step", required=True, metavar="STEP")
    check = steps.add_parser(
        "check", help="say every problem of a configuration file, or what it sets",
        description="Exit status 0: the file is read right, and each command's values are "
                    "listed (with what the command line must still give); 2: every problem, "
                    "one line each, on standard error.")
    check.add_argument("file", metavar="FILE", help="the TOML configuration file")
    steps.add_parser(
        "example", help="write a commented configuration file with every key",
        description="Every key of every section, commented out, with the help and default "
                    "of its option: generated from the commands themselves, so always true.")
    config.set_defaults(run=run_config)


def run_config(args) -> int:
    from xmatch.cli import build_parser
    from xmatch.config import example_config

    if args.step == "example":
        sys.stdout.write(example_config(build_parser()))
        return 0
    return check_file(args.file)


def check_file(path) -> int:
    """Print what ``path`` gives each command (exit status 0) or every problem (2)."""
    from xmatch.cli import build_parser
    from xmatch.config import ConfigError, load_config, review_config, show_value

    try:
        config = load_config(path)
        settings = review_config(config, build_parser)
    except ConfigError as error:
        for message in error.messages:
            print(f"xmatch config check: error: {message}", file=sys.stderr)
        return 2
    for command, setting in settings.items():
        values = " ".join(f"{dest}={show_value(value)}"
                          for dest, value in setting.shown.items())
        print(f"xmatch {command}: {values or 'nothing from this file'}")
        if setting.needed:
            print(f"  needs {', '.join(setting.needed)} on the command line")
        for note in setting.notes:
            print(f"  needs on the command line: {note}")
    print(f"{config.path}: read right; options given on the command line override it")
    return 0
