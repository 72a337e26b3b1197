"""SsoCone over gRPC: the embedded server and the router of a three-shard cluster (replicas
2) over the same nightly caches (real NEA and MPCORB orbits, in many small partitions)
answer exactly as the in-process ``NightIndex.cone``; duplicates across slices are merged;
bad requests get precise statuses and the servers keep serving."""

from __future__ import annotations

import csv
import io

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sso.conftest import (
    MPC_CACHE,
    NEA_CACHE,
    designations,
    direct_places,
    separation_arcsec,
)
from xmatch import open_catalog
from xmatch.cli import main
from xmatch.service.client import Client
from xmatch.service.codec import ipc_to_table
from xmatch.service.server import SERVICE_NAME
from xmatch.timescales import tdb_mjd, utc_iso
from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

SCALES = ("utc", "tai", "tt", "tdb")


@pytest.fixture(params=["embedded", "router"])
def server(request):
    """(stub, channel, address) of the embedded server, then of the cluster's router."""
    address = (request.getfixturevalue("sso_embedded") if request.param == "embedded"
               else request.getfixturevalue("sso_cluster").address)
    channel = grpc.insecure_channel(address)
    yield xmatch_pb2_grpc.XmatchStub(channel), channel, address
    channel.close()


def mjd_in(scale: str, t_tdb: float) -> float:
    """An MJD in ``scale`` naming (to a few microseconds) the TDB instant ``t_tdb``."""
    from astropy.time import Time

    return float(getattr(Time(t_tdb, format="mjd", scale="tdb"), scale).mjd)


def cone_cases(index, seed: int, n: int, largest: float = 7200.0):
    """(ra, dec, radius, t_tdb) of cones around objects at random instants of the night,
    radii 1 arcsec to ``largest`` (the large ones catch several objects, and objects whose
    tracks cross partitions of several slices)."""
    rng = np.random.default_rng(seed)
    night = index.night
    cases = []
    for t in rng.uniform(night.start_tdb, night.end_tdb, n // 5):
        ra, dec = direct_places(index, t)
        for k in rng.choice(len(ra), 5, replace=False):
            radius = float(10 ** rng.uniform(0, np.log10(largest)))
            cases.append((float(ra[k]) + rng.normal(0, radius / 7200), float(dec[k]),
                          radius, float(t)))
    return cases


def test_sso_cone_equals_the_in_process_index(server, nea_index, mpc_index):
    stub, _, _ = server
    found = several = 0
    for index, site, cases in ((nea_index, "I41", cone_cases(nea_index, 1, 40)),
                               (mpc_index, "X05", cone_cases(mpc_index, 2, 15))):
        for i, (ra, dec, radius, t) in enumerate(cases):
            # Every time scale, and none (UTC); the cache found by the observatory and the
            # instant, named, or both.
            scale = "" if i % 5 == 0 else SCALES[i % 4]
            mjd = mjd_in(scale or "utc", t)
            request = xmatch_pb2.SsoConeRequest(
                ra_deg=ra, dec_deg=dec, radius_arcsec=radius, mjd=mjd, time_scale=scale,
                observatory=site if i % 3 else "", catalog=index.name if i % 3 != 1 else "")
            answer = stub.SsoCone(request)
            table = ipc_to_table(answer.arrow_ipc)
            local = index.cone(ra, dec, radius, float(tdb_mjd(mjd, scale or "utc")))
            assert answer.rows == table.num_rows == local.num_rows
            assert table.column("designation").to_pylist() == \
                local.column("designation").to_pylist()
            assert table.equals(local), (i, ra, dec, radius)
            found += local.num_rows
            several += local.num_rows >= 2
    assert found > 60 and several >= 5


def test_objects_in_several_slices_are_merged_once(sso_cluster, sso_data, nea_index):
    """Objects whose track rows lie in partitions of several slices, asked of every slice's
    shard directly, come back from several; the router returns each once, in the
    in-process order."""
    plan = sso_cluster.plan
    slices = plan.catalogs[NEA_CACHE]
    assert len(slices) >= 3
    catalog = open_catalog(NEA_CACHE, sso_data)
    partitions = {(p.order, p.pixel): p for p in catalog.partitions}
    holders: dict[str, set] = {}
    for s, entry in enumerate(slices):
        for key in entry.partitions:
            rows = catalog.read_partition(partitions[tuple(key)], columns=["designation"])
            for name in rows.column("designation").to_pylist():
                holders.setdefault(name, set()).add(s)
    spread = [name for name, held in holders.items() if len(held) > 1]
    assert len(spread) >= 10
    channels = [grpc.insecure_channel(s.address) for s in plan.shards]
    channels.append(grpc.insecure_channel(sso_cluster.address))
    shard_stubs = [xmatch_pb2_grpc.XmatchStub(c) for c in channels[:-1]]
    router = xmatch_pb2_grpc.XmatchStub(channels[-1])
    names = list(designations(nea_index))
    t = nea_index.night.reference_tdb + 0.1
    mjd = mjd_in("tdb", t)
    ra, dec = direct_places(nea_index, float(tdb_mjd(mjd, "tdb")))
    duplicated = 0
    try:
        for name in spread[:20]:
            k = names.index(name)
            request = xmatch_pb2.SsoConeRequest(catalog=NEA_CACHE, ra_deg=ra[k], dec_deg=dec[k],
                                                radius_arcsec=1800.0, mjd=mjd, time_scale="tdb")
            per_slice = []
            for entry in slices:
                request.slice = entry.id
                answer = shard_stubs[entry.shards[0]].SsoCone(request)
                per_slice += ipc_to_table(answer.arrow_ipc).column("designation").to_pylist()
            request.slice = ""
            merged = ipc_to_table(router.SsoCone(request).arrow_ipc)
            local = nea_index.cone(ra[k], dec[k], 1800.0, float(tdb_mjd(mjd, "tdb")))
            assert merged.equals(local)
            assert name in local.column("designation").to_pylist()
            assert sorted(set(per_slice)) == sorted(local.column("designation").to_pylist())
            duplicated += len(per_slice) - len(set(per_slice))
    finally:
        for channel in channels:
            channel.close()
    assert duplicated >= 5


def test_limit_keeps_the_closest(server, nea_index):
    stub, _, address = server
    index = nea_index
    t = index.night.start_tdb + 0.3
    mjd = mjd_in("tdb", t)
    t = float(tdb_mjd(mjd, "tdb"))
    ra, dec = direct_places(index, t)
    # Cones of 2 deg round the objects with the most neighbours.
    crowded = np.argsort(-(separation_arcsec(ra[:, None], dec[:, None], ra, dec)
                           <= 7200.0).sum(axis=1), kind="stable")[:6]
    for k in crowded:
        local = index.cone(ra[k], dec[k], 7200.0, t)
        assert local.num_rows >= 4
        for limit in (1, 2, local.num_rows - 1, local.num_rows, local.num_rows + 5):
            answer = stub.SsoCone(xmatch_pb2.SsoConeRequest(
                observatory="I41", ra_deg=ra[k], dec_deg=dec[k], radius_arcsec=7200.0,
                mjd=mjd, time_scale="tdb", limit=limit))
            assert answer.rows == min(limit, local.num_rows)
            assert ipc_to_table(answer.arrow_ipc).equals(local.slice(0, limit))
    ra, dec = ra[crowded[0]], dec[crowded[0]]
    # The client: an ISO UTC time, a limit; the instant agrees to microseconds.
    with Client(address) as client:
        got = client.sso_cone(ra, dec, radius_arcsec=7200.0, time=utc_iso(t), observatory="I41",
                              limit=2, arrow=True)
        everything = client.sso_cone(ra, dec, radius_arcsec=7200.0, time=t, scale="tdb",
                                     catalog=NEA_CACHE, arrow=True)
    local = index.cone(ra, dec, 7200.0, t)
    assert got.column("designation").to_pylist() == \
        local.column("designation").to_pylist()[:2]
    assert everything.column("designation").to_pylist() == \
        local.column("designation").to_pylist()
    assert separation_arcsec(got["ra_deg"].to_numpy(), got["dec_deg"].to_numpy(),
                             local["ra_deg"].to_numpy()[:2],
                             local["dec_deg"].to_numpy()[:2]).max() < 1e-3


def test_empty_answers(server, nea_index):
    stub, _, _ = server
    t = nea_index.night.reference_tdb
    ra, dec = direct_places(nea_index, t)
    rng = np.random.default_rng(5)
    c_ra, c_dec = rng.uniform(0, 360, 100), np.degrees(np.arcsin(rng.uniform(-1, 1, 100)))
    nearest = separation_arcsec(c_ra[:, None], c_dec[:, None], ra, dec).min(axis=1)
    far = np.flatnonzero(nearest > 2 * 3600)
    assert len(far) >= 5
    mjd = mjd_in("tdb", t)
    for k in far[:5]:
        for radius in (1e-6, 1800.0):
            answer = stub.SsoCone(xmatch_pb2.SsoConeRequest(
                observatory="I41", ra_deg=c_ra[k], dec_deg=c_dec[k], radius_arcsec=radius,
                mjd=mjd, time_scale="tdb"))
            table = ipc_to_table(answer.arrow_ipc)
            local = nea_index.cone(c_ra[k], c_dec[k], radius, float(tdb_mjd(mjd, "tdb")))
            assert answer.rows == table.num_rows == 0
            assert table.schema.names == local.schema.names


def code_and_message(call):
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details()


def test_bad_requests_get_precise_statuses_and_the_server_keeps_serving(server, nea_index):
    stub, channel, _ = server
    night = nea_index.night
    inside = mjd_in("utc", night.reference_tdb)

    def sso(**fields):
        request = dict(observatory="I41", ra_deg=10.0, dec_deg=1.0, radius_arcsec=30.0,
                       mjd=inside)
        request.update(fields)
        return lambda: stub.SsoCone(xmatch_pb2.SsoConeRequest(**request))

    invalid, not_found = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    cases = [
        (sso(ra_deg=float("nan")), invalid, "ra is missing (empty, null or NaN)"),
        (sso(dec_deg=91.0), invalid, "dec = 91.0 is not allowed"),
        (sso(dec_deg=-90.5), invalid, "dec = -90.5 is not allowed"),
        (sso(radius_arcsec=-1.0), invalid, "radius_arcsec = -1.0 is not allowed"),
        (sso(radius_arcsec=float("nan")), invalid, "radius_arcsec = nan is not allowed"),
        (sso(radius_arcsec=3 * 3600.0), grpc.StatusCode.RESOURCE_EXHAUSTED,
         "over this server's limit of 7200 arcsec"),
        (sso(observatory="ZZZ"), invalid, "observatory code 'ZZZ' is not an MPC observatory"),
        (sso(observatory="C51"), invalid, "observatory C51 (WISE) has no fixed site"),
        (sso(time_scale="gps"), invalid, "time scale 'gps' is not allowed; use one of utc, tai, "
         "tt, tdb"),
        (sso(mjd=float("nan")), invalid, "MJD nan is not allowed: it must lie between 14864 "
         "and 71184 (1899-07-29 to 2053-10-09"),
        (sso(mjd=0.0), invalid, "MJD 0.0 is not allowed"),
        (sso(mjd=1e12), invalid, "MJD 1000000000000.0 is not allowed"),
        (sso(mjd=30000.0), invalid, "MJD 30000.0 UTC is before 1960-01-01 (MJD 36934), where "
         "UTC begins; give earlier times in TT or TDB"),
        (sso(catalog="stars"), invalid,
         "stars is not a solar-system ephemeris cache; SsoCone serves "
         f"{NEA_CACHE}, {MPC_CACHE}"),
        (sso(catalog="nope"), not_found, "no catalog 'nope' here"),
        (sso(catalog=NEA_CACHE, observatory="X05"), invalid,
         f"{NEA_CACHE} is the cache of observatory I41, not X05"),
        (sso(observatory=""), invalid,
         "give the catalog (a nightly cache) or the observatory code"),
        (lambda: stub.Cone(xmatch_pb2.ConeRequest(catalog=NEA_CACHE, ra_deg=10.0, dec_deg=1.0,
                                                  radius_arcsec=30.0)),
         invalid, f"{NEA_CACHE} is a solar-system ephemeris cache: ask it with SsoCone"),
        # No cache of the site holds the instant.
        (sso(mjd=inside + 3.0), not_found,
         "no ephemeris cache of observatory I41 covers 2019-07-09T"),
        (sso(mjd=inside + 3.0), not_found, f"(caches of I41: {NEA_CACHE})"),
        (sso(observatory="X05"), not_found, f"(caches of X05: {MPC_CACHE})"),
        (sso(observatory="500"), not_found, "(caches of 500: none)"),
        # The named cache's night does not hold the instant (3: the night, named).
        (sso(catalog=NEA_CACHE, mjd=mjd_in("utc", night.end_tdb) + 2 / 86400), invalid,
         f"is outside the night 2019-07-05 (local date at its start) at I41 of {NEA_CACHE}, "
         "which runs from 2019-07-05T19:47:26 to 2019-07-06T19:47:26 UTC"),
        (sso(catalog=MPC_CACHE, observatory=""), invalid,
         f"is outside the night 2025-11-21 (local date at its start) at X05 of {MPC_CACHE}"),
    ]
    for call, code, message in cases:
        got_code, got_message = code_and_message(call)
        assert got_code == code, (message, got_message)
        assert message in got_message, got_message
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    ra, dec = direct_places(nea_index, night.reference_tdb)
    answer = stub.SsoCone(xmatch_pb2.SsoConeRequest(
        observatory="I41", ra_deg=ra[0], dec_deg=dec[0], radius_arcsec=1.0,
        mjd=mjd_in("tdb", night.reference_tdb), time_scale="tdb"))
    assert ipc_to_table(answer.arrow_ipc)["designation"].to_pylist() == \
        [designations(nea_index)[0]]


def test_the_router_refuses_a_slice(sso_cluster):
    with grpc.insecure_channel(sso_cluster.address) as channel:
        stub = xmatch_pb2_grpc.XmatchStub(channel)
        code, message = code_and_message(lambda: stub.SsoCone(xmatch_pb2.SsoConeRequest(
            observatory="I41", ra_deg=1.0, dec_deg=1.0, radius_arcsec=1.0, mjd=58670.3,
            slice="shards-0-1")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "slice is set by a router for its shard servers" in message


def test_cli_asks_a_server_as_it_asks_the_data_directory(sso_embedded, sso_data, nea_index,
                                                        capsys):
    t = nea_index.night.reference_tdb + 0.2
    ra, dec = direct_places(nea_index, t)
    answers = []
    for where in (["--server", sso_embedded], ["--data", str(sso_data.root)]):
        code = main(["sso", "cone", str(ra[7]), str(dec[7]), "--radius", "0.4deg",
                     "--time", utc_iso(t), "--observatory", "I41", "--format", "csv", *where])
        out, err = capsys.readouterr()
        assert code == 0, err
        answers.append(list(csv.DictReader(io.StringIO(out))))
    by_server, by_data = answers
    assert [r["designation"] for r in by_server] == [r["designation"] for r in by_data]
    assert designations(nea_index)[7] in [r["designation"] for r in by_server]
    code = main(["sso", "cone", "1", "1", "--radius", "1arcsec", "--time", utc_iso(t),
                 "--observatory", "C51", "--server", sso_embedded])
    assert code == 2
    assert "INVALID_ARGUMENT: observatory C51 (WISE) has no fixed site" in \
        capsys.readouterr().err
