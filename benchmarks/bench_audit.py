"""End-to-end audit benchmark (issue 3): import, label + estimate from the store and from Parquet.

    python benchmarks/bench_audit.py --sizes 1000000 10000000

Each measured step runs in its own subprocess so its peak RSS (ru_maxrss) is its own:
  import   Twitter v1.1 JSONL (what `followaudit synth` writes) -> DuckDB workspace   rows/s
  audit    label + estimate from the workspace (streamed; labels written back)     followers/s
  parquet  label + estimate from canonical Parquet (followaudit.scale.score_local)  followers/s
Inputs are generated once into benchmarks/out/ (git-ignored) with `followaudit.synth`.
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
import json, resource, sys, time
from pathlib import Path
step, src, db = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
if step == "import":
    from followaudit.ingest import import_file
    from followaudit.store import Store
    with Store(db) as store:
        n = import_file(store, src, platform="twitter", order="newest-first", account="bench").n_followers
elif step == "audit":
    from followaudit.audit import audit_snapshot
    from followaudit.store import Store
    with Store(db) as store:
        n = audit_snapshot(store, "bench").report.followers_audited
else:
    from followaudit.scale.score import score_local
    from followaudit.synth import OBSERVED_AT
    n = score_local(src, db, as_of=OBSERVED_AT).rows
seconds = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"step": step, "rows": n, "seconds": seconds, "rate": n / seconds, "peak_rss_mib": rss}))
"""


def ensure_inputs(n: int) -> tuple[Path, Path]:
    from followaudit.synth import write_synth

    OUT.mkdir(exist_ok=True)
    jsonl, parquet = OUT / f"synth_{n}.jsonl", OUT / f"synth_{n}.parquet"
    if not jsonl.exists() or not parquet.exists():
        # One generation per size; the frame is large but this process is not measured.
        write_synth(n, jsonl, seed=1)
        write_synth(n, parquet, seed=1)
    return jsonl, parquet


def run_step(step: str, src: Path, target: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", STEP, step, str(src), str(target)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--steps", nargs="+", default=["import", "audit", "parquet"])
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
            r = run_step(step, src, target)
            r["wall_with_startup"] = time.perf_counter() - t
            r["size"] = n
            results.append(r)
            print(f"{n:>11,} {step:<8} {r['rows']:>11,} rows in {r['seconds']:7.2f} s = {r['rate']:>11,.0f}/s   peak RSS {r['peak_rss_mib']:7.0f} MiB", flush=True)
    (OUT / "bench_audit.json").write_text(json.dumps(results, indent=2))
    print(f"cores: {os.cpu_count()}; results in {OUT / 'bench_audit.json'}")


if __name__ == "__main__":
    main()
