"""Context through every face: the Context RPC of the embedded server and of the router
equals the in-process engine; Annotate carries it (table columns and the Avro record);
the Ellipse region searches the same rows everywhere; ``xmatch context`` reads right or
refuses in one line."""

from __future__ import annotations

import io

import fastavro
import grpc
import numpy as np
import pyarrow as pa
import pyarrow.csv  # noqa: F401 (pa.csv)
import pyarrow.parquet as pq
import pytest

from xmatch.alerts.annotation import AVRO_ANNOTATION, annotation_records
from xmatch.cli import main
from xmatch.context.engine import data_context_engine
from xmatch.service.client import Client
from xmatch.service.codec import ipc_to_table
from xmatch.sky.regions import Ellipse
from xmatch.v1 import xmatch_pb2

# AT 2017gfo in NGC 4993; next to Sirius; a GCVS star (row 11); a 4LAC blazar; empty sky;
# the north pole; RA 359.9999.
RA = [197.450374, 101.2885, 0.0, 194.0465, 123.4, 0.0, 359.9999]
DEC = [-23.381483, -16.7161, 89.9999, -5.7893, -5.0, 90.0, 0.0]


@pytest.fixture(scope="module")
def expected(session_data):
    return data_context_engine(session_data).context(RA, DEC, 2026.0)


def test_context_rpc_equals_the_engine(server_address, expected):
    with Client(server_address) as client:
        table = client.context(RA, DEC, time=61000.0, scale="tai", arrow=True)
    assert table.column_names == expected.column_names
    assert table.to_pylist() == expected.to_pylist()
    assert "supernova" in table["class"].to_pylist()
    assert "bright_star" in table["class"].to_pylist()


@pytest.mark.parametrize("fields,message", [
    ({"ra_deg": [1.0, 2.0], "dec_deg": [1.0]}, "2 ra_deg but 1 dec_deg values"),
    ({"ra_deg": [400.0], "dec_deg": [1.0]}, "ra = 400.0 is not allowed"),
    ({"ra_deg": [1.0, 2.0], "dec_deg": [1.0, 2.0], "mjd_tai": [1.0, 2.0, 3.0]},
     "one mjd_tai for all positions or one per position"),
    ({"ra_deg": [1.0], "dec_deg": [1.0], "mjd_tai": [float("nan")]}, "is not a TAI MJD"),
])
def test_bad_context_requests_get_invalid_argument(served, fields, message):
    stub, _, _ = served
    with pytest.raises(grpc.RpcError) as caught:
        stub.Context(xmatch_pb2.ContextRequest(**fields))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in caught.value.details()
    # ... and the server keeps serving.
    assert stub.Context(xmatch_pb2.ContextRequest(ra_deg=[1.0], dec_deg=[1.0])).positions == 1


def test_annotate_carries_context(server_address, expected):
    alerts = pa.table({"alert_id": pa.array(range(len(RA)), pa.int64()),
                       "ra_deg": RA, "dec_deg": DEC, "mjd_tai": [61000.0] * len(RA)})
    with Client(server_address) as client:
        table = pa.concat_tables(b.table for b in client.annotate(
            alerts, catalogs=["gcvs"], context=True))
    assert table["context_class"].to_pylist() == expected["class"].to_pylist()
    assert table["context_host_id"].to_pylist() == expected["host_id"].to_pylist()
    records = annotation_records(table)
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(AVRO_ANNOTATION), records)
    buffer.seek(0)
    back = list(fastavro.reader(buffer))
    first = back[0]["context"]
    assert first["class"] == "supernova"
    assert first["evidence"]["catalog"] == "glade_gw170817"
    assert [layer["layer"] for layer in first["layers"]] == [
        "bright_star", "bright_star_gaia", "variable_star", "agn", "gamma_ray", "host"]
    assert first["layers"][-1]["nearest"]["columns"]["distance_source"] == "luminosity_mpc"
    # Without the option, no context.
    with Client(server_address) as client:
        plain = next(iter(client.annotate(alerts, catalogs=["gcvs"]))).table
    assert not [c for c in plain.column_names if c.startswith("context_")]
    assert annotation_records(plain)[0]["context"] is None


def test_an_unreadable_alert_fails_every_layer(embedded):
    alerts = pa.table({"ra_deg": [10.0, 10.0], "dec_deg": [10.0, 95.0]})
    with Client(embedded) as client:
        table = next(iter(client.annotate(alerts, catalogs=["gcvs"], context=True))).table
    assert table["context_class"].to_pylist() == ["orphan", "unclear"]
    assert table["context_host_state"].to_pylist() == ["no_match", "failed"]
    assert "dec" in table["context_host_failure"][1].as_py()


def test_ellipse_search_is_the_same_everywhere(served):
    stub, _, reference = served
    region = Ellipse.of(56.75, 24.12, 3600.0, 1200.0, 60.0)
    request = xmatch_pb2.RegionSearchRequest(catalog="gaia_dr3", columns=["source_id"],
                                             limit=0)
    request.ellipse.ra_deg, request.ellipse.dec_deg = 56.75, 24.12
    request.ellipse.semi_major_arcsec, request.ellipse.semi_minor_arcsec = 3600.0, 1200.0
    request.ellipse.pa_deg = 60.0
    rows = pa.concat_tables(ipc_to_table(a.arrow_ipc) for a in stub.RegionSearch(request))
    expected = reference["gaia_dr3"].search(region, columns=["source_id"])
    assert sorted(rows["source_id"].to_pylist()) == sorted(expected["source_id"].to_pylist())
    assert 20 < rows.num_rows
    bad = xmatch_pb2.RegionSearchRequest(catalog="gaia_dr3")
    bad.ellipse.ra_deg, bad.ellipse.semi_major_arcsec = 10.0, 5.0
    bad.ellipse.semi_minor_arcsec = 6.0
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.RegionSearch(bad))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "larger than the semi-major axis" in caught.value.details()


def xmatch(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_context_command(capsys, session_data, tmp_path):
    data = ["--data", session_data.root]
    code, out, _ = xmatch(capsys, "context", "197.450374", "-23.381483", "--time",
                          "2017-08-17T23:00:00", *data)
    assert code == 0
    assert out.splitlines()[0].split() == ["class", "supernova"]
    assert "host              matched" in out and "offset_kpc=1.609" in out
    positions = tmp_path / "positions.csv"
    positions.write_text("name,ra,dec\nAT2017gfo,197.450374,-23.381483\nsirius,06:45:08.9,"
                         "-16:42:58\n")
    code, out, err = xmatch(capsys, "context", "--from", positions, "--out",
                            tmp_path / "context.parquet", *data)
    assert code == 0, err
    written = pq.read_table(tmp_path / "context.parquet")
    assert written["name"].to_pylist() == ["AT2017gfo", "sirius"]
    assert written["class"].to_pylist() == ["supernova", "bright_star"]


@pytest.mark.parametrize("args,message", [
    (["10"], "give RA DEC, or --from FILE"),
    (["10", "95"], "dec = 95.0 is not allowed"),
    (["10", "10", "--time", "soon"], "time 'soon' is not an ISO date and time"),
    (["10", "10", "--context-config", "/nonexistent.toml"], "cannot read context "
                                                             "configuration /nonexistent.toml"),
    (["10", "10", "--ra-column", "x"], "--ra-column and --dec-column name the columns of "
                                       "--from FILE"),
    (["10", "10", "--server", "localhost:1", "--context-config", "x.toml"],
     "--context-config applies to context computed here"),
])
def test_context_command_refuses_bad_input_in_one_line(capsys, session_data, args, message):
    code, out, err = xmatch(capsys, "context", *args, "--data", session_data.root)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_annotate_command_context_options(capsys, session_data, tmp_path):
    code, _, err = xmatch(capsys, "annotate", tmp_path, "--out", tmp_path / "a.parquet",
                          "--context-config", "x.toml", "--data", session_data.root)
    assert code == 2 and "--context-config applies with --context" in err


def test_engine_classes_are_the_documented_ones(expected):
    assert expected["class"].to_pylist()[:2] == ["supernova", "bright_star"]
    assert set(expected["class"].to_pylist()) <= {
        "variable_star", "agn", "bright_star", "nuclear", "supernova", "orphan", "unclear"}
    assert np.all(np.asarray(expected["class_distance"].to_numpy(zero_copy_only=False))[:2]
                  <= 1)


def test_sigma_crossmatch_through_the_crossmatch_stream(server_address, reference):
    """Positions with error ellipses matched by sigma-distance through a server's (or a
    router's) cross-match stream equal the same match on the index in process."""
    from xmatch.index.region_index import CatalogSearch, sigma_crossmatch

    stars = reference["gaia_dr3"].table.slice(0, 300)
    rng = np.random.default_rng(4)
    ra = stars["ra"].to_numpy() + rng.normal(0, 1, 300) / 3600
    dec = np.clip(stars["dec"].to_numpy() + rng.normal(0, 1, 300) / 3600, -90, 90)
    a = rng.uniform(0.5, 3, 300)
    b = a * rng.uniform(0.2, 1, 300)
    theta = rng.uniform(0, 180, 300)
    options = {"catalog_error_arcsec": 0.1, "completeness": 0.99, "columns": ["source_id"]}
    local = sigma_crossmatch(reference["gaia_dr3"], ra, dec, a, b, theta, **options)
    with Client(server_address) as client:
        remote = sigma_crossmatch(CatalogSearch.of(client, "gaia_dr3"), ra, dec, a, b, theta,
                                  **options)
    assert remote.column_names == local.column_names
    assert remote["source_id"].to_pylist() == local["source_id"].to_pylist()
    np.testing.assert_allclose(remote["sigma_distance"].to_numpy(zero_copy_only=False),
                               local["sigma_distance"].to_numpy(zero_copy_only=False))
    assert 0 < local["source_id"].null_count < 150  # most found, some not


def test_crossmatch_command_by_sigma_distance(capsys, session_data, tmp_path):
    positions = tmp_path / "sources.csv"
    positions.write_text("name,ra,dec,emaj,emin,epa\nvega,279.2347,38.7837,2.0,1.0,30\n"
                         "nothing,123.4,-5.0,1.0,1.0,0\n")
    out = tmp_path / "matched.csv"
    code, _, err = xmatch(capsys, "crossmatch", positions, "--catalog", "hipparcos2",
                          "--error-columns", "emaj,emin,epa", "--catalog-error", "0.01arcsec",
                          "--epoch", "1991.25", "--out", out, "--data", session_data.root)
    assert code == 0, err
    rows = pa.csv.read_csv(out)
    assert rows["name"].to_pylist() == ["vega", "nothing"]
    assert rows["hip"].to_pylist()[0] == 91262 and rows["hip"].null_count == 1
    code, _, err = xmatch(capsys, "crossmatch", positions, "--catalog", "gcvs",
                          "--error-columns", "emaj", "--data", session_data.root)
    assert code == 2 and "gcvs states no positional error; give it with --catalog-error" in err
