"""SIGKILL the collector at random points, resume each time, and compare with the server's truth.

The collector runs as a real subprocess (`python -m followaudit collect ...`) against the local fake
platform; the test kills it after a random number of requests (plus a random few milliseconds, so
kills also land inside DuckDB writes) or at a random moment during start-up.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers.fake_platform import TARGET_HANDLE, FakePlatform

from followaudit.store import Store

REPO = Path(__file__).resolve().parents[1]


def _command(platform: str, url: str, db: Path) -> list[str]:
    who = TARGET_HANDLE if platform == "bluesky" else "@target@127.0.0.1"
    return [sys.executable, "-m", "followaudit", "collect", platform, who, "--api-base", url, "--db", str(db),
            "--pace", "0.004", "--timeout", "10"]


def _wait_for_requests(fp: FakePlatform, target: int, proc: subprocess.Popen, deadline: float) -> bool:
    """True once the server has seen ``target`` requests; False if the process ended first."""
    while fp.requests < target:
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            raise AssertionError("collector made no progress for 30 s")
        time.sleep(0.001)
    return True


@pytest.mark.slow
# Enough pages (Bluesky 250 requests, Mastodon 100) that the kills always land before the end.
@pytest.mark.parametrize("platform, n, kills_wanted", [("bluesky", 5000, 21), ("mastodon", 8000, 5)])
def test_sigkill_and_resume_loses_and_duplicates_nothing(tmp_path, platform: str, n: int, kills_wanted: int) -> None:
    rng = random.Random(f"kill-{platform}")
    db = tmp_path / "w.duckdb"
    env = {**os.environ, "PYTHONPATH": str(REPO), "FOLLOWAUDIT_CONFIG": str(tmp_path / "none.toml")}
    kills = 0
    with FakePlatform(n) as fp:
        cmd = _command(platform, fp.url, db)
        while kills < kills_wanted:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if rng.random() < 0.2:  # during start-up: imports, opening DuckDB, migrations, first request
                time.sleep(rng.uniform(0.0, 0.8))
                alive = proc.poll() is None
            else:
                alive = _wait_for_requests(fp, fp.requests + rng.randint(1, 8), proc, time.monotonic() + 30)
                time.sleep(rng.uniform(0, 0.02))
            if alive and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
            else:
                proc.wait()
                err = proc.stderr.read().decode() if proc.stderr else ""
                assert proc.returncode == 0, err
                break  # finished before we got to kill it
            proc.stderr.close()
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        truth = fp.bluesky_truth() if platform == "bluesky" else fp.mastodon_truth()
    assert kills >= kills_wanted, f"only {kills} kills before the collection finished"
    with Store(db, read_only=True) as store:
        snaps = store.list_snapshots()
        assert snaps.height == 1 and snaps["status"].to_list() == ["complete"]
        sid = int(snaps["snapshot_id"][0])
        followers = store.followers(sid, ["follower_id", "follow_rank", "followed_at"])
        assert followers.height == n  # none duplicated ...
        assert set(followers["follower_id"]) == truth  # ... none lost
        assert sorted(followers["follow_rank"].to_list()) == list(range(n))
        if platform == "bluesky":  # the follow-times phase resumed too: every follower dated once
            assert followers["followed_at"].null_count() == 0
        ids = store.row("SELECT count(*) AS n, count(DISTINCT position) AS p FROM collect_ids WHERE snapshot_id = ?", [sid])
        assert ids == {"n": n, "p": n}
