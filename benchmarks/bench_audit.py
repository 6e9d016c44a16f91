"""End-to-end audit benchmark (issue 3): import, label + estimate from the store and from Parquet.

    python benchmarks/bench_audit.py --sizes 1000000 10000000 [--method rules|model]

Each measured step runs in its own subprocess and reports its own peak RSS (VmHWM):
  import    Twitter v1.1 JSONL (what `followaudit synth` writes) -> DuckDB workspace      rows/s
  estimate  label + estimate from the workspace (streamed batches, tally, shares)        followers/s
  audit     all of `followaudit audit`: labels saved, bursts, reach sections             followers/s
  parquet   label + estimate from canonical Parquet, labels written (score_local)        followers/s
Inputs are generated once into benchmarks/out/ (git-ignored): the JSONL by bench_import.make_input
(`followaudit synth`, repeated with new ids above 1M), the Parquet partitions by
followaudit.scale.synth_parquet.write_partitioned.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"

STEP = r"""
import json, sys, time
from pathlib import Path
step, src, db, method = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
t = time.perf_counter()
if step == "import":
    from followaudit.ingest import import_file
    from followaudit.store import Store
    with Store(db) as store:
        n = import_file(store, src, platform="twitter", order="newest-first", account="bench").n_followers
elif step == "estimate":  # label + estimate from the store: stream, label, tally, shares
    from followaudit.audit import LABEL_INPUT_COLUMNS, LabelTally, as_of_time, build_report
    from followaudit.classify import label_followers
    from followaudit.store import Store
    with Store(db, read_only=True) as store:
        snap = store.snapshot("bench")
        tally = LabelTally()
        for batch in store.iter_followers(snap.snapshot_id, LABEL_INPUT_COLUMNS):
            tally.add(label_followers(batch, method=method, as_of=as_of_time(snap), platform=snap.platform))
        n = build_report(snap, tally, method=method, inactive_days=90, confidence=0.95).followers_audited
elif step == "audit":  # the whole `followaudit audit`: labels saved, bursts, reach sections
    from followaudit.audit import audit_snapshot
    from followaudit.store import Store
    with Store(db) as store:
        n = audit_snapshot(store, "bench", method=method).report.followers_audited
else:
    from followaudit.scale.score import score_local
    from followaudit.synth import OBSERVED_AT
    n = score_local(src, db, as_of=OBSERVED_AT, method=method).rows
seconds = time.perf_counter() - t
# VmHWM is this process's own peak; ru_maxrss would include the parent's (Linux keeps it across exec).
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"step": step, "rows": n, "seconds": seconds, "rate": n / seconds, "peak_rss_mib": hwm / 1024}))
"""


def ensure_inputs(n: int) -> tuple[Path, Path]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_import import make_input

    from followaudit.scale.synth_parquet import write_partitioned

    OUT.mkdir(exist_ok=True)
    jsonl = make_input(n, OUT)
    parquet = OUT / f"synth_{n}_parts"
    if not parquet.exists():
        write_partitioned(n, parquet, seed=1)
    return jsonl, parquet


def run_step(step: str, src: Path, target: Path, method: str) -> dict:
    done = subprocess.run([sys.executable, "-c", STEP, step, str(src), str(target), method], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--steps", nargs="+", default=["import", "estimate", "audit", "parquet"])
    parser.add_argument("--method", default="rules", choices=["rules", "model"])
    args = parser.parse_args()
    results = []
    for n in args.sizes:
        jsonl, parquet = ensure_inputs(n)
        db = OUT / f"bench_{n}.duckdb"
        for step in args.steps:
            if step == "import" and db.exists():
                db.unlink()
            src, target = (parquet, OUT / f"scored_{n}.parquet") if step == "parquet" else (jsonl, db)
            t = time.perf_counter()
            r = run_step(step, src, target, args.method)
            r["wall_with_startup"] = time.perf_counter() - t
            r["size"] = n
            r["method"] = args.method
            results.append(r)
            print(f"{n:>11,} {args.method:<6} {step:<8} {r['rows']:>11,} rows in {r['seconds']:7.2f} s = {r['rate']:>11,.0f}/s   peak RSS {r['peak_rss_mib']:7.0f} MiB", flush=True)
    (OUT / f"bench_audit_{args.method}.json").write_text(json.dumps(results, indent=2))
    print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; results in {OUT / f'bench_audit_{args.method}.json'}")


if __name__ == "__main__":
    main()
