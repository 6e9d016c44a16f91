"""Load benchmark of the web app: concurrent clients on loopback, 1M-follower snapshot.

    python benchmarks/bench_web.py --clients 20 --requests 20   # builds benchmarks/out/web-1000000.duckdb once
    python benchmarks/bench_web.py --followers 200000 --clients 20 --requests 10
    python benchmarks/bench_web.py --clients 20 --requests 20 --client httpx   # the heavier client

The server is `followaudit serve` in its own process (uvicorn, one worker, as a user runs it). The
clients run in this process: by default each is one keep-alive HTTP/1.1 connection driven with
asyncio streams (``RawClient``, ~0.1 ms of CPU per request); ``--client httpx`` uses
httpx.AsyncClient, which spends ~2.4 ms of CPU per request, 2-10x the server, on the same 2 cores.
Each scenario runs ``clients`` concurrent clients that each send ``requests`` requests back to back;
latency is per request, wall clock, after one warm-up request that builds the server's per-snapshot
cache (its time is reported separately). The server's own CPU time per request (from
/proc/PID/stat) is reported beside it. Results go to stdout as Markdown tables and to
``benchmarks/out/bench_web.json``.
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


class RawClient:
    """One keep-alive HTTP/1.1 connection sending GETs, as a browser tab does, with asyncio streams.

    Enough HTTP for this server (every response has a Content-Length). A load generator that costs
    little CPU, so that on 2 shared cores the latency measured is the server's, not the client's.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
            head = (await self.reader.readuntil(b"\r\n\r\n")).lower()
            at = head.index(b"content-length:") + len(b"content-length:")
            await self.reader.readexactly(int(head[at : head.index(b"\r\n", at)]))
        except (OSError, ValueError, asyncio.IncompleteReadError):
            await self.close()
            raise
        if b"connection: close" in head:
            await self.close()
        return int(head[9:12])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def run_scenario(base: str, paths: list[str], clients: int, requests: int, kind: str = "raw") -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    host, port = base.removeprefix("http://").rsplit(":", 1)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        raw = [RawClient(host, int(port)) for _ in range(clients)]

        async def get(i: int, path: str) -> int:
            return await raw[i].get(path) if kind == "raw" else (await client.get(path)).status_code

        async def worker(i: int) -> None:
            nonlocal errors
            for j in range(requests):
                path = paths[(i * requests + j) % len(paths)]
                t = time.perf_counter()
                try:
                    errors += await get(i, path) != 200
                except (httpx.TransportError, OSError, ValueError, asyncio.IncompleteReadError):
                    errors += 1  # counted, not fatal: the table reports it
                latencies.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        wall = time.perf_counter() - t0
        for r in raw:
            await r.close()
    return {
        "requests": len(latencies), "errors": errors, "wall_s": wall, "rps": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * percentile(latencies, 99),
        "max_ms": 1000 * max(latencies),
    }


def wait_idle(pid: int, limit: float = 120.0) -> float:
    """Seconds until the server stops using CPU (it warms sort orders in a thread after building an
    audit, as while a user reads the report): no 0.5 s window with more than 0.05 CPU-s."""
    t0 = time.perf_counter()
    before = process_cpu(pid)
    while time.perf_counter() - t0 < limit:
        time.sleep(0.5)
        now = process_cpu(pid)
        if not now - before > 0.05:  # also ends at once where /proc is missing (nan)
            break
        before = now
    return time.perf_counter() - t0


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used; nan where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def asgi_get(app: object, path: str) -> int:
    """One GET through the ASGI app itself: no socket, no client library."""
    route, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": route, "raw_path": route.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"127.0.0.1")], "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
    }
    status = 0

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])  # type: ignore[call-overload]

    await app(scope, receive, send)  # type: ignore[operator]
    return status


async def in_process(db: Path, paths: dict[str, list[str]], per_scenario: int) -> dict[str, dict[str, float]]:
    """Server cost alone: the same requests one at a time straight into the ASGI app (no socket, no
    client), after the same warm-up and once the server has warmed its sort orders. ``cpu_ms`` is
    this process's CPU time per request (all threads)."""
    from followaudit.web import create_app
    from followaudit.web.data import freeze_long_lived

    app = create_app(db)
    out: dict[str, dict[str, float]] = {}
    for name, ps in paths.items():
        assert await asgi_get(app, ps[0]) == 200
        app.state.db.wait_warm()
        freeze_long_lived()  # as the server does once started and once warm
        latencies = []
        cpu = time.process_time()
        for path in ps[:per_scenario]:
            t = time.perf_counter()
            assert await asgi_get(app, path) == 200
            latencies.append(time.perf_counter() - t)
        cpu = time.process_time() - cpu
        out[name] = {"requests": len(latencies), "p50_ms": 1000 * statistics.median(latencies),
                     "p99_ms": 1000 * percentile(latencies, 99), "cpu_ms": 1000 * cpu / len(latencies)}
    app.state.db.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="requests per client per scenario")
    parser.add_argument("--only", default="", help="run only the scenarios whose name contains this text")
    parser.add_argument("--db", type=Path, default=None, help="existing workspace (default: build benchmarks/out/web-<n>.duckdb)")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw",
                        help="load generator: one keep-alive connection per client with asyncio streams, or httpx.AsyncClient")
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
        warming = wait_idle(server.pid)

        results = {}
        for name, paths in scenarios(sid, random.Random(1)).items():
            if args.only not in name:
                continue
            runs = [name, f"{name} (same requests again)"] if "filter" in name else [name]
            for run in runs:  # again: the server now holds what the first pass computed, and its pages
                cpu = process_cpu(server.pid)
                results[run] = asyncio.run(run_scenario(base, paths, args.clients, args.requests, args.client))
                results[run]["server_cpu_ms"] = 1000 * (process_cpu(server.pid) - cpu) / results[run]["requests"]
                results[run]["load_1min"] = os.getloadavg()[0]
                print(f"{run}: {results[run]}", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)

    chosen = {k: v for k, v in scenarios(sid, random.Random(1)).items() if args.only in k}
    alone = asyncio.run(in_process(db, chosen, args.clients * args.requests))
    meta = {
        "followers": n, "clients": args.clients, "requests_per_client": args.requests, "client": args.client,
        "cold_report_s": warm_report, "cold_table_s": warm_table, "server_warming_s": warming,
        "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg(), "python": platform.python_version(), "machine": platform.machine(),
    }
    (OUT / f"bench_web{'-' + args.only.replace(' ', '_') if args.only else ''}.json").write_text(json.dumps({"meta": meta, "results": results, "in_process": alone}, indent=2))
    print(f"\n{n:,} followers, {args.clients} concurrent {args.client} clients × {args.requests} requests per scenario, "
          f"{os.cpu_count()} CPUs (1-min load average at the end {os.getloadavg()[0]:.1f}); first (cold) report {warm_report:.1f} s, first follower page {warm_table:.2f} s, "
          f"server busy warming sort orders {warming:.1f} s more\n")
    print("| scenario | requests | errors | req/s | p50 ms | p99 ms | max ms | server CPU ms/request | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['requests']:,} | {r['errors']} | {r['rps']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} "
              f"| {r['server_cpu_ms']:.2f} | {r['load_1min']:.1f} |")
    print("\nServer cost alone (straight into the ASGI app, one request at a time, after warm-up; the")
    print("report scenarios repeat one page, served from the page cache; the table scenarios' pages are")
    print("mostly asked once, and the filter scenario's first pages include gathering each filter's order):\n")
    print("| scenario | requests | p50 ms | p99 ms | CPU ms/request |")
    print("|---|---:|---:|---:|---:|")
    for name, r in alone.items():
        print(f"| {name} | {r['requests']:,} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_ms']:.2f} |")


if __name__ == "__main__":
    main()
