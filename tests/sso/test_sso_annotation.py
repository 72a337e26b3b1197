"""The ``sso`` catalog of alert annotation, and cross-match streams against nightly caches:
each alert is matched with the objects where they are at its own instant, as brute force
over direct two-body propagation finds them, on the embedded server and through the router
of a three-shard cluster."""

from __future__ import annotations

import astropy.units as u
import grpc
import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import position_angle
from astropy.time import Time

from sso.conftest import (
    NEA_CACHE,
    NEA_NIGHT,
    designations,
    direct_places,
    separation_arcsec,
)
from xmatch.alerts.annotation import annotation_info, annotation_records
from xmatch.errors import ServiceError
from xmatch.service.client import Client
from xmatch.service.codec import ipc_to_table
from xmatch.service.embedded import running_server, served_catalogs
from xmatch.sso.observers import observatory
from xmatch.timescales import tdb_mjd
from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

RADIUS = 30.0
#: Objects closer than this to the radius may fall either side (the cache reproduces
#: direct propagation to well under 0.1 arcsec); they are left out of the comparison.
EDGE = 0.1


@pytest.fixture(params=["embedded", "router"])
def address(request):
    return (request.getfixturevalue("sso_embedded") if request.param == "embedded"
            else request.getfixturevalue("sso_cluster").address)


def tai_mjd(t_tdb) -> np.ndarray:
    return Time(np.asarray(t_tdb), format="mjd", scale="tdb").tai.mjd


def alerts_near_objects(index, seed: int, instants: int):
    """Compact alerts at random instants of the night: next to objects (0-40 arcsec off),
    next to each other's objects, and anywhere; with the truth from direct propagation
    (per alert: every object within RADIUS, and those within EDGE of it)."""
    rng = np.random.default_rng(seed)
    night = index.night
    ra, dec, t_all, truth = [], [], [], []
    for t in rng.uniform(night.start_tdb, night.end_tdb, instants):
        objects_ra, objects_dec = direct_places(index, t)
        chosen = rng.choice(len(objects_ra), 6, replace=False)
        offsets = rng.uniform(0.0, 40.0, 6) / 3600.0
        angles = rng.uniform(0, 2 * np.pi, 6)
        cos_dec = np.maximum(np.cos(np.radians(objects_dec[chosen])), 1e-3)
        alert_ra = (objects_ra[chosen] + offsets * np.sin(angles) / cos_dec) % 360.0
        alert_dec = np.clip(objects_dec[chosen] + offsets * np.cos(angles), -90, 90)
        alert_ra = np.r_[alert_ra, rng.uniform(0, 360, 2)]
        alert_dec = np.r_[alert_dec, np.degrees(np.arcsin(rng.uniform(-1, 1, 2)))]
        for a_ra, a_dec in zip(alert_ra, alert_dec, strict=True):
            separation = separation_arcsec(objects_ra, objects_dec, a_ra, a_dec)
            inside = np.flatnonzero(separation <= RADIUS)
            truth.append({
                "inside": inside[np.argsort(separation[inside])],
                "edge": set(np.flatnonzero(np.abs(separation - RADIUS) < EDGE)),
                "separation": separation, "ra": objects_ra, "dec": objects_dec})
        ra += list(alert_ra)
        dec += list(alert_dec)
        t_all += [t] * len(alert_ra)
    table = pa.table({"alert_id": np.arange(len(ra), dtype=np.int64), "ra_deg": ra,
                      "dec_deg": dec, "mjd_tai": tai_mjd(t_all)})
    return table, truth


def annotate(address, alerts, **options) -> pa.Table:
    with Client(address) as client:
        return pa.concat_tables(b.table for b in client.annotate(alerts, **options))


def check_against_truth(table: pa.Table, truth: list[dict], names: np.ndarray) -> int:
    """Counts, nearest object, separations and position angles of ``sso`` equal the truth;
    returns the number of alerts matched."""
    rows = table.to_pylist()
    matched = 0
    for row, expected in zip(rows, truth, strict=True):
        listed = [m["designation"] for m in row["sso_matches"]]
        wanted = [names[k] for k in expected["inside"]]
        unsure = {names[k] for k in expected["edge"]}
        assert {n for n in listed if n not in unsure} == \
            {n for n in wanted if n not in unsure}, (row["alert_id"], listed, wanted)
        assert row["sso_count"] == len(listed)
        if not wanted:
            assert row["sso_designation"] is None
            continue
        matched += 1
        assert row["sso_designation"] == wanted[0] or wanted[0] in unsure
        for match in row["sso_matches"]:
            k = int(np.flatnonzero(names == match["designation"])[0])
            assert match["separation_arcsec"] == pytest.approx(expected["separation"][k],
                                                               abs=EDGE)
            if expected["separation"][k] > 2.0:
                angle = position_angle(*np.radians([row["ra_deg"], row["dec_deg"],
                                                    expected["ra"][k], expected["dec"][k]]))
                difference = (match["position_angle_deg"] - np.degrees(angle.value) + 180) \
                    % 360 - 180
                assert abs(difference) < np.degrees(EDGE / expected["separation"][k]) + 1e-6
    return matched


def test_alerts_are_annotated_with_the_objects_at_their_own_instants(address, nea_index,
                                                                     mpc_index):
    matched = 0
    for index, site, seed in ((nea_index, "I41", 1), (mpc_index, "X05", 2)):
        alerts, truth = alerts_near_objects(index, seed, instants=12)
        table = annotate(address, alerts, catalogs=["sso", "stars"],
                         radius_arcsec={"sso": RADIUS}, observatory=site, all_matches=True,
                         batch_size=37)
        assert [t.name for t in annotation_info(table)["catalogs"]] == ["sso", "stars"]
        assert table.column("sso_count").null_count == 0
        matched += check_against_truth(table, truth, designations(index))
    assert matched >= 90


def test_each_alert_takes_the_cache_of_its_site_and_night(address, nea_index, mpc_index):
    """One stream mixing ZTF-night and Rubin-night alerts, alerts no cache covers and alerts
    without a time: each is answered by its own cache or fails (state ``failed``, a null
    ``sso_count``), naming the night without a cache; never "no match"."""
    nea, nea_truth = alerts_near_objects(nea_index, 3, instants=3)
    mpc, mpc_truth = alerts_near_objects(mpc_index, 4, instants=3)
    # Compact alerts have no survey: with the site given as I41, the X05 night's alerts find
    # no cache (null), as do alerts a day after the I41 night.
    later = nea.set_column(3, "mjd_tai", pa.compute.add(nea.column("mjd_tai"), 1.0))
    mixed = pa.concat_tables([nea, mpc, later])
    table = annotate(address, mixed, catalogs=["sso"], radius_arcsec=RADIUS, observatory="I41",
                     all_matches=True, batch_size=16)
    counts = table.column("sso_count")
    assert counts.null_count == mpc.num_rows + later.num_rows
    check_against_truth(table.slice(0, nea.num_rows), nea_truth, designations(nea_index))
    states = table.column("sso_state").to_pylist()
    assert set(states[nea.num_rows:]) == {"failed"}
    assert set(states[:nea.num_rows]) <= {"matched", "no_match"}
    # I41 (ZTF) names a night by the UTC date on which its local mean midnight falls: the
    # date of local mean time + 12 h (astropy for TAI -> UTC).
    east_hours = ((observatory("I41").longitude_deg + 180) % 360 - 180) / 15
    nights = (Time(mixed.column("mjd_tai").to_numpy()[nea.num_rows:], format="mjd", scale="tai")
              .utc + (12 + east_hours) * u.hour).to_value("iso", subfmt="date")
    assert NEA_NIGHT not in set(nights[mpc.num_rows:])
    failures = table.column("sso_failure").to_pylist()
    assert failures[nea.num_rows:] == [
        f"no solar-system ephemeris cache is served for the night {night} at I41; build it "
        f"with `xmatch sso build --night {night} --observatory I41`" for night in nights]
    records = annotation_records(table)
    for record, state, failure in zip(records, states, failures, strict=True):
        (catalog,) = record["catalogs"]
        assert (catalog["catalog"], catalog["state"], catalog["failure"]) == (
            "sso", state, failure)
        assert (catalog["count"] is None) == (state == "failed")
    # The same alerts at X05 swap roles.
    table = annotate(address, mixed, catalogs=["sso"], radius_arcsec=RADIUS, observatory="X05",
                     all_matches=True)
    assert table.column("sso_count").null_count == nea.num_rows + later.num_rows
    check_against_truth(table.slice(nea.num_rows, mpc.num_rows), mpc_truth,
                        designations(mpc_index))
    # Without a time (and without any alert in a cache), every count is null.
    untimed = mixed.drop_columns(["mjd_tai"])
    table = annotate(address, untimed, catalogs=["sso", "stars"], observatory="I41")
    assert table.column("sso_count").null_count == untimed.num_rows
    assert set(table.column("sso_failure").to_pylist()) == {
        "the alert has no usable time, which sso needs"}
    assert table.column("stars_count").null_count == 0
    assert annotate(address, untimed.slice(0, 0), catalogs=["sso"]).num_rows == 0


def test_sso_is_annotated_by_default_when_caches_are_served(address, nea_index):
    alerts, _ = alerts_near_objects(nea_index, 5, instants=1)
    table = annotate(address, alerts, observatory="I41")
    info = annotation_info(table)
    assert [t.name for t in info["catalogs"]] == ["stars", "sso"]
    assert info["catalogs"][1].radius_arcsec == 5.0  # the caches' default
    assert info["catalogs"][1].id_column == "designation"


def crossmatch_stream(stub, options, *batches):
    messages = [xmatch_pb2.CrossmatchRequest(options=options)] + [
        xmatch_pb2.CrossmatchRequest(batch=b) for b in batches]
    return [ipc_to_table(a.arrow_ipc) for a in stub.Crossmatch(iter(messages))]


def test_crossmatch_stream_against_a_nightly_cache(address, nea_index):
    alerts, _ = alerts_near_objects(nea_index, 6, instants=4)
    ra, dec = alerts["ra_deg"].to_numpy(), alerts["dec_deg"].to_numpy()
    mjd = alerts["mjd_tai"].to_numpy()
    t_tdb = np.asarray(tdb_mjd(mjd, "tai"))
    with grpc.insecure_channel(address) as channel:
        stub = xmatch_pb2_grpc.XmatchStub(channel)
        for mode, k, name in ((xmatch_pb2.MATCH_MODE_ALL, 0, "all"),
                              (xmatch_pb2.MATCH_MODE_K_NEAREST, 2, "k"),
                              (xmatch_pb2.MATCH_MODE_NEAREST, 0, "nearest")):
            options = xmatch_pb2.CrossmatchOptions(catalog=NEA_CACHE, radius_arcsec=1800.0,
                                                   mode=mode, k=k, time_scale="tai")
            (table,) = crossmatch_stream(stub, options, xmatch_pb2.PositionBatch(
                batch_id=1, ra_deg=ra, dec_deg=dec, mjd=mjd))
            local = nea_index.crossmatch(ra, dec, radius_arcsec=1800.0, t_tdb=t_tdb, mode=name,
                                         k=max(k, 1))
            assert table.equals(local), name
            several = np.bincount(local["query_index"].to_numpy(), minlength=len(ra))
            if name == "all":  # objects within 30 arcmin of several alerts
                assert (several >= 2).sum() >= 3


def test_bad_sso_annotation_and_crossmatch_requests(address, sso_data, nea_index):
    alerts, _ = alerts_near_objects(nea_index, 7, instants=1)
    with Client(address) as client, pytest.raises(ServiceError) as caught:
        list(client.annotate(alerts, catalogs=["sso"], observatory="ZZZ"))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "observatory code 'ZZZ' is not an MPC observatory" in caught.value.details
    inside = float(alerts["mjd_tai"][0].as_py())
    batch = dict(batch_id=4, ra_deg=[10.0, 20.0], dec_deg=[0.0, 1.0])
    cases = [
        ({"catalog": NEA_CACHE}, batch, "batch 4: sso_i41_20190705 is a nightly solar-system "
         "cache: give one mjd per position (2), not 0"),
        ({"catalog": NEA_CACHE}, {**batch, "mjd": [inside]}, "give one mjd per position (2), "
         "not 1"),
        ({"catalog": NEA_CACHE, "time_scale": "tai"}, {**batch, "mjd": [inside, inside + 2]},
         "batch 4: time 2019-07-0"),
        ({"catalog": NEA_CACHE, "time_scale": "tai"}, {**batch, "mjd": [inside, 0.0]},
         "batch 4: MJD 0.0 (at position 1) is not allowed"),
        ({"catalog": NEA_CACHE, "time_scale": "gps"}, batch, "time scale 'gps' is not allowed"),
        ({"catalog": NEA_CACHE, "epoch_jyear": 2019.5}, batch, "epoch_jyear does not apply"),
        ({"catalog": NEA_CACHE, "columns": ["x_au"]}, batch, "x_au"),
        ({"catalog": "stars"}, {**batch, "mjd": [inside, inside]},
         "mjd is for nightly solar-system caches; stars takes epoch_jyear"),
    ]
    with grpc.insecure_channel(address) as channel:
        stub = xmatch_pb2_grpc.XmatchStub(channel)
        for options, fields, message in cases:
            with pytest.raises(grpc.RpcError) as caught:
                crossmatch_stream(stub, xmatch_pb2.CrossmatchOptions(radius_arcsec=5.0,
                                                                     **options),
                                  xmatch_pb2.PositionBatch(**fields))
            assert caught.value.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                           grpc.StatusCode.NOT_FOUND), message
            assert message in caught.value.details(), caught.value.details()
    # A server without nightly caches says how to build one.
    with running_server(served_catalogs(sso_data, load_defaults=False, names=["stars"])) \
            as plain, Client(plain) as client, pytest.raises(ServiceError) as caught:
        list(client.annotate(alerts, catalogs=["sso"]))
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert "no solar-system ephemeris cache is served here" in caught.value.details
    assert "xmatch sso build" in caught.value.details
