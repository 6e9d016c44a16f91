"""Load benchmark of the web app: 50 concurrent clients on loopback, 1M-follower snapshot.

    python benchmarks/bench_web.py                       # builds benchmarks/out/web-1m.duckdb once
    python benchmarks/bench_web.py --followers 200000 --clients 20 --requests 10

The server is `followaudit serve` in its own process (uvicorn, one worker, as a user runs it); the
clients are httpx in this process. Each scenario runs ``clients`` concurrent clients that each send
``requests`` requests back to back; latency is per request, wall clock, after one warm-up request
that builds the server's per-snapshot cache (its time is reported separately). Results go to
stdout as a Markdown table and to ``benchmarks/out/bench_web.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

OUT = Path(__file__).resolve().parent / "out"


def build_workspace(path: Path, n: int) -> int:
    from followaudit.audit import audit_snapshot
    from followaudit.schema import SampleDesign
    from followaudit.sources.synth import SynthSpec, generate
    from followaudit.store import Store

    t0 = time.perf_counter()
    frame = generate(SynthSpec(n=n, seed=7, account="bench_account"))
    with Store(path) as store:
        sid = store.create_snapshot(platform="twitter", account="bench_account", source="bench_web.py", design=SampleDesign("full", n, n))
        store.replace_followers(sid, frame)
        audit_snapshot(store, sid)
    print(f"built {path} with {n:,} followers in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return sid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def scenarios(sid: int, rng: random.Random) -> dict[str, list[str]]:
    """Request paths per scenario (drawn up front so every run sends the same requests)."""
    sorts = ["follow_rank", "followers_count", "created_at", "posts_count"]
    reasons = ["has never posted", "fewer than half of the human profile traits (Camisani-Calzolari)"]

    def filtered() -> str:
        params = {"label": rng.choice(["fake", "inactive", "real"]), "sort": rng.choice(sorts),
                  "order": rng.choice(["asc", "desc"]), "page": rng.randint(1, 100)}
        if rng.random() < 0.3:
            params.pop("label")
            params["reason"] = rng.choice(reasons)
        return f"/snapshots/{sid}/followers?" + str(httpx.QueryParams(params))

    return {
        "report page (HTML)": [f"/snapshots/{sid}"] * 10_000,
        "report (.json)": [f"/snapshots/{sid}.json"] * 10_000,
        "follower table, default order, random page ≤ 20,000": [
            f"/snapshots/{sid}/followers?page={rng.randint(1, 20_000)}" for _ in range(10_000)
        ],
        "follower table, label/reason filter + sort + page": [filtered() for _ in range(10_000)],
    }


async def run_scenario(base: str, paths: list[str], clients: int, requests: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def worker(i: int) -> None:
            nonlocal errors
            for j in range(requests):
                path = paths[(i * requests + j) % len(paths)]
                t = time.perf_counter()
                try:
                    response = await client.get(path)
                    errors += response.status_code != 200
                except httpx.TransportError:  # counted, not fatal: the table reports it
                    errors += 1
                latencies.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        wall = time.perf_counter() - t0
    return {
        "requests": len(latencies), "errors": errors, "wall_s": wall, "rps": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * percentile(latencies, 99),
        "max_ms": 1000 * max(latencies),
    }


async def in_process(db: Path, paths: dict[str, list[str]], per_scenario: int) -> dict[str, dict[str, float]]:
    """Server cost alone: the same requests one at a time through httpx.ASGITransport (no socket,
    no competing client), after the same warm-up."""
    from followaudit.web import create_app

    app = create_app(db)
    out: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://local") as client:
        for name, ps in paths.items():
            await client.get(ps[0])
            latencies = []
            for path in ps[:per_scenario]:
                t = time.perf_counter()
                assert (await client.get(path)).status_code == 200
                latencies.append(time.perf_counter() - t)
            out[name] = {"requests": len(latencies), "p50_ms": 1000 * statistics.median(latencies),
                         "p99_ms": 1000 * percentile(latencies, 99)}
    app.state.db.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="requests per client per scenario")
    parser.add_argument("--only", default="", help="run only the scenarios whose name contains this text")
    parser.add_argument("--db", type=Path, default=None, help="existing workspace (default: build benchmarks/out/web-<n>.duckdb)")
    args = parser.parse_args()

    OUT.mkdir(exist_ok=True)
    db = args.db or OUT / f"web-{args.followers}.duckdb"
    if not db.exists():
        build_workspace(db, args.followers)
    from followaudit.store import Store

    with Store(db, read_only=True) as store:
        sid = int(store.list_snapshots()["snapshot_id"][-1])
        n = store.snapshot(sid).n_followers

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "followaudit", "serve", "--db", str(db), "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/index.json", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("server did not start") from None
                time.sleep(0.2)
        t = time.perf_counter()
        assert httpx.get(f"{base}/snapshots/{sid}", timeout=600).status_code == 200
        warm_report = time.perf_counter() - t
        t = time.perf_counter()
        assert httpx.get(f"{base}/snapshots/{sid}/followers", timeout=600).status_code == 200
        warm_table = time.perf_counter() - t

        results = {}
        for name, paths in scenarios(sid, random.Random(1)).items():
            if args.only not in name:
                continue
            results[name] = asyncio.run(run_scenario(base, paths, args.clients, args.requests))
            print(f"{name}: {results[name]}", file=sys.stderr)
            if "filter" in name:  # again: the server now holds the sort orders the first pass computed
                again = f"{name} (same requests again)"
                results[again] = asyncio.run(run_scenario(base, paths, args.clients, args.requests))
                print(f"{again}: {results[again]}", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)

    chosen = {k: v for k, v in scenarios(sid, random.Random(1)).items() if args.only in k}
    alone = asyncio.run(in_process(db, chosen, args.clients * args.requests))
    meta = {
        "followers": n, "clients": args.clients, "requests_per_client": args.requests,
        "cold_report_s": warm_report, "cold_table_s": warm_table,
        "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg(), "python": platform.python_version(), "machine": platform.machine(),
    }
    (OUT / f"bench_web{'-' + args.only.replace(' ', '_') if args.only else ''}.json").write_text(json.dumps({"meta": meta, "results": results, "in_process": alone}, indent=2))
    print(f"\n{n:,} followers, {args.clients} concurrent clients × {args.requests} requests per scenario, "
          f"{os.cpu_count()} CPUs (1-min load average at the end {os.getloadavg()[0]:.1f}); first (cold) report {warm_report:.1f} s, first follower page {warm_table:.2f} s\n")
    print("| scenario | requests | errors | req/s | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['requests']:,} | {r['errors']} | {r['rps']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} |")
    print("\nServer cost alone (in-process, one request at a time, after warm-up; the filter scenario's")
    print("requests run in the same order as above, so their first pass includes computing sort orders):\n")
    print("| scenario | requests | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    for name, r in alone.items():
        print(f"| {name} | {r['requests']:,} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")


if __name__ == "__main__":
    main()
