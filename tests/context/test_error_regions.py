"""Error regions as rows: the Fermi 4LAC-DR3 AGN counterparts against the 95 % error
ellipses of their 4FGL sources, with xmatch's containment equal to astropy's ``regions``
for every pair, and the same answer from the index lookup, the context layer and a search."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from xmatch.context.config import parse_config
from xmatch.context.engine import data_context_engine
from xmatch.index.region_index import RegionIndex, region_distances
from xmatch.specs import bundled_resource

SIGMA_95 = np.sqrt(-2 * np.log(0.05))  # a 95 % 2-D Gaussian ellipse is 2.448 sigma


@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    """Each 4LAC counterpart with its 4FGL source's ellipse (the bundled gll_psc_v27: the
    4LAC-DR3 sources it lists)."""
    fermi = pd.read_csv(bundled_resource("data/fermi_4fgl_gll_psc_v27.csv.gz"))
    fermi["name"] = fermi["name"].str.strip()
    parts = []
    for half in "hl":
        table = Table.read(bundled_resource(f"data/table-4LAC-DR3-{half}.fits.gz"))
        parts.append(pd.DataFrame({
            "name": [str(s).strip() for s in table["Source_Name"]],
            "agn_ra": np.asarray(table["RA_Counterpart"], float),
            "agn_dec": np.asarray(table["DEC_Counterpart"], float)}))
    return pd.concat(parts).merge(fermi, on="name")


def arc_wcs(ra, dec):
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---ARC", "DEC--ARC"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [0.0, 0.0]
    wcs.wcs.cdelt = [-1 / 3600, 1 / 3600]
    return wcs


def test_4lac_counterparts_inside_their_4fgl_ellipse_equal_the_regions_oracle(pairs):
    from regions import EllipseSkyRegion

    rho, _ = region_distances(pairs.ra, pairs.dec, pairs.amaj * 3600, pairs.amin * 3600,
                              pairs.phi, pairs.agn_ra, pairs.agn_dec)
    inside = rho <= 1
    oracle = np.array([
        EllipseSkyRegion(SkyCoord(row.ra * u.deg, row.dec * u.deg), width=2 * row.amaj * u.deg,
                         height=2 * row.amin * u.deg, angle=(row.phi + 90) * u.deg).contains(
            SkyCoord(row.agn_ra * u.deg, row.agn_dec * u.deg), arc_wcs(row.ra, row.dec))
        for row in pairs.itertuples()])
    clear = np.abs(rho - 1) > 1e-6
    np.testing.assert_array_equal(inside[clear], oracle[clear])
    # 2,547 pairs (4LAC-DR3 sources absent from gll_psc_v27 have no ellipse here); a 95 %
    # ellipse should hold about 95 % of true counterparts: 2,410 (94.6 %) do.
    assert len(pairs) == 2547
    assert inside.sum() == 2410


def test_region_lookup_finds_each_counterparts_source(pairs):
    index = RegionIndex.from_arrays(pairs.ra, pairs.dec, pairs.amaj * 3600, pairs.amin * 3600,
                                    pairs.phi)
    found = index.containing(pairs.agn_ra, pairs.agn_dec)
    own = found.filter(np.asarray(found["query_index"]) == np.asarray(found["row"]))
    rho, _ = region_distances(pairs.ra, pairs.dec, pairs.amaj * 3600, pairs.amin * 3600,
                              pairs.phi, pairs.agn_ra, pairs.agn_dec)
    assert sorted(own["query_index"].to_pylist()) == np.flatnonzero(rho <= 1).tolist()
    np.testing.assert_allclose(own["region_distance"].to_numpy(),
                               rho[own["query_index"].to_numpy()], rtol=1e-12)


def test_gamma_ray_layer_reports_sigma_distances(session_data, pairs):
    config = parse_config('[[layer]]\nname = "gamma"\nkind = "error_region"\n'
                          'catalog = "fermi_4fgl"\n[[layer]]\nname = "agn"\nkind = "agn"\n'
                          'catalog = "fermi_4lac"\nradius_arcsec = 0.001\n'
                          '[[rule]]\nclass = "agn"\nlayer = "agn"\n')
    engine = data_context_engine(session_data, config)
    sample = pairs.iloc[:300]
    table = engine.context(sample.agn_ra.to_numpy(), sample.agn_dec.to_numpy())
    rho, _ = region_distances(sample.ra, sample.dec, sample.amaj * 3600, sample.amin * 3600,
                              sample.phi, sample.agn_ra, sample.agn_dec)
    state = np.asarray(table["gamma_state"])
    assert set(np.flatnonzero(rho <= 1)) <= set(np.flatnonzero(state == "matched"))
    assert set(state) <= {"matched", "no_match"}
    # Where the position's own source is the nearest in region units, its distances agree.
    own = np.asarray(table["gamma_id"]) == sample.name.to_numpy()
    assert own.sum() > 250
    np.testing.assert_allclose(np.asarray(table["gamma_distance"])[own], rho[own], rtol=1e-10)
    np.testing.assert_allclose(np.asarray(table["gamma_sigma"])[own], rho[own] * SIGMA_95,
                               rtol=1e-10)
    # At the AGN positions the AGN rule decides; at the gamma-ray sources' centres (inside
    # their own ellipse, far from any AGN) the gamma-ray layer, which no rule uses, leaves
    # them orphans.
    assert set(np.asarray(table["class"])) == {"agn"}
    centres = engine.context(sample.ra.to_numpy(), sample.dec.to_numpy())
    assert set(np.asarray(centres["gamma_state"])) == {"matched"}
    assert set(np.asarray(centres["class"])) == {"orphan"}
