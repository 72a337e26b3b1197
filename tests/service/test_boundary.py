"""The service boundary: one search model behind every face, errors as xmatch exceptions
with the gRPC code, bugs as INTERNAL (logged, never dressed up as bad input), a port in use
refused, and the public API loading lazily."""

from __future__ import annotations

import asyncio
import inspect
import logging
import subprocess
import sys

import grpc
import numpy as np
import pytest
from astropy.table import Table

import xmatch
from xmatch import AsyncClient, Client, Polygon, ServiceError, SkyIndex
from xmatch.index.results import rows_found
from xmatch.service.embedded import running_server
from xmatch.service.server import create_server

SEARCHES = ("search", "cone_search", "polygon_search", "moc_search", "skymap_search",
            "crossmatch")


def parameters(function) -> list[tuple]:
    """Names, kinds and defaults of a function's parameters (annotations aside)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_async_client_has_exactly_the_clients_methods():
    def public(cls):
        return {name: getattr(cls, name) for name in dir(cls)
                if not name.startswith("_") and callable(getattr(cls, name))}

    sync, asynchronous = public(Client), public(AsyncClient)
    assert set(sync) == set(asynchronous)
    for name, method in sync.items():
        assert parameters(asynchronous[name]) == parameters(method), name


def test_searches_have_the_same_signatures_on_index_catalog_and_client():
    """Client = the catalog's name first, then exactly the index's arguments, then arrow."""
    for name in SEARCHES:
        index = parameters(getattr(SkyIndex, name))
        assert parameters(getattr(xmatch.Catalog, name)) == index, name
        client = parameters(getattr(Client, name))
        assert client[:2] == [("self", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                               inspect.Parameter.empty),
                              ("catalog", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                               inspect.Parameter.empty)], name
        got = [p for p in client[2:] if p[0] not in ("arrow", "batch_size")]
        assert got == [p for p in index[1:] if p[0] != "queries"], name


def test_import_xmatch_and_help_load_only_what_they_need():
    code = ("import sys, xmatch; import xmatch.cli; xmatch.cli.build_parser(); "
            "print(sorted(m for m in ('numpy', 'grpc', 'pyarrow', 'astropy', 'numba') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
    assert xmatch.SkyIndex is SkyIndex and "SkyIndex" in dir(xmatch)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        xmatch.nope  # noqa: B018


def test_a_port_in_use_is_refused(embedded):
    port = int(embedded.rsplit(":", 1)[1])

    async def second():
        from xmatch.service.server import XmatchServicer

        await create_server(XmatchServicer({}), f"127.0.0.1:{port}")

    with pytest.raises(xmatch.XmatchError, match=f"cannot listen on 127.0.0.1:{port}: the port "
                                                 "is in use"):
        asyncio.run(second())
    with Client(embedded) as client:  # the first server still answers
        assert client.catalogs()


def test_client_errors_carry_the_code_and_the_servers_message(embedded):
    with Client(embedded) as client:
        with pytest.raises(ServiceError) as caught:
            client.cone_search("nope", 1.0, 2.0, 3.0)
        assert caught.value.code == grpc.StatusCode.NOT_FOUND
        assert caught.value.details.startswith("no catalog 'nope' here; catalogs served:")
        assert str(caught.value).startswith("NOT_FOUND: no catalog 'nope'")
        with pytest.raises(ServiceError) as caught:
            client.cone_search("random", 1.0, 2.0, 6 * 3600.0)
        assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    with Client("127.0.0.1:1", timeout=5) as client, pytest.raises(ServiceError) as caught:
        client.catalogs()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details.startswith("cannot reach an xmatch server at 127.0.0.1:1")


def test_a_bug_is_internal_logged_and_the_server_goes_on(service_data, caplog, monkeypatch):
    """A ValueError raised by numpy or pyarrow inside a search is a bug: INTERNAL with its
    type, the traceback in the server's log; never INVALID_ARGUMENT."""
    from xmatch.service.catalogs import ServedCatalog
    from xmatch.store.catalog import open_catalog

    served = {"random": ServedCatalog.from_catalog(open_catalog("random", service_data))}

    def broken(*args, **kwargs):
        return np.asarray(["x"], dtype=np.float64)  # numpy's ValueError

    with running_server(served) as address, Client(address) as client:
        index = served["random"].index
        monkeypatch.setattr(type(index), "search", broken)
        with caplog.at_level(logging.ERROR, logger="xmatch.service"), \
                pytest.raises(ServiceError) as caught:
            client.cone_search("random", 150.0, 30.0, 600.0)
        assert caught.value.code == grpc.StatusCode.INTERNAL
        assert "ValueError: could not convert string to float: 'x'" in caught.value.details
        assert any("Traceback" in (r.exc_text or "") or r.exc_info for r in caplog.records)
        monkeypatch.undo()
        assert client.cone_search("random", 150.0, 30.0, 600.0, arrow=True).num_rows > 0


def test_columns_of_astropy_tables_work_as_positions(embedded, reference):
    """`Client.crossmatch(t["ra"], t["dec"])` and `SkyIndex.crossmatch` with astropy
    Table columns (AttributeError before)."""
    random = reference["random"]
    rows = random.table.slice(0, 300)
    table = Table({"ra": rows["ra"].to_numpy(), "dec": rows["dec"].to_numpy()})
    table["ra"].unit = table["dec"].unit = "deg"
    local = random.crossmatch(table["ra"], table["dec"], radius_arcsec=1.0)
    assert local["id"].to_pylist() == rows["id"].to_pylist()
    with Client(embedded) as client:
        remote = client.crossmatch("random", table["ra"], table["dec"], radius_arcsec=1.0,
                                   arrow=True)
    assert remote.equals(local)


@pytest.mark.parametrize("vertices", [([150.0, 152.0, 151.0], [29.0, 29.0, 31.5]),
                                      ([355.0, 5.0, 5.0, 355.0], [-5.0, -5.0, 5.0, 5.0]),
                                      ([0.0, 90.0, 180.0, 270.0], [84.0, 84.0, 84.0, 84.0])])
def test_polygon_search_on_both_servers_equals_the_index(server_address, reference, vertices):
    address = server_address
    polygon = Polygon.of(*vertices)
    expected = reference["random"].search(polygon, columns=["id"])
    with Client(address) as client:
        got = client.polygon_search("random", *vertices, columns=["id"], arrow=True)
        limited = client.search("random", polygon, columns=["id"], limit=2, arrow=True)
    assert got.num_rows > 0 and got.equals(expected)
    assert limited.equals(expected.slice(0, 2)) and rows_found(limited) == expected.num_rows


def test_rows_found_travels_with_every_answer(server_address, reference):
    address = server_address
    expected = reference["random"].cone_search(150.0, 30.0, 1800.0)
    with Client(address) as client:
        cone = client.cone_search("random", 150.0, 30.0, 1800.0, limit=5)
        moc = client.moc_search("random", "5/1200-1300", limit=5)
    assert len(cone) == 5 and cone.meta["rows_found"] == expected.num_rows
    assert len(moc) == 5
    assert moc.meta["rows_found"] == reference["random"].moc_search("5/1200-1300").num_rows


def test_the_async_client_answers_as_the_client(server_address):
    from xmatch.alerts.samples import sample_paths

    async def ask():
        async with AsyncClient(server_address) as client:
            cone = await client.cone_search("random", 150.0, 30.0, 600.0, arrow=True)
            polygon = await client.polygon_search("random", [150.0, 151.0, 150.5],
                                                  [29.5, 29.5, 30.5], arrow=True)
            batches = [b async for b in client.annotate(sample_paths(), catalogs=["gcvs"],
                                                        batch_size=40)]
            pages = [t async for t in client.search_batches(
                "random", xmatch.Moc.of("3/100-200"), batch_rows=50)]
            return cone, polygon, batches, pages

    cone, polygon, batches, pages = asyncio.run(ask())
    with Client(server_address) as client:
        assert cone.equals(client.cone_search("random", 150.0, 30.0, 600.0, arrow=True))
        assert polygon.equals(client.polygon_search("random", [150.0, 151.0, 150.5],
                                                    [29.5, 29.5, 30.5], arrow=True))
        expected = list(client.annotate(sample_paths(), catalogs=["gcvs"], batch_size=40))
        whole = client.moc_search("random", "3/100-200", arrow=True)
    assert [b.table.num_rows for b in batches] == [b.table.num_rows for b in expected] == \
        [40, 40, 23]
    for got, want in zip(batches, expected, strict=True):
        assert got.table.equals(want.table)
    assert all(t.num_rows <= 50 for t in pages)
    assert sum(t.num_rows for t in pages) == whole.num_rows > 50
