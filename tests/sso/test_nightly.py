"""Nightly ephemeris caches, in process: built from real MPC orbits (a fixed subset of the
2019 NEA file and of the 2025 MPCORB excerpt) and from hand-made orbits at the poles and
across RA 0/360; every answer checked against the direct two-body computation with the
exact observer, over every object. Also the night's window, errors, failed builds, and the
``xmatch sso`` command line."""

from __future__ import annotations

import csv
import gzip
import io

import astropy.units as u
import healpy
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from astropy.coordinates import offset_by
from astropy.time import Time

from conftest import shared_file
from sso.conftest import (
    MPC_CACHE,
    NEA_CACHE,
    NEA_NIGHT,
    NEA_SITE,
    NIGHT_CONVENTION,
    designations,
    direct_places,
    separation_arcsec,
    unit_to_radec,
)
from xmatch import DataDirectory, LoadOptions, open_catalog
from xmatch.cli import main
from xmatch.kernels.orbits import GM_SUN, apparent
from xmatch.sso import nightly
from xmatch.sso.ephemeris import PLACE_SCHEMA, positions
from xmatch.sso.nightly import NightIndex, build_night, find_cache, night_window
from xmatch.sso.observers import observatory, observer_posvel, sun_posvel
from xmatch.store import paths
from xmatch.timescales import utc_iso

#: The cache must reproduce the direct computation to this (the acceptance criterion).
TOLERANCE_ARCSEC = 0.1
#: Objects closer than this to a cone's edge may fall either side (the cache's observer is
#: a Chebyshev series, exact to ~1e-8 arcsec): the brute force leaves them undecided.
EDGE_ARCSEC = 1e-4
SECOND = 1.0 / 86400.0
#: HEALPix order of the cache's track index: the pixel edges where misses would happen.
TRACK_NSIDE = 2 ** nightly.TRACK_ORDER


def instants(index: NightIndex, n_random: int, seed: int) -> list[float]:
    """The night's very start and end, and random instants in between (fixed seed)."""
    night = index.night
    rng = np.random.default_rng(seed)
    return [night.start_tdb, night.end_tdb, *rng.uniform(night.start_tdb, night.end_tdb,
                                                         n_random)]


# ----------------------------------------------------------- 1. the direct computation


@pytest.mark.parametrize("which", ["nea", "mpcorb", "poles"])
def test_cache_reproduces_direct_two_body_at_every_instant(indexes, which):
    index = indexes[which]
    names = designations(index)
    n = len(names)
    assert n == {"nea": 2006, "mpcorb": 447, "poles": 7}[which]
    rng = np.random.default_rng(7)
    worst = 0.0
    for t in instants(index, 5, seed=3):
        ra, dec = direct_places(index, t)
        # A 1-arcsec cone around every object's direct place: the object must be in it,
        # once, at the direct place.
        offsets, table = index.cones(ra, dec, 1.0, t)
        query = table.column("query_index").to_numpy()
        found = table.column("designation").to_numpy(zero_copy_only=False)
        own = found == names[query]
        np.testing.assert_array_equal(np.bincount(query[own], minlength=n), np.ones(n))
        got_ra = table.column("ra_deg").to_numpy()[own]
        got_dec = table.column("dec_deg").to_numpy()[own]
        separation = separation_arcsec(got_ra, got_dec, ra[query[own]], dec[query[own]])
        worst = max(worst, separation.max())
        np.testing.assert_allclose(table.column("separation_arcsec").to_numpy()[own],
                                   separation, atol=1e-6)
        # The one-cone path gives the same places.
        for k in rng.choice(n, min(n, 15), replace=False):
            one = index.cone(ra[k], dec[k], 1.0, t)
            mine = one.filter(pc.equal(one.column("designation"), names[k]))
            assert mine.num_rows == 1
            assert separation_arcsec(mine["ra_deg"][0].as_py(), mine["dec_deg"][0].as_py(),
                                     ra[k], dec[k]) <= TOLERANCE_ARCSEC
    assert worst <= TOLERANCE_ARCSEC


def test_reference_states_agree_with_two_body_from_the_elements_near_their_epoch(
        mpc_orbits, mpc_index):
    """Within a day of the MPCORB epoch, the planets move a main-belt object by
    milliarcseconds: the n-body reference states are in the elements' frame and time
    scale, and the cache's places agree with two-body straight from the elements."""
    names = designations(mpc_index)
    position = {name: i for i, name in enumerate(names)}
    for t in instants(mpc_index, 2, seed=5):
        direct = positions(mpc_orbits, t, "X05", scale="tdb")
        rows = np.array([position[d] for d in direct["designation"].to_pylist()])
        ra, dec = direct_places(mpc_index, t)
        separation = separation_arcsec(direct["ra_deg"].to_numpy(),
                                       direct["dec_deg"].to_numpy(), ra[rows], dec[rows])
        assert separation.max() < 0.05


# ------------------------------------------------------------- 2. no misses anywhere


def assert_cones_equal_brute_force(index: NightIndex, t: float, ra_c, dec_c, radius
                                   ) -> int:
    """Every cone's designations equal the brute force over all objects (direct places,
    separation <= radius); the one-cone path agrees with the batch. Returns the number of
    (cone, object) matches, so callers can tell the cones were not all empty."""
    ra_c, dec_c, radius = (np.asarray(v, np.float64) for v in (ra_c, dec_c, radius))
    names = designations(index)
    number = {name: i for i, name in enumerate(names)}
    ra, dec = direct_places(index, t)
    offsets, table = index.cones(ra_c, dec_c, radius, t)
    found = table.column("designation").to_numpy(zero_copy_only=False)
    query = table.column("query_index").to_numpy()
    np.testing.assert_array_equal(query, np.repeat(np.arange(len(ra_c)), np.diff(offsets)))
    objects = np.array([number[name] for name in found], dtype=np.int64)
    separation = separation_arcsec(ra_c[:, None], dec_c[:, None], ra[None, :], dec[None, :])
    got = np.zeros(separation.shape, np.int64)
    np.add.at(got, (query, objects), 1)
    assert got.max(initial=0) <= 1, "an object found twice by one cone"
    missed = (separation <= radius[:, None] - EDGE_ARCSEC) & (got == 0)
    extra = (separation > radius[:, None] + EDGE_ARCSEC) & (got == 1)
    for what, wrong in (("missed", missed), ("extra", extra)):
        if wrong.any():
            q, k = np.argwhere(wrong)[0]
            pytest.fail(f"{what} {names[k]} at {separation[q, k]:.6f} arcsec from cone {q} "
                        f"({ra_c[q]}, {dec_c[q]}) of radius {radius[q]} arcsec at "
                        f"{utc_iso(t)} UTC ({wrong.sum()} such)")
    np.testing.assert_allclose(table.column("separation_arcsec").to_numpy(),
                               separation[query, objects], atol=1e-3)
    for q in range(0, len(ra_c), max(1, len(ra_c) // 25)):
        one = index.cone(ra_c[q], dec_c[q], radius[q], t)
        assert one.column("designation").to_pylist() == list(found[offsets[q]:offsets[q + 1]])
    return len(table)


def boundary_cones(rng, ra, dec, objects):
    """Cones centred on the corners and edge midpoints of the track-order pixel of each
    object and of one of its neighbours, with radii just reaching past the object, just
    short of it, and random (1 arcsec to 0.5 deg)."""
    centres_ra, centres_dec, radii = [], [], []
    for k in objects:
        pixel = healpy.ang2pix(TRACK_NSIDE, ra[k], dec[k], nest=True, lonlat=True)
        neighbours = healpy.get_all_neighbours(TRACK_NSIDE, pixel, nest=True)
        neighbours = neighbours[neighbours >= 0]
        for p in (pixel, rng.choice(neighbours)):
            vectors = healpy.boundaries(TRACK_NSIDE, int(p), step=2, nest=True)
            lon, lat = healpy.vec2ang(vectors.T, lonlat=True)
            reach = separation_arcsec(lon, lat, ra[k], dec[k])
            for c_ra, c_dec, d in zip(lon, lat, reach, strict=True):
                for r in (d * (1 + 1e-3), d * (1 - 1e-3), 10 ** rng.uniform(0, np.log10(1800))):
                    if 1.0 <= r <= 1800.0:
                        centres_ra.append(c_ra)
                        centres_dec.append(c_dec)
                        radii.append(r)
    return centres_ra, centres_dec, radii


@pytest.mark.parametrize("which", ["nea", "mpcorb", "poles"])
def test_cones_at_pixel_edges_find_exactly_the_brute_force_set(indexes, which):
    index = indexes[which]
    n = len(index)
    rng = np.random.default_rng(11)
    matches = 0
    for t in instants(index, 1, seed=13):
        ra, dec = direct_places(index, t)
        # Random centres near random objects, radii 1 arcsec to 0.5 deg.
        k = rng.choice(n, 150)
        radius = 10 ** rng.uniform(0, np.log10(1800), len(k))
        lon, lat = offset_by(np.radians(ra[k]), np.radians(dec[k]),
                             rng.uniform(0, 2 * np.pi, len(k)),
                             np.radians(rng.uniform(0, 1.5, len(k)) * radius / 3600))
        c_ra, c_dec = list(np.degrees(lon.rad) % 360), list(np.degrees(lat.rad))
        edge_ra, edge_dec, edge_radius = boundary_cones(rng, ra, dec,
                                                        rng.choice(n, min(n, 40), replace=False))
        matches += assert_cones_equal_brute_force(
            index, t, c_ra + edge_ra, c_dec + edge_dec, list(radius) + edge_radius)
    assert matches > 1_000 if which != "poles" else matches > 100


@pytest.mark.parametrize("which", ["nea", "mpcorb", "poles"])
def test_objects_are_found_as_they_cross_pixel_edges(indexes, which):
    """Every object, every 4 minutes of the night: wherever it passes from one track-order
    pixel to another, a 1-arcsec cone at its direct place finds it on both sides."""
    index = indexes[which]
    night = index.night
    site = observatory(night.observatory)
    times = np.linspace(night.start_tdb, night.end_tdb, 24 * 15 + 1)
    observer, observer_velocity = observer_posvel(site, times)
    sun, sun_velocity = sun_posvel(times)
    ra = np.empty((len(times), len(index)))
    dec = np.empty_like(ra)
    for j, t in enumerate(times):
        places = apparent(index.states, night.reference_tdb, t, observer[j],
                          observer_velocity[j], sun[j], sun_velocity[j], GM_SUN)
        ra[j], dec[j] = unit_to_radec(places)
    pixel = healpy.ang2pix(TRACK_NSIDE, ra, dec, nest=True, lonlat=True)
    step, k = np.nonzero(pixel[1:] != pixel[:-1])  # k crosses between step and step + 1
    assert len(k) > {"nea": 1_000, "mpcorb": 50, "poles": 80}[which]
    when = np.concatenate([step, step + 1])
    objects = np.concatenate([k, k])
    offsets, table = index.cones(ra[when, objects], dec[when, objects], 1.0, times[when])
    query = table.column("query_index").to_numpy()
    found = table.column("designation").to_numpy(zero_copy_only=False)
    own = found == designations(index)[objects[query]]
    hits = np.bincount(query[own], minlength=len(when))
    missed = np.flatnonzero(hits != 1)
    assert not len(missed), (
        f"{len(missed)} of {len(when)} edge crossings missed, e.g. "
        f"{designations(index)[objects[missed[0]]]} at {utc_iso(times[when[missed[0]]])}")


@pytest.mark.parametrize("which", ["nea", "poles"])
def test_cones_across_ra_zero(indexes, which):
    """Objects within 1.5 deg of RA 0/360 (the data has them; the hand-made ones cross it
    during the night), in cones centred on the other side of it."""
    index = indexes[which]
    crossings = 0
    for t in instants(index, 2, seed=17):
        ra, dec = direct_places(index, t)
        near = np.flatnonzero((ra < 1.5) | (ra > 358.5))
        assert len(near) >= 2
        c_ra, c_dec, radius = [], [], []
        for k in near:
            centre = 0.01 if ra[k] > 180 else 359.99
            reach = separation_arcsec(centre, dec[k], ra[k], dec[k])
            for r in (reach + 5, reach - 5, reach * 1.5, 1800.0):
                if 1.0 <= r <= 1800.0:
                    c_ra.append(centre)
                    c_dec.append(dec[k])
                    radius.append(r)
                    crossings += bool(r >= reach)
        assert_cones_equal_brute_force(index, t, c_ra, c_dec, radius)
    assert crossings >= 8


@pytest.mark.parametrize("which", ["nea", "poles"])
def test_cones_at_the_poles_and_high_declination(indexes, which):
    index = indexes[which]
    rng = np.random.default_rng(19)
    for t in instants(index, 2, seed=23):
        ra, dec = direct_places(index, t)
        high = np.flatnonzero(np.abs(dec) > 75.0)
        assert len(high) >= 2  # NEA: -82.6 and +78.1 deg this night
        c_ra, c_dec, radius = [], [], []
        for pole in (90.0, -90.0):
            for centre_ra in (0.0, 123.4):
                for r in (1.0, 60.0, 600.0, 1800.0):
                    c_ra.append(centre_ra)
                    c_dec.append(pole)
                    radius.append(r)
        for k in high:  # cones around each high object, and centred on its meridian's pole
            for r in (2.0, 300.0, 1800.0):
                lon, lat = offset_by(np.radians(ra[k]), np.radians(dec[k]),
                                     rng.uniform(0, 2 * np.pi), np.radians(0.8 * r / 3600))
                c_ra.append(np.degrees(lon.rad) % 360)
                c_dec.append(np.degrees(lat.rad))
                radius.append(r)
            reach = separation_arcsec(ra[k], np.sign(dec[k]) * 90.0, ra[k], dec[k])
            if reach < 1799:
                c_ra.append(ra[k])
                c_dec.append(np.sign(dec[k]) * 90.0)
                radius.append(reach + 1)
        assert assert_cones_equal_brute_force(index, t, c_ra, c_dec, radius) >= len(high)


# --------------------------------------------------------------------- 3. the night


@pytest.mark.parametrize("site, date, local_noon_utc", [
    # Palomar: 243.14022 deg E = -116.85978 deg = -7.790652 h: local mean noon is
    # 12 h + 7 h 47 min 26.35 s UTC.
    ("I41", "2019-07-05", "2019-07-05T19:47:26.347"),
    # Cerro Pachon: 289.25058 deg E = -70.74942 deg = -4.716628 h: 16 h 42 min 59.86 s UTC.
    ("X05", "2025-11-21", "2025-11-21T16:42:59.861"),
])
def test_the_night_runs_from_local_noon_to_local_noon(site, date, local_noon_utc):
    night = night_window(date, observatory(site), "local")
    noon = Time(local_noon_utc, scale="utc")
    start, end = Time(night.start_utc, scale="utc"), Time(night.end_utc, scale="utc")
    assert abs((start - noon).sec) < 1.0
    assert abs((end - noon).sec - 86400.0) < 1.0
    assert night.start_tdb == pytest.approx(start.tdb.mjd, abs=1e-6 * SECOND)
    assert night.end_tdb == pytest.approx(end.tdb.mjd, abs=1e-6 * SECOND)
    assert night.start_tdb < night.reference_tdb < night.end_tdb
    assert (night.date, night.observatory) == (date, site)
    night.check([night.start_tdb, night.reference_tdb, night.end_tdb])
    # The local evening belongs to this night, the local morning before noon to the last.
    night.check((noon + 9 * u.hour).tdb.mjd)
    with pytest.raises(ValueError, match=fr"outside the night {date} \(local date at its start\) "
                                         f"at {site}"):
        night.check((noon - 1 * u.hour).tdb.mjd)
    with pytest.raises(ValueError, match=fr"outside the night {date} \(local date at its start\) "
                                         f"at {site}"):
        night.check((noon + 25 * u.hour).tdb.mjd)


def test_the_cache_knows_its_night(nea_index, mpc_index):
    assert nea_index.night == night_window(NEA_NIGHT, observatory(NEA_SITE), NIGHT_CONVENTION)
    assert (mpc_index.night.date, mpc_index.night.observatory) == ("2025-11-21", "X05")
    assert nea_index.name == NEA_CACHE and mpc_index.name == MPC_CACHE


def test_times_outside_the_night_raise_naming_it(nea_index, sso_data):
    night = nea_index.night
    message = (fr"outside the night 2019-07-05 \(local date at its start\) at I41 of "
               f"{NEA_CACHE}, which runs from 2019-07-05T19:47:26 to 2019-07-06T19:47:26 UTC")
    for t in (night.start_tdb - SECOND, night.end_tdb + SECOND, night.start_tdb - 3.0):
        with pytest.raises(ValueError, match=message):
            nea_index.cone(10.0, 0.0, 30.0, t)
    with pytest.raises(ValueError, match=r"\(position 2\) is outside the night 2019-07-05"):
        nea_index.cones([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], 30.0,
                        [night.start_tdb, night.end_tdb, night.end_tdb + SECOND])
    # Exactly the ends are inside: an object is found where it is then.
    for t in (night.start_tdb, night.end_tdb):
        ra, dec = direct_places(nea_index, t)
        found = nea_index.cone(float(ra[7]), float(dec[7]), 1.0, t)
        assert found["designation"].to_pylist()[:1] == \
            [nea_index.objects["designation"][7].as_py()]
    # Finding the cache of an instant.
    assert find_cache(sso_data, night.reference_tdb, "i41").name == NEA_CACHE
    assert find_cache(sso_data, night.reference_tdb, name=NEA_CACHE).name == NEA_CACHE
    with pytest.raises(ValueError, match=f"no ephemeris cache of observatory I41 covers "
                                         f".*caches of I41: {NEA_CACHE}"):
        find_cache(sso_data, night.end_tdb + SECOND, "I41")
    with pytest.raises(ValueError,
                       match=r"outside the night 2025-11-21 \(local date at its start\) at X05"):
        find_cache(sso_data, night.reference_tdb, name=MPC_CACHE)
    with pytest.raises(ValueError, match="stars is not a solar-system ephemeris cache"):
        find_cache(sso_data, night.reference_tdb, name="stars")
    with pytest.raises(ValueError, match="caches of X05: none"):
        find_cache(DataDirectory(sso_data.root.parent / "nothing"), night.reference_tdb, "X05")


@pytest.mark.parametrize("night, message", [
    ("2019-7-5", "night '2019-7-5' is not a date YYYY-MM-DD"),
    ("2019-02-30", "night '2019-02-30' is not a valid date"),
])
def test_a_bad_night_is_refused(nea_orbits, tmp_path, night, message):
    with pytest.raises(ValueError, match=message):
        build_night(nea_orbits.slice(0, 3), night, "I41", data=tmp_path)
    with pytest.raises(ValueError, match="has no fixed site"):
        build_night(nea_orbits.slice(0, 3), "2019-07-05", "C51", data=tmp_path)
    assert DataDirectory(tmp_path).names() == []


# ----------------------------------------------------------- 6. failed builds


def test_a_failed_build_leaves_nothing_visible(nea_orbits, tmp_path, monkeypatch):
    data = DataDirectory(tmp_path / "data")
    orbits = nea_orbits.slice(0, 40)
    first = build_night(orbits, NEA_NIGHT, NEA_SITE, data=data, name="sso_kept",
                        options=LoadOptions(workers=1, progress=False),
                        night_convention=NIGHT_CONVENTION)
    before = NightIndex.from_catalog(first)
    t = before.night.reference_tdb
    ra, dec = direct_places(before, t)
    answer = before.cone(ra[0], dec[0], 1800.0, t)
    listing = sorted(p.name for p in data.root.iterdir())

    def unchanged():
        assert data.names() == ["sso_kept"]
        assert sorted(p.name for p in data.root.iterdir()) == listing
        staging = data.root / paths.STAGING_DIR
        assert not staging.exists() or not any(staging.iterdir())
        kept = open_catalog("sso_kept", data)
        assert kept.num_rows == first.num_rows
        assert NightIndex.from_catalog(kept).cone(ra[0], dec[0], 1800.0, t).equals(answer)

    # The n-body propagation fails: nothing reaches the store.
    def failing_propagation(*args, **kwargs):
        raise RuntimeError("propagation failed")

    with monkeypatch.context() as patch:
        patch.setattr(nightly, "propagate_states", failing_propagation)
        for name in ("sso_kept", None):
            with pytest.raises(RuntimeError, match="propagation failed"):
                build_night(nea_orbits.slice(0, 80), NEA_NIGHT, NEA_SITE, data=data,
                            name=name, options=LoadOptions(workers=1, progress=False),
                            night_convention=NIGHT_CONVENTION)
    unchanged()

    # The store's writer fails half way through the rows.
    real_chunks = nightly.NightRowsLoader.chunks

    def failing_chunks(self, source, spec, chunk_rows):
        for i, chunk in enumerate(real_chunks(self, source, spec, chunk_rows)):
            if i == 1:
                raise OSError("disk full")
            yield chunk

    with monkeypatch.context() as patch:
        patch.setattr(nightly.NightRowsLoader, "chunks", failing_chunks)
        for name in ("sso_kept", None):
            with pytest.raises(OSError, match="disk full"):
                build_night(nea_orbits.slice(0, 80), NEA_NIGHT, NEA_SITE, data=data,
                            name=name, options=LoadOptions(workers=1, progress=False,
                                                           chunk_rows=20),
                            night_convention=NIGHT_CONVENTION)
    unchanged()

    # And a build that succeeds replaces the kept version.
    build_night(nea_orbits.slice(0, 80), NEA_NIGHT, NEA_SITE, data=data, name="sso_kept",
                options=LoadOptions(workers=1, progress=False),
                night_convention=NIGHT_CONVENTION)
    assert len(NightIndex.from_catalog(open_catalog("sso_kept", data))) == 80


# ------------------------------------------------------- 7. empty and single answers


def test_empty_cones_and_empty_sky(nea_index):
    t = nea_index.night.reference_tdb
    offsets, table = nea_index.cones(np.empty(0), np.empty(0), np.empty(0), t)
    np.testing.assert_array_equal(offsets, [0])
    assert table.num_rows == 0
    assert table.column_names[0] == "query_index"
    assert set(PLACE_SCHEMA.names) <= set(table.column_names)
    # Somewhere no object is within a degree.
    ra, dec = direct_places(nea_index, t)
    rng = np.random.default_rng(29)
    c_ra, c_dec = rng.uniform(0, 360, 200), np.degrees(np.arcsin(rng.uniform(-1, 1, 200)))
    nearest = separation_arcsec(c_ra[:, None], c_dec[:, None], ra, dec).min(axis=1)
    empty = np.flatnonzero(nearest > 3600)
    assert len(empty) > 10
    answer = nea_index.cone(c_ra[empty[0]], c_dec[empty[0]], 1800.0, t)
    assert answer.num_rows == 0
    full = nea_index.cone(ra[0], dec[0], 1.0, t)
    assert answer.schema == full.schema and full.num_rows == 1
    offsets, table = nea_index.cones(c_ra[empty], c_dec[empty], 1800.0, t)
    np.testing.assert_array_equal(offsets, np.zeros(len(empty) + 1))
    assert table.num_rows == 0
    # A zero radius is allowed, and finds nothing away from objects.
    assert nea_index.cone(c_ra[empty[0]], c_dec[empty[0]], 0.0, t).num_rows == 0


def test_an_orbit_table_of_one_object(nea_orbits, tmp_path):
    eros = nea_orbits.slice(0, 1)
    assert eros["name"][0].as_py() == "(433) Eros"
    catalog = build_night(eros, NEA_NIGHT, NEA_SITE, data=tmp_path,
                          options=LoadOptions(workers=1, progress=False),
                          night_convention=NIGHT_CONVENTION)
    assert catalog.name == NEA_CACHE
    index = NightIndex.from_catalog(catalog)
    assert len(index) == 1
    for t in instants(index, 3, seed=31):
        ra, dec = direct_places(index, t)
        answer = index.cone(ra[0], dec[0], 1.0, t)
        assert answer["designation"].to_pylist() == ["00433"]
        assert answer["name"].to_pylist() == ["(433) Eros"]
        assert answer["separation_arcsec"][0].as_py() <= TOLERANCE_ARCSEC
        # Three days from the elements' epoch, two-body from them is within an arcsecond.
        direct = positions(eros, t, "I41", scale="tdb")
        assert separation_arcsec(direct["ra_deg"][0].as_py(), direct["dec_deg"][0].as_py(),
                                 ra[0], dec[0]) < 1.0
        assert index.cone((ra[0] + 180) % 360, -dec[0], 1800.0, t).num_rows == 0


def test_an_object_given_twice_is_kept_once_from_its_first_orbit(nea_orbits, tmp_path):
    """Eros in two files (the second orbit shifted by a day of mean anomaly, so it would be
    found elsewhere): the cache holds one Eros, where the first orbit puts it."""
    eros = nea_orbits.slice(0, 1)
    moved = eros.set_column(eros.schema.get_field_index("tp_mjd_tt"),
                            eros.schema.field("tp_mjd_tt"), pc.add(eros["tp_mjd_tt"], 1.0))
    orbits = pa.concat_tables([eros, nea_orbits.slice(1, 3), moved])
    catalog = build_night(orbits, NEA_NIGHT, NEA_SITE, data=tmp_path,
                          options=LoadOptions(workers=1, progress=False),
                          night_convention=NIGHT_CONVENTION)
    assert catalog.spec.loader_options["repeated_orbits_dropped"] == 1
    index = NightIndex.from_catalog(catalog)
    assert sorted(designations(index)) == sorted(nea_orbits["designation"][:4].to_pylist())
    t = index.night.reference_tdb
    first = positions(eros, t, "I41", scale="tdb")
    found = index.cone(first["ra_deg"][0].as_py(), first["dec_deg"][0].as_py(), 60.0, t)
    assert found["designation"].to_pylist() == ["00433"]


def test_an_orbit_epoch_outside_de421_is_refused_by_name(nea_orbits, tmp_path):
    ancient = nea_orbits.slice(0, 3)
    epochs = ancient["epoch_mjd_tt"].to_numpy().copy()
    epochs[1] = 10_000.0  # 1886
    ancient = ancient.set_column(ancient.schema.get_field_index("epoch_mjd_tt"),
                                 ancient.schema.field("epoch_mjd_tt"), pa.array(epochs))
    name = ancient["designation"][1].as_py()
    with pytest.raises(ValueError, match=rf"orbit {name} \(row 1\): epoch MJD 10000 TT is "
                                         "outside 14864 to 71184, the span of DE421"):
        build_night(ancient, NEA_NIGHT, NEA_SITE, data=tmp_path)
    assert DataDirectory(tmp_path).names() == []


def test_no_orbits_is_refused(nea_orbits, tmp_path):
    with pytest.raises(ValueError, match="no orbits in orbits: nothing to build"):
        build_night(nea_orbits.slice(0, 0), NEA_NIGHT, NEA_SITE, data=tmp_path)
    assert DataDirectory(tmp_path).names() == []


# ---------------------------------------------------------------- 5. command line


def nea_lines(n: int) -> list[str]:
    with gzip.open(shared_file("sso/NEA.txt.gz"), "rt") as f:
        return [next(f) for _ in range(n)]


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_cli_builds_a_night_and_finds_an_object(tmp_path, capsys):
    orbits = tmp_path / "nea_small.txt"
    orbits.write_text("".join(nea_lines(30)))
    data = tmp_path / "data"
    code, out, err = run(capsys, "sso", "build", "--orbits", orbits, "--night", NEA_NIGHT,
                         "--observatory", "i41", "--night-convention", NIGHT_CONVENTION,
                         "--data", data, "--no-progress")
    assert code == 0, err
    assert out.startswith(f"{NEA_CACHE}: 30 objects, night 2019-07-05 (local date at its "
                          "start) at I41: 2019-07-05T19:47 to 2019-07-06T19:47 UTC; ")
    index = NightIndex.from_catalog(open_catalog(NEA_CACHE, DataDirectory(data)))
    assert len(index) == 30
    when = "2019-07-06T06:30:00"
    t = Time(when, scale="utc").tdb.mjd
    ra, dec = direct_places(index, t)
    k = int(np.flatnonzero(designations(index) == "00433")[0])
    code, out, err = run(capsys, "sso", "cone", ra[k] + 0.002, dec[k], "--radius", "30arcsec",
                         "--time", when, "--observatory", "I41", "--data", data,
                         "--format", "csv")
    assert code == 0, err
    rows = read_csv(out)
    assert [(r["designation"], r["name"]) for r in rows] == [("00433", "(433) Eros")]
    assert separation_arcsec(float(rows[0]["ra_deg"]), float(rows[0]["dec_deg"]), ra[k],
                             dec[k]) <= TOLERANCE_ARCSEC
    # The same instant as a TDB MJD, the cache by name, a limit.
    code, out, err = run(capsys, "sso", "cone", ra[k], dec[k], "--radius", "2deg",
                         "--time", repr(float(t)), "--scale", "tdb", "--catalog", NEA_CACHE,
                         "--limit", "1", "--data", data, "--format", "csv")
    assert code == 0, err
    assert [r["designation"] for r in read_csv(out)] == ["00433"]
    # Outside the night: exit code 2 and the night named.
    code, out, err = run(capsys, "sso", "cone", ra[k], dec[k], "--radius", "30arcsec",
                         "--time", "2019-07-08T06:00:00", "--observatory", "I41",
                         "--data", data)
    assert code == 2
    assert "no ephemeris cache of observatory I41 covers 2019-07-08T06:00:00" in err


def test_cli_malformed_orbit_file_names_the_line(tmp_path, capsys):
    lines = nea_lines(8)
    line = lines[4]
    lines[4] = line[:70] + "0.2x27385" + line[79:]  # eccentricity, columns 71-79
    orbits = tmp_path / "broken.txt"
    orbits.write_text("".join(lines))
    data = tmp_path / "data"
    code, out, err = run(capsys, "sso", "build", "--orbits", orbits, "--night", NEA_NIGHT,
                         "--observatory", "I41", "--data", data, "--no-progress")
    assert code == 2
    assert "broken.txt line 5" in err and "field 'e' (columns 71-79)" in err, err
    assert "'0.2x27385'" in err
    assert DataDirectory(data).names() == []


def test_cli_help(capsys):
    for args, expected in ((["--help"], "sso"), (["sso", "--help"], "build"),
                           (["sso", "build", "--help"], "--orbits"),
                           (["sso", "cone", "--help"], "--observatory")):
        assert main(args) == 0
        assert expected in capsys.readouterr().out
    assert main(["sso", "cone", "1", "2"]) == 2  # --radius and --time are required
    assert "--radius" in capsys.readouterr().err
    for limit in ("0", "-3", "two"):
        assert main(["sso", "cone", "1", "2", "--radius", "1arcsec", "--time", "2019-07-06",
                     "--observatory", "I41", "--limit", limit]) == 2
        assert "argument --limit" in capsys.readouterr().err
