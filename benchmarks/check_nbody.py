"""N-body propagation (xmatch Wisdom-Holman, planets from DE421) against REBOUND/IAS15.

    python benchmarks/check_nbody.py               # all 22,304 MPCORB-excerpt orbits and
                                                   # 20,060 NEAs, 3 years; then throughput
    python benchmarks/check_nbody.py --quick       # 2,000 of each
    python benchmarks/check_nbody.py --only throughput

Accuracy: the same initial states go through both. REBOUND integrates the Sun and the same
perturbers (Mercury, Venus, Earth, Moon, Mars, Jupiter-Neptune barycentres; DE421 states
and GMs at the start; G = 1, masses = GM in AU^3/day^2, days) as an N-body system with the
small bodies as test particles (testparticle_type 0); our perturbers follow DE421
throughout, so the figures include REBOUND's own planets drifting from DE421 (reported).
Differences are angles between the two geocentric directions at the final time (geocentre
from DE421; geometric, no light time).

Throughput: particle-steps per second for synthetic main-belt orbits over 180 days, on one
and on all threads (numba), and the same with the pure two-body drift alone for scale.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numba
import numpy as np

from xmatch.kernels.orbits import two_body
from xmatch.sso.ephemeris import orbit_states
from xmatch.sso.mpc.readers import read_orbits
from xmatch.sso.planets import PERTURBERS, planets
from xmatch.sso.propagate import DEFAULT_STEP_DAYS, propagate_states
from xmatch.sso.synthetic import synthetic_orbits

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "sso"
# The REBOUND reference is the one the unit tests use.
sys.path.insert(0, str(REPO / "tests"))
from sso.nbody_oracle import geocentric_arcsec, rebound_reference  # noqa: E402

THREE_YEARS = 1096.0


def accuracy(name, path, limit, step_days):
    orbits = read_orbits(path)
    if limit:
        rows = np.sort(np.random.default_rng(0).choice(orbits.num_rows, limit, replace=False))
        orbits = orbits.take(rows)
    states, epoch = orbit_states(orbits)
    e0 = float(epoch.min())
    target = e0 + THREE_YEARS
    # REBOUND starts every particle at one epoch: carry any other epoch there two-body
    # (both integrators then start from the same states).
    states = two_body(states, epoch, e0)
    epoch = np.full(len(states), e0)
    t = time.perf_counter()
    ((planets_ref, ref),) = rebound_reference(states, e0, [target])
    rebound_s = time.perf_counter() - t
    propagate_states(states[:10], epoch[:10], target, step_days=step_days)  # compile
    t = time.perf_counter()
    ours, close = propagate_states(states, epoch, target, step_days=step_days)
    ours_s = time.perf_counter() - t
    angle = geocentric_arcsec(ours, ref, target)
    planet_km = np.linalg.norm(planets_ref[:, :3] - planets().heliocentric_planets(target),
                               axis=1) * 149597870.7
    result = {
        "set": name, "objects": len(states), "days": THREE_YEARS, "step_days": step_days,
        "max_arcsec": float(angle.max()),
        "p99_arcsec": float(np.percentile(angle, 99)),
        "p90_arcsec": float(np.percentile(angle, 90)),
        "median_arcsec": float(np.median(angle)),
        "beyond_1_arcsec": int((angle > 1).sum()),
        "beyond_1_arcsec_not_flagged": int(((angle > 1) & ~close).sum()),
        "close_approach": int(close.sum()),
        "ours_s": ours_s, "rebound_s": rebound_s, "speedup": rebound_s / ours_s,
        "rebound_planets_vs_de421_km": dict(zip(PERTURBERS, np.round(planet_km, 1).tolist(),
                                                strict=True)),
    }
    print(f"{name}: {len(states)} orbits, {THREE_YEARS:g} days, step {step_days} d: "
          f"max {angle.max():.3f}\", p99 {result['p99_arcsec']:.4f}\", "
          f"p90 {result['p90_arcsec']:.4f}\", median {result['median_arcsec']:.5f}\"; "
          f"{result['beyond_1_arcsec']} beyond 1\" ({result['beyond_1_arcsec_not_flagged']} "
          f"not flagged); {result['close_approach']} flagged close (< 0.01 AU)")
    print(f"  time: ours {ours_s:.2f} s, REBOUND/IAS15 {rebound_s:.1f} s "
          f"(x{result['speedup']:.0f})")
    print("  REBOUND planets vs DE421 at the end (km): "
          + ", ".join(f"{k} {v:g}" for k, v in result["rebound_planets_vs_de421_km"].items()))
    worst = np.argsort(-angle)[:5]
    print("  worst: " + ", ".join(f"{orbits.column('designation')[int(i)].as_py()} "
                                   f"{angle[i]:.3f}\"{' (close)' if close[i] else ''}"
                                   for i in worst))
    return result


def throughput(objects, days, step_days):
    orbits = synthetic_orbits(objects, seed=1, epoch_mjd_tt=61000.0)
    semimajor = (orbits.column("q_au").to_numpy()
                 / (1.0 - orbits.column("e").to_numpy()))
    results = {}
    for population, rows in (("main belt (a 2.1-3.3 AU)",
                              np.flatnonzero((semimajor > 2.1) & (semimajor < 3.3))),
                             ("whole synthetic population", np.arange(objects))):
        states, epoch = orbit_states(orbits.take(rows))
        target = float(epoch[0]) + days
        propagate_states(states[:10], epoch[:10], target, step_days=step_days)  # compile
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            best = np.inf
            for _ in range(2):
                t = time.perf_counter()
                _, close = propagate_states(states, epoch, target, step_days=step_days)
                best = min(best, time.perf_counter() - t)
            steps = len(states) * int(np.ceil(days / step_days))
            results[f"{population}, {threads} thread(s)"] = steps / best
            print(f"throughput, {population}: {len(states)} orbits x {days:g} days, step "
                  f"{step_days} d, {threads} thread(s): {best:.2f} s, "
                  f"{steps / best / 1e6:.2f} M particle-steps/s (refinement included; "
                  f"{int(close.sum())} flagged close)")
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return {"objects": objects, "days": days, "step_days": step_days,
            "particle_steps_per_s": results}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 orbits of each file")
    parser.add_argument("--only", choices=["accuracy", "throughput"])
    parser.add_argument("--step-days", type=float, default=DEFAULT_STEP_DAYS)
    parser.add_argument("--objects", type=int, default=100_000,
                        help="synthetic orbits for the throughput run")
    parser.add_argument("--json", type=Path, help="append results as one JSON line here")
    args = parser.parse_args(argv)
    results = {}
    if args.only in (None, "accuracy"):
        limit = 2000 if args.quick else 0
        results["main_belt"] = accuracy("MPCORB excerpt (K25BL)",
                                        DATA / "mpcorb_excerpt_K25BL.dat.gz", limit,
                                        args.step_days)
        results["nea"] = accuracy("NEA.txt", DATA / "NEA.txt.gz", limit, args.step_days)
    if args.only in (None, "throughput"):
        results["throughput"] = throughput(args.objects, 180.0, args.step_days)
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps({"benchmark": "nbody", **results}) + "\n")


if __name__ == "__main__":
    main()
