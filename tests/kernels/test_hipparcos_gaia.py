"""Real data: Hipparcos 2 (J1991.25, with proper motions) against the bundled Gaia DR3
subset (J2016.0) at 1 arcsec, through the store."""

import astropy.units as u
import numpy as np
import pyarrow as pa
from astropy.coordinates import SkyCoord, search_around_sky

from xmatch.index import SkyIndex, crossmatch, propagate


def bright(table):
    return table.filter(pa.compute.less(table["hpmag"], 9.0))


def matched_fraction(table, column="source_id"):
    return table[column].is_valid().to_numpy(zero_copy_only=False).mean()


def test_hipparcos_stars_brighter_than_hp9_find_their_gaia_counterpart(default_catalogs,
                                                                       capsys):
    gaia = SkyIndex.from_catalog(default_catalogs["gaia_dr3"])
    hip = SkyIndex.from_catalog(default_catalogs["hipparcos2"])
    propagated = bright(crossmatch(hip, gaia, radius_arcsec=1.0))
    unpropagated = bright(gaia.crossmatch(hip.table["ra"].to_numpy(), hip.table["dec"].to_numpy(),
                                          radius_arcsec=1.0, queries=hip.table))
    with capsys.disabled():
        print(f"\nHipparcos 2 stars with Hp < 9: {propagated.num_rows}; matched to Gaia DR3 "
              f"within 1\": {matched_fraction(propagated):.4%} with proper motions applied, "
              f"{matched_fraction(unpropagated):.4%} without")
    assert propagated.num_rows > 70_000
    assert matched_fraction(propagated) >= 0.998
    assert matched_fraction(unpropagated) < 0.8


def test_pairs_equal_astropy_on_the_same_propagated_positions(default_catalogs):
    gaia = SkyIndex.from_catalog(default_catalogs["gaia_dr3"])
    hip = SkyIndex.from_catalog(default_catalogs["hipparcos2"])
    table = hip.table
    ra, dec = propagate(table["ra"].to_numpy(), table["dec"].to_numpy(),
                        table["pmra"].to_numpy(zero_copy_only=False),
                        table["pmdec"].to_numpy(zero_copy_only=False), 1991.25, 2016.0,
                        parallax=table["parallax"].to_numpy(zero_copy_only=False))
    ours = crossmatch(hip, gaia, radius_arcsec=1.0, mode="all", left_columns=["hip"],
                      right_columns=["source_id"])
    ours = ours.filter(ours["source_id"].is_valid())
    i, j, separation, _ = search_around_sky(
        SkyCoord(ra, dec, unit="deg"),
        SkyCoord(gaia.table["ra"].to_numpy(), gaia.table["dec"].to_numpy(), unit="deg"),
        1 * u.arcsec)
    theirs = set(zip(table["hip"].to_numpy()[i].tolist(),
                     gaia.table["source_id"].to_numpy()[j].tolist(), strict=True))
    assert set(zip(ours["hip"].to_pylist(), ours["source_id"].to_pylist(), strict=True)) == theirs
    assert len(theirs) > 90_000
    # Same separations, pair by pair.
    order = np.lexsort((ours["source_id"].to_numpy(), ours["hip"].to_numpy()))
    reference = np.lexsort((gaia.table["source_id"].to_numpy()[j], table["hip"].to_numpy()[i]))
    np.testing.assert_allclose(ours["separation_arcsec"].to_numpy()[order],
                               separation.arcsec[reference], rtol=0, atol=3.6e-6)


def test_gaia_against_hipparcos_moves_the_catalog_side(default_catalogs):
    """The reverse direction: Gaia positions as queries at J2016.0, Hipparcos rows moved
    there from J1991.25 — the same stars pair up."""
    gaia = SkyIndex.from_catalog(default_catalogs["gaia_dr3"], columns=["source_id", "ra",
                                                                        "dec"])
    hip = SkyIndex.from_catalog(default_catalogs["hipparcos2"])
    forward = crossmatch(hip, gaia, radius_arcsec=1.0, mode="all", left_columns=["hip"],
                         right_columns=["source_id"])
    reverse = crossmatch(gaia, hip, radius_arcsec=1.0, mode="all", left_columns=["source_id"],
                         right_columns=["hip"])
    pairs = {(h, s) for h, s in zip(forward["hip"].to_pylist(), forward["source_id"].to_pylist(),
                                    strict=True) if s is not None}
    back = {(h, s) for h, s in zip(reverse["hip"].to_pylist(), reverse["source_id"].to_pylist(),
                                   strict=True) if h is not None}
    assert pairs == back
