"""MOC and sky-map searches through the service: the rows returned are the rows mocpy finds
inside the MOC or credible region, and each row's probability density, searched probability
and area, and 3-D density equal ligo.skymap's crossmatch. On an embedded server and through
a 3-shard router, with ranking, paging and bad input."""

from __future__ import annotations

import astropy.units as u
import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from mocpy import MOC

from conftest import (
    REAL_SKYMAPS,
    ligo_values,
    ligo_values_at_sources,
    read_skymap,
    real_skymap_sources,
    running_cluster,
    shared_file,
    skymap_file,
)
from xmatch import CatalogSpec, LoadOptions, SkyIndex, load_catalog, open_catalog
from xmatch.errors import ServiceError
from xmatch.service.client import Client
from xmatch.service.codec import ipc_to_table
from xmatch.service.embedded import running_server
from xmatch.service.server import Limits, ServedCatalog
from xmatch.sky.skymap import SkyMap
from xmatch.specs import bundled_spec
from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

SKYMAPS = REAL_SKYMAPS
SOURCES_SPEC = CatalogSpec(name="skymap_sources", id="id", ra="ra", dec="dec", distance="dist",
                           threshold_rows=1500, highest_order=9)
LIMITS = Limits(max_rows=20_000, region_batch_rows=400)
SKYMAP_COLUMNS = ["probdensity", "searched_prob", "searched_area", "probdensity_vol"]


@pytest.fixture(scope="module")
def maps():
    return {name: (skymap_file(name), read_skymap(skymap_file(name)))
            for name in SKYMAPS}


@pytest.fixture(scope="module")
def region_data(maps, tmp_path_factory):
    """A data directory with the GW170817 galaxies (split into several partitions) and
    sources around the three maps' credible regions."""
    from xmatch import DataDirectory

    root = tmp_path_factory.mktemp("skymap_service")
    data = DataDirectory(root / "data")
    options = LoadOptions(workers=2, progress=False)
    galaxies = bundled_spec("glade_gw170817").with_overrides(threshold_rows=60,
                                                              highest_order=8)
    load_catalog(spec=galaxies, sources=[str(shared_file(
        "catalogs/GW170817_galaxies.csv.gz"))], data=data, options=options)
    source = root / "sources.parquet"
    pq.write_table(real_skymap_sources(), source)
    load_catalog(spec=SOURCES_SPEC, sources=[str(source)], data=data, options=options)
    return data


@pytest.fixture(scope="module")
def indexes(region_data) -> dict[str, SkyIndex]:
    return {name: SkyIndex.from_catalog(open_catalog(name, region_data))
            for name in region_data.names()}


@pytest.fixture(scope="module")
def embedded_address(region_data):
    catalogs = {name: ServedCatalog.from_catalog(open_catalog(name, region_data))
                for name in region_data.names()}
    with running_server(catalogs, limits=LIMITS) as address:
        yield address


@pytest.fixture(scope="module")
def router_address(region_data, tmp_path_factory):
    with running_cluster(region_data, tmp_path_factory.mktemp("skymap_cluster"),
                         LIMITS) as cluster:
        yield cluster.address


@pytest.fixture(params=["embedded", "router"])
def client(request):
    address = request.getfixturevalue(f"{request.param}_address")
    with Client(address) as connected:
        yield connected


def inside_mocpy(moc: MOC, table) -> np.ndarray:
    return moc.contains_lonlat(table["ra"].to_numpy() * u.deg,
                               table["dec"].to_numpy() * u.deg)


@pytest.fixture(scope="module")
def oracle(maps, indexes):
    """Per map: the ids of the sources mocpy puts in the 90 % credible region, and
    ligo.skymap's values at those of them with a distance (worked out once)."""
    pytest.importorskip("ligo.skymap")
    everything = indexes["skymap_sources"].table
    found = {}
    for name, (_, skymap) in maps.items():
        region = skymap.credible_region(0.9)
        with_distance, values = ligo_values_at_sources(name)
        inside = inside_mocpy(region, with_distance)
        found[name] = (everything["id"].to_numpy()[inside_mocpy(region, everything)],
                       with_distance["id"].to_numpy()[inside],
                       {column: value[inside] for column, value in values.items()})
    return found


@pytest.mark.parametrize("name", SKYMAPS)
def test_credible_region_rows_and_values_equal_mocpy_and_ligo(client, maps, indexes, oracle,
                                                              name):
    path, skymap = maps[name]
    everything = indexes["skymap_sources"].table
    ids, ids_with_distance, ligo = oracle[name]
    got = client.skymap_search("skymap_sources", path, 0.9, arrow=True)
    assert got.num_rows > 300
    np.testing.assert_array_equal(np.sort(got["id"].to_numpy()), np.sort(ids))
    assert got.column_names == [*everything.column_names, *SKYMAP_COLUMNS]
    assert got.schema.field("probdensity_vol").metadata[b"unit"] == b"Mpc-3"
    dist = got["dist"].to_numpy(zero_copy_only=False)
    has = np.isfinite(dist)
    assert 0 < (~has).sum() and got["probdensity_vol"].null_count == (~has).sum()
    # ligo's values, put in the order the server answered.
    where = {identifier: i for i, identifier in enumerate(ids_with_distance)}
    positions = np.array([where[i] for i in got["id"].to_numpy()[has]])
    reference = {column: values[positions] for column, values in ligo.items()}
    for column in SKYMAP_COLUMNS:
        values = got[column].to_numpy(zero_copy_only=False)[has]
        np.testing.assert_allclose(values, reference[column], rtol=1e-6, atol=1e-300,
                                   err_msg=column)
    assert got["searched_prob"].to_numpy().max() <= 0.9


@pytest.fixture(scope="module")
def glade_oracle(maps, indexes):
    """Every GLADE galaxy of GW170817 and ligo.skymap's values at it (once for both
    servers), in the order of the galaxies' positions."""
    pytest.importorskip("ligo.skymap")
    galaxies = indexes["glade_gw170817"].table
    galaxies = galaxies.take(np.lexsort([galaxies["DEJ2000"], galaxies["RAJ2000"]]))
    return galaxies, ligo_values(maps[SKYMAPS[0]][0], galaxies["RAJ2000"].to_numpy(),
                                 galaxies["DEJ2000"].to_numpy(), galaxies["Dist"].to_numpy())


def test_gw170817_galaxies_equal_ligo_skymap_and_rank_ngc4993_first(client, maps, glade_oracle):
    """The acceptance case: every GLADE galaxy of GW170817 (level 1: the whole map)."""
    path, _ = maps[SKYMAPS[0]]
    galaxies, reference = glade_oracle
    got = client.skymap_search("glade_gw170817", path.read_bytes(), 1.0, arrow=True)
    assert got.num_rows == galaxies.num_rows == 390
    got = got.take(np.lexsort([got["DEJ2000"], got["RAJ2000"]]))
    assert got["RAJ2000"].equals(galaxies["RAJ2000"]) and got["DEJ2000"].equals(galaxies["DEJ2000"])
    for column in SKYMAP_COLUMNS:
        np.testing.assert_allclose(got[column].to_numpy(), reference[column], rtol=1e-6,
                                   atol=1e-300, err_msg=column)
    ranked = client.skymap_search("glade_gw170817", path, 1.0, rank_by="probdensity_vol",
                                  limit=5, arrow=True)
    assert ranked.num_rows == 5
    ngc4993 = SkyCoord(197.448776 * u.deg, -23.383831 * u.deg)
    first = SkyCoord(ranked["RAJ2000"][0].as_py() * u.deg, ranked["DEJ2000"][0].as_py() * u.deg)
    assert first.separation(ngc4993) < 1 * u.arcsec
    best = np.sort(reference["probdensity_vol"])[::-1][:5]
    np.testing.assert_allclose(ranked["probdensity_vol"].to_numpy(), best, rtol=1e-6)


@pytest.mark.parametrize("rank_by", [None, "probdensity", "probdensity_vol"])
def test_pages_resume_to_the_same_answer(client, maps, rank_by):
    """Small batches, resumed from several tokens, give exactly the one-call answer (ranked
    answers in rank order, missing distances last)."""
    path, _ = maps[SKYMAPS[2]]
    whole = client.skymap_search("skymap_sources", path, 0.9, rank_by=rank_by, arrow=True)
    request = xmatch_pb2.RegionSearchRequest(
        catalog="skymap_sources", columns=["id", "dist"], batch_rows=97,
        skymap=xmatch_pb2.SkyMapRegion(fits=path.read_bytes(), credible_level=0.9,
                                       rank_by=rank_by or ""))
    stub = client._stub
    answers = list(stub.RegionSearch(request))
    # At most 97 rows a batch (a router also ends one at each partition's end).
    assert len(answers) > 3 and all(0 < a.rows <= 97 for a in answers)
    assert answers[-1].continuation_token == ""
    pages = pa.concat_tables([ipc_to_table(a.arrow_ipc) for a in answers])
    assert pages.column_names == ["id", "dist", *SKYMAP_COLUMNS]
    np.testing.assert_array_equal(pages["id"].to_numpy(), whole["id"].to_numpy())
    for k in (1, len(answers) // 2, len(answers) - 2):
        request.continuation_token = answers[k].continuation_token
        rest = pa.concat_tables([ipc_to_table(a.arrow_ipc) for a in stub.RegionSearch(request)])
        received = sum(a.rows for a in answers[:k + 1])
        np.testing.assert_array_equal(rest["id"].to_numpy(), whole["id"].to_numpy()[received:])
    if rank_by is not None:
        score = whole[rank_by].to_numpy(zero_copy_only=False)
        known = score[np.isfinite(score)]
        assert np.all(np.diff(known) <= 0) and np.isfinite(score[:len(known)]).all()


def test_moc_search_equals_mocpy_for_random_mixed_order_mocs(client, indexes):
    rng = np.random.default_rng(31)
    everything = indexes["skymap_sources"].table
    for _ in range(4):
        orders = rng.integers(0, 12, 60)
        ipix = np.array([rng.integers(0, 12 * 4 ** int(o)) for o in orders], dtype=np.int64)
        moc = MOC.from_healpix_cells(np.r_[ipix, 0, 767], np.r_[orders, 3, 3].astype(np.int64),
                                     max_depth=29)  # plus the polar cells at order 3
        expected = everything["id"].to_numpy()[inside_mocpy(moc, everything)]
        for form in (moc, moc.to_string(format="ascii"), moc.to_string(format="json")):
            got = client.moc_search("skymap_sources", form, columns=["id"], arrow=True)
            np.testing.assert_array_equal(np.sort(got["id"].to_numpy()), np.sort(expected))
    empty = client.moc_search("skymap_sources", "0/", columns=["id", "ra"], arrow=True)
    assert empty.num_rows == 0 and empty.column_names == ["id", "ra"]


def test_empty_credible_region_answers_with_the_schema(client, maps):
    path, skymap = maps[SKYMAPS[1]]
    level = float(skymap.searched_prob[0]) / 2  # below the densest pixel: no pixel
    got = client.skymap_search("glade_gw170817", path, level, columns=["Dist"], arrow=True)
    assert got.num_rows == 0 and got.column_names == ["Dist", *SKYMAP_COLUMNS]


def test_bad_skymap_requests_get_precise_statuses(client, maps, tmp_path):
    path, _ = maps[SKYMAPS[1]]
    good = path.read_bytes()
    stub = xmatch_pb2_grpc.XmatchStub(client._channel)
    region = xmatch_pb2.SkyMapRegion
    from astropy.table import Table

    unnormalised = tmp_path / "half.fits"
    Table({"UNIQ": [4 + i for i in range(12)], "PROBDENSITY": np.full(12, 1 / (8 * np.pi))}
          ).write(unnormalised)
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    cases = [
        (dict(skymap=region(fits=good), ranges29=[0, 4]), invalid,
         "give one region: ranges29, skymap, polygon or ellipse, not ranges29 and skymap"),
        (dict(skymap=region()), invalid, "skymap.fits is empty"),
        (dict(skymap=region(fits=b"not a sky map")), invalid,
         "skymap.fits is not a readable FITS file"),
        (dict(skymap=region(fits=b"\x1f\x8b broken")), invalid, "not a readable gzip file"),
        (dict(skymap=region(fits=unnormalised.read_bytes())), invalid,
         "the probabilities sum to 0.5, not 1"),
        (dict(skymap=region(fits=good, credible_level=0)), invalid,
         "a credible level lies in (0, 1]"),
        (dict(skymap=region(fits=good, credible_level=1.5)), invalid,
         "a credible level lies in (0, 1]"),
        (dict(skymap=region(fits=good, rank_by="brightness")), invalid,
         "rank by probdensity or probdensity_vol"),
        (dict(catalog="nope", skymap=region(fits=good)), grpc.StatusCode.NOT_FOUND,
         "no catalog 'nope'"),
        (dict(skymap=region(fits=good), columns=["nope"]), grpc.StatusCode.NOT_FOUND,
         "unknown column(s) ['nope']"),
        (dict(skymap=region(fits=good), continuation_token="page 2"), invalid,
         "not one this server issued"),
    ]
    for fields, code, message in cases:
        request = xmatch_pb2.RegionSearchRequest(**{"catalog": "skymap_sources", **fields})
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.RegionSearch(request))
        assert caught.value.code() == code, (fields.keys(), caught.value.details())
        assert message in caught.value.details(), caught.value.details()
    # A map without distance layers has no 3-D density to rank by; the server goes on.
    flat = SkyMap.read(good)
    no_distance = tmp_path / "no_distance.fits"
    Table({"UNIQ": flat.uniq, "PROBDENSITY": flat.probdensity}).write(no_distance)
    with pytest.raises(ServiceError) as caught:
        client.skymap_search("skymap_sources", no_distance, rank_by="probdensity_vol")
    assert caught.value.code == invalid
    assert "has no distance layers" in caught.value.details
    got = client.skymap_search("skymap_sources", no_distance, 0.5, arrow=True)
    assert "probdensity_vol" not in got.column_names and got.num_rows > 0
