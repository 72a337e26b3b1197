"""Run every benchmark: `python benchmarks/run.py` (add --quick for a small smoke run,
--only load|crossmatch|join|regions|service|alerts|context|stream|history|sso|
sso-accuracy|memory|chaos|exposure|vo for one of them).

Needs the benchmark extras: `pip install -e '.[benchmarks]'` (hats, lsdb, hats-import,
psutil). Figures go to standard output and, as JSON lines, to benchmarks/_work/results.jsonl;
benchmarks/RESULTS.md records them with the command that produced them.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_alerts  # noqa: E402
import bench_chaos  # noqa: E402
import bench_context  # noqa: E402
import bench_crossmatch  # noqa: E402
import bench_exposure  # noqa: E402
import bench_history  # noqa: E402
import bench_join  # noqa: E402
import bench_load  # noqa: E402
import bench_memory  # noqa: E402
import bench_regions  # noqa: E402
import bench_service  # noqa: E402
import bench_sso  # noqa: E402
import bench_stream  # noqa: E402
import bench_vo  # noqa: E402
import check_nbody  # noqa: E402
import check_twobody  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 M rows only: a smoke run of a few minutes")
    parser.add_argument("--only", choices=["load", "crossmatch", "join", "regions", "service",
                                           "alerts", "context", "stream", "history", "sso",
                                           "sso-accuracy", "memory", "chaos", "exposure", "vo"],
                        help="run one benchmark only")
    args = parser.parse_args()
    results = Path(__file__).resolve().parent / "_work" / "results.jsonl"
    results.parent.mkdir(exist_ok=True)
    if args.only in (None, "load"):
        rows = ["1000000"] if args.quick else ["10000000", "100000000"]
        print("== load: synthetic PS1 Parquet -> HATS catalog ==")
        bench_load.main(["--rows", *rows, "--json", str(results)])
    if args.only in (None, "crossmatch"):
        sizes = ["--rows", "1000000", "--queries", "100000"] if args.quick else []
        print("== cross-match and cone search: xmatch kernels vs astropy and LSDB ==")
        bench_crossmatch.main([*sizes, "--json", str(results)])
    if args.only in (None, "join"):
        sizes = ["--left-rows", "2000000"] if args.quick else []
        print("== catalog x catalog join on Dask (2 workers): 100 M PS1 x 20 M rows with proper "
              "motions, xmatch vs LSDB crossmatch ==")
        bench_join.main([*sizes, "--json", str(results)])
    if args.only in (None, "regions"):
        sizes = ["--rows", "1000000"] if args.quick else []
        print("== regions: rows in LVK 90 % credible regions, xmatch vs mocpy and LSDB ==")
        bench_regions.main([*sizes, "--json", str(results)])
    if args.only in (None, "service"):
        sizes = ["--cones", "500", "--positions", "100000"] if args.quick else []
        print("== service (embedded and 3-shard cluster): cone latency, concurrency, streaming ==")
        bench_service.main([*sizes, "--json", str(results)])
    if args.only in (None, "exposure"):
        sizes = (["--rounds", "3", "--cones", "1000", "--client-cones", "300", "--positions",
                  "200000", "--alerts", "200000"] if args.quick else [])
        print("== exposure: TLS, mutual TLS and tokens vs the same server without them ==")
        bench_exposure.main([*sizes, "--json", str(results)])
    if args.only in (None, "vo"):
        sizes = ["--cones", "300", "--positions", "20000"] if args.quick else []
        print("== VO face: Simple Cone Search latency, TAP upload join vs pyvo + astropy ==")
        bench_vo.main([*sizes, "--json", str(results)])
    if args.only in (None, "alerts"):
        sizes = (["--alerts", "50000", "--packets", "300", "--ps1-rows", "1000000"]
                 if args.quick else [])
        print("== alert annotation (embedded and 2-shard cluster) vs astropy, Avro in/out ==")
        bench_alerts.main([*sizes, "--json", str(results)])
    if args.only in (None, "context"):
        sizes = (["--ellipses", "1000000", "--positions", "200000", "--alerts", "100000",
                  "--ps1-rows", "1000000", "--galaxies", "100000"] if args.quick else [])
        print("== context: error regions over 10 M ellipses vs astropy; annotation with and "
              "without context ==")
        bench_context.main([*sizes, "--json", str(results)])
    if args.only in (None, "stream"):
        sizes = (["--packets", "3000", "--compact", "10000", "--visits", "2",
                  "--visit-alerts", "2000", "--visit-seconds", "10", "--memory-alerts", "50000"]
                 if args.quick else [])
        print("== Kafka streams: xmatch stream vs a bare transactional pass-through (tansu) ==")
        bench_stream.main([*sizes, "--json", str(results)])
    if args.only in (None, "history"):
        sizes = (["--detections", "2000000", "--alerts", "200000", "--entries", "200000",
                  "--maps", "20"] if args.quick else [])
        print("== alert history and watches: annotation with 10 lists and 100 maps, a history "
              "of 100 M detections, back-matching vs astropy ==")
        bench_history.main([*sizes, "--json", str(results)])
    if args.only in (None, "sso"):
        sizes = ["--objects", "100000", "--skyfield", "300", "--cones", "300"] if args.quick else []
        print("== solar-system objects: places vs skyfield, nightly cache build, SSO cones ==")
        bench_sso.main([*sizes, "--json", str(results)])
    if args.only in (None, "memory"):
        sizes = (["--rows", "1000000", "--gaia-rows", "1000000",
                  "--speed-rows", "1000000"] if args.quick
                 else ["--rows", "10000000", "100000000", "--peer-rows", "10000000"])
        print("== memory: what a shard holds per row, vs astropy SkyCoord + KD-tree; sizing "
              "for Gaia DR3 and PS1 DR2 ==")
        bench_memory.main([*sizes, "--json", str(results)])
    if args.only in (None, "sso-accuracy"):
        quick = ["--quick"] if args.quick else []
        print("== solar-system accuracy: two-body vs skyfield, n-body vs REBOUND, every orbit ==")
        check_twobody.main([*quick, "--json", str(results)])
        check_nbody.main([*quick, "--json", str(results)])
    if args.only in (None, "chaos"):
        sizes = ["--alerts", "100000", "--load-seconds", "60"] if args.quick else []
        print("== chaos: 1 M alerts through a secured router while shards are killed and links "
              "cut; 64 clients for 10 minutes ==")
        bench_chaos.main([*sizes, "--json", str(results)])


if __name__ == "__main__":
    main()
