"""Solar-system objects: places of 1.3 M synthetic objects at one instant (two-body, light
time, topocentric) against skyfield on a subset; the nightly cache build for the same
population including the n-body step; and SSO cone latency in-process.

    python benchmarks/bench_sso.py [--objects 1300000] [--skyfield 2000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

#: The site of the benchmark (ZTF); places are timed a week after the synthetic element
#: epoch (2025-11-21, within two-body range), the cache is built for a night 99 days after
#: it, so the n-body step does real work (MPC epochs are refreshed every few months).
SITE = "I41"
PLACES_INSTANT = "2025-11-29T06:00:00"
NIGHT = "2026-02-28"
#: Timed runs of the places (the median is reported, and the first run apart).
REPEATS = 5


def place_figures(orbits, skyfield_objects: int) -> dict:
    from xmatch.kernels.orbits import GM_SUN, apparent
    from xmatch.sso.ephemeris import orbit_states, positions
    from xmatch.sso.observers import observatory, observer_posvel, sun_posvel
    from xmatch.timescales import tdb_mjd

    instant = PLACES_INSTANT
    positions(orbits.slice(0, 10), instant, SITE)  # compile
    # End to end from the elements; the first call also pays for first-touch memory.
    totals = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        table = positions(orbits, instant, SITE)
        totals.append(time.perf_counter() - started)
    # The kernel alone (states already built, observer and Sun already known).
    states, epochs = orbit_states(orbits)
    t = float(tdb_mjd(instant))
    o, ov = observer_posvel(observatory(SITE), t)
    s, sv = sun_posvel(t)
    kernels = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        apparent(states, epochs, t, o[0], ov[0], s[0], sv[0], GM_SUN)
        kernels.append(time.perf_counter() - started)
    total, kernel = float(np.median(totals)), float(np.median(kernels))

    from skyfield.api import Loader
    from skyfield.toposlib import ITRSPosition
    from skyfield.units import Distance
    from skyfield_data import get_skyfield_data_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load = Loader(get_skyfield_data_path(), verbose=False)
        ts = load.timescale(builtin=True)
    planets = load("de421.bsp")
    observer = planets["earth"] + ITRSPosition(Distance(km=observatory(SITE).itrs_km))
    from astropy.time import Time

    sky_t = ts.from_astropy(Time(instant, scale="utc"))
    rows = orbits.slice(0, skyfield_objects).to_pylist()
    from skyfield.constants import GM_SUN_Pitjeva_2005_km3_s2
    from skyfield.data.spice import inertial_frames
    from skyfield.keplerlib import _KeplerOrbit as KeplerOrbit

    started = time.perf_counter()
    worst = 0.0
    for i, row in enumerate(rows):
        # The same cometary elements (q, e, i, node, argperi, tp), TT perihelion time.
        orbit = KeplerOrbit._from_periapsis(
            row["q_au"] * (1 + row["e"]), row["e"], row["inc_deg"], row["node_deg"],
            row["argperi_deg"], ts.tt_jd(row["tp_mjd_tt"] + 2400000.5),
            GM_SUN_Pitjeva_2005_km3_s2, 10, row["designation"])
        orbit._rotation = inertial_frames["ECLIPJ2000"].T  # elements are J2000 ecliptic
        ra, dec, _ = observer.at(sky_t).observe(planets["sun"] + orbit).radec()
        worst = max(worst, _separation_arcsec(table["ra_deg"][i].as_py(),
                                              table["dec_deg"][i].as_py(),
                                              ra.degrees, dec.degrees))
    skyfield_seconds = time.perf_counter() - started
    planets.close()
    per_object = skyfield_seconds / len(rows)
    return {"objects": orbits.num_rows, "xmatch_s": total, "xmatch_first_s": totals[0],
            "kernel_s": kernel, "kernel_first_s": kernels[0],
            "skyfield_objects": len(rows), "skyfield_s": skyfield_seconds,
            "skyfield_projected_s": per_object * orbits.num_rows,
            "ratio": total / (per_object * orbits.num_rows),
            "max_difference_arcsec": worst}


def _separation_arcsec(ra1, dec1, ra2, dec2) -> float:
    from astropy.coordinates import angular_separation

    return float(np.degrees(angular_separation(*np.radians([ra1, dec1, ra2, dec2]))) * 3600)


def build_figures(orbits, data) -> tuple[dict, object]:
    from xmatch.sso.nightly import build_night

    started = time.perf_counter()
    # Named by its local date, as before night conventions existed: figures stay comparable.
    catalog = build_night(orbits, NIGHT, SITE, data=data, progress=False,
                          night_convention="local")
    seconds = time.perf_counter() - started
    options = catalog.spec.loader_options
    return {"objects": orbits.num_rows, "night": NIGHT, "seconds": seconds,
            "propagation_and_tracks_seconds": options["build_seconds"],
            "rows": catalog.num_rows, "partitions": len(catalog.partitions)}, catalog


def cone_figures(catalog, cones: int) -> dict:
    from xmatch.sso.nightly import NightIndex

    started = time.perf_counter()
    index = NightIndex.from_catalog(catalog)
    index_seconds = time.perf_counter() - started
    rng = np.random.default_rng(3)
    night = index.night
    times = rng.uniform(night.start_tdb, night.end_tdb, cones)
    # Cone centres where the population is: on objects' places at the night's middle.
    picks = rng.choice(len(index), cones)
    from xmatch.kernels.orbits import GM_SUN, apparent

    o, ov, s, sv = index.observer_track.at(night.reference_tdb)
    places = apparent(index.states[picks], night.reference_tdb, night.reference_tdb, o[0],
                      ov[0], s[0], sv[0], GM_SUN)
    ra = np.degrees(np.arctan2(places[:, 1], places[:, 0])) % 360
    dec = np.degrees(np.arcsin(places[:, 2]))
    index.cone(ra[0], dec[0], 1440.0, times[0])  # compile
    latencies, found = [], []
    for i in range(cones):
        started = time.perf_counter()
        answer = index.cone(ra[i], dec[i], 1440.0, times[i])
        latencies.append(time.perf_counter() - started)
        found.append(answer.num_rows)
    latencies = np.array(latencies) * 1e3
    return {"cones": cones, "radius_deg": 0.4, "p50_ms": float(np.percentile(latencies, 50)),
            "p99_ms": float(np.percentile(latencies, 99)),
            "objects_per_cone_median": float(np.median(found)),
            "index_seconds": index_seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_300_000)
    parser.add_argument("--skyfield", type=int, default=2000,
                        help="objects computed with skyfield (its time is projected)")
    parser.add_argument("--cones", type=int, default=2000)
    parser.add_argument("--json", type=Path, help="append results as one JSON line here")
    args = parser.parse_args(argv)
    from xmatch.sso.synthetic import synthetic_orbits

    orbits = synthetic_orbits(args.objects, seed=0)
    results = {"cores": os.cpu_count(), "night": NIGHT, "observatory": SITE}
    results["places"] = place_figures(orbits, args.skyfield)
    print(json.dumps(results["places"], indent=1))
    with tempfile.TemporaryDirectory() as data:
        results["build"], catalog = build_figures(orbits, data)
        print(json.dumps(results["build"], indent=1))
        results["cone"] = cone_figures(catalog, args.cones)
        print(json.dumps(results["cone"], indent=1))
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps({"benchmark": "sso", **results}) + "\n")
    return results


if __name__ == "__main__":
    main()
