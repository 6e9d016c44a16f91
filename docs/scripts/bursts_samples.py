"""Regenerate the burst findings and charts in docs/bursts.md.

    /work/venv/bin/python docs/scripts/bursts_samples.py [--data ../shared/data/follower-analyzer-sample]

Imports the three FollowerAnalyzer sample accounts (follower id lists in API order + profiles) and the
``{id: {rank, timestamp}}`` file through followaudit's own importer into a throw-away workspace,
labels followers with the rule baseline (for colour and each burst's fake share), detects bursts,
writes the charts to docs/img/ and prints the Markdown tables. Also draws the demo account and one
injection-harness account.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from followaudit.bursts import burst_membership, scan_bursts
from followaudit.bursts.harness import inject_bricks, organic_sequence
from followaudit.classify import label_followers
from followaudit.estimate import wilson
from followaudit.render.charts import write_follower_factory
from followaudit.sources.ingest import import_file
from followaudit.sources.synth import SynthSpec, generate
from followaudit.store import Store

ROOT = Path(__file__).resolve().parents[2]
IMG = ROOT / "docs" / "img"
ACCOUNTS = ("1664461146", "1632532027", "172048868")
DPI = 80  # keeps each PNG well under 200 KB


def table(scan, frame: pl.DataFrame, by: str = "rules") -> str:
    rows = ["| # | follow ranks | followers | expected if organic | created | followed (≥) | labelled fake (Wilson 95%) | LLR | expected false alarms |",
            "|---|---|---|---|---|---|---|---|---|"]
    for b in scan.bursts:
        fake = "—" if b.fake_share is None else f"{b.fake_share:.0%} ({b.fake_share_low:.0%}–{b.fake_share_high:.0%})"
        rows.append(
            f"| {b.burst_id} | {b.start_rank:,}–{b.end_rank:,} | {b.size:,} | {b.expected:,.1f} | {b.created_from:%Y-%m-%d} … {b.created_to:%Y-%m-%d} "
            f"| {b.followed_from:%Y-%m-%d} | {fake} | {b.score:,.0f} | {b.expected_false_alarms:.1g} |"
        )
    inside = burst_membership(frame, scan.bursts)
    if "label" in frame.columns:
        flagged = frame.with_columns(pl.col("follower_id").is_in(inside["follower_id"].implode()).alias("inside"))
        stats = flagged.group_by("inside").agg((pl.col("label") == "fake").sum().alias("fakes"), pl.len()).sort("inside")
        parts = []
        for r in stats.iter_rows(named=True):
            low, high = wilson(int(r["fakes"]), int(r["len"]))
            parts.append(
                f"{'inside' if r['inside'] else 'outside'} bursts: {r['len']:,} followers, "
                f"{r['fakes'] / r['len']:.0%} labelled fake ({by}; Wilson 95% {low:.0%}–{high:.0%})"
            )
        rows.append("\n" + "; ".join(parts) + ".")
    return "\n".join(rows)


def labelled(store: Store, snapshot_id: int) -> pl.DataFrame:
    snap = store.snapshot(snapshot_id)
    cols = [c for c in store.query("SELECT * FROM followers LIMIT 0").columns if c not in ("snapshot_id", "raw")]
    followers = store.followers(snapshot_id, cols)
    labels = label_followers(followers, method="rules", as_of=snap.taken_at, platform="twitter")
    return followers.select("follower_id", "follow_rank", "created_at").join(labels.select("follower_id", "label"), on="follower_id", how="left")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "follower-analyzer-sample")
    args = parser.parse_args()
    IMG.mkdir(parents=True, exist_ok=True)
    profiles = args.data / "follower_profiles_sample.jsons.gz"
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "w.duckdb") as store:
        for account in ACCOUNTS:
            result = import_file(store, args.data / f"{account}_network.json.gz", profiles=profiles)
            frame = labelled(store, result.snapshot_id)
            scan = scan_bursts(frame)
            write_follower_factory(IMG / f"bursts-{account}.png", frame, scan.bursts, title=f"Twitter account {account}", dpi=DPI)
            print(f"\n### Account {account}: {frame.height:,} followers, {scan.followers_skipped} without a creation date\n")
            print(f"![follower factory of {account}](img/bursts-{account}.png)\n")
            print(table(scan, frame))
        result = import_file(store, args.data / "sample_follower_data.json.gz")
        frame = store.followers(result.snapshot_id, ["follower_id", "follow_rank", "created_at"])
        scan = scan_bursts(frame)
        print(f"\n### `sample_follower_data.json.gz` ({{id: {{rank, timestamp}}}}): {frame.height:,} followers\n")
        print(table(scan, frame))

    demo = generate(SynthSpec(n=4000, seed=7))
    truth = demo.select("follower_id", "follow_rank", "created_at", pl.col("truth_label").alias("label"))
    scan = scan_bursts(truth)
    write_follower_factory(IMG / "bursts-demo.png", truth, scan.bursts, title="followaudit demo (synthetic, coloured by truth)", dpi=DPI)
    print("\n### Demo account (`followaudit demo`, 4,000 synthetic followers, colour = ground truth)\n")
    print(table(scan, truth, by="ground truth"))

    rng = np.random.default_rng(3)
    follow, created = organic_sequence(40_000, rng)
    inj = inject_bricks(follow, created, rng).frame
    frame = inj.with_columns(pl.when(pl.col("brick") > 0).then(pl.lit("fake")).otherwise(pl.lit("real")).alias("label"))
    scan = scan_bursts(frame)
    write_follower_factory(IMG / "bursts-harness.png", frame, scan.bursts, title="injection harness, seed 3 (red = injected)", dpi=DPI)
    print("\n### Injection harness, seed 3\n")
    print(table(scan, frame, by="ground truth"))


if __name__ == "__main__":
    main()
