"""Notices followed: the watchmap of a superevent (replaced by an update, removed by a
retraction), the alert candidates (the history's detections inside the region since the
event, checked against mocpy's credible region) and the galaxy candidates (the sky-map
search ranked by 3-D density); the Notice RPC and ``xmatch notices`` on files."""

from __future__ import annotations

import functools
import json

import astropy.units as u
import numpy as np
import pyarrow as pa
import pytest

from conftest import shared_file
from xmatch.alerts.fields import compact_alerts
from xmatch.errors import InputError, ServiceError
from xmatch.history.memory import AlertMemory
from xmatch.notices import build_notice, notice_json, read_notice
from xmatch.notices.follow import NoticeFollower, candidates_message, write_follow_up
from xmatch.sky.skymap import SkyMap
from xmatch.specs import bundled_resource

GW170817_TIME = "2017-08-17T12:41:04.4Z"
NGC4993 = (197.448776, -23.383831)


@functools.cache
def gw170817_fits() -> bytes:
    """The bundled GW170817 map (flat) as the multi-order file a notice carries."""
    return SkyMap.read(bundled_resource("data/GW170817_skymap.fits.gz")).multiorder_fits(
        GW170817_TIME.rstrip("Z"))


def _notice(alert_type="PRELIMINARY", superevent="MS170817a", fits=None, **fields):
    if alert_type == "RETRACTION":
        return read_notice(build_notice(superevent, alert_type))
    return read_notice(build_notice(superevent, alert_type, skymap=fits or gw170817_fits(),
                                    event_time_iso=GW170817_TIME, **fields))


def _alerts(ra, dec, mjd, first_id=1):
    n = len(ra)
    return compact_alerts(pa.table({
        "alert_id": pa.array(np.arange(first_id, first_id + n), pa.int64()),
        "survey": ["ZTF"] * n, "ra_deg": np.asarray(ra, float),
        "dec_deg": np.asarray(dec, float), "mjd_tai": np.asarray(mjd, float)}))


def test_a_notice_becomes_a_watchmap_and_ranked_candidates(tmp_path, session_data):
    from xmatch.store.catalog import open_catalog

    notice = _notice()
    event = notice.event_mjd_tai
    rng = np.random.default_rng(3)
    # Around the region (and the RA wrap, the pole), before and after the event.
    ra = np.r_[rng.uniform(190, 205, 3000), 359.9999, 0.0001, 10.0]
    dec = np.r_[rng.uniform(-35, -15, 3000), -23.0, -23.0, -89.9999]
    mjd = np.where(rng.random(len(ra)) < 0.3, event - 1.0, event + rng.uniform(0, 5, len(ra)))
    galaxies = open_catalog("glade_gw170817", session_data)
    with AlertMemory(tmp_path) as memory:
        memory.history.record(_alerts(ra, dec, mjd))
        follower = NoticeFollower(memory, galaxies=galaxies, galaxy_catalog="glade_gw170817")
        done = follower.follow(notice)
        # The oracle: mocpy's MOC of the credible region, and the event time.
        region = notice.skymap.credible_region(0.9)
        inside = region.contains_lonlat(ra * u.deg, dec * u.deg) & (mjd >= event)
        assert 50 < inside.sum() < 3000
        assert sorted(done.alerts.column("alert_id").to_pylist()) == \
            sorted((np.flatnonzero(inside) + 1).tolist())
        density = done.alerts.column("probdensity").to_numpy()
        assert np.all(np.diff(density) <= 0)  # by 2-D density, highest first
        assert np.all(done.alerts.column("days_after_event").to_numpy() >= 0)
        expected = galaxies.skymap_search(notice.skymap, 0.9, rank_by="probdensity_vol")
        assert done.galaxies.equals(expected)
        assert done.galaxies.column("RAJ2000").to_pylist()[0] == pytest.approx(NGC4993[0])
        assert done.summary["alerts"] == inside.sum()
        assert done.summary["area_deg2"] == pytest.approx(
            region.sky_fraction * 4 * np.pi * (180 / np.pi) ** 2, rel=1e-9)
        # Alerts of tonight report the region as a watch hit.
        recorded, hits = memory.annotate(_alerts([NGC4993[0], 10.0], [NGC4993[1], 10.0],
                                                 [event + 6] * 2, 10_000),
                                         history=True, watches=True)
        assert [[h["watch"] for h in row] for row in hits.to_pylist()] == \
            [["gw.MS170817a"], []]
        # Files, then the published message.
        written = write_follow_up(done, tmp_path / "gw")
        assert sorted(p.name for p in written) == [
            "MS170817a.alerts.ecsv", "MS170817a.galaxies.ecsv", "MS170817a.json"]
        message = json.loads(candidates_message(done, 5))
        assert len(message["alert_candidates"]) == 5
        assert message["alerts"] == inside.sum()


def test_updates_replace_and_retractions_remove(tmp_path, session_data):
    from xmatch.store.catalog import open_catalog

    with AlertMemory(tmp_path, history=False) as memory:
        follower = NoticeFollower(memory, level=0.5)
        first = follower.follow(_notice())
        assert first.summary["history"] is False and first.alerts.num_rows == 0
        assert first.galaxies is None
        update = follower.follow(_notice("UPDATE", fits=shared_or_same()))
        described = memory.watches.describe()
        assert [d["name"] for d in described] == ["gw.MS170817a"]
        assert described[0]["source"].startswith("UPDATE notice of MS170817a")
        assert update.summary["level"] == 0.5
        gone = follower.follow(_notice("RETRACTION"))
        assert gone.summary["removed"] and memory.watches.names() == []
        written = write_follow_up(gone, tmp_path / "gw")
        assert [p.name for p in written] == ["MS170817a.json"]
        with pytest.raises(InputError, match="notice MS170817a: a RETRACTION of a superevent "
                                             "no notice announced here"):
            follower.follow(_notice("RETRACTION"))
        with pytest.raises(InputError, match="galaxy catalog gaia_dr3 has no distance column"):
            NoticeFollower(memory, galaxies=open_catalog("gaia_dr3", session_data),
                           galaxy_catalog="gaia_dr3")
        without_map = read_notice(build_notice("MS2", "PRELIMINARY",
                                               event_time_iso=GW170817_TIME))
        with pytest.raises(InputError, match="carries no sky map"):
            follower.follow(without_map)
        assert memory.watches.names() == []


def shared_or_same() -> bytes:
    """A second real map for an update: G361581 from ../shared, else GW170817 again."""
    try:
        path = shared_file("skymaps/G361581_bayestar.multiorder.fits.gz")
    except pytest.skip.Exception:
        return gw170817_fits()
    return SkyMap.read(path).multiorder_fits()


def test_the_notice_rpc(tmp_path, session_data):
    from xmatch.service.client import Client
    from xmatch.service.embedded import running_server, served_catalogs

    catalogs = served_catalogs(session_data, names=["glade_gw170817"])
    notice = build_notice("MS170817a", "PRELIMINARY", skymap=gw170817_fits(),
                          event_time_iso=GW170817_TIME)
    with AlertMemory(tmp_path) as memory, running_server(catalogs, memory=memory) as address, \
            Client(address) as client:
        summary, alerts, galaxies = client.notice(notice, galaxy_catalog="glade_gw170817",
                                                  arrow=True)
        assert summary["watch"] == "gw.MS170817a" and summary["galaxies"] == galaxies.num_rows
        assert galaxies.column("RAJ2000").to_pylist()[0] == pytest.approx(NGC4993[0])
        assert [w["name"] for w in client.list_watches()] == ["gw.MS170817a"]
        with pytest.raises(ServiceError, match="INVALID_ARGUMENT.*neither JSON"):
            client.notice(b"garbage")
        with pytest.raises(ServiceError, match="NOT_FOUND.*no catalog 'nope'"):
            client.notice(notice, galaxy_catalog="nope")
        summary, _, galaxies = client.notice(notice_json(build_notice("MS170817a",
                                                                      "RETRACTION")))
        assert summary["removed"] and client.list_watches() == []


def test_notices_ingest_goes_on_after_a_bad_notice(tmp_path, capsys):
    from xmatch.cli import main

    good = tmp_path / "prelim.json"
    good.write_bytes(notice_json(build_notice("MS170817a", "PRELIMINARY",
                                              skymap=gw170817_fits(),
                                              event_time_iso=GW170817_TIME)))
    bad = tmp_path / "bad.json"
    document = json.loads(good.read_text())
    document["event"]["skymap"] = "not base64!"
    bad.write_text(json.dumps(document))
    retraction = tmp_path / "retract.json"
    retraction.write_bytes(notice_json(build_notice("MS170817a", "RETRACTION")))
    data = tmp_path / "data"
    code = main(["notices", "ingest", str(bad), str(good), str(retraction), str(retraction),
                 "--data", str(data), "--out-dir", str(tmp_path / "gw")])
    out, err = capsys.readouterr()
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    assert "bad.json" in lines[0] and "/event/skymap" in lines[0] and "base64" in lines[0]
    assert "a RETRACTION of a superevent no notice announced here" in lines[1]
    assert lines[2] == "xmatch notices: 2 of 4 notice(s) refused"
    assert "MS170817a PRELIMINARY: watchmap gw.MS170817a (" in out
    assert "MS170817a RETRACTION: watchmap gw.MS170817a removed" in out


def test_the_demo_shows_a_watchlist_hit_and_a_notices_candidates(tmp_path, session_data,
                                                                   capsys):
    from xmatch.cli.demo import demo_memory
    from xmatch.service.client import Client
    from xmatch.service.embedded import running_server, served_catalogs

    catalogs = served_catalogs(session_data, names=["glade_gw170817", "gcvs"])
    with AlertMemory(tmp_path) as memory, running_server(catalogs, memory=memory) as address, \
            Client(address) as client:
        demo_memory(client)
    out = capsys.readouterr().out
    assert "history: duplicate 103, known 1, new 1; alerts hitting each watch: " \
           "demo-targets 3" in out
    lines = out.splitlines()
    candidates = lines.index(next(line for line in lines if "alert candidates since the "
                                                               "event" in line))
    assert [line.split()[0] for line in lines[candidates + 4:candidates + 6]] == [
        "9000001", "9000002"]
    assert lines[-1].split()[:2] == ["197.448776", "-23.383831"]  # NGC 4993
