"""Nightly caches kept current for a running server (what ``xmatch stream --sso-orbits``
does): tonight's and the next night's built ahead and served, old ones dropped, and an
alert of a night without a cache failed, naming the night."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from astropy.time import Time

from conftest import shared_file
from xmatch import DataDirectory, LoadOptions, load_catalog
from xmatch.service.client import Client
from xmatch.service.embedded import running_servicer, served_catalogs
from xmatch.service.server import XmatchServicer
from xmatch.sso.keeper import CacheKeeper
from xmatch.sso.mpc.readers import read_orbits
from xmatch.sso.nightly import cache_name


@pytest.fixture(scope="module")
def orbits() -> pa.Table:
    table = read_orbits(shared_file("sso/mpcorb_excerpt_K25BL.dat.gz"))
    return table.take(np.arange(0, table.num_rows, 100))  # ~220 orbits: quick builds


def test_the_keeper_builds_ahead_serves_and_drops(orbits, tmp_path):
    data = DataDirectory(tmp_path / "data")
    load_catalog("gcvs", data=data, options=LoadOptions(workers=1, progress=False))
    now = [Time("2025-11-22T03:00:00", scale="utc").unix]  # Rubin dayObs 2025-11-21
    served = served_catalogs(data, names=["gcvs", "sso"])
    with running_servicer(lambda: XmatchServicer(served)) as (address, servicer):
        keeper = CacheKeeper(data, lambda: orbits, ["X05"], servicer.serve_catalogs,
                             clock=lambda: now[0], source="excerpt")
        keeper.check()
        nights = ["2025-11-21", "2025-11-22"]
        assert keeper.served == {cache_name(n, "X05") for n in nights}
        assert {cache_name(n, "X05") for n in nights} <= set(servicer.catalogs)
        # Alerts at midnight UTC+... of each night: dayObs D runs 12:00 UTC D to 12:00 D+1.
        times = Time(["2025-11-22T04:00:00", "2025-11-23T04:00:00", "2025-11-24T04:00:00"],
                     scale="utc").tai.mjd
        alerts = pa.table({"alert_id": [1, 2, 3], "ra_deg": [10.0, 20.0, 30.0],
                           "dec_deg": [0.0, 5.0, -5.0], "survey": ["LSST"] * 3,
                           "mjd_tai": times})
        with Client(address) as client:
            (batch,) = client.annotate(alerts, catalogs=["sso", "gcvs"])
        states = batch.table.column("sso_state").to_pylist()
        assert states[:2] == ["no_match", "no_match"] and states[2] == "failed"
        assert "night 2025-11-23 at X05" in batch.table.column("sso_failure")[2].as_py()
        # Two days later: the next two nights are built, the first night's cache dropped.
        now[0] += 2 * 86400
        keeper.check()
        assert keeper.served == {cache_name(n, "X05") for n in
                                 ("2025-11-22", "2025-11-23", "2025-11-24")}
        assert cache_name("2025-11-21", "X05") not in servicer.catalogs
        with Client(address) as client:
            (batch,) = client.annotate(alerts, catalogs=["sso"])
        assert batch.table.column("sso_state").to_pylist() == ["failed", "no_match",
                                                                 "no_match"]
        assert "night 2025-11-21 at X05" in batch.table.column("sso_failure")[0].as_py()
        keeper.check()  # nothing to do: nothing built again
        assert len([n for n in data.names() if n.startswith("sso_")]) == 4
