"""The Coverage RPC: the MOC of the HEALPix cells holding a catalog's rows, from the
embedded server and from a router over three shard processes (``served`` in conftest),
equal to the cells cdshealpix gives the catalogs' positions and to mocpy's
``MOC.from_lonlat``, at the poles and on both sides of RA 0 too; the clients' mocpy MOCs;
bad requests with their status and a message saying what is allowed; the cache following
a catalog served anew; fail-over to a replica; the query permission."""

from __future__ import annotations

import asyncio

import astropy.units as u
import cdshealpix.nested
import grpc
import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import Latitude, Longitude
from mocpy import MOC

from conftest import BUNDLED, random_sky_table
from xmatch import AsyncClient, Client, SkyIndex
from xmatch.errors import InputError, ServiceError, out_of_range
from xmatch.service.embedded import running_server, running_servicer
from xmatch.service.security import Exposure, TokenFile
from xmatch.service.server import Limits, ServedCatalog, XmatchServicer
from xmatch.sky.moc import (
    COVERAGE_MAX_ORDER,
    COVERAGE_ORDERS,
    MOC_CONTENT_TYPES,
    NO_COVERAGE_ORDER,
    moc_bytes,
)
from xmatch.sky.regions import check_ranges29
from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

ORDERS = [0, 10, COVERAGE_MAX_ORDER]
CATALOGS = [*BUNDLED, "random"]
#: Rows of the random catalog at the awkward places (conftest.random_sky_table's edges).
EDGES = [(0.0, 90.0), (180.0, -90.0), (0.0, 0.0), (360.0, 0.0), (359.9999999999, 0.0),
         (0.0, 89.9999999), (90.0, -89.9999999), (45.0, 41.8103149), (45.0, -41.8103149)]


def positions(index: SkyIndex) -> tuple[np.ndarray, np.ndarray]:
    table = index.table
    return table[index.ra_column].to_numpy(), table[index.dec_column].to_numpy()


def cds_cells(ra, dec, order: int) -> np.ndarray:
    """The cells at ``order`` holding the positions, by cdshealpix (the oracle)."""
    return np.unique(cdshealpix.nested.lonlat_to_healpix(
        Longitude(ra, u.deg), Latitude(dec, u.deg), order).astype(np.int64))


def mocpy_ranges(ra, dec, order: int) -> np.ndarray:
    moc = MOC.from_lonlat(Longitude(ra, u.deg), Latitude(dec, u.deg), max_norder=order)
    return moc.to_depth29_ranges.astype(np.int64).reshape(-1, 2)


def cells_of(ranges, order: int) -> np.ndarray:
    """Every cell at ``order`` of order-29 ranges of whole cells."""
    ranges = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
    shift = 2 * (29 - order)
    first, count = ranges[:, 0] >> shift, (ranges[:, 1] - ranges[:, 0]) >> shift
    offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return np.repeat(first, count) + offsets


_ORACLE: dict = {}


def oracle(reference, name: str, order: int) -> tuple[np.ndarray, np.ndarray]:
    """(cdshealpix's cells, mocpy's ranges) of a catalog's rows at ``order``."""
    key = (name, order)
    if key not in _ORACLE:
        ra, dec = positions(reference[name])
        _ORACLE[key] = cds_cells(ra, dec, order), mocpy_ranges(ra, dec, order)
    return _ORACLE[key]


@pytest.fixture
def stub(server_address):
    """A stub of the embedded server, then of the router, receiving messages up to the
    servers' own limit (the coverage of 482,176 Gaia stars at order 13 takes 9 MB; gRPC's
    default is 4 MiB)."""
    limit = Limits().max_message_bytes
    with grpc.insecure_channel(server_address, [("grpc.max_receive_message_length", limit)]) \
            as channel:
        yield xmatch_pb2_grpc.XmatchStub(channel)


def coverage(stub, catalog: str, order: int | None, **fields) -> xmatch_pb2.CoverageResponse:
    request = xmatch_pb2.CoverageRequest(catalog=catalog, **fields)
    if order is not None:
        request.order = order
    return stub.Coverage(request)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("name", CATALOGS)
def test_coverage_is_the_cells_of_the_rows(stub, reference, name, order):
    answer = coverage(stub, name, order)
    ranges = check_ranges29(np.asarray(answer.ranges29, dtype=np.int64))  # sorted, disjoint
    assert answer.order == order and answer.rows_counted == len(reference[name])
    assert np.all(ranges[1:, 0] > ranges[:-1, 1])  # touching runs are merged
    cells, expected_ranges = oracle(reference, name, order)
    np.testing.assert_array_equal(cells_of(ranges, order), cells)
    np.testing.assert_array_equal(ranges, expected_ranges)


@pytest.mark.parametrize("order", ORDERS)
def test_cells_at_the_poles_and_on_both_sides_of_ra_0_are_covered(stub, reference, order):
    ra, dec = positions(reference["random"])
    edge_ra, edge_dec = np.array(EDGES).T
    rows = [np.flatnonzero((ra == a) & (dec == d)) for a, d in EDGES]
    assert all(len(r) for r in rows)  # the catalog has rows there
    covered = cells_of(coverage(stub, "random", order).ranges29, order)
    wanted = cds_cells(edge_ra, edge_dec, order)
    assert np.isin(wanted, covered).all()
    polar = wanted >> (2 * order)  # their base cells: both polar caps
    assert {0, 1, 2, 3} & set(polar) and {8, 9, 10, 11} & set(polar)


def test_clients_give_mocpy_mocs(server_address, reference):
    ra, dec = positions(reference["random"])
    expected = MOC.from_lonlat(Longitude(ra, u.deg), Latitude(dec, u.deg), max_norder=8)
    with Client(server_address) as client:
        got = client.coverage("random", 8)
        assert got == expected and got.max_order == 8
        with pytest.raises(InputError) as caught:  # refused before anything is sent
            client.coverage("random", COVERAGE_MAX_ORDER + 1)
        assert str(caught.value) == out_of_range("order", COVERAGE_MAX_ORDER + 1, None,
                                                 COVERAGE_ORDERS)
        with pytest.raises(ServiceError) as caught:
            client.coverage("nope", 3)
        assert caught.value.code == grpc.StatusCode.NOT_FOUND

    async def asynchronous():
        async with AsyncClient(server_address) as client:
            return await asyncio.gather(client.coverage("random", 8),
                                        client.coverage("gaia_dr3", 0))

    got, whole = asyncio.run(asynchronous())
    assert got == expected and whole.sky_fraction == 1.0 and whole.max_order == 0
    for fmt in MOC_CONTENT_TYPES:  # the documents of what a client got
        assert moc_bytes(got, fmt)


def test_bad_requests_say_what_is_allowed(stub, request):
    via_router = request.node.callspec.params["server_address"] == "router"
    cases = [
        ({"catalog": "nope", "order": 3}, grpc.StatusCode.NOT_FOUND,
         "no catalog 'nope' here; catalogs served: "),
        ({"catalog": "random", "order": COVERAGE_MAX_ORDER + 1},
         grpc.StatusCode.INVALID_ARGUMENT,
         out_of_range("order", COVERAGE_MAX_ORDER + 1, None, COVERAGE_ORDERS)),
        ({"catalog": "random", "order": -1}, grpc.StatusCode.INVALID_ARGUMENT,
         out_of_range("order", -1, None, COVERAGE_ORDERS)),
        ({"catalog": "random", "order": None}, grpc.StatusCode.INVALID_ARGUMENT,
         NO_COVERAGE_ORDER),
        ({"catalog": "random", "order": 3, "slice": "s0"},
         grpc.StatusCode.INVALID_ARGUMENT if via_router else grpc.StatusCode.NOT_FOUND,
         "slice is set by a router for its shard servers; leave it empty" if via_router
         else "slice 's0' of random is not held here"),
    ]
    for fields, code, message in cases:
        with pytest.raises(grpc.RpcError) as caught:
            coverage(stub, **fields)
        assert caught.value.code() == code, fields
        assert message in caught.value.details() and "\n" not in caught.value.details()
    assert len(coverage(stub, "random", 0).ranges29) == 2  # still serving


def index_of(table: pa.Table) -> SkyIndex:
    return SkyIndex.from_table(table, "ra", "dec")


def served_table(name: str, table: pa.Table) -> ServedCatalog:
    """A user catalog served from a table (no store behind it)."""
    return ServedCatalog(name, {"": index_of(table)},
                         xmatch_pb2.CatalogSummary(name=name, rows=table.num_rows),
                         xmatch_pb2.CatalogDescription())


def test_an_empty_catalog_has_an_empty_coverage_that_still_serialises():
    empty = pa.table({"id": pa.array([], pa.int64()), "ra": pa.array([], pa.float64()),
                      "dec": pa.array([], pa.float64())})
    with running_server({"empty": served_table("empty", empty)}) as address, \
            Client(address) as client:
        moc = client.coverage("empty", 9)
    assert moc.empty() and moc.max_order == 9
    for fmt in MOC_CONTENT_TYPES:
        data = moc_bytes(moc, fmt)
        back = (MOC.from_fits(__import__("io").BytesIO(data)) if fmt == "fits"
                else MOC.from_json(__import__("json").loads(data)) if fmt == "json"
                else MOC.from_str(data.decode()))
        assert back.empty() and back.max_order == 9


def test_a_catalog_served_anew_has_its_own_coverage():
    """Answers are kept per catalog and order; a catalog replaced while serving (as
    ``serve_catalogs`` does for nightly caches and the history) is answered anew."""
    first, second = random_sky_table(500, seed=1), random_sky_table(500, seed=2)
    with running_servicer(lambda: XmatchServicer({"user": served_table("user", first)})) \
            as (address, servicer), Client(address) as client:
        before = client.coverage("user", 7)
        assert client.coverage("user", 7) == before  # from the cache
        servicer.serve_catalogs({"user": served_table("user", second)})
        after = client.coverage("user", 7)
    for table, moc in ((first, before), (second, after)):
        ra, dec = table["ra"].to_numpy(), table["dec"].to_numpy()
        np.testing.assert_array_equal(moc.to_depth29_ranges.astype(np.int64),
                                      mocpy_ranges(ra, dec, 7))
    assert before != after


def test_an_answer_over_the_message_limit_says_so(reference):
    catalogs = {"random": served_table("random", reference["random"].table)}
    with running_server(catalogs, limits=Limits(max_message_bytes=64 * 2**10)) as address, \
            Client(address) as client:
        assert not client.coverage("random", 5).empty()  # 2,644 ranges: 47 KiB
        with pytest.raises(ServiceError) as caught:
            client.coverage("random", COVERAGE_MAX_ORDER)
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.details.startswith(f"the coverage of random at order "
                                           f"{COVERAGE_MAX_ORDER} takes ")
    assert caught.value.details.endswith("over this server's message limit of 0.1 MiB: ask "
                                         "a lower order")


def test_coverage_needs_the_query_permission_and_is_not_rows(tmp_path, reference):
    tokens = TokenFile(tmp_path / "tokens.json")
    reader = tokens.add("reader", ["query"], rows=10)  # 10 rows per answer: not cells
    streamer = tokens.add("streamer", ["stream"])
    catalogs = {"random": served_table("random", reference["random"].table)}
    with running_server(catalogs, exposure=Exposure(tokens=tmp_path / "tokens.json")) \
            as address:
        with Client(address, token=reader) as client:
            assert client.coverage("random", 10).max_order == 10
        with Client(address, token=streamer) as client, pytest.raises(ServiceError) as caught:
            client.coverage("random", 10)
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details == ("token 'streamer' may stream; Coverage needs the query "
                                    "permission")


def test_the_router_fails_over_and_names_the_partitions_it_cannot_reach(cluster, reference):
    channel = grpc.insecure_channel(cluster.address)
    stub = xmatch_pb2_grpc.XmatchStub(channel)
    _, expected = oracle(reference, "random", 10)
    plan = cluster.plan
    lost = next(s for s in plan.catalogs["random"] if set(s.shards) == {0, 1})
    try:
        cluster.kill("shard-0")
        for _ in range(2):  # the first call finds it down, the second knows it
            got = coverage(stub, "random", 10)
            np.testing.assert_array_equal(np.asarray(got.ranges29).reshape(-1, 2), expected)
        cluster.kill("shard-1")
        with pytest.raises(grpc.RpcError) as caught:
            coverage(stub, "random", 10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        order, pixel = lost.partitions[0]
        assert ("random: no replica answers for partition(s) " in caught.value.details()
                and f"{order}/{pixel}" in caught.value.details())
    finally:
        channel.close()
        cluster.ensure_all_running()
