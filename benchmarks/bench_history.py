"""Alert history and watches: (a) annotation with the history, 10 watchlists totalling 1 M
entries and 100 watchmaps, in process; (b) the history grown to N detections in 10,000-alert
visits: the time of each visit (p50, p99), memory (RSS, bytes per object and per detection),
compactions included; (c) back-matching a 1 M-entry watchlist against every detection,
against astropy's ``search_around_sky`` on a sample (equal pairs; its time projected).

    python benchmarks/bench_history.py [--detections 100000000] [--alerts 1000000]
        [--entries 1000000] [--maps 100]

Synthetic sky: objects uniform on the sphere; in each visit a fraction (--known, 0.8) of the
alerts re-detect random known objects (0.1" scatter), the rest are new; alert ids unique,
ZTF and LSST alternately.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

HERE = Path(__file__).resolve().parent
VISIT = 10_000


def uniform_sky(rng, n):
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


class Sky:
    """Alerts of a growing synthetic sky: each visit re-detects known objects (60 %) and
    finds new ones."""

    def __init__(self, seed: int, capacity: int, known: float = 0.6):
        self.known = known
        self.rng = np.random.default_rng(seed)
        self.ra = np.empty(capacity)
        self.dec = np.empty(capacity)
        self.objects = 0
        self.next_id = 1
        self.mjd = 60000.0

    def visit(self, n: int = VISIT) -> pa.Table:
        from xmatch.alerts.fields import compact_alerts

        rng = self.rng
        again = int(n * self.known) if self.objects else 0
        fresh = n - again
        ra_new, dec_new = uniform_sky(rng, fresh)
        self.ra[self.objects:self.objects + fresh] = ra_new
        self.dec[self.objects:self.objects + fresh] = dec_new
        picked = rng.integers(0, self.objects, again) if again else np.empty(0, np.int64)
        self.objects += fresh
        scatter = 0.1 / 3600
        dec = np.r_[self.dec[picked] + rng.normal(0, scatter, again), dec_new]
        dec = np.clip(dec, -90, 90)
        ra = np.r_[(self.ra[picked] + rng.normal(0, scatter, again)
                    / np.maximum(np.cos(np.radians(dec[:again])), 1e-3)) % 360, ra_new]
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        self.mjd += 0.0004  # about 35 s per visit
        return compact_alerts(pa.table({
            "alert_id": ids, "survey": np.where(ids % 2 == 0, "ZTF", "LSST"),
            "ra_deg": ra, "dec_deg": dec, "mjd_tai": np.full(n, self.mjd),
            "band": np.where(ids % 3 == 0, "g", "r"), "mag": rng.uniform(16, 21, n),
            "mag_err": np.full(n, 0.05)}))


def watches(rng, n_lists: int, entries: int, n_maps: int):
    """10 watchlists (radii log-uniform 1"-30", one entry in 1000 up to 1800"), and
    watchmaps: the real sky maps' 90 % regions where ../shared has them, the rest random
    discs of 0.5-10 deg as MOCs."""
    import astropy.units as u
    from mocpy import MOC

    from xmatch.watch import Watchlist, Watchmap

    lists = []
    for number in range(n_lists):
        n = entries // n_lists
        ra, dec = uniform_sky(rng, n)
        radius = 10 ** rng.uniform(0, np.log10(30), n)
        wide = rng.random(n) < 1e-3
        radius[wide] = rng.uniform(30, 1800, wide.sum())
        lists.append(Watchlist(f"list-{number}", ra, dec, radius))
    maps = []
    skymaps = sorted((HERE.parent.parent / "shared" / "data" / "skymaps").glob("*.fits.gz"))
    for number, path in enumerate(skymaps[:n_maps]):
        maps.append(Watchmap.from_skymap(f"skymap-{number}", str(path), 0.9))
    while len(maps) < n_maps:
        ra, dec = uniform_sky(rng, 1)
        moc = MOC.from_cone(ra[0] * u.deg, dec[0] * u.deg, radius=rng.uniform(0.5, 10) * u.deg,
                            max_depth=12)
        maps.append(Watchmap.from_moc(f"disc-{len(maps)}", moc.to_string("ascii")))
    return lists, maps


def annotation_figures(args, work: Path) -> dict:
    """(a): alerts/s of AlertMemory.annotate with history and watches."""
    import psutil

    from xmatch.history.memory import AlertMemory

    rng = np.random.default_rng(7)
    lists, maps = watches(rng, 10, args.entries, args.maps)
    data = work / "annotate"
    shutil.rmtree(data, ignore_errors=True)
    sky = Sky(1, args.alerts + VISIT, args.known)
    with AlertMemory(data, history_options={"compact_every": 0}) as memory:
        start = time.perf_counter()
        for watch in lists + maps:
            memory.add_watch(watch)
        add_s = time.perf_counter() - start
        start = time.perf_counter()
        memory.watches.prepare()
        prepare_s = time.perf_counter() - start
        batch = args.batch
        memory.annotate(sky.visit(batch), history=True, watches=True)  # compiled, warm
        alerts = [sky.visit(batch) for _ in range(args.alerts // batch)]
        hits = 0
        start = time.perf_counter()
        for table in alerts:
            _, found = memory.annotate(table, history=True, watches=True)
            hits += len(found.flatten())
        seconds = time.perf_counter() - start
        rss = psutil.Process().memory_info().rss
    n = batch * len(alerts)
    return {"alerts": n, "batch": batch, "lists": len(lists),
            "entries": sum(len(w) for w in lists), "maps": len(maps),
            "watches_added_s": round(add_s, 2), "index_prepare_s": round(prepare_s, 2),
            "seconds": round(seconds, 3), "alerts_per_s": round(n / seconds),
            "hits": hits, "rss_gib": round(rss / 2**30, 2)}


def history_figures(args, work: Path) -> tuple[dict, object, Sky]:
    """(b): grow the history to ``args.detections`` in visits; (c) then back-matches."""
    import psutil

    from xmatch.history.memory import AlertMemory

    data = work / "history"
    shutil.rmtree(data, ignore_errors=True)
    sky = Sky(2, args.detections + VISIT, args.known)
    memory = AlertMemory(data)  # compaction as deployed (every 5 M detections)
    memory.annotate(sky.visit(100), history=True, watches=False)  # compiled, warm
    times = []
    peak_rss = 0
    started = time.perf_counter()
    recorded = 100
    while recorded < args.detections:
        table = sky.visit()
        start = time.perf_counter()
        memory.annotate(table, history=True, watches=False)
        times.append(time.perf_counter() - start)
        recorded += table.num_rows
        if len(times) % 500 == 0:
            peak_rss = max(peak_rss, psutil.Process().memory_info().rss)
            print(f"  {recorded:,} detections, {memory.history.live.n_objects:,} objects, "
                  f"{time.perf_counter() - started:,.0f} s, last visit "
                  f"{times[-1] * 1000:.0f} ms, RSS {peak_rss / 2**30:.2f} GiB", flush=True)
    fill_s = time.perf_counter() - started
    live = memory.history.live
    sizes = memory.history.nbytes()
    peak_rss = max(peak_rss, psutil.Process().memory_info().rss)
    times_ms = np.array(times) * 1000
    tail = times_ms[len(times_ms) * 9 // 10:]
    figures = {
        "detections": live.n_detections, "objects": live.n_objects,
        "fill_s": round(fill_s), "detections_per_s": round(live.n_detections / fill_s),
        "visit_alerts": VISIT, "visits": len(times),
        "visit_ms_p50": round(float(np.percentile(times_ms, 50)), 1),
        "visit_ms_p99": round(float(np.percentile(times_ms, 99)), 1),
        "visit_ms_max": round(float(times_ms.max()), 1),
        "last_tenth_visit_ms_p99": round(float(np.percentile(tail, 99)), 1),
        "object_bytes": sizes["objects"], "alert_id_bytes": sizes["alert_ids"],
        "bytes_per_object": round(sizes["objects"] / max(live.n_objects, 1), 1),
        "bytes_per_detection": round(sizes["alert_ids"] / max(live.n_detections, 1), 1),
        "peak_rss_gib": round(peak_rss / 2**30, 2),
        "not_compacted": memory.history.pending}
    return figures, memory, sky


def backmatch_figures(args, memory, sky: Sky) -> dict:
    """(c): a 1 M-entry watchlist back-matched against the whole history; astropy on a
    sample of entries and detections, its pairs equal to ours there."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord, search_around_sky

    from xmatch.watch import Watchlist

    rng = np.random.default_rng(9)
    n = args.entries
    # Half the entries on known objects (so there is something to find), half anywhere.
    on = rng.integers(0, sky.objects, n // 2)
    ra, dec = uniform_sky(rng, n - n // 2)
    radius = 10 ** rng.uniform(0, np.log10(30), n)
    watchlist = Watchlist("backmatch", np.r_[sky.ra[on], ra], np.r_[sky.dec[on], dec], radius)
    del sky.ra, sky.dec  # the benchmark's own copy of the sky
    start = time.perf_counter()
    with memory.history.no_compaction():  # one in progress ends first (add_watch waits too)
        pass
    compaction_wait_s = time.perf_counter() - start
    start = time.perf_counter()
    _, found = memory.add_watch(watchlist)
    backmatch_s = time.perf_counter() - start
    hits = found.num_rows
    ours_entries = found.column("entry").to_numpy()
    ours_ids = found.column("detection_id").to_numpy()
    del found
    # The peer: astropy over sampled entries and detections (the widest radius, then each
    # entry's own), projected to the whole by the product of the sampling fractions (the
    # pairs it has to test grow as entries x detections per area).
    history = memory.history
    total = history.live.n_detections
    keep = min(1.0, args.sample_detections / total)
    sampled = []
    with history.no_compaction():
        for piece in memory._detections_through(history.log.next_sequence - 1):
            chosen = rng.random(piece.num_rows) < keep
            sampled.append(piece.select(["detection_id", "ra_deg", "dec_deg"]).filter(
                pa.array(chosen)))
    sample = pa.concat_tables(sampled)
    det_id = sample.column("detection_id").to_numpy()
    entries_sample = min(n, args.sample_entries)
    chosen_entries = rng.choice(n, entries_sample, replace=False)
    entries = SkyCoord(watchlist.ra_deg[chosen_entries] * u.deg,
                       watchlist.dec_deg[chosen_entries] * u.deg)
    points = SkyCoord(sample.column("ra_deg").to_numpy() * u.deg,
                      sample.column("dec_deg").to_numpy() * u.deg)
    start = time.perf_counter()
    i, j, sep, _ = search_around_sky(entries, points, radius.max() * u.arcsec)
    within = sep.arcsec <= radius[chosen_entries][i]
    astropy_s = time.perf_counter() - start
    theirs = set(zip(chosen_entries[i[within]].tolist(), det_id[j[within]].tolist(),
                     strict=True))
    in_sample = np.isin(ours_entries, chosen_entries) & np.isin(ours_ids, det_id)
    ours = set(zip(ours_entries[in_sample].tolist(), ours_ids[in_sample].tolist(),
                   strict=True))
    scale = (n / entries_sample) * (total / len(det_id))
    return {"entries": n, "detections": total, "backmatch_s": round(backmatch_s, 2),
            "compaction_wait_s": round(compaction_wait_s, 2),
            "hits": hits, "astropy_sample": [entries_sample, len(det_id)],
            "astropy_sample_s": round(astropy_s, 2),
            "astropy_projected_s": round(astropy_s * scale),
            "projection": "sample time x (entries / sampled entries) x (detections / sampled "
                          "detections)",
            "sample_pairs": len(theirs), "sample_pairs_equal": ours == theirs}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detections", type=int, default=100_000_000)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="alerts per annotate call")
    parser.add_argument("--known", type=float, default=0.8,
                        help="fraction of each visit's alerts that re-detect a known object")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--maps", type=int, default=100)
    parser.add_argument("--sample-entries", type=int, default=20_000)
    parser.add_argument("--sample-detections", type=int, default=2_000_000)
    parser.add_argument("--work-dir", type=Path, default=HERE / "_work")
    parser.add_argument("--json", type=Path, help="append results as one JSON line here")
    parser.add_argument("--skip-annotation", action="store_true")
    parser.add_argument("--skip-history", action="store_true")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    if not args.skip_annotation:
        results["annotation"] = annotation_figures(args, args.work_dir)
        print(json.dumps(results["annotation"], indent=1), flush=True)
    if not args.skip_history:
        results["history"], memory, sky = history_figures(args, args.work_dir)
        print(json.dumps(results["history"], indent=1), flush=True)
        with memory:
            results["backmatch"] = backmatch_figures(args, memory, sky)
        print(json.dumps(results["backmatch"], indent=1), flush=True)
        shutil.rmtree(args.work_dir / "history", ignore_errors=True)
    shutil.rmtree(args.work_dir / "annotate", ignore_errors=True)
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps({"benchmark": "history", **results}) + "\n")
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
