"""The four annotation states of a catalog: matched, no match, outside the catalog's
coverage, failed; never a "no match" where the catalog could not have answered."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pyarrow as pa
import pytest
from mocpy import MOC

from xmatch import DataDirectory, LoadOptions, load_catalog, open_catalog
from xmatch.alerts.annotation import annotation_records
from xmatch.service.catalogs import ServedCatalog, describe
from xmatch.service.client import Client
from xmatch.service.embedded import running_server
from xmatch.specs import bundled_spec

PS1_ROWS = 30_000


@pytest.fixture(scope="module")
def ps1_server(tmp_path_factory, session_data):
    """A small synthetic PS1 (coverage dec > -30 deg, declared by its spec) beside the
    all-sky Gaia DR3 subset."""
    data = DataDirectory(tmp_path_factory.mktemp("ps1") / "data")
    spec = bundled_spec("ps1_dr2").with_overrides(loader_options={"rows": PS1_ROWS, "seed": 3})
    load_catalog(spec=spec, data=data, options=LoadOptions(workers=1, progress=False))
    catalogs = {"ps1_dr2": ServedCatalog.from_catalog(open_catalog("ps1_dr2", data)),
                "gaia_dr3": ServedCatalog.from_catalog(open_catalog("gaia_dr3", session_data))}
    with running_server(catalogs) as address:
        yield address, open_catalog("ps1_dr2", data)


def test_ps1_coverage_is_its_partitions_cut_at_dec_minus_30(ps1_server):
    _, ps1 = ps1_server
    _, description = describe(ps1)
    coverage = MOC.from_string(description.coverage_moc)
    # The band dec >= -30 deg is 3/4 of the sky; the cut keeps whole order-10 cells (3.4')
    # along the edge.
    assert coverage.sky_fraction == pytest.approx(0.75, abs=0.002)
    rows = ps1.read(["raMean", "decMean"])
    inside = coverage.contains_lonlat(rows["raMean"].to_numpy() * u.deg,
                                      rows["decMean"].to_numpy() * u.deg)
    assert inside.all()  # every source is inside its catalog's coverage


def test_four_states(ps1_server):
    address, ps1 = ps1_server
    rng = np.random.default_rng(9)
    sources = ps1.read(["objID", "raMean", "decMean"]).slice(0, 50)
    n = 400
    # On sources; anywhere north of -29.9 deg; south of -30.1 deg (and at the poles, and
    # across RA 0/360); a damaged alert in the middle.
    ra = np.concatenate([sources["raMean"].to_numpy(), rng.uniform(0, 360, n),
                         rng.uniform(0, 360, n), [0.0, 359.9999, 0.0001, 180.0]])
    dec = np.concatenate([sources["decMean"].to_numpy(), rng.uniform(-29.9, 90, n),
                          rng.uniform(-90, -30.1, n), [-90.0, -45.0, 89.9999, 90.0]])
    ra[60] = np.nan
    alerts = pa.table({"alert_id": np.arange(len(ra), dtype=np.int64), "ra_deg": ra,
                       "dec_deg": dec, "mjd_tai": np.full(len(ra), 60000.0)})
    with Client(address) as client:
        table = pa.concat_tables(b.table for b in client.annotate(
            alerts, catalogs=["ps1_dr2", "gaia_dr3"], radius_arcsec=1.0))
    ps1_states = np.array(table.column("ps1_dr2_state").to_pylist())
    counts = table.column("ps1_dr2_count").to_numpy(zero_copy_only=False)
    assert (ps1_states[:50] == "matched").all()
    north = slice(50, 50 + n)
    south = slice(50 + n, 50 + 2 * n)
    assert set(ps1_states[north]) <= {"no_match", "matched", "failed"}
    assert set(ps1_states[south]) == {"outside_coverage"}
    assert list(ps1_states[-4:]) == ["outside_coverage", "outside_coverage", "no_match",
                                     "no_match"]
    # The damaged alert fails every catalog, with its reason; it has no count.
    assert ps1_states[60] == "failed" and table.column("gaia_dr3_state")[60].as_py() == "failed"
    assert "no usable position" in table.column("ps1_dr2_failure")[60].as_py()
    assert np.isnan(counts[60])
    failed = ps1_states == "failed"
    assert failed.sum() == 1
    assert ((counts[~failed] > 0) == (ps1_states[~failed] == "matched")).all()
    # The all-sky catalog is never "outside".
    assert "outside_coverage" not in set(table.column("gaia_dr3_state").to_pylist())
    records = annotation_records(table)
    for record, state in zip(records, ps1_states, strict=True):
        ps1_record = record["catalogs"][0]
        assert ps1_record["state"] == state
        assert (ps1_record["count"] is None) == (state == "failed")
        assert (ps1_record["failure"] is None) == (state != "failed")
