"""Whole commands as a user runs them, each beside a floor measured in the same run (issue 14).

    python benchmarks/bench_commands.py                       # 3M audit, 1M imports, 2M score, 10M RSS runs
    python benchmarks/bench_commands.py --quick               # small sizes, to check the script
    python benchmarks/bench_commands.py --only audit import   # some commands

Every command runs in a fresh process (`python -m followaudit ...`, default options unless named);
wall time is measured around it; CPU time (user + system) is that of the process and every process
it started (Dask's workers included), peak RSS that of the largest of them (its ``os.wait4`` rusage). The floors are DuckDB's own readers on the same files, also in a fresh process:

  audit   `followaudit audit FILE.parquet` (canonical Parquet, default method, reasons, bursts,
          sections) vs a bare DuckDB scan that decodes every column of the file
  import  `followaudit import FILE.jsonl` (Twitter v1.1 JSONL) vs DuckDB `read_json` into a table;
          `followaudit import FILE.json` (the same users as one top-level JSON array) vs `read_json`;
          `followaudit import FILE.csv` (canonical CSV) vs DuckDB `read_csv` into a table;
          `followaudit import FILE.parquet` (canonical Parquet) vs DuckDB `read_parquet` into a table
  score   `followaudit score FILE.parquet -o OUT` (local; `dask`: `--engine dask`, a LocalCluster of 2 worker
          threads; `daskproc`: `--engine dask --processes`, 2 worker processes; `score10m`, `dask10m`: 10M rows)
  help    `followaudit --help` (start-up), median of 7

Inputs are generated once into benchmarks/out/ (git-ignored). Results are printed as a Markdown
table and written to benchmarks/out/commands.json. The machine's load average is printed: other work
on a shared 2-core machine slows every figure, and CPU seconds are the steadier measure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PY = sys.executable

SCAN = """
import duckdb, sys
con = duckdb.connect()
cols = [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [sys.argv[1]]).fetchall()]
# min() of every column forces DuckDB to read and decode all of them
con.execute("SELECT count(*), " + ", ".join(f'min("{c}")' for c in cols) + " FROM read_parquet(?)", [sys.argv[1]]).fetchall()
"""
READ_INTO = """
import duckdb, sys
con = duckdb.connect(sys.argv[2])
con.execute(f"CREATE TABLE t AS SELECT * FROM {sys.argv[3]}(?)", [sys.argv[1]])
"""


def _reaps_orphans() -> None:
    """Make this process the reaper of its descendants' orphans (Linux), so their CPU is counted too.

    A process started by a child and outliving it (a forkserver, a worker it forked) is otherwise
    reaped by init, and its CPU time never reaches this process's rusage.
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def run(argv: list[str], stdout: int | None = subprocess.DEVNULL) -> dict[str, Any]:
    """Wall seconds, CPU seconds of the process and all its descendants, and peak RSS (MiB) of the
    largest of them, for one fresh process. ``out`` holds its stdout when ``stdout`` is a pipe."""
    _reaps_orphans()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    # Both pipes are drained while the command runs (no deadlock on a full pipe); os.wait4 then gives
    # the command's own rusage, whose ru_maxrss is this run's (RUSAGE_CHILDREN's is the maximum ever).
    streams = [s for s in (proc.stdout, proc.stderr) if s is not None]
    chunks: dict[int, bytes] = {}
    readers = [threading.Thread(target=lambda s=s: chunks.__setitem__(id(s), s.read())) for s in streams]
    for t in readers:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    for t in readers:
        t.join()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # orphans of the command (none, unless it left processes behind)
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                time.sleep(0.05)
        except ChildProcessError:
            break
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = chunks.get(id(proc.stderr), b"").decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err[-2000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    measured = {"wall": wall, "cpu": cpu, "rss_mib": usage.ru_maxrss / 1024}
    if proc.stdout is not None:
        measured["out"] = chunks.get(id(proc.stdout), b"").decode(errors="replace")
    return measured


def fa(*args: str) -> list[str]:
    return [PY, "-m", "followaudit", *args]


def canonical_parquet(n: int) -> Path:
    """``n`` synthetic canonical followers in one Parquet file (written partition by partition)."""
    target = OUT / f"canonical_{n}.parquet"
    if target.exists():
        return target
    parts = OUT / f"canonical_{n}_parts"
    code = (
        "import sys; from followaudit.scale.synth_parquet import write_partitioned; "
        "write_partitioned(int(sys.argv[1]), sys.argv[2], seed=1)"
    )
    subprocess.run([PY, "-c", code, str(n), str(parts)], check=True)
    subprocess.run([PY, "-c", "import duckdb, sys; duckdb.sql(f\"COPY (SELECT * FROM read_parquet('{sys.argv[1]}/*.parquet')) "
                    "TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 250000)\")", str(parts), str(target)],
                   check=True)
    shutil.rmtree(parts)
    return target


def canonical_csv(n: int) -> Path:
    target = OUT / f"canonical_{n}.csv"
    if not target.exists():
        src = canonical_parquet(n)
        subprocess.run([PY, "-c", "import duckdb, sys; duckdb.sql(f\"COPY (SELECT * EXCLUDE (moderation_labels, raw) "
                        "FROM read_parquet('{sys.argv[1]}')) TO '{sys.argv[2]}' (HEADER)\")", str(src), str(target)], check=True)
    return target


def twitter_jsonl(n: int) -> Path:
    sys.path.insert(0, str(HERE))
    from bench_import import make_input

    return make_input(n, OUT)


def twitter_array(n: int) -> Path:
    """The users of ``twitter_jsonl(n)`` as one top-level JSON array, an element a line."""
    target = OUT / f"followers_{n}_array.json"
    if not target.exists():
        src = twitter_jsonl(n)
        with open(src, "rb") as lines, open(target, "wb") as out:
            out.write(b"[\n")
            for k, line in enumerate(lines):
                out.write((b",\n" if k else b"") + line.rstrip(b"\n"))
            out.write(b"\n]\n")
    return target


def row(command: str, n: int, measured: dict[str, float], floor: dict[str, float] | None, floor_name: str) -> dict:
    out = {"command": command, "rows": n, **measured, "rate": n / measured["wall"] if n else None}
    if floor is not None:
        out.update(floor_name=floor_name, floor_wall=floor["wall"], floor_cpu=floor["cpu"], floor_rss_mib=floor["rss_mib"],
                   ratio=measured["wall"] / floor["wall"])
    return out


def bench_audit(n: int, tmp: Path, *extra: str) -> dict:
    """The audit of a canonical Parquet file (read in place; ``--copy``: imported into the workspace first)."""
    src = canonical_parquet(n)
    floor = run([PY, "-c", SCAN, str(src)])
    measured = run(fa("audit", str(src), "--db", str(tmp / "audit.duckdb"), "--format", "json", *extra))
    return row(" ".join([f"followaudit audit canonical_{n}.parquet", *extra]), n, measured, floor, "DuckDB scan of every column")


def bench_import_jsonl(n: int, tmp: Path) -> dict:
    src = twitter_jsonl(n)
    floor = run([PY, "-c", READ_INTO, str(src), str(tmp / "floor.duckdb"), "read_json"])
    measured = run(fa("import", str(src), "--db", str(tmp / "import.duckdb")))
    return row(f"followaudit import followers_{n}.jsonl", n, measured, floor, "DuckDB read_json into a table")


def bench_import_array(n: int, tmp: Path) -> dict:
    src = twitter_array(n)
    floor = run([PY, "-c", READ_INTO, str(src), str(tmp / "floor_array.duckdb"), "read_json"])
    measured = run(fa("import", str(src), "--db", str(tmp / "import_array.duckdb")))
    return row(f"followaudit import followers_{n}_array.json", n, measured, floor, "DuckDB read_json into a table")


def bench_import_csv(n: int, tmp: Path) -> dict:
    src = canonical_csv(n)
    floor = run([PY, "-c", READ_INTO, str(src), str(tmp / "floor_csv.duckdb"), "read_csv"])
    measured = run(fa("import", str(src), "--db", str(tmp / "import_csv.duckdb")))
    return row(f"followaudit import canonical_{n}.csv", n, measured, floor, "DuckDB read_csv into a table")


def bench_import_parquet(n: int, tmp: Path, *extra: str) -> dict:
    src = canonical_parquet(n)
    floor = run([PY, "-c", READ_INTO, str(src), str(tmp / "floor_pq.duckdb"), "read_parquet"])
    measured = run(fa("import", str(src), "--db", str(tmp / "import_pq.duckdb"), *extra))
    return row(" ".join([f"followaudit import canonical_{n}.parquet", *extra]), n, measured, floor, "DuckDB read_parquet into a table")


def bench_score(n: int, tmp: Path, engine: str, *extra: str) -> dict:
    """``followaudit score``; Dask rows also carry the cluster's layout from the command's summary."""
    src = canonical_parquet(n)
    floor = run([PY, "-c", SCAN, str(src)])
    out = tmp / f"labels_{engine}"
    args = ["score", str(src), "-o", str(out if engine == "dask" else out.with_suffix(".parquet")), "--engine", engine, *extra]
    load = os.getloadavg()[0]
    measured = run(fa(*args), stdout=subprocess.PIPE)
    summary = json.loads(measured.pop("out"))
    out = row(" ".join([f"followaudit score canonical_{n}.parquet --engine {engine}", *extra]), n, measured, floor,
              "DuckDB scan of every column")
    layout = {k: summary.get(k) for k in ("workers", "partitions", "cluster_start_seconds") if summary.get(k) is not None}
    # The load from other work beside each run (CPU seconds are the steadier figure on a shared machine).
    return {**out, **layout, "scoring_seconds": summary.get("seconds"), "load": [round(load, 2), round(os.getloadavg()[0], 2)]}


def bench_help() -> dict:
    walls = [run(fa("--help"))["wall"] for _ in range(7)]
    return {"command": "followaudit --help", "rows": 0, "wall": statistics.median(walls), "cpu": None, "rss_mib": None, "rate": None}


def table(rows: list[dict]) -> str:
    lines = ["| command | rows | wall | CPU | peak RSS | rate | floor | floor wall | floor CPU | × floor |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        rate = f"{r['rate']:,.0f}/s" if r.get("rate") else ""
        cpu = f"{r['cpu']:.1f} s" if r.get("cpu") is not None else ""
        rss = f"{r['rss_mib']:,.0f} MiB" if r.get("rss_mib") is not None else ""
        floor = f"{r['floor_wall']:.2f} s" if "floor_wall" in r else ""
        floor_cpu = f"{r['floor_cpu']:.1f} s" if r.get("floor_cpu") is not None else ""
        ratio = f"{r['ratio']:.1f}" if "ratio" in r else ""
        lines.append(f"| `{r['command']}` | {r['rows']:,} | {r['wall']:.2f} s | {cpu} | {rss} | {rate} | {r.get('floor_name', '')} | {floor} | "
                     f"{floor_cpu} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (100k), to check the script")
    parser.add_argument("--only", nargs="*", default=None,
                        choices=["help", "audit", "auditcopy", "audit10m", "import", "array", "csv", "parquet", "parquetcopy",
                                 "score", "dask", "daskproc", "score10m", "dask10m"])
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    small = 100_000
    sizes = {
        "audit": small if args.quick else 3_000_000,
        "auditcopy": small if args.quick else 3_000_000,
        "audit10m": small if args.quick else 10_000_000,
        "import": small if args.quick else 1_000_000,
        "array": small if args.quick else 1_000_000,
        "csv": small if args.quick else 10_000_000,
        "parquet": small if args.quick else 10_000_000,
        "parquetcopy": small if args.quick else 10_000_000,
        "score": small if args.quick else 2_000_000,
        "dask": small if args.quick else 2_000_000,
        "daskproc": small if args.quick else 2_000_000,
        "score10m": small if args.quick else 10_000_000,
        "dask10m": small if args.quick else 10_000_000,
    }
    chosen = args.only or ["help", "audit", "auditcopy", "audit10m", "import", "array", "csv", "parquet", "parquetcopy",
                           "score", "dask"]
    # As pip installs it: the package's bytecode compiled. Python writes it on first import anyway,
    # but not under PYTHONDONTWRITEBYTECODE, where every run would compile each edited module anew.
    package = importlib.util.find_spec("followaudit")
    if package is not None and package.submodule_search_locations:
        subprocess.run([PY, "-m", "compileall", "-q", *package.submodule_search_locations], check=True)
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    rows: list[dict] = []
    for name in chosen:
        with tempfile.TemporaryDirectory(dir=OUT) as tmp_dir:
            tmp = Path(tmp_dir)
            if name == "help":
                rows.append(bench_help())
            elif name in ("audit", "audit10m"):
                rows.append(bench_audit(sizes[name], tmp))
            elif name == "auditcopy":
                rows.append(bench_audit(sizes[name], tmp, "--copy"))
            elif name == "import":
                rows.append(bench_import_jsonl(sizes[name], tmp))
            elif name == "array":
                rows.append(bench_import_array(sizes[name], tmp))
            elif name == "csv":
                rows.append(bench_import_csv(sizes[name], tmp))
            elif name == "parquet":
                rows.append(bench_import_parquet(sizes[name], tmp))
            elif name == "parquetcopy":
                rows.append(bench_import_parquet(sizes[name], tmp, "--copy"))
            elif name == "daskproc":
                rows.append(bench_score(sizes[name], tmp, "dask", "--processes"))
            else:
                rows.append(bench_score(sizes[name], tmp, "local" if name.startswith("score") else "dask"))
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(f"load average after: {os.getloadavg()}", file=sys.stderr)
    (OUT / "commands.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
