"""Compare followaudit's bursts with FollowerAnalyzer's anomaly scores on FollowerAnalyzer's own sample.

    python docs/scripts/followeranalyzer_compare.py [--data ../shared/data/follower-analyzer-sample]

FollowerAnalyzer (ViralLab; Zouzou & Varol, arXiv:2310.20407) scores each follower with a sliding
histogram: windows of 200 consecutive followers (stride 40) histogram the followers' creation dates
relative to the follow-time lower bound (12 bins); each bin's count is compared with the same bin in
all windows by a robust z-score ((x − median ± 1) / (IQR + 1)); a follower's score is the
window-distance-weighted mean of its bin's scores. Its flagged set = score above 5. This is an
independent, vectorised re-implementation from that description (the windows are spread evenly
where the original adds its leftover strides at random), used only for this comparison.
Prints, per account and pooled: FollowerAnalyzer's flagged count, our burst members, and the Jaccard
index of the two sets, with and without the labels' help.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from followaudit.bursts import burst_membership, scan_bursts
from followaudit.sources.ingest import import_file
from followaudit.store import Store

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = ("1664461146", "1632532027", "172048868")
WINDOW, STRIDE, BINS, FLAG_ABOVE = 200, 40, 12, 5.0


def fa_scores(rank: np.ndarray, created_s: np.ndarray) -> np.ndarray:
    """FollowerAnalyzer-style anomaly score per follower (``rank`` 0 = oldest), in input order."""
    order = np.argsort(-rank, kind="stable")  # newest first, as the original works
    ts = created_s[order].astype(np.float64)
    n = ts.size
    lower = np.maximum.accumulate(ts[::-1])[::-1]  # running max from the oldest
    lower[n - 11 :] = ts[n - 11 :].max()  # the 11 oldest share their max (noise at the start)
    base = ts.min()
    rel = (ts - base) / np.maximum(lower - base, 1e-9)
    starts = np.arange(0, n - WINDOW + 1, STRIDE)
    extra = (n - (starts[-1] + WINDOW)) if starts.size else 0
    starts = starts + np.floor(np.linspace(0, max(extra, 0), starts.size)).astype(int)  # cover the end
    ends = np.minimum(starts + WINDOW, n - 1)
    rows = np.concatenate([np.arange(s, e + 1) for s, e in zip(starts, ends, strict=True)])
    win = np.repeat(np.arange(starts.size), ends - starts + 1)
    bin_of = np.clip(np.ceil(rel * BINS).astype(int) - 1, 0, BINS - 1)
    counted = rel > 0  # the left-open first bin leaves out the oldest creation date
    hist = np.zeros((starts.size, BINS))
    np.add.at(hist, (win[counted[rows]], bin_of[rows][counted[rows]]), 1)
    med = np.median(hist, axis=0)
    iqr = np.quantile(hist, 0.75, axis=0) - np.quantile(hist, 0.25, axis=0)
    dist = hist - med
    signal = (dist + np.sign(dist)) / (iqr + 1.0)
    centre = (starts + ends) / 2.0
    weight = WINDOW / 2.0 - np.abs(rows - centre[win]) + 1.0
    total = np.bincount(rows, weights=weight, minlength=n)
    score = np.bincount(rows, weights=weight * signal[win, bin_of[rows]], minlength=n) / np.maximum(total, 1e-9)
    out = np.empty(n)
    out[order] = score
    return out


def compare(frame: pl.DataFrame) -> dict[str, float]:
    """FA flagged vs our burst members on one account's followers (follower_id, follow_rank, created_at)."""
    placed = frame.drop_nulls(["follow_rank", "created_at"]).sort("follow_rank")
    scores = fa_scores(placed["follow_rank"].to_numpy(), placed["created_at"].dt.epoch("s").to_numpy())
    flagged = set(placed.filter(pl.Series(scores > FLAG_ABOVE))["follower_id"].to_list())
    scan = scan_bursts(placed)
    ours = set(burst_membership(placed, scan.bursts)["follower_id"].to_list())
    union = flagged | ours
    return {"followers": placed.height, "fa_flagged": len(flagged), "ours": len(ours), "both": len(flagged & ours),
            "union": len(union), "jaccard": len(flagged & ours) / len(union) if union else 1.0, "bursts": len(scan.bursts)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "follower-analyzer-sample")
    args = parser.parse_args()
    profiles = args.data / "follower_profiles_sample.jsons.gz"
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "w.duckdb") as store:
        sources = [("sample_follower_data ({id: {rank, timestamp}})", args.data / "sample_follower_data.json.gz", None)]
        sources += [(f"account {a}", args.data / f"{a}_network.json.gz", profiles) for a in ACCOUNTS]
        for name, path, prof in sources:
            result = import_file(store, path, profiles=prof) if prof else import_file(store, path)
            frame = store.followers(result.snapshot_id, ["follower_id", "follow_rank", "created_at"])
            rows.append((name, compare(frame)))
    print("| data | followers | FollowerAnalyzer flagged (score > 5) | inside our bursts | both | Jaccard |")
    print("|---|---:|---:|---:|---:|---:|")
    pooled = {"both": 0, "union": 0}
    for name, r in rows:
        print(f"| {name} | {r['followers']:,} | {r['fa_flagged']:,} | {r['ours']:,} ({r['bursts']} bursts) | {r['both']:,} | {r['jaccard']:.2f} |")
        if not name.startswith("sample_follower_data"):
            pooled["both"] += r["both"]
            pooled["union"] += r["union"]
    print(f"\npooled over the three accounts: Jaccard {pooled['both'] / max(pooled['union'], 1):.2f}")


if __name__ == "__main__":
    main()
