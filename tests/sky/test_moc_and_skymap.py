"""Region inputs: MOCs in every IVOA form and NUNIQ lists read as mocpy reads them; LVK sky
maps (the three real ones) give each position the probability density and searched
probability ligo.skymap computes, and credible regions whose members mocpy confirms."""

from __future__ import annotations

import gzip
import io

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from mocpy import MOC

from conftest import (
    REAL_SKYMAPS,
    ligo_sky_map,
    ligo_values_at_sources,
    read_skymap,
    skymap_file,
)
from xmatch.errors import out_of_range
from xmatch.sky.moc import (
    COVERAGE_MAX_ORDER,
    COVERAGE_ORDERS,
    MOC_CONTENT_TYPES,
    NO_COVERAGE_ORDER,
    check_coverage_order,
    moc_bytes,
    moc_from,
    moc_from_nuniq,
    moc_of_ranges29,
    uniq_to_nested,
)
from xmatch.sky.skymap import SkyMap

SKYMAPS = REAL_SKYMAPS


def random_moc(seed: int) -> MOC:
    """A MOC of random cells at mixed orders (0 to 29), including cells at the poles and
    across RA 0."""
    rng = np.random.default_rng(seed)
    orders = rng.integers(0, 30, 40)
    ipix = np.array([rng.integers(0, 12 * 4 ** int(o)) for o in orders], dtype=np.int64)
    orders = np.r_[orders, 3, 3, 8]
    ipix = np.r_[ipix, 0, 12 * 4 ** 3 - 1, 4 * 4 ** 8]  # north and south polar cells, ...
    return MOC.from_healpix_cells(ipix, orders.astype(np.int64), max_depth=29)


@pytest.mark.parametrize("seed", range(5))
def test_every_moc_form_reads_as_mocpy_writes_it(seed, tmp_path):
    moc = random_moc(seed)
    ascii_text = moc.to_string(format="ascii")
    json_text = moc.to_string(format="json")
    fits_path = tmp_path / "moc.fits"
    moc.save(fits_path, format="fits")
    text_path = tmp_path / "moc.txt"
    text_path.write_text(ascii_text)
    forms = [ascii_text, json_text, fits_path.read_bytes(), fits_path, str(text_path), moc]
    for form in forms:
        assert same_cells(moc_from(form), moc), type(form)
    assert same_cells(moc_from_nuniq(moc.uniq_hpx), moc)
    assert same_cells(moc_from("3/1-5 4/120"), MOC.from_string("3/1-5 4/120"))


def same_cells(a: MOC, b: MOC) -> bool:
    """The same sky (mocpy's == also compares the declared depth)."""
    return np.array_equal(a.to_depth29_ranges, b.to_depth29_ranges)


def parsed_back(data: bytes, fmt: str) -> MOC:
    """A MOC document read back by mocpy's own readers."""
    if fmt == "fits":
        return MOC.from_fits(io.BytesIO(data))
    if fmt == "json":
        return MOC.from_json(__import__("json").loads(data))
    return MOC.from_str(data.decode())


@pytest.mark.parametrize("order", [0, 5, 10, COVERAGE_MAX_ORDER])
@pytest.mark.parametrize("fmt", list(MOC_CONTENT_TYPES))
def test_moc_documents_are_ivoa_moc2_and_parse_back(order, fmt):
    """Each serialisation of a coverage at its order (cells merged into coarser ones where
    they fill them, cells at the poles and on both sides of RA 0) reads back with mocpy to
    the same MOC, declared depth included; the FITS one is MOC 2.0 RANGE."""
    rng = np.random.default_rng(order)
    cells = np.unique(np.r_[rng.integers(0, 12 * 4**order, 300), 0, 12 * 4**order - 1,
                            4 * 4**order, 5 * 4**order - 1])
    shift = 2 * (29 - order)
    moc = moc_of_ranges29(np.stack([cells << shift, (cells + 1) << shift], axis=1), order)
    assert moc.max_order == order
    data = moc_bytes(moc, fmt)
    back = parsed_back(data, fmt)
    assert back == moc and back.max_order == order
    assert same_cells(back, MOC.from_healpix_cells(cells, np.full(len(cells), order),
                                                   max_depth=order))
    if fmt == "fits":
        header = fits.open(io.BytesIO(data))[1].header
        assert (header["MOCVERS"], header["MOCDIM"], header["ORDERING"], header["MOCORD_S"],
                header["COORDSYS"]) == ("2.0", "SPACE", "RANGE", order, "C")
        keyed = fits.open(io.BytesIO(moc_bytes(moc, fmt, {"MOCTYPE": "CATALOG"})))[1].header
        assert keyed["MOCTYPE"] == "CATALOG"
    else:
        assert data.endswith(b"\n")
        assert (f"{order}/" if fmt == "ascii" else f'"{order}": [') in data.decode()


@pytest.mark.parametrize("fmt", list(MOC_CONTENT_TYPES))
def test_an_empty_moc_is_still_a_document_of_its_order(fmt):
    empty = moc_of_ranges29(np.empty(0, np.int64), 7)
    back = parsed_back(moc_bytes(empty, fmt), fmt)
    assert back.empty() and back.max_order == 7
    assert moc_bytes(empty, "ascii") == b"7/\n"


def test_moc_formats_content_types_and_coverage_orders():
    assert MOC_CONTENT_TYPES == {"fits": "application/fits", "ascii": "text/plain",
                                 "json": "application/json"}
    moc = MOC.from_string("3/1-5 4/120")
    with pytest.raises(ValueError, match="MOC format 'votable' is not one of fits, ascii, json"):
        moc_bytes(moc, "votable")
    with pytest.raises(ValueError, match="FITS keywords apply to the fits format only"):
        moc_bytes(moc, "json", {"MOCTYPE": "CATALOG"})
    assert [check_coverage_order(o) for o in (0, np.int64(7), COVERAGE_MAX_ORDER)] == [0, 7, 13]
    for bad in (-1, COVERAGE_MAX_ORDER + 1, 2.0, True, "3"):
        with pytest.raises(ValueError) as caught:
            check_coverage_order(bad)
        assert str(caught.value) == out_of_range("order", bad, None, COVERAGE_ORDERS)
    with pytest.raises(ValueError) as caught:
        check_coverage_order(None)
    assert str(caught.value) == NO_COVERAGE_ORDER


@pytest.mark.parametrize("value, message", [
    ("3/1-5 30/1", "order 30 is not allowed; MOC orders run from 0 to 29"),
    ('{"3": [1], "31": [2]}', "order 31 is not allowed"),
    ('{"3": [1, 2', "is not valid MOC JSON"),
    ('{"x": [1]}', "MOC JSON key 'x' is not an order"),
    ("3/1-5 4/999999", "cell 999999 is not a cell of order 4, whose cells run from 0 to 3071"),
    ("0/12", "cell 12 is not a cell of order 0"),
    ("3/5-1", "cell range 5-1 at order 3 runs backwards"),
    ('{"5": [40000]}', "cell 40000 is not a cell of order 5"),
    ('{"3": "x"}', "MOC JSON maps orders to lists of cells"),
    ("3/abc", "is not a valid ASCII MOC"),
    ("   ", "is empty"),
    (b"not a fits file", "is not a readable FITS file"),
    ("no/such/file.fits", "MOC file no/such/file.fits does not exist"),
    (12, "not int"),
])
def test_malformed_mocs_are_refused_clearly(value, message):
    with pytest.raises(ValueError) as caught:
        moc_from(value)
    assert message in str(caught.value)


def test_bad_nuniq_orders_and_levels():
    with pytest.raises(ValueError, match=r"3 \(at position 1\) is not a NUNIQ number"):
        moc_from_nuniq([16, 3])
    for deep in (4 * 4 ** 30, 4 * 4 ** 30 + 5):
        with pytest.raises(ValueError, match="is a cell deeper than order 29, the deepest"):
            moc_from_nuniq([16, deep])
    # The deepest cells of every order, and the first, read back exactly.
    orders = np.arange(30)
    edges = np.r_[4 * 4 ** orders, 16 * 4 ** orders - 1].astype(np.int64)
    got_order, got_ipix = uniq_to_nested(edges)
    assert np.array_equal(got_order, np.r_[orders, orders])
    assert np.array_equal(got_ipix, np.r_[np.zeros(30), 12 * 4 ** orders - 1])
    with pytest.raises(ValueError, match="NUNIQ numbers are integers"):
        moc_from_nuniq([4.5])
    skymap = read_skymap(skymap_file(SKYMAPS[2]))
    for level in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="a credible level lies in \\(0, 1\\]"):
            skymap.credible_region(level)


# ------------------------------------------------------------------------- sky maps


@pytest.fixture(scope="module", params=SKYMAPS)
def real_map(request):
    path = skymap_file(request.param)
    return path, read_skymap(path)


def positions_in(skymap: SkyMap, n: int, seed: int) -> SkyCoord:
    """Positions drawn from the map's probability (most fall in its credible regions), plus
    uniform ones anywhere, plus the poles and RA 0."""
    rng = np.random.default_rng(seed)
    pixels = rng.choice(len(skymap.prob), n, p=skymap.prob / skymap.prob.sum())
    import healpy

    nside = 2 ** skymap.order[pixels]
    ra, dec = healpy.pix2ang(nside, skymap.ipix[pixels], nest=True, lonlat=True)
    ra = np.r_[ra + rng.normal(0, 0.01, n), rng.uniform(0, 360, n), 0.0, 359.999, 45.0]
    dec = np.r_[np.clip(dec + rng.normal(0, 0.01, n), -90, 90),
                np.degrees(np.arcsin(rng.uniform(-1, 1, n))), 90.0, 0.0, -90.0]
    return SkyCoord(ra % 360 * u.deg, dec * u.deg)


def test_probabilities_at_positions_equal_ligo_skymap(real_map):
    """Sources drawn from each map (most in its credible regions), uniform ones anywhere,
    the poles and RA 0/360: each gets the probability density, searched probability and
    searched area that ligo.skymap's crossmatch gives it."""
    pytest.importorskip("ligo.skymap")
    path, skymap = real_map
    # A flat map reads as ligo.skymap reads it: blocks of equal pixels merged.
    assert np.array_equal(np.sort(skymap.uniq), np.sort(ligo_sky_map(path)["UNIQ"]))
    points, expected = ligo_values_at_sources(path.name)
    assert points.num_rows > 15_000
    pixel = skymap.pixel_of(points["ra"].to_numpy(), points["dec"].to_numpy())
    assert (pixel >= 0).all()
    for column in ("probdensity", "searched_prob", "searched_area"):
        np.testing.assert_allclose(getattr(skymap, column)[pixel], expected[column], rtol=1e-6,
                                   err_msg=column)


def test_volume_density_beyond_and_below_ligo_skymaps_distance_grid():
    """ligo.skymap evaluates the 3-D density on a grid of 1000 steps out to 6 mean distances,
    stretched to the farthest position given: xmatch gives each row what ligo.skymap gives
    it alone. Below the first step ligo.skymap wraps round to its last (index -1); xmatch
    takes the first step. (One call of ligo.skymap per distance, each seconds long: on the
    bundled GW170817 map only.)"""
    crossmatch = pytest.importorskip("ligo.skymap.postprocess.crossmatch")
    path = skymap_file(SKYMAPS[0])
    skymap = read_skymap(path)
    ligo_map = ligo_sky_map(path)
    inner = skymap.pixel_of(*_centre(skymap, 0))
    ra, dec = _centre(skymap, 0)
    step = 6 * skymap.distmean / 1000
    # Inside the grid is every other test's case; here: beyond it and near its start.
    for distance in (7 * skymap.distmean, step * 7):
        alone = SkyCoord(ra * u.deg, dec * u.deg, distance * u.Mpc)
        expected = crossmatch.crossmatch(ligo_map, alone).probdensity_vol
        got = _volume_density(skymap, ra, dec, distance)
        np.testing.assert_allclose(got, expected, rtol=1e-9, err_msg=str(distance))
    below = _volume_density(skymap, ra, dec, 0.5 * step)
    first = skymap.probdensity[inner] * skymap.distnorm[inner] * np.exp(
        -0.5 * ((step - skymap.distmu[inner]) / skymap.distsigma[inner]) ** 2) / (
        skymap.distsigma[inner] * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(below, first, rtol=1e-12)
    assert np.isnan(_volume_density(skymap, ra, dec, np.nan))
    assert np.isnan(_volume_density(skymap, ra, dec, -1.0))


def _centre(skymap: SkyMap, pixel: int) -> tuple[float, float]:
    import healpy

    ra, dec = healpy.pix2ang(2 ** int(skymap.order[pixel]), int(skymap.ipix[pixel]), nest=True,
                             lonlat=True)
    return float(ra), float(dec)


def _volume_density(skymap: SkyMap, ra: float, dec: float, distance: float) -> float:
    import healpy

    cell = healpy.ang2pix(2 ** 29, ra, dec, nest=True, lonlat=True)
    return float(skymap.values_at(np.array([cell]), np.array([distance]))["probdensity_vol"][0])


def test_distance_means_equal_ligo_skymap(real_map):
    distance = pytest.importorskip("ligo.skymap.distance")
    _, skymap = real_map
    expected, _ = distance.parameters_to_marginal_moments(skymap.prob, skymap.distmu,
                                                          skymap.distsigma)
    assert skymap.distmean == pytest.approx(expected, rel=1e-12)


def test_credible_regions_hold_exactly_their_pixels(real_map):
    path, skymap = real_map
    points = positions_in(skymap, 5000, seed=5)
    level_of = skymap.searched_prob[skymap.pixel_of(points.ra.deg, points.dec.deg)]
    for level in (0.5, 0.9, 1.0):
        region = skymap.credible_region(level)
        inside = region.contains_lonlat(points.ra, points.dec)
        assert np.array_equal(inside, (level_of <= level) | (level == 1.0)), level
        assert 0.3 * len(points) < inside.sum() or level < 0.9
    # Its order-29 ranges are the MOC's.
    np.testing.assert_array_equal(skymap.region_ranges(0.9),
                                  skymap.credible_region(0.9).to_depth29_ranges)
    # The 90 % region holds 90 % of the probability, to within one pixel's worth.
    pixels = skymap.region_pixels(0.9)
    assert skymap.prob[pixels].sum() == pytest.approx(0.9, abs=skymap.prob.max())


def test_flat_ring_map_equals_its_nested_form(tmp_path):
    """A flat map written in RING order reads as the same map as in NESTED order."""
    import healpy

    nside = 64
    rng = np.random.default_rng(6)
    prob = rng.random(12 * nside ** 2)
    prob /= prob.sum()
    ring = healpy.reorder(prob, n2r=True)
    paths = {}
    for ordering, values in (("NESTED", prob), ("RING", ring)):
        table = Table({"PROB": values})
        table.meta.update({"ORDERING": ordering, "NSIDE": nside, "PIXTYPE": "HEALPIX"})
        paths[ordering] = tmp_path / f"{ordering}.fits"
        table.write(paths[ordering])
    nested, ringed = SkyMap.read(paths["NESTED"]), SkyMap.read(paths["RING"])
    assert np.array_equal(nested.uniq, ringed.uniq)
    np.testing.assert_allclose(nested.probdensity, ringed.probdensity, rtol=1e-12)
    assert not nested.has_distance


def test_bad_sky_maps_are_refused_clearly(tmp_path):
    def write(table, name, gzipped=False):
        buffer = io.BytesIO()
        table.write(buffer, format="fits")
        data = gzip.compress(buffer.getvalue()) if gzipped else buffer.getvalue()
        (tmp_path / name).write_bytes(data)
        return tmp_path / name

    good = SkyMap.read(skymap_file(SKYMAPS[1]))
    cases = [
        (Table({"UNIQ": good.uniq, "DENSITY": good.probdensity}), "needs UNIQ and PROBDENSITY"),
        (Table({"UNIQ": good.uniq, "PROBDENSITY": good.probdensity * 1.5}),
         "the probabilities sum to 1.5, not 1"),
        (Table({"UNIQ": good.uniq, "PROBDENSITY": -good.probdensity}),
         "have a negative or non-finite probability density"),
        (Table({"PROB": np.full(100, 0.01)}), "100 pixels is not a HEALPix map"),
        (Table({"SIGNAL": np.full(48, 1 / 48)}),
         "is not an LVK sky map: it has no UNIQ and PROBDENSITY columns \\(multi-order\\) "
         "or PROB column \\(flat\\); its columns are SIGNAL"),
    ]
    for i, (table, message) in enumerate(cases):
        path = write(table, f"bad{i}.fits.gz", gzipped=bool(i % 2))
        with pytest.raises(ValueError, match=message):
            SkyMap.read(path)
    with pytest.raises(ValueError, match="is not a readable FITS file"):
        SkyMap.read(b"SIMPLE  = nonsense")
    fits.PrimaryHDU().writeto(tmp_path / "image.fits")
    with pytest.raises(ValueError, match="no table extension"):
        SkyMap.read(tmp_path / "image.fits")


def test_region_rows_in_batches_equal_the_whole_answer():
    """Batches cut anywhere (inside spans, across them, past the end) put back together are
    the whole answer, in pixel order or ranked; ranking needs what it ranks by."""
    import dataclasses

    import pyarrow as pa

    from conftest import random_sky_table
    from xmatch import SkyIndex
    from xmatch.index.sky_index import RegionRows
    from xmatch.sky.regions import Moc, SkyMapRegion

    table = random_sky_table(60_000, seed=8)
    rng = np.random.default_rng(9)
    table = table.append_column("dist", pa.array(rng.uniform(5, 300, len(table))))
    index = SkyIndex.from_table(table)
    skymap = read_skymap(skymap_file(SKYMAPS[2]))
    moc = random_moc(3).union(skymap.credible_region(0.99))
    for kind in ("moc", "skymap", "ranked"):
        region = SkyMapRegion(skymap, 0.99) if kind != "moc" else Moc.of(moc)
        rows = RegionRows(dataclasses.replace(index, distance_column="dist"), region,
                          ["id", "dist"], rank_by="probdensity_vol" if kind == "ranked" else None)
        whole = rows.take(0, rows.total)
        assert rows.total > 100
        cuts = np.unique(np.r_[0, rng.integers(0, rows.total, 12), rows.total])
        pieces = [rows.take(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        assert pa.concat_tables(pieces).equals(whole), kind
        assert rows.take(rows.total, rows.total + 10).num_rows == 0
        if kind == "ranked":
            assert np.all(np.diff(whole["probdensity_vol"].to_numpy()) <= 0)
        else:
            inside = (moc if kind == "moc" else skymap.credible_region(0.99)).contains_lonlat(
                table["ra"].to_numpy() * u.deg, table["dec"].to_numpy() * u.deg)
            np.testing.assert_array_equal(np.sort(whole["id"].to_numpy()),
                                          table["id"].to_numpy()[inside])
    with pytest.raises(ValueError, match="the catalog has no distance column"):
        RegionRows(index, SkyMapRegion(skymap, 0.9), ["id"], rank_by="probdensity_vol")
    with pytest.raises(ValueError, match="ranking needs a sky map"):
        RegionRows(index, Moc.of(moc), ["id"], rank_by="probdensity")
