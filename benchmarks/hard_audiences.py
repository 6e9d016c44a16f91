"""Audiences unlike the training data, audited as a user would, against their known truth (issue 12).

    python benchmarks/hard_audiences.py            # every audience, 3 seeds each
    python benchmarks/hard_audiences.py --seeds 5 --only bluesky_ordinary

Each audience is written as a file, imported and audited with the default method by the real CLI
(`python -m followaudit audit FILE --format json`), and the headline fake share, its interval, the
shift level and whether the interval covers the true fake share are tabulated. The generators are
deliberately unlike Cresci-15 and InstaFake: ordinary low-activity people on a newer network,
fakes that look cared for, files that carry few fields. Nothing here is tuned to pass: it reports.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

OBSERVED = datetime(2026, 10, 1, tzinfo=UTC)
DAY = 86_400


def _ts(seconds: np.ndarray) -> pl.Series:
    return pl.Series((seconds * 1_000_000).astype(np.int64)).cast(pl.Datetime("us", "UTC"))


def _handles(rng: np.random.Generator, n: int, digits: np.ndarray) -> list[str]:
    words = np.array(["sun", "river", "maya", "leo", "nora", "blue", "atlas", "kai", "ivy", "max", "zoe", "finn"])
    base = words[rng.integers(0, len(words), n)]
    tail = np.where(digits, rng.integers(1000, 99_999_999, n).astype(str), "")
    return [f"{a}{b}" for a, b in zip(base, tail, strict=True)]


def bluesky_ordinary(n: int, fake_share: float, seed: int) -> pl.DataFrame:
    """Ordinary people on a young network (few followers, modest posting) plus bought empty accounts."""
    rng = np.random.default_rng(seed)
    fake = rng.random(n) < fake_share
    t1 = OBSERVED.timestamp()
    created = np.where(fake, t1 - rng.uniform(30, 60, n) * DAY, t1 - rng.uniform(20, 900, n) * DAY)
    followers = np.where(fake, rng.integers(0, 4, n), np.round(rng.lognormal(np.log(25), 1.2, n)))
    following = np.where(fake, rng.integers(200, 2500, n), np.round(rng.lognormal(np.log(90), 1.0, n)))
    posts = np.where(fake, 0, np.round(rng.lognormal(np.log(30), 1.5, n)) * (rng.random(n) > 0.15))
    avatar = np.where(fake, rng.random(n) < 0.1, rng.random(n) < 0.8)
    bio = np.where(fake, 0, np.where(rng.random(n) < 0.6, rng.integers(10, 200, n), 0))
    return pl.DataFrame({
        "platform": "bluesky", "account": "someone.bsky.social",
        "follower_id": [f"did:plc:{seed}x{i:08d}" for i in range(n)],
        "handle": [h + ".bsky.social" for h in _handles(rng, n, fake & (rng.random(n) < 0.7))],
        "display_name": np.where(fake & (rng.random(n) < 0.8), "", "Sam Doe"),
        "follow_rank": np.arange(n), "created_at": _ts(created),
        "followers_count": followers.astype(np.int64), "following_count": following.astype(np.int64),
        "posts_count": posts.astype(np.int64), "has_avatar": avatar, "bio_length": bio.astype(np.int64),
        "observed_at": _ts(np.full(n, t1)), "truth_label": np.where(fake, "fake", "real"),
    })


def careful_fakes(n: int, fake_share: float, seed: int) -> pl.DataFrame:
    """Twitter-like audience where the bought accounts have avatars, bios, some posts and followers."""
    rng = np.random.default_rng(seed)
    fake = rng.random(n) < fake_share
    t1 = OBSERVED.timestamp()
    created = np.where(fake, t1 - rng.uniform(200, 700, n) * DAY, t1 - rng.uniform(100, 5000, n) * DAY)
    followers = np.where(fake, np.round(rng.lognormal(np.log(60), 0.8, n)), np.round(rng.lognormal(np.log(150), 1.4, n)))
    following = np.where(fake, np.round(rng.lognormal(np.log(700), 0.6, n)), np.round(rng.lognormal(np.log(250), 1.0, n)))
    posts = np.where(fake, rng.integers(5, 120, n), np.round(rng.lognormal(np.log(600), 1.5, n)))
    return pl.DataFrame({
        "platform": "twitter", "account": "brand",
        "follower_id": [str(10**12 + seed * 10**7 + i) for i in range(n)],
        "handle": _handles(rng, n, rng.random(n) < np.where(fake, 0.5, 0.3)),
        "display_name": "Alex Kim", "follow_rank": np.arange(n), "created_at": _ts(created),
        "followers_count": followers.astype(np.int64), "following_count": following.astype(np.int64),
        "posts_count": posts.astype(np.int64), "likes_count": np.round(rng.lognormal(np.log(300), 1.5, n)).astype(np.int64),
        "listed_count": np.where(fake, 0, rng.poisson(1.0, n)).astype(np.int64),
        "has_avatar": np.where(fake, rng.random(n) < 0.9, rng.random(n) < 0.92),
        "bio_length": np.where(fake, rng.integers(20, 120, n), np.where(rng.random(n) < 0.75, rng.integers(10, 160, n), 0)).astype(np.int64),
        "has_url": rng.random(n) < 0.2, "has_location": rng.random(n) < np.where(fake, 0.6, 0.55),
        "observed_at": _ts(np.full(n, t1)), "truth_label": np.where(fake, "fake", "real"),
    })


def instagram_few_fields(n: int, fake_share: float, seed: int) -> pl.DataFrame:
    """Instagram followers with only the anonymised InstaFake-style fields, ordinary people mostly private."""
    rng = np.random.default_rng(seed)
    fake = rng.random(n) < fake_share
    return pl.DataFrame({
        "platform": "instagram", "account": "shop",
        "follower_id": [f"ig{seed}_{i}" for i in range(n)],
        "handle": _handles(rng, n, rng.random(n) < np.where(fake, 0.6, 0.35)),
        "follow_rank": np.arange(n),
        "followers_count": np.where(fake, rng.integers(0, 40, n), np.round(rng.lognormal(np.log(220), 1.1, n))).astype(np.int64),
        "following_count": np.where(fake, rng.integers(300, 3000, n), np.round(rng.lognormal(np.log(350), 0.9, n))).astype(np.int64),
        "posts_count": np.where(fake, rng.integers(0, 6, n), np.round(rng.lognormal(np.log(40), 1.2, n))).astype(np.int64),
        "has_avatar": np.where(fake, rng.random(n) < 0.5, rng.random(n) < 0.95),
        "bio_length": np.where(fake, 0, np.where(rng.random(n) < 0.5, rng.integers(5, 150, n), 0)).astype(np.int64),
        "private": np.where(fake, rng.random(n) < 0.2, rng.random(n) < 0.6),
        "truth_label": np.where(fake, "fake", "real"),
    })


AUDIENCES: dict[str, tuple[Callable[[int, float, int], pl.DataFrame], int, float]] = {
    "bluesky_ordinary": (bluesky_ordinary, 5000, 0.10),
    "careful_fakes": (careful_fakes, 5000, 0.15),
    "instagram_few_fields": (instagram_few_fields, 3000, 0.10),
}


def audit(path: Path, db: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "followaudit", "audit", str(path), "--db", str(db), "--format", "json"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(AUDIENCES))
    args = parser.parse_args()
    rows = []
    for name in args.only or list(AUDIENCES):
        make, n, share = AUDIENCES[name]
        for seed in range(args.seeds):
            frame = make(n, share, seed)
            truth = float((frame["truth_label"] == "fake").mean())
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"{name}.parquet"
                frame.write_parquet(path)
                report = audit(path, Path(tmp) / "w.duckdb")
            head = (report.get("headline") or {}).get("fake") or {}
            shift = ((report.get("evidence") or {}).get("shift") or {}).get("level")
            covered = head and head["low"] <= truth <= head["high"]
            rows.append({"audience": name, "seed": seed, "truth": truth, "share": head.get("share"), "low": head.get("low"),
                         "high": head.get("high"), "shift": shift, "covers": bool(covered),
                         "withheld": report.get("withheld"), "error": report.get("error")})
            print(json.dumps(rows[-1]), file=sys.stderr)
    print("| audience | seed | truth | headline fake share | interval | shift | covers |")
    print("|---|---:|---:|---:|---|---|---|")
    for r in rows:
        if r["share"] is None:
            print(f"| {r['audience']} | {r['seed']} | {r['truth']:.1%} | — | {r['withheld'] or r['error']} | {r['shift']} | |")
            continue
        print(f"| {r['audience']} | {r['seed']} | {r['truth']:.1%} | {r['share']:.1%} | {r['low']:.1%} – {r['high']:.1%} | {r['shift']} | {'yes' if r['covers'] else '**no**'} |")
    covered = [r["covers"] for r in rows if r["share"] is not None]
    if covered:
        print(f"\ncovered {sum(covered)} of {len(covered)} audits")


if __name__ == "__main__":
    main()
