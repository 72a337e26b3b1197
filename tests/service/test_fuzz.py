"""Malformed and extreme requests to every RPC of the embedded server and of the router:
each gets OK or a precise client-side status (never INTERNAL or UNKNOWN) with a message, and
the server stays healthy and keeps answering."""

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmatch.service.server import SERVICE_NAME
from xmatch.v1 import xmatch_pb2

CLIENT_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                 grpc.StatusCode.RESOURCE_EXHAUSTED}
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

names = st.sampled_from(["gaia_dr3", "random", "hipparcos2", "", "nope", "gaia_dr3 ",
                         "\u00e9\u0000x", "../gaia_dr3"])
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.floats(-400, 400), st.sampled_from([0.0, 90.0, -90.0, 360.0, 359.9999]))
radii = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 7200),
                  st.sampled_from([0.0, 1e-12, 5.0, 5 * 3600.0, 5 * 3600.0 + 1]))
columns = st.lists(st.sampled_from(["ra", "dec", "id", "source_id", "hip", "nope", "",
                                    "separation_arcsec"]), max_size=4)
limits = st.one_of(st.integers(0, 10), st.sampled_from([2**31, 2**63, 2**64 - 1]))
epochs = st.one_of(st.none(), floats)


def outcome(call):
    """OK, or a client error with a message; never a server fault."""
    try:
        result = call()
        if not hasattr(result, "DESCRIPTOR"):
            list(result)
        return grpc.StatusCode.OK
    except grpc.RpcError as error:
        assert error.code() in CLIENT_ERRORS, (error.code(), error.details())
        assert error.details()
        return error.code()


def assert_healthy(stub, channel):
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert stub.Cone(xmatch_pb2.ConeRequest(catalog="random", ra_deg=150, dec_deg=30,
                                            radius_arcsec=600)).rows > 0


@FUZZ
@given(name=names, ra=floats, dec=floats, radius=radii, cols=columns, limit=limits,
       epoch=epochs)
def test_fuzz_cone(served, name, ra, dec, radius, cols, limit, epoch):
    stub, _, _ = served
    request = xmatch_pb2.ConeRequest(catalog=name, ra_deg=ra, dec_deg=dec, radius_arcsec=radius,
                                     columns=cols, limit=limit)
    if epoch is not None:
        request.epoch_jyear = epoch
    outcome(lambda: stub.Cone(request, timeout=30))


@FUZZ
@given(name=names, ranges=st.lists(st.integers(-2**63, 2**63 - 1), max_size=8),
       token=st.one_of(st.just(""), st.text(max_size=20),
                       st.sampled_from(["offset:5", "region:0:0:", "region:9:99999:offset:1",
                                        "offset:-1", "region:1:2:offset:x"])),
       batch_rows=st.sampled_from([0, 1, 7, 2**31]), limit=limits, cols=columns)
def test_fuzz_region(served, name, ranges, token, batch_rows, limit, cols):
    stub, _, _ = served
    request = xmatch_pb2.RegionSearchRequest(catalog=name, ranges29=ranges, columns=cols,
                                             limit=limit, batch_rows=batch_rows,
                                             continuation_token=token)
    outcome(lambda: stub.RegionSearch(request, timeout=30))


options = st.builds(
    lambda name, radius, mode, k, cols, epoch: xmatch_pb2.CrossmatchRequest(
        options=xmatch_pb2.CrossmatchOptions(catalog=name, radius_arcsec=radius, mode=mode, k=k,
                                             columns=cols, **({} if epoch is None else
                                                              {"epoch_jyear": epoch}))),
    names, radii, st.integers(0, 5), st.sampled_from([0, 1, 3, 2**32 - 1]), columns, epochs)
batches = st.builds(
    lambda batch_id, ra, dec, radius, epoch: xmatch_pb2.CrossmatchRequest(
        batch=xmatch_pb2.PositionBatch(batch_id=batch_id, ra_deg=ra, dec_deg=dec,
                                       radius_arcsec=radius, epoch_jyear=epoch)),
    st.integers(0, 2**64 - 1), st.lists(floats, max_size=5), st.lists(floats, max_size=5),
    st.lists(radii, max_size=5), st.lists(floats, max_size=5))


@FUZZ
@given(messages=st.lists(st.one_of(options, batches, st.just(xmatch_pb2.CrossmatchRequest())),
                         max_size=5))
def test_fuzz_crossmatch(served, messages):
    stub, _, _ = served
    outcome(lambda: stub.Crossmatch(iter(messages), timeout=30))


@FUZZ
@given(name=st.one_of(names, st.text(max_size=30)))
def test_fuzz_describe(served, name):
    stub, _, _ = served
    outcome(lambda: stub.DescribeCatalog(xmatch_pb2.DescribeCatalogRequest(name=name),
                                         timeout=30))


def test_extremes_then_still_healthy(served):
    stub, channel, _ = served
    big = 200_001  # one over the test servers' batch limit
    over = outcome(lambda: stub.Crossmatch(iter([
        xmatch_pb2.CrossmatchRequest(options=xmatch_pb2.CrossmatchOptions(catalog="random")),
        xmatch_pb2.CrossmatchRequest(batch=xmatch_pb2.PositionBatch(
            ra_deg=np.zeros(big), dec_deg=np.zeros(big)))]), timeout=60))
    assert over == grpc.StatusCode.RESOURCE_EXHAUSTED
    empty = list(stub.Crossmatch(iter([
        xmatch_pb2.CrossmatchRequest(options=xmatch_pb2.CrossmatchOptions(catalog="random")),
        xmatch_pb2.CrossmatchRequest(batch=xmatch_pb2.PositionBatch(batch_id=7))])))
    assert [(a.batch_id, a.queries, a.matches) for a in empty] == [(7, 0, 0)]
    with pytest.raises(grpc.RpcError) as caught:  # over the 64 MiB message limit
        stub.Cone(xmatch_pb2.ConeRequest(catalog="random", columns=["x" * 70 * 2**20]))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_healthy(stub, channel)
    ListCatalogs = stub.ListCatalogs(xmatch_pb2.ListCatalogsRequest())
    assert {c.name for c in ListCatalogs.catalogs} == {"gaia_dr3", "hipparcos2", "gcvs",
                                                       "glade_gw170817", "random"}


def test_healthy_after_fuzzing(served):
    stub, channel, _ = served
    assert_healthy(stub, channel)
