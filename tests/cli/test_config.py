"""The configuration file of ``xmatch serve``, ``cluster`` and ``stream`` (``--config``) and
``xmatch config check|example``: values read through each option's own argparse action,
every problem said in one line naming file, section and key, the command line over the
file. Exact messages are checked on a small parser built here (the real commands gain
options); the real parser is checked for what a file does to the namespace ``main`` runs
the command with."""

from __future__ import annotations

import argparse
import re

import pytest

from xmatch import config as cfg
from xmatch.cli import Parser, build_parser, common, main
from xmatch.config import (
    ConfigError,
    apply_config,
    check_config,
    example_config,
    load_config,
    namespace_of,
    review_config,
)


def xmatch(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def small_parser() -> argparse.ArgumentParser:
    """Commands shaped as the real ones, with the shared-section options (tls_*, metrics_*,
    limits_*) the real ones take or will take."""
    parser = Parser(prog="xmatch")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=common.port, default=50051)
    serve.add_argument("--history", action="store_true")
    serve.add_argument("--tls-cert", metavar="FILE")
    serve.add_argument("--tls-key", metavar="FILE")
    serve.add_argument("--plaintext", dest="tls_plaintext", action="store_true")
    serve.add_argument("--metrics-port", type=int)
    serve.add_argument("--max-rows", dest="limits_max_rows", type=common.positive_int,
                       default=100_000)
    common.add_data(serve)
    common.add_config(serve)
    serve.set_defaults(serves=True)
    cluster = commands.add_parser("cluster")
    steps = cluster.add_subparsers(dest="step", required=True)
    steps.add_parser("plan").add_argument("--shards", type=int)  # takes no --config
    for name in ("up", "shard"):
        step = steps.add_parser(name)
        step.add_argument("--plan", required=True, metavar="FILE")
        if name == "shard":
            step.add_argument("--name", required=True)
        common.add_config(step)
    stream = commands.add_parser("stream")
    stream.add_argument("--bootstrap", metavar="HOST:PORT")
    stream.add_argument("--radius", action="append", default=[], metavar="NAME=ANGLE")
    stream.add_argument("--sso-orbits", action="append", default=[], metavar="FILE")
    stream.add_argument("--output-format", choices=["container", "confluent"],
                        default="container")
    stream.add_argument("--batch-size", type=common.positive_int, default=1000)
    stream.add_argument("--deadline", type=float, default=30.0)
    stream.add_argument("--jitter", type=common.radius, default=3600.0)
    stream.add_argument("--history", action="store_true")
    stream.add_argument("--metrics-port", type=int)
    stream.add_argument("--tls-ca", metavar="FILE")
    common.add_data(stream)
    common.add_config(stream)
    return parser


def write(tmp_path, text: str, name: str = "xmatch.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(tmp_path, text: str, parser=None) -> list[str]:
    """Every message of a file that must be refused, without the file's own name."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        check_config(load_config(path), parser or small_parser())
    assert all(m.startswith(f"{path}: ") for m in error.value.messages)
    return [m.removeprefix(f"{path}: ") for m in error.value.messages]


def parsed(tmp_path, text: str, command: str, *argv, parser=None) -> argparse.Namespace:
    """The namespace of ``xmatch COMMAND ARGV --config FILE``."""
    parser = parser or small_parser()
    apply_config(parser, load_config(write(tmp_path, text)), command)
    return parser.parse_args([*command.split(), *argv])


# ------------------------------------------------------------------- values and overrides


def test_the_file_gives_defaults_and_the_command_line_overrides_them(tmp_path):
    text = """
data = "store"
[serve]
host = "0.0.0.0"
port = 50052
history = true
[stream]
bootstrap = "kafka:9092"
radius = ["gaia_dr3=1.5arcsec", "gcvs=2arcsec"]
deadline = 5
jitter = "1arcmin"
"""
    args = parsed(tmp_path, text, "serve")
    assert (args.host, args.port, args.history) == ("0.0.0.0", 50052, True)
    assert args.data == str(tmp_path / "store")  # relative to the file's directory
    args = parsed(tmp_path, text, "serve", "--port", "7", "--data", "elsewhere")
    assert (args.host, args.port, args.data) == ("0.0.0.0", 7, "elsewhere")
    args = parsed(tmp_path, text, "stream")
    assert args.radius == ["gaia_dr3=1.5arcsec", "gcvs=2arcsec"] and args.deadline == 5.0
    assert args.jitter == pytest.approx(60.0)  # the string converted by the option's type
    assert args.bootstrap == "kafka:9092" and args.history is False
    # a repeatable option given on the command line replaces the file's items
    args = parsed(tmp_path, text, "stream", "--radius", "ps1_dr2=1arcsec", "--radius", "a=1")
    assert args.radius == ["ps1_dr2=1arcsec", "a=1"]


def test_layers_top_level_then_shared_sections_then_the_command_section(tmp_path):
    text = """
data = "top"
history = true
[metrics]
port = 9100
[serve]
data = "/srv/xmatch"
[stream.metrics]
port = 9101
"""
    serve = parsed(tmp_path, text, "serve")
    stream = parsed(tmp_path, text, "stream")
    assert (serve.data, serve.metrics_port, serve.history) == ("/srv/xmatch", 9100, True)
    assert (stream.data, stream.metrics_port, stream.history) == (str(tmp_path / "top"),
                                                                  9101, True)


def test_shared_sections_set_the_prefixed_dests_of_every_command_that_has_them(tmp_path):
    text = """
[tls]
cert = "certs/server.pem"
key = "/etc/xmatch/server.key"
ca = "~/ca.pem"
plaintext = false
[limits]
max_rows = 500
"""
    serve = parsed(tmp_path, text, "serve")
    assert serve.tls_cert == str(tmp_path / "certs" / "server.pem")
    assert serve.tls_key == "/etc/xmatch/server.key" and serve.tls_plaintext is False
    assert serve.limits_max_rows == 500
    stream = parsed(tmp_path, text, "stream")
    assert stream.tls_ca.endswith("/ca.pem") and not stream.tls_ca.startswith("~")
    assert not hasattr(stream, "tls_cert")


def test_relative_paths_are_relative_to_the_file_arrays_too(tmp_path, monkeypatch):
    (tmp_path / "etc").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write(tmp_path / "etc", 'data = "../data"\n[stream]\n'
                 'sso_orbits = ["MPCORB.DAT", "/mpc/NEA.txt", "~/CometEls.txt"]\n')
    monkeypatch.chdir(tmp_path)
    parser = small_parser()
    apply_config(parser, load_config("etc/xmatch.toml"), "stream")
    args = parser.parse_args(["stream"])
    assert args.data == str(tmp_path / "etc" / ".." / "data")
    assert args.sso_orbits == [str(tmp_path / "etc" / "MPCORB.DAT"), "/mpc/NEA.txt",
                               str(tmp_path / "home" / "CometEls.txt")]
    assert load_config(path).directory == tmp_path / "etc"


def test_required_options_may_come_from_the_file_or_the_command_line(tmp_path):
    text = '[cluster]\nplan = "cluster.json"\n'
    args = parsed(tmp_path, text, "cluster up")
    assert args.plan == str(tmp_path / "cluster.json")
    args = parsed(tmp_path, text, "cluster shard", "--name", "shard-1")
    assert args.name == "shard-1"
    settings = check_config(load_config(write(tmp_path, text)), small_parser())
    assert settings["cluster shard"].needed == ["--name"] and settings["cluster up"].needed == []
    with pytest.raises(SystemExit):  # still required on the command line
        parsed(tmp_path, text, "cluster shard")


def test_a_command_without_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"xmatch cluster plan takes no configuration file; "
                                          "these do: serve, cluster up, cluster shard, stream"):
        apply_config(small_parser(), load_config(write(tmp_path, "")), "cluster plan")


# --------------------------------------------------------------------------- every error


def test_unknown_sections_and_keys_name_what_is_allowed(tmp_path):
    assert problems(tmp_path, """
datta = "x"
port = 1
tls_cert = "a.pem"
[srve]
host = "x"
[serve]
prot = 1
metrics_port = 9100
[serve.tls]
certt = "a"
[cluster]
nme = "x"
[tls]
client_ca = "x"
[[stream]]
bootstrap = "x"
""") == [
        "datta: not an option of any configured command (did you mean data?); top-level "
        "keys: data, history; sections: serve, cluster, stream, tls, auth, metrics, logging, "
        "limits, http",
        "port: an option of xmatch serve only; set it in [serve]",
        "tls_cert: set it in [tls] as cert",
        "[srve]: unknown section (did you mean [serve]?); sections: serve, cluster, stream, "
        "tls, auth, metrics, logging, limits, http",
        "[serve] prot: not an option of xmatch serve (did you mean port?); keys: data, "
        "history, host, port; tables: [serve.tls], [serve.metrics], [serve.limits]",
        "[serve] metrics_port: set it in [metrics] as port (or in [serve.metrics] for xmatch "
        "serve alone)",
        "[serve.tls] certt: not an option of xmatch serve (did you mean cert?); [serve.tls] "
        "keys: cert, key, plaintext",
        "[cluster] nme: not an option of xmatch cluster up|shard (did you mean name?); keys: "
        "name, plan",
        "[tls] client_ca: not an option of xmatch serve, cluster up|shard or stream; [tls] "
        "keys: ca, cert, key, plaintext",
        "[[stream]]: an array of tables; write [stream] once",
    ]
    assert problems(tmp_path, "serve = 3\n") == [
        "serve: a section, not a value; write [serve] and its keys under it"]


def test_values_of_the_wrong_kind_or_refused_by_the_option(tmp_path):
    assert problems(tmp_path, """
history = "yes"
[serve]
port = "50051"
host = ""
data = 5
[stream]
bootstrap = ["a:1"]
radius = "gaia_dr3=1arcsec"
sso_orbits = ["a", 3, ""]
output_format = "avro"
batch_size = 0
deadline = "30"
jitter = "1 furlong"
[stream.metrics]
port = 1.5
[metrics]
port = true
[limits]
max_rows = 1979-05-27
[cluster]
plan = {file = "x"}
""") == [
        'history: "yes" is a string; give true or false',
        '[serve] port: "50051" is a string; give a number: port = 50051',
        "[serve] host: an empty string; give a value or leave host out",
        '[serve] data: 5 is an integer; give a string: data = "5"',
        '[stream] bootstrap: ["a:1"] is an array; give one value, a string',
        '[stream] radius: "gaia_dr3=1arcsec" is a string; give an array: radius = '
        '["gaia_dr3=1arcsec"]',
        "[stream] sso_orbits[1]: 3 is an integer; give a string",
        "[stream] sso_orbits[2]: an empty string; give a value",
        '[stream] output_format: "avro" is not allowed; give one of: "container", "confluent"',
        "[stream] batch_size: 0 is not allowed; give 1 or more",
        '[stream] deadline: "30" is a string; give a number: deadline = 30',
        problems_of_type(common.radius, "1 furlong", "[stream] jitter"),
        "[stream.metrics] port: 1.5 is a number; give an integer",
        "[metrics] port: true is a boolean; give an integer",
        "[limits] max_rows: a date; give a number",
        "[cluster] plan: a table; give one value, a string",
    ]


def problems_of_type(kind, text: str, label: str) -> str:
    """The message an argparse type of this project gives ``text``, as the file says it."""
    with pytest.raises(argparse.ArgumentTypeError) as error:
        kind(text)
    return f"{label}: {error.value}"


def test_a_type_message_is_the_options_own(tmp_path):
    assert problems(tmp_path, "[serve]\nport = 70000\n") == [
        "[serve] port: 70000 is not a port; give 0..65535 (0: any free)"]
    assert problems(tmp_path, "[serve]\nport = 5.0\n") == [
        "[serve] port: '5.0' is not a port number"]
    assert problems(tmp_path, '[serve]\nport = "fifty"\n') == [
        "[serve] port: 'fifty' is not a port number"]
    assert problems(tmp_path, "[serve]\nport = true\n") == [
        "[serve] port: true is a boolean; give a number"]
    # an angle is text: 5 is refused with what the option says of "5"
    assert problems(tmp_path, "[stream]\njitter = 5\n") == [
        "[stream] jitter: 5 is an integer; give a string: radius '5' has no unit; write "
        "5arcsec, 5arcmin or 5deg"]


def test_the_file_itself_unreadable_or_not_toml(tmp_path):
    cases = {"no_such.toml": None, "dir": "", "syntax.toml": 'a = 1\n[serve\nport = 1\n',
             "dupe.toml": "a = 1\na = 2\n", "latin1.toml": b'host = "caf\xe9"\n'}
    (tmp_path / "dir").mkdir()
    for name, text in cases.items():
        if isinstance(text, bytes):
            (tmp_path / name).write_bytes(text)
        elif text:
            (tmp_path / name).write_text(text)
    said = {}
    for name in cases:
        with pytest.raises(ConfigError) as error:
            load_config(tmp_path / name)
        [said[name]] = error.value.messages
        assert said[name].startswith(f"{tmp_path / name}: ")
    assert said["no_such.toml"].endswith(": no such file")
    assert said["dir"].endswith(": a directory; give a TOML file")
    assert said["syntax.toml"].endswith(
        ": line 2, column 7: expected ']' at the end of a table declaration (not valid TOML; "
        "see https://toml.io)")
    assert said["dupe.toml"].endswith(": line 2, column 6: cannot overwrite a value (not valid "
                                      "TOML; see https://toml.io)")
    assert said["latin1.toml"].endswith(": byte 12 is not UTF-8; a TOML file is UTF-8 text")


# --------------------------------------------------------------- semantic checks (hook)


def _tls_check(args) -> list[str]:
    """Shaped as xmatch.service.security.check_options."""
    said = []
    if (getattr(args, "tls_cert", None) is None) != (getattr(args, "tls_key", None) is None):
        said.append("tls cert and key go together: give both (--tls-cert, --tls-key)")
    if getattr(args, "serves", False) and not args.tls_plaintext and not args.tls_cert:
        said.append("serving needs TLS (--tls-cert and --tls-key) or, explicitly, --plaintext")
    return said


def test_semantic_checks_blame_the_file_only_for_what_it_brings(tmp_path, monkeypatch):
    monkeypatch.setattr(cfg, "security_check", lambda: _tls_check)
    path = write(tmp_path, '[tls]\ncert = "server.pem"\n')
    with pytest.raises(ConfigError) as error:
        review_config(load_config(path), small_parser)
    assert error.value.messages == [f"{path}: xmatch serve: tls cert and key go together: "
                                    "give both (--tls-cert, --tls-key)"]
    path = write(tmp_path, '[serve]\nport = 50052\n')
    settings = review_config(load_config(path), small_parser)
    assert settings["serve"].notes == [
        "serving needs TLS (--tls-cert and --tls-key) or, explicitly, --plaintext"]
    assert settings["stream"].notes == []
    path = write(tmp_path, '[tls]\nplaintext = true\n')
    assert review_config(load_config(path), small_parser)["serve"].notes == []


def test_semantic_checks_are_optional(monkeypatch):
    monkeypatch.setattr(cfg, "SECURITY_CHECKS", ("xmatch.service.no_such_module", "f"))
    assert cfg.security_check() is None
    monkeypatch.setattr(cfg, "SECURITY_CHECKS", ("xmatch.errors", "no_such_function"))
    assert cfg.security_check() is None


# ---------------------------------------------------------------------- the real commands


def test_main_runs_the_command_with_the_files_values(tmp_path, capsys, monkeypatch):
    seen = []
    monkeypatch.setattr("xmatch.cli.service.run_serve", seen.append)
    path = write(tmp_path, 'data = "store"\n[serve]\nhost = "0.0.0.0"\nport = 50052\n'
                           "history = true\n")
    assert xmatch(capsys, "serve", "--config", path, "--port", 0) == (0, "", "")
    assert xmatch(capsys, "serve", f"--config={path}") == (0, "", "")
    first, second = seen
    assert (first.host, first.port, first.history) == ("0.0.0.0", 0, True)
    assert first.data == str(tmp_path / "store") and first.config == str(path)
    assert second.port == 50052


def test_main_refuses_a_bad_file_with_every_problem(tmp_path, capsys):
    path = write(tmp_path, '[serve]\nport = "1"\nprot = 2\n')
    code, out, err = xmatch(capsys, "serve", "--config", path)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0] == (f'xmatch serve: error: {path}: [serve] port: "1" is a string; give a '
                        "number: port = 1")
    assert lines[1].startswith(f"xmatch serve: error: {path}: [serve] prot: not an option of "
                               "xmatch serve (did you mean port?); keys: ")
    code, _, err = xmatch(capsys, "cluster", "shard", "--config", tmp_path / "none.toml")
    assert (code, err) == (2, f"xmatch cluster shard: error: {tmp_path / 'none.toml'}: "
                              "no such file\n")


def test_config_option_given_twice_abbreviated_or_where_it_is_not_taken(tmp_path, capsys):
    path = write(tmp_path, "[serve]\nport = 50052\n")
    code, _, err = xmatch(capsys, "serve", "--config", path, "--config", path)
    assert (code, err) == (2, "xmatch serve: error: --config is given 2 times; give one file\n")
    code, _, err = xmatch(capsys, "serve", "--conf", path)
    assert (code, err) == (2, "xmatch serve: error: give the option in full: --config FILE\n")
    code, _, err = xmatch(capsys, "cluster", "plan", "--shards", 2, "--config", path)
    assert code == 2 and "unrecognized arguments: --config" in err


def test_required_options_from_the_file_through_main(tmp_path, capsys, monkeypatch):
    seen = []
    monkeypatch.setattr("xmatch.cli.service.run_cluster", seen.append)
    path = write(tmp_path, '[cluster]\nplan = "cluster.json"\nname = "shard-2"\n')
    assert xmatch(capsys, "cluster", "shard", "--config", path)[0] == 0
    assert xmatch(capsys, "cluster", "up", "--config", path, "--plan", "other.json")[0] == 0
    assert (seen[0].plan, seen[0].name) == (str(tmp_path / "cluster.json"), "shard-2")
    assert seen[1].plan == "other.json"
    code, _, err = xmatch(capsys, "cluster", "shard", "--config", write(tmp_path, ""))
    assert code == 2 and "the following arguments are required: --plan, --name" in err


def test_every_configurable_command_shows_config_in_its_help(capsys):
    assert list(cfg.configurable_commands(build_parser())) == [
        "stream", "serve", "cluster up", "cluster shard", "cluster router"]
    for command in ("stream", "serve", "cluster up", "cluster shard", "cluster router"):
        code, out, _ = xmatch(capsys, *command.split(), "--help")
        assert code == 0 and "--config FILE.toml" in out, command


def test_config_check_says_what_each_command_takes(tmp_path, capsys):
    path = write(tmp_path, 'data = "store"\n[serve]\nhost = "0.0.0.0"\nport = 50052\n'
                           '[cluster]\nplan = "cluster.json"\n'
                           '[stream]\nradius = ["gaia_dr3=1.5arcsec"]\nbootstrap = "k:9092"\n'
                           '[metrics]\nport = 9108\n')
    code, out, err = xmatch(capsys, "config", "check", path)
    assert code == 0 and err == ""
    lines = out.splitlines()
    # each command's values in the order of its --help
    assert (f"xmatch serve: host=0.0.0.0 port=50052 data={tmp_path / 'store'} "
            "metrics_port=9108") in lines
    assert (f"xmatch cluster shard: plan={tmp_path / 'cluster.json'} metrics_port=9108"
            in lines)
    stream = next(line for line in lines if line.startswith("xmatch stream: "))
    assert "bootstrap=k:9092 radius=[gaia_dr3=1.5arcsec]" in stream
    assert f"data={tmp_path / 'store'}" in stream and "metrics_port=9108" in stream
    assert "  needs --name on the command line" in lines
    assert lines[-1] == f"{path}: read right; options given on the command line override it"


def test_config_check_refuses_with_every_problem(tmp_path, capsys):
    path = write(tmp_path, '[serve]\nport = 70000\n[stream]\noutput_format = "avro"\n')
    code, out, err = xmatch(capsys, "config", "check", path)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"xmatch config check: error: {path}: [serve] port: 70000 is not a port; give "
        "0..65535 (0: any free)",
        f'xmatch config check: error: {path}: [stream] output_format: "avro" is not allowed; '
        'give one of: "container", "confluent"']
    code, _, err = xmatch(capsys, "config", "check", tmp_path / "no.toml")
    assert (code, err) == (2, f"xmatch config check: error: {tmp_path / 'no.toml'}: "
                              "no such file\n")


def test_the_example_checks_clean_and_its_defaults_are_the_commands(tmp_path, capsys):
    """Every key of the example, uncommented where it shows a default, gives each command
    exactly the namespace it has without a file: the example stays true to the parsers."""
    code, example, _ = xmatch(capsys, "config", "example")
    assert code == 0 and example == example_config(build_parser())
    path = write(tmp_path, example)
    code, out, err = xmatch(capsys, "config", "check", path)
    assert code == 0 and err == "", err
    parser = build_parser()
    layout = cfg._Layout(parser)
    section, keys, lines = None, 0, []
    for line in example.splitlines():
        if re.fullmatch(r"\[\w+\]", line):
            section = line[1:-1]
        match = re.fullmatch(r"#(\w+) = (.+)", line)
        if match:
            keys += 1
            dest = match[1] if section in (None, *layout.sections) else f"{section}_{match[1]}"
            action = next(layout.options[c][dest] for c in layout.commands
                          if dest in layout.options[c])
            if action.default not in (None, []):
                line = line[1:]
        lines.append(line)
    assert keys == len(layout.top) + sum(
        len(set(layout.own_keys(s)) - set(layout.top)) for s in layout.sections) + sum(
        len(layout.shared_keys(s)) for s in cfg.SHARED_SECTIONS)
    uncommented = load_config(write(tmp_path, "\n".join(lines), "defaults.toml"))
    settings = check_config(uncommented, build_parser())
    assert sum(len(s.values) for s in settings.values()) > 10
    for command in layout.commands:
        assert namespace_of(build_parser(), uncommented, command) == \
            namespace_of(build_parser(), None, command), command


def test_the_real_shared_sections_and_semantic_checks(tmp_path, capsys):
    path = write(tmp_path, '[tls]\ncert = "certs/server.pem"\nkey = "certs/server.key"\n'
                           '[logging]\nlevel = "debug"\n[limits]\nmax_rows = 1000\n'
                           'max_radius_arcsec = "1deg"\n[metrics]\nport = 9108\n')
    args = namespace_of(build_parser(), load_config(path), "serve")
    assert (args.tls_cert, args.tls_key) == (str(tmp_path / "certs" / "server.pem"),
                                             str(tmp_path / "certs" / "server.key"))
    assert (args.logging_level, args.limits_max_rows, args.metrics_port) == ("debug", 1000,
                                                                            9108)
    assert args.limits_max_radius_arcsec == pytest.approx(3600.0)
    # xmatch.service.security.check_options, on what the file gives each command
    path = write(tmp_path, '[tls]\ncert = "server.pem"\n')
    code, out, err = xmatch(capsys, "config", "check", path)
    assert code == 2 and out == "" and err.count("\n") >= 1
    assert all(line.startswith(f"xmatch config check: error: {path}: xmatch ")
               for line in err.splitlines())
    assert "serve" in err and "tls_cert" not in err
