"""The Annotate RPC through real servers (embedded, and a router over shard processes),
against astropy, with the real alerts, damaged packets, restarts and a killed client."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
import time
import warnings
from contextlib import ExitStack

import astropy.units as u
import fastavro
import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time

from conftest import free_ports, shared_file
from xmatch.alerts import read_packets
from xmatch.alerts.annotation import annotation_records
from xmatch.alerts.pipeline import annotate_files
from xmatch.service.client import Client
from xmatch.service.codec import table_to_ipc
from xmatch.service.embedded import running_server
from xmatch.service.server import ServedCatalog
from xmatch.store import open_catalog
from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

ALERT_MJD_TAI = 60000.0  # 2023-02-25: Hipparcos stars have moved ~32 years since J1991.25
RADII = {"hipparcos2": 1.0, "random": 2.0, "gaia_dr3": 1.0}


@pytest.fixture(params=["embedded", "router"])
def address(request):
    if request.param == "embedded":
        return request.getfixturevalue("embedded")
    return request.getfixturevalue("cluster").address


def catalog_coords(index, epoch_mjd_tai: float | None) -> SkyCoord:
    """The oracle's catalog: every row, moved by astropy to the alerts' time if it has
    proper motions."""
    table = index.table
    if "pmra" not in table.column_names or epoch_mjd_tai is None:
        return SkyCoord(table["ra"].to_numpy() * u.deg, table["dec"].to_numpy() * u.deg)
    plx = table["parallax"].to_numpy(zero_copy_only=False)
    plx = np.where(np.isfinite(plx) & (plx > 1e-3), plx, 1e-3)
    coords = SkyCoord(table["ra"].to_numpy() * u.deg, table["dec"].to_numpy() * u.deg,
                      distance=(1000 / plx) * u.pc,
                      pm_ra_cosdec=np.nan_to_num(table["pmra"].to_numpy(
                          zero_copy_only=False)) * u.mas / u.yr,
                      pm_dec=np.nan_to_num(table["pmdec"].to_numpy(
                          zero_copy_only=False)) * u.mas / u.yr,
                      radial_velocity=0 * u.km / u.s,
                      obstime=Time(1991.25, format="jyear", scale="tcb"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # erfa's "dubious year" warnings
        return coords.apply_space_motion(
            new_obstime=Time(epoch_mjd_tai, format="mjd", scale="tai"))


def astropy_annotation(alerts: SkyCoord, catalog: SkyCoord, ids: np.ndarray, radius: float):
    """Per alert: (count, nearest id, separation arcsec, position angle deg) or None."""
    found = {}
    if len(alerts):
        c, a, sep, _ = alerts.search_around_sky(catalog, radius * u.arcsec)
        for i, j, s in zip(a, c, sep.to_value(u.arcsec), strict=True):
            found.setdefault(int(i), []).append((s, int(j)))
    nearest = {i: min(hits) for i, hits in found.items()}  # (separation, catalog row)
    angles = {}
    if nearest:  # one astropy call for every alert's nearest row
        rows = np.array(sorted(nearest))
        matched = np.array([nearest[i][1] for i in rows])
        angle = alerts[rows].position_angle(catalog[matched]).to_value(u.deg) % 360
        angles = dict(zip(rows.tolist(), angle.tolist(), strict=True))
    return [(len(found[i]), ids[nearest[i][1]], nearest[i][0], angles[i]) if i in nearest
            else (0, None, None, None) for i in range(len(alerts))]


@pytest.fixture(scope="module")
def hipparcos_at_alert_time(reference) -> SkyCoord:
    return catalog_coords(reference["hipparcos2"], ALERT_MJD_TAI)


def compact_alerts(reference, hip: SkyCoord, seed: int = 5) -> pa.Table:
    """Alerts next to Hipparcos stars (``hip``: where they are in 2023) and random-catalog
    rows (poles, RA 0/360, partition corners among them), plus alerts anywhere."""
    rng = np.random.default_rng(seed)
    near_hip = rng.choice(len(hip), 150, replace=False)
    rnd = reference["random"].table
    near_rnd = np.r_[np.arange(11), rng.choice(rnd.num_rows, 139, replace=False)]
    ra = np.r_[hip.ra.deg[near_hip], rnd["ra"].to_numpy()[near_rnd], rng.uniform(0, 360, 100)]
    dec = np.r_[hip.dec.deg[near_hip], rnd["dec"].to_numpy()[near_rnd],
                np.degrees(np.arcsin(rng.uniform(-1, 1, 100)))]
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    moved = centre.directional_offset_by(rng.uniform(0, 360, len(ra)) * u.deg,
                                         rng.uniform(0, 1.2, len(ra)) * u.arcsec)
    return pa.table({"alert_id": np.arange(len(ra), dtype=np.int64) + 1000,
                     "ra_deg": moved.ra.deg, "dec_deg": moved.dec.deg,
                     "mjd_tai": np.full(len(ra), ALERT_MJD_TAI)})


IDS = {"hipparcos2": "hip", "random": "id", "gaia_dr3": "source_id"}


@pytest.fixture(scope="module")
def astropy_expected(reference, hipparcos_at_alert_time):
    """The alerts, and astropy's annotation of them by every catalog (worked out once for
    both servers)."""
    alerts = compact_alerts(reference, hipparcos_at_alert_time)
    coords = SkyCoord(alerts["ra_deg"].to_numpy() * u.deg, alerts["dec_deg"].to_numpy() * u.deg)
    catalogs = {name: hipparcos_at_alert_time if name == "hipparcos2"
                else catalog_coords(reference[name], ALERT_MJD_TAI) for name in RADII}
    return alerts, {name: astropy_annotation(coords, catalogs[name],
                                             reference[name].table[IDS[name]].to_numpy(),
                                             radius)
                    for name, radius in RADII.items()}


def test_annotations_agree_with_astropy(address, astropy_expected):
    alerts, expected_by_catalog = astropy_expected
    with Client(address) as client:
        batches = list(client.annotate(alerts, catalogs=list(RADII), radius_arcsec=RADII,
                                       batch_size=128))
    table = pa.concat_tables([b.table for b in batches])
    assert table.column("alert_id").to_pylist() == alerts.column("alert_id").to_pylist()
    ids = IDS
    matched = 0
    for name in RADII:
        expected = expected_by_catalog[name]
        got = table.select([f"{name}_count", f"{name}_{ids[name]}",
                            f"{name}_separation_arcsec", f"{name}_position_angle_deg"])
        for row, (count, nearest, separation, angle) in zip(got.to_pylist(), expected,
                                                            strict=True):
            values = list(row.values())
            assert values[0] == count
            assert values[1] == nearest
            if nearest is not None:
                matched += 1
                assert values[2] == pytest.approx(separation, abs=2e-3)  # 2 mas
                if separation > 0.05:
                    assert (values[3] - angle + 180) % 360 - 180 == pytest.approx(0, abs=0.1)
    assert matched > 250  # the test compares real matches, not only empty answers


def test_real_alerts_end_to_end(address, reference, tmp_path):
    """Every real ZTF and Rubin alert, as raw packets, annotated and written as Avro (one
    file per alert: they mix schemas), Parquet and JSON lines."""
    inputs = [shared_file("alerts")]
    radius = {"gaia_dr3": 120.0, "hipparcos2": 300.0, "random": 600.0}
    outputs = {}
    with Client(address) as client:
        for name in ("annotated/", "annotated.parquet", "annotated.jsonl"):
            summary = annotate_files(client, inputs, f"{tmp_path}/{name}", catalogs=list(radius),
                                     radius_arcsec=radius, all_matches=True, batch_size=100,
                                     progress=False)
            assert (summary.alerts, summary.errors) == (333, 0)
            outputs[name] = summary.out
    table = pq.read_table(outputs["annotated.parquet"])
    assert table.num_rows == 333
    packets = list(read_packets(inputs))
    assert table.column("origin").to_pylist() == [p.origin for p in packets]
    # Counts against astropy over the alerts' own positions and times.
    alerts = SkyCoord(table["ra_deg"].to_numpy() * u.deg, table["dec_deg"].to_numpy() * u.deg)
    expected = astropy_annotation(alerts, catalog_coords(reference["gaia_dr3"], None),
                                  reference["gaia_dr3"].table["source_id"].to_numpy(), 120.0)
    assert table["gaia_dr3_count"].to_pylist() == [e[0] for e in expected]
    assert sum(e[0] for e in expected) > 5
    # Annotated Avro: the original fields unchanged, the xmatch record equal to Parquet's.
    records = annotation_records(table)
    lines = [json.loads(line) for line in outputs["annotated.jsonl"].read_text().splitlines()]
    files = sorted(outputs["annotated/"].iterdir())
    assert len(files) == len(lines) == 333
    by_name = {f.name: f for f in files}
    seen = set()
    for number, packet in enumerate(packets):
        original = list(fastavro.reader(io.BytesIO(packet.data)))[0]
        alert_id = table["alert_id"][number].as_py()
        name = f"{alert_id}.avro" if f"{alert_id}.avro" not in seen else f"{alert_id}-2.avro"
        seen.add(name)
        annotated = list(fastavro.reader(io.BytesIO(by_name[name].read_bytes())))
        assert len(annotated) == 1
        extra = annotated[0].pop("xmatch")
        assert annotated[0] == original
        assert extra == records[number] == lines[number]["xmatch"]


def test_damaged_packets_get_errors_and_the_stream_goes_on(address):
    good = [p.data for p in read_packets([shared_file("alerts/ztf/kowalski/20231012")])]
    mixed = []
    for number, packet in enumerate(good):
        mixed.append(packet)
        if number % 5 == 0:
            mixed += [packet[: len(packet) // 3], b"\x00\x00\x00\x10\x00garbage", b""]
    with Client(address) as client:
        clean = pa.concat_tables([b.table for b in client.annotate(good, batch_size=7)])
        answers = pa.concat_tables([b.table for b in client.annotate(mixed, batch_size=7)])
    assert answers.num_rows == len(mixed)
    errors = answers.column("error").to_pylist()
    assert sum(e is not None for e in errors) == len(mixed) - len(good)
    assert any("unknown Avro schema id 4096" in e for e in errors if e)
    ok = answers.filter(pa.compute.is_null(answers.column("error")))
    assert ok.drop_columns(["error"]).to_pylist() == clean.drop_columns(["error"]).to_pylist()


def test_empty_inputs(address):
    with Client(address) as client:
        empty = pa.table({"ra_deg": pa.array([], pa.float64()),
                          "dec_deg": pa.array([], pa.float64())})
        (batch,) = list(client.annotate(empty, catalogs=["gaia_dr3"]))
        assert batch.table.num_rows == 0 and "gaia_dr3_count" in batch.table.column_names
        assert list(client.annotate([], catalogs=["gaia_dr3"])) == []


def raw_annotate(address: str, messages: list) -> list:
    """Send these AnnotateRequests as they are (no client-side checks); the answers."""
    with grpc.insecure_channel(address) as channel:
        return list(xmatch_pb2_grpc.XmatchStub(channel).Annotate(iter(messages), timeout=30))


def compact_batch(table: pa.Table, batch_id: int = 0):
    return xmatch_pb2.AnnotateRequest(batch=xmatch_pb2.AlertBatch(
        batch_id=batch_id, compact_ipc=table_to_ipc(table)))


@pytest.mark.parametrize(("options", "batch", "code", "message"), [
    ({"catalogs": ["nope"]}, None, grpc.StatusCode.NOT_FOUND, "no catalog 'nope'"),
    ({"catalogs": ["gaia_dr3"], "radius_arcsec": {"random": 1.0}}, None,
     grpc.StatusCode.INVALID_ARGUMENT, "not among the catalogs asked for"),
    ({"catalogs": ["gaia_dr3", "gaia_dr3"]}, None, grpc.StatusCode.INVALID_ARGUMENT,
     "name a catalog twice"),
    ({"catalogs": ["gaia_dr3"], "radius_arcsec": {"gaia_dr3": -1.0}}, None,
     grpc.StatusCode.INVALID_ARGUMENT, "must be finite and > 0"),
    ({"catalogs": ["gaia_dr3"], "radius_arcsec": {"gaia_dr3": 1e9}}, None,
     grpc.StatusCode.RESOURCE_EXHAUSTED, "over this server's limit"),
    ({"catalogs": ["gaia_dr3"]}, pa.table({"ra": [1.0]}), grpc.StatusCode.INVALID_ARGUMENT,
     "need columns ra_deg and dec_deg"),
    ({"catalogs": ["gaia_dr3"]}, pa.table({"ra_deg": ["a"], "dec_deg": [1.0]}),
     grpc.StatusCode.INVALID_ARGUMENT, "column ra_deg must be double"),
    ({"catalogs": ["gaia_dr3"]}, b"not arrow", grpc.StatusCode.INVALID_ARGUMENT,
     "compact_ipc"),
    (None, pa.table({"ra_deg": [1.0], "dec_deg": [1.0]}), grpc.StatusCode.INVALID_ARGUMENT,
     "must carry the options"),
])
def test_bad_requests_are_refused_and_the_server_goes_on(address, options, batch, code,
                                                         message):
    messages = [] if options is None else [
        xmatch_pb2.AnnotateRequest(options=xmatch_pb2.AnnotateOptions(**options))]
    if isinstance(batch, bytes):
        messages.append(xmatch_pb2.AnnotateRequest(batch=xmatch_pb2.AlertBatch(
            compact_ipc=batch)))
    elif batch is not None:
        messages.append(compact_batch(batch))
    with pytest.raises(grpc.RpcError) as caught:
        raw_annotate(address, messages)
    assert caught.value.code() == code
    assert message in caught.value.details()
    alerts = pa.table({"ra_deg": [10.0, np.nan], "dec_deg": [20.0, 95.0]})
    with Client(address) as client:  # still serving, and bad positions are per-alert errors
        (answer,) = list(client.annotate(alerts, catalogs=["gaia_dr3"]))
    assert answer.table.column("error")[0].as_py() is None
    assert "no usable position" in answer.table.column("error")[1].as_py()


def test_a_restarted_server_is_reconnected_without_loss_or_duplicates(service_data, reference,
                                                                       hipparcos_at_alert_time):
    catalogs = {"random": ServedCatalog.from_catalog(open_catalog("random", service_data))}
    address = f"127.0.0.1:{free_ports(1)[0]}"
    # Near random rows, and anywhere.
    alerts = compact_alerts(reference, hipparcos_at_alert_time).slice(150)
    with ExitStack() as first, ExitStack() as second:
        first.enter_context(running_server(catalogs, address))
        with Client(address) as client:
            stream = client.annotate(alerts, catalogs=["random"], batch_size=20, window=2)
            answers = [next(stream)]
            first.close()  # the server goes away with batches in flight
            restart = threading.Timer(
                1.0, lambda: second.enter_context(running_server(catalogs, address)))
            restart.start()
            answers += list(stream)
            restart.join()
    table = pa.concat_tables([a.table for a in answers])
    assert table.column("alert_id").to_pylist() == alerts.column("alert_id").to_pylist()
    with Client(address) as client, running_server(catalogs, address):
        straight = pa.concat_tables([a.table for a in client.annotate(
            alerts, catalogs=["random"], batch_size=20)])
    assert table.to_pylist() == straight.to_pylist()


def test_a_killed_client_resumes_without_loss_or_duplicates(embedded, tmp_path):
    inputs = [str(shared_file("alerts/ztf/fink-broker")),
              str(shared_file("alerts/ztf/ampel/alerts_2021720_programid1.tar.gz"))]
    out = tmp_path / "night.jsonl"
    command = [sys.executable, "-m", "xmatch", "annotate", *inputs, "--server", embedded,
               "--catalogs", "gaia_dr3,random", "--batch-size", "3", "--no-progress",
               "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = tmp_path / "night.jsonl.partial"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if staging.exists() and len(list(staging.glob("0*.jsonl"))) >= 4:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists(), "the run finished before it could be killed"
    written = sum(int(p.name.split("-")[1].split(".")[0]) for p in staging.glob("0*.jsonl"))
    assert 0 < written < 150
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"({written:,} written by an earlier run)" in finished.stdout
    assert not staging.exists()
    resumed = [json.loads(line) for line in out.read_text().splitlines()]
    straight_out = tmp_path / "straight.jsonl"
    command[-1] = str(straight_out)
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    straight = [json.loads(line) for line in straight_out.read_text().splitlines()]
    assert len(straight) == 150
    assert resumed == straight


def test_avro_file_output_refuses_mixed_schemas_and_keeps_the_staging(embedded, tmp_path):
    from xmatch.cli import main

    out = tmp_path / "mixed.avro"
    code = main(["annotate", str(shared_file("alerts/ztf/ztf-avro-alert")), "--server",
                 embedded, "--catalogs", "gaia_dr3", "--no-progress", "--out", str(out)])
    assert code == 2 and not out.exists()
    single = tmp_path / "one.avro"
    assert main(["annotate", str(shared_file("alerts/ztf/kowalski/20231012")), "--server",
                 embedded, "--catalogs", "gaia_dr3", "--no-progress", "--out",
                 str(single)]) == 0
    with open(single, "rb") as handle:
        records = list(fastavro.reader(handle))
    assert len(records) == 24 and all(r["xmatch"]["error"] is None for r in records)
    assert (tmp_path / "mixed.avro.partial").exists()  # the interrupted run, to resume

