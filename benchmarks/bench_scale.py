"""Scale benchmark (issue 9): `followaudit score` throughput and peak memory, local engine vs Dask.

    python benchmarks/bench_scale.py synth --sizes 1M 10M 100M       # partitioned canonical Parquet
    python benchmarks/bench_scale.py run --sizes 1M 10M --engines local dask [--method rules|model]
    python benchmarks/bench_scale.py run --sizes 10M --engines dask --scheduler tcp://HOST:8786
    python benchmarks/bench_scale.py cluster --sizes 10M --workers 4          # `dask scheduler` + `dask worker`

`synth` writes DIR/synth_<N>/part-NNNNN.parquet, 1M rows per partition, one `followaudit.synth`
account generated partition by partition (memory: one partition), into benchmarks/out/ (git-ignored).

`run` scores each input in a fresh subprocess, end to end from Parquet to labels Parquet plus
summary, exactly what `followaudit score` does. Reported per run:
  rows/s            rows / scoring seconds (Dask: on a running cluster; its start-up is listed apart)
  rows/s per core   rows/s / cores used (local: the machine's cores; Dask: workers x threads)
  CPU seconds       user+sys during scoring of the scoring process (Dask: client + workers); rows
                    per CPU-second does not depend on what else the machine runs
  peak RSS          local: the scoring process (ru_maxrss); Dask: the client process (with its
                    in-process workers, the default), and each worker process's own ru_maxrss read
                    on the worker at the end (their sum is the total)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
SIZES = {"1M": 1_000_000, "10M": 10_000_000, "100M": 100_000_000}

STEP = r"""
import json, os, resource, sys, time
from followaudit.synth import OBSERVED_AT
engine, src, dst, workers, scheduler, method = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] or None, sys.argv[6]
processes = sys.argv[7] == "processes"
out = {}
def own_cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
if engine == "local":
    from followaudit.scale.score import score_local
    cpu0 = own_cpu()
    r = score_local(src, dst, as_of=OBSERVED_AT, method=method)
    out["cpu_seconds"] = own_cpu() - cpu0
    out["cores"] = os.cpu_count()
else:
    from followaudit.scale.dask_engine import dask_client, score_dask
    def peak(dask_worker=None):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    def cpu(dask_worker=None):
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime
    t = time.perf_counter()
    with dask_client(scheduler, n_workers=workers, processes=processes) as client:
        out["cluster_start_seconds"] = time.perf_counter() - t
        # Workers that are threads of this process (the default LocalCluster) are counted with it, once.
        apart = [w for w, pid in client.run(os.getpid).items() if pid != os.getpid()]
        before, cpu0 = client.run(cpu, workers=apart) if apart else {}, own_cpu()
        r = score_dask(src, dst, as_of=OBSERVED_AT, method=method, client=client)
        after, client_cpu = client.run(cpu, workers=apart) if apart else {}, own_cpu() - cpu0
        info = client.scheduler_info()["workers"]
        out["cores"] = sum(w["nthreads"] for w in info.values())
        out["worker_peak_rss_mib"] = sorted(client.run(peak, workers=apart).values()) if apart else []
        out["cpu_seconds"] = client_cpu + sum(after[w] - before.get(w, 0.0) for w in after)
out.update(engine=engine, rows=r.rows, seconds=r.seconds, rate=r.rows_per_second,
           client_peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           shares={k: round(v.share, 6) for k, v in r.shares.items()}, extra=r.extra)
print("RESULT " + json.dumps(out))
"""


def size(text: str) -> int:
    return SIZES.get(text.upper(), None) or int(text.replace("_", ""))


def label(n: int) -> str:
    return next((k for k, v in SIZES.items() if v == n), str(n))


def synth(args: argparse.Namespace) -> None:
    from followaudit.scale.synth_parquet import write_partitioned

    for n in args.sizes:
        target = args.dir / f"synth_{label(n)}"
        if target.exists() and sum(1 for _ in target.glob("*.parquet")) == -(-n // args.partition_rows):
            print(f"{target} exists, kept")
            continue
        shutil.rmtree(target, ignore_errors=True)
        t = time.perf_counter()
        write_partitioned(n, target, partition_rows=args.partition_rows, seed=1)
        mib = sum(p.stat().st_size for p in target.glob("*.parquet")) / 2**20
        print(f"wrote {n:,} rows to {target} ({mib:,.0f} MiB) in {time.perf_counter() - t:.0f} s")


def run_one(engine: str, src: Path, dst: Path, workers: int, scheduler: str | None, method: str, processes: bool = False) -> dict:
    if dst.is_dir():
        shutil.rmtree(dst)
    dst.unlink(missing_ok=True)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", STEP, engine, str(src), str(dst), str(workers), scheduler or "", method,
         "processes" if processes else "threads"],
        capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{engine} on {src} failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["wall_seconds"] = wall
    return result


def run(args: argparse.Namespace) -> None:
    rows = []
    for n in args.sizes:
        src = args.dir / f"synth_{label(n)}"
        if not src.is_dir():
            raise SystemExit(f"{src} is missing: run `python benchmarks/bench_scale.py synth --sizes {label(n)}` first")
        for engine in args.engines:
            dst = args.dir / f"labels_{label(n)}_{engine}" if engine == "dask" else args.dir / f"labels_{label(n)}_local.parquet"
            r = run_one(engine, src, dst, args.workers, args.scheduler, args.method, args.processes)
            r["size"], r["method"] = label(n), args.method
            rows.append(r)
            per_core = r["rate"] / r["cores"]
            mem = (
                f"peak RSS {r['client_peak_rss_mib']:,.0f} MiB"
                if engine == "local" or not r["worker_peak_rss_mib"]
                else f"peak RSS client {r['client_peak_rss_mib']:,.0f} MiB, workers "
                + " + ".join(f"{w:,.0f}" for w in r["worker_peak_rss_mib"])
                + f" = {r['client_peak_rss_mib'] + sum(r['worker_peak_rss_mib']):,.0f} MiB"
            )
            start = r.get("cluster_start_seconds")
            print(
                f"{label(n):>5} {engine:>5} {args.method}: {r['rows']:,} rows in {r['seconds']:.1f} s = {r['rate']:,.0f} rows/s "
                f"({per_core:,.0f} per core, {r['cores']} cores); "
                f"CPU {r['cpu_seconds']:.1f} s = {r['rows'] / r['cpu_seconds']:,.0f} rows per CPU-second; "
                f"{mem}; wall {r['wall_seconds']:.1f} s"
                + (f" (cluster start {start:.1f} s)" if start is not None else ""),
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(dst, ignore_errors=True) if dst.is_dir() else dst.unlink(missing_ok=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


# A batch-scoring cluster's runtime at the rates the LocalCluster uses (dask_engine.LOCAL_CLUSTER_CONFIG),
# given to `dask scheduler` and `dask worker` the way a deployment would: Dask reads DASK_* variables.
CLUSTER_ENV = {
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "5s",
    "DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL": "1s",
    "POLARS_MAX_THREADS": "1",  # one Dask thread per worker process, so one Polars thread
    "OMP_NUM_THREADS": "1",
}


def cluster(args: argparse.Namespace) -> None:
    """A real cluster on this machine: `dask scheduler` and `dask worker --nworkers N` processes on
    127.0.0.1, then `followaudit score --engine dask --scheduler ADDR` as a user runs it. CPU is that
    of every process (scheduler, nannies, workers, the command), counted once all have exited."""
    import resource
    import tempfile

    dask_cli = str(Path(sys.executable).with_name("dask"))
    env = {**os.environ, **CLUSTER_ENV}
    for n in args.sizes:
        src = args.dir / f"synth_{label(n)}"
        if not src.is_dir():
            raise SystemExit(f"{src} is missing: run `python benchmarks/bench_scale.py synth --sizes {label(n)}` first")
        dst = args.dir / f"labels_{label(n)}_cluster"
        shutil.rmtree(dst, ignore_errors=True)
        with tempfile.TemporaryDirectory() as tmp:
            info = Path(tmp) / "scheduler.json"
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            load0, t = os.getloadavg()[0], time.perf_counter()
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
            sched = subprocess.Popen([dask_cli, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(info)], **quiet)
            workers = subprocess.Popen([dask_cli, "worker", "--scheduler-file", str(info), "--host", "127.0.0.1",
                                        "--nworkers", str(args.workers), "--nthreads", "1", "--no-dashboard",
                                        "--local-directory", tmp, "--preload", "followaudit.scale.score"], **quiet)
            try:
                address = _wait_for_workers(info, args.workers)
                started = time.perf_counter()
                cmd = [sys.executable, "-m", "followaudit", "score", str(src), "-o", str(dst), "--engine", "dask",
                       "--scheduler", address, "--method", args.method]
                if args.batch_rows:
                    cmd += ["--batch-rows", str(args.batch_rows)]
                done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                command_wall = time.perf_counter() - started
            finally:
                for proc in (workers, sched):  # the processes this function started, by their ids
                    proc.terminate()
                    proc.wait(timeout=60)
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        summary = json.loads(done.stdout)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        print(f"{label(n):>5} cluster of 1 scheduler + {args.workers} worker processes ({summary['partitions']} partitions), "
              f"{args.method}: scoring {summary['seconds']:.1f} s = {summary['rows_per_second']:,.0f} rows/s; the command "
              f"{command_wall:.1f} s; cluster up to down {wall:.1f} s; CPU of every process {cpu:.1f} s = "
              f"{summary['rows'] / cpu:,.0f} rows per CPU-second; largest process {after.ru_maxrss / 1024:,.0f} MiB; "
              f"load {load0:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
        if not args.keep:
            shutil.rmtree(dst, ignore_errors=True)


def _wait_for_workers(info: Path, n: int, timeout: float = 120) -> str:
    """The scheduler's address once ``n`` workers have joined it."""
    from distributed import Client

    deadline = time.monotonic() + timeout
    while not info.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the scheduler did not start")
        time.sleep(0.1)
    with Client(scheduler_file=str(info), timeout="30s") as client:
        client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
        return client.scheduler.address


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=OUT / "scale", help="where inputs and outputs go")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("synth", help="write partitioned synthetic canonical Parquet")
    s.add_argument("--sizes", type=size, nargs="+", default=[SIZES["1M"], SIZES["10M"]])
    s.add_argument("--partition-rows", type=int, default=1_000_000)
    r = sub.add_parser("run", help="score the inputs with each engine, measure rows/s and peak RSS")
    r.add_argument("--sizes", type=size, nargs="+", default=[SIZES["1M"], SIZES["10M"]])
    r.add_argument("--engines", nargs="+", choices=["local", "dask"], default=["local", "dask"])
    r.add_argument("--method", default="rules", help="labelling method (rules or model)")
    r.add_argument("--workers", type=int, default=2, help="LocalCluster workers (ignored with --scheduler)")
    r.add_argument("--processes", action="store_true", help="LocalCluster workers as processes (default: threads of the scoring process)")
    r.add_argument("--scheduler", default=None, help="tcp://HOST:PORT of an existing Dask cluster")
    r.add_argument("--keep", action="store_true", help="keep the label outputs")
    r.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    c = sub.add_parser("cluster", help="score on `dask scheduler` + `dask worker` processes on 127.0.0.1")
    c.add_argument("--sizes", type=size, nargs="+", default=[SIZES["10M"]])
    c.add_argument("--workers", type=int, default=4, help="worker processes (one thread each)")
    c.add_argument("--method", default="model", help="labelling method (rules or model)")
    c.add_argument("--batch-rows", type=int, default=None, help="rows per partition (default: the command's)")
    c.add_argument("--keep", action="store_true", help="keep the label outputs")
    args = parser.parse_args()
    print(f"polars threads: {os.environ.get('POLARS_MAX_THREADS', 'default')}; cores: {os.cpu_count()}")
    {"synth": synth, "run": run, "cluster": cluster}[args.cmd](args)


if __name__ == "__main__":
    main()
