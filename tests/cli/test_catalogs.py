"""``xmatch load``, ``list``, ``info``, ``verify``, ``specs``, ``loaders`` and ``--help``,
run through ``xmatch.cli.main`` in process."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table

from xmatch import DataDirectory, SkyIndex, open_catalog
from xmatch.cli import build_parser, main

COMMANDS = ("demo", "load", "join", "list", "info", "verify", "remove", "specs", "loaders", "cone",
            "crossmatch", "skymap", "moc", "coverage", "context", "annotate", "history", "watch",
            "notices", "stream", "serve", "cluster", "token", "tls-rehearsal", "config", "sso")


def xmatch(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_command_and_each_has_help_with_examples(capsys):
    code, out, _ = xmatch(capsys, "--help")
    assert code == 0
    listed = [line.split()[0] for line in out.split("positional arguments:")[1]
              .split("options:")[0].splitlines()[2:] if line.startswith("    ")
              and not line.startswith("     ")]
    assert sorted(listed) == sorted(COMMANDS)
    commands = build_parser()._subparsers._group_actions[0].choices
    assert sorted(commands) == sorted(COMMANDS)
    for command in COMMANDS:
        code, out, _ = xmatch(capsys, command, "--help")
        assert code == 0 and out.startswith(f"usage: xmatch {command}")
    for command in ("cone", "crossmatch", "load", "join", "skymap", "moc", "coverage", "context",
                    "annotate", "serve"):
        assert "example" in xmatch(capsys, command, "--help")[1], command
    sso = xmatch(capsys, "sso", "--help")[1]
    assert "`build`" in sso and "`cone`" in sso and "positions" not in sso


def test_specs_names_are_aligned_apart(capsys):
    out = xmatch(capsys, "specs")[1]
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["fermi_4fgl", "fermi_4lac", "gaia_dr3",
                                                   "gcvs", "glade_gw170817",
                                                   "hipparcos2", "ps1_dr2"]
    assert "glade_gw170817  GLADE galaxies" in out  # two spaces after the longest name
    widths = {line.index(line.split()[1]) for line in lines}
    assert len(widths) == 1


def test_list_info_verify(capsys, session_data):
    out = xmatch(capsys, "list", "--data", session_data.root)[1]
    assert "hipparcos2" in out and "proper motions" in out.split("hipparcos2")[1].splitlines()[0]
    info = json.loads(xmatch(capsys, "info", "gcvs", "--json", "--data", session_data.root)[1])
    assert info["rows"] == 59_099 and info["columns"]["VarType"] == "string"
    assert info["provenance"]["sources"][0]["rows_read"] == 59_099
    out = xmatch(capsys, "info", "gcvs", "--data", session_data.root)[1]
    assert "spec (roles of columns)" in out and "proper_motions" in out
    code, out, _ = xmatch(capsys, "verify", "gcvs", "--data", session_data.root)
    assert code == 0 and out.startswith("gcvs: ") and out.endswith("files intact\n")


def test_a_plain_table_loads_without_a_spec(capsys, tmp_path):
    """`xmatch load NAME --from my.csv` needed a TOML spec: the position columns are now
    found (or named), the spec derived and shown; whitespace ASCII loads too."""
    rng = np.random.default_rng(4)
    n = 500
    table = Table({"name": [f"s{i}" for i in range(n)], "RAJ2000": rng.uniform(0, 360, n),
                   "DEJ2000": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
                   "V": rng.uniform(5, 15, n)})
    table.write(tmp_path / "mine.csv")
    table.write(tmp_path / "mine.txt", format="ascii.basic")
    data = DataDirectory(tmp_path / "data")
    for name, source in (("mine", "mine.csv"), ("mine_txt", "mine.txt")):
        code, out, err = xmatch(capsys, "load", name, "--from", tmp_path / source,
                                "--workers", 1, "--no-progress", "--data", data.root)
        assert code == 0, err
        assert out.startswith(f"{name}: 500 rows")
        assert "positions from columns RAJ2000, DEJ2000; identifier xmatch_row" in out
        catalog = open_catalog(name, data)
        assert (catalog.spec.ra, catalog.spec.dec) == ("RAJ2000", "DEJ2000")
        index = SkyIndex.from_catalog(catalog)
        got = index.crossmatch(table["RAJ2000"], table["DEJ2000"], radius_arcsec=0.001)
        assert got["name"].to_pylist() == list(table["name"])
    info = json.loads(xmatch(capsys, "info", "mine", "--json", "--data", data.root)[1])
    assert info["spec"]["ra"] == "RAJ2000" and info["provenance"]["note"].startswith(
        "spec derived from the table's columns")
    code, out, _ = xmatch(capsys, "load", "named", "--from", tmp_path / "mine.csv",
                          "--ra-column", "RAJ2000", "--dec-column", "DEJ2000", "--id-column",
                          "name", "--workers", 1, "--no-progress", "--data", data.root)
    assert code == 0 and "identifier name" in out


@pytest.mark.parametrize("args, message", [
    (["load", "x", "--from", "{tmp}/nora.csv"], "nora.csv: no right ascension column found"),
    (["load", "x", "--from", "{tmp}/nora.csv", "--ra-column", "ra2", "--dec-column", "dec"],
     "required column 'ra2' is missing"),
    (["load", "gcvs", "--ra-column", "ra"],
     "--ra-column name the columns of a table loaded without a spec"),
    (["load", "unknown_catalog"], "'unknown_catalog' is not a bundled catalog"),
    (["load", "x", "--from", "{tmp}/missing.csv"], "missing.csv: no such file"),
    (["load", "x", "--from", "{tmp}/bad.csv"], "bad.csv, row 2, column 'dec': dec = 'north'"),
    (["load", "x", "--from", "{tmp}/short.csv"], "short.csv, row 1: has 2 values"),
    (["load"], "give a catalog NAME or --spec FILE.toml"),
    (["info", "nope"], "nope"),
])
def test_bad_loads_are_one_line(capsys, tmp_path, args, message):
    (tmp_path / "nora.csv").write_text("id,x,y\n1,2,3\n")
    (tmp_path / "bad.csv").write_text("id,ra,dec\n1,2,3\n2,3,north\n")
    (tmp_path / "short.csv").write_text("id,ra,dec\n1,2\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    extra = ["--no-progress", "--workers", "1"] if args[0] == "load" else ["--json"]
    code, out, err = xmatch(capsys, *args, *extra, "--data", tmp_path / "data")
    assert code == 2, (out, err)
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_position_units_of_a_table_are_honoured_on_load(capsys, tmp_path):
    """RAJ2000 in hours (an ECSV unit) loads as degrees, stored as degrees."""
    import astropy.units as u
    import pyarrow.parquet as pq

    table = Table({"RAJ2000": [3.791411, 12.0], "DEJ2000": [24.105136, -30.0]})
    table["RAJ2000"].unit = u.hourangle
    table["DEJ2000"].unit = u.deg
    table.write(tmp_path / "hours.ecsv")
    data = DataDirectory(tmp_path / "data")
    assert xmatch(capsys, "load", "hours", "--from", tmp_path / "hours.ecsv", "--workers", 1,
                  "--no-progress", "--data", data.root)[0] == 0
    catalog = open_catalog("hours", data)
    rows = catalog.read(["RAJ2000"])
    assert sorted(rows["RAJ2000"].to_pylist()) == pytest.approx([3.791411 * 15, 180.0])
    field = pq.read_schema(catalog.partition_path(catalog.partitions[0])).field("RAJ2000")
    assert field.metadata[b"unit"] == b"deg"


def test_a_catalog_written_by_xmatch_registers_under_its_new_name(capsys, tmp_path,
                                                                 session_data):
    data = DataDirectory(tmp_path / "data")
    code, out, _ = xmatch(capsys, "load", "variables", "--from",
                          open_catalog("gcvs", session_data).root.resolve(),
                          "--data", data.root)
    assert code == 0 and out.startswith("variables: 59,099 rows")
    catalog = open_catalog("variables", data)
    original = open_catalog("gcvs", session_data).spec
    assert (catalog.name, catalog.spec.name) == ("variables", "variables")
    assert (catalog.spec.key, catalog.spec.ra, catalog.spec.id) == (original.key, original.ra,
                                                                    original.id)
    assert xmatch(capsys, "list", "--data", data.root)[1].splitlines()[1].startswith(
        "variables ")
