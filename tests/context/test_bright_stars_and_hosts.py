"""Bright-star halos against a brute-force astropy reference over the real Hipparcos and
Gaia DR3 subset; host galaxies by directional light radius against a brute-force astropy
reference over the real CLU galaxy shapes and the large nearby galaxies (M31, M33, the
Magellanic Clouds) that fixed-radius searches miss or over-associate; projected offsets
against astropy's Planck18 distances."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.cosmology import Planck18, z_at_value
from astropy.table import Table
from astropy.time import Time

from conftest import shared_file
from xmatch import CatalogSpec, SkyIndex, open_catalog
from xmatch.context.config import parse_config
from xmatch.context.engine import ContextCatalog, ContextEngine, data_context_engine

HALO = "halo = { slope = -0.2, intercept = 3.7, cap_arcsec = 1800.0 }"
STAR_RULE = '[[rule]]\nclass = "bright_star"\nlayer = "star"\n'


def around(ra, dec, radius_arcsec, n, seed):
    """Positions from 0 to ``radius_arcsec`` (one per star, or one for all) around stars."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(ra), n)
    centre = SkyCoord(ra[pick] * u.deg, dec[pick] * u.deg)
    spots = centre.directional_offset_by(rng.uniform(0, 360, n) * u.deg,
                                         rng.uniform(0, 1, n) * np.broadcast_to(
                                             radius_arcsec, len(ra))[pick] * u.arcsec)
    return spots.ra.deg, spots.dec.deg


@pytest.mark.parametrize("catalog,band,column", [("hipparcos2", "Hp", "hpmag"),
                                                 ("gaia_dr3", "G", "phot_g_mean_mag")])
def test_bright_star_halos_equal_brute_force(session_data, catalog, band, column):
    config = parse_config(f'[[layer]]\nname = "star"\nkind = "bright_star"\n'
                          f'catalog = "{catalog}"\nband = "{band}"\n{HALO}\n{STAR_RULE}')
    engine = data_context_engine(session_data, config)
    store = open_catalog(catalog, session_data)
    stars = store.read([store.spec.id, "ra", "dec", column])
    ra, dec = stars["ra"].to_numpy(), stars["dec"].to_numpy()
    mag = np.asarray(stars[column].to_numpy(zero_copy_only=False), float)
    radius = np.minimum(10 ** (-0.2 * mag + 3.7), 1800.0)
    bright = np.flatnonzero(mag < 7)
    q_ra, q_dec = around(ra[bright], dec[bright], 1.3 * radius[bright], 1500, seed=3)
    rng = np.random.default_rng(4)
    q_ra = np.r_[q_ra, rng.uniform(0, 360, 500), 0.0, 359.9999, 10.0]
    q_dec = np.r_[q_dec, np.degrees(np.arcsin(rng.uniform(-1, 1, 500))), 0.0, 0.0, 89.99]
    table = engine.context(q_ra, q_dec)          # catalog epoch: positions as stored
    # Brute force: every star within the cap (astropy's search_around_sky), then the one
    # nearest in halo units among those whose halo covers the position.
    queries = SkyCoord(q_ra * u.deg, q_dec * u.deg)
    usable = np.isfinite(mag)
    catalog_coords = SkyCoord(ra[usable] * u.deg, dec[usable] * u.deg)
    qi, si, sep, _ = search_around_sky(queries, catalog_coords, 1800 * u.arcsec)
    ratio = sep.arcsec / radius[usable][si]
    covered = ratio <= 1
    expected_count = np.bincount(qi[covered], minlength=len(q_ra))
    best = np.full(len(q_ra), np.inf)
    np.minimum.at(best, qi[covered], ratio[covered])
    ids = stars[store.spec.id].to_numpy()[usable]
    assert np.array_equal(table["star_count"].to_numpy(), expected_count)
    got = np.asarray(table["star_distance"].to_numpy(zero_copy_only=False), float)
    hit = expected_count > 0
    assert hit.sum() > 1000 and (~hit).sum() > 300
    np.testing.assert_allclose(got[hit], best[hit], rtol=1e-7)
    nearest = {}
    for q, s, value in zip(qi[covered], si[covered], ratio[covered], strict=True):
        if value == best[q]:
            nearest[q] = str(ids[s])
    assert [table["star_id"][q].as_py() for q in sorted(nearest)] == [
        nearest[q] for q in sorted(nearest)]
    assert set(table["star_state"].to_pylist()) == {"matched", "no_match"}


def test_bright_stars_move_with_their_proper_motion(session_data):
    """Barnard's star (HIP 87937, 10.4"/yr): its halo in 2025 is where astropy puts it."""
    config = parse_config(f'[[layer]]\nname = "star"\nkind = "bright_star"\n'
                          f'catalog = "hipparcos2"\nband = "Hp"\n{HALO}\n{STAR_RULE}')
    engine = data_context_engine(session_data, config)
    stars = open_catalog("hipparcos2", session_data).read()
    hip = stars.filter(pc.equal(stars["hip"], 87937)).to_pylist()[0]
    star = SkyCoord(hip["ra"] * u.deg, hip["dec"] * u.deg,
                    pm_ra_cosdec=hip["pmra"] * u.mas / u.yr, pm_dec=hip["pmdec"] * u.mas / u.yr,
                    distance=(1000 / hip["parallax"]) * u.pc, radial_velocity=0 * u.km / u.s,
                    obstime="J1991.25")
    moved = star.apply_space_motion(new_obstime=Time("J2025.0"))
    table = engine.context([moved.ra.deg], [moved.dec.deg], 2025.0)
    assert table["star_id"][0].as_py() == "87937"
    assert table["star_separation_arcsec"][0].as_py() < 0.5   # moved 350" since 1991
    # At the catalog epoch the star sits 350" away, beyond its 63" halo (Hp 9.5).
    stale = engine.context([moved.ra.deg], [moved.dec.deg])
    assert stale["star_id"][0].as_py() != "87937"


LARGE = [  # name, ra, dec, semi-major arcmin (D25 / 2), b/a, PA, distance Mpc (RC3, NED)
    ("M31", 10.6847, 41.2690, 95.3, 0.32, 35.0, 0.78),
    ("M33", 23.4621, 30.6599, 35.4, 0.59, 23.0, 0.84),
    ("LMC", 80.8938, -69.7561, 322.8, 0.85, 170.0, 0.05),
    ("SMC", 13.1867, -72.8286, 158.5, 0.59, 45.0, 0.06),
    ("bg-near-M31", 10.90, 41.60, 0.3, 0.5, 90.0, 80.0),
]


def galaxy_engine(table: pa.Table, max_dlr=5.0, fixed_kpc=None) -> ContextEngine:
    spec = CatalogSpec(name="galaxies", id="name", ra="ra", dec="dec", context={
        "purposes": ["galaxies"],
        "shape": {"semi_major": "a", "axis_ratio": "b2a", "position_angle": "pa",
                  "unit": "arcmin"},
        "distance": {"luminosity_mpc": "distmpc"}})
    layer = f"max_dlr = {max_dlr}\n" + (f"fixed_radius_kpc = {fixed_kpc}\n" if fixed_kpc
                                       else "")
    config = parse_config('[[layer]]\nname = "host"\nkind = "host_galaxy"\n'
                          f'catalog = "galaxies"\n{layer}[[rule]]\nclass = "supernova"\n'
                          'layer = "host"\n')
    found = ContextCatalog(spec, "name", None, lambda: SkyIndex.from_table(table))
    return ContextEngine(config, lambda name: found)


def brute_dlr(galaxies: pa.Table, q_ra, q_dec):
    """(n_queries, n_galaxies) directional light radii from astropy: the separation over
    the ellipse's radius ab / sqrt((b cos t)^2 + (a sin t)^2) in the query's direction."""
    centres = SkyCoord(galaxies["ra"].to_numpy() * u.deg, galaxies["dec"].to_numpy() * u.deg)
    a = galaxies["a"].to_numpy() * 60.0
    b = a * galaxies["b2a"].to_numpy()
    out = np.empty((len(q_ra), len(a)))
    for i, (r, d) in enumerate(zip(q_ra, q_dec, strict=True)):
        point = SkyCoord(r * u.deg, d * u.deg)
        sep = centres.separation(point).arcsec
        t = centres.position_angle(point).rad - np.radians(galaxies["pa"].to_numpy())
        out[i] = sep * np.sqrt((b * np.cos(t)) ** 2 + (a * np.sin(t)) ** 2) / (a * b)
    return out


def test_large_nearby_galaxies_are_hosts_by_their_shape():
    galaxies = pa.table({name: [g[i] for g in LARGE] for i, name in enumerate(
        ["name", "ra", "dec", "a", "b2a", "pa", "distmpc"])})
    m31 = SkyCoord(10.6847 * u.deg, 41.2690 * u.deg)
    spots = [m31.directional_offset_by(35 * u.deg, 80 * u.arcmin),    # along the major axis
             m31.directional_offset_by(125 * u.deg, 80 * u.arcmin),   # along the minor axis
             m31.directional_offset_by(125 * u.deg, 200 * u.arcmin),  # beyond 5 DLR
             SkyCoord(10.9 * u.deg, 41.6 * u.deg),                    # on the background one
             SkyCoord(80.8938 * u.deg, -69.7561 * u.deg).directional_offset_by(
                 0 * u.deg, 4 * u.deg),                               # 4 deg into the LMC
             SkyCoord(23.4621 * u.deg, 30.6599 * u.deg).directional_offset_by(
                 113 * u.deg, 60 * u.arcmin)]                          # off M33's minor axis
    q_ra = np.array([s.ra.deg for s in spots])
    q_dec = np.array([s.dec.deg for s in spots])
    table = galaxy_engine(galaxies).context(q_ra, q_dec)
    dlr = brute_dlr(galaxies, q_ra, q_dec)
    assert table["host_id"].to_pylist() == ["M31", "M31", None, "bg-near-M31", "LMC", "M33"]
    assert table["host_hostless"].to_pylist() == [False, False, True, False, False, False]
    for i, name in enumerate(table["host_id"].to_pylist()):
        if name is not None:
            j = [g[0] for g in LARGE].index(name)
            assert table["host_distance"][i].as_py() == pytest.approx(dlr[i, j], rel=1e-7)
            assert dlr[i, j] == pytest.approx(dlr[i][dlr[i] <= 5].min())
    assert dlr[0, 0] == pytest.approx(80 / 95.3, rel=1e-3)     # 0.84 DLR along the major axis
    assert dlr[1, 0] == pytest.approx(80 / (95.3 * 0.32), rel=1e-3)  # 2.6 along the minor
    assert dlr[2, 0] > 5
    # A galaxy without a shape, at its distance: a fixed 60 kpc circle (M31 at 0.78 Mpc:
    # 4.4 deg), so the position 200' away is its host after all.
    shapeless = galaxies.set_column(3, "a", pa.array([None] * len(LARGE), pa.float64()))
    fixed = galaxy_engine(shapeless, fixed_kpc=60.0).context(q_ra[2:3], q_dec[2:3])
    assert fixed["host_id"][0].as_py() == "M31"
    assert fixed["host_shape"][0].as_py() == "fixed_kpc"


def test_clu_galaxies_dlr_hostless_and_offsets_equal_astropy():
    clu = Table.read(shared_file("catalogs/CLU_mini.hdf5"))
    shaped = np.isfinite(clu["a"]) & np.isfinite(clu["b2a"]) & np.isfinite(clu["pa"])
    clu = clu[shaped]
    galaxies = pa.table({"name": [str(n) for n in clu["name"]],
                         "ra": np.asarray(clu["ra"], float), "dec": np.asarray(clu["dec"], float),
                         "a": np.asarray(clu["a"], float), "b2a": np.asarray(clu["b2a"], float),
                         "pa": np.asarray(clu["pa"], float),
                         "distmpc": np.asarray(clu["distmpc"], float)})
    ra, dec = galaxies["ra"].to_numpy(), galaxies["dec"].to_numpy()
    q_ra, q_dec = around(ra, dec, 6 * 60 * galaxies["a"].to_numpy(), 400, seed=9)
    table = galaxy_engine(galaxies).context(q_ra, q_dec)
    dlr = brute_dlr(galaxies, q_ra, q_dec)
    within = np.where(dlr <= 5, dlr, np.inf)
    best = within.argmin(axis=1)
    hostless = ~np.isfinite(within.min(axis=1))
    assert 40 < hostless.sum() < 360
    assert table["host_hostless"].to_pylist() == hostless.tolist()
    names = galaxies["name"].to_numpy(zero_copy_only=False)
    assert table["host_id"].to_pylist() == [None if h else names[b]
                                            for h, b in zip(hostless, best, strict=True)]
    got = np.asarray(table["host_distance"].to_numpy(zero_copy_only=False), float)
    np.testing.assert_allclose(got[~hostless], within.min(axis=1)[~hostless], rtol=1e-7)
    # Projected offsets: separation x angular-diameter distance (Planck18, z from D_L).
    rows = np.flatnonzero(~hostless)[:25]
    for i in rows:
        d_l = galaxies["distmpc"][int(best[i])].as_py() * u.Mpc
        z = z_at_value(Planck18.luminosity_distance, d_l)
        d_a = Planck18.angular_diameter_distance(z).to_value(u.kpc)
        sep = table["host_separation_arcsec"][int(i)].as_py()
        assert table["host_offset_kpc"][int(i)].as_py() == pytest.approx(
            np.radians(sep / 3600) * d_a, rel=1e-4)
    assert set(table["class"].to_pylist()) == {"supernova", "orphan"}


def test_ngc4993_hosts_at2017gfo(session_data):
    """The bundled default context on the bundled catalogs: AT 2017gfo lies 10" from the
    nucleus of NGC 4993 (GLADE), 0.38 of its directional light radius, 1.6 kpc away."""
    table = data_context_engine(session_data).context([197.450374], [-23.381483], 2017.6)
    assert table["class"][0].as_py() == "supernova"
    assert table["class_catalog"][0].as_py() == "glade_gw170817"
    assert table["host_separation_arcsec"][0].as_py() == pytest.approx(9.97, abs=0.01)
    assert table["host_distance"][0].as_py() == pytest.approx(0.382, abs=0.001)
    assert table["host_offset_kpc"][0].as_py() == pytest.approx(1.61, abs=0.01)
