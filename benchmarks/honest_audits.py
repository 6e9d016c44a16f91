"""Audits with known truth, far and near the training data: does the interval cover, is shift said?

    python benchmarks/honest_audits.py            # unfamiliar audiences, synth difficulties, usernames only
    python benchmarks/honest_audits.py --cresci   # plus held-in Cresci-15 mixes (needs ../shared/data)

Prints one line per audit: truth, headline fake share [interval], width, shift level and whether the
interval covers the truth; then the coverage and mean width per group. Figures in the README come from here.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import numpy as np
import polars as pl

from followaudit.audit import audit_frame
from followaudit.classify.masks import apply_mask
from followaudit.classify.unfamiliar import KINDS, generate_unfamiliar
from followaudit.schema import conform
from followaudit.sources.synth import SynthSpec, generate
from followaudit.store.workspace import Snapshot

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def run(group: str, followers: pl.DataFrame, platform: str, rows: list[dict]) -> None:
    truth = float((followers["truth_label"] == "fake").mean())
    report = audit_frame(followers, Snapshot(1, platform, "acct", group, None, AS_OF, "bench"), method="model").report
    fake, shift = report.corrected["fake"], report.evidence["shift"]
    row = {"group": group, "n": followers.height, "truth": truth, "share": fake["share"], "low": fake["low"], "high": fake["high"],
           "level": shift["level"], "distance": shift.get("distance"), "covered": fake["low"] <= truth <= fake["high"]}
    rows.append(row)
    print(f"{group:28s} n={row['n']:>6,} truth {100 * truth:5.1f}%  headline {100 * fake['share']:5.1f}% "
          f"[{100 * fake['low']:5.1f}–{100 * fake['high']:5.1f}]  width {100 * (fake['high'] - fake['low']):5.1f}  "
          f"{shift['level']:8s} {'covered' if row['covered'] else 'MISSED'}", flush=True)


def main() -> None:
    rows: list[dict] = []
    # the Bluesky-like stand-in: 4,500 ordinary people + 500 empty bought accounts
    for seed in range(3):
        run("bluesky-like 10%", generate_unfamiliar("bluesky", 5000, 0.10, seed), "bluesky", rows)
    for kind in KINDS:
        for share in (0.05, 0.3):
            frame = generate_unfamiliar(kind, 5000, share, 7)
            run(f"{kind} {share:.0%}", frame, frame["platform"][0], rows)
    for d in (0.0, 0.5, 1.0):
        for n in (4000, 40000):
            run(f"synth difficulty {d:g}", generate(SynthSpec(n, seed=21, difficulty=d)), "twitter", rows)
    run("synth usernames only", apply_mask(conform(generate(SynthSpec(5000, seed=2))), "usernames"), "twitter", rows)
    if "--cresci" in sys.argv:
        from followaudit.classify.datasets import load_cresci2015

        c = load_cresci2015()
        y = c.y.to_numpy()
        rng = np.random.default_rng(0)
        for share in (0.05, 0.2, 0.5):
            k = int(share * 1800)
            pick = np.concatenate([rng.choice(np.flatnonzero(y == 1), k, replace=False),
                                   rng.choice(np.flatnonzero(y == 0), 1800 - k, replace=False)])
            run(f"cresci-15 (training) {share:.0%}", c.frame[pick].with_columns(pl.Series("truth_label", np.where(y[pick] == 1, "fake", "real"))),
                "twitter", rows)
    table = pl.DataFrame(rows).with_columns(pl.col("group").str.replace(r" \d+%$", ""))
    print(table.group_by("group", maintain_order=True).agg(
        pl.len().alias("audits"), pl.col("covered").mean().alias("coverage"), ((pl.col("high") - pl.col("low")) * 100).mean().alias("mean width (pts)"),
        pl.col("level").unique().sort().str.join(",").alias("levels"),
    ))


if __name__ == "__main__":
    main()
