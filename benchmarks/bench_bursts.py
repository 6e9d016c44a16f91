"""Benchmark: follow-time estimation + burst detection on N followers in follow order.

    /work/venv/bin/python benchmarks/bench_bursts.py --n 10000000

Builds an organic sequence with the injection harness's generator (not timed), injects bricks, then
times each step separately. Figures go to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import polars as pl

from followaudit.bursts import burst_membership, estimate_follow_times, scan_bursts
from followaudit.bursts.harness import inject_bricks, organic_sequence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--bricks", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chart", type=str, default=None, help="also time the follower-factory chart to this file (.png/.svg/.html)")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    follow, created = organic_sequence(args.n, rng)
    frame = inject_bricks(follow, created, rng, bricks=args.bricks).frame.drop("brick")
    del follow, created
    print(f"generated {frame.height:,} followers in {time.perf_counter() - t:.1f} s (not part of the benchmark)")

    best: dict[str, float] = {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        timed = estimate_follow_times(frame)
        t1 = time.perf_counter()
        scan = scan_bursts(frame)
        t2 = time.perf_counter()
        members = burst_membership(frame, scan.bursts)
        t3 = time.perf_counter()
        for name, value in (("estimate", t1 - t0), ("detect", t2 - t1), ("membership", t3 - t2), ("estimate+detect", t2 - t0)):
            best[name] = min(best.get(name, float("inf")), value)
        del timed
    print(f"bursts found: {len(scan.bursts)}, followers inside: {members.height:,}")
    for b in scan.bursts:
        print(f"  #{b.burst_id} ranks {b.start_rank:,}-{b.end_rank:,} size {b.size:,} created {b.created_from:%Y-%m-%d}..{b.created_to:%Y-%m-%d}")
    for name, value in best.items():
        print(f"{name:>16}: {value:6.2f} s (best of {args.repeat})")
    if args.chart:
        from followaudit.render.charts import write_follower_factory

        t = time.perf_counter()
        path = write_follower_factory(args.chart, frame, scan.bursts, title=f"benchmark, {frame.height:,} followers")
        print(f"{'chart':>16}: {time.perf_counter() - t:6.2f} s ({path}, {path.stat().st_size / 1024:,.0f} KB)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB; polars threads {pl.thread_pool_size()}")


if __name__ == "__main__":
    main()
