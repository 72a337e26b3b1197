"""Context: (a) "which error regions contain this position" over 10 M per-row ellipses
(semi-major axes 1" to 2 deg), against astropy's search_around_sky plus the exact ellipse
test on a sample, and equal to it; (b) alert annotation with context (bright stars, variable
stars, host galaxies among 1 M synthetic galaxies with shapes) against the same annotation
without it, on the Gaia DR3 subset, synthetic PS1 and GCVS.

    python benchmarks/bench_context.py [--ellipses 10000000] [--positions 1000000]
        [--alerts 1000000] [--ps1-rows 50000000] [--galaxies 1000000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_alerts  # noqa: E402
import bench_service  # noqa: E402

HERE = Path(__file__).resolve().parent
MAX_AXIS_ARCSEC = 7200.0


def random_ellipses(n: int, seed: int = 1, sizes: str = "log-uniform"):
    """Ellipses over the sky: semi-major axes from 1" to 2 deg, axis ratios 0.05 to 1, any
    position angle. ``log-uniform`` sizes: as many per decade (each position then lies in
    about 9 per million ellipses); ``equal-area``: the number per decade falls as a^-2, so
    each decade covers the same sky (most regions small, as in real error-region
    catalogs: X-ray and radio circles of arcseconds, a few degree-wide GRB and gamma-ray
    regions)."""
    rng = np.random.default_rng(seed)
    if sizes == "log-uniform":
        a = 10 ** rng.uniform(0, np.log10(MAX_AXIS_ARCSEC), n)
    else:  # p(a) ~ a^-3 between 1" and MAX_AXIS_ARCSEC, by its inverse distribution
        a = (1 - rng.uniform(0, 1, n) * (1 - MAX_AXIS_ARCSEC ** -2)) ** -0.5
    return (rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n))), a,
            a * rng.uniform(0.05, 1, n), rng.uniform(-180, 180, n))


def region_figures(n_ellipses: int, n_positions: int, sample: int, sizes: str) -> dict:
    import astropy.units as u
    import psutil
    from astropy.coordinates import SkyCoord, search_around_sky

    from xmatch.index.region_index import RegionIndex

    ra, dec, a, b, pa = random_ellipses(n_ellipses, sizes=sizes)
    rss = psutil.Process().memory_info().rss
    start = time.perf_counter()
    index = RegionIndex.from_arrays(ra, dec, a, b, pa)
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(2)
    q_ra = rng.uniform(0, 360, n_positions)
    q_dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n_positions)))
    index.containing(q_ra[:1000], q_dec[:1000])  # compiled, warm
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        pairs = index.containing(q_ra, q_dec).num_rows
        best = min(best, time.perf_counter() - start)
    # The peer: astropy's KD-tree over the centres, every centre within the widest axis,
    # then the exact test (numpy) on those pairs; on a sample of positions, half of them
    # uniform and half placed within 1.2 semi-major axes of random ellipses' centres (so
    # the check has pairs to compare even where the ellipses cover little of the sky).
    centres = SkyCoord(ra * u.deg, dec * u.deg)
    near = rng.integers(0, n_ellipses, sample - sample // 2)
    spots = centres[near].directional_offset_by(
        rng.uniform(0, 360, len(near)) * u.deg, rng.uniform(0, 1.2, len(near)) * a[near]
        * u.arcsec)
    s_ra = np.r_[q_ra[:sample // 2], spots.ra.deg]
    s_dec = np.r_[q_dec[:sample // 2], spots.dec.deg]
    found = index.containing(s_ra, s_dec)
    queries = SkyCoord(s_ra * u.deg, s_dec * u.deg)
    search_around_sky(queries[:10], centres, MAX_AXIS_ARCSEC * u.arcsec)  # builds the tree
    start = time.perf_counter()
    qi, ci, sep, _ = search_around_sky(queries, centres, MAX_AXIS_ARCSEC * u.arcsec)
    phi = centres[ci].position_angle(queries[qi]).rad - np.radians(pa[ci])
    rho = sep.arcsec * np.hypot(np.cos(phi) / a[ci], np.sin(phi) / b[ci])
    peer_s = time.perf_counter() - start
    expected = {(int(q), int(c)) for q, c in zip(qi[rho <= 1], ci[rho <= 1], strict=True)}
    got = set(zip(found["query_index"].to_pylist(), found["row"].to_pylist(), strict=True))
    borderline = {(int(q), int(c)) for q, c, r in zip(qi, ci, rho, strict=True)
                  if abs(r - 1) < 1e-9}
    return {"sizes": sizes, "ellipses": n_ellipses, "positions": n_positions,
            "build_s": build_s,
            "index_mib": index.nbytes / 2**20,
            "process_rss_growth_mib": (psutil.Process().memory_info().rss - rss) / 2**20,
            "cells": len(index.keys), "orders": index.orders.tolist(),
            "lookup_s": best, "positions_per_s": n_positions / best,
            "pairs_found": pairs, "sample": sample,
            "sample_equal_to_astropy": (got - borderline) == (expected - borderline),
            "sample_pairs": len(expected),
            "astropy_positions_per_s": sample / peer_s,
            "speed_up": (n_positions / best) / (sample / peer_s)}


GALAXY_SPEC = """
name = "galaxies_synthetic"
title = "Synthetic galaxies with shapes (benchmark)"

[columns]
id = "galaxy_id"
ra = "ra"
dec = "dec"

[context]
purposes = ["galaxies"]

[context.shape]
semi_major = "a_arcsec"
axis_ratio = "b_over_a"
position_angle = "pa_deg"
unit = "arcsec"
isophote = "synthetic"

[context.distance]
luminosity_mpc = "dist_mpc"

[partitioning]
threshold_rows = 200000
highest_order = 8

[provenance]
synthetic = true
"""

CONTEXT = """
[[layer]]
name = "bright_star"
kind = "bright_star"
catalog = "gaia_dr3"
band = "G"

[[layer]]
name = "variable_star"
kind = "variable_star"
catalog = "gcvs"
radius_arcsec = 2.0

[[layer]]
name = "host"
kind = "host_galaxy"
catalog = "galaxies_synthetic"
max_dlr = 5.0
fixed_radius_kpc = 30.0

[[rule]]
class = "variable_star"
layer = "variable_star"

[[rule]]
class = "bright_star"
layer = "bright_star"

[[rule]]
class = "nuclear"
layer = "host"
max_separation_arcsec = 1.0

[[rule]]
class = "supernova"
layer = "host"
max_distance = 5.0
"""


def galaxies(data, work: Path, n: int):
    """``n`` synthetic galaxies over the sky: semi-major axes log-normal around 8" (1" to
    10'), axis ratios 0.1 to 1, luminosity distances 10 to 500 Mpc."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xmatch import LoadOptions, load_catalog
    from xmatch.specs import parse_spec

    if "galaxies_synthetic" in data.names():
        return
    rng = np.random.default_rng(5)
    source = work / f"galaxies_{n}.parquet"
    pq.write_table(pa.table({
        "galaxy_id": np.arange(n, dtype=np.int64), "ra": rng.uniform(0, 360, n),
        "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
        "a_arcsec": np.clip(np.exp(rng.normal(np.log(8.0), 0.8, n)), 1.0, 600.0),
        "b_over_a": rng.uniform(0.1, 1.0, n), "pa_deg": rng.uniform(0, 180, n),
        "dist_mpc": rng.uniform(10, 500, n)}), source)
    load_catalog(spec=parse_spec(GALAXY_SPEC), sources=[str(source)], data=data,
                 options=LoadOptions(progress=False))


def annotation_figures(args) -> dict:
    import pyarrow.compute as pc

    from xmatch.service.client import Client

    data, ps1 = bench_alerts.alerts_data(args.work_dir, args.ps1_rows)
    galaxies(data, args.work_dir, args.galaxies)
    config = args.work_dir / "bench_context.toml"
    config.write_text(CONTEXT)
    catalogs = ["gaia_dr3", ps1, "gcvs"]
    alerts = bench_alerts.amplified(args.alerts)
    address = f"127.0.0.1:{bench_service.free_port()}"
    server = bench_service.start_server(["serve", "--data", str(data.root), "--port",
                                         address.rsplit(":", 1)[1], "--context-config",
                                         str(config)], address)
    figures = {"alerts": args.alerts, "catalogs": catalogs, "galaxies": args.galaxies}
    try:
        with Client(address, timeout=None) as client:
            for context in (False, True):  # warm-up: compile, build the layers
                list(client.annotate(alerts.slice(0, 20_000), catalogs=catalogs,
                                     context=context))
            for label, context in (("without_context", False), ("with_context", True)) * 2:
                start = time.perf_counter()
                classes = {}
                for batch in client.annotate(alerts, catalogs=catalogs, context=context,
                                             batch_size=bench_alerts.VISIT):
                    if context:
                        for item in pc.value_counts(batch.table["context_class"]).to_pylist():
                            classes[item["values"]] = (classes.get(item["values"], 0)
                                                       + item["counts"])
                seconds = time.perf_counter() - start
                if seconds < figures.get(label, {}).get("seconds", float("inf")):
                    figures[label] = {"seconds": seconds,
                                      "alerts_per_s": args.alerts / seconds}
                    if context:
                        figures["classes"] = classes
    finally:
        bench_service.stop_server(server)
    figures["context_adds"] = (figures["with_context"]["seconds"]
                               / figures["without_context"]["seconds"] - 1)
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ellipses", type=int, default=10_000_000)
    parser.add_argument("--positions", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2_000,
                        help="positions checked against astropy (and timed for it)")
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--ps1-rows", type=int, default=50_000_000)
    parser.add_argument("--galaxies", type=int, default=1_000_000)
    parser.add_argument("--work-dir", type=Path, default=HERE / "_work")
    parser.add_argument("--json", type=Path, help="append results as one JSON line here")
    parser.add_argument("--skip-annotation", action="store_true")
    parser.add_argument("--skip-regions", action="store_true")
    args = parser.parse_args(argv)
    results = {}
    for sizes in () if args.skip_regions else ("log-uniform", "equal-area"):
        results[f"regions_{sizes}"] = region_figures(args.ellipses, args.positions,
                                                     args.sample, sizes)
        print(json.dumps(results[f"regions_{sizes}"], indent=1), flush=True)
    if not args.skip_annotation:
        results["annotation"] = annotation_figures(args)
        print(json.dumps(results["annotation"], indent=1), flush=True)
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps({"benchmark": "context", **results}) + "\n")
    return results


if __name__ == "__main__":
    main()
