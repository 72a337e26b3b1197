"""One TOML configuration file for ``xmatch serve``, ``xmatch cluster up|shard|router`` and
``xmatch stream`` (docs/config.md).

The file only supplies values: every option is defined once, by the command's argparse
parser, and the file is read through it. A command is configurable when its parser has the
``--config`` option (:func:`xmatch.cli.common.add_config`); its section is its first word.
The layout::

    data = "/srv/xmatch"     # an option two or more command sections share
    [serve]                  # an option of `xmatch serve`, by its dest (host, port...)
    [cluster]                # an option of `xmatch cluster up`, `shard` or `router`
    [stream]                 # an option of `xmatch stream`
    [tls] cert = "..."       # [S] k sets the dest S_k of every command that has it
    [stream.metrics] port    # ... of that command section's commands only

Later layers override earlier ones: top-level keys, then shared sections, then a command's
own section (its keys and its nested shared tables), then the command line.

A value is converted and checked by the option's own argparse action: its ``type`` (which
raises ``argparse.ArgumentTypeError`` with a one-line message), its ``choices``, flags take
booleans, repeatable options and ``nargs`` lists take arrays. Relative paths (options whose
metavar is ``FILE`` or ``DIR``, or ``FILE.suffix``) are relative to the file's directory.

argparse has no public way to list a parser's actions or subparsers: this module reads
``parser._actions`` and tells actions apart by argparse's action classes (``_StoreAction``,
``_AppendAction``..., all stable since Python 3.2).
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

from xmatch.errors import InputError

#: Sections whose key ``k`` sets the dest ``SECTION_k`` of every configured command.
SHARED_SECTIONS = ("tls", "auth", "metrics", "logging", "limits", "http")

#: The dest of the option that names the file itself (never a key of the file).
CONFIG_DEST = "config"

#: Metavars of options whose values are paths, made relative to the file's directory.
_PATH_METAVAR = re.compile(r"(FILE|DIR)(\.\w+)?")

#: Module and function of the semantic checks across keys (TLS and tokens), if present.
SECURITY_CHECKS = ("xmatch.service.security", "check_options")


class ConfigError(InputError):
    """A configuration file that is not read: every problem found, one line each
    (``FILE: [section] key: what is wrong; what is allowed``)."""

    def __init__(self, messages: list[str]):
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


@dataclass(frozen=True)
class Config:
    """A configuration file read as TOML, not yet checked against the commands.

    Attributes
    ----------
    path : Path
        The file as it was named (messages name it so).
    data : dict
        Its tables and keys, as :mod:`tomllib` read them.
    """

    path: Path
    data: dict

    @property
    def directory(self) -> Path:
        """Where its relative paths start."""
        return self.path.absolute().parent


@dataclass
class Setting:
    """What a configuration gives one command: option values by dest, and what it leaves
    to the command line."""

    command: str
    values: dict = field(default_factory=dict)
    #: Option strings of required options the file does not give (``--name``).
    needed: list[str] = field(default_factory=list)
    #: Messages of the semantic checks that hold without the file too (the command line
    #: must settle them: ``serving needs TLS ... or --plaintext``).
    notes: list[str] = field(default_factory=list)
    #: The values as the file wrote them (paths made absolute), by dest: what
    #: ``config check`` shows.
    shown: dict = field(default_factory=dict)


def load_config(path) -> Config:
    """Read ``path`` as TOML (not yet checked: :func:`check_config`).

    Raises
    ------
    ConfigError
        No such file, not UTF-8, or not TOML (with tomllib's line and column).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: a directory; give a TOML file"]) from None
    except OSError as error:
        raise ConfigError([f"{path}: cannot be read ({error.strerror})"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError([f"{path}: byte {error.start + 1} is not UTF-8; a TOML file is "
                           "UTF-8 text"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        where = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", message)
        if where:
            what, line, column = where.groups()
            message = f"line {line}, column {column}: {what[:1].lower()}{what[1:]}"
        else:
            message = message[:1].lower() + message[1:]
        raise ConfigError([f"{path}: {message} (not valid TOML; see https://toml.io)"]) \
            from None
    return Config(path, data)


# ------------------------------------------------------------------- the commands' options


def configurable_commands(parser: argparse.ArgumentParser) -> dict:
    """Every command of ``parser`` (the ``xmatch`` parser) that takes ``--config``: its
    words (``"cluster up"``) -> its parser, in the order ``--help`` lists them."""
    found = {}

    def walk(sub, words):
        if words and any(a.dest == CONFIG_DEST for a in sub._actions):
            found[" ".join(words)] = sub
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                seen = set()
                for name, child in action.choices.items():
                    if id(child) not in seen:  # aliases name the same parser
                        seen.add(id(child))
                        walk(child, [*words, name])

    walk(parser, [])
    return found


def options_of(parser: argparse.ArgumentParser) -> dict:
    """The options a file may set for one command: dest -> its (first) action."""
    options = {}
    for action in parser._actions:
        if (action.option_strings and action.dest not in (argparse.SUPPRESS, CONFIG_DEST)
                and not isinstance(action, argparse._HelpAction | argparse._VersionAction)):
            options.setdefault(action.dest, action)
    return options


def section_of(command: str) -> str:
    return command.split()[0]


def _shared_key(dest: str) -> tuple[str, str] | None:
    """(section, key) of a dest a shared section sets (``tls_cert`` -> ``tls``, ``cert``)."""
    for section in SHARED_SECTIONS:
        if dest.startswith(section + "_") and len(dest) > len(section) + 1:
            return section, dest[len(section) + 1:]
    return None


class _Layout:
    """Which keys the file may have where, derived from the parsers."""

    def __init__(self, parser):
        self.commands = configurable_commands(parser)
        self.options = {c: options_of(p) for c, p in self.commands.items()}
        self.sections = list(dict.fromkeys(section_of(c) for c in self.commands))
        groups: dict[str, set] = {}
        for command, options in self.options.items():
            for dest in options:
                if _shared_key(dest) is None:
                    groups.setdefault(dest, set()).add(section_of(command))
        #: Options two or more command sections share: the top-level keys.
        self.top = sorted(d for d, g in groups.items() if len(g) >= 2)

    def commands_of(self, section: str) -> list[str]:
        return [c for c in self.commands if section_of(c) == section]

    def shared_keys(self, section: str, commands=None) -> list[str]:
        keys = set()
        for command in commands or self.commands:
            for dest in self.options[command]:
                shared = _shared_key(dest)
                if shared and shared[0] == section:
                    keys.add(shared[1])
        return sorted(keys)

    def own_keys(self, section: str) -> list[str]:
        """Keys of a command section: its options that no shared section sets."""
        return sorted({d for c in self.commands_of(section) for d in self.options[c]
                       if _shared_key(d) is None})

    def named(self, commands) -> str:
        """``xmatch serve, cluster up|router or stream``."""
        groups: dict[str, list[str]] = {}
        for command in commands:
            section, _, step = command.partition(" ")
            groups.setdefault(section, [])
            if step:
                groups[section].append(step)
        parts = [f"{s} {'|'.join(steps)}" if steps else s for s, steps in groups.items()]
        listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} or {parts[-1]}"
        return f"xmatch {listed}"


def _did_you_mean(word: str, allowed, show=str) -> str:
    close = difflib.get_close_matches(word, list(allowed), n=1)
    return f" (did you mean {show(close[0])}?)" if close else ""


def _listed(items) -> str:
    return ", ".join(items) if items else "none in this version"


# ----------------------------------------------------------------------- reading values


def toml_text(value) -> str | None:
    """``value`` written as TOML (None: it cannot be)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | tuple):
        items = [toml_text(v) for v in value]
        return None if None in items else f"[{', '.join(items)}]"
    return None


def _what(value) -> str:
    """``value`` and its TOML kind, for messages: ``"50051" is a string``."""
    shown = toml_text(value)
    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
             (list, "an array"), (dict, "a table"), (datetime, "a date-time"),
             (date, "a date"), (time, "a time"))
    kind = next(k for t, k in kinds if isinstance(value, t))
    return kind if shown is None else f"{shown} is {kind}"


def _is_flag(action) -> bool:
    return isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction
                      | argparse.BooleanOptionalAction)


def _is_path(action) -> bool:
    return action.metavar is not None and bool(_PATH_METAVAR.fullmatch(str(action.metavar)))


def _takes_numbers(action) -> bool:
    """Whether the option takes a number, so that TOML gives it one (``port = 50051``):
    its type is int or float, or its type makes a number of "1" (a port, a count)."""
    if action.type in (int, float):
        return True
    if action.type is None:
        return False
    try:
        value = action.type("1")
    except Exception:  # a type that refuses "1" takes text (an angle, an address)
        return False
    return isinstance(value, int | float) and not isinstance(value, bool)


def _wanted(action) -> str:
    if action.type is int:
        return "an integer"
    return "a number" if _takes_numbers(action) else "a string"


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Refused(Exception):
    """One value refused: the message (what is wrong; what is allowed)."""


def _scalar(action, value, key: str | None, directory: Path):
    """One value of ``action`` from TOML: (given, converted), given being what the parser
    is given as a default and ``config check`` shows. ``key``: the key, for the fix a
    message shows (None: an array item, no fix shown).

    Strings are given as strings, so that argparse converts them as it converts a string
    default, as if they were typed on the command line; numbers are converted here."""
    if isinstance(value, bool):
        raise _Refused(f"{_what(value)}; give {_wanted(action)}")
    if isinstance(value, datetime | date | time):
        raise _Refused(f"{_what(value)}; give {_wanted(action)}")
    if isinstance(value, dict | list):
        raise _Refused(f"{_what(value)}; give one value, {_wanted(action)}")
    if isinstance(value, str):
        if not value.strip():
            raise _Refused("an empty string; give a value"
                           + (f" or leave {key} out" if key else ""))
        if _is_path(action):
            path = Path(value).expanduser()
            value = str(path if path.is_absolute() else directory / path)
        if action.type is None:
            converted = value
        elif action.type in (int, float):
            number = f": {key} = {value.strip()}" if key and _is_number_text(value) else ""
            raise _Refused(f"{_what(value)}; give {_wanted(action)}{number}")
        else:
            converted = _convert(action, value)
            if (isinstance(converted, int | float) and not isinstance(converted, bool)
                    and _is_number_text(value)):
                raise _Refused(f"{_what(value)}; give a number"
                               + (f": {key} = {value.strip()}" if key else ""))
        _check_choice(action, converted)
        return value, converted  # argparse converts the string, as one typed
    # an int or a float
    if action.type is None:
        raise _Refused(f"{_what(value)}; give a string"
                       + (f": {key} = {json.dumps(str(value))}" if key else ""))
    if action.type is int and isinstance(value, float):
        raise _Refused(f"{_what(value)}; give an integer")
    text = toml_text(value) if isinstance(value, float) else str(value)
    if not _takes_numbers(action):
        try:
            converted = _convert(action, text)
        except _Refused as error:  # an angle written as 5 where TOML needs "5arcsec"
            raise _Refused(f"{_what(value)}; give a string: {error}") from None
        _check_choice(action, converted)
        return converted, converted
    converted = _convert(action, text)
    _check_choice(action, converted)
    return converted, converted


def _convert(action, text: str):
    try:
        return action.type(text)
    except argparse.ArgumentTypeError as error:
        raise _Refused(str(error)) from None
    except (TypeError, ValueError):  # as argparse says it of a type that raises these
        name = getattr(action.type, "__name__", repr(action.type))
        raise _Refused(f"invalid {name} value: {text!r}") from None


def _check_choice(action, converted) -> None:
    if action.choices is not None and converted not in action.choices:
        raise _Refused(f"{toml_text(converted) or repr(converted)} is not allowed; give one of: "
                       f"{', '.join(toml_text(c) or str(c) for c in action.choices)}")


def _value(action, value, label: str, key: str, directory: Path):
    """What the parser is given for one key: (default, shown); raises _Refused with every
    message (array items are each checked)."""
    if _is_flag(action):
        if not isinstance(value, bool):
            raise _Refused(f"{label}: {_what(value)}; give true or false")
        return value, value
    repeated = isinstance(action, argparse._AppendAction | argparse._ExtendAction)
    many = action.nargs in ("*", "+") or isinstance(action.nargs, int)
    if not isinstance(action, argparse._StoreAction | argparse._AppendAction) or (
            type(action) is argparse._AppendAction and action.nargs not in (None, "?")):
        raise _Refused(f"{label}: {action.option_strings[-1]} cannot be set in a "
                       "configuration file; give it on the command line")
    if not (repeated or many):
        try:
            given, _ = _scalar(action, value, key, directory)
        except _Refused as error:
            raise _Refused(f"{label}: {error}") from None
        return given, given
    example = "[...]" if not isinstance(value, str) else f"[{toml_text(value)}]"
    if not isinstance(value, list):
        raise _Refused(f"{label}: {_what(value)}; give an array: {key} = {example}")
    if action.nargs == "+" and not value:
        raise _Refused(f"{label}: an empty array; give one value or more")
    if isinstance(action.nargs, int) and len(value) != action.nargs:
        raise _Refused(f"{label}: an array of {len(value)}; give {action.nargs} values")
    items, given, problems = [], [], []
    for i, item in enumerate(value):
        try:  # argparse converts no list default: the items are converted here
            text, converted = _scalar(action, item, None, directory)
        except _Refused as error:
            problems.append(f"{label}[{i}]: {error}")
            continue
        given.append(text)
        items.append(converted)
    if problems:
        raise _Refused("\n".join(problems))
    if repeated:
        items = _FromFile(items)  # the command line's first use replaces them
    return items, given


class _FromFile(list):
    """The items a file gives a repeatable option: replaced, not extended, by the items
    the command line gives (the command line overrides the file)."""


class _Replacing:
    """Mixed into an append action the file gives items: its first use on the command line
    starts a new list."""

    def __call__(self, parser, namespace, values, option_string=None):
        if isinstance(getattr(namespace, self.dest, None), _FromFile):
            setattr(namespace, self.dest, [])
        super().__call__(parser, namespace, values, option_string)


# ----------------------------------------------------------------------------- checking


def check_config(config: Config, parser: argparse.ArgumentParser) -> dict:
    """Check ``config`` against every configurable command of ``parser`` (the ``xmatch``
    parser, :func:`xmatch.cli.build_parser`).

    Returns
    -------
    dict
        Command (``"serve"``, ``"cluster up"``...) -> :class:`Setting`: the values the file
        gives it (what the parser is given as defaults: strings as written, paths made
        absolute; numbers converted) and the required options it leaves to the command line.

    Raises
    ------
    ConfigError
        With every problem found, one line each.
    """
    layout = _Layout(parser)
    name = str(config.path)
    errors: list[str] = []
    # command -> dest -> (rank, default, shown); higher ranks override lower ones
    found: dict[str, dict] = {c: {} for c in layout.commands}

    def refuse(message: str) -> None:
        for line in message.split("\n"):
            line = f"{name}: {line}"
            if line not in errors:
                errors.append(line)

    def give(commands, dest, value, label, key, rank):
        for command in commands:
            action = layout.options[command].get(dest)
            if action is None:
                continue
            try:
                default, shown = _value(action, value, label, key, config.directory)
            except _Refused as error:
                refuse(str(error))
                continue
            previous = found[command].get(dest)
            if previous is None or previous[0] <= rank:
                found[command][dest] = (rank, default, shown)

    def shared(section, table, commands, label, rank):
        keys = layout.shared_keys(section, commands)
        for key, value in table.items():
            dest = f"{section}_{key}"
            takers = [c for c in commands if dest in layout.options[c]]
            if not takers:
                refuse(f"{label} {key}: not an option of {layout.named(commands)}"
                       f"{_did_you_mean(key, keys)}; {label} keys: {_listed(keys)}")
                continue
            give(takers, dest, value, f"{label} {key}", key, rank)

    def misplaced(dest: str, commands) -> tuple[str, str] | None:
        """(section, key) of a dest given as a plain key that a shared section sets for
        one of ``commands``."""
        at = _shared_key(dest)
        return at if at and at[1] in layout.shared_keys(at[0], commands) else None

    all_sections = [*layout.sections, *SHARED_SECTIONS]
    for key, value in config.data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            if key in all_sections:
                refuse(f"[[{key}]]: an array of tables; write [{key}] once")
            else:
                refuse(f"[[{key}]]: unknown section{_did_you_mean(key, all_sections)}; "
                       f"sections: {', '.join(all_sections)}")
            continue
        if not isinstance(value, dict) or (key in layout.top and key not in all_sections):
            if key in all_sections:
                refuse(f"{key}: a section, not a value; write [{key}] and its keys under it")
                continue
            if key in layout.top:
                give(layout.commands, key, value, key, key, 0)
                continue
            moved = misplaced(key, layout.commands)
            takers = [c for c in layout.commands if key in layout.options[c]]
            if moved:
                refuse(f"{key}: set it in [{moved[0]}] as {moved[1]}")
            elif takers:
                refuse(f"{key}: an option of {layout.named(takers)} only; set it in "
                       f"[{section_of(takers[0])}]")
            else:
                refuse(f"{key}: not an option of any configured command"
                       f"{_did_you_mean(key, layout.top + all_sections)}; top-level keys: "
                       f"{_listed(layout.top)}; sections: {', '.join(all_sections)}")
            continue
        if key in SHARED_SECTIONS:
            shared(key, value, list(layout.commands), f"[{key}]", 1)
        elif key in layout.sections:
            commands = layout.commands_of(key)
            own = layout.own_keys(key)
            nested = [s for s in SHARED_SECTIONS if layout.shared_keys(s, commands)]
            for option, item in value.items():
                label = f"[{key}] {option}"
                if option in SHARED_SECTIONS and isinstance(item, dict):
                    shared(option, item, commands, f"[{key}.{option}]", 2)
                elif option in own:
                    give(commands, option, item, label, option, 2)
                elif at := misplaced(option, commands):
                    refuse(f"{label}: set it in [{at[0]}] as {at[1]} (or in "
                           f"[{key}.{at[0]}] for {layout.named(commands)} alone)")
                else:
                    tables = f"; tables: {', '.join(f'[{key}.{s}]' for s in nested)}" \
                        if nested else ""
                    refuse(f"{label}: not an option of {layout.named(commands)}"
                           f"{_did_you_mean(option, own)}; keys: {_listed(own)}{tables}")
        else:
            refuse(f"[{key}]: unknown section{_did_you_mean(key, all_sections, '[{}]'.format)}"
                   f"; sections: {', '.join(all_sections)}")
    if errors:
        raise ConfigError(errors)
    settings = {}
    for command, values in found.items():
        order = list(layout.options[command])  # as --help lists them
        values = dict(sorted(values.items(), key=lambda item: order.index(item[0])))
        setting = Setting(command, {d: default for d, (_, default, _) in values.items()},
                          shown={d: shown for d, (_, _, shown) in values.items()})
        setting.needed = [a.option_strings[-1] for a in layout.commands[command]._actions
                          if a.required and a.option_strings and a.dest not in values]
        settings[command] = setting
    return settings


def apply_config(parser: argparse.ArgumentParser, config: Config, command: str) -> Setting:
    """Make the values ``config`` gives ``command`` the defaults of its parser, so that
    options on the command line override them; the whole file is checked first.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``xmatch`` parser (:func:`xmatch.cli.build_parser`); changed in place.
    config : Config
        From :func:`load_config`.
    command : str
        ``"serve"``, ``"cluster up"``, ``"cluster shard"``, ``"cluster router"``, ``"stream"``.

    Raises
    ------
    ConfigError
        The file's problems, every one; or a command that takes no ``--config``.
    """
    commands = configurable_commands(parser)
    if command not in commands:
        raise ConfigError([f"xmatch {command} takes no configuration file; "
                           f"these do: {', '.join(commands)}"])
    setting = check_config(config, parser)[command]
    sub = commands[command]
    options = options_of(sub)
    for dest, value in setting.values.items():
        action = options[dest]
        action.required = False  # given by the file, still overridable
        if isinstance(value, _FromFile) and not isinstance(action, _Replacing):
            action.__class__ = type(f"Replacing{type(action).__name__}",
                                    (_Replacing, type(action)), {})
    sub.set_defaults(**setting.values)
    return setting


def namespace_of(parser: argparse.ArgumentParser, config: Config | None,
                 command: str) -> argparse.Namespace:
    """The namespace ``xmatch COMMAND --config FILE`` gives the command when the command
    line adds nothing (required options the file leaves out are None). ``parser`` is used
    up: give a new one (:func:`xmatch.cli.build_parser`)."""
    if config is not None:
        apply_config(parser, config, command)
    for action in configurable_commands(parser)[command]._actions:
        action.required = False
    return parser.parse_args(command.split())


def security_check():
    """``check_options(args) -> list[str]`` of :mod:`xmatch.service.security` (None where
    that module or function does not exist)."""
    from importlib import import_module

    module_name, function = SECURITY_CHECKS
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise
    return getattr(module, function, None)


def review_config(config: Config, make_parser) -> dict:
    """Everything ``xmatch config check`` says of ``config``: :func:`check_config`, then the
    semantic checks across keys (:data:`SECURITY_CHECKS`) of each command's namespace.

    A semantic message the command's defaults give too (``serving needs TLS ... or
    --plaintext`` of a file with no [tls]) is the command line's to settle: a note of the
    :class:`Setting`. One the file brings is an error, named with its commands.

    Parameters
    ----------
    make_parser : callable
        Gives a new ``xmatch`` parser (:func:`xmatch.cli.build_parser`).

    Raises
    ------
    ConfigError
        Every problem; the semantic checks run only on a file whose keys all passed.
    """
    settings = check_config(config, make_parser())
    check = security_check()
    if check is None:
        return settings
    brought: dict[str, list[str]] = {}
    for command, setting in settings.items():
        without = set(check(namespace_of(make_parser(), None, command)))
        for message in check(namespace_of(make_parser(), config, command)):
            if message in without:
                setting.notes.append(message)
            else:
                brought.setdefault(message, []).append(command)
    if brought:
        layout = _Layout(make_parser())
        raise ConfigError([f"{config.path}: {layout.named(commands)}: {message}"
                           for message, commands in brought.items()])
    return settings


def show_value(value) -> str:
    """A value as ``config check`` shows it: as on a command line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return shlex.quote(str(value))


# ------------------------------------------------------------------------------ example


def example_config(parser: argparse.ArgumentParser) -> str:
    """A commented configuration file with every key of every section, each with its
    option's help and default (or a placeholder: its metavar), from ``parser`` (the
    ``xmatch`` parser). Everything is commented out: it checks clean as it is."""
    import textwrap

    layout = _Layout(parser)
    lines = [
        "# xmatch configuration: `xmatch serve|stream|cluster up|shard|router --config FILE`.",
        "# Each key is an option of those commands, by its name with - as _ (port for",
        "# --port); options given on the command line override the file. Relative paths are",
        "# relative to this file's directory. `xmatch config check FILE` checks it; see",
        "# docs/config.md. Uncomment what you need.",
    ]

    def entry(key: str, commands: list[str], dest: str) -> None:
        action = layout.options[commands[0]][dest]
        help_text = (action.help or "").strip()
        if "%" in help_text:
            help_text = help_text % {**vars(action), "prog": parser.prog}
        if action.choices is not None:
            choices = ", ".join(toml_text(c) or repr(c) for c in action.choices)
            help_text += f" (one of: {choices})"
        where = f" [{layout.named(commands)}]"
        lines.append("")
        lines.extend(textwrap.wrap(f"{action.option_strings[-1]}: {help_text}{where}",
                                   width=90, initial_indent="# ", subsequent_indent="# "))
        default = action.default
        if isinstance(action, argparse._AppendAction | argparse._ExtendAction) \
                and not default:
            default = None
        value = toml_text(default) if default is not None else None
        if value is None and action.choices is not None:
            value = toml_text(next(iter(action.choices)))
        if value is None:
            placeholder = str(action.metavar or dest.upper())
            if not _takes_numbers(action):
                placeholder = json.dumps(placeholder)
            value = (f"[{placeholder}]"
                     if isinstance(action, argparse._AppendAction | argparse._ExtendAction)
                     or action.nargs in ("*", "+") else placeholder)
        lines.append(f"#{key} = {value}")

    def takers(dest):
        return [c for c in layout.commands if dest in layout.options[c]]

    for dest in layout.top:
        entry(dest, takers(dest), dest)
    for section in layout.sections:
        lines += ["", "", f"[{section}]"]
        commands = layout.commands_of(section)
        for dest in layout.own_keys(section):
            if dest in layout.top:
                continue
            users = [c for c in commands if dest in layout.options[c]]
            entry(dest, users, dest)
    for section in SHARED_SECTIONS:
        keys = layout.shared_keys(section)
        lines += ["", ""]
        if not keys:
            lines.append(f"# [{section}]: no command of this version takes these keys")
            continue
        lines.append(f"[{section}]")
        for key in keys:
            dest = f"{section}_{key}"
            entry(key, takers(dest), dest)
    return "\n".join(lines) + "\n"
