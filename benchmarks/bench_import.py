"""Import speed and memory: Twitter v1.1 JSONL -> DuckDB workspace, 1M and 10M followers.

    python benchmarks/bench_import.py            # 1M and 10M
    python benchmarks/bench_import.py --sizes 1000000 --keep /tmp/bench-import
    python benchmarks/bench_import.py --sizes 1000000,3000000 --array --keep benchmarks/out   # JSON arrays

``--array`` imports the same users written as one top-level JSON array (an element a line): its
peak RSS should not grow with the file (the array is streamed), unlike a whole-file read.

Data: ``followaudit synth 1000000`` (Twitter v1.1 user objects, newest first, one per line). For
larger sizes the 1M file is repeated with the ids re-prefixed per copy (so every id is unique),
because synthesising 10M accounts at once needs more memory than the importer itself.

Each measurement runs the real CLI (``python -m followaudit import FILE --db NEW.duckdb``) in a
fresh process; wall time is measured around it and peak RSS is that process's ``ru_maxrss`` from
``os.wait4``, with its CPU time (user + system; on a busy shared machine wall time / CPU time shows
how much of the wait was other people's work). Also measured: parsing alone (the same streamed blocks, without the store) in a fresh
process. The machine's
load average is printed too: other work on a shared 2-core machine slows every figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

PY = sys.executable
BASE = 1_000_000


def synth(n: int, path: Path) -> None:
    subprocess.run([PY, "-m", "followaudit", "synth", str(n), "-o", str(path)], check=True, stderr=subprocess.DEVNULL)


def make_input(n: int, workdir: Path) -> Path:
    target = workdir / f"followers_{n}.jsonl"
    if target.exists():
        return target
    if n <= BASE:
        synth(n, target)
        return target
    base = make_input(BASE, workdir)
    lines = pl.read_csv(base, has_header=False, separator="\x00", quote_char=None, new_columns=["raw"],
                        schema={"raw": pl.Utf8})
    copies, rest = divmod(n, BASE)
    with open(target, "wb") as out:
        for k in range(1, copies + (1 if rest else 0) + 1):
            part = lines if k <= copies else lines.head(rest)
            # Distinct id prefixes per copy keep every id unique (lengths differ from copy 10 on).
            part = part.select(
                pl.col("raw").str.replace('"id":', f'"id":{k}', literal=True)
                .str.replace('"id_str":"', f'"id_str":"{k}', literal=True)
            )
            part.write_csv(out, include_header=False, quote_style="never")
    return target


# Parsing alone, block by block as the import does (the full table is not kept in memory).
PARSE_ONLY = """
from followaudit.sources.formats import stream
path = {path!r}
plan = stream.plan(path, platform=None, fmt=None, order=None, mapping=None, profiles=None)
rows = sum(b.followers.height for b in stream.iter_batches(path, plan, name=path))
assert rows == {n}, rows
"""


def measure(argv: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds user+system, peak RSS in MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def make_array(n: int, workdir: Path) -> Path:
    target = workdir / f"followers_{n}_array.json"
    if not target.exists():
        with open(make_input(n, workdir), "rb") as lines, open(target, "wb") as out:
            out.write(b"[\n")
            for k, line in enumerate(lines):
                out.write((b",\n" if k else b"") + line.rstrip(b"\n"))
            out.write(b"\n]\n")
    return target


def run(n: int, workdir: Path, array: bool = False) -> None:
    source = make_array(n, workdir) if array else make_input(n, workdir)
    size_mb = source.stat().st_size / 2**20
    db = workdir / f"bench_{n}.duckdb"
    for stale in (db, Path(str(db) + ".wal")):
        stale.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    parse_s, parse_cpu, parse_rss = measure([PY, "-c", PARSE_ONLY.format(path=str(source), n=n)])
    wall, cpu, rss = measure([PY, "-m", "followaudit", "import", str(source), "--db", str(db)])
    db_mb = db.stat().st_size / 2**20
    print(
        f"{n:>11,} rows  {size_mb:6.0f} MiB {'array' if array else 'JSONL'} | parse only: {parse_s:6.1f} s wall {n / parse_s:>8,.0f} rows/s, "
        f"{parse_cpu:6.1f} s CPU, peak {parse_rss:5.0f} MiB | import to DuckDB: {wall:6.1f} s wall "
        f"{n / wall:>8,.0f} rows/s, {cpu:6.1f} s CPU, peak {rss:5.0f} MiB, db {db_mb:5.0f} MiB | load avg {load:.1f}",
        flush=True,
    )
    db.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1_000_000, 10_000_000])
    parser.add_argument("--keep", type=Path, default=None, help="Keep generated inputs in this folder (reused next time).")
    parser.add_argument("--array", action="store_true", help="Import the users as one top-level JSON array instead.")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench-import-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"cpus {os.cpu_count()}, python {sys.version.split()[0]}, polars {pl.__version__}", flush=True)
    try:
        for n in args.sizes:
            run(n, workdir, args.array)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
