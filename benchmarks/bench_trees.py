"""CPU of the compiled tree pass (``TreeModel.score``) as labelling calls it, before and after the
interval masks, in one process on the same feature columns (issue 14).

    python benchmarks/bench_trees.py                     # 500k rows of canonical_1000000.parquet, twitter
    python benchmarks/bench_trees.py --rows 100000 --repeat 3

"before" is the same model scored by the straight-line trees (what ``score`` compiled until now,
and still compiles for a model the masks cannot express); "now" is the interval-mask pass. Both
run on one thread; each figure is the least CPU time (this thread's) of ``--repeat`` runs, the two
passes taking turns so that other work on the machine slows both alike. The scores and top groups
of both are checked to be identical. The load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from followaudit.classify.model import feature_columns, load_model
from followaudit.classify.reasons import MIN_CONTRIBUTION, TOP_K, path_credit

HERE = Path(__file__).resolve().parent
AS_OF = datetime(2025, 1, 1, tzinfo=UTC)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--parquet", type=Path, default=HERE / "out" / "canonical_1000000.parquet")
    ap.add_argument("--model", default="twitter", choices=["twitter", "instagram", "crossplatform"])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    model = load_model(args.model)
    frame = pl.read_parquet(args.parquet, n_rows=args.rows)
    columns = feature_columns(frame, model.spec.features, AS_OF)
    credit = path_credit(model)
    passes = {"before (straight-line trees)": model.trees.straight_line(), "now (interval masks)": model.trees}
    best: dict[tuple[str, str], float] = {}
    results: dict[tuple[str, str], tuple] = {}
    for explain in ("none", "fake"):
        for _ in range(args.repeat + 1):  # the first round compiles (once per machine) and warms up
            for name, trees in passes.items():
                start = time.thread_time()
                out = trees.score(columns, credit=credit if explain != "none" else None, threshold=model.threshold,
                                  explain=explain, k=TOP_K, min_credit=MIN_CONTRIBUTION, threads=1)
                spent = time.thread_time() - start
                if (name, explain) in results:
                    best[name, explain] = min(best.get((name, explain), spent), spent)
                results[name, explain] = out
        (raw0, top0), (raw1, top1) = (results[name, explain] for name in passes)
        assert np.array_equal(raw0.view(np.int64), raw1.view(np.int64)), "raw scores differ"
        assert (top0 is None and top1 is None) or np.array_equal(top0, top1), "top groups differ"
    fake = float(np.mean(results["now (interval masks)", "fake"][0] >= model.threshold))
    print(f"{args.model}, {len(frame):,} rows of {args.parquet.name}, one thread, least CPU-s of {args.repeat}; "
          f"{fake:.0%} of rows explained (fake)")
    print("| pass | scores only | scores + explain='fake' |")
    print("|---|---|---|")
    for name in passes:
        print(f"| {name} | {best[name, 'none']:.3f} | {best[name, 'fake']:.3f} |")
    before, now = passes
    print(f"| ratio | {best[before, 'none'] / best[now, 'none']:.2f}x | {best[before, 'fake'] / best[now, 'fake']:.2f}x |")
    print("identical raw scores and top groups; load average", " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
