"""Workspaces for the web and HTML tests, built with the library (no CLI, no network).

``build_demo_db`` writes two snapshots of one synthetic account (the second after some followers left
and a new batch joined), one snapshot whose labels are not stored, and one account whose names, handles
and bios are hostile strings.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from followaudit.audit import audit_snapshot
from followaudit.schema import SampleDesign
from followaudit.sources.synth import SynthSpec, generate
from followaudit.store import Store

HOSTILE = {
    "handle": "<script>window.__pwned=1</script>",
    "display_name": "<img src=x onerror=\"window.__pwned=1\">",
    "bio": "javascript:window.__pwned=1 \"><svg onload=window.__pwned=1>",
}
HOSTILE_ACCOUNT = "evil<script>window.__pwned=1</script>"
BURST_REASON = "in burst #7: 100 followers created 2020-01-01..2020-01-03, followed consecutively"  # #7: clear of real bursts


def _snapshot(store: Store, frame: pl.DataFrame, account: str, taken_at: datetime) -> int:
    sid = store.create_snapshot(
        platform="twitter", account=account, source="tests/webdb.py", taken_at=taken_at,
        design=SampleDesign("full", frame.height, frame.height),
    )
    store.replace_followers(sid, frame)
    return sid


def build_demo_db(path: Path, n: int = 1500) -> dict[str, int]:
    base = generate(SynthSpec(n=n, seed=11, account="demo_account"))
    taken = datetime(2026, 11, 1, tzinfo=UTC)
    ids: dict[str, int] = {}
    with Store(path) as store:
        ids["a"] = _snapshot(store, base, "demo_account", taken)
        audit_snapshot(store, ids["a"])
        # Later snapshot: the first 100 followers left, 50 new ones joined.
        joined = generate(SynthSpec(n=50, seed=99, account="demo_account")).with_columns(
            ("new" + pl.col("follower_id")).alias("follower_id"), (pl.col("follow_rank") + n).alias("follow_rank")
        )
        later = pl.concat([base.slice(100), joined], how="diagonal_relaxed")
        ids["b"] = _snapshot(store, later, "demo_account", taken + timedelta(days=30))
        audit_snapshot(store, ids["b"])
        # Stored labels with a burst reason on ranks 200..299 (as bursts.py writes them).
        labels = store.labels(ids["b"], "rules").join(
            store.query("SELECT follower_id, follow_rank FROM followers WHERE snapshot_id = ?", [ids["b"]]), on="follower_id"
        )
        in_burst = pl.col("follow_rank").is_between(200, 299)
        labels = labels.with_columns(
            pl.when(in_burst).then(pl.col("reasons").list.concat(pl.lit([BURST_REASON]))).otherwise(pl.col("reasons")).alias("reasons")
        )
        store.save_labels(ids["b"], "rules", labels.drop("follow_rank"))
        # A snapshot that was imported but never audited: the web labels it in memory.
        ids["unlabelled"] = _snapshot(store, generate(SynthSpec(n=300, seed=5, account="other_account")), "other_account", taken)
        ids["hostile"] = add_hostile_snapshot(store)
    return ids


def add_hostile_snapshot(store: Store, n: int = 200) -> int:
    """An audited account whose name, handles, display names and bios are hostile strings."""
    evil = generate(SynthSpec(n=n, seed=3, account=HOSTILE_ACCOUNT)).with_columns(
        pl.lit(HOSTILE_ACCOUNT).alias("account"),
        pl.when(pl.col("follow_rank") < 20).then(pl.lit(HOSTILE["handle"])).otherwise(pl.col("handle")).alias("handle"),
        pl.lit(HOSTILE["display_name"]).alias("display_name"),
        pl.lit(HOSTILE["bio"]).alias("bio"),
    )
    sid = _snapshot(store, evil, HOSTILE_ACCOUNT, datetime(2026, 11, 1, tzinfo=UTC))
    audit_snapshot(store, sid)
    return sid


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
