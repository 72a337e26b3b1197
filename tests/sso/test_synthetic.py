"""The synthetic population: deterministic, flagged, and with the populations, element
ranges, Trojans and magnitudes it promises."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sso.conftest import assert_same
from xmatch.sso.mpc.readers import GM_SUN, ORBIT_SCHEMA
from xmatch.sso.synthetic import SYNTHETIC_POPULATIONS, synthetic_orbits


def populations(table: pa.Table) -> dict[str, np.ndarray]:
    q = table.column("q_au").to_numpy()
    a = q / (1 - table.column("e").to_numpy())
    neo = q < 1.3
    return {
        "near-earth": neo,
        "hungaria": ~neo & (a < 2.05),
        "main belt": ~neo & (a >= 2.05) & (a < 3.3),
        "outer main belt": ~neo & (a >= 3.3) & (a < 3.85),
        "hilda": ~neo & (a >= 3.85) & (a < 4.1),
        "jupiter trojan": ~neo & (a >= 5.0) & (a < 5.4),
    }


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_orbits(200_000, seed=3)


def test_synthetic_is_deterministic(synthetic):
    assert_same(synthetic_orbits(200_000, seed=3), synthetic, ignore=())
    other = synthetic_orbits(200_000, seed=4)
    assert not np.array_equal(other.column("q_au").to_numpy(), synthetic.column("q_au").to_numpy())


def test_synthetic_schema_and_flags(synthetic):
    assert synthetic.schema == ORBIT_SCHEMA
    designations = synthetic.column("designation").to_pylist()
    assert designations[:2] == ["S0000001", "S0000002"]
    assert len(set(designations)) == synthetic.num_rows
    assert all(synthetic.column("synthetic").to_pylist())
    assert set(synthetic.column("source").to_pylist()) == {"synthetic"}
    assert set(synthetic.column("kind").to_pylist()) == {"asteroid"}
    assert synthetic.column("name").null_count == synthetic.num_rows
    assert set(synthetic.column("g_slope").to_pylist()) == {0.15}
    assert np.isnan(synthetic.column("comet_k").to_numpy()).all()
    assert set(synthetic.column("epoch_mjd_tt").to_pylist()) == {61000.0}


def test_synthetic_populations_and_ranges(synthetic):
    groups = populations(synthetic)
    counts = sum(mask.astype(int) for mask in groups.values())
    assert (counts == 1).all()                           # every object in exactly one group
    n = synthetic.num_rows
    for name, fraction in SYNTHETIC_POPULATIONS.items():
        assert groups[name].sum() / n == pytest.approx(fraction, abs=4 * np.sqrt(fraction / n))
    e = synthetic.column("e").to_numpy()
    inc = synthetic.column("inc_deg").to_numpy()
    q = synthetic.column("q_au").to_numpy()
    a = q / (1 - e)
    belt = groups["main belt"]
    assert a[belt].min() >= 2.1 and a[belt].max() < 3.3
    assert e[belt].max() < 0.35 and np.median(e[belt]) == pytest.approx(0.08 * 1.1774, rel=0.05)
    assert np.median(inc[belt]) == pytest.approx(8 * 1.1774, rel=0.05)
    neo = groups["near-earth"]
    assert (a[neo] >= 0.8).all() and (a[neo] < 3.0).all() and (q[neo] < 1.3).all()
    assert (e[neo] >= 0.1).all() and (e[neo] <= 0.8).all()
    trojans = groups["jupiter trojan"]
    assert (e[trojans] < 0.15).all() and (inc[trojans] < 35).all()
    assert ((inc >= 0) & (inc <= 180)).all() and (e >= 0).all() and (e < 1).all()
    for name in ("node_deg", "argperi_deg"):
        values = synthetic.column(name).to_numpy()
        assert ((values >= 0) & (values < 360)).all()
    # The Kirkwood gaps are depleted: 3:1, 5:2 and 7:3 resonances against their neighbours.
    for centre, half_width in ((2.50, 0.02), (2.825, 0.02), (2.955, 0.015)):
        inside = (np.abs(a[belt] - centre) < half_width * 0.8).sum()
        around = ((np.abs(a[belt] - centre) > half_width * 1.5)
                  & (np.abs(a[belt] - centre) < half_width * 2.3)).sum()
        assert inside < 0.2 * around
    # The tp of an orbit is its perihelion passage nearest the epoch.
    n_deg = np.degrees(np.sqrt(GM_SUN / a**3))
    assert (np.abs(synthetic.column("tp_mjd_tt").to_numpy() - 61000.0) <= 180 / n_deg).all()


def test_synthetic_trojans_lead_and_trail_jupiter(synthetic):
    trojans = populations(synthetic)["jupiter trojan"]
    columns = {name: synthetic.column(name).to_numpy()[trojans] for name in
               ("q_au", "e", "node_deg", "argperi_deg", "tp_mjd_tt")}
    a = columns["q_au"] / (1 - columns["e"])
    mean_anomaly = np.degrees(np.sqrt(GM_SUN / a**3)) * (61000.0 - columns["tp_mjd_tt"])
    longitude = columns["node_deg"] + columns["argperi_deg"] + mean_anomaly
    # Jupiter's mean longitude at 2025-11-21 (JPL's approximate elements): 100.0 deg.
    relative = (longitude - 100.0 + 180) % 360 - 180
    assert (np.abs(np.abs(relative) - 60) < 45).all()
    assert 0.4 < (relative > 0).mean() < 0.6            # L4 and L5 alike


def test_synthetic_magnitudes(synthetic):
    h = synthetic.column("h_mag").to_numpy()
    assert h.min() >= 8 and h.max() <= 22
    # N(<H) ~ 10^(0.3 H): one magnitude brighter holds 10^-0.3 as many objects.
    assert (h < 20).sum() / (h < 21).sum() == pytest.approx(10**-0.3, rel=0.03)


def test_synthetic_full_size():
    table = synthetic_orbits(1_300_000)
    assert table.num_rows == 1_300_000
    assert table.column("designation")[-1].as_py() == "S1300000"
    assert synthetic_orbits(0).num_rows == 0
