"""Benchmark: follow-time estimation + burst detection on N followers in follow order.

    /work/venv/bin/python benchmarks/bench_bursts.py --n 10000000
    /work/venv/bin/python benchmarks/bench_bursts.py --audit-db /tmp/x.duckdb   # attach_bursts' parts on a stored audit

Builds an organic sequence with the injection harness's generator (not timed), injects bricks, then
times each step separately. With ``--audit-db`` (a workspace after ``followaudit audit``, copied
first, never changed) it times instead what ``attach_bursts`` does inside an audit, in CPU seconds:
reading ranks and times, the scan, the members and their labels in SQL, the reasons written back.
Figures go to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import polars as pl

from followaudit.bursts import burst_membership, estimate_follow_times, scan_bursts
from followaudit.bursts.harness import inject_bricks, organic_sequence


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def audit_parts(db: str, repeat: int) -> None:
    """attach_bursts' steps on a copy of a stored audit, in CPU seconds (best of ``repeat`` for the scan)."""
    import os
    import shutil
    import tempfile

    from followaudit.bursts.attach import add_burst_reasons, burst_members, label_bursts
    from followaudit.store.workspace import open_store

    copy = Path(tempfile.mkdtemp()) / "bench.duckdb"
    shutil.copy(db, copy)
    store = open_store(copy)
    sid = int(store.list_snapshots()["snapshot_id"].max())
    method = store.row("SELECT method FROM labels WHERE snapshot_id = ? LIMIT 1", [sid])["method"]
    times: dict[str, float] = {}

    def timed(name: str, fn):  # noqa: ANN001, ANN202
        start = _cpu()
        out = fn()
        times[name] = min(times.get(name, float("inf")), _cpu() - start)
        return out

    frame = timed("read ranks and times", lambda: store.query(
        "SELECT follow_rank, created_at, followed_at FROM followers WHERE snapshot_id = ?", [sid]))
    for _ in range(repeat):
        scan = timed("scan_bursts", lambda: scan_bursts(frame))
    members = timed("members + labels (SQL)", lambda: burst_members(store, sid, scan, method))
    timed("fake shares", lambda: label_bursts(scan, members))
    timed("reasons written (SQL)", lambda: add_burst_reasons(store, sid, method, scan, members))
    store.close()
    shutil.rmtree(copy.parent)
    print(f"{frame.height:,} followers, {len(scan.bursts)} bursts, {members.height:,} members; load average {os.getloadavg()[0]:.2f}")
    for name, value in times.items():
        print(f"{name:>24}: {value:6.3f} CPU-s")
    print(f"{'total':>24}: {sum(times.values()):6.3f} CPU-s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audit-db", default=None, help="time attach_bursts' parts on (a copy of) this audited workspace")
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--bricks", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chart", type=str, default=None, help="also time the follower-factory chart to this file (.png/.svg/.html)")
    args = parser.parse_args()
    if args.audit_db:
        audit_parts(args.audit_db, args.repeat)
        return

    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    follow, created = organic_sequence(args.n, rng)
    frame = inject_bricks(follow, created, rng, bricks=args.bricks).frame.drop("brick")
    del follow, created
    print(f"generated {frame.height:,} followers in {time.perf_counter() - t:.1f} s (not part of the benchmark)")

    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), _cpu()
        timed = estimate_follow_times(frame)
        t1, c1 = time.perf_counter(), _cpu()
        scan = scan_bursts(frame)
        t2, c2 = time.perf_counter(), _cpu()
        members = burst_membership(frame, scan.bursts)
        t3, c3 = time.perf_counter(), _cpu()
        for name, value, used in (("estimate", t1 - t0, c1 - c0), ("detect", t2 - t1, c2 - c1), ("membership", t3 - t2, c3 - c2),
                                  ("estimate+detect", t2 - t0, c2 - c0)):
            best[name] = min(best.get(name, float("inf")), value)
            cpu[name] = min(cpu.get(name, float("inf")), used)
        del timed
    print(f"bursts found: {len(scan.bursts)}, followers inside: {members.height:,}")
    for b in scan.bursts:
        print(f"  #{b.burst_id} ranks {b.start_rank:,}-{b.end_rank:,} size {b.size:,} created {b.created_from:%Y-%m-%d}..{b.created_to:%Y-%m-%d}")
    for name, value in best.items():
        print(f"{name:>16}: {value:6.2f} s wall, {cpu[name]:6.2f} CPU-s (best of {args.repeat})")
    import os

    print(f"load average {os.getloadavg()[0]:.2f}")
    if args.chart:
        from followaudit.render.charts import write_follower_factory

        t = time.perf_counter()
        path = write_follower_factory(args.chart, frame, scan.bursts, title=f"benchmark, {frame.height:,} followers")
        print(f"{'chart':>16}: {time.perf_counter() - t:6.2f} s ({path}, {path.stat().st_size / 1024:,.0f} KB)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB; polars threads {pl.thread_pool_size()}")


if __name__ == "__main__":
    main()
