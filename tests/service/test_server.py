"""Real grpc.aio servers on loopback ports (the embedded server, and the router of a
three-shard cluster with replicas 2; see ``served`` in conftest), serving the bundled Gaia
DR3 subset and Hipparcos 2: answers equal the in-process kernels and astropy; bad requests
get precise status codes and the server keeps serving."""

import astropy.units as u
import grpc
import numpy as np
import pytest
from astropy.coordinates import Latitude, Longitude, SkyCoord
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from mocpy import MOC

from xmatch.service.codec import ipc_to_table
from xmatch.service.server import SERVICE_NAME
from xmatch.v1 import xmatch_pb2


def test_list_and_describe(served):
    stub, _, catalogs = served
    listed = {c.name: c for c in stub.ListCatalogs(xmatch_pb2.ListCatalogsRequest()).catalogs}
    assert listed["gaia_dr3"].rows == 482_176 and listed["gaia_dr3"].epoch_jyear == 2016.0
    assert listed["hipparcos2"].proper_motions and listed["hipparcos2"].epoch_jyear == 1991.25
    described = stub.DescribeCatalog(xmatch_pb2.DescribeCatalogRequest(name="gaia_dr3"))
    assert described.id_column == "source_id" and described.ra_column == "ra"
    assert sum(p.rows for p in described.partitions) == 482_176
    schema = __import__("pyarrow").ipc.read_schema(
        __import__("pyarrow").py_buffer(described.arrow_schema))
    assert "phot_g_mean_mag" in schema.names
    coverage = MOC.from_string(described.coverage_moc)
    assert coverage.sky_fraction == pytest.approx(1.0)  # the subset covers the whole sky


@pytest.mark.parametrize("ra, dec, radius", [
    (279.234735, 38.783689, 600.0),    # Vega
    (0.0, 90.0, 3 * 3600.0),           # the north pole
    (359.9995, 10.0, 1800.0),          # across RA 0/360
    (0.0004, -89.995, 2 * 3600.0),     # the south pole
    (56.75, 24.12, 3600.0),            # the Pleiades, across partition boundaries
])
def test_cone_equals_in_process_kernel_and_astropy(served, ra, dec, radius):
    stub, _, catalogs = served
    answer = stub.Cone(xmatch_pb2.ConeRequest(catalog="gaia_dr3", ra_deg=ra, dec_deg=dec,
                                              radius_arcsec=radius))
    table = ipc_to_table(answer.arrow_ipc)
    assert answer.rows == table.num_rows > 0
    local = catalogs["gaia_dr3"].cone_search(ra, dec, radius)
    assert table.equals(local)
    gaia = catalogs["gaia_dr3"].table
    separation = SkyCoord(ra, dec, unit="deg").separation(
        SkyCoord(gaia["ra"].to_numpy(), gaia["dec"].to_numpy(), unit="deg")).arcsec
    inside = np.sort(gaia["source_id"].to_numpy()[separation <= radius])
    np.testing.assert_array_equal(np.sort(table["source_id"].to_numpy()), inside)


def test_cone_with_epoch_columns_and_limit(served):
    stub, _, _ = served
    answer = stub.Cone(xmatch_pb2.ConeRequest(
        catalog="hipparcos2", ra_deg=269.448503, dec_deg=4.739420, radius_arcsec=5,
        epoch_jyear=2016.0, columns=["hip"], limit=1))
    table = ipc_to_table(answer.arrow_ipc)
    assert table.column_names == ["hip", "ra_at_epoch", "dec_at_epoch", "separation_arcsec",
                                  "position_angle_deg"]
    assert table["hip"].to_pylist() == [87937]  # Barnard's star, moved 4' since J1991.25
    # Its place at J2016.0, as Gaia DR3 measured it there (to its radial-velocity effects).
    assert abs(table["ra_at_epoch"][0].as_py() - 269.448503) < 0.5 / 3600
    assert abs(table["dec_at_epoch"][0].as_py() - 4.739420) < 0.5 / 3600
    assert answer.rows == 1 and answer.rows_found == 1


def test_crossmatch_stream_equals_in_process(served):
    stub, _, catalogs = served
    hip = catalogs["hipparcos2"].table
    ra, dec = hip["ra"].to_numpy(), hip["dec"].to_numpy()
    # Nearest mode answers one row per position: batches up to the 2,000-row limit.
    batches = [(100 + b, slice(start, start + 1_500))
               for b, start in enumerate(range(0, len(ra), 1_500))]

    def requests():
        yield xmatch_pb2.CrossmatchRequest(options=xmatch_pb2.CrossmatchOptions(
            catalog="gaia_dr3", radius_arcsec=1.0, columns=["source_id"]))
        for batch_id, part in batches:
            yield xmatch_pb2.CrossmatchRequest(batch=xmatch_pb2.PositionBatch(
                batch_id=batch_id, ra_deg=ra[part], dec_deg=dec[part]))

    answers = list(stub.Crossmatch(requests()))
    assert [a.batch_id for a in answers] == [batch_id for batch_id, _ in batches]
    for answer, (_, part) in zip(answers, batches, strict=True):
        local = catalogs["gaia_dr3"].crossmatch(ra[part], dec[part], radius_arcsec=1.0,
                                                      columns=["source_id"])
        assert ipc_to_table(answer.arrow_ipc).equals(local)
        matched = local.num_rows - local["match_rank"].null_count
        assert answer.queries == len(ra[part]) and answer.matches == matched


def test_region_search_equals_mocpy_and_resumes(served):
    stub, _, catalogs = served
    moc = MOC.from_string("3/100-110 5/2000-2100 7/90000-90500")
    ranges = moc.to_depth29_ranges.astype(np.int64).ravel()
    request = xmatch_pb2.RegionSearchRequest(catalog="gaia_dr3", ranges29=ranges,
                                             columns=["source_id", "ra", "dec"], batch_rows=700)
    batches = list(stub.RegionSearch(request))
    rows = [ipc_to_table(b.arrow_ipc) for b in batches]
    ids = np.concatenate([t["source_id"].to_numpy() for t in rows])
    gaia = catalogs["gaia_dr3"].table
    inside = moc.contains_lonlat(Longitude(gaia["ra"].to_numpy(), u.deg),
                                 Latitude(gaia["dec"].to_numpy(), u.deg))
    np.testing.assert_array_equal(np.sort(ids), np.sort(gaia["source_id"].to_numpy()[inside]))
    assert len(batches) > 2 and batches[-1].continuation_token == ""
    # Resume after the second batch: the rest arrives, nothing twice.
    request.continuation_token = batches[1].continuation_token
    rest = np.concatenate([ipc_to_table(b.arrow_ipc)["source_id"].to_numpy()
                           for b in stub.RegionSearch(request)])
    first_two = np.concatenate([rows[0]["source_id"].to_numpy(), rows[1]["source_id"].to_numpy()])
    np.testing.assert_array_equal(np.concatenate([first_two, rest]), ids)


def code_and_message(call):
    with pytest.raises(grpc.RpcError) as caught:
        result = call()
        list(result) if hasattr(result, "__iter__") and not hasattr(result, "DESCRIPTOR") \
            else None
    return caught.value.code(), caught.value.details()


def test_bad_requests_get_precise_statuses_and_the_server_keeps_serving(served):
    stub, channel, _ = served
    cone = xmatch_pb2.ConeRequest
    cases = [
        (lambda: stub.Cone(cone(catalog="gaia_dr3", ra_deg=float("nan"), dec_deg=0,
                                radius_arcsec=5)),
         grpc.StatusCode.INVALID_ARGUMENT, "ra is missing (empty, null or NaN)"),
        (lambda: stub.Cone(cone(catalog="gaia_dr3", ra_deg=10, dec_deg=91, radius_arcsec=5)),
         grpc.StatusCode.INVALID_ARGUMENT, "dec = 91.0 is not allowed"),
        (lambda: stub.Cone(cone(catalog="gaia_dr3", ra_deg=10, dec_deg=1, radius_arcsec=-1)),
         grpc.StatusCode.INVALID_ARGUMENT, "radius_arcsec = -1.0 is not allowed"),
        (lambda: stub.Cone(cone(catalog="gaia_dr3", ra_deg=10, dec_deg=1, radius_arcsec=1e6)),
         grpc.StatusCode.RESOURCE_EXHAUSTED, "over this server's limit of 18000 arcsec"),
        (lambda: stub.Cone(cone(catalog="nope", ra_deg=10, dec_deg=1, radius_arcsec=5)),
         grpc.StatusCode.NOT_FOUND,
         "no catalog 'nope' here; catalogs served: fermi_4fgl, fermi_4lac, gaia_dr3"),
        (lambda: stub.Cone(cone(catalog="gaia_dr3", ra_deg=10, dec_deg=1, radius_arcsec=5,
                                columns=["nope"])),
         grpc.StatusCode.NOT_FOUND, "unknown column(s) ['nope']"),
        (lambda: stub.Cone(cone(catalog="gaia_dr3", ra_deg=270, dec_deg=-30,
                                radius_arcsec=5 * 3600)),
         grpc.StatusCode.RESOURCE_EXHAUSTED, "this server returns at most 2,000 per answer"),
        (lambda: stub.DescribeCatalog(xmatch_pb2.DescribeCatalogRequest(name="")),
         grpc.StatusCode.NOT_FOUND, "no catalog ''"),
        (lambda: stub.RegionSearch(xmatch_pb2.RegionSearchRequest(catalog="gaia_dr3",
                                                                  ranges29=[1, 2, 3])),
         grpc.StatusCode.INVALID_ARGUMENT, "an even count"),
        (lambda: stub.RegionSearch(xmatch_pb2.RegionSearchRequest(
            catalog="gaia_dr3", ranges29=[5, 3])),
         grpc.StatusCode.INVALID_ARGUMENT, "sorted, disjoint"),
        (lambda: stub.RegionSearch(xmatch_pb2.RegionSearchRequest(
            catalog="gaia_dr3", ranges29=[0, 10], continuation_token="page 2")),
         grpc.StatusCode.INVALID_ARGUMENT, "not one this server issued"),
        (lambda: stub.Crossmatch(iter([xmatch_pb2.CrossmatchRequest(
            batch=xmatch_pb2.PositionBatch(ra_deg=[1.0], dec_deg=[1.0]))])),
         grpc.StatusCode.INVALID_ARGUMENT, "the first message of the stream must carry"),
        (lambda: stub.Crossmatch(iter([
            xmatch_pb2.CrossmatchRequest(options=xmatch_pb2.CrossmatchOptions(
                catalog="gaia_dr3")),
            xmatch_pb2.CrossmatchRequest(batch=xmatch_pb2.PositionBatch(
                batch_id=3, ra_deg=[1.0, 2.0], dec_deg=[1.0]))])),
         grpc.StatusCode.INVALID_ARGUMENT, "batch 3: 2 ra_deg but 1 dec_deg"),
        (lambda: stub.Crossmatch(iter([
            xmatch_pb2.CrossmatchRequest(options=xmatch_pb2.CrossmatchOptions(
                catalog="gaia_dr3")),
            xmatch_pb2.CrossmatchRequest(batch=xmatch_pb2.PositionBatch(
                batch_id=4, ra_deg=[1.0, 400.0], dec_deg=[1.0, 1.0]))])),
         grpc.StatusCode.INVALID_ARGUMENT, "batch 4: ra = 400.0 (at position 1)"),
        (lambda: stub.Crossmatch(iter([xmatch_pb2.CrossmatchRequest(
            options=xmatch_pb2.CrossmatchOptions(catalog="gaia_dr3",
                                                 mode=xmatch_pb2.MATCH_MODE_K_NEAREST))])),
         grpc.StatusCode.INVALID_ARGUMENT, "k must be >= 1"),
    ]
    for call, code, message in cases:
        got_code, got_message = code_and_message(call)
        assert got_code == code, (message, got_message)
        assert message in got_message
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert stub.Cone(xmatch_pb2.ConeRequest(catalog="gaia_dr3", ra_deg=56.871152,
                                            dec_deg=24.105136, radius_arcsec=5)).rows == 1


def test_reflection_lists_the_service(served):
    _, channel, _ = served
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    answer = next(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
        list_services="")])))
    names = {s.name for s in answer.list_services_response.service}
    assert {"xmatch.v1.Xmatch", "grpc.health.v1.Health"} <= names
