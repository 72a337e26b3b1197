"""Watchmaps: MOCs in every form and the credible regions of the real LVK sky maps, the
positions inside against mocpy (``MOC.contains_lonlat``, ``from_multiordermap_fits_file``,
``from_valued_healpix_cells``) and credible levels worked out here with numpy from the FITS
columns; at the poles and across RA 0/360; from positions, from order-29 pixels and from
a sorted batch."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from mocpy import MOC

from conftest import read_skymap, skymap_file
from xmatch.errors import InputError
from xmatch.index.region_index import QueryPositions
from xmatch.sky.healpix import npix_at, pixel_centres_deg, radec_to_healpix29
from xmatch.sky.skymap import SkyMap
from xmatch.watch import Watchmap

MULTI_ORDER = ["GW190814_PublicationSamples.multiorder.fits.gz",
               "G361581_bayestar.multiorder.fits.gz"]
FLAT = "GW170817_skymap.fits.gz"


def random_moc(seed: int) -> MOC:
    """Random cells at mixed orders (0 to 29), the polar cells and cells across RA 0."""
    rng = np.random.default_rng(seed)
    orders = rng.integers(0, 30, 40)
    ipix = np.array([rng.integers(0, 12 * 4 ** int(o)) for o in orders], dtype=np.int64)
    orders = np.r_[orders, 3, 3, 8, 6]
    ipix = np.r_[ipix, 0, 12 * 4 ** 3 - 1, 4 * 4 ** 8, 5 * 4 ** 6]  # poles, RA 0 ...
    return MOC.from_healpix_cells(ipix, orders.astype(np.int64), max_depth=29)


def positions_around(moc: MOC, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions, the centre of every range's first and last order-29 pixel (just
    inside), of the pixels just outside, the poles and RA 0/360."""
    rng = np.random.default_rng(seed)
    ranges = moc.to_depth29_ranges.astype(np.int64)
    pixels = np.r_[ranges[:, 0], ranges[:, 1] - 1, ranges[:, 0] - 1, ranges[:, 1]]
    pixels = pixels[(pixels >= 0) & (pixels < npix_at(29))]
    ra, dec = pixel_centres_deg(29, pixels)
    n = 5000
    return (np.r_[ra, rng.uniform(0, 360, n), 0.0, 360.0, 359.9999999, 0.0, 180.0],
            np.r_[dec, np.degrees(np.arcsin(rng.uniform(-1, 1, n))), 0.0, 0.0, 45.0, 90.0,
                  -90.0])


@pytest.mark.parametrize("seed", range(3))
def test_every_moc_form_contains_what_mocpy_says(seed, tmp_path):
    moc = random_moc(seed)
    fits_path = tmp_path / "moc.fits"
    moc.save(fits_path, format="fits")
    text_path = tmp_path / "moc.txt"
    text_path.write_text(moc.to_string(format="ascii"))
    ra, dec = positions_around(moc, seed)
    expected = moc.contains_lonlat(ra * u.deg, dec * u.deg)
    assert 0 < expected.sum() < len(expected)
    forms = {"ascii": moc.to_string(format="ascii"), "json": moc.to_string(format="json"),
             "fits bytes": fits_path.read_bytes(), "fits path": fits_path,
             "text path": str(text_path), "mocpy": moc,
             "ranges": moc.to_depth29_ranges.astype(np.int64)}
    for form, value in forms.items():
        watchmap = Watchmap.from_moc("m", value)
        assert np.array_equal(watchmap.ranges29, moc.to_depth29_ranges), form
        assert np.array_equal(watchmap.contains(ra, dec), expected), form
    assert Watchmap.from_moc("m", fits_path).source == f"moc {fits_path}"
    assert Watchmap.from_moc("m", str(text_path)).source == f"moc {text_path}"
    assert Watchmap.from_moc("m", moc, source="my moc").source == "my moc"
    watchmap = Watchmap.from_moc("m", moc)
    assert watchmap.level is None
    assert watchmap.sky_fraction == pytest.approx(moc.sky_fraction, rel=1e-12)


def test_pixels_and_sorted_batches_agree_with_positions():
    moc = random_moc(7)
    ra, dec = positions_around(moc, 7)
    watchmap = Watchmap.from_moc("m", moc)
    inside = watchmap.contains(ra, dec)
    pixels = radec_to_healpix29(ra, dec)
    assert np.array_equal(watchmap.contains_healpix29(pixels), inside)
    assert np.array_equal(watchmap.contains_healpix29(pixels.astype(np.uint64)), inside)
    queries = QueryPositions.of(ra, dec)
    found = np.zeros(len(ra), bool)
    found[queries.by_pixel[watchmap.inside_sorted(queries.pixels)]] = True
    assert np.array_equal(found, inside)
    # Both ways of searching a sorted batch: few ranges (binary search of each range end
    # into the batch) and more ranges than pixels (of each pixel among the ranges).
    few = np.sort(pixels[:40])
    assert len(watchmap.ranges29) * 2 > len(few)
    assert np.array_equal(watchmap.inside_sorted(few),
                          np.flatnonzero(watchmap.contains_healpix29(few)))
    assert len(watchmap.ranges29) * 2 < len(queries.pixels)


def test_moc_out_and_back():
    watchmap = Watchmap.from_moc("m", "3/1-5 4/120")
    assert watchmap.max_order == 4
    moc = watchmap.moc()
    assert moc.max_order == 4
    assert moc.to_string(format="ascii").split() == ["3/1-5", "4/120"]
    assert np.array_equal(Watchmap.from_moc("n", moc).ranges29, watchmap.ranges29)
    deep = Watchmap.from_moc("d", random_moc(1))
    assert np.array_equal(deep.moc().to_depth29_ranges, deep.ranges29)


def test_an_empty_region_contains_nothing():
    watchmap = Watchmap.from_moc("empty", MOC.new_empty(5))
    assert watchmap.sky_fraction == 0.0 and len(watchmap.ranges29) == 0
    assert not watchmap.contains([0.0, 10.0], [90.0, -3.0]).any()
    assert watchmap.inside_sorted(np.arange(10, dtype=np.int64)).size == 0
    assert watchmap.moc().empty()
    assert Watchmap.from_moc("none", "0/").sky_fraction == 0.0
    assert Watchmap.from_moc("all", "0/0-11").contains([0.0], [-90.0]).all()
    assert not Watchmap.from_moc("x", "0/").contains(np.empty(0), np.empty(0)).size


def test_bad_maps_are_refused():
    with pytest.raises(InputError, match="order 30 is not allowed"):
        Watchmap.from_moc("m", "30/1")
    with pytest.raises(InputError, match="watch name = 'a b' is not allowed"):
        Watchmap.from_moc("a b", "3/1")
    with pytest.raises(InputError, match="watchmap m: MOC ranges must be sorted, disjoint"):
        Watchmap("m", np.array([[10, 20], [5, 8]]))
    watchmap = Watchmap.from_moc("m", "3/1")
    with pytest.raises(InputError, match="integer array, not float64"):
        watchmap.contains_healpix29(np.array([1.0]))
    with pytest.raises(InputError, match=r"pixel -1 \(at position 1\) is not an order-29 "
                                         "pixel"):
        watchmap.contains_healpix29(np.array([5, -1]))
    with pytest.raises(InputError, match="is not an order-29 pixel"):
        watchmap.contains_healpix29(np.array([npix_at(29)]))
    with pytest.raises(InputError, match="dec = 95.0"):
        watchmap.contains([1.0], [95.0])
    skymap = SkyMap(np.arange(4, 16), np.full(12, 1 / (4 * np.pi)))  # uniform, order 0
    assert Watchmap.from_skymap("gw", skymap, 1.0).sky_fraction == 1.0
    for level in (0.0, -0.1, 1.5, float("nan"), "0.9"):
        with pytest.raises(InputError, match=r"a credible level lies in \(0, 1\]"):
            Watchmap.from_skymap("gw", skymap, level)
    with pytest.raises(InputError, match="does not exist"):
        Watchmap.from_skymap("gw", "/no/such/map.fits", 0.9)


# ------------------------------------------------------------------------- sky maps


def credible_cells(path, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(order, pixel) of the cells of a multi-order map whose credible level (the
    probability of every cell at least as dense, itself included) is at most ``level``,
    from the FITS columns, here."""
    with fits.open(path) as hdus:
        uniq = np.asarray(hdus[1].data["UNIQ"], np.int64)
        density = np.asarray(hdus[1].data["PROBDENSITY"], np.float64)
    order = np.zeros(len(uniq), np.int64)
    while ((uniq >> (2 * (order + 1))) >= 4).any():  # 4 * 4**order <= uniq < 16 * 4**order
        order += (uniq >> (2 * (order + 1))) >= 4
    pixel = uniq - 4 * 4 ** order
    prob = density * 4 * np.pi / (12 * 4.0 ** order)
    by_density = np.lexsort((uniq, density))[::-1]  # densest first, ties as ligo.skymap
    inside = np.zeros(len(uniq), bool)
    inside[by_density] = np.cumsum(prob[by_density]) <= level
    return order[inside], pixel[inside]


def positions_in(path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions drawn from the map (most fall in its credible regions), uniform ones, the
    poles and RA 0/360."""
    rng = np.random.default_rng(seed)
    with fits.open(path) as hdus:
        uniq = np.asarray(hdus[1].data["UNIQ"], np.int64)
    import healpy

    picked = uniq[rng.choice(len(uniq), n)]
    order = np.floor(np.log2(picked / 4) / 2).astype(np.int64)
    ra, dec = healpy.pix2ang(2 ** order, picked - 4 * 4 ** order, nest=True, lonlat=True)
    ra = ra + rng.normal(0, 0.2, n)
    dec = np.clip(dec + rng.normal(0, 0.2, n), -90, 90)
    return (np.r_[ra % 360, rng.uniform(0, 360, n), 0.0, 360.0, 0.0],
            np.r_[dec, np.degrees(np.arcsin(rng.uniform(-1, 1, n))), 0.0, 90.0, -90.0])


@pytest.mark.parametrize("name", MULTI_ORDER)
def test_credible_regions_of_multi_order_maps(name):
    path = skymap_file(name)
    ra, dec = positions_in(path, 3000, seed=11)
    for level, skymap in ((0.9, path), (0.5, path.read_bytes())):
        watchmap = Watchmap.from_skymap("gw.S1", skymap, level)
        assert watchmap.level == level
        order, pixel = credible_cells(path, level)
        cells = MOC.from_healpix_cells(pixel, order, max_depth=29)
        expected = cells.contains_lonlat(ra * u.deg, dec * u.deg)
        assert 100 < expected.sum() < len(ra) - 100
        assert np.array_equal(watchmap.contains(ra, dec), expected), level
        assert np.array_equal(watchmap.ranges29, cells.to_depth29_ranges)
        # mocpy's own credible region keeps the cell that crosses the level, ours does
        # not (ligo.skymap's rule): a superset by at most a few cells.
        mocpy = MOC.from_multiordermap_fits_file(path, cumul_to=level)
        assert watchmap.moc().difference(mocpy).empty()
        assert mocpy.difference(watchmap.moc()).sky_fraction < 1e-6
    assert Watchmap.from_skymap("gw.S1", path, 0.9).source == f"skymap {path} at 0.9"
    assert Watchmap.from_skymap("gw", path.read_bytes(), 0.5).source == \
        "skymap (FITS bytes) at 0.5"


def test_credible_regions_of_a_flat_map():
    """GW170817's flat NESTED map (nside 1024): the credible level of each pixel worked out
    with numpy (mocpy's region of the valued cells agrees too, but takes a second more)."""
    import healpy

    path = skymap_file(FLAT)
    prob = np.asarray(fits.getdata(path, 1)["PROB"], np.float64)
    nside = 1024
    by_prob = np.argsort(-prob, kind="stable")
    level_of = np.empty(len(prob))
    level_of[by_prob] = np.cumsum(prob[by_prob])
    rng = np.random.default_rng(5)
    pixels = rng.choice(len(prob), 5000, p=prob / prob.sum())
    ra, dec = healpy.pix2ang(nside, pixels, nest=True, lonlat=True)
    ra = np.r_[(ra + rng.normal(0, 0.05, len(ra))) % 360, 0.0, 0.0, 360.0]
    dec = np.r_[np.clip(dec + rng.normal(0, 0.05, len(dec)), -90, 90), 90.0, -90.0, 0.0]
    skymap = read_skymap(path)
    for level in (0.5, 0.9):
        watchmap = Watchmap.from_skymap("gw170817", skymap, level)
        inside = watchmap.contains(ra, dec)
        expected = level_of[healpy.ang2pix(nside, ra, dec, nest=True, lonlat=True)] <= level
        assert np.array_equal(inside, expected), level
        assert 1000 < inside.sum() < len(ra)
    everything = Watchmap.from_skymap("all", skymap, 1.0)
    assert everything.sky_fraction == 1.0
    assert everything.contains(SkyCoord([0, 90] * u.deg, [-90, 90] * u.deg)).all()
