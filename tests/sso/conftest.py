"""Shared fixtures of the solar-system tests: nightly caches built once per session from
fixed subsets of real MPC orbits (and a few hand-made orbits at the awkward places), the
direct computation they must reproduce, and an embedded server and a router cluster over
them.

``tests/sso/__init__.py`` makes this module ``sso.conftest``: without it pytest imports it
as ``conftest`` in place of ``tests/conftest.py``, and every later ``from conftest import
...`` (here and in other directories) would find this module instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import angular_separation

from conftest import random_sky_table, running_cluster, shared_file
from xmatch import CatalogSpec, DataDirectory, LoadOptions, load_catalog, open_catalog
from xmatch.kernels.orbits import GM_SUN, apparent, state_to_elements
from xmatch.service.embedded import running_server, served_catalogs
from xmatch.service.server import Limits
from xmatch.sso.mpc.readers import ORBIT_SCHEMA, read_orbits
from xmatch.sso.nightly import NightIndex, build_night, cache_name, night_window
from xmatch.sso.observers import observatory, observer_posvel, sun_posvel

#: The NEA file's epoch is 2019-07-02: a night three days later, at ZTF.
NEA_NIGHT, NEA_SITE = "2019-07-05", "I41"
#: The MPCORB excerpt's epoch is 2025-11-21 (K25BL): that night, at Rubin.
MPC_NIGHT, MPC_SITE = "2025-11-21", "X05"
#: Both nights are named by their local date, not by their sites' survey conventions (ZTF's
#: UTC date, Rubin's dayObs): the tests were written for those windows.
NIGHT_CONVENTION = "local"
#: Every 10th NEA (2,006 objects) and every 50th MPCORB object (447): fixed subsets.
NEA_STEP, MPC_STEP = 10, 50
#: Small partitions, so a cache spans many partitions and the cluster several slices.
SMALL_PARTITIONS = LoadOptions(workers=1, progress=False, threshold_rows=400)
SSO_LIMITS = Limits(max_radius_arcsec=2 * 3600.0, max_rows=1_000)
STARS_SPEC = CatalogSpec(name="stars", id="id", ra="ra", dec="dec", threshold_rows=1_000,
                         highest_order=5)

NEA_CACHE = cache_name(NEA_NIGHT, NEA_SITE)   # sso_i41_20190705
MPC_CACHE = cache_name(MPC_NIGHT, MPC_SITE)   # sso_x05_20251121


# ------------------------------------------------------------------ direct computation


def unit_to_radec(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ra = np.degrees(np.arctan2(vectors[:, 1], vectors[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(vectors[:, 2], -1.0, 1.0)))
    return ra, dec


def direct_places(index: NightIndex, t_tdb: float) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (deg) of every object of ``index`` at ``t_tdb``: two-body from the cache's
    reference states with the exact observer and Sun (astropy/erfa and DE421), not the
    cache's Chebyshev series."""
    site = observatory(index.night.observatory)
    observer, observer_velocity = observer_posvel(site, t_tdb)
    sun, sun_velocity = sun_posvel(t_tdb)
    places = apparent(index.states, index.night.reference_tdb, t_tdb, observer[0],
                      observer_velocity[0], sun[0], sun_velocity[0], GM_SUN)
    return unit_to_radec(places)


def separation_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    """astropy's angular separation of degree arrays (broadcast), in arcsec."""
    return np.degrees(angular_separation(np.radians(ra1), np.radians(dec1),
                                         np.radians(ra2), np.radians(dec2))) * 3600.0


def designations(index: NightIndex) -> np.ndarray:
    return index.objects.column("designation").to_numpy(zero_copy_only=False)


# ------------------------------------------------------------------ orbit tables


def assert_same(table: pa.Table, other: pa.Table, ignore=("source",)) -> None:
    """Equal tables, NaN equal to NaN (arrow's ``equals`` holds NaN unequal to itself)."""
    assert table.schema == other.schema
    for name in table.column_names:
        if name in ignore:
            continue
        mine, theirs = table.column(name), other.column(name)
        if pa.types.is_floating(mine.type):
            np.testing.assert_array_equal(mine.to_numpy(), theirs.to_numpy(), err_msg=name)
        else:
            assert mine.to_pylist() == theirs.to_pylist(), name


# ------------------------------------------------------------------ hand-made orbits


def orbits_through(night_date: str, site_code: str, ra_deg, dec_deg, distance_au,
                   prefix: str = "H", speed=1.0) -> pa.Table:
    """Orbits (ORBIT_SCHEMA) of objects seen from ``site_code`` at the given places and
    distances at the reference instant of the night (circular speed times ``speed``,
    across the line to the Sun): elements from chosen states by ``state_to_elements``."""
    night = night_window(night_date, observatory(site_code), NIGHT_CONVENTION)
    t = night.reference_tdb
    observer, _ = observer_posvel(observatory(site_code), t)
    sun, _ = sun_posvel(t)
    ra, dec = np.radians(np.atleast_1d(ra_deg)), np.radians(np.atleast_1d(dec_deg))
    unit = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=1)
    position = observer[0] + np.atleast_1d(distance_au)[:, None] * unit - sun[0]
    radius = np.linalg.norm(position, axis=1)
    across = np.cross(position, np.array([0.3, 0.5, 0.8]))
    across /= np.linalg.norm(across, axis=1)[:, None]
    velocity = across * (np.sqrt(GM_SUN / radius) * np.broadcast_to(speed, radius.shape))[:, None]
    elements = state_to_elements(np.hstack([position, velocity]), t)
    n = len(ra)
    columns = {
        "designation": [f"{prefix}{i:07d}" for i in range(1, n + 1)],
        "name": [f"hand-made {i}" for i in range(1, n + 1)],
        # TT, which differs from TDB by < 2 ms: the objects move a few metres.
        "epoch_mjd_tt": np.full(n, t), **{k: v for k, v in elements.items() if k != "tp_mjd"},
        "tp_mjd_tt": elements["tp_mjd"], "h_mag": np.full(n, 18.0),
        "g_slope": np.full(n, 0.15), "comet_k": np.full(n, np.nan),
        "kind": ["asteroid"] * n, "synthetic": [True] * n, "source": ["hand-made"] * n,
    }
    return pa.table(columns, schema=ORBIT_SCHEMA)


#: Places at the reference instant of NEA_NIGHT at I41: both poles, across RA 0/360 on the
#: equator and off it, and a fast near-Earth mover that sweeps round the north pole.
POLE_PLACES = {
    "ra_deg": [0.0, 180.0, 45.0, 359.9995, 0.0005, 90.0, 300.0],
    "dec_deg": [89.995, 89.99, -89.995, 0.001, -10.0, 89.5, -89.9],
    "distance_au": [0.5, 1.2, 0.8, 0.3, 2.0, 0.05, 0.03],
    "speed": [1.0, 1.0, 1.0, 1.0, 1.0, 1.3, 1.2],
}


# ------------------------------------------------------------------------------ caches


@pytest.fixture(scope="session")
def nea_orbits() -> pa.Table:
    orbits = read_orbits(shared_file("sso/NEA.txt.gz"))
    return orbits.take(np.arange(0, orbits.num_rows, NEA_STEP))


@pytest.fixture(scope="session")
def mpc_orbits() -> pa.Table:
    orbits = read_orbits(shared_file("sso/mpcorb_excerpt_K25BL.dat.gz"))
    return orbits.take(np.arange(0, orbits.num_rows, MPC_STEP))


@pytest.fixture(scope="session")
def pole_orbits() -> pa.Table:
    return orbits_through(NEA_NIGHT, NEA_SITE, POLE_PLACES["ra_deg"], POLE_PLACES["dec_deg"],
                          POLE_PLACES["distance_au"], speed=POLE_PLACES["speed"])


@pytest.fixture(scope="session")
def sso_data(tmp_path_factory, nea_orbits, mpc_orbits) -> DataDirectory:
    """A data directory with the NEA cache (I41), the MPCORB cache (X05), both in many
    small partitions, and a plain sky catalog ``stars``."""
    root = tmp_path_factory.mktemp("sso")
    data = DataDirectory(root / "data")
    build_night(nea_orbits, NEA_NIGHT, NEA_SITE, data=data, source="NEA.txt.gz",
                options=SMALL_PARTITIONS, night_convention=NIGHT_CONVENTION)
    build_night(mpc_orbits, MPC_NIGHT, MPC_SITE, data=data,
                source="mpcorb_excerpt_K25BL.dat.gz", options=SMALL_PARTITIONS,
                night_convention=NIGHT_CONVENTION)
    stars = root / "stars.parquet"
    pq.write_table(random_sky_table(2_000, seed=5), stars)
    load_catalog(spec=STARS_SPEC, sources=[str(stars)], data=data,
                 options=LoadOptions(workers=1, progress=False))
    return data


@pytest.fixture(scope="session")
def nea_index(sso_data) -> NightIndex:
    return NightIndex.from_catalog(open_catalog(NEA_CACHE, sso_data))


@pytest.fixture(scope="session")
def mpc_index(sso_data) -> NightIndex:
    return NightIndex.from_catalog(open_catalog(MPC_CACHE, sso_data))


@pytest.fixture(scope="session")
def pole_data(tmp_path_factory, pole_orbits) -> DataDirectory:
    data = DataDirectory(tmp_path_factory.mktemp("poles") / "data")
    build_night(pole_orbits, NEA_NIGHT, NEA_SITE, data=data, name="sso_poles",
                source="hand-made", options=LoadOptions(workers=1, progress=False),
                night_convention=NIGHT_CONVENTION)
    return data


@pytest.fixture(scope="session")
def pole_index(pole_data) -> NightIndex:
    return NightIndex.from_catalog(open_catalog("sso_poles", pole_data))


@pytest.fixture(scope="session")
def indexes(nea_index, mpc_index, pole_index) -> dict[str, NightIndex]:
    return {"nea": nea_index, "mpcorb": mpc_index, "poles": pole_index}


# ---------------------------------------------------------------------------- servers


@pytest.fixture(scope="session")
def sso_embedded(sso_data):
    """An embedded server over ``sso_data``; yields its address."""
    with running_server(served_catalogs(sso_data, load_defaults=False),
                        limits=SSO_LIMITS) as address:
        yield address


@pytest.fixture(scope="session")
def sso_cluster(sso_data, tmp_path_factory):
    """Three shard processes over ``sso_data`` (replicas 2) and an in-process router."""
    with running_cluster(sso_data, tmp_path_factory.mktemp("sso_cluster"),
                         SSO_LIMITS) as cluster:
        yield cluster
