"""Bad alert input, as a new user meets it: an empty, truncated or non-Avro ``.avro``, a
truncated tarball, a CSV, a missing file. A packet that cannot be read gets an error row
naming its file (and tar member); an input that cannot be read at all stops the run with one
line naming it; never a server traceback, INTERNAL or UNKNOWN, and the server goes on."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from xmatch import LoadError
from xmatch.alerts.samples import sample_paths
from xmatch.cli import main
from xmatch.service.client import Client
from xmatch.service.embedded import running_server, served_catalogs


@pytest.fixture(scope="module")
def good_packet() -> bytes:
    with tarfile.open(sample_paths()[0]) as archive:
        member = next(m for m in archive if m.name.endswith(".avro"))
        return archive.extractfile(member).read()


@pytest.fixture(scope="module")
def server(session_data):
    with running_server(served_catalogs(session_data, load_defaults=False,
                                        names=["gaia_dr3", "gcvs"])) as address:
        yield address


@pytest.fixture
def inputs(tmp_path, good_packet):
    files = {"good.avro": good_packet, "empty.avro": b"",
             "truncated.avro": good_packet[: len(good_packet) // 2],
             "text.avro": b"objectId,ra,dec\nZTF1,1,2\n"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    sink = io.BytesIO()
    with tarfile.open(fileobj=sink, mode="w:gz") as archive:
        for number in range(3):
            info = tarfile.TarInfo(f"night/alert{number}.avro")
            info.size = len(good_packet)
            archive.addfile(info, io.BytesIO(good_packet))
    whole = sink.getvalue()
    (tmp_path / "night.tar.gz").write_bytes(whole)
    (tmp_path / "cut.tar.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "alerts.csv").write_text("ra_deg,dec_deg\n1,2\n")
    return tmp_path


def test_packets_that_cannot_be_read_get_an_error_row_naming_their_file(capsys, inputs,
                                                                        server):
    out = inputs / "annotated.jsonl"
    code = main(["annotate", str(inputs / "good.avro"), str(inputs / "empty.avro"),
                 str(inputs / "truncated.avro"), str(inputs / "text.avro"), "--out", str(out),
                 "--server", server, "--no-progress"])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "4 alerts: 1 annotated, 3 with errors" in stdout
    # The summary's table: the alerts in error failed every catalog; none is "outside".
    table = stdout.split("\ncatalog")[1].splitlines()
    assert table[0].split()[-2:] == ["outside", "failed"]
    assert {line.split()[0]: line.split()[-2:] for line in table[1:] if line.strip()} == {
        "gaia_dr3": ["0", "3"], "gcvs": ["0", "3"]}
    assert f"error: {inputs / 'empty.avro'}: the packet is empty" in stdout
    assert f"error: {inputs / 'truncated.avro'}: " in stdout
    assert (f"error: {inputs / 'text.avro'}: the packet is neither an Avro container file"
            in stdout)
    assert "alert None" not in stdout and "Traceback" not in stdout + stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["origin"].rsplit("/", 1)[1] for r in rows] == [
        "good.avro", "empty.avro", "truncated.avro", "text.avro"]
    assert rows[0]["xmatch"]["error"] is None and all(r["xmatch"]["error"] for r in rows[1:])


@pytest.mark.parametrize("name, message", [
    ("cut.tar.gz", "cut.tar.gz: not a readable tarball"),
    ("alerts.csv", "alerts.csv: not an alert input: give ZTF or Rubin Avro packets"),
    ("missing.avro", "missing.avro: no such file or directory"),
])
def test_inputs_that_cannot_be_read_stop_the_run_naming_them(capsys, inputs, server, name,
                                                             message, session_data):
    for number, where in enumerate((["--server", server], ["--data", str(session_data.root),
                                                           "--catalogs", "gcvs"])):
        code = main(["annotate", str(inputs / "good.avro"), str(inputs / name), "--out",
                     str(inputs / f"out{number}.parquet"), "--no-progress", *where])
        stdout, stderr = capsys.readouterr()
        assert code == 2, (stdout, stderr)
        assert stderr.startswith("xmatch annotate: error: ") and message in stderr, stderr
        assert stderr.count("\n") == 1 and "UNKNOWN" not in stderr and "INTERNAL" not in stderr
    if name != "cut.tar.gz":  # found before any server starts or catalog loads
        assert main(["annotate", str(inputs / name), "--out", str(inputs / "out.parquet"),
                     "--data", str(inputs / "nodata")]) == 2
        assert not (inputs / "nodata").exists() and message in capsys.readouterr().err


def test_the_client_raises_load_errors_and_the_server_goes_on(inputs, server):
    with Client(server) as client:
        with pytest.raises(LoadError, match="cut.tar.gz: not a readable tarball"):
            list(client.annotate([inputs / "night.tar.gz", inputs / "cut.tar.gz"]))
        with pytest.raises(LoadError, match="missing.avro: no such file or directory"):
            list(client.annotate([str(inputs / "missing.avro")]))
        # A tarball damaged past its first members: those are answered, then the error.
        batches, failure = [], None
        try:
            for batch in client.annotate(iter([inputs / "cut.tar.gz"]), batch_size=1):
                batches.append(batch)
        except LoadError as error:
            failure = error
        assert failure is not None and "cut.tar.gz" in str(failure)
        answered = list(client.annotate([inputs / "night.tar.gz"], catalogs=["gcvs"]))
    assert sum(b.table.num_rows for b in answered) == 3
    assert [p.origin.rsplit(":", 1)[1] for b in answered for p in b.packets] == [
        "night/alert0.avro", "night/alert1.avro", "night/alert2.avro"]
    assert gzip.decompress((inputs / "night.tar.gz").read_bytes())  # the inputs are intact


def test_compact_alerts_outside_the_sphere_are_errors_not_wrapped(server):
    """ra 416.87 was read as 56.87: now an error row, as every other face refuses it."""
    import pyarrow as pa

    alerts = pa.table({"alert_id": [1, 2, 3], "ra_deg": [416.87, -303.13, 56.87],
                       "dec_deg": [24.1, 24.1, 24.1]})
    with Client(server) as client:
        [batch] = list(client.annotate(alerts, catalogs=["gcvs"]))
    errors = batch.table["error"].to_pylist()
    assert errors[0] == ("the alert has no usable position (ra = 416.87, dec = 24.1); it "
                         "needs 0 <= ra <= 360 and -90 <= dec <= 90 deg")
    assert errors[1].startswith("the alert has no usable position (ra = -303.13")
    assert errors[2] is None


def test_a_batch_with_no_usable_alert_is_answered_with_errors(server):
    """Every alert unusable (found by the fuzz test through a router): error rows, no
    INTERNAL."""
    import pyarrow as pa

    alerts = pa.table({"alert_id": [1, 2], "ra_deg": [416.87, float("nan")],
                       "dec_deg": [24.1, 24.1]})
    with Client(server) as client:
        [batch] = list(client.annotate(alerts, catalogs=["gcvs"]))
    assert [e is not None for e in batch.table["error"].to_pylist()] == [True, True]
    assert batch.table["gcvs_state"].to_pylist() == ["failed", "failed"]
