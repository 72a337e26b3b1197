"""The alert history: association against ZTF's own objectId and a brute-force reference,
durability (the log, snapshots, compaction, a kill at any point), idempotency."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap

import astropy.units as u
import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from astropy.coordinates import SkyCoord

from conftest import shared_file
from xmatch import DataDirectory, open_catalog
from xmatch.alerts.fields import compact_alerts
from xmatch.errors import DamagedCatalogError, InputError
from xmatch.history.live import Association
from xmatch.history.store import AlertHistory
from xmatch.timescales import tai_mjd_of_utc_jd

ZTF_BANDS = {1: "g", 2: "r", 3: "i"}


def _alerts(ra, dec, ids, surveys, mjd, band=None, mag=None, object_ids=None) -> pa.Table:
    n = len(ra)
    return compact_alerts(pa.table({
        "alert_id": pa.array(ids, pa.int64()), "survey": pa.array(surveys, pa.string()),
        "object_id": pa.array(object_ids if object_ids is not None else [None] * n,
                              pa.string()),
        "ra_deg": np.asarray(ra, float), "dec_deg": np.asarray(dec, float),
        "mjd_tai": np.asarray(mjd, float),
        "band": pa.array(band if band is not None else ["g"] * n, pa.string()),
        "mag": np.asarray(mag if mag is not None else np.full(n, 18.0), float)}))


def _ztf_detections() -> pa.Table:
    """Every detection the real ZTF alerts carry (the alert's candidate and its previous
    detections with a candid and a position), with ZTF's objectId."""
    rows = []
    folder = shared_file("alerts/ztf")

    def read(handle):
        for record in fastavro.reader(handle):
            object_id = record["objectId"]
            c = record["candidate"]
            rows.append((c["candid"], object_id, c["jd"], c["ra"], c["dec"], c["fid"],
                         c["magpsf"]))
            for p in record.get("prv_candidates") or ():
                if p.get("candid") is not None and p.get("ra") is not None:
                    rows.append((p["candid"], object_id, p["jd"], p["ra"], p["dec"], p["fid"],
                                 p["magpsf"]))

    for path in sorted(folder.rglob("*")):
        if path.suffix == ".avro":
            with open(path, "rb") as handle:
                read(handle)
        elif path.name.endswith(".tar.gz"):
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.name.endswith(".avro"):
                        read(io.BytesIO(tar.extractfile(member).read()))
    candid, object_id, jd, ra, dec, fid, mag = (list(c) for c in zip(*rows, strict=True))
    order = np.argsort(np.asarray(jd), kind="stable")
    table = pa.table({"alert_id": candid, "object_id": object_id, "jd": jd, "ra": ra,
                      "dec": dec, "band": [ZTF_BANDS.get(f) for f in fid], "mag": mag})
    return table.take(pa.array(order))


def test_ztf_detections_of_one_object_land_on_one_xmatch_object(tmp_path):
    """ZTF's objectId groups its detections (1.5" from the object's first detection): our
    objects must group them the same way, and repeated detections (every alert repeats up
    to 30 days of history) are recognised as duplicates."""
    found = _ztf_detections()
    n = found.num_rows
    alerts = _alerts(found.column("ra").to_numpy(), found.column("dec").to_numpy(),
                     found.column("alert_id").to_numpy(), ["ZTF"] * n,
                     tai_mjd_of_utc_jd(found.column("jd").to_numpy()),
                     found.column("band").to_pylist(), found.column("mag").to_numpy(),
                     found.column("object_id").to_pylist())
    with AlertHistory(tmp_path, compact_every=0) as history:
        answers = [history.record(alerts.slice(start, 97)) for start in range(0, n, 97)]
    answer = pa.concat_tables(answers)
    states = answer.column("history_state").to_numpy(zero_copy_only=False)
    unique_candids = len(set(found.column("alert_id").to_pylist()))
    assert (states != "duplicate").sum() == unique_candids
    assert (states == "duplicate").sum() == n - unique_candids > 0
    ours = answer.column("history_object_id").to_numpy()
    theirs = np.asarray(found.column("object_id").to_pylist(), dtype=object)
    pairs = set(zip(theirs.tolist(), ours.tolist(), strict=True))
    by_ztf, by_ours = {}, {}
    for ztf, xmatch in pairs:
        by_ztf.setdefault(ztf, set()).add(xmatch)
        by_ours.setdefault(xmatch, set()).add(ztf)
    assert all(len(v) == 1 for v in by_ztf.values()), "a ZTF object split over objects"
    # Two ZTF objects become one of ours only where ZTF itself gave one source two ids:
    # the 2018 commissioning alerts hold ZTF18aagqxtf and ZTF18aagtxth, one detection each,
    # 0.03" apart in the same exposure.
    merged = [sorted(v) for v in by_ours.values() if len(v) > 1]
    assert merged == [["ZTF18aagqxtf", "ZTF18aagtxth"]]
    first = {z: found.filter(pc.equal(found.column("object_id"), z)).slice(0, 1).to_pylist()[0]
             for z in merged[0]}
    a, b = first.values()
    assert a["jd"] == b["jd"]
    assert SkyCoord(a["ra"], a["dec"], unit="deg").separation(
        SkyCoord(b["ra"], b["dec"], unit="deg")).arcsec < 0.1
    assert len(by_ztf) > 100


def _brute_force(ra, dec, surveys, association: Association) -> np.ndarray:
    """Object index of each alert, by the rule (nearest existing object, at the mean of its
    detections so far, within the pair's radius; ties to the older object), with astropy
    separations."""
    vectors = SkyCoord(ra * u.deg, dec * u.deg).cartesian.xyz.value.T
    sums: list[np.ndarray] = []
    home: list[str] = []
    out = np.empty(len(ra), np.int64)
    for i in range(len(ra)):
        best, best_sep = -1, None
        if sums:
            means = SkyCoord(*np.array(sums).T, representation_type="cartesian")
            seps = SkyCoord(ra[i] * u.deg, dec[i] * u.deg).separation(means).to_value(u.arcsec)
            for obj, sep in enumerate(seps):
                radius = association.radius_of(surveys[i], home[obj])
                if sep <= radius and (best_sep is None or sep < best_sep):
                    best, best_sep = obj, sep
        if best < 0:
            sums.append(np.zeros(3))
            home.append(surveys[i])
            best = len(sums) - 1
        sums[best] = sums[best] + vectors[i]
        out[i] = best
    return out


@pytest.mark.parametrize("centre", [(0.0, 0.0), (359.9999, 10.0), (45.0, 89.9995),
                                    (200.0, -89.9999), (120.0, 41.8103)])
def test_association_equals_a_brute_force_reference(tmp_path, centre):
    """Clusters of detections from two surveys around the poles, across RA 0/360 and at a
    base-pixel corner; per-pair radii."""
    rng = np.random.default_rng(7)
    n = 400
    sources = 25
    ra0 = (centre[0] + rng.normal(0, 3 / 3600, sources) / max(
        np.cos(np.radians(centre[1])), 1e-3)) % 360
    dec0 = np.clip(centre[1] + rng.normal(0, 3 / 3600, sources), -90, 90)
    pick = rng.integers(0, sources, n)
    ra = (ra0[pick] + rng.normal(0, 0.6 / 3600, n) / max(np.cos(np.radians(centre[1])),
                                                         1e-3)) % 360
    dec = np.clip(dec0[pick] + rng.normal(0, 0.6 / 3600, n), -90, 90)
    surveys = np.where(rng.random(n) < 0.5, "ZTF", "LSST").tolist()
    association = Association(1.5, {("LSST", "ZTF"): 1.0, ("LSST", "LSST"): 0.8})
    with AlertHistory(tmp_path, association, compact_every=0) as history:
        answer = pa.concat_tables([
            history.record(_alerts(ra[s:s + 50], dec[s:s + 50], np.arange(s, s + 50),
                                   surveys[s:s + 50], np.full(50, 60000.0 + s)))
            for s in range(0, n, 50)])
    expected = _brute_force(ra, dec, surveys, association)
    assert np.array_equal(answer.column("history_object_id").to_numpy() - 1, expected)
    assert len(set(expected)) > 5


def test_history_columns_and_refusals(tmp_path):
    alerts = _alerts([10.0, 10.0, 10.0, 20.0], [5.0, 5.0, 5.0, 6.0], [1, 2, 1, 3],
                     ["ZTF", "ZTF", "ZTF", None], [60000.0, 60002.0, 60003.0, 60000.0],
                     ["g", "g", "g", "r"], [18.0, 17.0, 16.0, 19.0])
    with AlertHistory(tmp_path, compact_every=0) as history:
        answer = history.record(alerts).to_pylist()
    assert [a["history_state"] for a in answer] == ["new", "known", "duplicate", "failed"]
    assert answer[3]["history_failure"] == "the history needs the alert's survey"
    assert answer[3]["history_object_id"] is None and answer[3]["history_detections"] is None
    assert answer[1]["history_detections"] == 2
    assert answer[1]["history_previous_mag"] == 18.0
    assert answer[1]["history_rate_mag_per_day"] == pytest.approx(-0.5)
    assert answer[2]["history_object_id"] == answer[0]["history_object_id"]
    with pytest.raises(InputError, match="would change its objects"):
        AlertHistory(tmp_path, Association(2.0))
    with pytest.raises(InputError, match="> 0 and <= 60"):
        Association(-1)


def _batches(seed=3, n_batches=12, size=400):
    rng = np.random.default_rng(seed)
    sources = 600
    ra0 = rng.uniform(0, 360, sources)
    dec0 = np.degrees(np.arcsin(rng.uniform(-1, 1, sources)))
    out = []
    for b in range(n_batches):
        pick = rng.integers(0, sources, size)
        ra = (ra0[pick] + rng.normal(0, 0.3 / 3600, size)) % 360
        dec = np.clip(dec0[pick] + rng.normal(0, 0.3 / 3600, size), -90, 90)
        out.append(_alerts(ra, dec, np.arange(b * size, (b + 1) * size),
                           ["ZTF"] * size, np.full(size, 60000.0 + b),
                           mag=rng.uniform(15, 20, size)))
    return out


def test_restart_replays_the_log_and_compaction_publishes_catalogs(tmp_path):
    batches = _batches()
    with AlertHistory(tmp_path / "clean", compact_every=0) as clean:
        for batch in batches:
            clean.record(batch)
        expected = clean.objects()
    data = tmp_path / "crashy"
    history = AlertHistory(data, compact_every=0)
    for batch in batches[:5]:
        history.record(batch)
    history.compact()
    for batch in batches[5:9]:
        history.record(batch)
    history.close()  # no compaction of the last four: the log holds them
    with AlertHistory(data, compact_every=0) as reopened:
        assert reopened.pending == 4 * 400
        again = reopened.record(batches[8])  # sent again (a stream re-delivers): duplicates
        assert set(again.column("history_state").to_pylist()) == {"duplicate"}
        for batch in batches[9:]:
            reopened.record(batch)
        assert reopened.objects().equals(expected)
        reopened.compact()
        detections = open_catalog("history_detections", DataDirectory(data))
        assert detections.num_rows == 12 * 400
        objects = open_catalog("history_objects", DataDirectory(data))
        assert objects.num_rows == expected.num_rows
        one = reopened.detections([1])
        assert one.num_rows == expected.column("detections")[0].as_py()


def test_a_torn_log_record_is_cut_and_damage_elsewhere_refused(tmp_path):
    batches = _batches(n_batches=3)
    with AlertHistory(tmp_path, compact_every=0) as history:
        for batch in batches:
            history.record(batch)
    segment = sorted((tmp_path / ".history" / "wal").glob("*.wal"))[-1]
    size = segment.stat().st_size
    with open(segment, "r+b") as handle:
        handle.truncate(size - 10)  # the last batch was being written when power went
    with AlertHistory(tmp_path, compact_every=0) as history:
        assert history.live.n_detections == 2 * 400
        history.record(batches[2])
        assert history.live.n_detections == 3 * 400
    data = bytearray(segment.read_bytes())
    data[40] ^= 0xFF  # damage inside the first record
    segment.write_bytes(bytes(data))
    with pytest.raises(DamagedCatalogError, match="fails its CRC-32|magic"):
        AlertHistory(tmp_path, compact_every=0)


KILLED_RUN = textwrap.dedent("""
    import sys
    sys.path[:0] = [sys.argv[3], sys.argv[3] + "/history"]
    from xmatch.history.store import AlertHistory
    from test_history import _batches
    history = AlertHistory(sys.argv[1], compact_every=0)
    for batch in _batches()[:int(sys.argv[2])]:
        history.record(batch)
    print("recorded", flush=True)
    history.compact()
    print("compacted", flush=True)
""")


@pytest.mark.parametrize("delay", [0.05, 0.4, 1.2])
def test_a_kill_during_compaction_loses_and_duplicates_nothing(tmp_path, delay):
    """SIGKILL at some point of a compaction; the reopened history equals a run that was
    never killed, and a later compaction publishes each detection once."""
    batches = _batches()
    with AlertHistory(tmp_path / "clean", compact_every=0) as clean:
        for batch in batches:
            clean.record(batch)
        expected = clean.objects()
    data = tmp_path / "killed"
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(data), "8", tests],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "recorded"
    import time

    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    with AlertHistory(data, compact_every=0) as history:
        assert history.live.n_detections == 8 * 400
        for batch in batches[8:]:
            history.record(batch)
        assert history.objects().equals(expected)
        history.compact()
        detections = open_catalog("history_detections", DataDirectory(data))
        ids = pa.concat_tables([detections.read_partition(p, ["alert_id"])
                                for p in detections.partitions]).column("alert_id")
        assert len(ids) == 12 * 400 == len(pc.unique(ids))


BACK_MATCH_RUN = textwrap.dedent("""
    import sys, time
    import numpy as np
    from xmatch.history.memory import AlertMemory
    from xmatch.watch import Watchlist
    rng = np.random.default_rng(4)
    ra = rng.uniform(0, 360, 150_000)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 150_000)))
    with AlertMemory(sys.argv[1]) as memory:
        watchlist = Watchlist("big", ra, dec, np.full(150_000, 60.0))
        print("adding", flush=True)
        started = time.perf_counter()
        _, found = memory.add_watch(watchlist)
        print(f"added {found.num_rows} {time.perf_counter() - started}", flush=True)
""")


def test_a_kill_during_back_matching_leaves_no_watch_and_the_history_whole(tmp_path):
    """SIGKILL while a watchlist is back-matched: no part of it is stored, the history is
    untouched; run again, it stores the watch and its hits."""
    import time

    rng = np.random.default_rng(3)
    n = 100_000
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    alerts = _alerts(ra, dec, np.arange(n), ["ZTF"] * n, np.full(n, 60000.0))
    with AlertHistory(tmp_path, compact_every=0) as history:
        history.record(alerts)
    # A full run first: how long the back-matching takes.
    run = [sys.executable, "-c", BACK_MATCH_RUN, str(tmp_path)]
    finished = subprocess.run(run, capture_output=True, text=True, check=True)
    _, hits, seconds = finished.stdout.splitlines()[-1].split()
    from xmatch.history.memory import AlertMemory

    with AlertMemory(tmp_path) as memory:
        memory.remove_watch("big")
    process = subprocess.Popen(run, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "adding"
    time.sleep(float(seconds) * 0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    with AlertMemory(tmp_path) as memory:
        assert memory.watches.names() == []
        assert memory.history.live.n_detections == n
        assert not [p for p in (tmp_path / ".watch").iterdir()]  # no temporary left
    again = subprocess.run(run, capture_output=True, text=True, check=True)
    assert again.stdout.splitlines()[-1].split()[1] == hits != "0"


def test_detections_beyond_the_tail_in_memory_are_read_back_from_the_log(tmp_path,
                                                                          monkeypatch):
    """Memory holds the newest logged detections only; the others come back from the log,
    the same detections, and back-matching sees them all."""
    from xmatch.history import store
    from xmatch.history.memory import AlertMemory
    from xmatch.watch import Watchlist

    batches = _batches()
    with AlertHistory(tmp_path / "all", compact_every=0) as history:
        for batch in batches:
            history.record(batch)
        expected = history.detections()
    monkeypatch.setattr(store, "TAIL_ROWS_IN_MEMORY", 1000)  # 2 batches of 400 stay
    with AlertMemory(tmp_path / "bounded", history_options={"compact_every": 0}) as memory:
        for batch in batches:
            memory.history.record(batch)
        assert memory.history._tail_rows <= 1000 < memory.history.pending
        assert memory.history.detections().equals(expected)
        ra = expected.column("ra_deg").to_numpy()
        dec = expected.column("dec_deg").to_numpy()
        _, found = memory.add_watch(Watchlist("all", ra, dec, np.full(len(ra), 0.5)))
        assert set(found.column("detection_id").to_pylist()) == set(
            expected.column("detection_id").to_pylist())
