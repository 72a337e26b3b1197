"""DE421 positions against skyfield (an independent reader of the same file), the GM
constants against their definitions, and the span checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from xmatch.errors import out_of_span, unknown_body
from xmatch.kernels.orbits import GM_SUN
from xmatch.sso.planets import (
    AU_KM,
    BODIES,
    GM,
    PERTURBERS,
    Planets,
    de421_path,
    planets,
)

SKYFIELD_NAMES = {
    "sun": "sun", "mercury": "mercury barycenter", "venus": "venus barycenter",
    "earth": "earth", "moon": "moon", "mars": "mars barycenter",
    "jupiter": "jupiter barycenter", "saturn": "saturn barycenter",
    "uranus": "uranus barycenter", "neptune": "neptune barycenter",
}
#: Both ends of the span, J2000, around the MPCORB excerpt's epoch, and random times.
TIMES = np.concatenate([[14864.0, 71184.0, 51544.5, 61000.0, 60999.99999],
                        np.random.default_rng(7).uniform(14864.0, 71184.0, 20)])
M_PER_AU = AU_KM * 1000.0


@pytest.fixture(scope="module")
def skyfield_ephemeris():
    skyfield_api = pytest.importorskip("skyfield.api")
    with warnings.catch_warnings():
        # skyfield-data warns that its Earth-orientation table (not used here) is old.
        warnings.simplefilter("ignore", RuntimeWarning)
        import skyfield_data

        loader = skyfield_api.Loader(skyfield_data.get_skyfield_data_path())
    eph = loader("de421.bsp")
    yield eph, loader.timescale(builtin=True)
    eph.close()


@pytest.mark.parametrize("body", BODIES)
def test_barycentric_matches_skyfield(body, skyfield_ephemeris):
    eph, ts = skyfield_ephemeris
    position, velocity = planets().barycentric_posvel(body, TIMES)
    # Whole and fraction of the JD apart, as we read them: sub-millimetre agreement.
    expected = eph[SKYFIELD_NAMES[body]].at(ts.tdb_jd(2400000.5, TIMES))
    assert np.abs(position - expected.position.au.T).max() * M_PER_AU < 1.0
    assert np.abs(velocity - expected.velocity.au_per_d.T).max() * M_PER_AU / 86400 < 1e-6
    assert np.array_equal(planets().barycentric(body, TIMES), position)


def test_earth_and_heliocentric_planets_are_consistent():
    eph = planets()
    position, velocity = eph.earth_barycentric_posvel(TIMES)
    expected = eph.barycentric_posvel("earth", TIMES)
    assert np.array_equal(position, expected[0]) and np.array_equal(velocity, expected[1])
    helio = eph.heliocentric_planets(TIMES)
    assert helio.shape == (len(TIMES), len(PERTURBERS), 3)
    sun = eph.barycentric("sun", TIMES)
    for j, body in enumerate(PERTURBERS):
        np.testing.assert_allclose(helio[:, j], eph.barycentric(body, TIMES) - sun,
                                   rtol=0, atol=1e-14)


def test_shapes_follow_the_time_argument():
    eph = planets()
    assert eph.barycentric("mars", 60000.0).shape == (3,)
    assert eph.barycentric("mars", [60000.0]).shape == (1, 3)
    assert eph.barycentric("mars", np.empty(0)).shape == (0, 3)
    assert eph.barycentric("moon", np.full((2, 4), 60000.0)).shape == (2, 4, 3)
    assert eph.heliocentric_planets(60000.0).shape == (len(PERTURBERS), 3)
    position, velocity = eph.barycentric_posvel("sun", np.empty(0))
    assert position.shape == velocity.shape == (0, 3)


def test_out_of_span_and_bad_names_raise():
    eph = planets()
    assert (eph.start_mjd, eph.end_mjd) == (14864.0, 71184.0)  # 1899-07-29 .. 2053-10-09
    for method in (lambda t: eph.barycentric("earth", t), eph.heliocentric_planets,
                   eph.earth_barycentric_posvel):
        with pytest.raises(ValueError) as error:
            method([60000.0, 71184.5])
        assert str(error.value) == out_of_span(71184.5, 1, 14864.0, 71184.0)
        assert "2053-10-09" in str(error.value)
        with pytest.raises(ValueError, match="outside the DE421 span"):
            method(14863.99)
        with pytest.raises(ValueError, match="nan"):
            method(np.nan)
    with pytest.raises(ValueError) as error:
        eph.barycentric("pluto", 60000.0)
    assert str(error.value) == unknown_body("pluto", BODIES)


def test_gm_constants():
    # DE421: GMB = GM_earth + GM_moon, EMRAT = GM_earth / GM_moon.
    assert GM["earth"] + GM["moon"] == pytest.approx(8.997011408268049e-10, rel=1e-15)
    assert GM["earth"] / GM["moon"] == pytest.approx(81.3005690699153, rel=1e-14)
    assert GM["sun"] == GM_SUN
    # Units: the Earth's GM in SI is DE421's 398600.436 km^3/s^2 (IAU 2015 nominal 3.986004e14).
    si = GM["earth"] * (AU_KM * 1e3) ** 3 / 86400.0 ** 2
    assert si == pytest.approx(3.98600436e14, rel=1e-9)
    # Jupiter's system GM: the nominal (planet alone) value plus its moons, ~2e-4.
    assert GM["jupiter"] * (AU_KM * 1e3) ** 3 / 86400.0 ** 2 == pytest.approx(1.2668653e17,
                                                                              rel=3e-4)
    np.testing.assert_array_equal(planets().gm, [GM[name] for name in PERTURBERS])


def test_planets_is_opened_once_and_a_path_can_be_given():
    assert planets() is planets()
    other = Planets(de421_path())
    try:
        np.testing.assert_array_equal(other.barycentric("venus", TIMES),
                                      planets().barycentric("venus", TIMES))
    finally:
        other.close()
