"""The watch store: watches added, replaced, removed and read back; the hits of all watches at
once against astropy (lists) and mocpy (maps); other processes' changes seen on refresh;
and a process killed while adding a watch, before its rename or at any moment of its
write, never leaves part of a watch visible."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mocpy import MOC
from watch.test_lists import BOUNDARY_ARCSEC, oracle_pairs, positions_near, random_entries
from watch.test_maps import random_moc

from xmatch.errors import CatalogNotFoundError, DamagedCatalogError, InputError
from xmatch.watch import HITS_SCHEMA, Watchlist, Watchmap, WatchStore


def small_list(name: str = "targets", seed: int = 1, n: int = 50) -> Watchlist:
    ra, dec, radius = random_entries(n, seed)
    names = pa.array([f"{name}-{i}" if i % 4 else None for i in range(len(ra))])
    return Watchlist(name, ra, dec, radius, names, f"{name}.csv")


def files_in(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_watches_persist_and_read_back(tmp_path):
    directory = tmp_path / "data" / ".watch"  # created on opening
    store = WatchStore(directory)
    assert directory.is_dir() and store.version == 0 and store.names() == []
    watchlist = small_list()
    watchmap = Watchmap.from_moc("gw.S250101a", "3/1-5 4/120", source="moc notice.fits")
    skymap = Watchmap("gw.S2", np.array([[0, 4 ** 29]]), "skymap s.fits at 0.9", 0.9)
    store.add_list(watchlist)
    store.add_map(watchmap)
    store.add_map(skymap)
    assert store.version == 3
    assert store.names() == ["gw.S2", "gw.S250101a", "targets"]
    assert "targets" in store and len(store) == 3
    described = store.describe()
    assert [d["name"] for d in described] == store.names()
    assert described[2] == {"name": "targets", "kind": "list", "entries": 59,
                            "sky_fraction": None, "level": None, "source": "targets.csv",
                            "added": described[2]["added"]}
    assert described[1]["kind"] == "map" and described[1]["entries"] is None
    assert described[1]["sky_fraction"] == pytest.approx(watchmap.sky_fraction)
    assert described[0]["level"] == 0.9 and described[1]["level"] is None
    added = datetime.strptime(described[0]["added"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - added).total_seconds()) < 60
    assert files_in(directory) == ["gw.S2.parquet", "gw.S250101a.parquet", "targets.parquet"]

    again = WatchStore(directory)
    assert again.version == 0 and again.describe() == described
    listed = again.get("targets")
    for field in ("ra_deg", "dec_deg", "radius_arcsec"):
        assert np.array_equal(getattr(listed, field), getattr(watchlist, field))
    assert listed.entry_names.equals(watchlist.entry_names) and listed.source == "targets.csv"
    mapped = again.get("gw.S250101a")
    assert np.array_equal(mapped.ranges29, watchmap.ranges29)
    assert mapped.source == "moc notice.fits" and mapped.level is None
    assert again.get("gw.S2").level == 0.9
    # The store keeps its own copy: the index the caller builds stays the caller's.
    watchlist.matches([1.0], [2.0])
    assert "index" in vars(watchlist) and "index" not in vars(store.get("targets"))


def test_add_replace_and_remove(tmp_path):
    store = WatchStore(tmp_path)
    store.add_list(small_list("a"))
    with pytest.raises(InputError, match=f"a watch named 'a' exists already in {tmp_path}; "
                                         "remove it first or add with replace"):
        store.add_list(small_list("a", seed=2))
    with pytest.raises(InputError, match="exists already"):
        store.add_map(Watchmap.from_moc("a", "3/1"))
    assert store.version == 1 and len(store.get("a")) == 59
    # Replacing a list by a map: one file, of the new kind.
    store.add_map(Watchmap.from_moc("a", "3/1"), replace=True)
    assert store.describe()[0]["kind"] == "map" and files_in(tmp_path) == ["a.parquet"]
    store.add_list(small_list("b", n=3), replace=True)  # an unknown name is simply added
    assert store.names() == ["a", "b"] and store.version == 3
    store.remove("a")
    assert store.names() == ["b"] and files_in(tmp_path) == ["b.parquet"]
    assert store.version == 4
    for name in ("a", "../b", "", None):
        with pytest.raises(CatalogNotFoundError, match=f"no watch named {name!r} in "
                                                       f"{tmp_path} \\(watches: b\\)"):
            store.remove(name)
    with pytest.raises(CatalogNotFoundError, match="no watch named 'zz'"):
        store.get("zz")
    with pytest.raises(InputError, match="add_list takes a Watchlist, not Watchmap"):
        store.add_list(Watchmap.from_moc("m", "3/1"))
    with pytest.raises(InputError, match="add_map takes a Watchmap"):
        store.add_map(small_list())
    assert WatchStore(tmp_path).names() == ["b"]


def expected_hits(store: WatchStore, ra, dec) -> list[tuple]:
    """The hits by astropy (each list's pairs within each entry's radius) and mocpy (each
    map's cells), as (query, watch, kind, entry, entry name, separation) rows."""
    rows = []
    for name in store.names():
        watch = store.get(name)
        if isinstance(watch, Watchlist):
            pairs = oracle_pairs(watch.ra_deg, watch.dec_deg, watch.radius_arcsec, ra, dec)
            names = (watch.entry_names.to_pylist() if watch.entry_names is not None
                     else [None] * len(watch))
            rows += [(q, name, "list", e, names[e], s) for (q, e), s in pairs.items()]
        else:
            inside = watch.moc().contains_lonlat(ra * u.deg, dec * u.deg)
            rows += [(int(q), name, "map", None, None, None) for q in np.flatnonzero(inside)]
    return rows


def test_hits_of_all_watches_equal_astropy_and_mocpy(tmp_path):
    store = WatchStore(tmp_path)
    lists = [small_list("bright", seed=1, n=60), small_list("faint", seed=2, n=40)]
    ra, dec, radius = random_entries(30, seed=3)
    lists.append(Watchlist("unnamed", ra, dec, radius, None, "u.csv"))
    for watchlist in lists:
        store.add_list(watchlist)
    polar = MOC.from_cone(0 * u.deg, 90 * u.deg, radius=2 * u.deg, max_depth=12)
    for name, moc in (("gw.a", random_moc(1)), ("gw.b", random_moc(2)), ("polar", polar)):
        store.add_map(Watchmap.from_moc(name, moc))
    q_ra, q_dec = [], []
    for watchlist in lists:
        near = positions_near(watchlist.ra_deg, watchlist.dec_deg, watchlist.radius_arcsec,
                              per_entry=4, seed=len(watchlist))
        q_ra.append(near[0])
        q_dec.append(near[1])
    q_ra, q_dec = np.concatenate(q_ra), np.concatenate(q_dec)
    hits = store.hits(q_ra, q_dec)
    assert hits.schema.equals(HITS_SCHEMA)
    expected = expected_hits(store, q_ra, q_dec)
    kinds = {kind: sum(1 for row in expected if row[2] == kind) for kind in ("list", "map")}
    assert kinds["list"] > 500 and kinds["map"] > 20

    def clear(rows):
        """Rows without the list pairs on their entry's boundary (either side is right)."""
        return sorted((row[:5] for row in rows
                       if row[2] == "map" or abs(row[5] - store.get(row[1]).radius_arcsec[
                           row[3]]) > BOUNDARY_ARCSEC), key=repr)

    got = list(zip(*(hits[c].to_pylist() for c in hits.column_names), strict=True))
    assert clear(got) == clear(expected)
    separations = {row[:4]: row[5] for row in expected if row[2] == "list"}
    for row in got:
        if row[2] == "list":
            assert row[5] == pytest.approx(separations[row[:4]], rel=1e-9, abs=1e-6)
    # Grouped by position; lists first, closest first; then maps by name.
    query = hits["query_index"].to_numpy()
    is_map = (hits["kind"].to_numpy(zero_copy_only=False) == "map").astype(int)
    separation = hits["separation_arcsec"].to_numpy(zero_copy_only=False)
    watch = hits["watch"].to_numpy(zero_copy_only=False)
    order = np.lexsort((watch, np.nan_to_num(separation), is_map, query))
    assert np.array_equal(order, np.arange(len(order)))
    maps = hits.filter(pa.array(is_map.astype(bool)))
    assert maps["entry"].null_count == maps["entry_name"].null_count == maps.num_rows
    assert maps["separation_arcsec"].null_count == maps.num_rows


def test_hits_with_nothing_to_find(tmp_path):
    store = WatchStore(tmp_path)
    assert store.hits([1.0, 2.0], [3.0, 4.0]).equals(HITS_SCHEMA.empty_table())
    store.add_map(Watchmap.from_moc("m", "0/0-11"))  # the whole sky
    hits = store.hits([10.0, 0.0], [0.0, -90.0])
    assert hits["query_index"].to_pylist() == [0, 1] and hits["watch"].to_pylist() == ["m"] * 2
    store.add_list(Watchlist("l", [10.0], [0.0], [5.0]))
    assert store.hits(np.empty(0), np.empty(0)).equals(HITS_SCHEMA.empty_table())
    hits = store.hits([10.0], [0.0])
    assert hits["kind"].to_pylist() == ["list", "map"]
    assert hits["entry"].to_pylist() == [0, None]
    assert hits["entry_name"].to_pylist() == [None, None]
    store.add_list(Watchlist("empty", [], [], []))
    assert store.hits([10.0], [0.0]).num_rows == 2
    with pytest.raises(InputError, match="ra = 400.0"):
        store.hits([400.0], [0.0])


def test_the_index_of_lists_is_rebuilt_only_when_lists_change(tmp_path):
    store = WatchStore(tmp_path)
    store.add_list(Watchlist("l", [10.0], [0.0], [5.0]))
    store.prepare()
    built = store._snapshot.lists_index
    store.add_map(Watchmap.from_moc("m", "3/1"))
    store.remove("m")
    assert store._snapshot.lists_index is built
    store.add_list(Watchlist("k", [20.0], [0.0], [5.0]))
    assert store._snapshot.lists_index is not built
    assert store.hits([20.0, 10.0], [0.0, 0.0])["watch"].to_pylist() == ["k", "l"]


def test_refresh_sees_what_other_processes_changed(tmp_path):
    mine, theirs = WatchStore(tmp_path), WatchStore(tmp_path)
    assert not theirs.refresh()
    mine.add_list(small_list("a"))
    mine.add_map(Watchmap.from_moc("m", "3/1"))
    assert theirs.refresh() and theirs.names() == ["a", "m"] and theirs.version == 1
    kept = theirs.get("a")
    assert not theirs.refresh() and theirs.version == 1
    mine.add_map(Watchmap.from_moc("m", "3/2"), replace=True)
    mine.remove("a")
    assert theirs.refresh() and theirs.names() == ["m"]
    assert theirs.get("m").ranges29.tolist() == mine.get("m").ranges29.tolist()
    assert kept is not None
    with pytest.raises(InputError, match="exists already"):
        theirs.add_map(Watchmap.from_moc("m", "3/3"))  # the disk decides, not the memory


def test_damaged_and_foreign_files(tmp_path):
    WatchStore(tmp_path).add_list(small_list("good"))
    (tmp_path / "README.txt").write_text("not a watch")
    (tmp_path / ".hidden.parquet").write_bytes(b"x")
    (tmp_path / "bad name.parquet").write_bytes(b"x")
    assert WatchStore(tmp_path).names() == ["good"]
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(DamagedCatalogError, match="watch file .*broken.parquet cannot be read"):
        WatchStore(tmp_path)
    pq.write_table(pa.table({"x": [1]}), tmp_path / "broken.parquet")
    with pytest.raises(DamagedCatalogError, match="is not a watch xmatch wrote"):
        WatchStore(tmp_path)
    os.replace(tmp_path / "good.parquet", tmp_path / "broken.parquet")
    with pytest.raises(DamagedCatalogError, match="it holds the watch 'good'"):
        WatchStore(tmp_path)


# ------------------------------------------------------------------------- crash safety

#: A process that adds a list to the store at argv[1] (replacing one, or not), named
#: "targets", of argv[3] entries; with argv[2] == "die-before-rename" it is killed the
#: moment its file is complete, before the rename that would publish it.
ADDING = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from xmatch.watch import Watchlist, WatchStore

    store = WatchStore(sys.argv[1])
    n = int(sys.argv[3])
    rng = np.random.default_rng(n)
    watchlist = Watchlist("targets", rng.uniform(0, 360, n), rng.uniform(-90, 90, n),
                          np.full(n, 3.0), None, "new")
    if sys.argv[2] == "die-before-rename":
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace = os.link = die
    print("adding", flush=True)
    store.add_list(watchlist, replace=True)
""")


def adding(directory, how: str, n: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", ADDING, str(directory), how, str(n)],
                            stdout=subprocess.PIPE, text=True)


def temporaries(directory) -> list[str]:
    return [name for name in files_in(directory) if name.endswith(".tmp")]


@pytest.mark.parametrize("existing", [False, True])
def test_killed_before_the_rename_leaves_the_old_state(tmp_path, existing):
    if existing:
        WatchStore(tmp_path).add_list(small_list("targets"))
    process = adding(tmp_path, "die-before-rename", 20_000)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert len(temporaries(tmp_path)) == 1  # the complete file that was never published
    store = WatchStore(tmp_path)
    assert temporaries(tmp_path) == []  # a dead process's file, deleted on opening
    if existing:
        assert store.names() == ["targets"] and len(store.get("targets")) == 59
        assert store.get("targets").source == "targets.csv"
    else:
        assert store.names() == []


def test_killed_at_any_moment_of_a_large_write(tmp_path):
    """A process writing two million entries is killed as soon as its temporary file
    appears, then a few milliseconds later: the reopened store holds the old list or the
    new one, whole."""
    WatchStore(tmp_path).add_list(small_list("targets"))
    for delay in (0.0, 0.005, 0.05):
        process = adding(tmp_path, "write", 2_000_000)
        process.stdout.readline()
        deadline = time.monotonic() + 60
        while not temporaries(tmp_path) and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.0005)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        store = WatchStore(tmp_path)
        assert temporaries(tmp_path) == []
        watchlist = store.get("targets")
        assert (len(watchlist), watchlist.source) in ((59, "targets.csv"), (2_000_000, "new"))
        if len(watchlist) == 2_000_000:  # it finished first: put the old one back
            store.add_list(small_list("targets"), replace=True)
