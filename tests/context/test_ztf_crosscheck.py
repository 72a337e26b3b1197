"""ZTF's own context fields as a cross-check: each real ZTF alert carries the distance and
magnitude of the nearest Gaia source brighter than G = 14 within 90" (``neargaiabright``,
``maggaiabright``). Where that star is brighter than G = 10, the bundled Gaia DR3 subset
(G < 10) must hold it at the same place; and no star of the subset may be nearer than the
one ZTF reports (ZTF's set holds ours)."""

from __future__ import annotations

import io

import fastavro
import numpy as np
import pandas as pd

from conftest import shared_file
from xmatch import SkyIndex, open_catalog
from xmatch.alerts.sources import read_packets


def ztf_candidates() -> pd.DataFrame:
    rows = []
    for packet in read_packets([str(shared_file("alerts/ztf"))]):
        record = next(fastavro.reader(io.BytesIO(packet.data)))
        candidate = record["candidate"]
        rows.append((record["candid"], candidate["ra"], candidate["dec"],
                     candidate.get("neargaiabright"), candidate.get("maggaiabright")))
    table = pd.DataFrame(rows, columns=["candid", "ra", "dec", "near", "mag"])
    # -999: ZTF found no Gaia star brighter than 14 within 90" (None: older schemas).
    return table.drop_duplicates("candid").dropna().query("mag > -999")


def test_nearest_bright_gaia_star_agrees_with_ztf(session_data):
    alerts = ztf_candidates()
    gaia = SkyIndex.from_catalog(open_catalog("gaia_dr3", session_data))
    ours = gaia.crossmatch(alerts.ra.to_numpy(), alerts.dec.to_numpy(), radius_arcsec=90.0,
                           epoch=2016.0, columns=["phot_g_mean_mag"]).to_pandas()
    separation = ours.separation_arcsec.to_numpy()
    magnitude = ours.phot_g_mean_mag.to_numpy()
    near, mag = alerts.near.to_numpy(), alerts.mag.to_numpy()
    # Where ZTF's nearest bright star is brighter than G = 10 (0.2 mag margin for DR2 vs
    # DR3 photometry), the subset has it, at the same separation (DR2 vs DR3 positions).
    brightest = mag < 9.8
    assert brightest.sum() == 2 and len(alerts) == 125
    np.testing.assert_allclose(separation[brightest], near[brightest], atol=0.5)
    np.testing.assert_allclose(magnitude[brightest], mag[brightest], atol=0.2)
    # Every star of ours within 90" is at least as far as ZTF's nearest (of G < 14).
    found = np.isfinite(separation)
    assert found.sum() == 7
    assert np.all(near[found] <= separation[found] + 0.5)
