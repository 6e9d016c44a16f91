"""Model labelling speed: canonical Parquet -> features -> LightGBM -> labels (and reasons).

    /work/venv/bin/python benchmarks/bench_model.py                   # 1M synthetic followers
    /work/venv/bin/python benchmarks/bench_model.py --rows 2000000 --parquet /tmp/f.parquet

Data: ``followaudit synth N -o FILE.parquet`` (canonical columns). Measured in this process, best
of ``--repeat`` runs, each step separately:

* read: ``pl.read_parquet`` of the canonical columns the labeller needs;
* features: the model's Polars feature expressions (vectorised; dates parsed by Polars on import);
* predict: LightGBM raw scores (``num_threads`` 0 = all cores) and the isotonic calibration;
* label: ``label_model(explain="none")`` — features, prediction, inactivity rule, labels;
* reasons: path attribution + words for the followers labelled fake, per explained follower.

The load average is printed: other work on a shared 2-core machine slows every figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from followaudit.classify.model import feature_matrix, label_model, load_model
from followaudit.schema import COLUMN_NAMES, conform

AS_OF = datetime(2025, 1, 1, tzinfo=UTC)


CPU: dict[str, float] = {}


def best(fn, repeat: int, name: str = "") -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Best wall time of ``repeat`` runs; the CPU time (all threads) of that run goes to ``CPU[name]``."""
    times, out = [], None
    for _ in range(repeat):
        c = time.process_time()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        if times[-1] == min(times):
            CPU[name] = time.process_time() - c
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--parquet", type=Path, default=Path("/tmp/followaudit-bench-model.parquet"))
    ap.add_argument("--model", default="twitter", choices=["twitter", "instagram", "crossplatform"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reasons-rows", type=int, default=50_000, help="fake-labelled followers to explain")
    args = ap.parse_args()
    if not args.parquet.exists():
        subprocess.run([sys.executable, "-m", "followaudit", "synth", str(args.rows), "-o", str(args.parquet)], check=True)
    cols = [c for c in COLUMN_NAMES if c != "raw"]
    t_read, frame = best(lambda: pl.read_parquet(args.parquet, columns=[c for c in cols if c in pl.read_parquet_schema(args.parquet)]), 1)
    frame = conform(frame).head(args.rows)
    n = frame.height
    model = load_model(args.model)
    platform = {"twitter": "twitter", "instagram": "instagram"}.get(args.model, "bluesky")
    best(lambda: model.raw(X_warm), 1) if (X_warm := feature_matrix(frame.head(200_000), model.spec.features, AS_OF)) is not None else None  # compiles the trees once
    t_feat, X = best(lambda: feature_matrix(frame, model.spec.features, AS_OF), args.repeat, "features")
    t_pred, raw = best(lambda: model.calibrate(model.raw(X)), args.repeat, "predict")
    t_lgb, _ = best(lambda: model.booster.predict(X, raw_score=True), 1, "lightgbm")
    t_label, labels = best(lambda: label_model(frame, as_of=AS_OF, platform=platform, explain="none"), args.repeat, "label")
    fake_rows = frame.filter(labels["label"] == "fake").head(args.reasons_rows)
    t_reasons, _ = best(lambda: label_model(fake_rows, as_of=AS_OF, platform=platform, explain="fake"), 1)
    t_reasons_base, _ = best(lambda: label_model(fake_rows, as_of=AS_OF, platform=platform, explain="none"), 1)
    explain_rate = fake_rows.height / max(t_reasons - t_reasons_base, 1e-9)
    load = os.getloadavg()
    print(f"model {args.model}: {len(model.spec.features)} features, {model.trees.n_trees} trees; {n:,} followers")
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    print(f"read parquet          {t_read:7.3f} s")
    from followaudit.classify import trees

    print(f"tree walk: {'compiled C' if trees._library() is not None else 'NumPy (no C compiler)'}")
    cores = os.cpu_count() or 1

    def row(name: str, wall: float, key: str) -> None:
        cpu = CPU.get(key, float("nan"))
        print(f"{name:24s}{wall:7.3f} s wall {n / wall:12,.0f} rows/s | {cpu:6.3f} CPU-s = {n / cpu * cores:12,.0f} rows/s on {cores} idle cores")

    row("features", t_feat, "features")
    row("predict+calibrate", t_pred, "predict")
    row("LightGBM predict alone", t_lgb, "lightgbm")
    wall, cpu = t_feat + t_pred, CPU["features"] + CPU["predict"]
    print(f"{'features+predict':24s}{wall:7.3f} s wall {n / wall:12,.0f} rows/s | {cpu:6.3f} CPU-s = {n / cpu * cores:12,.0f} rows/s on {cores} idle cores")
    row("label_model (labels)", t_label, "label")
    print(f"reasons (path attribution + words) for {fake_rows.height:,} fake followers: {explain_rate:,.0f} explained/s")
    shares = labels["label"].value_counts().sort("label")
    print("labels:", dict(shares.iter_rows()), "mean probability", round(float(np.mean(raw)), 4))


if __name__ == "__main__":
    main()
