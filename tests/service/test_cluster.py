"""A router over three real shard server processes, every partition on two of them: answers
equal the in-process kernels and astropy at partition boundaries, poles and RA 0/360;
killing a shard loses nothing; killing both replicas of a partition is an explicit
UNAVAILABLE naming it, and restarting them recovers."""

import os
import signal
import subprocess
import sys
import threading
import time

import astropy.units as u
import grpc
import healpy
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from mocpy import MOC

from conftest import free_ports
from xmatch.errors import ServiceError
from xmatch.index import SkyIndex, propagate
from xmatch.kernels.routing import cone_groups_kernel
from xmatch.service.client import Client
from xmatch.service.cluster import wait_serving
from xmatch.service.plan import Plan, make_plan
from xmatch.store.catalog import open_catalog
from xmatch.v1 import xmatch_pb2


def partition_corners(catalog, count, rng):
    """Vertices and edge midpoints of partitions: where cones straddle partitions."""
    chosen = rng.choice(len(catalog.partitions), size=min(count, len(catalog.partitions)),
                        replace=False)
    points = []
    for i in chosen:
        p = catalog.partitions[i]
        lon, lat = healpy.vec2ang(healpy.boundaries(2**p.order, p.pixel, step=2, nest=True).T,
                                  lonlat=True)
        points += list(zip(lon, lat, strict=True))
    return np.array(points)


def astropy_ids(index, id_column, ra, dec, radius_arcsec):
    table = index.table
    row_dec = table[index.dec_column].to_numpy()
    # Only rows within the radius in declination can be within it on the sky: astropy
    # measures those (a superset, so the oracle stays astropy's).
    band = np.flatnonzero(np.abs(row_dec - dec) <= radius_arcsec / 3600.0 + 1e-9)
    separation = SkyCoord(ra, dec, unit="deg").separation(
        SkyCoord(table[index.ra_column].to_numpy()[band], row_dec[band], unit="deg")).arcsec
    return np.sort(table[id_column].to_numpy()[band[separation <= radius_arcsec]])


def test_plan_is_balanced_and_every_partition_has_two_replicas(cluster, service_data):
    plan = cluster.plan
    assert Plan.read(cluster.plan_path) == plan
    rows = [plan.rows_held_by(i) for i in range(3)]
    total = sum(open_catalog(n, service_data).num_rows for n in service_data.names())
    assert sum(rows) == 2 * total
    assert max(rows) - min(rows) <= max(s.rows for sl in plan.catalogs.values() for s in sl)
    for name, slices in plan.catalogs.items():
        placed = [p for s in slices for p in s.partitions]
        stored = open_catalog(name, service_data).partitions
        assert sorted(placed) == sorted((p.order, p.pixel) for p in stored)
        assert all(len(set(s.shards)) == 2 for s in slices)
    with pytest.raises(ValueError, match="replicas = 4 is not allowed; it must be 1..3"):
        make_plan(service_data, shards=3, replicas=4)


def test_routing_never_misses_a_partition(service_data):
    """Every partition a cone truly overlaps (mocpy's exact cone MOC) is routed to."""
    catalog = open_catalog("random", service_data)
    ranges = np.array(sorted(p.range29() for p in catalog.partitions))
    starts, stops = ranges[:, 0].copy(), ranges[:, 1].copy()
    rng = np.random.default_rng(3)
    corners = partition_corners(catalog, 40, rng)
    ra = np.concatenate([corners[:, 0], rng.uniform(0, 360, 300), [0.0, 359.9999, 10.0, 0.0]])
    dec = np.concatenate([corners[:, 1], np.degrees(np.arcsin(rng.uniform(-1, 1, 300))),
                          [90.0, 0.0, -90.0, -89.99]])
    radius = rng.choice([1.0, 60.0, 1800.0, 7200.0, 40 * 3600.0], size=len(ra))
    offsets, routed = cone_groups_kernel(np.radians(ra), np.radians(dec),
                                         np.radians(radius / 3600), starts, stops,
                                         np.arange(len(starts)), len(starts))
    for i in range(len(ra)):
        cone = MOC.from_cone(lon=ra[i] * u.deg, lat=dec[i] * u.deg, radius=radius[i] * u.arcsec,
                             max_depth=12)
        cone_ranges = cone.to_depth29_ranges
        overlaps = {j for j in range(len(starts)) if np.any(
            (cone_ranges[:, 0] < stops[j]) & (cone_ranges[:, 1] > starts[j]))}
        got = set(routed[offsets[i]:offsets[i + 1]].tolist())
        assert overlaps <= got, (ra[i], dec[i], radius[i])
        assert len(got) == len(set(got))


@pytest.mark.parametrize("name, id_column", [("random", "id"), ("gaia_dr3", "source_id")])
def test_cones_straddling_partitions_equal_kernel_and_astropy(cluster, reference, service_data,
                                                              name, id_column):
    rng = np.random.default_rng(7)
    corners = partition_corners(open_catalog(name, service_data), 6, rng)
    places = [*corners, (0.0, 90.0), (0.0, -90.0), (359.9995, 10.0), (0.0004, -0.3),
              (45.0, 41.8103149)]
    index = reference[name]
    with Client(cluster.address) as client:
        for ra, dec in places:
            for radius in (30.0, 1200.0, 3 * 3600.0):
                expected = index.cone_search(ra, dec, radius)
                if expected.num_rows > 2_000:  # over the test limit of rows per answer
                    with pytest.raises(ServiceError, match="returns at most 2,000"):
                        client.cone_search(name, ra, dec, radius_arcsec=radius)
                else:
                    got = client.cone_search(name, ra, dec, radius_arcsec=radius, arrow=True)
                    assert got.equals(expected), (ra, dec, radius)
                    np.testing.assert_array_equal(np.sort(got[id_column].to_numpy()),
                                                  astropy_ids(index, id_column, ra, dec, radius))
                limited = client.cone_search(name, ra, dec, radius_arcsec=radius, limit=3,
                                             arrow=True)
                assert limited.equals(index.cone_search(ra, dec, radius, limit=3))


@pytest.mark.parametrize("mode, k", [("nearest", 1), ("k", 3), ("all", 1)])
def test_crossmatch_stream_equals_kernel(cluster, reference, service_data, mode, k):
    rng = np.random.default_rng(8)
    random = reference["random"]
    corners = partition_corners(open_catalog("random", service_data), 50, rng)
    ra = np.concatenate([corners[:, 0], random.table["ra"].to_numpy()[:3000] + 1e-4,
                         rng.uniform(0, 360, 3000), [0.0, 180.0, 359.99999]])
    dec = np.concatenate([corners[:, 1], random.table["dec"].to_numpy()[:3000],
                          np.degrees(np.arcsin(rng.uniform(-1, 1, 3000))), [90.0, -90.0, 0.0]])
    ra %= 360
    radius = rng.choice([2.0, 120.0, 600.0], size=len(ra))
    with Client(cluster.address) as client:
        got = client.crossmatch("random", ra, dec, radius_arcsec=radius, mode=mode, k=k,
                                batch_size=250, arrow=True)
        assert got.equals(random.crossmatch(ra, dec, radius_arcsec=radius, mode=mode, k=k))
        # Positions with no row anywhere near: the left join still has one row each.
        empty = client.crossmatch("random", [12.0, 200.0], [-60.0, 70.0], radius_arcsec=0.01,
                                  mode=mode, k=k, arrow=True)
        assert empty["query_index"].to_pylist() == [0, 1]
        assert empty["match_rank"].null_count == 2


def test_proper_motions_route_to_where_stars_moved(cluster, reference):
    """Hipparcos stars matched at their J2016 places: rows that crossed a partition edge
    since J1991.25 are still found (the router widens the routing cone by the drift)."""
    hip = reference["hipparcos2"]
    table = hip.table
    ra, dec = propagate(table["ra"].to_numpy(), table["dec"].to_numpy(),
                        table["pmra"].to_numpy(zero_copy_only=False),
                        table["pmdec"].to_numpy(zero_copy_only=False), 1991.25, 2016.0,
                        parallax=table["parallax"].to_numpy(zero_copy_only=False))
    keep = np.isfinite(ra)
    ra, dec = ra[keep][:30_000], dec[keep][:30_000]
    epochs = np.full(len(ra), 2016.0)
    with Client(cluster.address) as client:
        got = client.crossmatch("hipparcos2", ra, dec, radius_arcsec=1.0, epoch=epochs,
                                columns=["hip"], batch_size=1_500, arrow=True)
    expected = hip.crossmatch(ra, dec, radius_arcsec=1.0, epoch=epochs, columns=["hip"])
    assert got.equals(expected)
    assert got["match_rank"].null_count < 0.001 * len(ra)


def test_region_pages_across_partitions_and_resumes(cluster, reference):
    moc = MOC.from_string("1/5 2/40-44 4/900-960 6/30000-30500")
    ranges = moc.to_depth29_ranges.astype(np.int64).ravel()
    expected = reference["random"].moc_search(moc.to_depth29_ranges, columns=["id"])
    channel = grpc.insecure_channel(cluster.address)
    stub = __import__("xmatch.v1.xmatch_pb2_grpc", fromlist=["x"]).XmatchStub(channel)
    request = xmatch_pb2.RegionSearchRequest(catalog="random", ranges29=ranges, columns=["id"],
                                             batch_rows=100)
    from xmatch.service.codec import ipc_to_table

    batches = list(stub.RegionSearch(request))
    ids = np.concatenate([ipc_to_table(b.arrow_ipc)["id"].to_numpy() for b in batches])
    np.testing.assert_array_equal(ids, expected["id"].to_numpy())
    assert [b.continuation_token == "" for b in batches].count(True) == 1
    assert batches[-1].continuation_token == ""
    for cut in (1, len(batches) // 2, len(batches) - 2):
        request.continuation_token = batches[cut].continuation_token
        rest = [ipc_to_table(b.arrow_ipc)["id"].to_numpy() for b in stub.RegionSearch(request)]
        before = sum(b.rows for b in batches[:cut + 1])
        np.testing.assert_array_equal(np.concatenate([ids[:before], *rest]), ids)
    request.continuation_token = ""
    request.limit = 250
    limited = np.concatenate([ipc_to_table(b.arrow_ipc)["id"].to_numpy()
                              for b in stub.RegionSearch(request)])
    np.testing.assert_array_equal(limited, ids[:250])
    channel.close()


def test_killing_a_shard_mid_stream_loses_nothing(cluster, reference):
    random = reference["random"]
    rng = np.random.default_rng(9)
    ra, dec = rng.uniform(0, 360, 20_000), np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000)))
    expected = random.crossmatch(ra, dec, radius_arcsec=600.0, columns=["id"])
    cones = [(float(a), float(d)) for a, d in zip(ra[:40], dec[:40], strict=True)]
    expected_cones = [random.cone_search(a, d, 3600.0) for a, d in cones]
    failures, answers = [], []

    def work():
        with Client(cluster.address) as client:
            for round_ in range(12):
                try:
                    got = client.crossmatch("random", ra, dec, radius_arcsec=600.0,
                                            columns=["id"], batch_size=2_000, arrow=True)
                    answers.append(got.equals(expected))
                    for (a, d), want in zip(cones, expected_cones, strict=True):
                        answers.append(client.cone_search("random", a, d, radius_arcsec=3600.0,
                                                   arrow=True).equals(want))
                except ServiceError as error:
                    failures.append((round_, error.code, error.details))

    worker = threading.Thread(target=work)
    try:
        worker.start()
        time.sleep(1.0)
        cluster.kill("shard-0")
        worker.join(300)
        assert not failures
        assert len(answers) == 12 * 41 and all(answers)
    finally:
        cluster.ensure_all_running()


def test_no_replica_left_is_unavailable_naming_partitions_then_recovers(cluster, service_data):
    plan = cluster.plan
    gaia = plan.catalogs["gaia_dr3"]
    lost = next(s for s in gaia if set(s.shards) == {0, 1})
    kept = next(s for s in gaia if 2 in s.shards)

    def centre(partition):
        order, pixel = partition
        return healpy.pix2ang(2**order, pixel, nest=True, lonlat=True)

    lost_ra, lost_dec = centre(lost.partitions[0])
    kept_ra, kept_dec = centre(kept.partitions[0])
    try:
        cluster.kill("shard-0")
        cluster.kill("shard-1")
        with Client(cluster.address) as client:
            for _ in range(2):  # the first call finds them down, the second knows it
                with pytest.raises(ServiceError) as caught:
                    client.cone_search("gaia_dr3", lost_ra, lost_dec, radius_arcsec=5.0)
                assert caught.value.code == grpc.StatusCode.UNAVAILABLE
                order, pixel = lost.partitions[0]
                details = caught.value.details
                assert f"gaia_dr3: no replica answers for partition(s) {order}/{pixel}" in \
                    details
                assert "shard-0 at " in details and "shard-1 at " in details, details
                assert cluster.address not in details  # the shards, not the router
                assert str(caught.value).startswith("UNAVAILABLE: gaia_dr3: no replica")
            assert len(client.cone_search("gaia_dr3", kept_ra, kept_dec, radius_arcsec=1800.0)) > 0
            with pytest.raises(ServiceError) as caught:
                client.crossmatch("gaia_dr3", [kept_ra, lost_ra], [kept_dec, lost_dec],
                                  radius_arcsec=5.0)
            assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        # The router's metrics say so: the shards down, the fail-overs counted.
        registry = cluster.router.observer.registry
        for name in ("shard-0", "shard-1"):
            address = plan.shards[plan.shard_index(name)].address
            assert registry.get_sample_value("xmatch_shard_up",
                                             {"shard": name, "address": address}) == 0.0
            assert registry.get_sample_value("xmatch_failovers_total", {"shard": name}) >= 1
        assert registry.get_sample_value("xmatch_requests_total", {
            "role": "router", "method": "Cone", "catalog": "gaia_dr3",
            "code": "UNAVAILABLE"}) >= 2
        cluster.start("shard-0")
        cluster.start("shard-1")
        with Client(cluster.address) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.cone_search("gaia_dr3", lost_ra, lost_dec, radius_arcsec=5.0)
                    break
                except ServiceError:
                    assert time.monotonic() < deadline, "the router did not recover"
                    time.sleep(0.2)
            result = client.crossmatch("gaia_dr3", [kept_ra, lost_ra], [kept_dec, lost_dec],
                                       radius_arcsec=5.0)
            assert list(result["query_index"]) == [0, 1]
    finally:
        cluster.ensure_all_running()


def test_deadline_and_cancellation_leave_the_router_serving(cluster):
    channel = grpc.insecure_channel(cluster.address)
    from xmatch.v1 import xmatch_pb2_grpc

    stub = xmatch_pb2_grpc.XmatchStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Cone(xmatch_pb2.ConeRequest(catalog="random", ra_deg=10, dec_deg=10,
                                         radius_arcsec=3600), timeout=1e-4)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    def endless():
        yield xmatch_pb2.CrossmatchRequest(options=xmatch_pb2.CrossmatchOptions(
            catalog="random", radius_arcsec=2.0))
        rng = np.random.default_rng(1)
        for batch_id in range(10**6):
            yield xmatch_pb2.CrossmatchRequest(batch=xmatch_pb2.PositionBatch(
                batch_id=batch_id, ra_deg=rng.uniform(0, 360, 1000),
                dec_deg=rng.uniform(-90, 90, 1000)))

    call = stub.Crossmatch(endless())
    for answer in call:
        if answer.batch_id == 5:
            call.cancel()
            break
    assert stub.Cone(xmatch_pb2.ConeRequest(catalog="random", ra_deg=150, dec_deg=30,
                                            radius_arcsec=600)).rows > 0
    channel.close()


def processes_running(fragment: str) -> list[int]:
    """Pids of processes whose command line contains ``fragment``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    command = handle.read().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if fragment in command:
                found.append(int(entry))
    return found


def test_cluster_up_restarts_dead_shards_and_stops_cleanly(service_data, tmp_path):
    ports = free_ports(3)
    plan = make_plan(service_data, shards=2, replicas=1, router_port=ports[0],
                     shard_ports=ports[1:], catalogs=["random"])
    plan_path = str(tmp_path / "plan.json")
    plan.write(plan_path)
    up = subprocess.Popen([sys.executable, "-m", "xmatch", "cluster", "up", "--plan", plan_path,
                           "--plaintext"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_serving(plan.router, 180, up)
        with Client(plan.router) as client:
            expected = SkyIndex.from_catalog(open_catalog("random", service_data))
            assert client.cone_search("random", 150.0, 30.0, radius_arcsec=600.0,
                                      arrow=True).equals(expected.cone_search(150.0, 30.0,
                                                                                 600.0))
            [shard] = processes_running(f"{plan_path} --name shard-1")
            os.kill(shard, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while True:  # restarted by `cluster up`, then answering again
                try:
                    client.crossmatch("random", [150.0, 330.0], [30.0, -30.0],
                                      radius_arcsec=3600.0)
                    break
                except ServiceError:
                    assert time.monotonic() < deadline, "the shard was not restarted"
                    time.sleep(0.5)
        up.send_signal(signal.SIGTERM)
        out, _ = up.communicate(timeout=120)
        assert up.returncode == 0, out
        assert "shard-1 exited with code -9; restarting it" in out
        assert out.index("router: stopping (health NOT_SERVING") < out.index("shard-0: stopping")
        assert out.rstrip().endswith("cluster: stopped")
        assert not processes_running(plan_path)
    finally:
        if up.poll() is None:
            up.kill()
        for pid in processes_running(plan_path):
            os.kill(pid, signal.SIGKILL)


def test_async_client_many_requests_at_once(cluster, reference):
    """The asyncio client: concurrent cones and a cross-match stream through the router."""
    import asyncio

    from xmatch import AsyncClient

    random = reference["random"]
    rng = np.random.default_rng(12)
    ra, dec = rng.uniform(0, 360, 2_000), np.degrees(np.arcsin(rng.uniform(-1, 1, 2_000)))

    async def run():
        async with AsyncClient(cluster.address) as client:
            assert "random" in {c["name"] for c in await client.catalogs()}
            assert (await client.describe("random"))["id_column"] == "id"
            cones = await asyncio.gather(*(client.cone_search("random", SkyCoord(a, d, unit="deg"),
                                                       radius_arcsec=1 * u.deg, arrow=True)
                                           for a, d in zip(ra[:64], dec[:64], strict=True)))
            matched = await client.crossmatch("random", ra, dec, radius_arcsec=300 * u.arcsec,
                                              batch_size=500, arrow=True)
            nothing = await client.crossmatch("random", [], [], radius_arcsec=1.0)
            return cones, matched, nothing

    cones, matched, nothing = asyncio.run(run())
    for (a, d), got in zip(zip(ra[:64], dec[:64], strict=True), cones, strict=True):
        assert got.equals(random.cone_search(a, d, 3600.0))
    assert matched.equals(random.crossmatch(ra, dec, radius_arcsec=300.0))
    assert len(nothing) == 0 and "separation_arcsec" in nothing.colnames
