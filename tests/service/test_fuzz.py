"""Malformed and extreme requests to every RPC of the embedded server and of the router:
each gets a precise client-side status (never INTERNAL or UNKNOWN) with a message, or an OK
answer that is right in form (the columns asked, at most the limit, separations within the
radius, one annotation row per alert); and the server stays healthy and keeps answering."""

import grpc
import numpy as np
import pyarrow as pa
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmatch.service.codec import ipc_to_table, table_to_ipc
from xmatch.service.server import SERVICE_NAME
from xmatch.v1 import xmatch_pb2

CLIENT_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                 grpc.StatusCode.RESOURCE_EXHAUSTED}
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
MAX_ROWS = 2_000  # the test servers' row limit (conftest.LIMITS)

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


def outcome(call, check=None):
    """OK (the answer checked by ``check``), or a client error with a message; never a
    server fault."""
    try:
        result = call()
        answers = [result] if hasattr(result, "DESCRIPTOR") else list(result)
    except grpc.RpcError as error:
        assert error.code() in CLIENT_ERRORS, (error.code(), error.details())
        assert error.details()
        return error.code()
    if check is not None:
        check(answers)
    return grpc.StatusCode.OK


def assert_healthy(stub, channel):
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert stub.Cone(xmatch_pb2.ConeRequest(catalog="random", ra_deg=150, dec_deg=30,
                                            radius_arcsec=600)).rows > 0


def rows_of(answers) -> pa.Table:
    return pa.concat_tables([ipc_to_table(a.arrow_ipc) for a in answers])


@FUZZ
@given(name=names, ra=floats, dec=floats, radius=radii, cols=columns, limit=limits,
       epoch=epochs)
def test_fuzz_cone(served, name, ra, dec, radius, cols, limit, epoch):
    stub, _, _ = served
    request = xmatch_pb2.ConeRequest(catalog=name, ra_deg=ra, dec_deg=dec, radius_arcsec=radius,
                                     columns=cols, limit=limit)
    if epoch is not None:
        request.epoch_jyear = epoch

    def check(answers):
        table = rows_of(answers)
        assert table.num_rows == answers[0].rows <= min(limit or MAX_ROWS, MAX_ROWS)
        assert answers[0].rows_found >= table.num_rows
        for column in cols:
            assert column in table.column_names
        separation = table["separation_arcsec"].to_numpy()
        assert np.all(separation <= radius + 1e-6) and np.all(np.diff(separation) >= 0)

    outcome(lambda: stub.Cone(request, timeout=30), check)


@FUZZ
@given(name=names, ranges=st.lists(st.integers(-2**63, 2**63 - 1), max_size=8),
       vertices=st.one_of(st.none(), st.lists(st.tuples(floats, floats), max_size=5)),
       token=st.one_of(st.just(""), st.text(max_size=20),
                       st.sampled_from(["offset:5", "region:0:0:", "region:9:99999:offset:1",
                                        "offset:-1", "region:1:2:offset:x"])),
       batch_rows=st.sampled_from([0, 1, 7, 2**31]), limit=limits, cols=columns,
       clip=st.lists(st.integers(0, 2**62), max_size=2))
def test_fuzz_region(served, name, ranges, vertices, token, batch_rows, limit, cols, clip):
    stub, _, _ = served
    request = xmatch_pb2.RegionSearchRequest(catalog=name, ranges29=ranges, columns=cols,
                                             limit=limit, batch_rows=batch_rows,
                                             continuation_token=token, clip29=clip)
    if vertices is not None:
        request.polygon.ra_deg.extend(v[0] for v in vertices)
        request.polygon.dec_deg.extend(v[1] for v in vertices)

    def check(answers):
        table = rows_of(answers)
        assert table.num_rows == sum(a.rows for a in answers)
        if limit:
            assert table.num_rows <= limit
        for column in cols:
            assert column in table.column_names

    outcome(lambda: stub.RegionSearch(request, timeout=30), check)


options = st.builds(
    lambda name, radius, mode, k, cols, epoch, scale: xmatch_pb2.CrossmatchRequest(
        options=xmatch_pb2.CrossmatchOptions(catalog=name, radius_arcsec=radius, mode=mode, k=k,
                                             columns=cols, time_scale=scale,
                                             **({} if epoch is None else
                                                {"epoch_jyear": epoch}))),
    names, radii, st.integers(0, 5), st.sampled_from([0, 1, 3, 2**32 - 1]), columns, epochs,
    st.sampled_from(["", "", "tdb", "gps"]))
batches = st.builds(
    lambda batch_id, ra, dec, radius, epoch, mjd: xmatch_pb2.CrossmatchRequest(
        batch=xmatch_pb2.PositionBatch(batch_id=batch_id, ra_deg=ra, dec_deg=dec,
                                       radius_arcsec=radius, epoch_jyear=epoch, mjd=mjd)),
    st.integers(0, 2**64 - 1), st.lists(floats, max_size=5), st.lists(floats, max_size=5),
    st.lists(radii, max_size=5), st.lists(floats, max_size=5), st.lists(floats, max_size=2))


@FUZZ
@given(messages=st.lists(st.one_of(options, batches, st.just(xmatch_pb2.CrossmatchRequest())),
                         max_size=5))
def test_fuzz_crossmatch(served, messages):
    stub, _, _ = served
    sent = [m.batch for m in messages if m.WhichOneof("item") == "batch"]
    radius = next((m.options.radius_arcsec for m in messages
                   if m.WhichOneof("item") == "options"), 0.0)

    def check(answers):
        assert [a.batch_id for a in answers] == [b.batch_id for b in sent[:len(answers)]]
        for answer, batch in zip(answers, sent, strict=False):
            table = ipc_to_table(answer.arrow_ipc)
            assert answer.queries == len(batch.ra_deg)
            assert set(table["query_index"].to_pylist()) == set(range(len(batch.ra_deg)))
            reach = max([*batch.radius_arcsec, radius or 5 * 3600.0])
            assert np.all(table["separation_arcsec"].to_numpy(zero_copy_only=False)[
                table["match_rank"].is_valid().to_numpy(zero_copy_only=False)] <= reach + 1e-6)

    outcome(lambda: stub.Crossmatch(iter(messages), timeout=30), check)


def compact_batch(batch_id, ra, dec, mjd, garbage):
    if garbage:
        return xmatch_pb2.AnnotateRequest(batch=xmatch_pb2.AlertBatch(
            batch_id=batch_id, compact_ipc=garbage))
    columns = {"ra_deg": pa.array(ra, pa.float64()), "dec_deg": pa.array(dec, pa.float64())}
    if mjd is not None:
        columns["mjd_tai"] = pa.array([mjd] * len(ra), pa.float64())
    return xmatch_pb2.AnnotateRequest(batch=xmatch_pb2.AlertBatch(
        batch_id=batch_id, compact_ipc=table_to_ipc(pa.table(columns))))


annotate_options = st.builds(
    lambda catalogs, radius, observatory, schemas: xmatch_pb2.AnnotateRequest(
        options=xmatch_pb2.AnnotateOptions(catalogs=catalogs, radius_arcsec=radius,
                                           observatory=observatory, avro_schemas=schemas)),
    st.lists(st.sampled_from(["gaia_dr3", "random", "nope", "sso", "random"]), max_size=3),
    st.dictionaries(st.sampled_from(["gaia_dr3", "random", "x"]), radii, max_size=2),
    st.sampled_from(["", "I41", "ZZZ"]),
    st.dictionaries(st.integers(0, 2**32 - 1), st.sampled_from(['{"type": "int"}', "{",
                                                                 "null"]), max_size=1))
annotate_batches = st.one_of(
    st.builds(compact_batch, st.integers(0, 2**64 - 1), st.lists(floats, min_size=2,
                                                                 max_size=2),
              st.lists(floats, min_size=2, max_size=2), st.one_of(st.none(), floats),
              st.sampled_from([b"", b"", b"not arrow"])),
    st.builds(lambda batch_id, packets: xmatch_pb2.AnnotateRequest(batch=xmatch_pb2.AlertBatch(
        batch_id=batch_id, packets=xmatch_pb2.PacketList(packets=packets))),
        st.integers(0, 2**64 - 1),
        st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(
            [b"", b"Obj\x01", b"Obj\x01\x04\x16avro.schema", b"\x00\x00\x00\x04\x4d\x02"])),
            max_size=3)))


@FUZZ
@given(messages=st.lists(st.one_of(annotate_options, annotate_batches,
                                   st.just(xmatch_pb2.AnnotateRequest())), max_size=4))
def test_fuzz_annotate(served, messages):
    stub, _, _ = served
    sent = [m.batch for m in messages if m.WhichOneof("item") == "batch"]

    def check(answers):
        for answer, batch in zip(answers, sent, strict=False):
            table = ipc_to_table(answer.arrow_ipc)
            kind = batch.WhichOneof("alerts")
            expected = (len(batch.packets.packets) if kind == "packets" else
                        ipc_to_table(batch.compact_ipc).num_rows if kind == "compact_ipc"
                        else 0)
            assert answer.batch_id == batch.batch_id
            assert table.num_rows == answer.alerts == expected
            assert answer.errors == table.num_rows - table["error"].null_count

    outcome(lambda: stub.Annotate(iter(messages), timeout=30), check)


@FUZZ
@given(name=st.one_of(st.just(""), names), ra=floats, dec=floats, radius=radii,
       mjd=st.one_of(floats, st.sampled_from([60000.5, 58000.0, 1e12])),
       scale=st.sampled_from(["", "utc", "tdb", "gps"]),
       observatory=st.sampled_from(["", "I41", "X05", "ZZZ", "247"]), limit=limits)
def test_fuzz_sso_cone(served, name, ra, dec, radius, mjd, scale, observatory, limit):
    stub, _, _ = served
    request = xmatch_pb2.SsoConeRequest(catalog=name, ra_deg=ra, dec_deg=dec,
                                        radius_arcsec=radius, mjd=mjd, time_scale=scale,
                                        observatory=observatory, limit=limit)
    # These servers hold no nightly cache: nothing can be answered OK.
    assert outcome(lambda: stub.SsoCone(request, timeout=30)) != grpc.StatusCode.OK


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
    listed = stub.ListCatalogs(xmatch_pb2.ListCatalogsRequest())
    assert {c.name for c in listed.catalogs} == {"gaia_dr3", "hipparcos2", "gcvs",
                                                 "glade_gw170817", "fermi_4fgl",
                                                 "fermi_4lac", "random"}


def test_healthy_after_fuzzing(served):
    stub, channel, _ = served
    assert_healthy(stub, channel)
